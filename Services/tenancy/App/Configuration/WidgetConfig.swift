import Foundation
import ServiceCore

/// How a tenant's chat widget looks and behaves in the browser (seed 001's widget configuration).
/// Everything here is meant for the browser: the public config route serves all of it.
struct WidgetConfig: Codable, Sendable, Equatable {
    enum Position: String, Codable, Sendable, CaseIterable {
        case bottomRight = "bottom-right"
        case bottomLeft = "bottom-left"
        case topRight = "top-right"
        case topLeft = "top-left"
    }

    var enabled = true
    var position = Position.bottomRight
    var primaryColor = "#2563eb"
    var textColor = "#ffffff"
    var title = "Chat with us"
    var welcomeMessage = "Hi! How can we help you today?"
    var placeholder = "Type your message…"
    var launcherText = "Chat"
    /// Open panel size and launcher button diameter, CSS pixels.
    var width = 380
    var height = 600
    var launcherSize = 56
    var showBranding = true
    var openOnLoad = false
    var soundEnabled = true

    static let widthRange = 280...600
    static let heightRange = 400...900
    static let launcherSizeRange = 40...96

    static let defaultsJSON = JSONSettingsTable.defaults(WidgetConfig())

    /// A `PUT`: every field optional; absent or `null` leaves it as it is.
    struct Update: Decodable, Sendable {
        var enabled: Bool?
        var position: String?
        var primaryColor: String?
        var textColor: String?
        var title: String?
        var welcomeMessage: String?
        var placeholder: String?
        var launcherText: String?
        var width: Double?
        var height: Double?
        var launcherSize: Double?
        var showBranding: Bool?
        var openOnLoad: Bool?
        var soundEnabled: Bool?

        /// The fields to store, checked and normalised, as a JSON object; 422 naming every bad field.
        func validatedPatch() throws -> String {
            var rules = FieldRules()
            let patch = Patch(
                enabled: enabled,
                position: rules.oneOf(position, "position", as: Position.self),
                primaryColor: rules.hexColor(primaryColor, "primary_color"),
                textColor: rules.hexColor(textColor, "text_color"),
                title: rules.text(title, "title", max: 60),
                welcomeMessage: rules.text(welcomeMessage, "welcome_message", max: 500),
                placeholder: rules.text(placeholder, "placeholder", max: 100),
                launcherText: rules.text(launcherText, "launcher_text", max: 30),
                width: rules.wholeNumber(width, "width", WidgetConfig.widthRange),
                height: rules.wholeNumber(height, "height", WidgetConfig.heightRange),
                launcherSize: rules.wholeNumber(launcherSize, "launcher_size", WidgetConfig.launcherSizeRange),
                showBranding: showBranding, openOnLoad: openOnLoad, soundEnabled: soundEnabled
            )
            try rules.finish()
            return String(decoding: try JSONCoding.encoder.encode(patch), as: UTF8.self)
        }
    }

    /// The checked fields a change sets (nil ones are left out of the JSON, so they stay).
    private struct Patch: Encodable {
        var enabled: Bool?
        var position: Position?
        var primaryColor: String?
        var textColor: String?
        var title: String?
        var welcomeMessage: String?
        var placeholder: String?
        var launcherText: String?
        var width: Int?
        var height: Int?
        var launcherSize: Int?
        var showBranding: Bool?
        var openOnLoad: Bool?
        var soundEnabled: Bool?
    }
}
