import Foundation
import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayApp

/// `UpstreamAnswerParser`, the gateway's reader of upstream answers, byte by byte: every answer
/// shape split at every byte, the framing it picks, what it refuses, and `HeadEncoding`'s relayed
/// heads made from what it read.
@Suite("upstream answer parser")
struct UpstreamAnswerParserTests {
    /// What the parser gave, with the body parts joined.
    struct Answer: Equatable {
        var code: Int
        var fields: String
        var keepAlive: Bool
        var contentLength: Int?
        var chunked: Bool
        var body = ""
        var ended = false
    }

    /// Feeds `chunks` one after another, answering `methods` in order; the answers read.
    static func parse(_ chunks: [String], methods: [HTTPMethod] = [.GET], closeAtEnd: Bool = false) throws -> [Answer] {
        var parser = UpstreamAnswerParser()
        var methods = methods[...]
        parser.expect(method: methods.removeFirst())
        var answers: [Answer] = []
        for chunk in chunks {
            var input = ByteBuffer(string: chunk)
            while let event = try parser.next(&input) {
                switch event {
                case .head(let head):
                    answers.append(
                        Answer(
                            code: head.code, fields: String(buffer: head.fields), keepAlive: head.keepAlive, contentLength: head.contentLength,
                            chunked: head.chunked
                        )
                    )
                case .body(let part):
                    answers[answers.count - 1].body += String(buffer: part)
                case .end:
                    answers[answers.count - 1].ended = true
                    if let next = methods.popFirst() { parser.expect(method: next) }
                }
            }
            #expect(input.readableBytes == 0 || parser.isSwitched, "bytes left over while an answer was due")
        }
        if closeAtEnd, parser.connectionClosed() { answers[answers.count - 1].ended = true }
        return answers
    }

    /// The same bytes split in two at every offset must read the same.
    static func everySplit(_ wire: String, methods: [HTTPMethod] = [.GET], closeAtEnd: Bool = false) throws -> [Answer] {
        let whole = try parse([wire], methods: methods, closeAtEnd: closeAtEnd)
        let bytes = Array(wire.utf8)
        for cut in 1..<bytes.count {
            let split = try parse(
                [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)], methods: methods, closeAtEnd: closeAtEnd
            )
            #expect(split == whole, "split at \(cut)")
        }
        // And one byte at a time.
        #expect(try parse(bytes.map { String(decoding: [$0], as: UTF8.self) }, methods: methods, closeAtEnd: closeAtEnd) == whole)
        return whole
    }

    @Test func answersWithALengthReadTheSameHoweverTheBytesAreSplit() throws {
        let wire = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nplans"
            + "HTTP/1.1 404 Not Found\r\ncontent-length:  2 \r\nConnection: close\r\n\r\n{}"
        let answers = try Self.everySplit(wire, methods: [.GET, .GET])
        #expect(
            answers == [
                Answer(code: 200, fields: "Content-Type: text/plain\r\nContent-Length: 5\r\n", keepAlive: true, contentLength: 5, chunked: false, body: "plans", ended: true),
                Answer(code: 404, fields: "content-length:  2 \r\nConnection: close\r\n", keepAlive: false, contentLength: 2, chunked: false, body: "{}", ended: true),
            ]
        )
    }

    @Test func chunkedAnswersAreDechunkedWithExtensionsAndTrailersSkipped() throws {
        let wire = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5;name=value\r\nhello\r\n6\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "HTTP/1.1 204 No Content\r\n\r\n"
        let answers = try Self.everySplit(wire, methods: [.POST, .DELETE])
        #expect(answers.count == 2)
        #expect(answers.first?.chunked == true)
        #expect(answers.first?.body == "hello world0123456789")
        #expect(answers.first?.ended == true)
        #expect(answers.last == Answer(code: 204, fields: "", keepAlive: true, contentLength: nil, chunked: false, ended: true))
    }

    @Test func answersWithoutABodyEndAtTheirHead() throws {
        // HEAD keeps its length but has no body; 204 and 304 never have one; 1xx are skipped.
        let wire = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\nETag: \"v\"\r\n\r\n"
            + "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"
        let answers = try Self.everySplit(wire, methods: [.HEAD, .GET, .POST])
        #expect(answers.map(\.code) == [200, 304, 201])
        #expect(answers.allSatisfy { $0.ended && $0.body.isEmpty })
        #expect(answers[0].contentLength == 100)
    }

    @Test func anAnswerWithoutLengthEndsWithTheConnection() throws {
        let wire = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n"
        let open = try Self.parse([wire])
        #expect(open.first?.ended == false)
        #expect(open.first?.keepAlive == false)
        let closed = try Self.everySplit(wire, closeAtEnd: true)
        #expect(closed.first?.body == "data: 1\n\ndata: 2\n\n")
        #expect(closed.first?.ended == true)
        // A connection closing in the middle of an answer with a length did not end it.
        var parser = UpstreamAnswerParser()
        parser.expect(method: .GET)
        var input = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc")
        while try parser.next(&input) != nil {}
        let endedWell = parser.connectionClosed()
        #expect(!endedWell)
    }

    @Test func keepAliveFollowsVersionAndConnection() throws {
        func keepAlive(_ statusLine: String, _ connection: String?) throws -> Bool? {
            let field = connection.map { "Connection: \($0)\r\n" } ?? ""
            return try Self.parse(["\(statusLine)\r\n\(field)Content-Length: 0\r\n\r\n"]).first?.keepAlive
        }
        #expect(try keepAlive("HTTP/1.1 200 OK", nil) == true)
        #expect(try keepAlive("HTTP/1.1 200 OK", "Close") == false)
        #expect(try keepAlive("HTTP/1.1 200 OK", "x-trace, close") == false)
        #expect(try keepAlive("HTTP/1.0 200 OK", nil) == false)
        #expect(try keepAlive("HTTP/1.0 200 OK", "keep-alive") == true)
        // No reason phrase, with or without its space.
        #expect(try keepAlive("HTTP/1.1 200 ", nil) == true)
        #expect(try keepAlive("HTTP/1.1 200", nil) == true)
    }

    @Test func a101EndsAtItsHeadAndLeavesWhatFollowsAlone() throws {
        var parser = UpstreamAnswerParser()
        parser.expect(method: .GET)
        var input = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{02}hi")
        guard case .head(let head) = try parser.next(&input) else { Issue.record("no head"); return }
        #expect(head.code == 101)
        #expect(head.headers["upgrade"] == ["websocket"])
        guard case .end = try parser.next(&input) else { Issue.record("no end"); return }
        #expect(parser.isSwitched)
        let after = try parser.next(&input)
        #expect(after == nil)
        #expect(input.readableBytes == "\u{81}\u{02}hi".utf8.count)
    }

    @Test func bytesWhileNoAnswerIsDueAreLeftForTheCaller() throws {
        var parser = UpstreamAnswerParser()
        var input = ByteBuffer(string: "HTTP/1.1 200 OK\r\n\r\n")
        let event = try parser.next(&input)
        #expect(event == nil)
        #expect(input.readableBytes == 19)
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n", UpstreamAnswerParser.ParseError.badLineEnd),
        ("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n", .badLineEnd),
        ("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 0\r\n\r\n", .malformedHeader),
        ("HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n", .malformedHeader),
        ("HTTP/1.1 200 OK\r\nX-A: a\u{01}b\r\nContent-Length: 0\r\n\r\n", .malformedHeader),
        ("HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 0\r\n\r\n", .badLineEnd),
        ("HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", .malformedHeader),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: 1e3\r\n\r\n", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", .badContentLength),
        ("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", .badTransferEncoding),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", .badTransferEncoding),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", .badTransferEncoding),
        ("HTTP/2.0 200 OK\r\n\r\n", .malformedStatusLine),
        ("HTTP/1.1 20 OK\r\n\r\n", .malformedStatusLine),
        ("HTTP/1.1 099 Low\r\n\r\n", .malformedStatusLine),
        ("HTTP/1.1 200OK\r\n\r\n", .malformedStatusLine),
        ("http/1.1 200 OK\r\n\r\n", .malformedStatusLine),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", .badChunk),
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", .badChunk),
    ])
    func malformedAnswersAreRefused(wire: String, error: UpstreamAnswerParser.ParseError) {
        #expect(throws: error) { try Self.parse([wire]) }
        // However the bytes come.
        #expect(throws: error) { try Self.parse(Array(wire.utf8).map { String(decoding: [$0], as: UTF8.self) }) }
    }

    @Test func headsAndChunkLinesHaveALimit() {
        let big = "HTTP/1.1 200 OK\r\n" + String(repeating: "X-Filler: \(String(repeating: "f", count: 100))\r\n", count: 700)
        #expect(throws: UpstreamAnswerParser.ParseError.headTooLarge) { try Self.parse([big + "Content-Length: 0\r\n\r\n"]) }
        // Never ended, fed in parts: refused once it passes the limit, not held without end.
        #expect(throws: UpstreamAnswerParser.ParseError.headTooLarge) {
            try Self.parse(["HTTP/1.1 200 OK\r\n"] + Array(repeating: "X-Filler: \(String(repeating: "f", count: 1000))\r\n", count: 80))
        }
        let longExtension = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" + String(repeating: "e", count: 5000)
        #expect(throws: UpstreamAnswerParser.ParseError.badChunk) { try Self.parse([longExtension]) }
    }

    /// A relayed head as the encoder writes it, with no lines added by the gateway but its request id.
    static func relayed(_ wire: String, noStore: Bool = false, version: HTTPVersion = .http1_1) throws -> String {
        var parser = UpstreamAnswerParser()
        parser.expect(method: .GET)
        var input = ByteBuffer(string: wire)
        guard case .head(let head) = try parser.next(&input) else { return "" }
        var added = AddedLines(securityPresent: head.security, requestID: "r")
        added.connection = .none
        let buffer = HeadEncoding.write(
            RelayedHead(head: head, added: added, version: version, method: .GET, noStore: noStore), addChunked: false, allocator: ByteBufferAllocator()
        )
        return String(buffer: buffer)
    }

    @Test func relayedHeadsKeepTheUpstreamsLinesLessTheDroppedOnes() throws {
        let security = AddedLines.securityBlock.count
        // Nothing dropped: the lines as they came, then what the gateway adds.
        let plain = try Self.relayed("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n\r\n")
        #expect(plain.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"))
        #expect(plain.hasSuffix("X-Request-ID: r\r\n\r\n"))
        #expect(plain.utf8.count == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n".utf8.count + security + "X-Request-ID: r\r\n\r\n".utf8.count)
        // Hop-by-hop, the gateway's own, names listed in Connection: dropped, order kept.
        let hop = try Self.relayed(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nA: 1\r\nKeep-Alive: timeout=5\r\nx-secret: s\r\nB: 2\r\nX-Request-ID: upstream\r\nX-RateLimit-Limit: 1\r\nContent-Length: 0\r\nC: 3\r\n\r\n"
        )
        #expect(hop.hasPrefix("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nContent-Length: 0\r\nC: 3\r\nContent-Security-Policy"))
        #expect(!hop.contains("upstream") && !hop.lowercased().contains("secret") && !hop.contains("X-RateLimit-Limit"))
        // A 304's length goes; a credential route's Cache-Control becomes no-store.
        let notModified = try Self.relayed("HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\nCache-Control: max-age=60\r\nETag: \"v\"\r\n\r\n", noStore: true)
        #expect(notModified.hasPrefix("HTTP/1.1 304 Not Modified\r\nETag: \"v\"\r\nCache-Control: no-store\r\nContent-Security-Policy"))
        // The upstream's own security header wins; the gateway adds the others.
        let own = try Self.relayed("HTTP/1.1 200 OK\r\nX-Frame-Options: SAMEORIGIN\r\nContent-Length: 0\r\n\r\n", version: .http1_0)
        #expect(own.hasPrefix("HTTP/1.0 200 OK\r\nX-Frame-Options: SAMEORIGIN\r\n"))
        #expect(own.components(separatedBy: "X-Frame-Options").count == 2)
        #expect(own.contains("X-Content-Type-Options: nosniff\r\n"))
    }

    @Test func linesPastTheSixtyFourthAreDroppedByNameToo() throws {
        let many = (0..<70).map { "X-\($0): v\r\n" }.joined()
        let head = try Self.relayed("HTTP/1.1 200 OK\r\n\(many)Connection: close\r\nTransfer-Encoding: chunked\r\nX-Last: yes\r\n\r\n")
        #expect(head.hasPrefix("HTTP/1.1 200 OK\r\n\(many)X-Last: yes\r\nContent-Security-Policy"))
    }
}
