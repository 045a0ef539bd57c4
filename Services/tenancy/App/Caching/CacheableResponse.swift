import HTTPTypes
import Hummingbird
import NIOCore

/// A public answer that clients and proxies may cache: a strong `ETag` from its body, its
/// `Cache-Control`, and `304 Not Modified` (no body) when `If-None-Match` names it.
enum CacheableResponse {
    static func make(
        _ body: ByteBuffer, contentType: String, cacheControl: String, request: Request, extraHeaders: HTTPFields = [:],
        tag: EntityTag? = nil
    ) -> Response {
        let tag = tag ?? EntityTag(of: body.readableBytesView)
        var headers = extraHeaders
        headers[.eTag] = tag.header
        headers[.cacheControl] = cacheControl
        if tag.matches(ifNoneMatch: request.headers[values: .ifNoneMatch].joined(separator: ", ").nilIfEmpty) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}

extension String {
    fileprivate var nilIfEmpty: String? { isEmpty ? nil : self }
}
