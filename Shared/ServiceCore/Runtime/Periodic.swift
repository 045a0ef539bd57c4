import ServiceLifecycle

/// Runs `body` every `interval` until graceful shutdown or cancellation, sleeping first: at start
/// the first pass has nothing to do yet, or must wait for the migrations.
package func repeatUntilShutdown(every interval: Duration, _ body: () async -> Void) async {
    while !Task.isShuttingDownGracefully && !Task.isCancelled {
        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        guard !Task.isShuttingDownGracefully && !Task.isCancelled else { return }
        await body()
    }
}
