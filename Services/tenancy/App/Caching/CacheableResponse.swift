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
        if let notModified = notModified(tag, cacheControl: cacheControl, request: request, extraHeaders: extraHeaders) {
            return notModified
        }
        var headers = extraHeaders
        headers[.eTag] = tag.header
        headers[.cacheControl] = cacheControl
        headers[.contentType] = contentType
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    /// The 304 for a request whose `If-None-Match` names `tag`, or nil: lets a caller that knows
    /// the tag before the body (a stored file's hash) skip reading the body.
    static func notModified(_ tag: EntityTag, cacheControl: String, request: Request, extraHeaders: HTTPFields = [:]) -> Response? {
        let field = request.headers[values: .ifNoneMatch].joined(separator: ", ")
        guard !field.isEmpty, tag.matches(ifNoneMatch: field) else { return nil }
        var headers = extraHeaders
        headers[.eTag] = tag.header
        headers[.cacheControl] = cacheControl
        return Response(status: .notModified, headers: headers)
    }
}
