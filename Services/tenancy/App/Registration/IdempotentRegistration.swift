import Foundation
import HTTPTypes
import InternalAPI
import Logging
import ServiceCore

/// Registration under an `Idempotency-Key` (docs/design.md): the first request with a key
/// registers; a repeat with the same body answers the same result (a 201 with fresh tokens for the
/// same owner, or the same refusal) and creates nothing; one while the first still runs is 409
/// `IDEMPOTENCY_IN_PROGRESS` (retry shortly); the key with another body is 422
/// `IDEMPOTENCY_KEY_REUSED`. Failures worth retrying (an unreachable service, compensated) free
/// the key, so the next request with it runs afresh.
struct IdempotentRegistration: Sendable {
    let registration: RegistrationService
    let requests: RegistrationRequests

    static let header = HTTPField.Name("Idempotency-Key")!
    static let maxKeyLength = 255

    /// What a 201 answers besides the tokens, kept for replays.
    struct Registered: Codable, Sendable {
        var tenantId: UUID
        var tenantSlug: String
        var accountName: String
        var userId: UUID
        var email: String
        var trialEndsAt: Date?

        init(_ result: RegistrationService.Result) {
            self.tenantId = result.tenant.id
            self.tenantSlug = result.tenant.slug
            self.accountName = result.tenant.name
            self.userId = result.owner.userId
            self.email = result.owner.email
            self.trialEndsAt = result.trial.trialEndsAt
        }
    }

    /// The request's key, nil without one; 400 when it is repeated, empty, longer than 255
    /// characters or not printable ASCII.
    static func key(in headers: HTTPFields) throws -> String? {
        let values = headers[values: header]
        guard let key = values.first else { return nil }
        guard values.count == 1 else {
            throw AppError.badRequest("Send one Idempotency-Key header", code: "INVALID_IDEMPOTENCY_KEY")
        }
        let printable = key.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value <= 0x7E }
        guard !key.isEmpty, key.unicodeScalars.count <= maxKeyLength, printable else {
            throw AppError.badRequest("Idempotency-Key must be 1 to 255 printable ASCII characters", code: "INVALID_IDEMPOTENCY_KEY")
        }
        return key
    }

    func register(_ input: RegistrationService.Input, key: String, logger: Logger) async throws -> (Registered, CreatedOwner) {
        var logger = logger
        logger[metadataKey: "idempotency_key"] = .string(key)
        switch try await requests.claim(key: key, fingerprint: requests.fingerprint(input), logger: logger) {
        case .reused:
            throw AppError(
                .unprocessableContent, code: "IDEMPOTENCY_KEY_REUSED",
                detail: "This Idempotency-Key was used with another request body; use a new key for a new registration"
            )
        case .inProgress:
            throw AppError(
                .conflict, code: "IDEMPOTENCY_IN_PROGRESS", detail: "A registration with this Idempotency-Key is still running; retry shortly",
                headers: [.retryAfter: "1"]
            )
        case .completed(let registrationID, let status, let body):
            return try await replay(input, registrationID: registrationID, status: status, body: body, logger: logger)
        case .claimed(let registrationID):
            let result: RegistrationService.Result
            do {
                result = try await registration.register(input, registrationID: registrationID, logger: logger)
            } catch let error as AppError where error.status == .conflict || error.status == .unprocessableContent {
                // A verdict on the request itself (email taken, password too weak): the same every time.
                try await requests.complete(
                    key: key, registrationID: registrationID, status: Int(error.status.code),
                    body: ErrorBody(detail: error.detail, code: error.code, fields: error.fields), logger: logger
                )
                throw error
            } catch {
                do {
                    try await requests.release(key: key, registrationID: registrationID, logger: logger)
                } catch let releaseError {
                    logger.warning("idempotency key not freed; it frees itself later", metadata: ["error": "\(releaseError)"])
                }
                throw error
            }
            let registered = Registered(result)
            do {
                try await requests.complete(key: key, registrationID: registrationID, status: 201, body: registered, logger: logger)
            } catch {
                // The tenant exists; a retry finds the key in progress until it is abandoned, then the email taken.
                logger.error("registration done but its idempotency record was not", metadata: ["error": "\(error)"])
            }
            return (registered, result.owner)
        }
    }

    private func replay(
        _ input: RegistrationService.Input, registrationID: UUID, status: Int, body: String, logger: Logger
    ) async throws -> (Registered, CreatedOwner) {
        guard status == 201 else {
            let error = try JSONCoding.decoder.decode(ErrorBody.self, from: Data(body.utf8))
            throw AppError(HTTPResponse.Status(code: status), code: error.code, detail: error.detail, fields: error.fields)
        }
        let registered = try JSONCoding.decoder.decode(Registered.self, from: Data(body.utf8))
        do {
            let owner = try await registration.createOwner(
                input, tenantID: registered.tenantId, tenantName: registered.accountName, tenantSlug: registered.tenantSlug,
                registrationID: registrationID, logger: logger
            )
            return (registered, owner)
        } catch {
            throw RegistrationService.publicError(error, step: "signing the owner in again")
        }
    }
}
