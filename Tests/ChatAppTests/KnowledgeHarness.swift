import Foundation
import NIOHTTP1
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import LocalPostgres
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// chat's router driven in this process (HummingbirdTesting's `.router`, which also runs chat's
/// ingestion worker and outbox relay) against its own real PostgreSQL database, with real auth,
/// billing and tenancy beside it: tenants are registered through tenancy, tokens for any role come
/// from auth's key (`TokenForge`), and the worker asks tenancy for the tenant's language.
struct KnowledgeHarness: Sendable {
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPFields
        var body: Data

        func json<T: Decodable>(_ type: T.Type = T.self) throws -> T { try JSONCoding.decoder.decode(T.self, from: body) }
        func error() throws -> ErrorBody { try json(ErrorBody.self) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    struct FileView: Decodable, Sendable {
        var id: String
        var filename: String
        var originalName: String
        var mimeType: String
        var fileSize: Int
        var processingStatus: String
        var processingError: String?
        var chunkCount: Int
    }

    struct StatusView: Decodable, Sendable {
        var id: String
        var status: String
        var error: String?
        var chunkCount: Int
    }

    let client: any TestClientProtocol
    let stack: TestStack
    let forge: TokenForge

    var database: DatabaseConfig { stack.databases[.chat]! }
    var storageDirectory: String { stack.environment(for: .chat)["STORAGE_DIR"]! }

    static func with(overrides: [String: String] = [:], body: @escaping @Sendable (KnowledgeHarness) async throws -> Void) async throws {
        let stack = try await TestStack.make(overrides: overrides)
        do {
            try await stack.start(.auth, .billing, .tenancy)
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let app = try await buildChatApplication(config: ChatConfig(settings: Settings.variables(stack.environment(for: .chat))))
            try await app.test(.router) { client in
                try await body(KnowledgeHarness(client: client, stack: stack, forge: forge))
            }
            await stack.stopAll()
        } catch {
            await stack.stopAll()
            throw error
        }
    }

    /// A tenant registered through tenancy (active, with its owner), optionally with a settings language.
    func tenant(language: String? = nil) async throws -> UUID {
        let registered = try await Fixtures.register(at: stack.url(.tenancy))
        if let language {
            let response = try await TestHTTP.send(
                .PUT, stack.url(.tenancy) + "/api/tenant/settings", headers: Fixtures.bearer(registered.accessToken),
                json: ["settings": ["language": language]]
            )
            guard response.status == 200 else { throw FixtureError(description: "settings answered \(response.status): \(response.text)") }
        }
        return UUID(uuidString: registered.tenantId)!
    }

    func token(_ tenant: UUID, _ role: Role = .admin) async throws -> String {
        try await forge.sign(tenantID: tenant, role: role)
    }

    func send(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, headers extra: HTTPFields = [:], body: ByteBuffer? = nil) async throws -> Answer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(response.body.readableBytesView))
    }

    /// `bytes` uploaded as the form's `file` under `filename`.
    func upload(_ bytes: [UInt8], filename: String, token: String, query: String = "") async throws -> Answer {
        let form = MultipartBody(parts: [.init(name: "file", filename: filename, contentType: "application/octet-stream", bytes: bytes)])
        var headers = HTTPFields()
        headers[.contentType] = MultipartBody.contentType
        return try await send(.post, "/api/knowledge-base/upload\(query)", token: token, headers: headers, body: ByteBuffer(bytes: form.bytes))
    }

    /// Uploads and waits until the worker has finished with the document; its final status.
    func ingest(_ bytes: [UInt8], filename: String, token: String) async throws -> StatusView {
        let uploaded = try await upload(bytes, filename: filename, token: token)
        guard uploaded.status == 201 else { throw FixtureError(description: "upload of \(filename) answered \(uploaded.status): \(uploaded.text)") }
        return try await finished(try uploaded.json(FileView.self).id, token: token)
    }

    func finished(_ id: String, token: String) async throws -> StatusView {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let status = try await send(.get, "/api/knowledge-base/files/\(id)/status", token: token).json(StatusView.self)
            if status.status == "completed" || status.status == "failed" { return status }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError(description: "document \(id) was not processed within 60 s")
    }

    func count(_ query: PostgresQuery) async throws -> Int {
        try await TestPostgres.count(database, query)
    }

    /// The chunks of a document, in order.
    func chunks(_ id: String) async throws -> [(content: String, config: String)] {
        try await TestPostgres.withClient(database) { client in
            var found: [(String, String)] = []
            let rows = try await client.query(
                "SELECT content, search_config::text FROM knowledge_chunks WHERE document_id = \(UUID(uuidString: id)!) ORDER BY position"
            )
            for try await (content, config) in rows.decode((String, String).self) { found.append((content, config)) }
            return found
        }
    }

    func storedFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: storageDirectory)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }
}

/// Documents of each format, built here: a real (minimal) PDF with its cross-reference table, and
/// DOCX archives (normal and hostile) written by Python's zipfile module.
enum KnowledgeFiles {
    /// A one-page PDF showing `lines` in Helvetica (ASCII only).
    static func pdf(_ lines: [String]) -> [UInt8] { SamplePDF.make(lines) }

    static let docxScript = #"""
        import sys, zipfile
        kind, path = sys.argv[1], sys.argv[2]
        ns = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
        def para(text):
            return '<w:p><w:r><w:t xml:space="preserve">' + text + '</w:t></w:r></w:p>'
        with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as z:
            z.writestr('[Content_Types].xml', '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
            if kind == 'doc':
                body = para('Opening hours: Monday to Friday, 9 to 18.') + '<w:p><w:r><w:t>Returns within</w:t></w:r><w:r><w:tab/><w:t>30 days &amp; free.</w:t></w:r></w:p>'
                z.writestr('word/document.xml', '<?xml version="1.0" encoding="UTF-8"?><w:document ' + ns + '><w:body>' + body + '</w:body></w:document>')
            elif kind == 'bomb':
                with z.open('word/document.xml', 'w') as f:
                    f.write(('<w:document ' + ns + '><w:body><w:p><w:r><w:t>').encode())
                    block = b' ' * (1 << 20)
                    for _ in range(64):
                        f.write(block)
                    f.write(b'</w:t></w:r></w:p></w:body></w:document>')
            elif kind == 'dtd':
                z.writestr('word/document.xml', '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><w:document ' + ns + '><w:body>' + para('&b;') + '</w:body></w:document>')
            elif kind == 'nodoc':
                z.writestr('word/other.xml', '<x/>')
        """#

    /// A DOCX of `kind`: `doc` (two paragraphs), `bomb` (64 MB of document from a few kB),
    /// `dtd` (entity expansion), `nodoc` (no word/document.xml).
    static func docx(_ kind: String) throws -> [UInt8] {
        let path = NSTemporaryDirectory() + "kb-\(UUID().uuidString).docx"
        defer { try? FileManager.default.removeItem(atPath: path) }
        // posix_spawn and waitpid, not Foundation's Process (see LocalPostgres's ChildProcess).
        try ChildProcess.run(["python3", "-c", docxScript, kind, path])
        return Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
