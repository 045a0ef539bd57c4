import Foundation
import ZIPFoundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// The text of a DOCX file: the paragraphs of `word/document.xml`, read from the zip archive with
/// bounds, so an archive built to explode (a zip bomb, or one with countless entries) fails cleanly
/// instead of filling memory: at most `maxEntries` entries are looked at and at most
/// `maxDocumentBytes` of the document part are decompressed, whatever the archive declares.
enum DOCXText {
    static let maxEntries = 2_000
    static let maxDocumentBytes = 32 * 1_048_576

    static func text(of data: Data, maxDocumentBytes: Int = maxDocumentBytes) throws(ExtractionFailure) -> String {
        let archive: Archive
        do {
            archive = try Archive(data: data, accessMode: .read, pathEncoding: nil)
        } catch {
            throw ExtractionFailure("the DOCX file is not a readable zip archive")
        }
        var document: Entry?
        var count = 0
        for entry in archive {
            count += 1
            if count > maxEntries { throw ExtractionFailure("the DOCX archive has more than \(maxEntries) entries") }
            if entry.path == "word/document.xml" { document = entry }
        }
        guard let document else { throw ExtractionFailure("the DOCX file has no word/document.xml") }
        if Int64(document.uncompressedSize) > Int64(maxDocumentBytes) {
            throw ExtractionFailure("the DOCX document is larger than \(maxDocumentBytes) bytes uncompressed")
        }
        var xml = Data()
        do {
            _ = try archive.extract(document, skipCRC32: false) { part in
                // The declared size may lie: count what really comes out.
                guard xml.count + part.count <= maxDocumentBytes else { throw BombError() }
                xml.append(part)
            }
        } catch is BombError {
            throw ExtractionFailure("the DOCX document is larger than \(maxDocumentBytes) bytes uncompressed")
        } catch {
            throw ExtractionFailure("the DOCX archive is damaged")
        }
        return try paragraphs(ofDocumentXML: xml)
    }

    private struct BombError: Error {}

    /// `w:t` runs joined, `w:tab` as a tab, `w:br`/`w:cr` as line breaks, a line per `w:p`. Word
    /// never writes a DTD, so a document with one (entity expansion) is refused unread.
    static func paragraphs(ofDocumentXML xml: Data) throws(ExtractionFailure) -> String {
        if xml.range(of: Data("<!DOCTYPE".utf8)) != nil || xml.range(of: Data("<!doctype".utf8)) != nil {
            throw ExtractionFailure("the DOCX document declares a DTD")
        }
        let parser = XMLParser(data: xml)
        parser.shouldResolveExternalEntities = false
        let collector = Collector()
        parser.delegate = collector
        guard parser.parse() else { throw ExtractionFailure("the DOCX document is not well-formed XML") }
        return collector.text
    }

    private final class Collector: NSObject, XMLParserDelegate {
        var text = ""
        var inText = false

        func parser(
            _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            switch elementName {
            case "w:t": inText = true
            case "w:tab": text += "\t"
            case "w:br", "w:cr": text += "\n"
            default: break
            }
        }

        func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
            switch elementName {
            case "w:t": inText = false
            case "w:p": text += "\n"
            default: break
            }
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if inText { text += string }
        }
    }
}

/// Why a document's text could not be read: the document's fault, so retrying will not help; the
/// reason becomes its `processing_error`.
struct ExtractionFailure: Error, CustomStringConvertible {
    var reason: String

    init(_ reason: String) { self.reason = reason }

    var description: String { reason }
}
