import Foundation
import InternalAPI
import ServiceCore

/// Seed 000's `TenantTheme`, field by field: each field's default (a tenant that never set it
/// answers this) and the rule a new value must meet. The public theme, the admin read and the
/// partial update all come from this one table.
struct ThemeField: Sendable {
    enum Rule: Sendable {
        /// `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`.
        case colour
        case choice([String])
        case flag
        case integer(ClosedRange<Int64>)
        /// Plain text of at most `maxLength` characters (Unicode scalars, as JSON Schema counts them);
        /// `multiline` allows line breaks and tabs.
        case text(maxLength: Int, multiline: Bool)
        /// A CSS font stack: ASCII letters, digits, quotes, commas, spaces, dots and hyphens only
        /// (nothing that could end the declaration it is put in).
        case fontStack
        /// An `https` URL, or the path of one of our branding assets.
        case imageURL
        case quickPrompts
        case composerTools
        case customCSS
    }

    let name: String
    let rule: Rule
    /// `.null` for the fields seed 000 marks optional.
    let defaultValue: JSONValue

    init(_ name: String, _ rule: Rule, _ defaultValue: JSONValue) {
        self.name = name
        self.rule = rule
        self.defaultValue = defaultValue
    }
}

enum ThemeFields {
    static let colorSchemes = ["light", "dark", "auto"]
    static let borderRadii = ["pill", "round", "soft", "sharp"]
    static let densities = ["compact", "normal", "spacious"]
    static let maxQuickPrompts = 8
    static let maxComposerTools = 10
    static let maxComposerToolBytes = 2_048
    static let maxURLLength = 2_048

    static let all: [ThemeField] = [
        .init("color_scheme", .choice(colorSchemes), .string("light")),
        .init("primary_color", .colour, .string("#2563eb")),
        .init("accent_color", .colour, .string("#7c3aed")),
        .init("background_color", .colour, .null),
        .init("surface_background_color", .colour, .null),
        .init("surface_foreground_color", .colour, .null),
        .init("surface_colors_enabled", .flag, .bool(false)),
        .init("accent_enabled", .flag, .bool(true)),
        .init("tinted_grayscale", .flag, .bool(false)),
        .init("font_family", .fontStack, .string("Inter, system-ui, sans-serif")),
        .init("font_family_mono", .fontStack, .string("ui-monospace, Menlo, monospace")),
        .init("font_size_base", .integer(12...24), .integer(16)),
        .init("border_radius", .choice(borderRadii), .string("round")),
        .init("density", .choice(densities), .string("normal")),
        .init("logo_url", .imageURL, .null),
        .init("favicon_url", .imageURL, .null),
        .init("welcome_message", .text(maxLength: 500, multiline: true), .string("Hi! How can I help you today?")),
        .init("quick_prompts", .quickPrompts, .array([])),
        .init("placeholder_text", .text(maxLength: 150, multiline: false), .string("Type your message…")),
        .init("disclaimer_text", .text(maxLength: 500, multiline: true), .string("")),
        .init("attachments_enabled", .flag, .bool(false)),
        .init("attachments_max_count", .integer(1...10), .integer(3)),
        // Bytes per attachment.
        .init("attachments_max_size", .integer(1_024...20_971_520), .integer(5_242_880)),
        .init("composer_tools", .composerTools, .array([])),
        .init("feedback_enabled", .flag, .bool(true)),
        .init("retry_enabled", .flag, .bool(true)),
        .init("header_enabled", .flag, .bool(true)),
        .init("custom_css", .customCSS, .null),
    ]

    static let byName: [String: ThemeField] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The whole theme: every field, the tenant's value where it set one.
    static func resolved(_ overrides: [String: JSONValue]) -> [String: JSONValue] {
        Dictionary(uniqueKeysWithValues: all.map { ($0.name, overrides[$0.name] ?? $0.defaultValue) })
    }

    /// A partial update checked field by field: values to store, and fields sent as `null`,
    /// which go back to their default. Unknown fields are refused (a misspelt field would
    /// otherwise change nothing and say nothing).
    static func validated(_ update: [String: JSONValue]) throws -> (set: [String: JSONValue], reset: [String]) {
        var problems: [String: [String]] = [:]
        var set: [String: JSONValue] = [:]
        var reset: [String] = []
        for (name, value) in update {
            guard let field = byName[name] else {
                problems[name] = ["is not a theme field"]
                continue
            }
            if value == .null {
                reset.append(name)
                continue
            }
            switch check(value, field.rule) {
            case .success(let accepted): set[name] = accepted
            case .failure(let failure): problems[name] = failure.messages
            }
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        return (set, reset.sorted())
    }

    struct Problems: Error {
        var messages: [String]
        init(_ messages: String...) { self.messages = messages }
        init(_ messages: [String]) { self.messages = messages }
    }

    static func check(_ value: JSONValue, _ rule: ThemeField.Rule) -> Result<JSONValue, Problems> {
        switch rule {
        case .colour:
            guard case .string(let text) = value else { return .failure(Problems("must be a string")) }
            guard isHexColour(text) else { return .failure(Problems("must be a hex colour: #rgb, #rgba, #rrggbb or #rrggbbaa")) }
            return .success(.string(text.lowercased()))
        case .choice(let options):
            guard case .string(let text) = value else { return .failure(Problems("must be a string")) }
            guard options.contains(text) else { return .failure(Problems("must be one of \(options.joined(separator: ", "))")) }
            return .success(value)
        case .flag:
            guard case .bool = value else { return .failure(Problems("must be a boolean")) }
            return .success(value)
        case .integer(let range):
            let number: Int64
            switch value {
            case .integer(let integer): number = integer
            case .number(let double) where double.rounded() == double && abs(double) < 1e15: number = Int64(double)
            case .number: return .failure(Problems("must be a whole number"))
            default: return .failure(Problems("must be a number"))
            }
            guard range.contains(number) else {
                return .failure(Problems("must be between \(range.lowerBound) and \(range.upperBound)"))
            }
            return .success(.integer(number))
        case .text(let maxLength, let multiline):
            guard case .string(let text) = value else { return .failure(Problems("must be a string")) }
            let problems = textProblems(text, maxLength: maxLength, multiline: multiline)
            return problems.isEmpty ? .success(value) : .failure(Problems(problems))
        case .fontStack:
            guard case .string(let text) = value else { return .failure(Problems("must be a string")) }
            guard (1...200).contains(text.unicodeScalars.count) else { return .failure(Problems("must be 1 to 200 characters")) }
            guard text.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || " ,-_.'\"".unicodeScalars.contains($0)) })
            else { return .failure(Problems("may hold only ASCII letters, digits, quotes, commas, spaces, dots, underscores and hyphens")) }
            return .success(value)
        case .imageURL:
            guard case .string(let text) = value else { return .failure(Problems("must be a string")) }
            return imageURLProblem(text).map { .failure(Problems($0)) } ?? .success(value)
        case .quickPrompts:
            return quickPrompts(value)
        case .composerTools:
            return composerTools(value)
        case .customCSS:
            guard case .string(let text) = value else { return .failure(Problems("must be a string")) }
            let problems = CustomCSSPolicy.problems(text)
            return problems.isEmpty ? .success(value) : .failure(Problems(problems))
        }
    }

    static func isHexColour(_ text: String) -> Bool {
        guard text.hasPrefix("#") else { return false }
        let digits = text.dropFirst()
        return [3, 4, 6, 8].contains(digits.count) && digits.unicodeScalars.allSatisfy(\.properties.isASCIIHexDigit)
    }

    static func textProblems(_ text: String, maxLength: Int, multiline: Bool, minLength: Int = 0) -> [String] {
        var problems: [String] = []
        if text.unicodeScalars.count < minLength { problems.append("must not be empty") }
        if text.unicodeScalars.count > maxLength { problems.append("must be at most \(maxLength) characters") }
        let controls = text.unicodeScalars.contains { scalar in
            (scalar.value < 0x20 || scalar.value == 0x7F) && !(multiline && (scalar == "\n" || scalar == "\t" || scalar == "\r"))
        }
        if controls { problems.append(multiline ? "must not contain control characters" : "must be a single line without control characters") }
        return problems
    }

    /// Our own asset paths, as the upload answers them.
    static let assetPathPrefix = "/api/public/branding/"

    /// An https URL (host, optional port, then a path of URL characters that cannot end a CSS
    /// `url()`, an HTML attribute or a header: no quotes, parentheses, spaces, `<>`, backslashes or
    /// user info), or one of our asset paths. docs/openapi.yaml states the same pattern.
    static let imageURLPattern =
        #"^(https://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][A-Za-z0-9._~!$&*+,;=:@%/?#-]*)?|/api/public/branding/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"#

    nonisolated(unsafe) private static let imageURLRegex = try! Regex(imageURLPattern)

    static func imageURLProblem(_ text: String) -> String? {
        guard text.unicodeScalars.count <= maxURLLength else { return "must be at most \(maxURLLength) characters" }
        guard text.unicodeScalars.allSatisfy(\.isASCII), (try? imageURLRegex.wholeMatch(in: text)) != nil else {
            return "must be an https URL or the url of an uploaded branding asset"
        }
        return nil
    }

    private static func quickPrompts(_ value: JSONValue) -> Result<JSONValue, Problems> {
        guard case .array(let items) = value else { return .failure(Problems("must be an array of {title, prompt}")) }
        guard items.count <= maxQuickPrompts else { return .failure(Problems("must hold at most \(maxQuickPrompts) prompts")) }
        var problems: [String] = []
        var accepted: [JSONValue] = []
        for (index, item) in items.enumerated() {
            guard case .object(let object) = item, Set(object.keys) == ["title", "prompt"],
                case .string(let title) = object["title"], case .string(let prompt) = object["prompt"]
            else {
                problems.append("item \(index) must be an object with string title and prompt, nothing else")
                continue
            }
            for problem in textProblems(title, maxLength: 60, multiline: false, minLength: 1) { problems.append("item \(index) title \(problem)") }
            for problem in textProblems(prompt, maxLength: 500, multiline: true, minLength: 1) { problems.append("item \(index) prompt \(problem)") }
            accepted.append(.object(["title": .string(title), "prompt": .string(prompt)]))
        }
        return problems.isEmpty ? .success(.array(accepted)) : .failure(Problems(problems))
    }

    /// Seed 000 leaves the tools open (`any[]`): objects the widget understands, bounded in number and size.
    private static func composerTools(_ value: JSONValue) -> Result<JSONValue, Problems> {
        guard case .array(let items) = value else { return .failure(Problems("must be an array of objects")) }
        guard items.count <= maxComposerTools else { return .failure(Problems("must hold at most \(maxComposerTools) tools")) }
        for (index, item) in items.enumerated() {
            guard case .object = item else { return .failure(Problems("item \(index) must be an object")) }
            let size = (try? JSONCoding.encoder.encode(item).count) ?? .max
            guard size <= maxComposerToolBytes else {
                return .failure(Problems("item \(index) must be at most \(maxComposerToolBytes) bytes of JSON"))
            }
        }
        return .success(value)
    }
}
