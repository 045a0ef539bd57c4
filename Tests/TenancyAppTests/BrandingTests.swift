import Foundation
import PostgresNIO
import InternalAPI
import NIOHTTP1
import Logging
import NIOCore
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// Seed 000's branding against the real tenancy service, database and storage directory:
/// uploads told apart by their bytes, every bad file, the public file route, listing, deleting
/// and applying to the theme.
@Suite("tenancy branding")
struct BrandingTests {
    static func withTenants(_ body: (LookTenants) async throws -> Void) async throws {
        try await TestStack.with(.auth, .tenancy) { stack in try await body(try await LookTenants.make(stack)) }
    }

    static func upload(
        _ tenants: LookTenants, _ headers: [String: String], type: String? = "logo", file: [UInt8]?, filename: String = "logo.png",
        contentType: String = "image/png"
    ) async throws -> TestResponse {
        var all = headers
        all["Content-Type"] = MultipartBody.contentType
        let body = MultipartBody.upload(type: type, file: file, filename: filename, contentType: contentType)
        return try await TestHTTP.send(.POST, tenants.tenancy + "/api/branding/upload", headers: all, bytes: body.bytes)
    }

    /// The answer's shape, decoded with the same type the controller encodes.
    typealias Asset = BrandingController.AssetView

    @Test func eachFormatIsRecognisedByItsBytes() async throws {
        let files: [(String, [UInt8], String, Int, Int)] = [
            ("png", TestImages.png1x1, "image/png", 1, 1), ("png", TestImages.png(width: 4096, height: 4096), "image/png", 4096, 4096),
            ("jpg", TestImages.jpeg(width: 640, height: 480), "image/jpeg", 640, 480), ("gif", TestImages.gif1x1, "image/gif", 1, 1),
            ("gif", TestImages.gif(width: 300, height: 200), "image/gif", 300, 200), ("webp", TestImages.webp(width: 120, height: 60), "image/webp", 120, 60),
            ("webp", TestImages.webpExtended(width: 800, height: 600), "image/webp", 800, 600), ("ico", TestImages.ico(), "image/vnd.microsoft.icon", 1, 1),
        ]
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant, role: .admin)
            #expect(try await tenants.brandingStep(tenant) == false)
            for (ext, bytes, mime, width, height) in files {
                let response = try await Self.upload(tenants, headers, type: "favicon", file: bytes, filename: "brand.\(ext)")
                #expect(response.status == 201, "\(ext): \(response.text)")
                let asset = try response.json(Asset.self)
                #expect(asset.mimeType == mime)
                #expect((asset.width, asset.height) == (width, height))
                #expect(asset.fileSize == bytes.count)
                #expect(asset.originalName == "brand.\(ext)")
                #expect(asset.filename.hasPrefix(asset.id + "."))
                #expect(asset.url == "/api/public/branding/\(asset.id)")
                #expect(FileManager.default.contents(atPath: tenants.storageDirectory + "/" + asset.id) == Data(bytes))
                let rows = try await tenants.count(
                    "SELECT count(*)::int FROM branding_assets WHERE id = \(UUID(uuidString: asset.id)!) AND tenant_id = \(tenant.id) AND mime_type = \(mime)"
                )
                #expect(rows == 1)
            }
            #expect(try await tenants.brandingStep(tenant))
            #expect(tenants.storedFiles().count == files.count)
        }
    }

    @Test func uploadsThatLieAboutTheirTypeAreJudgedByTheirBytes() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            // A PNG named .jpg and declared image/jpeg is stored and served as the PNG it is.
            let png = try await Self.upload(tenants, headers, file: TestImages.png1x1, filename: "photo.jpg", contentType: "image/jpeg")
            #expect(png.status == 201)
            let asset = try png.json(Asset.self)
            #expect(asset.mimeType == "image/png")
            #expect(asset.filename == asset.id + ".png")
            let served = try await TestHTTP.send(.GET, tenants.tenancy + asset.url)
            #expect(served.header("Content-Type") == "image/png")

            let lies: [([UInt8], String, String, String)] = [
                (Array("<html><script>alert(1)</script></html>".utf8), "logo.png", "image/png", "is not a PNG, JPEG, WebP, ICO or GIF image"),
                (Array(#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>"#.utf8), "logo.svg", "image/svg+xml", "SVG"),
                (Array("<svg onload=alert(1)>".utf8), "logo.png", "image/png", "SVG"),
                (Array("GIF8".utf8), "logo.gif", "image/gif", "is not a PNG"),
                (Array("%PDF-1.7 not an image".utf8), "logo.webp", "image/webp", "is not a PNG"),
            ]
            for (bytes, name, type, message) in lies {
                let response = try await Self.upload(tenants, headers, file: bytes, filename: name, contentType: type)
                #expect(response.status == 422, "\(name)")
                #expect(try response.error().fields?["file"]?.first?.contains(message) == true, "\(name): \(response.text)")
            }
            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets") == 1)
            #expect(tenants.storedFiles() == [asset.id])
        }
    }

    @Test func emptyTruncatedAndBombImagesAreRefusedAndStoreNothing() async throws {
        let png = TestImages.png(width: 10, height: 10)
        let cases: [(String, [UInt8], String)] = [
            ("zero bytes", [], "is empty"),
            ("png cut in its IHDR", Array(png.prefix(20)), "truncated PNG"),
            ("png without IEND", Array(png.prefix(png.count - 12)), "truncated PNG"),
            ("png chunk longer than the file", Array(png.prefix(33)) + TestImages.be32(1_000_000) + Array("IDAT".utf8) + [1, 2, 3], "truncated PNG"),
            ("jpeg without its end", Array(TestImages.jpeg(width: 10, height: 10).dropLast(2)), "truncated JPEG"),
            ("jpeg cut in a segment", Array(TestImages.jpeg(width: 10, height: 10).prefix(12)), "truncated JPEG"),
            ("gif without trailer", Array(TestImages.gif(width: 10, height: 10).dropLast()), "truncated GIF"),
            ("webp shorter than its RIFF size", Array(TestImages.webp(width: 10, height: 10).dropLast(4)), "truncated WEBP"),
            ("ico entry past the end", Array(TestImages.ico().dropLast(10)), "truncated ICO"),
            ("png bomb 100000×100000", TestImages.png(width: 100_000, height: 100_000), "100000×100000"),
            ("png 4097 wide", TestImages.png(width: 4097, height: 1), "4097×1"),
            ("png zero height", TestImages.png(width: 10, height: 0), "10×0"),
            ("gif bomb 65535×65535", TestImages.gif(width: 65_535, height: 65_535), "65535×65535"),
            ("jpeg bomb 65535×65535", TestImages.jpeg(width: 65_535, height: 65_535), "65535×65535"),
            ("webp bomb 16384×16384", TestImages.webp(width: 16_384, height: 16_384), "16384×16384"),
            ("webp VP8X bomb 100000×100000", TestImages.webpExtended(width: 100_000, height: 100_000), "100000×100000"),
            ("ico holding a png bomb", TestImages.ico(png: TestImages.png(width: 100_000, height: 100_000)), "100000×100000"),
        ]
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            for (label, bytes, message) in cases {
                let response = try await Self.upload(tenants, headers, file: bytes)
                #expect(response.status == 422, "\(label)")
                #expect(try response.error().fields?["file"]?.first?.contains(message) == true, "\(label): \(response.text)")
            }
            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets") == 0)
            #expect(try await tenants.brandingStep(tenant) == false)
            #expect(tenants.storedFiles().isEmpty)
        }
    }

    @Test func fileNamesNeverReachTheStoredPath() async throws {
        let names: [(String, String)] = [
            ("../../etc/passwd", "passwd"), ("/etc/passwd", "passwd"), ("..\\..\\windows\\win.ini", "win.ini"),
            ("..", "upload"), ("", "upload"), ("a/b/../../../c.png", "c.png"), ("café – logo.png", "café – logo.png"),
        ]
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            var ids: [String] = []
            for (name, shown) in names {
                let response = try await Self.upload(tenants, headers, file: TestImages.png1x1, filename: name)
                #expect(response.status == 201, "\(name): \(response.text)")
                let asset = try response.json(Asset.self)
                #expect(asset.originalName == shown, "\(name)")
                #expect(asset.filename == asset.id + ".png")
                ids.append(asset.id)
            }
            // Only generated ids in the storage directory, nothing beside or above it.
            #expect(tenants.storedFiles() == ids.sorted())
            let parent = (tenants.storageDirectory as NSString).deletingLastPathComponent
            #expect(!FileManager.default.fileExists(atPath: parent + "/passwd"))
            #expect(!FileManager.default.fileExists(atPath: parent + "/c.png"))
            // A NUL in the part's header is not a form at all.
            var all = headers
            all["Content-Type"] = MultipartBody.contentType
            let nul = MultipartBody.upload(type: "logo", file: TestImages.png1x1, filename: "a\u{0}.png")
            let response = try await TestHTTP.send(.POST, tenants.tenancy + "/api/branding/upload", headers: all, bytes: nul.bytes)
            #expect([201, 400].contains(response.status))
            if response.status == 201 { #expect(try response.json(Asset.self).originalName == "a.png") }
        }
    }

    @Test func badFormsAreRefused() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let noType = try await Self.upload(tenants, headers, type: nil, file: TestImages.png1x1)
            #expect(noType.status == 422)
            #expect(try noType.error().fields?["asset_type"] == ["is required"])
            let badType = try await Self.upload(tenants, headers, type: "wallpaper", file: TestImages.png1x1)
            #expect(badType.status == 422)
            #expect(try badType.error().fields?["asset_type"]?.first?.hasPrefix("must be one of logo, favicon") == true)
            let noFile = try await Self.upload(tenants, headers, type: "logo", file: nil)
            #expect(noFile.status == 422)
            #expect(try noFile.error().fields?["file"] == ["is required"])

            let url = tenants.tenancy + "/api/branding/upload"
            let json = try await TestHTTP.send(.POST, url, headers: headers, json: ["asset_type": "logo"])
            #expect(json.status == 415)
            #expect(try json.error().code == "UNSUPPORTED_MEDIA_TYPE")
            var multipart = headers
            multipart["Content-Type"] = MultipartBody.contentType
            let garbage = try await TestHTTP.send(.POST, url, headers: multipart, bytes: Array("this is not multipart".utf8))
            // No part in it at all: both fields are missing.
            #expect(garbage.status == 422)
            #expect(try garbage.error().fields == ["asset_type": ["is required"], "file": ["is required"]])
            // A header name with a byte of 0x80 or more (the fuzzer's find: it used to stop the process).
            let boundary = MultipartBody.boundary
            for header in ["\u{9E}A\u{F3} x", "Content-Disposition: form-data; name=\"file\"\r\nX-\u{E9}: 1"] {
                let body = Array("--\(boundary)\r\n\(header)\r\n\r\nabc\r\n--\(boundary)--\r\n".utf8)
                let refused = try await TestHTTP.send(.POST, url, headers: multipart, bytes: body)
                #expect(refused.status == 400)
                #expect(try refused.error().code == "MALFORMED_MULTIPART")
            }
            #expect(try await TestHTTP.send(.GET, tenants.tenancy + "/live").status == 200)
            multipart["Content-Type"] = "multipart/form-data"
            #expect(try await TestHTTP.send(.POST, url, headers: multipart, bytes: MultipartBody.upload(type: "logo", file: TestImages.png1x1).bytes).status == 415)

            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets") == 0)
            #expect(tenants.storedFiles().isEmpty)
        }
    }

    @Test func fiveMegabytesPassAndMoreIs413() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            // Exactly 5 MiB: more than every other route takes (1 MiB), accepted here.
            let overhead = TestImages.png(width: 8, height: 8).count + 12
            let largest = TestImages.png(width: 8, height: 8, padding: BrandingController.maxFileBytes - overhead)
            #expect(largest.count == BrandingController.maxFileBytes)
            let ok = try await Self.upload(tenants, headers, file: largest)
            #expect(ok.status == 201, "\(ok.text.prefix(200))")

            let tooBig = TestImages.png(width: 8, height: 8, padding: BrandingController.maxFileBytes - overhead + 1)
            let refused = try await Self.upload(tenants, headers, file: tooBig)
            #expect(refused.status == 413)
            #expect(try refused.error().code == "PAYLOAD_TOO_LARGE")
            // A body past the route's limit, declared: refused before it is read.
            let huge = TestImages.png(width: 8, height: 8, padding: 6 * 1_048_576)
            let declared = try await Self.upload(tenants, headers, file: huge)
            #expect(declared.status == 413)
            #expect(try declared.error().code == "PAYLOAD_TOO_LARGE")
            // The same sent chunked (no Content-Length): refused once the limit is passed.
            let chunked = try await MultipartBody.sendChunked(
                .POST, tenants.tenancy + "/api/branding/upload",
                headers: headers.merging(["Content-Type": MultipartBody.contentType]) { $1 },
                bytes: MultipartBody.upload(type: "logo", file: huge).bytes
            )
            #expect(chunked.status == 413)
            // Other routes keep the service-wide limit.
            let theme = try await TestHTTP.send(
                .PUT, tenants.tenancy + "/api/admin/tenants/\(tenant.id)/theme", headers: headers,
                body: #"{"custom_css": ""# + String(repeating: "a", count: 2 * 1_048_576) + #""}"#
            )
            #expect(theme.status == 413)

            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets") == 1)
            #expect(tenants.storedFiles() == [try ok.json(Asset.self).id])
        }
    }

    @Test func filesAreServedWithTheirTrueTypeAndCacheHeaders() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let gif = try await Self.upload(tenants, headers, type: "background", file: TestImages.gif1x1, filename: "bg.png", contentType: "image/png")
            let asset = try gif.json(Asset.self)
            let url = tenants.tenancy + asset.url
            let served = try await TestHTTP.send(.GET, url)
            #expect(served.status == 200)
            #expect(served.body == Data(TestImages.gif1x1))
            #expect(served.header("Content-Type") == "image/gif")
            #expect(served.header("X-Content-Type-Options") == "nosniff")
            #expect(served.header("Cache-Control") == "public, max-age=31536000, immutable")
            let tag = try #require(served.header("ETag"))
            for header in [tag, "W/\(tag)", "\"x\", \(tag)", "*"] {
                let cached = try await TestHTTP.send(.GET, url, headers: ["If-None-Match": header])
                #expect(cached.status == 304, "\(header)")
                #expect(cached.body.isEmpty)
                #expect(cached.header("ETag") == tag)
            }
            #expect(try await TestHTTP.send(.GET, url, headers: ["If-None-Match": "\"x\""]).status == 200)
            for missing in [UUID().uuidString, "not-a-uuid", "..%2F..%2Fetc%2Fpasswd"] {
                let response = try await TestHTTP.send(.GET, tenants.tenancy + "/api/public/branding/\(missing)")
                #expect(response.status == 404, "\(missing)")
                #expect(try response.error().code == "ASSET_NOT_FOUND")
            }
        }
    }

    @Test func listingAndDeletingStayInsideTheTenant() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let other = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let otherHeaders = try await tenants.headers(other)
            let mine = try await Self.upload(tenants, headers, file: TestImages.png1x1).json(Asset.self)
            let second = try await Self.upload(tenants, headers, type: "favicon", file: TestImages.ico()).json(Asset.self)
            let theirs = try await Self.upload(tenants, otherHeaders, file: TestImages.png1x1).json(Asset.self)

            let listed = try await TestHTTP.send(.GET, tenants.tenancy + "/api/branding/assets", headers: headers)
                .json(BrandingController.AssetList.self)
            #expect(listed.total == 2)
            #expect(Set(listed.assets.map(\.id)) == [mine.id, second.id])

            // Another tenant's id, an unknown one and a malformed one: 404, nothing removed.
            for id in [theirs.id, UUID().uuidString.lowercased(), "not-a-uuid"] {
                let response = try await TestHTTP.send(.DELETE, tenants.tenancy + "/api/branding/assets/\(id)", headers: headers)
                #expect(response.status == 404, "\(id)")
                #expect(try response.error().code == "ASSET_NOT_FOUND")
            }
            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets") == 3)
            #expect(tenants.storedFiles().count == 3)

            let deleted = try await TestHTTP.send(.DELETE, tenants.tenancy + "/api/branding/assets/\(mine.id)", headers: headers)
            #expect(deleted.status == 200)
            #expect(deleted.text == #"{"id":"\#(mine.id)","status":"deleted"}"#)
            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets WHERE id = \(UUID(uuidString: mine.id)!)") == 0)
            #expect(tenants.storedFiles() == [second.id, theirs.id].sorted())
            #expect(try await TestHTTP.send(.GET, tenants.tenancy + mine.url).status == 404)
            #expect(try await TestHTTP.send(.DELETE, tenants.tenancy + "/api/branding/assets/\(mine.id)", headers: headers).status == 404)
        }
    }

    @Test func applyingPutsTheNewestLogoAndFaviconIntoTheTheme() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let headers = try await tenants.headers(tenant)
            let url = tenants.tenancy + "/api/branding/apply"
            let nothing = try await TestHTTP.send(.PUT, url, headers: headers)
            #expect(nothing.status == 422)
            #expect(try await tenants.overrides(tenant) == nil)

            _ = try await Self.upload(tenants, headers, file: TestImages.png1x1)
            let logo = try await Self.upload(tenants, headers, file: TestImages.png(width: 64, height: 32)).json(Asset.self)
            // Asked for a favicon there is none of: 422, and the logo is not applied either.
            let missing = try await TestHTTP.send(.PUT, url, headers: headers, json: ["apply_logo": true, "apply_favicon": true])
            #expect(missing.status == 422)
            #expect(try missing.error().fields?["apply_favicon"] == ["no favicon has been uploaded"])
            #expect(try await tenants.overrides(tenant) == nil)
            #expect(try await TestHTTP.send(.PUT, url, headers: headers, json: ["apply_logo": false, "apply_favicon": false]).status == 422)
            #expect(try await TestHTTP.send(.PUT, url, headers: headers, body: #"{"apply_logo": "yes"}"#).status == 422)

            let favicon = try await Self.upload(tenants, headers, type: "favicon", file: TestImages.ico()).json(Asset.self)
            let applied = try await TestHTTP.send(.PUT, url, headers: headers)
            #expect(applied.status == 200)
            #expect(applied.text == #"{"favicon_url":"\#(favicon.url)","logo_url":"\#(logo.url)","status":"applied"}"#)
            let theme = try JSONCoding.decoder.decode(
                [String: JSONValue].self, from: try await TestHTTP.send(.GET, tenants.tenancy + "/api/tenants/\(tenant.slug)/theme").body
            )
            #expect(theme["logo_url"] == .string(logo.url))
            #expect(theme["favicon_url"] == .string(favicon.url))

            // Deleting the applied logo takes it out of the theme.
            #expect(try await TestHTTP.send(.DELETE, tenants.tenancy + "/api/branding/assets/\(logo.id)", headers: headers).status == 200)
            let after = try #require(try await tenants.overrides(tenant))
            #expect(!after.contains("logo_url") && after.contains(favicon.url))
        }
    }

    @Test func onlyTheTenantsManagersUseBranding() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let member = try await tenants.headers(tenant, role: .user)
            let base = tenants.tenancy + "/api/branding"
            #expect(try await Self.upload(tenants, [:], file: TestImages.png1x1).status == 401)
            #expect(try await TestHTTP.send(.GET, base + "/assets").status == 401)
            let refused = try await Self.upload(tenants, member, file: TestImages.png1x1)
            #expect(refused.status == 403)
            #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
            #expect(try await TestHTTP.send(.GET, base + "/assets", headers: member).status == 403)
            #expect(try await TestHTTP.send(.PUT, base + "/apply", headers: member).status == 403)
            #expect(try await TestHTTP.send(.DELETE, base + "/assets/\(UUID())", headers: member).status == 403)
            // A super_admin's own (platform) tenant has no record here: nothing to upload into.
            let platform = Fixtures.bearer(try await tenants.forge.sign(tenantID: UUID(), role: .superAdmin))
            let orphan = try await Self.upload(tenants, platform, file: TestImages.png1x1)
            #expect(orphan.status == 404)
            #expect(try orphan.error().code == "TENANT_NOT_FOUND")
            #expect(try await tenants.count("SELECT count(*)::int FROM branding_assets") == 0)
            #expect(tenants.storedFiles().isEmpty)
        }
    }

    /// A file without a row (a crash between the write and the insert, or a removed tenant) and a
    /// temporary left by an interrupted write are removed once old enough; live files are kept.
    @Test func theSweepRemovesOrphanFilesOnly() async throws {
        try await Self.withTenants { tenants in
            let tenant = try await tenants.create()
            let live = try await Self.upload(tenants, try await tenants.headers(tenant), file: TestImages.png1x1).json(Asset.self)
            let storage = try FileSystemAssetStorage(directory: tenants.storageDirectory)
            let orphan = UUID().uuidString.lowercased()
            try await storage.put(orphan, .init(bytes: TestImages.png1x1))
            _ = FileManager.default.createFile(atPath: tenants.storageDirectory + "/.tmp-interrupted", contents: Data([1, 2]))
            #expect(tenants.storedFiles().count == 3)
            try await TestPostgres.withDatabase(tenants.database) { database in
                let sweep = OrphanAssetSweep(
                    storage: storage, assets: PostgresBrandingRepository(client: database), grace: .seconds(600), interval: .seconds(3600),
                    logger: .init(label: "sweep")
                )
                // Young files are left alone; old ones without a row go.
                #expect(await sweep.sweepOnce() == 0)
                #expect(await sweep.sweepOnce(now: Date().addingTimeInterval(601)) == 2)
            }
            #expect(tenants.storedFiles() == [live.id])
            #expect(try await TestHTTP.send(.GET, tenants.tenancy + live.url).status == 200)
        }
    }
}
