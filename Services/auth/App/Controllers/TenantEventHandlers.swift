import Foundation
import InternalAPI
import PostgresNIO
import ServiceCore

/// tenancy's tenant events (renamed, suspended, reactivated), applied once each by `EventReceiver`:
/// the directory's copy of the tenant's name and slug follows the newest state (events come in
/// any order; `tenancy_version` orders them), and the cached answer about the tenant is dropped,
/// so sign-in and sign-up see a suspension at once.
enum TenantEventHandlers {
    static func all(directory: TenantDirectory) -> [EventType: EventReceiver.Handler] {
        let apply: EventReceiver.Handler = { event, connection, logger in
            let changed = try event.decodePayload(as: TenantChanged.self)
            try await connection.query(
                """
                UPDATE tenant_directory SET name = \(changed.name), slug = \(changed.slug), tenancy_version = \(changed.version)
                WHERE tenant_id = \(changed.tenantId) AND tenancy_version < \(changed.version)
                """,
                logger: logger
            )
            directory.forget(changed.tenantId)
        }
        return Dictionary(uniqueKeysWithValues: TenantChanged.types.map { ($0, apply) })
    }
}
