/// Builds `multipart/form-data` bodies the way a browser's FormData does (tenancy's branding and
/// chat's knowledge-base and attachment tests).
package struct MultipartBody {
    package static let boundary = "----LookTestBoundary7MA4YWxkTrZu0gW"

    package struct Part {
        package var name: String
        package var filename: String?
        package var contentType: String?
        package var bytes: [UInt8]

        package init(name: String, filename: String? = nil, contentType: String? = nil, bytes: [UInt8]) {
            self.name = name
            self.filename = filename
            self.contentType = contentType
            self.bytes = bytes
        }
    }

    package var parts: [Part] = []

    package init(parts: [Part] = []) {
        self.parts = parts
    }

    package static func upload(type: String?, file: [UInt8]?, filename: String = "logo.png", contentType: String = "image/png") -> MultipartBody {
        var body = MultipartBody()
        if let type { body.parts.append(Part(name: "asset_type", bytes: Array(type.utf8))) }
        if let file { body.parts.append(Part(name: "file", filename: filename, contentType: contentType, bytes: file)) }
        return body
    }

    package var bytes: [UInt8] {
        var out: [UInt8] = []
        for part in parts {
            var head = "--\(Self.boundary)\r\nContent-Disposition: form-data; name=\"\(part.name)\""
            if let filename = part.filename { head += "; filename=\"\(filename)\"" }
            head += "\r\n"
            if let type = part.contentType { head += "Content-Type: \(type)\r\n" }
            head += "\r\n"
            out += Array(head.utf8) + part.bytes + Array("\r\n".utf8)
        }
        out += Array("--\(Self.boundary)--\r\n".utf8)
        return out
    }

    package static var contentType: String { "multipart/form-data; boundary=\(boundary)" }
}
