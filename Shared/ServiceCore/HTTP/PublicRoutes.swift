import HTTPTypes

/// A service that answers public routes through the gateway.
package enum PublicService: String, Sendable, CaseIterable {
    case auth, tenancy, billing, chat

    /// The case's position, 0 to 3: a small number to hash or to keep a bit for.
    package var ordinal: UInt8 {
        switch self {
        case .auth: 0
        case .tenancy: 1
        case .billing: 2
        case .chat: 3
        }
    }

    /// Hashes the case, not its raw string (what a raw-valued enum hashes by default): the gateway
    /// looks upstreams up by service on every request.
    package func hash(into hasher: inout Hasher) {
        hasher.combine(ordinal)
    }
}

/// What a caller must show on a public route, and so which limit the gateway counts it against.
package enum PublicAccess: Sendable, Equatable {
    /// Credential endpoints (login, register…): no token, the strict per-address limit.
    case credentials
    /// No credential: the per-address public limit.
    case open
    /// A widget session (`X-Session-ID`), checked by chat; without one, an access token.
    case session
    /// A verified access token, limited per tenant.
    case authenticated
}

/// One public endpoint.
package struct PublicRoute: Sendable, Equatable {
    package let method: HTTPRequest.Method
    /// Segments; `:name` stands for exactly one non-empty segment.
    package let path: String
    package let service: PublicService
    package let access: PublicAccess

    init(_ method: HTTPRequest.Method, _ path: String, _ service: PublicService, _ access: PublicAccess) {
        self.method = method
        self.path = path
        self.service = service
        self.access = access
    }
}

/// Every public endpoint of the suite, in one place. The gateway routes, authorises and answers
/// 405 from this table; each service refuses to start with a public route missing from it; a test
/// holds `docs/openapi.yaml` to it. An endpoint cannot be added in one place and forgotten in another.
package enum PublicRoutes {
    package static let all: [PublicRoute] = [
        .init(.post, "/api/auth/login", .auth, .credentials),
        .init(.post, "/api/auth/signup", .auth, .credentials),
        .init(.post, "/api/auth/refresh", .auth, .credentials),
        .init(.post, "/api/auth/logout", .auth, .authenticated),
        .init(.post, "/api/auth/verify-email", .auth, .credentials),
        .init(.post, "/api/auth/resend-verification", .auth, .credentials),
        .init(.post, "/api/auth/forgot-password", .auth, .credentials),
        .init(.post, "/api/auth/reset-password", .auth, .credentials),
        .init(.post, "/api/auth/logout-all", .auth, .authenticated),
        .init(.get, "/api/auth/me", .auth, .authenticated),
        .init(.patch, "/api/auth/me", .auth, .authenticated),
        .init(.post, "/api/auth/change-password", .auth, .authenticated),
        .init(.get, "/api/auth/users", .auth, .authenticated),
        .init(.put, "/api/auth/users/:userID/role", .auth, .authenticated),
        .init(.delete, "/api/auth/users/:userID", .auth, .authenticated),
        .init(.get, "/api/auth/signing-keys", .auth, .authenticated),
        .init(.post, "/api/auth/signing-keys/rotate", .auth, .authenticated),
        .init(.post, "/api/auth/invite", .auth, .authenticated),
        .init(.get, "/api/auth/invitations", .auth, .authenticated),
        .init(.delete, "/api/auth/invitations/:invitationID", .auth, .authenticated),
        .init(.post, "/api/auth/accept-invitation", .auth, .credentials),
        .init(.post, "/api/auth/api-keys", .auth, .authenticated),
        .init(.get, "/api/auth/api-keys", .auth, .authenticated),
        .init(.delete, "/api/auth/api-keys/:keyID", .auth, .authenticated),
        .init(.get, "/.well-known/jwks.json", .auth, .open),
        .init(.post, "/api/onboarding/register", .tenancy, .credentials),
        .init(.get, "/api/onboarding/status", .tenancy, .authenticated),
        // tenancy: onboarding checklist and trial (issue 8, part A)
        .init(.put, "/api/onboarding/complete-step", .tenancy, .authenticated),
        .init(.get, "/api/onboarding/trial-info", .tenancy, .authenticated),
        // Themes and branding (issue 8, part B).
        .init(.get, "/api/tenants/:slug/theme", .tenancy, .open),
        .init(.get, "/api/admin/tenants/:tenantID/theme", .tenancy, .authenticated),
        .init(.put, "/api/admin/tenants/:tenantID/theme", .tenancy, .authenticated),
        .init(.post, "/api/branding/upload", .tenancy, .authenticated),
        .init(.get, "/api/branding/assets", .tenancy, .authenticated),
        .init(.delete, "/api/branding/assets/:assetID", .tenancy, .authenticated),
        .init(.put, "/api/branding/apply", .tenancy, .authenticated),
        .init(.get, "/api/public/branding/:assetID", .tenancy, .open),
        // Agent configuration, widget configuration, tenant profile and settings (issue 8, part C).
        .init(.get, "/api/admin/tenants/:tenantID/agent-config", .tenancy, .authenticated),
        .init(.put, "/api/admin/tenants/:tenantID/agent-config", .tenancy, .authenticated),
        .init(.get, "/api/admin/widgets/:tenantID", .tenancy, .authenticated),
        .init(.put, "/api/admin/widgets/:tenantID", .tenancy, .authenticated),
        .init(.get, "/api/public/widgets/:tenantID/config", .tenancy, .open),
        .init(.get, "/api/tenant/profile", .tenancy, .authenticated),
        .init(.put, "/api/tenant/settings", .tenancy, .authenticated),
        // Platform administration (issue 8, part D).
        .init(.get, "/api/admin/tenants", .tenancy, .authenticated),
        .init(.post, "/api/admin/tenants", .tenancy, .authenticated),
        .init(.get, "/api/admin/tenants/:tenantID", .tenancy, .authenticated),
        .init(.put, "/api/admin/tenants/:tenantID", .tenancy, .authenticated),
        .init(.get, "/api/admin/tenants/:tenantID/usage", .tenancy, .authenticated),
        .init(.get, "/api/admin/dashboard/stats", .tenancy, .authenticated),
        .init(.get, "/api/payments/plans", .billing, .open),
        .init(.get, "/api/payments/subscription", .billing, .authenticated),
        // billing core: plans, configuration, payments, webhook and the subscription lifecycle (issue 9, part B1)
        .init(.get, "/api/payments/plans/:planID", .billing, .open),
        .init(.get, "/api/payments/config", .billing, .open),
        .init(.get, "/api/payments/payment-methods", .billing, .open),
        .init(.get, "/api/payments/card-issuers/:paymentMethodID", .billing, .open),
        .init(.post, "/api/payments/create-preference", .billing, .authenticated),
        .init(.post, "/api/payments/process-payment", .billing, .authenticated),
        .init(.get, "/api/payments/payment/:paymentID", .billing, .authenticated),
        .init(.get, "/api/payments/invoices", .billing, .authenticated),
        .init(.post, "/api/payments/refund", .billing, .authenticated),
        .init(.post, "/api/payments/mark-paid", .billing, .authenticated),
        .init(.post, "/api/payments/cancel", .billing, .authenticated),
        .init(.post, "/api/payments/change-plan", .billing, .authenticated),
        .init(.post, "/api/payments/webhook", .billing, .open),
        // billing: Stripe's checkout, customer portal and webhook
        .init(.post, "/api/payments/checkout", .billing, .authenticated),
        .init(.post, "/api/payments/portal", .billing, .authenticated),
        .init(.post, "/api/payments/webhook/stripe", .billing, .open),
        // billing: entitlements and usage
        .init(.get, "/api/payments/usage", .billing, .authenticated),
        .init(.post, "/api/sessions/init", .chat, .open),
        .init(.post, "/api/sessions/validate", .chat, .session),
        .init(.post, "/chatkit", .chat, .session),
        // chat: conversations, history and traces (issue 10, conversations part)
        .init(.post, "/api/chat", .chat, .session),
        .init(.post, "/api/public/widgets/:tenantID/chat", .chat, .session),
        .init(.get, "/api/conversations", .chat, .session),
        .init(.get, "/api/conversations/:conversationID/messages", .chat, .session),
        .init(.get, "/api/admin/tenants/:tenantID/traces", .chat, .authenticated),
        // chat: knowledge base and attachments (issue 10, part C1)
        .init(.post, "/api/knowledge-base/upload", .chat, .authenticated),
        .init(.get, "/api/knowledge-base/files", .chat, .authenticated),
        .init(.get, "/api/knowledge-base/files/:fileID/status", .chat, .authenticated),
        .init(.delete, "/api/knowledge-base/files/:fileID", .chat, .authenticated),
        .init(.post, "/api/knowledge-base/files/:fileID/reprocess", .chat, .authenticated),
        .init(.post, "/attachments", .chat, .session),
        .init(.get, "/attachments/:attachmentID", .chat, .open),
        .init(.get, "/attachments/:attachmentID/preview", .chat, .open),
        .init(.delete, "/attachments/:attachmentID", .chat, .session),
        // chat: seed 001's knowledge administration (issue 10, remaining part)
        .init(.post, "/api/admin/knowledge/upload", .chat, .authenticated),
        .init(.post, "/api/admin/knowledge/ingest", .chat, .authenticated),
        .init(.get, "/api/admin/knowledge/stats", .chat, .authenticated),
        .init(.delete, "/api/admin/knowledge/documents", .chat, .authenticated),
    ]

    /// The routes declared for a path (every method it answers), or nil for a path no service has.
    package static func routes(for path: String) -> [PublicRoute]? {
        index.routes(for: path)
    }

    private static let index = RouteIndex(all)
}

/// Path lookup that costs a dictionary probe for literal paths; patterns are tried segment by segment.
private struct RouteIndex: Sendable {
    private var literal: [String: [PublicRoute]] = [:]
    private var patterns: [(segments: [Substring], routes: [PublicRoute])] = []

    init(_ routes: [PublicRoute]) {
        for route in routes {
            if route.path.contains("/:") {
                let segments = route.path.split(separator: "/", omittingEmptySubsequences: false)
                if let index = patterns.firstIndex(where: { $0.segments == segments }) {
                    patterns[index].routes.append(route)
                } else {
                    patterns.append((segments, [route]))
                }
            } else {
                literal[route.path, default: []].append(route)
            }
        }
    }

    func routes(for path: String) -> [PublicRoute]? {
        var path = Substring(path)
        // On bytes: `count` and `hasSuffix` walk characters, a tenth of the gateway's route lookup.
        // A trailing "/" is a character of its own.
        if path.utf8.count > 1, path.utf8.last == UInt8(ascii: "/") { path = path[..<path.utf8.index(before: path.endIndex)] }
        if let routes = literal[String(path)] { return routes }
        guard !patterns.isEmpty else { return nil }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        for pattern in patterns where pattern.segments.count == segments.count {
            let matches = zip(pattern.segments, segments).allSatisfy { expected, actual in
                expected.hasPrefix(":") ? !actual.isEmpty : expected == actual
            }
            if matches { return pattern.routes }
        }
        return nil
    }
}
