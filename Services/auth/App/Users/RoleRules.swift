import HTTPTypes
import ServiceCore

/// Who may manage whom (seed 000's roles, `user` < `admin` < `owner` < `super_admin`):
/// nobody grants a role above their own or touches a user above them, only an owner or a
/// super_admin manages admins, and users manage nobody. The last owner of a tenant is guarded
/// where the owners can be counted under a lock (`UserAdministration`).
enum RoleRules {
    static func mayManageUsers(_ actor: Role) -> Bool { actor >= .admin }

    /// The answer to anything these rules refuse: 403 `ROLE_NOT_ALLOWED`, saying why.
    static func notAllowed(_ detail: String) -> AppError {
        AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: detail)
    }

    /// API keys are the tenant's: its admins and above make, list and revoke them, and a key never
    /// gets a role above its maker's.
    static func mayManageAPIKeys(_ actor: Role) -> Bool { actor >= .admin }

    /// Why `actor` may not change a user of role `current` to `new` (nil: delete), or nil when it may.
    static func refusal(actor: Role, current: Role, new: Role?) -> String? {
        guard mayManageUsers(actor) else { return "Only admins, owners and super_admins manage users" }
        if let new, new > actor { return "You cannot grant a role above your own" }
        if current > actor { return "You cannot manage a user whose role is above yours" }
        if actor < .owner, current >= .admin || (new ?? .user) >= .admin { return "Only an owner or a super_admin manages admins" }
        return nil
    }
}
