import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Branding and themes through the gateway: a 4.5 MB upload passes the gateway's body handling,
/// the file and the theme come back with their cache headers, and 304s survive the proxy.
@Suite("branding through the gateway")
struct BrandingGatewayTests {
    struct Asset: Decodable { var id: String; var url: String; var mimeType: String; var fileSize: Int }

    /// A PNG declaring 64×64, padded with a text chunk to `size` bytes.
    static func png(size: Int) -> [UInt8] {
        func be32(_ value: Int) -> [UInt8] { [24, 16, 8, 0].map { UInt8(value >> $0 & 0xFF) } }
        func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] { be32(data.count) + Array(type.utf8) + data + [0, 0, 0, 0] }
        let head: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", be32(64) + be32(64) + [8, 6, 0, 0, 0])
        let tail = chunk("IDAT", [0x78, 0x9C, 0x63, 0, 0, 0, 1, 0, 1]) + chunk("IEND", [])
        return head + chunk("tEXt", [UInt8](repeating: 0x61, count: size - head.count - tail.count - 12)) + tail
    }

    static func multipart(_ file: [UInt8], type: String) -> (contentType: String, body: [UInt8]) {
        let boundary = "gateway-\(UUID().uuidString)"
        let head = "--\(boundary)\r\nContent-Disposition: form-data; name=\"asset_type\"\r\n\r\n\(type)\r\n"
            + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"../big logo.png\"\r\nContent-Type: image/png\r\n\r\n"
        return ("multipart/form-data; boundary=\(boundary)", Array(head.utf8) + file + Array("\r\n--\(boundary)--\r\n".utf8))
    }

    @Test func uploadServeAndThemeThroughTheGateway() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Gateway Looks \(UUID().uuidString.prefix(4))")
            let auth = Fixtures.bearer(owner.accessToken)

            let file = Self.png(size: 4_500_000)
            let form = Self.multipart(file, type: "logo")
            let uploaded = try await TestHTTP.send(
                .POST, gateway + "/api/branding/upload", headers: auth.merging(["Content-Type": form.contentType]) { $1 }, bytes: form.body,
                timeout: .seconds(60)
            )
            #expect(uploaded.status == 201, "\(uploaded.text.prefix(300))")
            let asset = try uploaded.json(Asset.self)
            #expect(asset.mimeType == "image/png")
            #expect(asset.fileSize == file.count)

            let served = try await TestHTTP.send(.GET, gateway + asset.url)
            #expect(served.status == 200)
            #expect(served.body == Data(file))
            #expect(served.header("Content-Type") == "image/png")
            #expect(served.header("X-Content-Type-Options") == "nosniff")
            #expect(served.header("Cache-Control") == "public, max-age=31536000, immutable")
            let fileTag = try #require(served.header("ETag"))
            let cachedFile = try await TestHTTP.send(.GET, gateway + asset.url, headers: ["If-None-Match": fileTag])
            #expect(cachedFile.status == 304)
            #expect(cachedFile.body.isEmpty)

            // Beyond the 5 MB limit: 413 through the gateway too.
            let tooBig = Self.multipart(Self.png(size: 6_000_000), type: "logo")
            let refused = try await TestHTTP.send(
                .POST, gateway + "/api/branding/upload", headers: auth.merging(["Content-Type": tooBig.contentType]) { $1 }, bytes: tooBig.body,
                timeout: .seconds(60)
            )
            #expect(refused.status == 413)

            let applied = try await TestHTTP.send(.PUT, gateway + "/api/branding/apply", headers: auth, json: ["apply_logo": true])
            #expect(applied.status == 200)
            let theme = try await TestHTTP.send(.GET, gateway + "/api/tenants/\(owner.tenantSlug)/theme")
            #expect(theme.status == 200)
            #expect(theme.text.contains(#""logo_url":"\#(asset.url)""#))
            #expect(theme.header("Cache-Control") == "public, max-age=60")
            let themeTag = try #require(theme.header("ETag"))
            let cachedTheme = try await TestHTTP.send(.GET, gateway + "/api/tenants/\(owner.tenantSlug)/theme", headers: ["If-None-Match": themeTag])
            #expect(cachedTheme.status == 304)

            let listed = try await TestHTTP.send(.GET, gateway + "/api/branding/assets", headers: auth)
            #expect(listed.status == 200)
            #expect(try await TestPostgres.count(
                stack.databases[.tenancy]!,
                "SELECT count(*)::int FROM onboarding_progress WHERE tenant_id = \(UUID(uuidString: owner.tenantId)!) AND step_branding_uploaded"
            ) == 1)
        }
    }
}
