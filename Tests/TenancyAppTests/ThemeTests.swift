import Foundation
import PostgresNIO
import InternalAPI
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// Seed 000's tenant theme against the real tenancy service and database: the public read with
/// its cache headers, the admins' partial update and every way a field can be wrong.
@Suite("tenancy themes")
struct ThemeTests {
    static func withTenants(_ body: (LookTenants) async throws -> Void) async throws {
        try await TestStack.with(.auth, .tenancy) { stack in try await body(try await LookTenants.make(stack)) }
    }

    static func theme(_ response: TestResponse) throws -> [String: JSONValue] {
        try JSONCoding.decoder.decode([String: JSONValue].self, from: response.body)
    }

    @Test func publicThemeAnswersEveryFieldWithDefaults() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let response = try await TestHTTP.send(.GET, tenants.tenancy + "/api/tenants/\(tenant.slug)/theme")
            #expect(response.status == 200)
            let theme = try Self.theme(response)
            #expect(Set(theme.keys) == Set(ThemeFields.all.map(\.name)))
            for field in ThemeFields.all { #expect(theme[field.name] == field.defaultValue, "\(field.name)") }
            #expect(theme["primary_color"] == .string("#2563eb"))
            #expect(theme["logo_url"] == .null)
            let tag = try #require(response.header("ETag"))
            #expect(tag.hasPrefix("\"") && tag.hasSuffix("\"") && !tag.hasPrefix("W/"))
            #expect(response.header("Cache-Control") == "public, max-age=60")
            #expect(response.header("Content-Type")?.hasPrefix("application/json") == true)
            // Reading created nothing.
            #expect(try await tenants.overrides(tenant) == nil)

            let trial = try await tenants.create(status: "trial")
            #expect(try await TestHTTP.send(.GET, tenants.tenancy + "/api/tenants/\(trial.slug)/theme").status == 200)
        }
    }

    @Test func unknownSuspendedAndUnfinishedTenantsAre404() async throws {
        try await Self.withTenants { tenants in
            let suspended = try await tenants.create(status: "suspended")
            let provisioning = try await tenants.create(status: "provisioning")
            for slug in ["no-such-shop", suspended.slug, provisioning.slug, String(repeating: "a", count: 300)] {
                let response = try await TestHTTP.send(.GET, tenants.tenancy + "/api/tenants/\(slug)/theme")
                #expect(response.status == 404, "\(slug)")
                #expect(try response.error().code == "TENANT_NOT_FOUND")
            }
        }
    }

    @Test func ifNoneMatchAnswers304() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let url = tenants.tenancy + "/api/tenants/\(tenant.slug)/theme"
            let first = try await TestHTTP.send(.GET, url)
            let tag = try #require(first.header("ETag"))
            let matching = [tag, "W/\(tag)", "\"other\", \(tag)", "\"a,b\" ,W/\(tag)", "*"]
            for header in matching {
                let response = try await TestHTTP.send(.GET, url, headers: ["If-None-Match": header])
                #expect(response.status == 304, "\(header)")
                #expect(response.body.isEmpty)
                #expect(response.header("ETag") == tag)
                #expect(response.header("Cache-Control") == "public, max-age=60")
            }
            for header in ["\"other\"", "W/\"other\"", "not-a-tag", "\(tag.dropLast())", ""] {
                let response = try await TestHTTP.send(.GET, url, headers: ["If-None-Match": header])
                #expect(response.status == 200, "\(header)")
                #expect(response.body == first.body)
            }
            // A change makes a new tag; the old one no longer matches.
            let headers = try await tenants.headers(tenant)
            let put = try await TestHTTP.send(.PUT, tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme", headers: headers, json: ["density": "compact"])
            #expect(put.status == 200)
            let changed = try await TestHTTP.send(.GET, url, headers: ["If-None-Match": tag])
            #expect(changed.status == 200)
            #expect(changed.header("ETag") != tag)
            #expect(try Self.theme(changed)["density"] == .string("compact"))
        }
    }

    @Test func partialUpdatesChangeOnlyWhatIsSent() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant, role: .admin)
            let url = tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme"

            let first = try await TestHTTP.send(.PUT, url, headers: headers, body: ##"{"primary_color": "#ABC", "density": "compact", "font_size_base": 18}"##)
            #expect(first.status == 200)
            let theme = try Self.theme(first)
            #expect(theme["primary_color"] == .string("#abc"))
            #expect(theme["density"] == .string("compact"))
            #expect(theme["font_size_base"] == .integer(18))
            #expect(theme["accent_color"] == .string("#7c3aed"))
            #expect(try await tenants.overrides(tenant) == ##"{"density": "compact", "primary_color": "#abc", "font_size_base": 18}"##)

            let prompts = #"[{"title": "Hours", "prompt": "When are you open?"}]"#
            let second = try await TestHTTP.send(
                .PUT, url, headers: headers,
                body: ##"{"accent_color": "#11223344", "quick_prompts": \##(prompts), "logo_url": "https://cdn.example.com/logo.png", "custom_css": ".header { color: red; background: url(data:image/png;base64,iVBORw0KGgo=) }"}"##
            )
            #expect(second.status == 200)
            let merged = try Self.theme(second)
            #expect(merged["primary_color"] == .string("#abc"))
            #expect(merged["accent_color"] == .string("#11223344"))
            #expect(merged["logo_url"] == .string("https://cdn.example.com/logo.png"))
            #expect(merged["quick_prompts"] == .array([.object(["title": .string("Hours"), "prompt": .string("When are you open?")])]))

            // null puts a field back to its default.
            let reset = try await TestHTTP.send(.PUT, url, headers: headers, body: #"{"primary_color": null, "logo_url": null}"#)
            #expect(reset.status == 200)
            #expect(try Self.theme(reset)["primary_color"] == .string("#2563eb"))
            #expect(try Self.theme(reset)["logo_url"] == .null)
            let stored = try #require(try await tenants.overrides(tenant))
            #expect(!stored.contains("primary_color") && !stored.contains("logo_url") && stored.contains("accent_color"))

            // The admin read and the public read agree.
            let admin = try await TestHTTP.send(.GET, url, headers: headers)
            let visitor = try await TestHTTP.send(.GET, tenants.tenancy + "/api/tenants/\(tenant.slug)/theme")
            #expect(try Self.theme(admin) == Self.theme(visitor))
            #expect(try Self.theme(admin)["density"] == .string("compact"))
        }
    }

    /// Every rule of every field: each bad value is 422 naming the field, and nothing is stored.
    @Test func everyBadFieldIsRefusedAndChangesNothing() async throws {
        let long = { (count: Int) in String(repeating: "a", count: count) }
        let cases: [(String, String)] = [
            ("primary_color", ##""red""##), ("primary_color", ##""#12""##), ("primary_color", ##""#ggg""##), ("primary_color", ##""#1234567""##),
            ("primary_color", "5"), ("accent_color", ##""123456""##), ("background_color", ##""#12345""##),
            ("surface_background_color", #""rgb(0,0,0)""#), ("surface_foreground_color", "true"),
            ("color_scheme", #""blue""#), ("color_scheme", #""Light""#), ("border_radius", #""circle""#), ("density", "1"),
            ("surface_colors_enabled", #""yes""#), ("accent_enabled", "1"), ("tinted_grayscale", #""false""#),
            ("font_size_base", "11"), ("font_size_base", "25"), ("font_size_base", "16.5"), ("font_size_base", #""16""#),
            ("attachments_max_count", "0"), ("attachments_max_count", "11"), ("attachments_max_size", "100"),
            ("attachments_max_size", "99999999999"), ("attachments_enabled", #""true""#),
            ("font_family", #""Arial; } body { display: none""#), ("font_family", #""""#), ("font_family_mono", "\"\(long(201))\""),
            ("welcome_message", "\"\(long(501))\""), ("font_family", #""Noto Sans JP ゴシック""#), ("placeholder_text", "\"\(long(151))\""),
            ("placeholder_text", #""two\nlines""#), ("disclaimer_text", "\"\(long(501))\""), ("disclaimer_text", #""bell\u0007""#),
            ("logo_url", #""http://cdn.example.com/logo.png""#), ("logo_url", #""javascript:alert(1)""#),
            ("logo_url", #""https://cdn.example.com/a b.png""#), ("logo_url", #""/api/public/branding/not-a-uuid""#),
            ("logo_url", #""https://user:pass@cdn.example.com/x.png""#), ("favicon_url", #""https://x.example/a)b""#),
            ("favicon_url", #""//cdn.example.com/x.png""#), ("favicon_url", "\"https://example.com/\(long(2050))\""),
            ("quick_prompts", #"{"title": "a"}"#), ("quick_prompts", #"[{"title": "a"}]"#),
            ("quick_prompts", #"[{"title": "a", "prompt": "b", "x": 1}]"#), ("quick_prompts", #"[{"title": "", "prompt": "b"}]"#),
            ("quick_prompts", "[" + Array(repeating: #"{"title": "a", "prompt": "b"}"#, count: 9).joined(separator: ",") + "]"),
            ("composer_tools", #"["search"]"#), ("composer_tools", "[" + Array(repeating: "{}", count: 11).joined(separator: ",") + "]"),
            ("composer_tools", "[{\"x\": \"\(long(2100))\"}]"), ("composer_tools", "{}"),
            ("feedback_enabled", "0"), ("retry_enabled", #""no""#), ("header_enabled", "[]"),
            ("custom_css", "5"), ("custom_css", "\"\(long(10_241))\""), ("colour_scheme", #""dark""#),
        ]
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let url = tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme"
            #expect(try await TestHTTP.send(.PUT, url, headers: headers, json: ["density": "spacious"]).status == 200)
            let before = try await tenants.overrides(tenant)
            for (field, value) in cases {
                // Alongside a good field, which must not be stored either.
                let good = field == "density" ? #""border_radius": "pill""# : #""density": "compact""#
                let response = try await TestHTTP.send(.PUT, url, headers: headers, body: #"{\#(good), "\#(field)": \#(value)}"#)
                #expect(response.status == 422, "\(field) = \(value.prefix(40))")
                #expect(try response.error().fields?[field]?.isEmpty == false, "\(field) = \(value.prefix(40))")
            }
            // Several bad fields at once are all named.
            let many = try await TestHTTP.send(.PUT, url, headers: headers, body: #"{"primary_color": "red", "density": "tight", "font_size_base": 99}"#)
            #expect(many.status == 422)
            #expect(Set(try many.error().fields?.keys.map { $0 } ?? []) == ["primary_color", "density", "font_size_base"])
            #expect(try await tenants.overrides(tenant) == before)
        }
    }

    @Test func customCSSThatLoadsOrRunsContentIsRefused() async throws {
        let refused = [
            "@import url(https://evil.example/x.css);", "@import 'x.css';", "@IMPORT 'x.css';", "@\\69mport 'x.css';",
            "a { background: url(https://evil.example/x.png) }", "a { background: url('//evil.example/x.png') }",
            "a { background: URL(x.png) }", "a { background: \\75 rl(x.png) }", "a { background: \\000075rl(x.png) }",
            "a { background: u/**/rl(x.png) }", "a { background: u\\rl(x.png) }", "a { background: url(data:image/svg+xml;base64,PHN2Zz4=) }",
            "a { background: url(data:text/html,<b>) }", "a { width: expression(alert(1)) }", "a { width: ex/* */pression(alert(1)) }",
            "a { width: \\65 xpression(alert(1)) }", "</style><script>alert(1)</script>", "a { b: '</STYLE>' }",
            "a { background: javascript:alert(1) }", "a { background: java\\73 cript:alert(1) }", "a { behavior: url(x.htc) }",
            "a { behavior : x }", "a { -moz-binding: x }", "a { -MOZ-\\62 inding: x }", "a { background: image-set('x.png' 1x) }",
        ]
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let url = tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme"
            for css in refused {
                let response = try await TestHTTP.send(.PUT, url, headers: headers, json: ["custom_css": css])
                #expect(response.status == 422, "\(css)")
                #expect(try response.error().fields?["custom_css"]?.isEmpty == false, "\(css)")
            }
            #expect(try await tenants.overrides(tenant) == nil)
            let fine = ".chat-header { color: #123456; background: url( \"data:image/png;base64,iVBORw0KGgo=\" ); } /* a comment */"
            let accepted = try await TestHTTP.send(.PUT, url, headers: headers, json: ["custom_css": fine])
            #expect(accepted.status == 200)
            #expect(try Self.theme(accepted)["custom_css"] == .string(fine))
        }
    }

    @Test func onlyTheTenantsManagersAndSuperAdminsReachItsTheme() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let other = try await tenants.create()
            let url = tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme"
            let body = #"{"density": "compact"}"#

            #expect(try await TestHTTP.send(.GET, url).status == 401)
            #expect(try await TestHTTP.send(.PUT, url, body: body).status == 401)
            let member = try await TestHTTP.send(.PUT, url, headers: try await tenants.headers(tenant, role: .user), body: body)
            #expect(member.status == 403)
            #expect(try member.error().code == "ROLE_NOT_ALLOWED")
            // Another tenant's admin: 404, as for a tenant that does not exist.
            let stranger = try await tenants.headers(other, role: .owner)
            for response in [
                try await TestHTTP.send(.GET, url, headers: stranger), try await TestHTTP.send(.PUT, url, headers: stranger, body: body),
            ] {
                #expect(response.status == 404)
                #expect(try response.error().code == "TENANT_NOT_FOUND")
            }
            #expect(try await tenants.overrides(tenant) == nil)

            let superAdmin = try await tenants.headers(other, role: .superAdmin)
            #expect(try await TestHTTP.send(.PUT, url, headers: superAdmin, body: body).status == 200)
            #expect(try await tenants.overrides(tenant) == #"{"density": "compact"}"#)
            for missing in [UUID().uuidString, "not-a-uuid"] {
                let response = try await TestHTTP.send(.PUT, tenants.tenancy + "/api/admin/tenants/\(missing)/theme", headers: superAdmin, body: body)
                #expect(response.status == 404)
            }
            #expect(try await tenants.count("SELECT count(*)::int FROM tenant_themes") == 1)
        }
    }

    @Test func malformedBodiesAre400() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let url = tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme"
            for body in [#"{"density": "#, "[1, 2]", "\"compact\"", #"{"density": "compact", "density": "normal"}"#] {
                #expect(try await TestHTTP.send(.PUT, url, headers: headers, body: body).status == 400, "\(body)")
            }
            let huge = try await TestHTTP.send(.PUT, url, headers: headers, body: #"{"custom_css": ""# + String(repeating: "a", count: 1_100_000) + #""}"#)
            #expect(huge.status == 413)
            #expect(try await tenants.overrides(tenant) == nil)
        }
    }
}
