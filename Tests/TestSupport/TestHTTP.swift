import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import ServiceCore

/// An HTTP answer as tests look at it.
package struct TestResponse: Sendable {
    package var status: Int
    package var headers: HTTPHeaders
    package var body: Data

    package var text: String { String(decoding: body, as: UTF8.self) }

    package func json<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        try JSONCoding.decoder.decode(T.self, from: body)
    }

    /// The suite's error body; fails the test's expectation if the answer is not one.
    package func error() throws -> ErrorBody { try json(ErrorBody.self) }

    package func header(_ name: String) -> String? { headers.first(name: name) }
}

/// Real HTTP from tests, with AsyncHTTPClient.
package enum TestHTTP {
    package static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(5), read: .seconds(60))
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    package static func send(
        _ method: HTTPMethod,
        _ url: String,
        headers: [String: String] = [:],
        json: (any Encodable)? = nil,
        body: String? = nil,
        bytes: [UInt8]? = nil,
        timeout: TimeAmount = .seconds(30)
    ) async throws -> TestResponse {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let json {
            request.headers.replaceOrAdd(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONCoding.encoder.encode(json)))
        } else if let bytes = bytes ?? body.map({ Array($0.utf8) }) {
            if !request.headers.contains(name: "Content-Type") { request.headers.add(name: "Content-Type", value: "application/json") }
            request.body = .bytes(ByteBuffer(bytes: bytes))
        }
        let response = try await client.execute(request, timeout: timeout)
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return TestResponse(status: Int(response.status.code), headers: response.headers, body: Data(bytes.readableBytesView))
    }

    /// Polls `GET /live` until the service answers, for at most `timeout`.
    package static func waitUntilLive(_ baseURL: String, timeout: Duration = .seconds(60)) async throws {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let response = try? await send(.GET, baseURL + "/live", timeout: .seconds(2)), response.status == 200 { return }
            guard ContinuousClock.now < deadline else { throw TimeoutError() }
            try await Task.sleep(for: .milliseconds(100))
        }
    }
}

/// One Server-Sent Event as a client received it.
package struct ReceivedEvent: Sendable {
    /// Time since the request was sent.
    package var at: Duration
    package var data: String
}

extension TestHTTP {
    /// POSTs and reads a `text/event-stream` answer, noting when each `data:` event arrived.
    package static func events(
        _ url: String,
        headers: [String: String],
        body: String? = nil
    ) async throws -> (status: Int, contentType: String?, events: [ReceivedEvent]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body))
        }
        let start = ContinuousClock.now
        let response = try await client.execute(request, timeout: .seconds(30))
        var events: [ReceivedEvent] = []
        var pending = ""
        for try await chunk in response.body {
            pending += String(buffer: chunk)
            while let range = pending.range(of: "\n\n") {
                let frame = String(pending[..<range.lowerBound])
                pending.removeSubrange(..<range.upperBound)
                for line in frame.split(separator: "\n") where line.hasPrefix("data: ") {
                    events.append(ReceivedEvent(at: ContinuousClock.now - start, data: String(line.dropFirst(6))))
                }
            }
        }
        return (Int(response.status.code), response.headers.first(name: "Content-Type"), events)
    }
}
