import Crypto
import Foundation
import Logging
import PostgresNIO
import ServiceCore

struct WidgetSession: Sendable {
    var id: String
    var tenantID: UUID
    var expiresAt: Date
}

struct NewSession: Sendable {
    var tenantID: UUID
    var externalUserID: String?
    var externalUserEmail: String?
    var externalUserName: String?
    var userAgent: String?
    var expiresAt: Date
}

protocol SessionRepository: Sendable {
    func create(_ session: NewSession, logger: Logger) async throws -> WidgetSession
    /// The session if it exists and has not expired; touches `last_seen_at`.
    func active(id: String, logger: Logger) async throws -> WidgetSession?
    func appendMessage(sessionID: String, tenantID: UUID, role: String, content: String, logger: Logger) async throws
}

struct PostgresSessionRepository: SessionRepository {
    let client: Database

    func create(_ session: NewSession, logger: Logger) async throws -> WidgetSession {
        let id = Self.newSessionID()
        try await client.query(
            """
            INSERT INTO widget_sessions (id, tenant_id, external_user_id, external_user_email, external_user_name, user_agent, expires_at)
            VALUES (\(id), \(session.tenantID), \(session.externalUserID), \(session.externalUserEmail), \(session.externalUserName),
                    \(session.userAgent), \(session.expiresAt))
            """,
            logger: logger
        )
        return WidgetSession(id: id, tenantID: session.tenantID, expiresAt: session.expiresAt)
    }

    func active(id: String, logger: Logger) async throws -> WidgetSession? {
        let rows = try await client.query(
            """
            UPDATE widget_sessions SET last_seen_at = now()
            WHERE id = \(id) AND expires_at > now()
            RETURNING tenant_id, expires_at
            """,
            logger: logger
        )
        for (tenantID, expiresAt) in try rows.decode((UUID, Date).self) {
            return WidgetSession(id: id, tenantID: tenantID, expiresAt: expiresAt)
        }
        return nil
    }

    func appendMessage(sessionID: String, tenantID: UUID, role: String, content: String, logger: Logger) async throws {
        try await client.query(
            """
            INSERT INTO messages (id, session_id, tenant_id, role, content)
            VALUES (\(UUID()), \(sessionID), \(tenantID), \(role), \(content))
            """,
            logger: logger
        )
    }

    /// `sess_` + 32 random bytes, base64url: unguessable, since the id is the widget's only credential.
    static func newSessionID() -> String {
        let bytes = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }
        return "sess_\(bytes.base64URLEncodedString())"
    }

    static func isWellFormed(_ id: String) -> Bool {
        id.hasPrefix("sess_") && id.utf8.count <= 64
            && id.utf8.dropFirst(5).allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x2D
                    || byte == 0x5F
            }
    }
}
