/// The most common passwords (OWASP ASVS 2.1.7: refuse passwords found in breach corpora), from
/// `CommonPasswords+List.swift`. Compared lower-cased, so `Password1` counts as `password1`.
enum CommonPasswords {
    /// Built once, on first use.
    static let set: Set<Substring> = Set(list.split(separator: "\n"))

    static func contains(_ password: String) -> Bool {
        set.contains(Substring(password.lowercased()))
    }
}
