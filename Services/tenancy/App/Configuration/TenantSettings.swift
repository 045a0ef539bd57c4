import Foundation
import InternalAPI
import ServiceCore

/// A tenant's own settings (seed 004's tenant settings), as stored: flat, so a partial update of
/// `notifications` merges field by field.
struct TenantSettings: Codable, Sendable, Equatable {
    var timezone = "UTC"
    var language = "en"
    var notificationsEmail = true
    var notificationsSms = false
    var customSettings: [String: JSONValue] = [:]

    static let defaultsJSON = JSONSettingsTable.defaults(TenantSettings())

    /// The wire shape (`settings` of the profile and of `PUT /api/tenant/settings`).
    struct View: Encodable, Sendable {
        struct Notifications: Encodable, Sendable {
            var email: Bool
            var sms: Bool
        }

        var timezone: String
        var language: String
        var notifications: Notifications
        /// Whether people may sign up into the tenant by its slug (`POST /api/auth/signup`).
        var allowSignup: Bool
        var customSettings: [String: JSONValue]
    }

    func view(allowSignup: Bool) -> View {
        View(
            timezone: timezone, language: language, notifications: .init(email: notificationsEmail, sms: notificationsSms),
            allowSignup: allowSignup, customSettings: customSettings
        )
    }

    /// `PUT /api/tenant/settings`: `{"settings": {...}}`, every field optional; absent or `null`
    /// leaves it as it is (`custom_settings` is replaced whole).
    struct Update: Decodable, Sendable {
        struct Fields: Decodable, Sendable {
            struct Notifications: Decodable, Sendable {
                var email: Bool?
                var sms: Bool?
            }

            var timezone: String?
            var language: String?
            var notifications: Notifications?
            var allowSignup: Bool?
            var customSettings: [String: JSONValue]?
        }

        var settings: Fields

        /// The stored fields to merge (JSON text of an object) and `allow_signup`; 422 naming every bad field.
        func validated() throws -> (patch: String, allowSignup: Bool?) {
            var rules = FieldRules()
            if let timezone = settings.timezone, !TenantSettings.isTimeZone(timezone) {
                rules.add("settings.timezone", "must be an IANA time zone such as Europe/Madrid")
            }
            if let language = settings.language, !LanguageCodes.iso639_1.contains(language) {
                rules.add("settings.language", "must be a two-letter ISO 639-1 code in lower case, such as es")
            }
            _ = rules.flatObject(settings.customSettings, "settings.custom_settings")
            try rules.finish()
            let patch = Patch(
                timezone: settings.timezone, language: settings.language, notificationsEmail: settings.notifications?.email,
                notificationsSms: settings.notifications?.sms, customSettings: settings.customSettings
            )
            return (String(decoding: try JSONCoding.encoder.encode(patch), as: UTF8.self), settings.allowSignup)
        }
    }

    /// The stored fields a change sets (nil ones are left out of the JSON, so they stay).
    private struct Patch: Encodable {
        var timezone: String?
        var language: String?
        var notificationsEmail: Bool?
        var notificationsSms: Bool?
        var customSettings: [String: JSONValue]?
    }

    /// An IANA zone name this system's time zone database knows under exactly that name. Only
    /// `Area/Location`-shaped names reach Foundation (no `..`, no absolute paths).
    static func isTimeZone(_ name: String) -> Bool {
        let segments = name.split(separator: "/", omittingEmptySubsequences: false)
        guard name.utf8.count <= 64, !segments.isEmpty,
            segments.allSatisfy({ segment in
                guard let first = segment.utf8.first, first != UInt8(ascii: "."), first != UInt8(ascii: "-") else { return false }
                return segment.utf8.allSatisfy { byte in
                    (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
                        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                }
            })
        else { return false }
        // Foundation knows `UTC` but calls it `GMT`; every other name must come back as written.
        guard let zone = TimeZone(identifier: name) else { return false }
        return zone.identifier == name || name == "UTC"
    }
}
