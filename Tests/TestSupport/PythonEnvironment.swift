#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LocalPostgres

/// A Python virtual environment the tests make themselves from a pinned requirements file (pip
/// installs from the machine's mirror), remade when the file changes, so `swift test` needs only
/// `python3` with `venv` on the machine.
package enum PythonEnvironment {
    /// The source tree's root.
    package static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    /// The interpreter of the environment at `venv` (relative to the root) with `requirements` installed.
    package static func interpreter(venv relativeVenv: String, requirements relativeRequirements: String) throws -> String {
        let requirements = "\(root)/\(relativeRequirements)"
        let venv = "\(root)/\(relativeVenv)"
        if FileManager.default.isExecutableFile(atPath: "\(venv)/bin/python"),
            FileManager.default.contentsEqual(atPath: requirements, andPath: "\(venv)/requirements.txt")
        {
            return "\(venv)/bin/python"
        }
        // Built aside and renamed into place, so a half-made environment is never taken for a ready one.
        let building = "\(venv).building-\(getpid())"
        try? FileManager.default.removeItem(atPath: building)
        try ChildProcess.run(["python3", "-m", "venv", building])
        try ChildProcess.run(["\(building)/bin/python", "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r", requirements])
        try FileManager.default.copyItem(atPath: requirements, toPath: "\(building)/requirements.txt")
        try? FileManager.default.removeItem(atPath: venv)
        try FileManager.default.moveItem(atPath: building, toPath: venv)
        return "\(venv)/bin/python"
    }
}
