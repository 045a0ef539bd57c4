import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// Why a call to another service did not produce the answer the caller wanted.
package enum InternalCallError: Error, CustomStringConvertible {
    /// Could not even connect: the request certainly had no effect.
    case notConnected(service: String, reason: String)
    /// The connection broke before an answer arrived: the request may or may not have had an effect.
    case unavailable(service: String, reason: String)
    /// No answer within the deadline.
    case timedOut(service: String)
    /// The service answered with a non-2xx status.
    case rejected(service: String, status: Int, body: ErrorBody?)
    /// The service answered 2xx with a body we could not read.
    case invalidResponse(service: String, reason: String)

    package var description: String {
        switch self {
        case .notConnected(let service, let reason): "\(service) not reachable: \(reason)"
        case .unavailable(let service, let reason): "\(service) unavailable: \(reason)"
        case .timedOut(let service): "\(service) timed out"
        case .rejected(let service, let status, let body): "\(service) answered \(status): \(body?.detail ?? "-")"
        case .invalidResponse(let service, let reason): "\(service) sent an unreadable answer: \(reason)"
        }
    }

    /// What the public caller should see when the call cannot be recovered from.
    package var publicError: AppError {
        switch self {
        case .notConnected(let service, _), .unavailable(let service, _):
            AppError(.serviceUnavailable, code: "UPSTREAM_UNAVAILABLE", detail: "The \(service) service is unavailable; try again shortly")
        case .timedOut(let service):
            AppError(.gatewayTimeout, code: "UPSTREAM_TIMEOUT", detail: "The \(service) service did not answer in time")
        case .rejected(let service, _, _), .invalidResponse(let service, _):
            AppError(.badGateway, code: "UPSTREAM_ERROR", detail: "The \(service) service could not complete the request")
        }
    }
}

/// JSON over HTTP to another service's `/internal/*` routes: pooled connections, a deadline,
/// a caller token made for each request (see `CallerIdentity`) and the request id of the
/// request being served.
package struct InternalClient: Sendable {
    package let service: String
    let baseURL: String
    let http: HTTPClient
    let identity: CallerIdentity
    let timeout: TimeAmount

    package init(service: String, baseURL: String, http: HTTPClient, identity: CallerIdentity, timeout: TimeAmount = .seconds(10)) {
        self.service = service
        self.baseURL = baseURL
        self.http = http
        self.identity = identity
        self.timeout = timeout
    }

    private struct Empty: Codable {}

    /// Sends `body` and decodes the 2xx answer as `Reply`.
    package func send<Reply: Decodable>(
        _ method: HTTPRequest.Method,
        _ path: String,
        body: (some Encodable)? = nil as String?,
        as reply: Reply.Type,
        logger: Logger
    ) async throws -> Reply {
        let data = try await exchange(method, path, body: body, logger: logger)
        do {
            return try JSONCoding.decoder.decode(Reply.self, from: data)
        } catch {
            throw InternalCallError.invalidResponse(service: service, reason: "\(error)")
        }
    }

    /// Sends `body` and ignores the 2xx answer's content.
    package func send(_ method: HTTPRequest.Method, _ path: String, body: (some Encodable)? = nil as String?, logger: Logger) async throws {
        _ = try await exchange(method, path, body: body, logger: logger)
    }

    private func exchange(_ method: HTTPRequest.Method, _ path: String, body: (some Encodable)?, logger: Logger) async throws -> Data {
        let url = baseURL + path
        var request = HTTPClientRequest(url: url)
        request.method = HTTPMethod(rawValue: method.rawValue)
        request.headers.add(name: "Accept", value: "application/json")
        if let requestID = logger[metadataKey: RequestID.metadataKey]?.description {
            request.headers.add(name: "X-Request-ID", value: requestID)
        }
        let bytes = try body.map { ByteBuffer(bytes: try JSONCoding.encoder.encode($0)) }
        if let bytes {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(bytes)
        }
        let token = try await identity.token(for: service, method: method, target: Self.requestTarget(of: url), body: bytes)
        request.headers.add(name: "X-Caller-Token", value: token)
        let response: HTTPClientResponse
        let answer: ByteBuffer
        do {
            response = try await http.execute(request, timeout: timeout, logger: logger)
            answer = try await response.body.collect(upTo: 4 << 20)
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            throw InternalCallError.timedOut(service: service)
        } catch where Self.isConnectFailure(error) {
            throw InternalCallError.notConnected(service: service, reason: "\(error)")
        } catch {
            throw InternalCallError.unavailable(service: service, reason: "\(error)")
        }
        let data = Data(answer.readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            throw InternalCallError.rejected(
                service: service,
                status: Int(response.status.code),
                body: try? JSONCoding.decoder.decode(ErrorBody.self, from: data)
            )
        }
        return data
    }
}

extension InternalClient {
    /// The path and query of `url` as they go on the wire: what the callee sees and the caller token covers.
    package static func requestTarget(of url: String) -> String {
        guard let components = URLComponents(string: url) else { return "/" }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        return components.percentEncodedQuery.map { "\(path)?\($0)" } ?? path
    }

    /// Errors raised before a connection existed, so the peer cannot have seen the request.
    static func isConnectFailure(_ error: any Error) -> Bool {
        if let error = error as? HTTPClientError { return error == .connectTimeout }
        if let error = error as? IOError { return [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, EADDRNOTAVAIL].contains(error.errnoCode) }
        if error is NIOConnectionError { return true }
        if case ChannelError.connectTimeout = error { return true }
        return false
    }
}

extension HTTPClient {
    /// A client for service-to-service calls: fails fast when the peer is down (no connect
    /// retries), so callers can answer 503 instead of waiting for their deadline.
    package static func makeInternal(maxConnectionsPerHost: Int = 16) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(2), read: .seconds(60))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = maxConnectionsPerHost
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }
}
