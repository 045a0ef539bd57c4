import Foundation
import JWTKit
import PostgresNIO
import ServiceCore

/// Makes the bad tokens the verifiers must refuse. Tokens signed with auth's real key are made
/// from the key auth keeps in its own database, so only the one property under test is wrong.
package struct TokenForge: Sendable {
    let keys: JWTKeyCollection
    package let kid: String

    /// Loads auth's current signing key (the newest active one) from auth's database.
    package static func fromAuthDatabase(_ database: DatabaseConfig) async throws -> TokenForge {
        let (kid, pem) = try await TestPostgres.withClient(database) { client in
            let query: PostgresQuery = "SELECT kid, private_key_pem FROM signing_keys WHERE activates_at <= now() ORDER BY activates_at DESC LIMIT 1"
            for try await row in try await client.query(query).decode((String, String).self)
            {
                return row
            }
            throw FixtureError(description: "auth has no signing key yet")
        }
        let key = try ES256PrivateKey(pem: pem)
        return TokenForge(keys: await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid)), kid: kid)
    }

    /// The `kid` in a token's header: which key signed it.
    package static func keyID(of token: String) throws -> String {
        struct Header: Decodable { var kid: String }
        guard let part = token.split(separator: ".").first, let data = Data(base64URLEncoded: part) else {
            throw FixtureError(description: "not a JWT: \(token.prefix(20))…")
        }
        return try JSONDecoder().decode(Header.self, from: data).kid
    }

    /// A random key that auth never published, under a `kid` nobody knows.
    package static func stranger() async -> TokenForge {
        TokenForge(keys: await JWTKeyCollection().add(ecdsa: ES256PrivateKey(), kid: "stranger"), kid: "stranger")
    }

    package func sign(tenantID: UUID = UUID(), userID: UUID = UUID(), role: Role = .owner, issuedAt: Date = Date(), lifetime: TimeInterval = 3600) async throws -> String {
        let claims = AccessTokenClaims(userID: userID, tenantID: tenantID, email: "forged@example.com", role: role, issuedAt: issuedAt, lifetime: lifetime)
        return try await keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    /// Correctly signed, but expired an hour ago.
    package func expired() async throws -> String {
        try await sign(issuedAt: Date().addingTimeInterval(-7200), lifetime: 3600)
    }

    /// A valid token whose payload was edited afterwards (role raised), signature kept.
    package static func tampered(_ token: String) -> String {
        let parts = token.split(separator: ".").map(String.init)
        var payload = try! JSONSerialization.jsonObject(with: Data(base64URLEncoded: parts[1])!) as! [String: Any]
        payload["role"] = "super_admin"
        let edited = try! JSONSerialization.data(withJSONObject: payload).base64URLEncodedString()
        return [parts[0], edited, parts[2]].joined(separator: ".")
    }

    /// The same claims with `alg: none` and no signature.
    package static func algNone(_ token: String) -> String {
        let parts = token.split(separator: ".").map(String.init)
        var header = try! JSONSerialization.jsonObject(with: Data(base64URLEncoded: parts[0])!) as! [String: Any]
        header["alg"] = "none"
        return [try! JSONSerialization.data(withJSONObject: header).base64URLEncodedString(), parts[1], ""].joined(separator: ".")
    }

    /// The same claims re-signed with HS256, using the public JWKS document as the HMAC secret.
    package static func hmacWithPublicKey(_ token: String, jwks: Data) async throws -> String {
        let parts = token.split(separator: ".").map(String.init)
        let header = try JSONSerialization.jsonObject(with: Data(base64URLEncoded: parts[0])!) as! [String: Any]
        let claims = try JSONDecoder().decode(AccessTokenClaims.self, from: Data(base64URLEncoded: parts[1])!)
        let keys = await JWTKeyCollection().add(hmac: HMACKey(from: jwks), digestAlgorithm: .sha256, kid: JWKIdentifier(string: header["kid"] as! String))
        return try await keys.sign(claims, kid: JWKIdentifier(string: header["kid"] as! String))
    }
}
