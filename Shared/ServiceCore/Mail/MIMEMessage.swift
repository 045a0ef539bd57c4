import Foundation

/// A `MailMessage` written out as the bytes an SMTP `DATA` carries: RFC 5322 headers and a MIME
/// body, with CRLF line endings and every line well under the 998-octet limit. Dot-stuffing is
/// left to the SMTP client (libcurl does it).
///
/// Bodies are UTF-8 in quoted-printable, which keeps links readable in the raw source and
/// survives relays that are not 8-bit clean; a subject or display name beyond printable ASCII
/// becomes RFC 2047 encoded-words.
package enum MIMEMessage {
    package static func render(_ message: MailMessage, from: MailAddress) -> [UInt8] {
        var headers = [
            "Date: \(rfc5322Date(message.date))",
            "From: \(mailbox(from))",
            "To: \(message.to)",
            "Subject: " + headerText(message.subject, firstLineUsed: "Subject: ".count),
            "Message-ID: <\(message.id.uuidString.lowercased())@\(from.domain)>",
            // RFC 3834: automatic mail, so vacation responders and the like do not answer it.
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
        ]
        let body: String
        if let html = message.htmlBody {
            // "=_" never occurs in quoted-printable text, so the boundary cannot appear in a part.
            let boundary = "=_" + message.id.uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            headers.append("Content-Type: multipart/alternative;\r\n boundary=\"\(boundary)\"")
            body = [
                "--\(boundary)", part("text/plain", message.textBody),
                "--\(boundary)", part("text/html", html),
                "--\(boundary)--", "",
            ].joined(separator: "\r\n")
        } else {
            headers.append(contentsOf: partHeaders("text/plain"))
            // SMTP needs the text to end with a line break; one the text already has is not doubled.
            let text = quotedPrintable(message.textBody)
            body = text.hasSuffix("\r\n") || text.isEmpty ? text : text + "\r\n"
        }
        return Array((headers.joined(separator: "\r\n") + "\r\n\r\n" + body).utf8)
    }

    private static func partHeaders(_ type: String) -> [String] {
        ["Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: quoted-printable"]
    }

    private static func part(_ type: String, _ text: String) -> String {
        partHeaders(type).joined(separator: "\r\n") + "\r\n\r\n" + quotedPrintable(text)
    }

    /// `From`'s value: the bare address, or a display name (quoted or encoded as needed) and `<address>`.
    static func mailbox(_ address: MailAddress) -> String {
        guard let name = address.displayName else { return address.address }
        let atext = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "!#$%&'*+-/=?^_`{|}~ "))
        if name.unicodeScalars.allSatisfy({ $0.isASCII && atext.contains($0) }) && !name.contains("=?") {
            return "\(name) <\(address.address)>"
        }
        if name.unicodeScalars.allSatisfy({ $0.isASCII }) {
            let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return "\"\(escaped)\" <\(address.address)>"
        }
        return encodedWords(name) + " <\(address.address)>"
    }

    /// Unstructured header text: as is when it is short printable ASCII that no decoder could take
    /// for an encoded-word, otherwise encoded-words folded onto lines of their own.
    static func headerText(_ text: String, firstLineUsed: Int) -> String {
        let plain = text.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) }
        if plain && !text.contains("=?") && firstLineUsed + text.utf8.count <= 78 { return text }
        return encodedWords(text)
    }

    /// RFC 2047 `B` encoded-words of whole characters, each at most 64 octets long, joined by
    /// folding whitespace (which decoders drop between adjacent encoded-words).
    static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk: [UInt8] = []
        func flush() {
            guard !chunk.isEmpty else { return }
            words.append("=?UTF-8?B?\(Data(chunk).base64EncodedString())?=")
            chunk = []
        }
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            // 39 octets make 52 base64 characters: with "=?UTF-8?B?" and "?=", 64 per word.
            if chunk.count + bytes.count > 39 { flush() }
            chunk += bytes
        }
        flush()
        return words.isEmpty ? "" : words.joined(separator: "\r\n ")
    }

    /// Quoted-printable (RFC 2045 §6.7) of `text` as UTF-8: line breaks of any style become CRLF,
    /// lines are cut with soft breaks to at most 76 characters, and whitespace ending a line is encoded.
    static func quotedPrintable(_ text: String) -> String {
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false)
        return lines.map { line in
            var output = ""
            var current = 0
            let bytes = Array(line.utf8)
            for (index, byte) in bytes.enumerated() {
                let isLast = index == bytes.count - 1
                let literal = (byte >= 33 && byte <= 126 && byte != UInt8(ascii: "=")) || ((byte == 0x20 || byte == 0x09) && !isLast)
                let token = literal ? String(UnicodeScalar(byte)) : "=\(hexDigits[Int(byte >> 4)])\(hexDigits[Int(byte & 0x0F)])"
                // Leave room for the "=" of a soft break, unless this token ends the line.
                if current + token.count > (isLast ? 76 : 75) {
                    output += "=\r\n"
                    current = 0
                }
                output += token
                current += token.count
            }
            return output
        }.joined(separator: "\r\n")
    }

    private static let hexDigits = Array("0123456789ABCDEF")

    /// `Tue, 01 Dec 2026 10:00:00 +0000`, always in UTC and English whatever the locale.
    static func rfc5322Date(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let parts = calendar.dateComponents([.weekday, .day, .month, .year, .hour, .minute, .second], from: date)
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let day = "\(weekdays[parts.weekday! - 1]), \(twoDigits(parts.day!)) \(months[parts.month! - 1]) \(parts.year!)"
        return "\(day) \(twoDigits(parts.hour!)):\(twoDigits(parts.minute!)):\(twoDigits(parts.second!)) +0000"
    }
}
