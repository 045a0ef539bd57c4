/// What a widget user may attach, decided by the file's bytes (the name's extension only tells
/// text formats apart): PNG, JPEG, GIF and WebP images, PDF, and UTF-8 text.
enum AttachmentFormat: String, Sendable {
    case png, jpeg, gif, webp, pdf, text

    var mimeType: String {
        switch self {
        case .png: "image/png"
        case .jpeg: "image/jpeg"
        case .gif: "image/gif"
        case .webp: "image/webp"
        case .pdf: "application/pdf"
        case .text: "text/plain; charset=utf-8"
        }
    }

    var isImage: Bool { self != .pdf && self != .text }

    /// The format of `bytes`, or nil when they are none of the accepted ones.
    static func detect(_ bytes: [UInt8]) -> AttachmentFormat? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: Array("GIF87a".utf8)) || bytes.starts(with: Array("GIF89a".utf8)) { return .gif }
        if bytes.count >= 12, bytes.starts(with: Array("RIFF".utf8)), Array(bytes[8..<12]) == Array("WEBP".utf8) { return .webp }
        if bytes.starts(with: Array("%PDF-".utf8)) { return .pdf }
        if !bytes.contains(0), String(validating: bytes, as: UTF8.self) != nil { return .text }
        return nil
    }
}
