/// Splits a document's text into the chunks retrieval ranks: about `size` characters (Unicode
/// scalars) each, the next one starting `overlap` characters before the previous one ended, so a
/// sentence cut at a boundary is whole in one of them. A chunk ends at the last paragraph break,
/// else sentence end or line break, else space in its final 40%; only a text without any is cut
/// mid-word. Whitespace is tidied first: runs of spaces become one, three or more line breaks two.
struct TextChunker: Sendable {
    var size = 1_000
    var overlap = 200

    func chunks(of text: String) -> [String] {
        let scalars = Array(Self.tidy(text).unicodeScalars)
        var chunks: [String] = []
        var start = 0
        while start < scalars.count {
            var end = min(start + size, scalars.count)
            if end < scalars.count { end = breakPoint(scalars, start: start, end: end) }
            let chunk = String(String.UnicodeScalarView(scalars[start..<end])).trimmingWhitespace()
            if !chunk.isEmpty { chunks.append(chunk) }
            if end >= scalars.count { break }
            // The next chunk starts `overlap` back, at the start of a word.
            var next = max(end - overlap, start + 1)
            while next < end, !Self.isSpace(scalars[next - 1]) { next += 1 }
            start = next
        }
        return chunks
    }

    private func breakPoint(_ scalars: [Unicode.Scalar], start: Int, end: Int) -> Int {
        let floor = start + size * 6 / 10
        var index = end - 1
        var sentence: Int?
        var space: Int?
        while index > floor {
            let scalar = scalars[index]
            if scalar == "\n", scalars[index - 1] == "\n" { return index + 1 }
            if sentence == nil, scalar == "\n" || (Self.isSpace(scalar) && [".", "!", "?", ";"].contains(scalars[index - 1])) {
                sentence = index + 1
            }
            if space == nil, Self.isSpace(scalar) { space = index + 1 }
            index -= 1
        }
        return sentence ?? space ?? end
    }

    static func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.isWhitespace }

    /// Line endings to `\n`, each line's inner whitespace runs to one space, blank-line runs to one.
    static func tidy(_ text: String) -> String {
        var lines: [String] = []
        var blank = 0
        for rawLine in text.replacingNewlines().split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
            if line.isEmpty {
                blank += 1
                if blank == 1, !lines.isEmpty { lines.append("") }
            } else {
                blank = 0
                lines.append(line)
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    fileprivate func replacingNewlines() -> String {
        var output = String.UnicodeScalarView()
        var previousCR = false
        for scalar in unicodeScalars {
            if scalar == "\r" {
                output.append("\n")
                previousCR = true
                continue
            }
            if scalar == "\n", previousCR {
                previousCR = false
                continue
            }
            previousCR = false
            output.append(scalar)
        }
        return String(output)
    }

    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
