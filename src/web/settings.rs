//! The `[auth]` section of the configuration: JWT, the first admin, login throttling and the
//! cap on password hashing. The app validates it with the rest; web plumbing reads it.

use serde::Deserialize;

/// Authentication settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 secret; empty means "generate one" in development.
    pub jwt_secret: String,
    /// Expected and issued `iss`.
    pub jwt_issuer: String,
    /// Expected and issued `aud`.
    pub jwt_audience: String,
    /// Token lifetime in minutes.
    pub token_ttl_minutes: i64,
    /// First admin's e-mail on an empty database.
    pub admin_email: String,
    /// First admin's password on an empty database.
    pub admin_password: String,
    /// Login attempts one account (e-mail) may make in a row before it is throttled.
    pub login_account_burst: u32,
    /// Seconds after which a throttled account may make one more attempt.
    pub login_account_refill_secs: u64,
    /// Login attempts one client address may make in a row before it is throttled.
    pub login_address_burst: u32,
    /// Seconds after which a throttled address may make one more attempt.
    pub login_address_refill_secs: u64,
    /// Accounts (and, apart, addresses) the login throttle tracks at most; bounds its memory.
    pub login_tracked_keys: usize,
    /// Take the client address from `Forwarded` / `X-Forwarded-For` (the entry the nearest
    /// proxy added) instead of the TCP peer; only behind a reverse proxy that sets them.
    pub trust_forwarded_for: bool,
    /// Password hashes computed or verified at the same time, at most (argon2id: 19 MiB and a
    /// core each).
    pub password_hash_concurrency: usize,
    /// Seconds a request waits for its turn to hash before it gets 503.
    pub password_hash_wait_secs: u64,
    /// Milliseconds a caller's identity, once read, answers further requests without a
    /// database read, as long as no write has committed on this instance meanwhile; 0 reads
    /// it on every request.
    pub principal_cache_ms: u64,
}

// Secrets never reach a log line, not even through `{:?}`.
impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthSettings")
            .field(
                "jwt_secret",
                &if self.jwt_secret.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("token_ttl_minutes", &self.token_ttl_minutes)
            .field("admin_email", &self.admin_email)
            .field(
                "admin_password",
                &if self.admin_password.is_empty() {
                    ""
                } else {
                    "<set>"
                },
            )
            .field("login_account_burst", &self.login_account_burst)
            .field("login_account_refill_secs", &self.login_account_refill_secs)
            .field("login_address_burst", &self.login_address_burst)
            .field("login_address_refill_secs", &self.login_address_refill_secs)
            .field("login_tracked_keys", &self.login_tracked_keys)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("password_hash_concurrency", &self.password_hash_concurrency)
            .field("password_hash_wait_secs", &self.password_hash_wait_secs)
            .field("principal_cache_ms", &self.principal_cache_ms)
            .finish()
    }
}
