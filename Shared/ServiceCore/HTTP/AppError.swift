import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The suite's error: rendered as `{"detail", "code", "fields"?, "request_id"}` with its status.
package struct AppError: Error, HTTPResponseError, CustomStringConvertible {
    package var status: HTTPResponse.Status
    package var code: String
    package var detail: String
    package var fields: [String: [String]]?
    package var headers: HTTPFields

    package init(
        _ status: HTTPResponse.Status,
        code: String,
        detail: String,
        fields: [String: [String]]? = nil,
        headers: HTTPFields = [:]
    ) {
        self.status = status
        self.code = code
        self.detail = detail
        self.fields = fields
        self.headers = headers
    }

    package var description: String { "\(status.code) \(code): \(detail)" }

    package func response(from request: Request, context: some RequestContext) throws -> Response {
        render(requestID: context.logger[metadataKey: RequestID.metadataKey]?.description)
    }

    /// Builds the response without a request, e.g. for the gateway's own answers.
    package func render(requestID: String?) -> Response {
        let body = ErrorBody(detail: detail, code: code, fields: fields, requestID: requestID)
        let data = (try? JSONCoding.encoder.encode(body)) ?? Data(#"{"detail":"error","code":"INTERNAL_ERROR"}"#.utf8)
        var headers = self.headers
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// The wire shape of every non-2xx answer.
package struct ErrorBody: Codable, Sendable, Equatable {
    package var detail: String
    package var code: String
    package var fields: [String: [String]]?
    package var requestId: String?

    package init(detail: String, code: String, fields: [String: [String]]? = nil, requestID: String? = nil) {
        self.detail = detail
        self.code = code
        self.fields = fields
        self.requestId = requestID
    }
}

extension AppError {
    package static func badRequest(_ detail: String, code: String = "BAD_REQUEST") -> AppError {
        AppError(.badRequest, code: code, detail: detail)
    }

    package static func validation(_ fields: [String: [String]], detail: String = "Validation failed") -> AppError {
        AppError(.unprocessableContent, code: "VALIDATION_ERROR", detail: detail, fields: fields)
    }

    /// 401 asking for an access token (`WWW-Authenticate: Bearer`).
    package static func unauthorized(_ detail: String = "Not authenticated", code: String = "UNAUTHORIZED") -> AppError {
        AppError(.unauthorized, code: code, detail: detail, headers: [.wwwAuthenticate: "Bearer"])
    }

    /// 401 for credentials that are not a bearer token (a password, a widget session, a caller token).
    package static func rejectedCredentials(_ detail: String, code: String) -> AppError {
        AppError(.unauthorized, code: code, detail: detail)
    }

    package static func forbidden(_ detail: String = "Not allowed") -> AppError {
        AppError(.forbidden, code: "FORBIDDEN", detail: detail)
    }

    package static func notFound(_ detail: String = "Not found", code: String = "NOT_FOUND") -> AppError {
        AppError(.notFound, code: code, detail: detail)
    }

    package static func conflict(_ detail: String, code: String = "CONFLICT") -> AppError {
        AppError(.conflict, code: code, detail: detail)
    }

    /// 413; `limit` names the configured maximum when it is known.
    package static func payloadTooLarge(limit: Int? = nil) -> AppError {
        AppError(
            .contentTooLarge, code: "PAYLOAD_TOO_LARGE",
            detail: limit.map { "Request body exceeds \($0) bytes" } ?? "Request body too large"
        )
    }

    package static func internalError(_ detail: String = "Internal server error") -> AppError {
        AppError(.internalServerError, code: "INTERNAL_ERROR", detail: detail)
    }

    package static func unavailable(_ detail: String, code: String = "SERVICE_UNAVAILABLE") -> AppError {
        AppError(.serviceUnavailable, code: code, detail: detail)
    }

    /// Maps whatever reached the error middleware to the suite's error, without leaking internals.
    package static func from(_ error: any Error) -> AppError {
        switch error {
        case let error as AppError:
            return error
        case let error as HTTPError:
            return AppError(
                error.status,
                code: defaultCode(for: error.status),
                detail: error.body ?? defaultDetail(for: error.status),
                headers: error.headers
            )
        case let error as DecodingError:
            return JSONCoding.map(error)
        case let error as any HTTPResponseError:
            return AppError(error.status, code: defaultCode(for: error.status), detail: defaultDetail(for: error.status))
        case let error where error.isDatabaseConnectionFailure:
            return AppError(
                .serviceUnavailable, code: "DATABASE_UNAVAILABLE", detail: "The database is unavailable; try again shortly",
                headers: [.retryAfter: "2"]
            )
        default:
            return .internalError()
        }
    }

    static func defaultCode(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: "BAD_REQUEST"
        case 401: "UNAUTHORIZED"
        case 403: "FORBIDDEN"
        case 404: "NOT_FOUND"
        case 405: "METHOD_NOT_ALLOWED"
        case 409: "CONFLICT"
        case 413: "PAYLOAD_TOO_LARGE"
        case 415: "UNSUPPORTED_MEDIA_TYPE"
        case 422: "VALIDATION_ERROR"
        case 429: "RATE_LIMITED"
        case 502: "BAD_GATEWAY"
        case 503: "SERVICE_UNAVAILABLE"
        case 504: "GATEWAY_TIMEOUT"
        default: status.code >= 500 ? "INTERNAL_ERROR" : "ERROR"
        }
    }

    static func defaultDetail(for status: HTTPResponse.Status) -> String {
        switch status.code {
        case 404: "Not found"
        case 405: "Method not allowed"
        case 413: "Request body too large"
        default: status.code >= 500 ? "Internal server error" : status.reasonPhrase
        }
    }
}
