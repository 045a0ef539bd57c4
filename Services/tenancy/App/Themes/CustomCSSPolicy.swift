import Foundation

/// What a tenant's `custom_css` may hold. The widget puts it in a `<style>` element, so anything
/// that loads or runs content is refused: `@import`, `url(` other than an inline raster image,
/// image-loading functions, `expression(`, `javascript:`, `behavior:`, `-moz-binding` and any `<`
/// (which could close the element). Checks run on a normalised copy — comments stripped, CSS
/// escapes decoded, lowercased, whitespace removed — so `\75 rl(` and `u/**/rl(` are `url(` too.
enum CustomCSSPolicy {
    static let maxBytes = 10_240

    /// The problems with `css`; empty when it is acceptable.
    static func problems(_ css: String) -> [String] {
        if css.utf8.count > maxBytes { return ["must be at most \(maxBytes) bytes"] }
        if css.unicodeScalars.contains(where: { $0.value < 0x20 && !"\t\n\r\u{0C}".unicodeScalars.contains($0) || $0.value == 0x7F }) {
            return ["must not contain control characters"]
        }
        let compact = String(String.UnicodeScalarView(normalised(css).unicodeScalars.filter { !isWhitespace($0) }))
        var problems: [String] = []
        for construct in forbidden where compact.contains(construct) {
            problems.append("must not contain \(construct)")
        }
        if compact.contains("<") { problems.append("must not contain <") }
        if hasRemoteURL(compact) { problems.append("must not contain url( other than data:image/png, jpeg, gif or webp") }
        return problems
    }

    /// Constructs that load or run content, as they read after normalisation.
    static let forbidden = [
        "@import", "expression(", "javascript:", "vbscript:", "behavior:", "-moz-binding", "image-set(", "image(", "cross-fade(",
        "src(", "element(",
    ]

    /// Inline images the widget may show; SVG is not among them (it can carry script and links).
    static let inlineImagePrefixes = ["data:image/png", "data:image/jpeg", "data:image/gif", "data:image/webp"]

    private static func hasRemoteURL(_ compact: String) -> Bool {
        var rest = Substring(compact)
        while let range = rest.range(of: "url(") {
            var argument = rest[range.upperBound...]
            if argument.first == "\"" || argument.first == "'" { argument = argument.dropFirst() }
            let inline = inlineImagePrefixes.contains { prefix in
                argument.hasPrefix(prefix) && [";", ","].contains(argument.dropFirst(prefix.count).first)
            }
            if !inline { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }

    /// Comments removed, escapes decoded (CSS Syntax §4.3.7), lowercased.
    static func normalised(_ css: String) -> String {
        var output = String.UnicodeScalarView()
        let scalars = Array(css.unicodeScalars)
        var index = 0
        while index < scalars.count {
            let scalar = scalars[index]
            if scalar == "/", index + 1 < scalars.count, scalars[index + 1] == "*" {
                // An unterminated comment runs to the end, as in a browser.
                index += 2
                while index < scalars.count, !(scalars[index] == "*" && index + 1 < scalars.count && scalars[index + 1] == "/") { index += 1 }
                index += 2
                continue
            }
            if scalar == "\\" {
                index += 1
                guard index < scalars.count else { break }
                var hex = ""
                while hex.count < 6, index < scalars.count, scalars[index].properties.isASCIIHexDigit {
                    hex.unicodeScalars.append(scalars[index])
                    index += 1
                }
                if hex.isEmpty {
                    // `\` before a newline continues a string; before anything else it is that character.
                    if scalars[index] != "\n" { output.append(scalars[index]) }
                    index += 1
                } else {
                    let value = UInt32(hex, radix: 16) ?? 0xFFFD
                    output.append(value == 0 ? "\u{FFFD}" : Unicode.Scalar(value) ?? "\u{FFFD}")
                    if index < scalars.count, isWhitespace(scalars[index]) { index += 1 }
                }
                continue
            }
            output.append(scalar)
            index += 1
        }
        return String(output).lowercased()
    }

    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" || scalar == "\u{0C}"
    }
}
