import Foundation
import InternalAPI

extension EventEnvelope {
    /// An event whose payload is `payload` in the suite's JSON conventions; the payload must encode
    /// as a JSON object, so that an event type can gain fields without breaking its receivers.
    package init(
        type: EventType,
        source: String,
        payload: some Encodable,
        id: UUID = UUID(),
        occurredAt: Date = Date()
    ) throws {
        let object = try JSONCoding.decoder.decode([String: JSONValue].self, from: JSONCoding.encoder.encode(payload))
        self.init(id: id, type: type, occurredAt: occurredAt, source: source, payload: object)
    }

    /// The payload read as `Payload`; a mismatch throws a `DecodingError`, which answers the sender 422.
    package func decodePayload<Payload: Decodable>(as type: Payload.Type) throws -> Payload {
        try JSONCoding.decoder.decode(Payload.self, from: JSONCoding.encoder.encode(payload))
    }
}
