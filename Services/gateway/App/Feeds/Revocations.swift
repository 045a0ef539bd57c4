import Foundation
import InternalAPI
import ServiceCore
import Synchronization

/// The access tokens auth has voided, as last heard from its revocation feed: ended sessions
/// (logout, a reused refresh token) and users whose older tokens no longer count (logout
/// everywhere, a role or password change, deletion). Read on every authenticated request, so a
/// revoked token stops at the gateway within the feed's interval, with no call to auth.
final class Revocations: Sendable {
    private struct State {
        /// Session id → when every token of it has expired anyway.
        var sessions: [String: Date] = [:]
        /// User id → the lowest token version still valid, and when the entry stops mattering.
        var users: [String: (minVersion: Int, expiresAt: Date)] = [:]
        var lastPruned = Date.distantPast
    }

    private let state = Mutex(State())
    /// Until the first full read of the feed, a token this gateway has never seen waits for it (at
    /// most `catchUpWait`): a gateway that has just started knows no revocation yet.
    private let caughtUp = Mutex<(done: Bool, waiters: [UUID: CheckedContinuation<Void, Never>])>((false, [:]))
    private let catchUpWait: Duration

    init(catchUpWait: Duration = .seconds(5)) {
        self.catchUpWait = catchUpWait
    }

    /// The feed has been read to its end once: nothing waits any more.
    func markCaughtUp() {
        let waiters = caughtUp.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.done else { return [] }
            state.done = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    var isCaughtUp: Bool { caughtUp.withLock { $0.done } }

    /// Returns once the feed has been read to its end once, or after `catchUpWait` (auth may be
    /// down when the gateway starts; then tokens pass as before, unchecked until the first read).
    func untilCaughtUp() async {
        guard !isCaughtUp else { return }
        let id = UUID()
        let wait = catchUpWait
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let added = caughtUp.withLock { state -> Bool in
                guard !state.done else { return false }
                state.waiters[id] = continuation
                return true
            }
            guard added else { return continuation.resume() }
            Task {
                try? await Task.sleep(for: wait)
                self.caughtUp.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
            }
        }
    }

    /// Whether the token has been voided.
    func voids(_ claims: AccessTokenClaims) -> Bool {
        state.withLock { state in
            if let sid = claims.sid, state.sessions[sid] != nil { return true }
            if let user = state.users[claims.userID], (claims.ver ?? 0) < user.minVersion { return true }
            return false
        }
    }

    func apply(_ revocations: [Revocation], now: Date = Date()) {
        state.withLock { state in
            for revocation in revocations where revocation.expiresAt > now {
                let subject = revocation.subject.lowercased()
                switch revocation.kind {
                case .session:
                    state.sessions[subject] = max(state.sessions[subject] ?? revocation.expiresAt, revocation.expiresAt)
                case .user:
                    let known = state.users[subject]
                    state.users[subject] = (
                        max(known?.minVersion ?? 0, revocation.minTokenVersion ?? 0),
                        max(known?.expiresAt ?? revocation.expiresAt, revocation.expiresAt)
                    )
                }
            }
            // Entries outlive nothing they void; a pass a minute keeps the maps to what matters.
            if now.timeIntervalSince(state.lastPruned) > 60 {
                state.sessions = state.sessions.filter { $0.value > now }
                state.users = state.users.filter { $0.value.expiresAt > now }
                state.lastPruned = now
            }
        }
    }

    var count: Int { state.withLock { $0.sessions.count + $0.users.count } }
}
