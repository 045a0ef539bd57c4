import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport

@testable import TenancyApp

/// Tenants made straight in tenancy's database, with tokens signed by auth's real key, for the
/// theme and branding tests (no registration needed: these routes only read the token's claims).
struct LookTenants {
    let stack: TestStack
    let forge: TokenForge

    static func make(_ stack: TestStack) async throws -> LookTenants {
        LookTenants(stack: stack, forge: try await TokenForge.fromAuthDatabase(stack.databases[.auth]!))
    }

    var database: DatabaseConfig { stack.databases[.tenancy]! }
    var tenancy: String { stack.url(.tenancy) }
    var storageDirectory: String { stack.environment(for: .tenancy)["STORAGE_DIR"]! }

    struct Tenant {
        var id: UUID
        var slug: String
    }

    func create(status: String = "active") async throws -> Tenant {
        let id = UUID()
        let slug = "look-\(id.uuidString.prefix(8).lowercased())"
        try await TestPostgres.withClient(database) { client in
            try await client.query(
                """
                INSERT INTO tenants (id, name, slug, status, rate_limit_per_minute) VALUES (\(id), 'Look Shop', \(slug), \(status), 60)
                """
            )
            try await client.query("INSERT INTO onboarding_progress (id, tenant_id) VALUES (\(UUID()), \(id))")
        }
        return Tenant(id: id, slug: slug)
    }

    func headers(_ tenant: Tenant, role: Role = .owner) async throws -> [String: String] {
        Fixtures.bearer(try await forge.sign(tenantID: tenant.id, role: role))
    }

    /// The stored overrides of a tenant's theme (`nil`: no row).
    func overrides(_ tenant: Tenant) async throws -> String? {
        try await TestPostgres.withClient(database) { client -> String? in
            for try await text in try await client.query("SELECT overrides::text FROM tenant_themes WHERE tenant_id = \(tenant.id)")
                .decode(String.self)
            {
                return text
            }
            return nil
        }
    }

    func count(_ query: PostgresQuery) async throws -> Int {
        try await TestPostgres.count(database, query)
    }

    func brandingStep(_ tenant: Tenant) async throws -> Bool {
        try await count("SELECT count(*)::int FROM onboarding_progress WHERE tenant_id = \(tenant.id) AND step_branding_uploaded") == 1
    }

    /// Names of the files in the storage directory.
    func storedFiles() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: storageDirectory)) ?? []).sorted()
    }
}

/// Small images built byte by byte: real ones, and ones that lie in their headers.
enum TestImages {
    /// A real 1×1 PNG.
    static let png1x1: [UInt8] = Array(Data(base64Encoded: "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")!)
    /// A real 1×1 GIF.
    static let gif1x1: [UInt8] = Array(Data(base64Encoded: "R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")!)

    static func be32(_ value: Int) -> [UInt8] { [UInt8(value >> 24 & 0xFF), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    static func be16(_ value: Int) -> [UInt8] { [UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)] }
    static func le16(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF)] }
    static func le24(_ value: Int) -> [UInt8] { [UInt8(value & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value >> 16 & 0xFF)] }
    static func le32(_ value: Int) -> [UInt8] { le16(value & 0xFFFF) + le16(value >> 16) }

    static func pngChunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        be32(data.count) + Array(type.utf8) + data + [0, 0, 0, 0]
    }

    /// A PNG declaring `width`×`height`, with `padding` bytes of an ancillary chunk (to make big files).
    static func png(width: Int, height: Int, padding: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        bytes += pngChunk("IHDR", be32(width) + be32(height) + [8, 6, 0, 0, 0])
        if padding > 0 { bytes += pngChunk("tEXt", [UInt8](repeating: 0x61, count: padding)) }
        bytes += pngChunk("IDAT", [0x78, 0x9C, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01])
        bytes += pngChunk("IEND", [])
        return bytes
    }

    static func gif(width: Int, height: Int) -> [UInt8] {
        Array("GIF89a".utf8) + le16(width) + le16(height) + [0x00, 0x00, 0x00]
            + [0x2C] + le16(0) + le16(0) + le16(width) + le16(height) + [0x00] + [0x02, 0x02, 0x4C, 0x01, 0x00] + [0x3B]
    }

    static func jpeg(width: Int, height: Int) -> [UInt8] {
        [0xFF, 0xD8] + [0xFF, 0xE0] + be16(16) + Array("JFIF".utf8) + [0, 1, 1, 0, 0, 1, 0, 1, 0, 0]
            + [0xFF, 0xC0] + be16(11) + [8] + be16(height) + be16(width) + [1, 1, 0x11, 0]
            + [0xFF, 0xDA] + be16(8) + [1, 1, 0, 0, 63, 0] + [0x12, 0x34, 0x56] + [0xFF, 0xD9]
    }

    /// Lossless WebP (`VP8L`).
    static func webp(width: Int, height: Int) -> [UInt8] {
        let bits = (width - 1) | ((height - 1) << 14)
        let chunk = Array("VP8L".utf8) + le32(5) + [0x2F] + le32(bits) + [0]
        return Array("RIFF".utf8) + le32(4 + chunk.count) + Array("WEBP".utf8) + chunk
    }

    /// Extended WebP (`VP8X`), whose canvas may be up to 2^24 a side.
    static func webpExtended(width: Int, height: Int) -> [UInt8] {
        let chunk = Array("VP8X".utf8) + le32(10) + [0, 0, 0, 0] + le24(width - 1) + le24(height - 1)
        return Array("RIFF".utf8) + le32(4 + chunk.count) + Array("WEBP".utf8) + chunk
    }

    /// An icon holding one PNG entry.
    static func ico(png: [UInt8] = png1x1) -> [UInt8] {
        [0, 0, 1, 0] + le16(1) + [16, 16, 0, 0] + le16(1) + le16(32) + le32(png.count) + le32(22) + png
    }
}

extension MultipartBody {
    /// POSTs `bytes` with chunked transfer encoding (no `Content-Length`), 64 KiB at a time.
    static func sendChunked(_ method: HTTPMethod, _ url: String, headers: [String: String], bytes: [UInt8]) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let chunks = stride(from: 0, to: bytes.count, by: 65_536).map { ByteBuffer(bytes: bytes[$0..<min($0 + 65_536, bytes.count)]) }
        request.body = .stream(chunks.async, length: .unknown)
        let response = try await TestHTTP.client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Data(body.readableBytesView))
    }
}

extension Array where Element: Sendable {
    /// The elements as an async sequence (a request body stream).
    fileprivate var async: AsyncStream<Element> {
        AsyncStream { continuation in
            for element in self { continuation.yield(element) }
            continuation.finish()
        }
    }
}
