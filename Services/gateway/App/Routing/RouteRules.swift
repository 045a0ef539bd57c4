import HTTPTypes

/// How the gateway treats a request: where it goes, what it must show, which limit it counts against.
enum Access: Equatable {
    /// Credential endpoints (login, signup, register…): no token, the strict per-IP limit.
    case credentials
    /// Open endpoints: no token, the per-IP public limit.
    case open
    /// Widget endpoints called with `X-Session-ID`: limited per session; chat checks the session.
    case session(String)
    /// Everything else: a verified access token, limited per tenant.
    case authenticated
}

/// The gateway's routing table (DESIGN.md): path prefix → owning service, and the public exceptions.
enum RouteRules {
    private static let prefixes: [(prefix: String, upstream: Upstream.Name)] = [
        ("/api/auth", .auth),
        ("/.well-known/jwks.json", .auth),
        ("/api/onboarding", .tenancy),
        ("/api/tenants", .tenancy),
        ("/api/tenant", .tenancy),
        ("/api/branding", .tenancy),
        ("/api/admin/tenants", .tenancy),
        ("/api/admin/dashboard", .tenancy),
        ("/api/payments", .billing),
        ("/api/billing", .billing),
        ("/api/sessions", .chat),
        ("/chatkit", .chat),
        ("/api/chat", .chat),
        ("/api/conversations", .chat),
        ("/api/knowledge-base", .chat),
        ("/attachments", .chat),
        ("/api/admin/escalation", .chat),
        ("/api/ws", .chat),
    ]

    private static let credentialEndpoints: [(HTTPRequest.Method, String)] = [
        (.post, "/api/auth/login"),
        (.post, "/api/auth/signup"),
        (.post, "/api/auth/refresh"),
        (.post, "/api/auth/forgot-password"),
        (.post, "/api/auth/reset-password"),
        (.post, "/api/auth/verify-email"),
        (.post, "/api/onboarding/register"),
    ]

    private static let openEndpoints: [(HTTPRequest.Method, String)] = [
        (.get, "/.well-known/jwks.json"),
        (.get, "/api/payments/plans"),
        (.get, "/api/payments/config"),
        (.get, "/api/payments/payment-methods"),
        (.get, "/api/payments/card-issuers/*"),
        (.post, "/api/payments/webhook"),
        (.post, "/api/billing/webhook"),
        (.get, "/api/tenants/*/theme"),
        (.post, "/api/sessions/init"),
        (.get, "/attachments/*"),
        (.get, "/attachments/*/preview"),
    ]

    /// Endpoints whose credential is the widget session rather than a token.
    private static let sessionEndpoints: [(HTTPRequest.Method, String)] = [
        (.post, "/api/sessions/validate"),
        (.post, "/chatkit"),
        (.post, "/attachments"),
        (.delete, "/attachments/*"),
    ]

    static func upstream(for path: String) -> Upstream.Name? {
        for (prefix, upstream) in prefixes where path == prefix || path.hasPrefix(prefix + "/") {
            return upstream
        }
        return nil
    }

    /// A method and path pattern split into segments once; `*` stands for exactly one segment.
    struct Pattern {
        let method: HTTPRequest.Method
        let segments: [Substring]

        init(_ method: HTTPRequest.Method, _ pattern: String) {
            self.method = method
            self.segments = pattern.split(separator: "/", omittingEmptySubsequences: false)
        }

        func matches(_ method: HTTPRequest.Method, _ path: [Substring]) -> Bool {
            method == self.method && path.count == segments.count
                && zip(path, segments).allSatisfy { segment, expected in expected == "*" ? !segment.isEmpty : segment == expected }
        }
    }

    private static let credentialPatterns = credentialEndpoints.map(Pattern.init)
    private static let openPatterns = openEndpoints.map(Pattern.init)
    private static let sessionPatterns = sessionEndpoints.map(Pattern.init)

    static func access(method: HTTPRequest.Method, path: String, sessionID: String?) -> Access {
        var segments = path.split(separator: "/", omittingEmptySubsequences: false)
        if segments.count > 2, segments.last?.isEmpty == true { segments.removeLast() }
        if credentialPatterns.contains(where: { $0.matches(method, segments) }) { return .credentials }
        if openPatterns.contains(where: { $0.matches(method, segments) }) { return .open }
        if let sessionID, !sessionID.isEmpty, sessionPatterns.contains(where: { $0.matches(method, segments) }) {
            return .session(sessionID)
        }
        return .authenticated
    }
}
