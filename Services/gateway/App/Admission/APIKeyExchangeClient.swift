import AsyncHTTPClient
import Foundation
import InternalAPI
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// Asks auth (`POST /internal/gateway/api-keys/exchange`, as the gateway by its own key) for an
/// access token for an API key. Failures come out as `InternalCallError`, as from other calls
/// between services.
struct APIKeyExchangeClient: Sendable {
    /// auth's base URL.
    let authURL: String
    let identity: CallerIdentity
    let http: HTTPClient
    let timeout: TimeAmount
    let logger: Logger

    func exchange(_ key: String) async throws -> APIKeyExchangeReply {
        var request = HTTPClientRequest(url: authURL + "/internal/gateway/api-keys/exchange")
        request.method = .POST
        request.headers.add(name: "X-Caller-Token", value: try await identity.token(for: "auth"))
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONCoding.encoder.encode(APIKeyExchangeRequest(key: key))))
        let status: UInt
        let body: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: timeout, logger: logger)
            status = response.status.code
            body = try await response.body.collect(upTo: 1 << 16)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw InternalCallError.timedOut(service: "auth")
        } catch {
            throw InternalCallError.unavailable(service: "auth", reason: "\(error)")
        }
        let data = Data(body.readableBytesView)
        guard status == 200 else {
            throw InternalCallError.rejected(service: "auth", status: Int(status), body: try? JSONCoding.decoder.decode(ErrorBody.self, from: data))
        }
        do {
            return try JSONCoding.decoder.decode(APIKeyExchangeReply.self, from: data)
        } catch {
            throw InternalCallError.invalidResponse(service: "auth", reason: "\(error)")
        }
    }
}
