/// Slugs no tenant may take: they name the platform's own pages and hosts (`admin.example.com`,
/// `/t/api`…) or would pass for them in a link.
extension Slug {
    static let reserved: Set<String> = [
        "admin", "administrator", "api", "app", "apps", "assets", "auth", "billing", "blog", "cdn", "chat", "dashboard", "dev",
        "docs", "help", "internal", "login", "logout", "mail", "me", "new", "null", "oauth", "onboarding", "platform", "public",
        "root", "settings", "signup", "smtp", "staging", "static", "status", "support", "system", "tenancy", "tenant", "tenants",
        "test", "undefined", "widget", "widgets", "www", "ws",
    ]

    /// Why `slug` cannot be a new tenant's, or nil when it can.
    static func problem(_ slug: String) -> String? {
        guard slug == make(from: slug), slug.count <= maxLength else {
            return "must be 1 to \(maxLength) lower-case letters, digits and single dashes, starting and ending with a letter or digit"
        }
        return reserved.contains(slug) ? "is reserved" : nil
    }
}
