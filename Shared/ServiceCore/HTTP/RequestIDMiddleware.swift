import Foundation
import HTTPTypes
import Hummingbird
import Logging

extension HTTPField.Name {
    package static let xRequestID = HTTPField.Name("X-Request-ID")!
    package static let xSessionID = HTTPField.Name("X-Session-ID")!
    package static let xTenantSlug = HTTPField.Name("X-Tenant-Slug")!
}

/// Logger metadata key under which every log line carries the request id.
package enum RequestID {
    package static let metadataKey = "request_id"

    /// Accepts ids of up to 128 visible, header-safe characters; anything else is replaced.
    package static func acceptable(_ value: String?) -> String? {
        guard let value, !value.isEmpty, value.utf8.count <= 128 else { return nil }
        let allowed = value.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                || byte == 0x2D || byte == 0x5F || byte == 0x2E || byte == 0x3A
        }
        return allowed ? value : nil
    }
}

/// Keeps a sane incoming `X-Request-ID` (or makes one), puts it in the logger and echoes it back.
package struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var request = request
        let id: String
        if let incoming = RequestID.acceptable(request.headers[.xRequestID]) {
            id = incoming
        } else {
            // Rewrite the header so whatever forwards this request passes the id we log.
            id = UUID().uuidString.lowercased()
            var head = request.head
            head.headerFields[.xRequestID] = id
            request = Request(head: head, body: request.body)
        }
        var context = context
        context.logger[metadataKey: RequestID.metadataKey] = .string(id)
        var response = try await next(request, context)
        response.headers[.xRequestID] = id
        return response
    }
}
