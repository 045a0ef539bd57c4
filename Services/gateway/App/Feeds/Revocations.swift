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
