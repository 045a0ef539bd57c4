import Foundation
import JWTKit
import ServiceCore

/// Everything auth reads from its environment.
package struct AuthConfig: Sendable {
    package var common: CommonConfig
    /// bcrypt work factor; 12 in production, lower in tests.
    package var bcryptCost: Int
    package var accessTokenLifetimeSeconds: Int
    /// A PEM-encoded P-256 private key; when absent one is generated at first start and kept in the database.
    package var signingKeyPEM: String?
    /// P-256 public keys (PEM) published beside `signingKeyPEM`: the next key before a switch, the
    /// previous one until its tokens have expired (`JWT_ADDITIONAL_PUBLIC_KEYS`).
    package var additionalPublicKeyPEMs: [String]
    /// How long a key made by a rotation is published before it signs: every verifier must have
    /// fetched the JWKS by then (`SIGNING_KEY_ACTIVATION_DELAY_SECONDS`).
    package var signingKeyActivationDelaySeconds: Int
    /// A refresh token's life in seconds; every rotation starts a new one.
    package var refreshTokenLifetimeSeconds: Int
    /// How long a rotated refresh token still gets its successor (two tabs refreshing at once)
    /// before presenting it counts as reuse and ends the session.
    package var refreshReuseIntervalSeconds: Int
    /// Failed sign-ins in a row, per email, before it is locked.
    package var maxLoginAttempts: Int
    package var lockoutMinutes: Int
    /// tenancy, the subscriber of auth's events (`auth.email_verified`).
    package var tenancyURL: String
    /// The dashboard's address: verification and reset links point at its pages.
    package var appBaseURL: String
    package var mail: MailConfig
    /// API keys in use (neither revoked nor expired) one tenant may have at once.
    package var apiKeysPerTenant: Int
    /// The first super_admin, made at start when no account has the email (`SUPER_ADMIN_EMAIL`, `SUPER_ADMIN_PASSWORD`).
    package var superAdmin: (email: String, password: String)?
    // Password hashing threads (bench/auth.sh: /me under sign-in load).
    /// The priority hashing threads lower themselves to (`PASSWORD_HASH_PRIORITY`: idle, low, normal).
    package var passwordHashPriority = PasswordHashPriority.normal
    /// Hashes waiting or running at once before one more is refused 503 (`PASSWORD_HASH_MAX_PENDING`).
    package var passwordHashMaxPending: Int = 64
    // Password hashing worker process (bench/auth.sh: /me under sign-in load).
    /// Where hashes run (`PASSWORD_HASH_ISOLATION`: process, threads).
    package var passwordHashIsolation = PasswordHashIsolation.process
    /// The executable started as the hashing worker (`PASSWORD_HASH_WORKER_EXECUTABLE`); nil:
    /// this one (`auth` and `suite` serve it).
    package var passwordHashWorkerExecutable: String?
    /// Seconds the worker may hold hashes without answering any before it is taken for stuck and
    /// replaced (`PASSWORD_HASH_STALL_SECONDS`). A starved worker still answers now and then; the
    /// default leaves it a wide margin (one cost-12 hash at nice 19 under full foreign load).
    package var passwordHashStallSeconds = AuthConfig.defaultPasswordHashStallSeconds
    package static let defaultPasswordHashStallSeconds = 60

    package init(
        common: CommonConfig, bcryptCost: Int = 12, accessTokenLifetimeSeconds: Int = 86_400, signingKeyPEM: String? = nil,
        refreshTokenLifetimeSeconds: Int = 30 * 86_400, refreshReuseIntervalSeconds: Int = 10,
        maxLoginAttempts: Int = 5, lockoutMinutes: Int = 15, tenancyURL: String, appBaseURL: String = "http://localhost:8080",
        mail: MailConfig, signingKeyActivationDelaySeconds: Int = 180, apiKeysPerTenant: Int = 50
    ) {
        self.additionalPublicKeyPEMs = []
        self.signingKeyActivationDelaySeconds = signingKeyActivationDelaySeconds
        self.apiKeysPerTenant = apiKeysPerTenant
        self.tenancyURL = tenancyURL
        self.appBaseURL = appBaseURL
        self.mail = mail
        self.maxLoginAttempts = maxLoginAttempts
        self.lockoutMinutes = lockoutMinutes
        self.common = common
        self.bcryptCost = bcryptCost
        self.accessTokenLifetimeSeconds = accessTokenLifetimeSeconds
        self.signingKeyPEM = signingKeyPEM
        self.refreshTokenLifetimeSeconds = refreshTokenLifetimeSeconds
        self.refreshReuseIntervalSeconds = refreshReuseIntervalSeconds
    }

    package init(settings: Settings) throws {
        self.common = try CommonConfig(settings: settings, defaultPort: 8081)
        self.bcryptCost = try settings.int("BCRYPT_COST", default: 12, range: 4...31)
        self.accessTokenLifetimeSeconds = try settings.int("ACCESS_TOKEN_TTL_SECONDS", default: 86_400, range: 60...2_592_000)
        self.signingKeyPEM = settings.optionalString("JWT_SIGNING_KEY", isSecret: true)
        self.additionalPublicKeyPEMs = try Self.publicKeys(settings, "JWT_ADDITIONAL_PUBLIC_KEYS")
        if !additionalPublicKeyPEMs.isEmpty && signingKeyPEM == nil {
            throw ConfigurationError(
                variable: "JWT_ADDITIONAL_PUBLIC_KEYS",
                problem: "is for JWT_SIGNING_KEY only: keys kept in the database rotate with POST /api/auth/signing-keys/rotate"
            )
        }
        self.signingKeyActivationDelaySeconds = try settings.int("SIGNING_KEY_ACTIVATION_DELAY_SECONDS", default: 180, range: 1...86_400)
        self.refreshTokenLifetimeSeconds = try settings.int("REFRESH_TOKEN_TTL_DAYS", default: 30, range: 1...365) * 86_400
        self.refreshReuseIntervalSeconds = try settings.int("REFRESH_REUSE_INTERVAL_SECONDS", default: 10, range: 0...60)
        self.maxLoginAttempts = try settings.int("MAX_LOGIN_ATTEMPTS", default: 5, range: 1...100)
        self.lockoutMinutes = try settings.int("LOCKOUT_DURATION_MINUTES", default: 15, range: 1...1_440)
        self.tenancyURL = try settings.url("TENANCY_URL")
        self.appBaseURL = try settings.url("APP_BASE_URL", default: "http://localhost:8080")
        self.mail = try MailConfig(settings: settings)
        self.apiKeysPerTenant = try settings.int("API_KEYS_PER_TENANT", default: 50, range: 1...10_000)
        let priority = settings.string("PASSWORD_HASH_PRIORITY", default: "normal")
        guard let passwordHashPriority = PasswordHashPriority(rawValue: priority) else {
            throw ConfigurationError(variable: "PASSWORD_HASH_PRIORITY", problem: "must be idle, low or normal, got '\(priority)'")
        }
        self.passwordHashPriority = passwordHashPriority
        self.passwordHashMaxPending = try settings.int("PASSWORD_HASH_MAX_PENDING", default: 64, range: 1...100_000)
        let isolation = settings.string("PASSWORD_HASH_ISOLATION", default: "process")
        guard let passwordHashIsolation = PasswordHashIsolation(rawValue: isolation) else {
            throw ConfigurationError(variable: "PASSWORD_HASH_ISOLATION", problem: "must be process or threads, got '\(isolation)'")
        }
        self.passwordHashIsolation = passwordHashIsolation
        self.passwordHashWorkerExecutable = settings.optionalString("PASSWORD_HASH_WORKER_EXECUTABLE")
        self.passwordHashStallSeconds = try settings.int(
            "PASSWORD_HASH_STALL_SECONDS", default: Self.defaultPasswordHashStallSeconds, range: 1...86_400
        )
        let adminEmail = settings.optionalString("SUPER_ADMIN_EMAIL").map(CredentialPolicy.normalizedEmail)
        let adminPassword = settings.optionalString("SUPER_ADMIN_PASSWORD", isSecret: true)
        switch (adminEmail, adminPassword) {
        case (nil, nil):
            self.superAdmin = nil
        case (let email?, let password?):
            if let problem = CredentialPolicy.emailProblems(email).first {
                throw ConfigurationError(variable: "SUPER_ADMIN_EMAIL", problem: problem)
            }
            let weak = CredentialPolicy.passwordProblems(password)
            guard weak.isEmpty else { throw ConfigurationError(variable: "SUPER_ADMIN_PASSWORD", problem: weak.joined(separator: ", ")) }
            self.superAdmin = (email, password)
        default:
            throw ConfigurationError(variable: "SUPER_ADMIN_EMAIL", problem: "and SUPER_ADMIN_PASSWORD go together: set both or neither")
        }
    }

    /// One or more PEM public keys in one variable, one block after the other; each must be P-256.
    private static func publicKeys(_ settings: Settings, _ variable: String) throws -> [String] {
        guard let text = try settings.pem(variable) else { return [] }
        let end = "-----END PUBLIC KEY-----"
        let blocks = text.components(separatedBy: end).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        return try blocks.map { block in
            let pem = block + "\n" + end
            guard (try? ES256PublicKey(pem: pem)) != nil else {
                throw ConfigurationError(variable: variable, problem: "must hold P-256 public keys, each a PEM block (-----BEGIN PUBLIC KEY----- … \(end))")
            }
            return pem
        }
    }
}
