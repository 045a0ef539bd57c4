/// The readable text of an HTML page: no tags, no comments, nothing from `script`, `style`,
/// `noscript` or `template`; block elements end lines; character references decoded.
enum HTMLText {
    static let hiddenElements: Set<String> = ["script", "style", "noscript", "template", "head"]
    static let blockElements: Set<String> = [
        "p", "div", "br", "li", "ul", "ol", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article",
        "header", "footer", "blockquote", "pre", "title", "dd", "dt", "hr",
    ]

    static func text(of html: String) -> String {
        let scalars = Array(html.unicodeScalars)
        var output = String.UnicodeScalarView()
        var index = 0
        var hiddenUntil: String?
        while index < scalars.count {
            let scalar = scalars[index]
            guard scalar == "<" else {
                if hiddenUntil == nil { output.append(scalar) }
                index += 1
                continue
            }
            if starts(scalars, at: index, with: "<!--") {
                index = find(scalars, "-->", from: index + 4).map { $0 + 3 } ?? scalars.count
                continue
            }
            // A tag: its name, whether it closes, and where it ends.
            let end = find(scalars, ">", from: index + 1) ?? scalars.count
            var nameStart = index + 1
            let closing = nameStart < end && scalars[nameStart] == "/"
            if closing { nameStart += 1 }
            var nameEnd = nameStart
            while nameEnd < end, scalars[nameEnd].properties.isAlphabetic || ("0"..."9").contains(scalars[nameEnd]) { nameEnd += 1 }
            let name = String(String.UnicodeScalarView(scalars[nameStart..<nameEnd])).lowercased()
            if let hidden = hiddenUntil {
                if closing, name == hidden { hiddenUntil = nil }
            } else if !closing, hiddenElements.contains(name), !(end > 0 && scalars[end - 1] == "/") {
                hiddenUntil = name
            } else if blockElements.contains(name) {
                output.append("\n")
            } else {
                output.append(" ")
            }
            index = end + 1
        }
        return decodeReferences(String(output))
    }

    private static let named: [String: String] = [
        "amp": "&", "lt": "<", "gt": ">", "quot": "\"", "apos": "'", "nbsp": " ", "copy": "©", "reg": "®", "hellip": "…",
        "mdash": "—", "ndash": "–", "laquo": "«", "raquo": "»", "euro": "€",
    ]

    /// `&name;`, `&#N;` and `&#xH;`; anything else stays as written.
    static func decodeReferences(_ text: String) -> String {
        guard text.contains("&") else { return text }
        var output = ""
        var rest = Substring(text)
        while let amp = rest.firstIndex(of: "&") {
            output += rest[..<amp]
            let after = rest[rest.index(after: amp)...]
            if let semicolon = after.prefix(12).firstIndex(of: ";") {
                let reference = after[..<semicolon]
                var decoded: String?
                if reference.hasPrefix("#x") || reference.hasPrefix("#X") {
                    decoded = UInt32(reference.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String($0) }
                } else if reference.hasPrefix("#") {
                    decoded = UInt32(reference.dropFirst()).flatMap(Unicode.Scalar.init).map { String($0) }
                } else {
                    decoded = named[String(reference)]
                }
                if let decoded, decoded != "\u{0}" {
                    output += decoded
                    rest = after[after.index(after: semicolon)...]
                    continue
                }
            }
            output += "&"
            rest = after
        }
        return output + rest
    }

    private static func starts(_ scalars: [Unicode.Scalar], at index: Int, with prefix: String) -> Bool {
        let needle = Array(prefix.unicodeScalars)
        return index + needle.count <= scalars.count && Array(scalars[index..<(index + needle.count)]) == needle
    }

    private static func find(_ scalars: [Unicode.Scalar], _ needle: String, from start: Int) -> Int? {
        let needle = Array(needle.unicodeScalars)
        var index = start
        while index + needle.count <= scalars.count {
            if scalars[index] == needle[0], Array(scalars[index..<(index + needle.count)]) == needle { return index }
            index += 1
        }
        return nil
    }
}
