/// Seed 000's security headers, on every answer the gateway gives or relays.
enum SecurityHeaders {
    static let fields: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("X-XSS-Protection", "1; mode=block"),
        ("Referrer-Policy", "no-referrer"),
    ]
}
