#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOCore
import NIOPosix

/// Where uploaded files live (tenancy's branding, chat's knowledge base and attachments), by key
/// (an id the service made: never anything a client chose).
package protocol AssetStorage: Sendable {
    /// Stores `bytes` under `key` so that a reader sees the whole file or none of it.
    func put(_ key: String, _ bytes: ByteBuffer) async throws
    /// The file under `key`, or nil when there is none.
    func get(_ key: String) async throws -> ByteBuffer?
    /// Removes the file under `key`; no file is not an error.
    func delete(_ key: String) async throws
    /// Every stored key with its last change, for the orphan sweep.
    func list() async throws -> [(key: String, modified: Date)]
}

/// `AssetStorage` in a directory (each service's `STORAGE_DIR`). A write goes to a temporary file in the same
/// directory, is flushed to disk and renamed over the final name (atomic on POSIX), and the
/// directory is flushed too: a crash leaves the old state or the new, never a partial file.
/// All file I/O runs on the NIO thread pool, never on an event loop.
package struct FileSystemAssetStorage: AssetStorage {
    package let directory: String
    package let threadPool: NIOThreadPool

    package static let temporaryPrefix = ".tmp-"

    package init(directory: String, threadPool: NIOThreadPool = .singleton) throws {
        let url = URL(fileURLWithPath: directory).standardizedFileURL
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        self.directory = url.path
        self.threadPool = threadPool
    }

    package func put(_ key: String, _ bytes: ByteBuffer) async throws {
        let path = try self.path(for: key)
        let temporary = directory + "/" + Self.temporaryPrefix + UUID().uuidString.lowercased()
        let directory = self.directory
        try await threadPool.runIfActive {
            let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else { throw StorageError.system("open", errno) }
            var failed: StorageError?
            bytes.withUnsafeReadableBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let written = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        failed = .system("write", errno)
                        return
                    }
                    offset += written
                }
            }
            if failed == nil, fsync(fd) != 0 { failed = .system("fsync", errno) }
            close(fd)
            if failed == nil, rename(temporary, path) != 0 { failed = .system("rename", errno) }
            if let failed {
                unlink(temporary)
                throw failed
            }
            Self.syncDirectory(directory)
        }
    }

    package func get(_ key: String) async throws -> ByteBuffer? {
        let path = try self.path(for: key)
        return try await threadPool.runIfActive {
            guard let data = FileManager.default.contents(atPath: path) else { return nil }
            return ByteBuffer(bytes: data)
        }
    }

    package func delete(_ key: String) async throws {
        let path = try self.path(for: key)
        let directory = self.directory
        try await threadPool.runIfActive {
            if unlink(path) != 0, errno != ENOENT { throw StorageError.system("unlink", errno) }
            Self.syncDirectory(directory)
        }
    }

    package func list() async throws -> [(key: String, modified: Date)] {
        let directory = self.directory
        return try await threadPool.runIfActive {
            try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { name in
                let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + name)
                guard let modified = attributes?[.modificationDate] as? Date else { return nil }
                return (name, modified)
            }
        }
    }

    /// Keys are asset ids (and the sweep's names of stale temporaries): letters, digits, `-` and
    /// `.`, never a separator nor `.`/`..`, so no key can reach outside the directory.
    private func path(for key: String) throws -> String {
        let allowed = key.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-" || $0 == ".") }
        guard allowed, !key.isEmpty, key.utf8.count <= 64, key != ".", key != ".." else { throw StorageError.invalidKey }
        return directory + "/" + key
    }

    /// Makes a rename or unlink durable.
    private static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fsync(fd)
        close(fd)
    }
}

package enum StorageError: Error, CustomStringConvertible {
    case invalidKey
    case system(String, Int32)

    package var description: String {
        switch self {
        case .invalidKey: "invalid storage key"
        case .system(let call, let code): "\(call) failed: \(String(cString: strerror(code)))"
        }
    }
}
