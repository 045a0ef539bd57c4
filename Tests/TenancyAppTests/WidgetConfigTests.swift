import Foundation
import HTTPTypes
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `GET/PUT /api/admin/widgets/{id}` and the public `GET /api/public/widgets/{id}/config`.
@Suite("tenancy widget configuration")
struct WidgetConfigTests {
    static func path(_ tenant: UUID) -> String { "/api/admin/widgets/\(tenant.uuidString.lowercased())" }
    static func publicPath(_ tenant: UUID) -> String { "/api/public/widgets/\(tenant.uuidString.lowercased())/config" }

    static func stored(_ harness: TenancyRouterHarness, _ tenant: UUID) async throws -> String? {
        try await harness.value("SELECT settings::text FROM widget_configs WHERE tenant_id = \(tenant)", as: String.self)
    }

    static let allFields: Set<String> = [
        "enabled", "position", "primary_color", "text_color", "title", "welcome_message", "placeholder", "launcher_text", "width", "height",
        "launcher_size", "show_branding", "open_on_load", "sound_enabled",
    ]

    @Test func defaultsThenPartialUpdatesThenThePublicView() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let token = try await harness.token(tenant, .admin)
            let first = try await harness.send(.get, Self.path(tenant), token: token)
            #expect(first.status == 200)
            #expect(try first.json(WidgetConfig.self) == WidgetConfig())
            #expect(Set(try first.object().keys) == Self.allFields.union(["tenant_id"]))
            #expect(try await Self.stored(harness, tenant) == nil)

            let put = try await harness.send(
                .put, Self.path(tenant), token: token,
                raw: ##"{"primary_color": "#FF8800", "position": "bottom-left", "welcome_message": "  Hola!  ", "width": 280, "open_on_load": true, "title": null}"##
            )
            #expect(put.status == 200)
            let config = try put.json(WidgetConfig.self)
            #expect(config.primaryColor == "#ff8800")
            #expect(config.position == .bottomLeft)
            #expect(config.welcomeMessage == "Hola!")
            #expect(config.width == 280)
            #expect(config.openOnLoad)
            #expect(config.title == WidgetConfig().title)
            #expect(try put.object()["updated_at"] != nil)
            // Only what was sent is stored; the rest reads as its default.
            let stored = try #require(try await Self.stored(harness, tenant))
            let keys = try #require(try JSONSerialization.jsonObject(with: Data(stored.utf8)) as? [String: Any]).keys
            #expect(Set(keys) == ["primary_color", "position", "welcome_message", "width", "open_on_load"])

            let second = try await harness.send(.put, Self.path(tenant), token: token, json: ["enabled": false])
            #expect(try second.json(WidgetConfig.self).enabled == false)
            #expect(try second.json(WidgetConfig.self).primaryColor == "#ff8800")

            // Anyone reads the public view, without a token; it is cacheable.
            let open = try await harness.send(.get, Self.publicPath(tenant))
            #expect(open.status == 200)
            #expect(open.headers[.cacheControl] == "public, max-age=60")
            let object = try open.object()
            #expect(Set(object.keys) == Self.allFields.union(["tenant_id", "tenant_slug"]))
            #expect(object["tenant_slug"] as? String == (try await harness.value("SELECT slug FROM tenants WHERE id = \(tenant)", as: String.self)))
            #expect(try open.json(WidgetConfig.self).primaryColor == "#ff8800")
        }
    }

    @Test func thePublicViewHidesUnknownSuspendedAndHalfMadeTenants() async throws {
        try await TenancyRouterHarness.with { harness in
            let suspended = try await harness.tenant("Gone", status: "suspended")
            let half = try await harness.tenant("Half", status: "provisioning")
            let trial = try await harness.tenant("Trial", status: "trial")
            for id in [suspended, half, UUID()] {
                let answer = try await harness.send(.get, Self.publicPath(id))
                #expect(answer.status == 404)
                #expect(try answer.error().code == "TENANT_NOT_FOUND")
            }
            #expect(try await harness.send(.get, "/api/public/widgets/acme/config").status == 404)
            #expect(try await harness.send(.get, Self.publicPath(trial)).status == 200)
            #expect(try await harness.send(.put, Self.publicPath(trial), json: ["enabled": false]).status == 405)
        }
    }

    @Test func everyBadFieldIs422AndChangesNothing() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let token = try await harness.token(tenant, .owner)
            #expect(try await harness.send(.put, Self.path(tenant), token: token, json: ["title": "Kept"]).status == 200)
            let before = try await Self.stored(harness, tenant)
            let cases: [(String, String)] = [
                (##"{"position": "middle"}"##, "position"),
                (##"{"position": "Bottom-Right"}"##, "position"),
                (##"{"primary_color": "red"}"##, "primary_color"),
                (##"{"primary_color": "#12345"}"##, "primary_color"),
                (##"{"primary_color": "#1234567"}"##, "primary_color"),
                (##"{"text_color": "#GGGGGG"}"##, "text_color"),
                (##"{"text_color": 123456}"##, "text_color"),
                (##"{"title": "  "}"##, "title"),
                (##"{"title": "\##(String(repeating: "t", count: 61))"}"##, "title"),
                (##"{"welcome_message": "\##(String(repeating: "w", count: 501))"}"##, "welcome_message"),
                (##"{"placeholder": ""}"##, "placeholder"),
                (##"{"launcher_text": "\##(String(repeating: "l", count: 31))"}"##, "launcher_text"),
                (##"{"width": 279}"##, "width"),
                (##"{"width": 601}"##, "width"),
                (##"{"height": 399}"##, "height"),
                (##"{"height": 901}"##, "height"),
                (##"{"height": "600"}"##, "height"),
                (##"{"launcher_size": 39}"##, "launcher_size"),
                (##"{"launcher_size": 97}"##, "launcher_size"),
                (##"{"launcher_size": 50.5}"##, "launcher_size"),
                (##"{"enabled": "yes"}"##, "enabled"),
                (##"{"show_branding": 1}"##, "show_branding"),
                (##"{"open_on_load": null, "sound_enabled": "off"}"##, "sound_enabled"),
            ]
            for (body, field) in cases {
                let answer = try await harness.send(.put, Self.path(tenant), token: token, raw: body)
                #expect(answer.status == 422, "\(body.prefix(80))")
                #expect(try answer.error().fields?[field] != nil, "\(body.prefix(80))")
            }
            for body in ["{", "[]", "\"x\"", ""] {
                #expect(try await harness.send(.put, Self.path(tenant), token: token, raw: body).status == 400, "\(body)")
            }
            let huge = try await harness.send(.put, Self.path(tenant), token: token, raw: ##"{"title": "\##(String(repeating: "h", count: 1_100_000))"}"##)
            #expect(huge.status == 413)
            #expect(try await Self.stored(harness, tenant) == before)
        }
    }

    @Test func rolesAndOtherTenantsIds() async throws {
        try await TenancyRouterHarness.with { harness in
            let tenant = try await harness.tenant("Acme")
            let other = try await harness.tenant("Other")
            let foreign = try await harness.send(.put, Self.path(tenant), token: try await harness.token(other, .owner), json: ["enabled": false])
            #expect(foreign.status == 404)
            #expect(try foreign.error().code == "TENANT_NOT_FOUND")
            #expect(try await harness.send(.get, Self.path(tenant), token: try await harness.token(other, .admin)).status == 404)
            let user = try await harness.send(.put, Self.path(tenant), token: try await harness.token(tenant, .user), json: ["enabled": false])
            #expect(user.status == 403)
            #expect(try user.error().code == "ROLE_NOT_ALLOWED")
            #expect(try await harness.send(.get, Self.path(tenant), token: try await harness.token(tenant, .user)).status == 403)
            #expect(try await harness.send(.get, Self.path(tenant)).status == 401)
            let root = try await harness.token(UUID(), .superAdmin)
            #expect(try await harness.send(.put, Self.path(UUID()), token: root, json: ["enabled": false]).status == 404)
            #expect(try await harness.send(.put, "/api/admin/widgets/nope", token: root, json: ["enabled": false]).status == 404)
            #expect(try await Self.stored(harness, tenant) == nil)
            #expect(try await harness.value("SELECT count(*)::int FROM widget_configs", as: Int.self) == 0)
            let byRoot = try await harness.send(.put, Self.path(tenant), token: root, json: ["enabled": false])
            #expect(byRoot.status == 200)
            #expect(try await Self.stored(harness, tenant) == ##"{"enabled": false}"##)
        }
    }
}
