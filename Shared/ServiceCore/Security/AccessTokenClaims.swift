import Foundation
import JWTKit

/// A dashboard user's role; ordered so `role >= .admin` reads naturally.
package enum Role: String, Codable, Sendable, Comparable, CaseIterable {
    case user
    case admin
    case owner
    case superAdmin = "super_admin"

    private var rank: Int {
        switch self {
        case .user: 0
        case .admin: 1
        case .owner: 2
        case .superAdmin: 3
        }
    }

    package static func < (lhs: Role, rhs: Role) -> Bool { lhs.rank < rhs.rank }
}

/// The claims of an access token minted by auth (ES256, `kid` in the header).
package struct AccessTokenClaims: JWTPayload, Equatable {
    package static let issuer = "chat-agent-suite/auth"

    package var sub: SubjectClaim
    package var userID: String
    package var tenantID: String
    package var email: String
    package var role: Role
    package var iat: IssuedAtClaim
    package var exp: ExpirationClaim
    package var jti: IDClaim
    package var iss: IssuerClaim
    /// The refresh family (session) the token belongs to: logging out revokes it, and the gateway
    /// then refuses every access token carrying it. Absent only from tokens minted outside a session.
    package var sid: String?
    /// The user's token version when the token was minted. A role change, a password change or
    /// reset, logging out everywhere or deleting the user raises it, voiding every older token.
    package var ver: Int?

    enum CodingKeys: String, CodingKey {
        case sub, email, role, iat, exp, jti, iss, sid, ver
        case userID = "user_id"
        case tenantID = "tenant_id"
    }

    package init(
        userID: UUID, tenantID: UUID, email: String, role: Role, issuedAt: Date, lifetime: TimeInterval, sessionID: UUID? = nil,
        tokenVersion: Int? = nil
    ) {
        let user = userID.uuidString.lowercased()
        self.sub = SubjectClaim(value: user)
        self.userID = user
        self.tenantID = tenantID.uuidString.lowercased()
        self.email = email
        self.role = role
        // Whole seconds: `exp` and `iat` travel as integers.
        let now = Date(timeIntervalSince1970: issuedAt.timeIntervalSince1970.rounded(.down))
        self.iat = IssuedAtClaim(value: now)
        self.exp = ExpirationClaim(value: now.addingTimeInterval(lifetime))
        self.jti = IDClaim(value: UUID().uuidString.lowercased())
        self.iss = IssuerClaim(value: Self.issuer)
        self.sid = sessionID?.uuidString.lowercased()
        self.ver = tokenVersion
    }

    package func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
        guard iss.value == Self.issuer else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "unexpected issuer")
        }
        guard UUID(uuidString: userID) != nil, UUID(uuidString: tenantID) != nil, sub.value == userID else {
            throw JWTError.claimVerificationFailure(failedClaim: sub, reason: "malformed subject")
        }
    }

    package var userUUID: UUID { UUID(uuidString: userID)! }
    package var tenantUUID: UUID { UUID(uuidString: tenantID)! }
}
