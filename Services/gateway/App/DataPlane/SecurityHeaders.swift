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

    /// Which of `fields` (by index) an answer already carries.
    struct Set {
        private var bits: UInt8 = 0

        mutating func insert(_ index: Int) { bits |= 1 << index }
        func contains(_ index: Int) -> Bool { bits & (1 << index) != 0 }
        var isEmpty: Bool { bits == 0 }
    }
}
