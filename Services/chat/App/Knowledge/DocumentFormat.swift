import Foundation

/// The formats the knowledge base reads. A file's format is named by its extension and must be
/// borne out by its bytes: a PDF starts `%PDF-`, a DOCX is a zip archive, the text formats are
/// UTF-8 without NUL bytes. A file whose bytes say otherwise is refused at upload.
enum DocumentFormat: String, Sendable, CaseIterable {
    case txt, md, csv, html, docx, pdf

    /// Extensions the client's file name may end with, per format.
    static func named(_ filename: String) -> DocumentFormat? {
        guard let dot = filename.lastIndex(of: ".") else { return nil }
        switch filename[filename.index(after: dot)...].lowercased() {
        case "txt", "text": return .txt
        case "md", "markdown": return .md
        case "csv": return .csv
        case "html", "htm": return .html
        case "docx": return .docx
        case "pdf": return .pdf
        default: return nil
        }
    }

    var mimeType: String {
        switch self {
        case .txt: "text/plain"
        case .md: "text/markdown"
        case .csv: "text/csv"
        case .html: "text/html"
        case .docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        case .pdf: "application/pdf"
        }
    }

    static let zipMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]
    static let pdfMagic = Array("%PDF-".utf8)

    /// Whether `bytes` are what this format's files hold; the reason when they are not.
    func mismatch(_ bytes: some Collection<UInt8>) -> String? {
        switch self {
        case .pdf:
            return bytes.starts(with: Self.pdfMagic) ? nil : "is not a PDF file (its content does not start with %PDF-)"
        case .docx:
            return bytes.starts(with: Self.zipMagic) ? nil : "is not a DOCX file (its content is not a zip archive)"
        case .txt, .md, .csv, .html:
            if bytes.starts(with: Self.pdfMagic) || bytes.starts(with: Self.zipMagic) {
                return "is named as \(rawValue.uppercased()) text but its content is a binary document"
            }
            if bytes.contains(0) || String(validating: Array(bytes), as: UTF8.self) == nil {
                return "is named as \(rawValue.uppercased()) text but its content is not UTF-8 text"
            }
            return nil
        }
    }
}
