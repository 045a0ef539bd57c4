import Foundation
import HTTPTypes
import NIOHTTP1
import ServiceCore
import Testing

@testable import GatewayApp

@Suite("gateway rules")
struct GatewayRulesTests {
    @Test func pathsAreNormalised() {
        #expect(PathNormalizer.normalize("/api/auth/me") == "/api/auth/me")
        #expect(PathNormalizer.normalize("/api/auth/me/") == "/api/auth/me/")
        #expect(PathNormalizer.normalize("/api/x/.hidden") == "/api/x/.hidden")
        #expect(PathNormalizer.normalize("/api/x/a.b") == "/api/x/a.b")
        #expect(PathNormalizer.normalize("api") == nil)
        #expect(PathNormalizer.normalize("//api//auth/./me") == "/api/auth/me")
        #expect(PathNormalizer.normalize("/api/auth/../../internal/owners") == "/internal/owners")
        #expect(PathNormalizer.normalize("/api/auth/%2e%2e/%2e%2e/internal/owners") == "/internal/owners")
        #expect(PathNormalizer.normalize("/%69nternal/x") == "/internal/x")
        #expect(PathNormalizer.normalize("/api/%2Finternal") == "/api/internal")
        #expect(PathNormalizer.normalize("/..") == nil)
        #expect(PathNormalizer.normalize("/a%zz") == nil)
        #expect(PathNormalizer.normalize("/a%00b") == nil)
        #expect(PathNormalizer.normalize("/a\\b") == nil)
        #expect(PathNormalizer.normalize("/%2569nternal") == nil)
        #expect(PathNormalizer.isInternal("/internal"))
        #expect(PathNormalizer.isInternal("/INTERNAL/owners"))
        #expect(!PathNormalizer.isInternal("/internals"))
        #expect(PathNormalizer.encodeForUpstream("/api/tenants/a b/theme") == "/api/tenants/a%20b/theme")
        #expect(PathNormalizer.encodeForUpstream("/api/tenants/acme-1.x_y~z/theme") == "/api/tenants/acme-1.x_y~z/theme")
        #expect(PathNormalizer.encodeForUpstream("/api/x/a;b?c#d%e") == "/api/x/a%3Bb%3Fc%23d%25e")
        #expect(PathNormalizer.encodeForUpstream("/api/x/é") == "/api/x/%C3%A9")
        // The byte mask that skips Foundation keeps exactly what Foundation's character set keeps.
        for byte in UInt8(0)...UInt8(255) {
            let kept = byte < 128 && String(UnicodeScalar(byte)).addingPercentEncoding(withAllowedCharacters: PathNormalizer.upstreamAllowed)
                == String(UnicodeScalar(byte))
            #expect(PathNormalizer.keptAsIs(byte) == kept, "byte \(byte)")
        }
        #expect(PathNormalizer.isPlain("/api/auth/me") && PathNormalizer.isPlain("/a.b/c.") && PathNormalizer.isPlain("/"))
        #expect(!PathNormalizer.isPlain("") && !PathNormalizer.isPlain("a/b") && !PathNormalizer.isPlain("/a//b") && !PathNormalizer.isPlain("/a/.b"))
        #expect(!PathNormalizer.isPlain("/a%20b") && !PathNormalizer.isPlain("/a\\b") && !PathNormalizer.isPlain("/a\u{0}b"))
        #expect(ProxyHandler.split("/api/x?y=1&z") == ("/api/x", "y=1&z"))
        #expect(ProxyHandler.split("/api/x") == ("/api/x", nil))
        #expect(ProxyHandler.split("http://host:80/api/x?q") == ("/api/x", "q"))
        #expect(ProxyHandler.split("http://host?q") == ("/", "q"))
        #expect(ProxyHandler.split("*") == (nil, nil))
        for method in [HTTPMethod.GET, .POST, .PUT, .PATCH, .DELETE, .HEAD, .OPTIONS, .TRACE, .CONNECT, .RAW(value: "PURGE")] {
            #expect(ProxyHandler.requestMethod(method) == HTTPRequest.Method(method.rawValue), "\(method)")
        }
    }

    @Test func thePublicTablePicksServiceAccessAndAllowedMethods() {
        func decide(_ method: HTTPRequest.Method, _ path: String, session: String? = nil) -> RouteRules.Decision {
            RouteRules.decide(method: method, path: path, sessionID: session)
        }
        #expect(decide(.post, "/api/auth/login") == .forward(.auth, .credentials))
        #expect(decide(.post, "/api/auth/login/") == .forward(.auth, .credentials))
        #expect(decide(.get, "/.well-known/jwks.json") == .forward(.auth, .open))
        #expect(decide(.post, "/api/onboarding/register") == .forward(.tenancy, .credentials))
        #expect(decide(.get, "/api/payments/plans") == .forward(.billing, .open))
        #expect(decide(.head, "/api/payments/plans") == .forward(.billing, .open))
        #expect(decide(.get, "/api/payments/subscription", session: "sess_1") == .forward(.billing, .authenticated))
        #expect(decide(.post, "/chatkit", session: "sess_1") == .forward(.chat, .session("sess_1")))
        #expect(decide(.post, "/chatkit", session: "") == .forward(.chat, .authenticated))
        #expect(decide(.post, "/chatkit") == .forward(.chat, .authenticated))
        // Known paths, other methods: 405 naming what the path has, before any credential is asked for.
        #expect(decide(.get, "/api/auth/login") == .methodNotAllowed(allow: "POST"))
        #expect(decide(.trace, "/api/auth/me") == .methodNotAllowed(allow: "GET, PATCH"))
        #expect(decide(.put, "/api/auth/users/42/role") == .forward(.auth, .authenticated))
        #expect(decide(.get, "/api/auth/users/42/role") == .methodNotAllowed(allow: "PUT"))
        #expect(decide(.delete, "/api/auth/users/42") == .forward(.auth, .authenticated))
        #expect(decide(HTTPRequest.Method("QUERY")!, "/chatkit") == .methodNotAllowed(allow: "POST"))
        #expect(decide(.options, "/api/auth/login") == .options(allow: "POST"))
        #expect(decide(.post, "/health") == .methodNotAllowed(allow: "GET"))
        // Unknown paths, even under a service's prefix, never reach a service.
        #expect(decide(.get, "/api/auth/loginx") == .notFound)
        #expect(decide(.get, "/api/auth") == .notFound)
        #expect(decide(.get, "/chatkitty") == .notFound)
        #expect(decide(.get, "/") == .notFound)
    }

    /// `docs/openapi.yaml` documents exactly the public table plus the gateway's own routes, and
    /// every operation with a path parameter documents the gateway's 400 `BAD_PATH` (an id the
    /// gateway cannot normalise, such as an encoded `\`, never reaches a service).
    @Test func theOpenAPIDocumentListsExactlyThePublicRoutes() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let yaml = try String(contentsOf: root.appendingPathComponent("docs/openapi.yaml"), encoding: .utf8)
        var documented: Set<String> = []
        var answering400: Set<String> = []
        var currentPath: String?
        var currentOperation: String?
        var inPaths = false
        for line in yaml.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            guard inPaths else { continue }
            if let first = line.first, first != " ", first != "#" { break }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                currentOperation = nil
                currentPath = String(line.dropFirst(2).dropLast())
                    .replacingOccurrences(of: "{", with: ":").replacingOccurrences(of: "}", with: "")
            } else if let currentPath, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast().uppercased()
                currentOperation = nil
                if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(method) {
                    currentOperation = "\(method) \(currentPath)"
                    documented.insert("\(method) \(currentPath)")
                }
            } else if let currentOperation, line.hasPrefix("        '400':") {
                answering400.insert(currentOperation)
            }
        }
        let declared = Set(PublicRoutes.all.map { "\($0.method.rawValue) \($0.path)" } + RouteRules.gatewayPaths.map { "GET \($0)" })
        #expect(documented.subtracting(declared).isEmpty, "documented but not routed: \(documented.subtracting(declared).sorted())")
        #expect(declared.subtracting(documented).isEmpty, "routed but not documented: \(declared.subtracting(documented).sorted())")
        let withoutBadPath = documented.filter { $0.contains(":") }.subtracting(answering400)
        #expect(withoutBadPath.isEmpty, "path parameters without a documented 400 BAD_PATH: \(withoutBadPath.sorted())")
    }
}
