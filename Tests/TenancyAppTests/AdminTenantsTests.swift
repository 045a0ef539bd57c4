import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `/api/admin/tenants` and `/api/admin/tenants/{id}` against tenancy's real database: listing,
/// reading and changing tenants, who may do which, and every bad input refused with nothing changed.
@Suite("tenancy platform administration", .timeLimit(.minutes(3)))
struct AdminTenantsTests {
    typealias H = AdminHarness
    typealias TenantList = AdminTenantsController.TenantList

    @Test func superAdminsListFilterSearchAndPage() async throws {
        try await TestStack.with(.auth, .tenancy) { stack in
            let percent = try await H.seed(stack, name: "100% Pure Shop")
            let underscore = try await H.seed(stack, name: "Under_score Ltd")
            let suspended = try await H.seed(stack, name: "Sleepy Co", status: "suspended")
            let trial = try await H.seed(stack, name: "Trial Co", slug: "trial-co-x", status: "trial")
            try await H.seed(stack, name: "Half made", status: "provisioning")
            let admin = try await H.token(stack, .superAdmin)

            let all = try await H.send(stack, .GET, "/api/admin/tenants", token: admin)
            #expect(all.status == 200, "\(all.text)")
            let list = try all.json(TenantList.self)
            // Registration's half-made tenants are nobody's business here.
            #expect(list.total == 4 && list.tenants.count == 4 && list.limit == 50 && list.offset == 0)
            #expect(!list.tenants.contains { $0.name == "Half made" })
            let view = try #require(list.tenants.first { $0.id == trial.uuidString.lowercased() })
            #expect(view.slug == "trial-co-x" && view.status == "trial" && view.rateLimitPerMinute == 60 && view.monthlyMessageQuota == 1000)
            #expect(view.allowedOrigins == [])

            let bySuspended = try await H.send(stack, .GET, "/api/admin/tenants?status=suspended", token: admin).json(TenantList.self)
            #expect(bySuspended.total == 1 && bySuspended.tenants.map(\.id) == [suspended.uuidString.lowercased()])

            // LIKE's wildcards are taken literally: `%` and `_` match only themselves.
            let byPercent = try await H.send(stack, .GET, "/api/admin/tenants?search=%25", token: admin).json(TenantList.self)
            #expect(byPercent.tenants.map(\.id) == [percent.uuidString.lowercased()])
            let byUnderscore = try await H.send(stack, .GET, "/api/admin/tenants?search=_", token: admin).json(TenantList.self)
            #expect(byUnderscore.tenants.map(\.id) == [underscore.uuidString.lowercased()])
            let bySlug = try await H.send(stack, .GET, "/api/admin/tenants?search=TRIAL-CO", token: admin).json(TenantList.self)
            #expect(bySlug.total == 1)
            let nothing = try await H.send(stack, .GET, "/api/admin/tenants?search=%5C", token: admin).json(TenantList.self)
            #expect(nothing.total == 0 && nothing.tenants.isEmpty)

            // Pages keep the total; newest first.
            let page = try await H.send(stack, .GET, "/api/admin/tenants?limit=1&offset=1", token: admin).json(TenantList.self)
            #expect(page.total == 4 && page.tenants.count == 1 && page.limit == 1 && page.offset == 1)
            #expect(page.tenants[0].id == list.tenants[1].id)
            let beyond = try await H.send(stack, .GET, "/api/admin/tenants?offset=10", token: admin).json(TenantList.self)
            #expect(beyond.total == 4 && beyond.tenants.isEmpty)
        }
    }

    @Test func listingRefusesBadQueries() async throws {
        try await TestStack.with(.auth, .tenancy) { stack in
            try await H.seed(stack, name: "Some shop")
            let admin = try await H.token(stack, .superAdmin)
            for (query, field) in [
                ("limit=0", "limit"), ("limit=201", "limit"), ("limit=abc", "limit"), ("limit=-1", "limit"), ("offset=-1", "offset"),
                ("offset=1000001", "offset"), ("offset=1.5", "offset"), ("status=provisioning", "status"), ("status=ACTIVE", "status"),
                ("status=", "status"), ("search=" + String(repeating: "a", count: 101), "search"), ("search=a%0Ab", "search"),
            ] {
                H.expectError(try await H.send(stack, .GET, "/api/admin/tenants?\(query)", token: admin), 422, "VALIDATION_ERROR", fields: [field])
            }
        }
    }

    @Test func platformPathsAreForSuperAdminsOnly() async throws {
        try await TestStack.with(.auth, .tenancy) { stack in
            let tenant = try await H.seed(stack, name: "Acme")
            let before = try await H.count(stack, "SELECT count(*)::int FROM tenants")
            let create = ["name": "Sneaky", "slug": "sneaky", "owner_email": "x@example.com"]
            for role in [Role.owner, .admin, .user] {
                let token = try await H.token(stack, role, of: tenant)
                H.expectError(try await H.send(stack, .GET, "/api/admin/tenants", token: token), 403, "ROLE_NOT_ALLOWED")
                H.expectError(try await H.send(stack, .POST, "/api/admin/tenants", token: token, json: create), 403, "ROLE_NOT_ALLOWED")
                H.expectError(try await H.send(stack, .GET, "/api/admin/dashboard/stats", token: token), 403, "ROLE_NOT_ALLOWED")
            }
            for path in ["/api/admin/tenants", "/api/admin/dashboard/stats", "/api/admin/tenants/\(tenant)", "/api/admin/tenants/\(tenant)/usage"] {
                #expect(try await H.send(stack, .GET, path, token: nil).status == 401)
            }
            #expect(try await H.send(stack, .PUT, "/api/admin/tenants/\(tenant)", token: nil, json: ["name": "X"]).status == 401)
            #expect(try await H.count(stack, "SELECT count(*)::int FROM tenants") == before)
            #expect(try await H.row(stack, tenant)?.name == "Acme")
        }
    }

    @Test func tenantAdminsSeeAndRenameOnlyTheirOwnTenant() async throws {
        try await TestStack.with(.auth, .tenancy) { stack in
            let mine = try await H.seed(stack, name: "Mine")
            let theirs = try await H.seed(stack, name: "Theirs", origins: ["https://theirs.example"])
            let theirsBefore = try await H.row(stack, theirs)
            let owner = try await H.token(stack, .owner, of: mine)
            let admin = try await H.token(stack, .admin, of: mine)
            let user = try await H.token(stack, .user, of: mine)

            let read = try await H.send(stack, .GET, "/api/admin/tenants/\(mine)", token: owner)
            #expect(read.status == 200)
            #expect(try read.json(H.TenantView.self).name == "Mine")
            // Another tenant's id is as unknown as one that never existed, on every path.
            for token in [owner, admin] {
                H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(theirs)", token: token), 404, "TENANT_NOT_FOUND")
                H.expectError(
                    try await H.send(stack, .PUT, "/api/admin/tenants/\(theirs)", token: token, json: ["name": "Stolen"]), 404, "TENANT_NOT_FOUND"
                )
                H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(theirs)/usage", token: token), 404, "TENANT_NOT_FOUND")
            }
            #expect(try await H.row(stack, theirs) == theirsBefore)
            // A plain user manages nothing.
            H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(mine)", token: user), 403, "ROLE_NOT_ALLOWED")
            H.expectError(try await H.send(stack, .PUT, "/api/admin/tenants/\(mine)", token: user, json: ["name": "Mine!"]), 403, "ROLE_NOT_ALLOWED")

            // An admin renames the tenant and sets its origins (normalised, duplicates dropped).
            let renamed = try await H.send(
                stack, .PUT, "/api/admin/tenants/\(mine)", token: admin,
                json: UpdateBody(name: "  Mine Renamed ", allowedOrigins: ["https://Shop.Example.com:443", "https://shop.example.com", "http://localhost:5173"])
            )
            #expect(renamed.status == 200, "\(renamed.text)")
            let view = try renamed.json(H.TenantView.self)
            #expect(view.name == "Mine Renamed" && view.allowedOrigins == ["https://shop.example.com", "http://localhost:5173"])
            #expect(try await H.row(stack, mine)?.name == "Mine Renamed")

            // Status and limits are the platform's: refused, and nothing of the request is applied.
            let before = try await H.row(stack, mine)
            for body in [
                UpdateBody(name: "Sneaky", status: "suspended"), UpdateBody(name: "Sneaky", rateLimitPerMinute: 10_000),
                UpdateBody(name: "Sneaky", monthlyMessageQuota: 99_999), UpdateBody(status: "trial"),
            ] {
                H.expectError(try await H.send(stack, .PUT, "/api/admin/tenants/\(mine)", token: admin, json: body), 403, "ROLE_NOT_ALLOWED")
            }
            #expect(try await H.row(stack, mine) == before)
            // Sending back the values it has is no change: a full form saves.
            let same = try await H.send(
                stack, .PUT, "/api/admin/tenants/\(mine)", token: owner,
                json: UpdateBody(name: "Mine Again", status: "active", rateLimitPerMinute: 60, monthlyMessageQuota: 1000)
            )
            #expect(same.status == 200, "\(same.text)")
            #expect(try await H.row(stack, mine)?.name == "Mine Again")
            #expect(try await H.outboxTypes(stack) == ["tenancy.tenant_renamed", "tenancy.tenant_renamed"])
        }
    }

    @Test func superAdminsChangeEverythingAndEachChangeWritesItsEvent() async throws {
        try await TestStack.with(.auth, .tenancy) { stack in
            let tenant = try await H.seed(stack, name: "Acme", slug: "acme-events")
            let admin = try await H.token(stack, .superAdmin)
            let path = "/api/admin/tenants/\(tenant)"

            let changed = try await H.send(
                stack, .PUT, path, token: admin,
                json: UpdateBody(name: "Acme Two", status: "suspended", allowedOrigins: [], rateLimitPerMinute: 5, monthlyMessageQuota: 0)
            )
            #expect(changed.status == 200, "\(changed.text)")
            #expect(try await H.row(stack, tenant) == H.Row(name: "Acme Two", status: "suspended", allowedOrigins: [], rateLimitPerMinute: 5, monthlyMessageQuota: 0))
            #expect(try await H.outboxTypes(stack) == ["tenancy.tenant_renamed", "tenancy.tenant_suspended"])
            let payload = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
                try await client.query("SELECT payload::text FROM outbox_events WHERE type = 'tenancy.tenant_suspended'").collect()
                    .map { try $0.decode(String.self) }
            }
            let event = try JSONCoding.decoder.decode(TenantChanged.self, from: Data(try #require(payload.first).utf8))
            #expect(event.tenantId == tenant && event.name == "Acme Two" && event.slug == "acme-events" && event.status == "suspended")
            #expect(try await H.count(stack, "SELECT count(*)::int FROM outbox_deliveries") == 4)

            // Limits alone write no event (the gateway follows them from its feed); reactivation does.
            #expect(try await H.send(stack, .PUT, path, token: admin, json: UpdateBody(rateLimitPerMinute: 7)).status == 200)
            #expect(try await H.outboxTypes(stack).count == 2)
            #expect(try await H.send(stack, .PUT, path, token: admin, json: UpdateBody(status: "trial")).status == 200)
            #expect(try await H.outboxTypes(stack).last == "tenancy.tenant_reactivated")
            // An empty change changes nothing and says so by the unchanged tenant.
            let empty = try await H.send(stack, .PUT, path, token: admin, raw: "{}")
            #expect(empty.status == 200)
            #expect(try empty.json(H.TenantView.self).status == "trial")
            #expect(try await H.outboxTypes(stack).count == 3)
        }
    }

    @Test func updatesRefuseBadInputAndChangeNothing() async throws {
        try await TestStack.with(.auth, .tenancy) { stack in
            let tenant = try await H.seed(stack, name: "Acme", origins: ["https://acme.example"])
            let admin = try await H.token(stack, .superAdmin)
            let path = "/api/admin/tenants/\(tenant)"
            let before = try await H.row(stack, tenant)
            let tooMany = (0...50).map { "https://s\($0).example.com" }
            let cases: [(String, String)] = [
                (#"{"name": ""}"#, "name"), (#"{"name": "   "}"#, "name"), ("{\"name\": \"\(String(repeating: "n", count: 101))\"}", "name"),
                (#"{"name": "two\nlines"}"#, "name"), (#"{"status": "provisioning"}"#, "status"), (#"{"status": "deleted"}"#, "status"),
                (#"{"status": "Active"}"#, "status"), (#"{"allowed_origins": ["http://shop.example.com"]}"#, "allowed_origins"),
                (#"{"allowed_origins": ["https://shop.example.com/path"]}"#, "allowed_origins"),
                (#"{"allowed_origins": ["https://shop.example.com/"]}"#, "allowed_origins"),
                (#"{"allowed_origins": ["ftp://shop.example.com"]}"#, "allowed_origins"), (#"{"allowed_origins": ["https://a..b"]}"#, "allowed_origins"),
                (#"{"allowed_origins": ["https://user@shop.example.com"]}"#, "allowed_origins"),
                (#"{"allowed_origins": ["https://shop.example.com:0"]}"#, "allowed_origins"),
                (#"{"allowed_origins": ["https://shop.example.com:65536"]}"#, "allowed_origins"), (#"{"allowed_origins": ["*"]}"#, "allowed_origins"),
                (#"{"allowed_origins": [""]}"#, "allowed_origins"),
                ("{\"allowed_origins\": [\(tooMany.map { "\"\($0)\"" }.joined(separator: ","))]}", "allowed_origins"),
                (#"{"rate_limit_per_minute": 0}"#, "rate_limit_per_minute"), (#"{"rate_limit_per_minute": 1000001}"#, "rate_limit_per_minute"),
                (#"{"monthly_message_quota": -1}"#, "monthly_message_quota"), (#"{"monthly_message_quota": 100000001}"#, "monthly_message_quota"),
            ]
            for (body, field) in cases {
                H.expectError(try await H.send(stack, .PUT, path, token: admin, raw: body), 422, "VALIDATION_ERROR", fields: [field])
            }
            // Wrong types and broken JSON are refused before any rule is looked at.
            for body in [#"{"rate_limit_per_minute": "ten"}"#, #"{"rate_limit_per_minute": 1e30}"#, #"{"allowed_origins": "https://a.example"}"#,
                         #"{"name": 5}"#, #"{"name": "x""#, "[]"] {
                let answer = try await H.send(stack, .PUT, path, token: admin, raw: body)
                #expect(answer.status == 400 || answer.status == 422, "\(body): \(answer.text)")
                #expect(try answer.error().code.isEmpty == false)
            }
            #expect(try await H.send(stack, .PUT, path, token: admin, raw: "").status == 400)
            // Unknown and malformed ids.
            H.expectError(try await H.send(stack, .PUT, "/api/admin/tenants/\(UUID())", token: admin, json: ["name": "X"]), 404, "TENANT_NOT_FOUND")
            H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/not-a-uuid", token: admin), 404, "TENANT_NOT_FOUND")
            #expect(try await H.row(stack, tenant) == before)
            #expect(try await H.outboxTypes(stack).isEmpty)
        }
    }

    struct UpdateBody: Encodable {
        var name: String?
        var status: String?
        var allowedOrigins: [String]?
        var rateLimitPerMinute: Int?
        var monthlyMessageQuota: Int?
    }
}
