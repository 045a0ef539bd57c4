/// The PostgreSQL text-search configuration a tenant's chunks are indexed with, from the tenant's
/// settings language (ISO 639-1). Only configurations PostgreSQL 15 ships are named; any other
/// language (or none) is `simple`: words as written, no stemming, no stop words.
enum SearchConfiguration {
    static let byLanguage: [String: String] = [
        "ar": "arabic", "da": "danish", "de": "german", "el": "greek", "en": "english", "es": "spanish", "fi": "finnish",
        "fr": "french", "ga": "irish", "hu": "hungarian", "id": "indonesian", "it": "italian", "lt": "lithuanian",
        "ne": "nepali", "nl": "dutch", "no": "norwegian", "nb": "norwegian", "nn": "norwegian", "pt": "portuguese",
        "ro": "romanian", "ru": "russian", "sv": "swedish", "ta": "tamil", "tr": "turkish",
    ]

    static func forLanguage(_ language: String?) -> String {
        language.flatMap { byLanguage[$0.lowercased()] } ?? "simple"
    }
}
