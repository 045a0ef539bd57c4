import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import ServiceCore

/// Common steps of the tests, done the way a client would.
package enum Fixtures {
    package struct Registered: Codable, Sendable {
        package var accessToken: String
        package var refreshToken: String
        package var tenantId: String
        package var tenantSlug: String
        package var userId: String
        package var email: String
        package var accountName: String
        package var trialEndsAt: Date?
    }

    package static let password = "Str0ngPassw0rd"

    package static func uniqueEmail(_ label: String = "owner") -> String {
        "\(label)-\(UUID().uuidString.prefix(8).lowercased())@example.com"
    }

    /// Registers a tenant through `baseURL` (tenancy itself or the gateway) and expects 201.
    package static func register(
        at baseURL: String,
        email: String = uniqueEmail(),
        accountName: String? = nil
    ) async throws -> Registered {
        var body = ["email": email, "password": password]
        body["account_name"] = accountName ?? "Shop \(UUID().uuidString.prefix(6))"
        let response = try await TestHTTP.send(.POST, baseURL + "/api/onboarding/register", json: body)
        guard response.status == 201 else {
            throw FixtureError(description: "register answered \(response.status): \(response.text)")
        }
        return try response.json(Registered.self)
    }

    /// Creates a tenant owner through auth's internal route, as tenancy does during registration.
    package static func createOwner(
        authURL: String,
        tenantID: UUID = UUID(),
        email: String = uniqueEmail(),
        password: String = password
    ) async throws -> TestResponse {
        let request = CreateOwnerRequest(
            tenantId: tenantID, tenantName: "Acme", tenantSlug: "acme-\(UUID().uuidString.prefix(6).lowercased())", email: email,
            password: password, fullName: "Ada Owner"
        )
        return try await TestStack.callInternal(.post, authURL + "/internal/owners", callee: .auth, as: .tenancy, json: request)
    }

    package static func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }
}

package struct FixtureError: Error, CustomStringConvertible {
    package let description: String

    package init(description: String) {
        self.description = description
    }
}
