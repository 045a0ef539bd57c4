import Foundation
import NIOHTTP1
import HTTPTypes
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// Seed 000's attachments through chat's router: a session uploads (type by content, size and
/// rate limits), anyone with the id downloads, images preview, only the session deletes.
@Suite("chat attachments")
struct AttachmentsTests {
    struct View: Decodable {
        var id: String
        var name: String
        var mimeType: String
        var size: Int
        var uploadUrl: String
        var previewUrl: String?
    }

    static let png: [UInt8] = Array(Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")!)

    /// A widget session of a new tenant whose theme sets `theme` (attachments on, up to 20 MB, by default).
    func newSession(_ kb: KnowledgeHarness, theme: String? = #"{"attachments_enabled": true, "attachments_max_size": 20971520}"#) async throws -> String {
        let tenant = try await Fixtures.register(at: kb.stack.url(.tenancy))
        if let theme { try await Self.setTheme(kb, tenant, theme) }
        var headers = HTTPFields()
        headers[.xTenantSlug] = tenant.tenantSlug
        headers[.contentType] = "application/json"
        let answer = try await kb.send(.post, "/api/sessions/init", headers: headers, body: ByteBuffer(string: "{}"))
        struct Session: Decodable { var sessionId: String }
        return try answer.json(Session.self).sessionId
    }

    static func setTheme(_ kb: KnowledgeHarness, _ tenant: Fixtures.Registered, _ theme: String) async throws {
        let put = try await TestHTTP.send(
            .PUT, kb.stack.url(.tenancy) + "/api/admin/tenants/\(tenant.tenantId)/theme", headers: Fixtures.bearer(tenant.accessToken), body: theme
        )
        guard put.status == 200 else { throw FixtureError(description: "theme answered \(put.status): \(put.text)") }
    }

    func upload(_ kb: KnowledgeHarness, _ bytes: [UInt8], name: String, session: String?) async throws -> KnowledgeHarness.Answer {
        var headers = HTTPFields()
        headers[.contentType] = MultipartBody.contentType
        if let session { headers[.xSessionID] = session }
        let form = MultipartBody(parts: [.init(name: "file", filename: name, contentType: "text/html", bytes: bytes)])
        return try await kb.send(.post, "/attachments", headers: headers, body: ByteBuffer(bytes: form.bytes))
    }

    @Test func uploadDownloadPreviewDelete() async throws {
        try await KnowledgeHarness.with { kb in
            let session = try await newSession(kb)
            let image = try await upload(kb, Self.png, name: "photo.txt", session: session)
            #expect(image.status == 201, "\(image.text)")
            let view = try image.json(View.self)
            // The bytes decide: a PNG named .txt (and sent as text/html) is a PNG.
            #expect(view.mimeType == "image/png" && view.name == "photo.txt" && view.size == Self.png.count)
            #expect(view.uploadUrl == "/attachments/\(view.id)" && view.previewUrl == "/attachments/\(view.id)/preview")

            let download = try await kb.send(.get, view.uploadUrl)
            #expect(download.status == 200 && Array(download.body) == Self.png)
            #expect(download.headers[.contentType] == "image/png" && download.headers[.xContentTypeOptions] == "nosniff")
            #expect(try await kb.send(.get, view.previewUrl!).status == 200)

            let text = try await upload(kb, Array("plain notes".utf8), name: "../notes.txt", session: session)
            let textView = try text.json(View.self)
            #expect(textView.previewUrl == nil)
            #expect(try await kb.send(.get, "/attachments/\(textView.id)/preview").status == 404)
            let textDownload = try await kb.send(.get, textView.uploadUrl)
            #expect(textDownload.headers[.contentDisposition] == "attachment; filename=\"notes.txt\"")

            // Another session may not delete it; its own may, and then it is gone.
            let other = try await newSession(kb)
            var otherHeaders = HTTPFields()
            otherHeaders[.xSessionID] = other
            #expect(try await kb.send(.delete, view.uploadUrl, headers: otherHeaders).status == 404)
            var own = HTTPFields()
            own[.xSessionID] = session
            #expect(try await kb.send(.delete, view.uploadUrl, headers: own).status == 200)
            #expect(try await kb.send(.get, view.uploadUrl).status == 404)
            #expect(try await kb.send(.delete, view.uploadUrl, headers: own).status == 404)
            #expect(kb.storedFiles() == ["att-\(textView.id)"])
        }
    }

    @Test func badUploadsChangeNothing() async throws {
        try await KnowledgeHarness.with { kb in
            let session = try await newSession(kb)
            #expect(try await upload(kb, Self.png, name: "x.png", session: nil).status == 401)
            #expect(try await upload(kb, Self.png, name: "x.png", session: "sess_unknown").status == 401)
            let binary = try await upload(kb, [0x4D, 0x5A, 0x00, 0x90, 0xFF], name: "x.png", session: session)
            #expect(binary.status == 422)
            #expect(try await upload(kb, [], name: "x.png", session: session).status == 422)
            let big = try await upload(kb, [UInt8](repeating: 0x61, count: AttachmentsController.maxFileBytes + 1), name: "x.txt", session: session)
            #expect(big.status == 413)
            #expect(try await kb.count("SELECT count(*)::int FROM attachments") == 0)
            #expect(kb.storedFiles().isEmpty)
            #expect(try await kb.send(.get, "/attachments/not-a-uuid").status == 404)
            #expect(try await kb.send(.get, "/attachments/\(UUID())").status == 404)
        }
    }

    @Test func tenUploadsAMinutePerSession() async throws {
        try await KnowledgeHarness.with { kb in
            let session = try await newSession(kb)
            for index in 0..<10 {
                #expect(try await upload(kb, Array("note \(index)".utf8), name: "n.txt", session: session).status == 201)
            }
            let limited = try await upload(kb, Array("one more".utf8), name: "n.txt", session: session)
            #expect(limited.status == 429)
            #expect(limited.headers[.retryAfter] == "60")
            #expect(try await kb.count("SELECT count(*)::int FROM attachments") == 10)
            #expect(kb.storedFiles().count == 10)
            // Another session has its own allowance.
            #expect(try await upload(kb, Array("x".utf8), name: "n.txt", session: try await newSession(kb)).status == 201)
        }
    }

    /// Seed 000's `attachments_enabled` and `attachments_max_size` from the tenant's theme decide
    /// whether a session may attach and how large (within chat's own 10 MiB); a change shows at once
    /// with no cache (`TENANT_CACHE_SECONDS=0`).
    @Test func theWidgetsThemeDecidesWhetherAndHowLarge() async throws {
        try await KnowledgeHarness.with(overrides: ["TENANT_CACHE_SECONDS": "0"]) { kb in
            let tenant = try await Fixtures.register(at: kb.stack.url(.tenancy))
            var headers = HTTPFields()
            headers[.xTenantSlug] = tenant.tenantSlug
            headers[.contentType] = "application/json"
            struct Session: Decodable { var sessionId: String }
            let session = try await kb.send(.post, "/api/sessions/init", headers: headers, body: ByteBuffer(string: "{}")).json(Session.self).sessionId

            // The theme's default: no attachments.
            let disabled = try await upload(kb, Array("notes".utf8), name: "n.txt", session: session)
            #expect(disabled.status == 403, "\(disabled.text)")
            #expect(try disabled.error().code == "ATTACHMENTS_DISABLED")

            try await Self.setTheme(kb, tenant, #"{"attachments_enabled": true, "attachments_max_size": 1024}"#)
            let tooLarge = try await upload(kb, [UInt8](repeating: 0x61, count: 1_025), name: "n.txt", session: session)
            #expect(tooLarge.status == 413, "\(tooLarge.text)")
            #expect(try tooLarge.error().detail.contains("1024"))
            #expect(try await kb.count("SELECT count(*)::int FROM attachments") == 0)
            #expect(kb.storedFiles().isEmpty)
            let fits = try await upload(kb, [UInt8](repeating: 0x61, count: 1_024), name: "n.txt", session: session)
            #expect(fits.status == 201, "\(fits.text)")

            // Switched off again: refused at once, and what was uploaded stays downloadable.
            try await Self.setTheme(kb, tenant, #"{"attachments_enabled": false}"#)
            #expect(try await upload(kb, Array("more".utf8), name: "n.txt", session: session).status == 403)
            #expect(try await kb.count("SELECT count(*)::int FROM attachments") == 1)
            #expect(try await kb.send(.get, "/attachments/\(try fits.json(View.self).id)").status == 200)
        }
    }
}
