import Logging
import ServiceLifecycle

/// Where password hashes run (`PASSWORD_HASH_ISOLATION`).
package enum PasswordHashIsolation: String, Sendable, CaseIterable {
    /// A worker process of its own, in its own session at the lowest priority (`HashingWorker`).
    case process
    /// Threads of the serving process (`HashingThreads`), at `PASSWORD_HASH_PRIORITY`.
    case threads
}

extension PasswordHashIsolation {
    /// The bcrypt runner `config` asks for, started, and the services to run beside the app (the
    /// worker, which stops it on shutdown). A worker that cannot be started falls back to threads,
    /// with a warning.
    static func makeRunner(config: AuthConfig, logger: Logger) async -> (runner: any BcryptRunner, services: [any Service]) {
        let threads = HashingThreads(priority: config.passwordHashPriority, maxPending: config.passwordHashMaxPending, logger: logger)
        guard config.passwordHashIsolation == .process else {
            logger.info("password hashes run on threads of this process", metadata: ["priority": "\(config.passwordHashPriority.rawValue)"])
            return (threads, [])
        }
        #if os(Linux)
        guard let executable = config.passwordHashWorkerExecutable ?? (HashingWorkerProcess.servesWorker ? "/proc/self/exe" : nil) else {
            logger.info(
                "password hashes run on threads of this process: this executable does not start the hashing worker (set PASSWORD_HASH_WORKER_EXECUTABLE to one that does, e.g. auth)"
            )
            return (threads, [])
        }
        // The worker is always at the lowest priority; `idle` also puts its threads in SCHED_IDLE.
        let worker = HashingWorker(
            executable: executable, priority: config.passwordHashPriority == .idle ? .idle : .low,
            maxPending: config.passwordHashMaxPending, stallTimeout: .seconds(config.passwordHashStallSeconds), logger: logger
        )
        do {
            try await worker.start()
            return (worker, [worker])
        } catch {
            worker.stop()
            logger.warning(
                "password hashing worker could not be started; hashing on threads of this process instead",
                metadata: ["executable": "\(executable)", "error": "\(error)"]
            )
            return (threads, [])
        }
        #else
        logger.info("password hashes run on threads of this process: the hashing worker needs Linux")
        return (threads, [])
        #endif
    }
}
