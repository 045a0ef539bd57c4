import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The suite's JSON conventions: snake_case keys, ISO-8601 UTC dates.
package enum JSONCoding {
    package static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    package static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Turns a decoding failure into 400 (not JSON at all) or 422 naming the field.
    package static func map(_ error: DecodingError) -> AppError {
        switch error {
        case .dataCorrupted(let context) where context.codingPath.isEmpty:
            return .badRequest("Request body is not valid JSON", code: "MALFORMED_JSON")
        case .dataCorrupted(let context):
            return .validation([fieldName(context.codingPath): ["is invalid"]])
        case .keyNotFound(let key, let context):
            return .validation([fieldName(context.codingPath + [key]): ["is required"]])
        case .valueNotFound(_, let context) where context.codingPath.isEmpty:
            return .badRequest("Request body must be a JSON object", code: "MALFORMED_JSON")
        case .valueNotFound(_, let context):
            return .validation([fieldName(context.codingPath): ["must not be null"]])
        case .typeMismatch(let type, let context):
            if context.codingPath.isEmpty {
                return .badRequest("Request body must be a JSON object", code: "MALFORMED_JSON")
            }
            return .validation([fieldName(context.codingPath): ["must be \(describe(type))"]])
        @unknown default:
            return .badRequest("Request body could not be read", code: "MALFORMED_JSON")
        }
    }

    static func fieldName(_ path: [any CodingKey]) -> String {
        path.map { key in key.intValue.map(String.init) ?? snakeCase(key.stringValue) }.joined(separator: ".")
    }

    /// The JSON name of a property under `.convertToSnakeCase` (`accountName` → `account_name`).
    package static func snakeCase(_ name: String) -> String {
        struct Key: CodingKey {
            var stringValue: String
            var intValue: Int? { nil }
            init(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
        struct Probe: Encodable {
            let name: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: Key.self)
                try container.encode(0, forKey: Key(stringValue: name))
            }
        }
        guard let data = try? JSONCoding.encoder.encode(Probe(name: name)),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let key = object.keys.first
        else { return name }
        return key
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "a boolean"
        case is Int.Type, is Double.Type: "a number"
        default: "of another type"
        }
    }
}

extension Request {
    /// Decodes a JSON body with the suite's conventions, enforcing the context's body limit.
    package func decodeJSON<T: Decodable>(as type: T.Type, context: some RequestContext) async throws -> T {
        guard let value = try await decodeOptionalJSON(as: type, context: context) else {
            throw AppError.badRequest("Request body is required", code: "MALFORMED_JSON")
        }
        return value
    }

    /// Like `decodeJSON`, but an empty body yields `nil`.
    package func decodeOptionalJSON<T: Decodable>(as type: T.Type, context: some RequestContext) async throws -> T? {
        let buffer: ByteBuffer
        do {
            var request = self
            buffer = try await request.collectBody(upTo: context.maxUploadSize)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw AppError.payloadTooLarge()
        }
        guard buffer.readableBytes > 0 else { return nil }
        do {
            try JSONShapeCheck.check(buffer.readableBytesView)
        } catch .duplicateKey(let key) {
            throw AppError.badRequest("Request body names the key '\(key.prefix(64))' twice", code: "MALFORMED_JSON")
        } catch .tooDeep {
            throw AppError.badRequest("Request body is nested more than \(JSONShapeCheck.maxDepth) levels deep", code: "MALFORMED_JSON")
        }
        let value: T
        do {
            value = try JSONCoding.decoder.decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw JSONCoding.map(error)
        }
        if let field = DecodedNULCheck.field(in: value) {
            throw AppError.validation([field: ["must not contain the NUL character"]])
        }
        return value
    }
}

/// A JSON answer with the suite's encoding and an explicit status.
package struct JSONResponse<Body: Encodable & Sendable>: ResponseGenerator, Sendable {
    package var status: HTTPResponse.Status
    package var body: Body
    package var headers: HTTPFields

    package init(_ body: Body, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) {
        self.status = status
        self.body = body
        self.headers = headers
    }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try JSONCoding.encoder.encode(body)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
