/// The raster formats a branding asset may be, told apart by their bytes alone.
enum ImageFormat: String, Sendable, CaseIterable {
    case png, jpeg, gif, webp, ico

    var mimeType: String {
        switch self {
        case .png: "image/png"
        case .jpeg: "image/jpeg"
        case .gif: "image/gif"
        case .webp: "image/webp"
        case .ico: "image/vnd.microsoft.icon"
        }
    }

    var fileExtension: String { self == .jpeg ? "jpg" : rawValue }
}

struct InspectedImage: Sendable, Equatable {
    var format: ImageFormat
    var width: Int
    var height: Int
}

/// Why a file is not an acceptable image; each reads as a message about the `file` field.
enum ImageProblem: Error, Equatable, CustomStringConvertible {
    case empty
    case svg
    case unrecognised
    case truncated(ImageFormat)
    case corrupt(ImageFormat)
    case dimensions(width: Int, height: Int)

    var description: String {
        switch self {
        case .empty: "is empty"
        case .svg: "is an SVG image, which is not accepted (it can carry scripts); upload PNG, JPEG, WebP, ICO or GIF"
        case .unrecognised: "is not a PNG, JPEG, WebP, ICO or GIF image"
        case .truncated(let format): "is a truncated \(format.rawValue.uppercased()) image (its headers promise more bytes than were sent)"
        case .corrupt(let format): "is not a valid \(format.rawValue.uppercased()) image"
        case .dimensions(let width, let height):
            "is \(width)×\(height) pixels; each side must be 1 to \(ImageInspector.maxSide) and the area at most \(ImageInspector.maxPixels) pixels"
        }
    }
}

/// Reads an image's format and size from its headers only: nothing is decoded, so a small file
/// declaring a huge size (a decompression bomb) is refused by what it declares. Also walks the
/// container (PNG chunks, JPEG segments, GIF blocks, the RIFF and ICO directories) far enough to
/// see that every declared length is present: a truncated file is refused.
enum ImageInspector {
    static let maxSide = 4_096
    static let maxPixels = 16_777_216

    static func inspect(_ bytes: [UInt8]) throws(ImageProblem) -> InspectedImage {
        guard !bytes.isEmpty else { throw .empty }
        let reader = ByteReader(bytes)
        let image: InspectedImage
        if reader.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
            image = try png(reader)
        } else if reader.starts(with: [0xFF, 0xD8, 0xFF]) {
            image = try jpeg(reader)
        } else if reader.starts(with: Array("GIF87a".utf8)) || reader.starts(with: Array("GIF89a".utf8)) {
            image = try gif(reader)
        } else if reader.starts(with: Array("RIFF".utf8)), reader.count >= 12, reader.bytes[8..<12].elementsEqual("WEBP".utf8) {
            image = try webp(reader)
        } else if reader.starts(with: [0x00, 0x00, 0x01, 0x00]) {
            image = try ico(reader)
        } else if looksLikeSVG(bytes) {
            throw .svg
        } else {
            throw .unrecognised
        }
        guard (1...maxSide).contains(image.width), (1...maxSide).contains(image.height), image.width * image.height <= maxPixels else {
            throw .dimensions(width: image.width, height: image.height)
        }
        return image
    }

    /// Signature, then chunks (length, type, data, CRC) up to `IEND`; `IHDR` first.
    static func png(_ reader: ByteReader) throws(ImageProblem) -> InspectedImage {
        var position = 8
        var size: (Int, Int)?
        while true {
            guard let length = reader.be32(position), reader.count >= position + 8 else { throw .truncated(.png) }
            guard length <= 0x7FFF_FFFF, position + 12 + length <= reader.count else { throw .truncated(.png) }
            let type = String(decoding: reader.bytes[(position + 4)..<(position + 8)], as: UTF8.self)
            if size == nil {
                guard type == "IHDR", length == 13, let width = reader.be32(position + 8), let height = reader.be32(position + 12)
                else { throw .corrupt(.png) }
                size = (width, height)
            }
            if type == "IEND" { break }
            position += 12 + length
        }
        return InspectedImage(format: .png, width: size!.0, height: size!.1)
    }

    /// Segments up to start-of-scan, the size from the SOFn segment, and an end-of-image marker after the scan.
    static func jpeg(_ reader: ByteReader) throws(ImageProblem) -> InspectedImage {
        var position = 2
        var size: (Int, Int)?
        while true {
            guard position + 2 <= reader.count else { throw .truncated(.jpeg) }
            guard reader.bytes[position] == 0xFF else { throw .corrupt(.jpeg) }
            let marker = reader.bytes[position + 1]
            if marker == 0xFF {
                position += 1
                continue
            }
            if marker == 0x01 || (0xD0...0xD8).contains(marker) {
                position += 2
                continue
            }
            guard marker != 0xD9 else { throw .corrupt(.jpeg) }
            guard let length = reader.be16(position + 2) else { throw .truncated(.jpeg) }
            guard length >= 2 else { throw .corrupt(.jpeg) }
            guard position + 2 + length <= reader.count else { throw .truncated(.jpeg) }
            if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                guard length >= 7, let height = reader.be16(position + 5), let width = reader.be16(position + 7) else { throw .corrupt(.jpeg) }
                size = (width, height)
            }
            position += 2 + length
            if marker == 0xDA { break }
        }
        guard let size else { throw .corrupt(.jpeg) }
        var end = position
        var ended = false
        while end + 1 < reader.count {
            if reader.bytes[end] == 0xFF, reader.bytes[end + 1] == 0xD9 {
                ended = true
                break
            }
            end += 1
        }
        guard ended else { throw .truncated(.jpeg) }
        return InspectedImage(format: .jpeg, width: size.0, height: size.1)
    }

    /// Header, logical screen, colour table, then extension and image blocks up to the trailer.
    /// Every frame's own size counts too: a small screen can hold a huge frame.
    static func gif(_ reader: ByteReader) throws(ImageProblem) -> InspectedImage {
        guard let width = reader.le16(6), let height = reader.le16(8), reader.count >= 13 else { throw .truncated(.gif) }
        var largest = (width, height)
        var position = 13 + colourTableSize(reader.bytes[10])
        func skipSubBlocks(_ position: inout Int) throws(ImageProblem) {
            while true {
                guard position < reader.count else { throw .truncated(.gif) }
                let size = Int(reader.bytes[position])
                position += 1 + size
                if size == 0 { return }
            }
        }
        while true {
            guard position < reader.count else { throw .truncated(.gif) }
            switch reader.bytes[position] {
            case 0x3B:
                return InspectedImage(format: .gif, width: largest.0, height: largest.1)
            case 0x21:
                position += 2
                try skipSubBlocks(&position)
            case 0x2C:
                guard let frameWidth = reader.le16(position + 5), let frameHeight = reader.le16(position + 7), position + 10 < reader.count
                else { throw .truncated(.gif) }
                if frameWidth * frameHeight > largest.0 * largest.1 || frameWidth > largest.0 || frameHeight > largest.1 {
                    largest = (max(largest.0, frameWidth), max(largest.1, frameHeight))
                }
                position += 10 + colourTableSize(reader.bytes[position + 9]) + 1
                try skipSubBlocks(&position)
            default:
                throw .corrupt(.gif)
            }
        }
    }

    private static func colourTableSize(_ flags: UInt8) -> Int {
        flags & 0x80 == 0 ? 0 : 3 * (1 << (Int(flags & 0x07) + 1))
    }

    /// RIFF container; the size from the first chunk: lossy `VP8 `, lossless `VP8L` or extended `VP8X`.
    static func webp(_ reader: ByteReader) throws(ImageProblem) -> InspectedImage {
        guard let riffSize = reader.le32(4), riffSize + 8 <= reader.count else { throw .truncated(.webp) }
        guard let chunkSize = reader.le32(16), reader.count >= 20 else { throw .truncated(.webp) }
        guard 20 + chunkSize <= reader.count else { throw .truncated(.webp) }
        let chunk = String(decoding: reader.bytes[12..<16], as: UTF8.self)
        switch chunk {
        case "VP8 ":
            guard chunkSize >= 10, reader.bytes[23..<26].elementsEqual([0x9D, 0x01, 0x2A]),
                let width = reader.le16(26), let height = reader.le16(28)
            else { throw .corrupt(.webp) }
            return InspectedImage(format: .webp, width: width & 0x3FFF, height: height & 0x3FFF)
        case "VP8L":
            guard chunkSize >= 5, reader.bytes[20] == 0x2F, let bits = reader.le32(21) else { throw .corrupt(.webp) }
            return InspectedImage(format: .webp, width: (bits & 0x3FFF) + 1, height: ((bits >> 14) & 0x3FFF) + 1)
        case "VP8X":
            guard chunkSize >= 10, let width = reader.le24(24), let height = reader.le24(27) else { throw .corrupt(.webp) }
            return InspectedImage(format: .webp, width: width + 1, height: height + 1)
        default:
            throw .corrupt(.webp)
        }
    }

    /// The icon directory; each entry's data must be present. Entries that hold a PNG answer
    /// that PNG's own size (the directory's bytes stop at 256).
    static func ico(_ reader: ByteReader) throws(ImageProblem) -> InspectedImage {
        guard let count = reader.le16(4) else { throw .truncated(.ico) }
        guard count >= 1 else { throw .corrupt(.ico) }
        let directoryEnd = 6 + 16 * count
        guard directoryEnd <= reader.count else { throw .truncated(.ico) }
        var width = 0
        var height = 0
        for index in 0..<count {
            let entry = 6 + 16 * index
            var entryWidth = reader.bytes[entry] == 0 ? 256 : Int(reader.bytes[entry])
            var entryHeight = reader.bytes[entry + 1] == 0 ? 256 : Int(reader.bytes[entry + 1])
            guard let size = reader.le32(entry + 8), let offset = reader.le32(entry + 12) else { throw .truncated(.ico) }
            guard size > 0, offset >= directoryEnd else { throw .corrupt(.ico) }
            guard offset + size <= reader.count else { throw .truncated(.ico) }
            let data = ByteReader(Array(reader.bytes[offset..<(offset + size)]))
            if data.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) {
                let embedded: InspectedImage
                do {
                    embedded = try png(data)
                } catch {
                    throw .corrupt(.ico)
                }
                entryWidth = embedded.width
                entryHeight = embedded.height
            }
            width = max(width, entryWidth)
            height = max(height, entryHeight)
        }
        return InspectedImage(format: .ico, width: width, height: height)
    }

    /// An SVG document (or any XML) by its first bytes; refused with its own message.
    static func looksLikeSVG(_ bytes: [UInt8]) -> Bool {
        let head = String(decoding: bytes.prefix(1024), as: UTF8.self).lowercased()
        let trimmed = head.drop { $0 == "\u{FEFF}" || $0.isWhitespace }
        return trimmed.hasPrefix("<?xml") || trimmed.hasPrefix("<svg") || (trimmed.hasPrefix("<!doctype svg")) || head.contains("<svg")
    }
}

/// Bounds-checked reads of big- and little-endian integers; nil past the end.
struct ByteReader: Sendable {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var count: Int { bytes.count }

    func starts(with prefix: [UInt8]) -> Bool { bytes.starts(with: prefix) }

    func be16(_ at: Int) -> Int? { read(at, 2, bigEndian: true) }
    func be32(_ at: Int) -> Int? { read(at, 4, bigEndian: true) }
    func le16(_ at: Int) -> Int? { read(at, 2, bigEndian: false) }
    func le24(_ at: Int) -> Int? { read(at, 3, bigEndian: false) }
    func le32(_ at: Int) -> Int? { read(at, 4, bigEndian: false) }

    private func read(_ at: Int, _ width: Int, bigEndian: Bool) -> Int? {
        guard at >= 0, at + width <= bytes.count else { return nil }
        let slice = bytes[at..<(at + width)]
        return (bigEndian ? Array(slice) : slice.reversed()).reduce(0) { $0 << 8 | Int($1) }
    }
}
