import Foundation

/// One email to one person, as a service hands it to the mail outbox. The sender (`From`) is the
/// deployment's (`MAIL_FROM`), never the caller's.
package struct MailMessage: Sendable, Equatable {
    /// Also the outbox row's id and the `Message-ID`, so every attempt at one mail carries the same
    /// id and a receiver that got it twice (see `MailSender`) can tell.
    package var id: UUID
    package var to: String
    package var subject: String
    package var textBody: String
    /// When given, the mail is `multipart/alternative` with the text as the first part.
    package var htmlBody: String?
    /// The `Date` header: when the mail was written, not when an attempt finally got through.
    package var date: Date

    package init(id: UUID = UUID(), to: String, subject: String, textBody: String, htmlBody: String? = nil, date: Date = Date()) {
        self.id = id
        self.to = to
        self.subject = subject
        self.textBody = textBody
        self.htmlBody = htmlBody
        self.date = date
    }

    /// Refuses, as a permanent `MailTransportError`, a recipient that is not a plain address and a
    /// subject with control characters: a CR or LF there would let the text start headers of its own.
    package func validate() throws {
        try MailAddress.validate(to, field: "recipient")
        if subject.unicodeScalars.contains(where: MailAddress.isControl) {
            throw MailTransportError.invalidMessage("subject contains a line break or another control character")
        }
    }
}

/// An address with an optional display name, as `MAIL_FROM` gives it: `no-reply@example.com` or
/// `Acme Support <support@example.com>`.
package struct MailAddress: Sendable, Equatable, CustomStringConvertible {
    package var address: String
    package var displayName: String?

    package init(address: String, displayName: String? = nil) throws {
        try Self.validate(address, field: "address")
        if let displayName, displayName.unicodeScalars.contains(where: Self.isControl) {
            throw MailTransportError.invalidMessage("display name contains a line break or another control character")
        }
        self.address = address
        self.displayName = displayName.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Reads `address` or `Display Name <address>`.
    package init(parsing raw: String) throws {
        let text = raw.trimmingCharacters(in: .whitespaces)
        guard text.hasSuffix(">"), let open = text.lastIndex(of: "<") else {
            try self.init(address: text)
            return
        }
        var name = text[..<open].trimmingCharacters(in: .whitespaces)
        if name.count >= 2, name.hasPrefix("\""), name.hasSuffix("\"") { name = String(name.dropFirst().dropLast()) }
        try self.init(address: String(text[text.index(after: open)..<text.index(before: text.endIndex)]), displayName: name)
    }

    /// The part after the `@`, which names the sending domain in `Message-ID`s.
    package var domain: Substring { address[address.index(after: address.lastIndex(of: "@")!)...] }

    package var description: String { displayName.map { "\($0) <\(address)>" } ?? address }

    /// A plain `local@domain` in printable ASCII, without the characters that would let it be read
    /// as several addresses, a display name, a comment or another header (quoted local parts and
    /// internationalised addresses are not supported: nothing this suite sends needs them).
    static func validate(_ address: String, field: String) throws {
        let scalars = address.unicodeScalars
        if scalars.contains(where: isControl) {
            throw MailTransportError.invalidMessage("\(field) contains a line break or another control character")
        }
        let forbidden = Set("<>()[]\\,;:\" ".unicodeScalars)
        guard let at = address.lastIndex(of: "@"), address.utf8.count <= 254,
            scalars.allSatisfy({ $0.isASCII && !forbidden.contains($0) }),
            case let local = address[..<at], case let domain = address[address.index(after: at)...],
            !local.isEmpty, local.utf8.count <= 64, !local.contains("@"), !domain.isEmpty, !domain.hasPrefix("."), !domain.hasSuffix(".")
        else {
            throw MailTransportError.invalidMessage("\(field) is not a plain email address")
        }
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F || scalar == "\u{2028}" || scalar == "\u{2029}" || (0x80...0x9F).contains(scalar.value)
    }
}
