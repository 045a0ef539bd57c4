import Foundation
import HTTPTypes
import InternalAPI
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `GET /api/tenant/profile` and `PUT /api/tenant/settings` (seed 004).
@Suite("tenancy profile and settings")
struct TenantProfileTests {
    struct Settings: Decodable, Equatable {
        struct Notifications: Decodable, Equatable { var email: Bool; var sms: Bool }
        var timezone: String
        var language: String
        var notifications: Notifications
        var allowSignup: Bool
        var customSettings: [String: JSONValue]
    }

    struct Profile: Decodable {
        struct Subscription: Decodable { var planId: String; var status: String; var monthlyMessageQuota: Int }
        var tenantId: String
        var name: String
        var slug: String
        var status: String
        var settings: Settings
        var subscription: Subscription?
        var createdAt: Date
        var updatedAt: Date?
    }

    struct SettingsAnswer: Decodable {
        var tenantId: String
        var settings: Settings
        var updatedAt: Date?
    }

    static let defaults = Settings(
        timezone: "UTC", language: "en", notifications: .init(email: true, sms: false), allowSignup: false, customSettings: [:]
    )

    static func stored(_ harness: TenancyRouterHarness, _ tenant: UUID) async throws -> String {
        let settings = try await harness.value("SELECT settings::text FROM tenant_settings WHERE tenant_id = \(tenant)", as: String.self)
        let allow = try await harness.value("SELECT allow_signup FROM tenants WHERE id = \(tenant)", as: Bool.self)
        return "\(settings ?? "-") allow=\(allow.map(String.init) ?? "-")"
    }

    @Test func everyMemberReadsTheProfileOfTheirOwnTenant() async throws {
        try await TenancyRouterHarness.with(.billing) { harness in
            let tenant = try await harness.tenant("Acme")
            let started = try await harness.stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenant))
            #expect(started.status == 201 || started.status == 200)
            for role in [Role.user, .admin, .owner] {
                let answer = try await harness.send(.get, "/api/tenant/profile", token: try await harness.token(tenant, role))
                #expect(answer.status == 200)
                let profile = try answer.json(Profile.self)
                #expect(profile.tenantId == tenant.uuidString.lowercased())
                #expect(profile.name == "Acme")
                #expect(profile.status == "active")
                #expect(profile.settings == Self.defaults)
                #expect(profile.subscription?.planId == "trial")
                #expect(profile.subscription?.status == "trialing")
                #expect(profile.updatedAt == nil)
            }
            // Billing down: the profile still answers, without the subscription.
            await harness.stack.stop(.billing)
            let degraded = try await harness.send(.get, "/api/tenant/profile", token: try await harness.token(tenant, .user))
            #expect(degraded.status == 200)
            #expect(try degraded.object()["subscription"] == nil)
            // A token of a tenant tenancy does not know (deleted, or the platform's own entry).
            let unknown = try await harness.send(.get, "/api/tenant/profile", token: try await harness.token(UUID(), .superAdmin))
            #expect(unknown.status == 404)
            #expect(try await harness.send(.get, "/api/tenant/profile").status == 401)
        }
    }

    @Test func adminsChangeSettingsPartially() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let token = try await harness.token(tenant, .admin)
            let first = try await harness.send(
                .put, "/api/tenant/settings", token: token,
                raw: #"{"settings": {"timezone": "America/Mexico_City", "language": "es", "notifications": {"sms": true}, "custom_settings": {"tier": 2, "region": "north", "vip": true, "note": null}}}"#
            )
            #expect(first.status == 200)
            let answer = try first.json(SettingsAnswer.self)
            #expect(answer.tenantId == tenant.uuidString.lowercased())
            #expect(answer.settings == Settings(
                timezone: "America/Mexico_City", language: "es", notifications: .init(email: true, sms: true), allowSignup: false,
                customSettings: ["tier": .integer(2), "region": .string("north"), "vip": .bool(true), "note": .null]
            ))
            #expect(answer.updatedAt != nil)
            let second = try await harness.send(
                .put, "/api/tenant/settings", token: try await harness.token(tenant, .owner),
                raw: #"{"settings": {"allow_signup": true, "notifications": {"email": false}}}"#
            )
            #expect(second.status == 200)
            let after = try second.json(SettingsAnswer.self).settings
            #expect(after.allowSignup)
            #expect(after.notifications == .init(email: false, sms: true))
            #expect(after.timezone == "America/Mexico_City")
            #expect(try await harness.value("SELECT allow_signup FROM tenants WHERE id = \(tenant)", as: Bool.self) == true)
            // The profile shows the same, and auth's lookup carries allow_signup.
            let profile = try await harness.send(.get, "/api/tenant/profile", token: try await harness.token(tenant, .user))
            #expect(try profile.json(Profile.self).settings == after)
            #expect(try await harness.send(.put, "/api/tenant/settings", token: token, raw: #"{"settings": {}}"#).status == 200)
            #expect(try await harness.send(.put, "/api/tenant/settings", token: token, raw: #"{"settings": {"allow_signup": false}}"#).status == 200)
            #expect(try await harness.value("SELECT allow_signup FROM tenants WHERE id = \(tenant)", as: Bool.self) == false)
        }
    }

    @Test func everyBadSettingIs422AndChangesNothing() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let token = try await harness.token(tenant, .owner)
            #expect(try await harness.send(.put, "/api/tenant/settings", token: token, json: ["settings": ["language": "fr"]]).status == 200)
            let before = try await Self.stored(harness, tenant)
            let cases: [(String, String)] = [
                (#"{"settings": {"timezone": "Mars/Olympus_Mons"}}"#, "settings.timezone"),
                (#"{"settings": {"timezone": "../../etc/passwd"}}"#, "settings.timezone"),
                (#"{"settings": {"timezone": "/usr/share/zoneinfo/UTC"}}"#, "settings.timezone"),
                (#"{"settings": {"timezone": "europe/madrid"}}"#, "settings.timezone"),
                (#"{"settings": {"timezone": ""}}"#, "settings.timezone"),
                (#"{"settings": {"timezone": "\#(String(repeating: "A", count: 65))"}}"#, "settings.timezone"),
                (#"{"settings": {"timezone": 1}}"#, "settings.timezone"),
                (#"{"settings": {"language": "xx"}}"#, "settings.language"),
                (#"{"settings": {"language": "ES"}}"#, "settings.language"),
                (#"{"settings": {"language": "spa"}}"#, "settings.language"),
                (#"{"settings": {"language": "es-MX"}}"#, "settings.language"),
                (#"{"settings": {"notifications": {"email": "yes"}}}"#, "settings.notifications.email"),
                (#"{"settings": {"notifications": true}}"#, "settings.notifications"),
                (#"{"settings": {"allow_signup": "true"}}"#, "settings.allow_signup"),
                (#"{"settings": {"allow_signup": 1}}"#, "settings.allow_signup"),
                (#"{"settings": {"custom_settings": [1]}}"#, "settings.custom_settings"),
                (#"{"settings": {"custom_settings": {"blob": "\#(String(repeating: "x", count: 1001))"}}}"#, "settings.custom_settings.blob"),
                (#"{"settings": {"custom_settings": {"deep": {"a": 1}}}}"#, "settings.custom_settings.deep"),
                (#"{"settings": {"language": "es", "timezone": "Nowhere/Land"}}"#, "settings.timezone"),
                (#"{"settings": "UTC"}"#, "settings"),
                (#"{"timezone": "UTC"}"#, "settings"),
            ]
            for (body, field) in cases {
                let answer = try await harness.send(.put, "/api/tenant/settings", token: token, raw: body)
                #expect(answer.status == 422, "\(body.prefix(80))")
                #expect(try answer.error().fields?[field] != nil, "\(body.prefix(80)): \((try? answer.error().fields) ?? [:])")
            }
            for body in ["{", "[]", ""] {
                #expect(try await harness.send(.put, "/api/tenant/settings", token: token, raw: body).status == 400)
            }
            let huge = try await harness.send(
                .put, "/api/tenant/settings", token: token, raw: #"{"settings": {"timezone": "\#(String(repeating: "h", count: 1_100_000))"}}"#
            )
            #expect(huge.status == 413)
            #expect(try await Self.stored(harness, tenant) == before)
            // Every valid zone and language is taken.
            for zone in ["UTC", "Europe/Madrid", "America/Argentina/Buenos_Aires", "Etc/GMT+5", "America/Port-au-Prince"] {
                let answer = try await harness.send(.put, "/api/tenant/settings", token: token, json: ["settings": ["timezone": zone]])
                #expect(answer.status == 200, "\(zone)")
            }
            #expect(LanguageCodes.iso639_1.count == 184)
            #expect(TenantSettings.isTimeZone("Europe/Madrid"))
            #expect(!TenantSettings.isTimeZone("Europe/../Madrid"))
        }
    }

    @Test func usersCannotChangeSettings() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let before = try await Self.stored(harness, tenant)
            let user = try await harness.send(.put, "/api/tenant/settings", token: try await harness.token(tenant, .user), json: ["settings": ["allow_signup": true]])
            #expect(user.status == 403)
            #expect(try user.error().code == "ROLE_NOT_ALLOWED")
            #expect(try await harness.send(.put, "/api/tenant/settings", json: ["settings": ["allow_signup": true]]).status == 401)
            // A token for a tenant that is not registered (or no longer is) changes nothing anywhere.
            let stranger = try await harness.send(.put, "/api/tenant/settings", token: try await harness.token(UUID(), .owner), json: ["settings": ["allow_signup": true]])
            #expect(stranger.status == 404)
            #expect(try await Self.stored(harness, tenant) == before)
            #expect(try await harness.value("SELECT count(*)::int FROM tenant_settings", as: Int.self) == 0)
            #expect(try await harness.send(.post, "/api/tenant/settings", token: try await harness.token(tenant, .owner)).status == 405)
        }
    }
}
