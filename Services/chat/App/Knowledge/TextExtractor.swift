import Foundation
import NIOPosix

/// A stored document's plain text, by format. Parsing is CPU work on up to 50 MB, so it runs on
/// the NIO thread pool, never on an event loop; PDFs go through `pdftotext` in a child process.
struct TextExtractor: Sendable {
    var pdf: PDFText
    /// Text beyond this many bytes is refused (it would make tens of thousands of chunks).
    var maxTextBytes: Int

    func text(of data: Data, format: DocumentFormat) async throws -> String {
        let text: String
        switch format {
        case .pdf:
            text = try await pdf.text(of: data)
        case .docx:
            text = try await NIOThreadPool.singleton.runIfActive { try DOCXText.text(of: data) }
        case .html:
            text = try await NIOThreadPool.singleton.runIfActive { HTMLText.text(of: try Self.utf8(data)) }
        case .txt, .md, .csv:
            text = try Self.utf8(data)
        }
        guard text.utf8.count <= maxTextBytes else { throw ExtractionFailure("the document's text is larger than \(maxTextBytes) bytes") }
        return text
    }

    /// UTF-8 text without its byte-order mark; NUL bytes (which PostgreSQL text cannot hold) refused.
    static func utf8(_ data: Data) throws(ExtractionFailure) -> String {
        var bytes = data[...]
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        guard !bytes.contains(0), let text = String(validating: Array(bytes), as: UTF8.self) else {
            throw ExtractionFailure("the document is not UTF-8 text")
        }
        return text
    }
}
