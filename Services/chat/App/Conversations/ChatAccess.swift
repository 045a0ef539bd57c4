import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore

/// Who is reading chat's history and traces, decided in one place:
///
/// - a widget session (`X-Session-ID`) sees its own conversation and nothing else;
/// - a tenant's admins and owners (access token) see all of their tenant's conversations and traces;
/// - super_admins see any tenant's traces (by the path's id) and their own tenant's conversations.
///
/// Another tenant's ids answer 404 exactly as unknown ones do; a member without the role answers
/// 403 `ROLE_NOT_ALLOWED`.
enum ChatViewer: Sendable {
    case session(WidgetSession)
    case staff(tenantID: UUID)

    var tenantID: UUID {
        switch self {
        case .session(let session): session.tenantID
        case .staff(let tenantID): tenantID
        }
    }

    /// Limits a listing to the session's own conversation; nil for staff.
    var sessionID: String? {
        if case .session(let session) = self { return session.id }
        return nil
    }
}

struct ChatAccess: Sendable {
    let exchange: ChatExchange
    let verifier: AccessTokenVerifier

    /// A session when `X-Session-ID` is sent (401 when it is unknown or expired), else the access
    /// token of a tenant's admin or owner.
    func viewer(_ request: Request, context: AppRequestContext) async throws -> ChatViewer {
        if request.headers[.xSessionID] != nil {
            return .session(try await exchange.session(of: request, logger: context.logger))
        }
        let identity = try await self.identity(request)
        guard identity.role >= .admin else { throw Self.notAllowed }
        return .staff(tenantID: identity.tenantUUID)
    }

    /// The tenant of the path's `tenantID` when the caller (an access token) may read its traces.
    func managedTenant(_ request: Request, context: AppRequestContext) async throws -> UUID {
        let identity = try await self.identity(request)
        guard let raw = context.parameters.get("tenantID"), let tenantID = UUID(uuidString: raw) else { throw Self.tenantNotFound }
        if identity.role == .superAdmin { return tenantID }
        guard identity.tenantUUID == tenantID else { throw Self.tenantNotFound }
        guard identity.role >= .admin else { throw Self.notAllowed }
        return tenantID
    }

    private func identity(_ request: Request) async throws -> AccessTokenClaims {
        guard let token = JWTAuthMiddleware<AppRequestContext>.bearerToken(request.headers[.authorization]) else { throw AppError.unauthorized() }
        return try await verifier.verify(token)
    }

    static let tenantNotFound = AppError.notFound("Tenant not found", code: "TENANT_NOT_FOUND")
    static let notAllowed = AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: "Only the tenant's admins and owners read its conversations")
}
