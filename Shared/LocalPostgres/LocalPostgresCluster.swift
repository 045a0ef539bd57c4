#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import PostgresNIO

/// A PostgreSQL cluster run from the machine's own binaries, for local runs and tests.
///
/// Works as root too: PostgreSQL refuses to run as root, so the cluster directory is given to
/// the `postgres` user and every server command runs through `runuser`.
package struct LocalPostgresCluster: Sendable {
    package struct Unavailable: Error, CustomStringConvertible {
        package let description: String
    }

    /// Holds `data/` (the cluster), `server.log` and the server's socket.
    package let directory: String
    package let port: Int
    package let binDirectory: String
    private let runAsPostgresUser: Bool

    package static let superuser = "postgres"

    /// Connections the server accepts (`max_connections`).
    package let maxConnections: Int

    package init(directory: String, port: Int, binDirectory: String, maxConnections: Int = 300) {
        self.maxConnections = maxConnections
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL.path
        self.port = port
        self.binDirectory = binDirectory
        self.runAsPostgresUser = geteuid() == 0
    }

    /// Finds `initdb`/`pg_ctl`: `PG_BIN_DIR`, else the newest `/usr/lib/postgresql/*/bin`, else PATH.
    package static func locateBinaries(hint: String? = ProcessInfo.processInfo.environment["PG_BIN_DIR"]) throws -> String {
        let manager = FileManager.default
        var candidates: [String] = []
        if let hint, !hint.isEmpty { candidates.append(hint) }
        let root = "/usr/lib/postgresql"
        let versions = ((try? manager.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        candidates += versions.map { "\(root)/\($0)/bin" }
        candidates += (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        for directory in candidates where manager.isExecutableFile(atPath: "\(directory)/initdb")
            && manager.isExecutableFile(atPath: "\(directory)/pg_ctl")
        {
            return directory
        }
        throw Unavailable(
            description: """
                PostgreSQL server binaries (initdb, pg_ctl) were not found in PG_BIN_DIR, /usr/lib/postgresql/*/bin or PATH.
                Install them (Debian/Ubuntu: apt-get install -y postgresql) or point the services at an existing server \
                with AUTH_DATABASE_URL, TENANCY_DATABASE_URL, BILLING_DATABASE_URL and CHAT_DATABASE_URL.
                """
        )
    }

    private var dataDirectory: String { "\(directory)/data" }
    package var logPath: String { "\(directory)/server.log" }

    /// Unix socket paths are limited to ~107 bytes; fall back to /tmp for deep directories.
    private var socketDirectory: String { directory.utf8.count < 80 ? directory : "/tmp" }

    package var isInitialized: Bool { FileManager.default.fileExists(atPath: "\(dataDirectory)/PG_VERSION") }

    /// False when running as root and the `postgres` user cannot reach `directory` (a folder under
    /// root's own home, say), so a cluster there could never start.
    package var isReachableByServer: Bool {
        guard runAsPostgresUser else { return true }
        var ancestor = URL(fileURLWithPath: directory)
        while !FileManager.default.fileExists(atPath: ancestor.path), ancestor.path != "/" {
            ancestor.deleteLastPathComponent()
        }
        return (try? ChildProcess.run(["runuser", "-u", Self.superuser, "--", "test", "-x", ancestor.path])) != nil
    }

    /// The pid of a server still running on this cluster's data (left by a run that crashed), if any.
    package var runningServerPID: Int32? {
        guard let pidFile = try? String(contentsOfFile: "\(dataDirectory)/postmaster.pid", encoding: .utf8),
            let pid = pidFile.split(separator: "\n").first.flatMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }),
            kill(pid, 0) == 0 || errno == EPERM
        else { return nil }
        // The pid may have been reused by an unrelated process: ask pg_ctl about this data directory.
        return (try? runServerCommand(["\(binDirectory)/pg_ctl", "-D", dataDirectory, "status"])) != nil ? pid : nil
    }

    /// Creates the cluster on first use, then starts the server and waits until it accepts connections.
    /// A server an earlier run left behind on the same data (it crashed, or was killed) is stopped first.
    package func start() throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        if runAsPostgresUser {
            try ChildProcess.run(["chown", "-R", "\(Self.superuser):", directory])
            do {
                try ChildProcess.run(["runuser", "-u", Self.superuser, "--", "test", "-w", directory])
            } catch {
                throw Unavailable(
                    description: "the postgres user cannot write to \(directory) (a parent folder is closed to it); set DATA_DIR to a folder under /tmp or /var/tmp"
                )
            }
        }
        if isInitialized, let stale = runningServerPID {
            FileHandle.standardError.write(Data("PostgreSQL (pid \(stale)) from an earlier run is still running on \(dataDirectory); stopping it\n".utf8))
            stop(mode: "fast")
        }
        if !isInitialized {
            try runServerCommand([
                "\(binDirectory)/initdb", "-D", dataDirectory, "-U", Self.superuser, "-A", "trust", "--no-sync", "-E", "UTF8",
                "--locale=C",
            ])
        }
        try runServerCommand([
            "\(binDirectory)/pg_ctl", "-D", dataDirectory, "-l", logPath, "-w", "-t", "60", "-o",
            "-p \(port) -k \(socketDirectory) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=\(maxConnections)",
            "start",
        ])
    }

    /// Stops the server; `fast` rolls back open transactions, `immediate` just exits (throwaway clusters).
    package func stop(mode: String = "fast") {
        try? runServerCommand(["\(binDirectory)/pg_ctl", "-D", dataDirectory, "-m", mode, "-w", "-t", "60", "stop"])
    }

    /// Deletes the cluster directory (throwaway clusters only).
    package func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    package func url(database: String) -> String {
        "postgres://\(Self.superuser)@127.0.0.1:\(port)/\(database)"
    }

    /// `CREATE DATABASE` for each name that does not exist yet.
    package func createDatabases(_ names: [String], logger: Logger) async throws {
        let configuration = PostgresClient.Configuration(
            host: "127.0.0.1",
            port: port,
            username: Self.superuser,
            password: nil,
            database: "postgres",
            tls: .disable
        )
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            for name in names {
                precondition(name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }, "unsafe database name \(name)")
                let rows = try await client.query("SELECT 1 FROM pg_database WHERE datname = \(name)", logger: logger)
                var exists = false
                for try await _ in rows { exists = true }
                if !exists {
                    try await client.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""), logger: logger)
                }
            }
        }
    }

    private func runServerCommand(_ command: [String]) throws {
        if runAsPostgresUser {
            // The postgres user may not be able to enter the caller's working directory.
            try ChildProcess.run(
                ["runuser", "-u", Self.superuser, "--", "/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", directory] + command
            )
        } else {
            try ChildProcess.run(command)
        }
    }
}
