import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceCore
import Synchronization

/// Kept-alive upstream connections of one event loop, as nginx and Envoy keep them per worker:
/// a downstream connection only ever borrows connections of its own loop, so forwarding never
/// hands a request to another thread. Touched only on that event loop.
final class UpstreamPool {
    private let eventLoop: any EventLoop
    private let limits: DataPlane.Limits
    /// Idle connections by upstream (`PublicService.ordinal`): an array, not a dictionary, since
    /// every request takes one and gives it back.
    private var idle = [[UpstreamConnection]](repeating: [], count: PublicService.allCases.count)
    private var isClosed = false
    /// Idle connections kept per upstream; more are closed when released.
    static let maxIdlePerUpstream = 256

    init(eventLoop: any EventLoop, limits: DataPlane.Limits) {
        self.eventLoop = eventLoop
        self.limits = limits
    }

    /// The most recently used idle connection to `service`, if one is still open.
    func take(_ service: PublicService) -> UpstreamConnection? {
        while let connection = idle[Int(service.ordinal)].popLast() {
            if connection.isActive && connection.isReusable { return connection }
        }
        return nil
    }

    /// Hands a connection back after an answer ended; closed unless it can serve another request.
    func release(_ connection: UpstreamConnection) {
        connection.delegate = nil
        connection.resumeReads()
        let index = Int(connection.service.ordinal)
        guard !isClosed, connection.isReusable, connection.isActive, idle[index].count < Self.maxIdlePerUpstream else {
            connection.abandon()
            return
        }
        idle[index].append(connection)
    }

    /// Opens a new connection to `address` on this loop; `then` runs on this loop.
    func connect(to address: UpstreamAddress, then: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let connection = UpstreamConnection(service: address.service)
        connection.onClose = { [weak self] closed in self?.forget(closed) }
        let bound = NIOLoopBound(connection, eventLoop: eventLoop)
        let idleTimeout = limits.upstreamIdleTimeout
        ClientBootstrap(group: eventLoop)
            .connectTimeout(limits.upstreamConnectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // No HTTP codec: the connection handler writes requests as bytes (heads were checked by
                    // the request reader already) and reads answers from the bytes itself.
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(bound.value)
                }
            }
            .connect(host: address.host, port: address.port)
            .assumeIsolated()
            .whenComplete { result in then(result.map { _ in connection }) }
    }

    func closeAll() {
        isClosed = true
        let all = idle.flatMap { $0 }
        for index in idle.indices { idle[index].removeAll() }
        for connection in all { connection.abandon() }
    }

    private func forget(_ connection: UpstreamConnection) {
        idle[Int(connection.service.ordinal)].removeAll { $0 === connection }
    }
}

/// The pools of every event loop, made on first use.
final class UpstreamPools: Sendable {
    private let limits: DataPlane.Limits
    private let pools = Mutex<[ObjectIdentifier: NIOLoopBound<UpstreamPool>]>([:])

    init(limits: DataPlane.Limits) {
        self.limits = limits
    }

    /// The pool of `eventLoop`; call on that loop (once per downstream connection, not per request).
    func pool(for eventLoop: any EventLoop) -> UpstreamPool {
        let key = ObjectIdentifier(eventLoop)
        let bound = pools.withLock { pools in
            if let existing = pools[key] { return existing }
            let made = NIOLoopBound(UpstreamPool(eventLoop: eventLoop, limits: limits), eventLoop: eventLoop)
            pools[key] = made
            return made
        }
        return bound.value
    }

    /// Closes every idle upstream connection (at shutdown).
    func closeAll() async {
        let all = pools.withLock { Array($0.values) }
        for bound in all {
            try? await bound.eventLoop.submit { bound.value.closeAll() }.get()
        }
    }
}
