//! Typed configuration: `config/default.toml` (compiled into the binary, so it runs from any
//! directory), then the file named by `OPSBOARD_CONFIG`, then `OPSBOARD__SECTION__KEY` variables,
//! then the short variables that scripts and containers use (`DATABASE_URL`, `OPSBOARD_BIND`, …).
//! Every setting is validated once here; an invalid one stops the start with a message naming it.

use std::net::SocketAddr;

use serde::Deserialize;

pub use crate::common::db::DatabaseSettings;
pub use crate::demands::DemandSettings;
pub use crate::web::auth::AuthSettings;

/// The defaults, exactly as documented in `config/default.toml`.
const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Short environment variables and the setting each one overrides.
const SHORT_VARIABLES: &[(&str, &str)] = &[
    ("OPSBOARD_ENV", "environment"),
    ("OPSBOARD_BIND", "server.bind"),
    ("DATABASE_URL", "database.url"),
    ("OPSBOARD_JWT_SECRET", "auth.jwt_secret"),
    ("OPSBOARD_ADMIN_EMAIL", "auth.admin_email"),
    ("OPSBOARD_ADMIN_PASSWORD", "auth.admin_password"),
];

pub use crate::web::secret::MIN_SECRET_BYTES;

/// Where the service runs; production is strict about secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// Local work: missing secrets are generated, a first admin is created for you.
    Development,
    /// Real deployments: every secret must be given.
    Production,
}

/// All settings of the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `development` or `production`.
    pub environment: Environment,
    /// HTTP server settings.
    pub server: ServerSettings,
    /// Storage settings.
    pub database: DatabaseSettings,
    /// Authentication settings.
    pub auth: AuthSettings,
    /// Demand intake settings.
    pub demands: DemandSettings,
    /// SLA calendar settings.
    pub sla: SlaSettings,
    /// Board view settings.
    pub boards: crate::workflows::board_view::BoardSettings,
    /// Webhook delivery settings.
    pub webhooks: crate::webhooks::WebhookSettings,
    /// Rollout settings: the checklist of a joining administration.
    #[serde(default)]
    pub rollout: crate::rollout::RolloutSettings,
}

/// The business-hours calendar of SLA clocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaSettings {
    /// IANA time zone of the working hours.
    pub timezone: String,
    /// Working days, `mon` to `sun`.
    pub working_days: Vec<String>,
    /// Start of a working day, `HH:MM`.
    pub day_start: String,
    /// End of a working day, `HH:MM`.
    pub day_end: String,
    /// Seconds between two checks for newly breached SLAs (each breach becomes an event).
    pub breach_check_secs: u64,
}

impl SlaSettings {
    /// The calendar these settings describe, with Mecklenburg-Vorpommern's public holidays.
    pub fn calendar(&self) -> Result<crate::common::calendar::Calendar, ConfigError> {
        let tz: chrono_tz::Tz = self.timezone.parse().map_err(|_| {
            ConfigError(format!(
                "sla.timezone must be an IANA time zone such as Europe/Berlin, got `{}`",
                self.timezone
            ))
        })?;
        let time = |name: &str, value: &str| {
            chrono::NaiveTime::parse_from_str(value, "%H:%M")
                .map_err(|_| ConfigError(format!("sla.{name} must be HH:MM, got `{value}`")))
        };
        let (start, end) = (
            time("day_start", &self.day_start)?,
            time("day_end", &self.day_end)?,
        );
        if start >= end {
            return Err(ConfigError(
                "sla.day_start must be before sla.day_end".into(),
            ));
        }
        const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let mut hours = [None; 7];
        for day in &self.working_days {
            let index = DAYS
                .iter()
                .position(|d| d.eq_ignore_ascii_case(day.trim()))
                .ok_or_else(|| {
                    ConfigError(format!(
                        "sla.working_days holds `{day}`; use mon, tue, wed, thu, fri, sat, sun"
                    ))
                })?;
            hours[index] = Some((start, end));
        }
        if hours.iter().all(Option::is_none) {
            return Err(ConfigError(
                "sla.working_days must name at least one day".into(),
            ));
        }
        Ok(crate::common::calendar::Calendar::new(tz, hours))
    }
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address and port to listen on.
    pub bind: String,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Largest request body in bytes.
    pub body_limit: usize,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
}

/// The `[auth]` section's limits, checked where every setting is.
impl AuthSettings {
    /// Checks the login throttling and password hashing limits.
    fn validate_throttling(&self) -> Result<(), ConfigError> {
        const DAY: u64 = 24 * 60 * 60;
        let within = |name: &str, value: u64, min: u64, max: u64| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(ConfigError(format!(
                    "auth.{name} must be between {min} and {max}, got {value}"
                )))
            }
        };
        within(
            "login_account_burst",
            self.login_account_burst.into(),
            1,
            1_000_000,
        )?;
        within(
            "login_account_refill_secs",
            self.login_account_refill_secs,
            1,
            DAY,
        )?;
        within(
            "login_address_burst",
            self.login_address_burst.into(),
            1,
            1_000_000,
        )?;
        within(
            "login_address_refill_secs",
            self.login_address_refill_secs,
            1,
            DAY,
        )?;
        within(
            "login_tracked_keys",
            self.login_tracked_keys as u64,
            100,
            1 << 27,
        )?;
        within(
            "password_hash_concurrency",
            self.password_hash_concurrency as u64,
            1,
            1024,
        )?;
        within(
            "password_hash_wait_secs",
            self.password_hash_wait_secs,
            1,
            600,
        )?;
        within("principal_cache_ms", self.principal_cache_ms, 0, 60_000)
    }
}

/// Settings with a fixed set of values: `(key, variable, accepted values)`. They are checked
/// before deserialization, so that the message lists the values instead of serde's wording.
const ENUMERATIONS: &[(&str, &str, &[&str])] = &[(
    "environment",
    "OPSBOARD_ENV",
    &["development", "production"],
)];

fn check_enumerations(config: &config::Config) -> Result<(), ConfigError> {
    for (key, variable, accepted) in ENUMERATIONS {
        let Ok(value) = config.get_string(key) else {
            continue;
        };
        if !accepted.contains(&value.as_str()) {
            let (last, first) = accepted.split_last().unwrap_or((&"", &[]));
            let list = if first.is_empty() {
                (*last).to_string()
            } else {
                format!("{} or {last}", first.join(", "))
            };
            return Err(ConfigError(format!(
                "{variable} must be {list}, got {value} (setting {key})"
            )));
        }
    }
    Ok(())
}

/// Whether `bind` is `address:port` or `host:port` (resolved when the server binds, as
/// actix-web's `bind` does).
fn is_bind_address(bind: &str) -> bool {
    if bind.parse::<SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = bind.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok()
        && !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// A setting that cannot be used; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// The documented defaults alone, ignoring files and the environment (used by tests).
    pub fn defaults() -> Result<Settings, ConfigError> {
        Self::build(false)
    }

    /// Defaults, then `OPSBOARD_CONFIG`, then the environment; validated.
    pub fn load() -> Result<Settings, ConfigError> {
        Self::build(true)
    }

    fn build(with_environment: bool) -> Result<Settings, ConfigError> {
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_TOML,
            config::FileFormat::Toml,
        ));
        if with_environment {
            if let Ok(path) = std::env::var("OPSBOARD_CONFIG") {
                if !std::path::Path::new(&path).is_file() {
                    return Err(ConfigError(format!(
                        "OPSBOARD_CONFIG names `{path}`, which is not a readable file"
                    )));
                }
                builder = builder.add_source(config::File::new(&path, config::FileFormat::Toml));
            }
            builder = builder.add_source(
                config::Environment::with_prefix("OPSBOARD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true),
            );
            for (variable, key) in SHORT_VARIABLES {
                if let Ok(value) = std::env::var(variable) {
                    builder = builder
                        .set_override(*key, value)
                        .map_err(|e| ConfigError(format!("{variable}: {e}")))?;
                }
            }
        }
        let config = builder.build().map_err(|e| ConfigError(e.to_string()))?;
        check_enumerations(&config)?;
        let settings: Settings = config
            .try_deserialize()
            .map_err(|e| ConfigError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks every value that serde's types do not check by themselves.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if !is_bind_address(&self.server.bind) {
            return fail(format!(
                "server.bind (OPSBOARD_BIND) must be address:port or host:port such as \
                 127.0.0.1:8080 or localhost:8080, got `{}`",
                self.server.bind
            ));
        }
        if self.server.body_limit == 0 {
            return fail("server.body_limit must be at least 1 byte".into());
        }
        if self.database.url.trim().is_empty() {
            return fail("database.url (DATABASE_URL) must not be empty".into());
        }
        crate::common::db::check_url(&self.database.url).map_err(ConfigError)?;
        crate::common::db::sqlite_dir_to_create(&self.database).map_err(ConfigError)?;
        if self.is_production() && self.database.test_commit_delay_max_ms > 0 {
            return fail(
                "database.test_commit_delay_max_ms is for tests only and must be 0 in production"
                    .into(),
            );
        }
        if self.database.pool_size == 0 {
            return fail("database.pool_size must be at least 1".into());
        }
        if self.database.watch_ms > 1000 {
            return fail(format!(
                "database.watch_ms must be between 0 and 1000, not {}",
                self.database.watch_ms
            ));
        }
        if self.database.item_cache_mb > 1024 {
            return fail(format!(
                "database.item_cache_mb must be between 0 and 1024, not {}",
                self.database.item_cache_mb
            ));
        }
        if self.database.connect_timeout_secs == 0 || self.database.pool_timeout_ms == 0 {
            return fail(
                "database.connect_timeout_secs and database.pool_timeout_ms must be at least 1"
                    .into(),
            );
        }
        if self.auth.token_ttl_minutes < 1 || self.auth.token_ttl_minutes > 60 * 24 * 30 {
            return fail("auth.token_ttl_minutes must be between 1 and 43200".into());
        }
        if self.auth.jwt_issuer.is_empty() || self.auth.jwt_audience.is_empty() {
            return fail("auth.jwt_issuer and auth.jwt_audience must not be empty".into());
        }
        let secret = &self.auth.jwt_secret;
        let how = crate::web::secret::HOW_TO_GENERATE;
        match self.environment {
            Environment::Production if secret.is_empty() => fail(format!(
                "auth.jwt_secret (OPSBOARD_JWT_SECRET) is required in production; {how}"
            )),
            _ if !secret.is_empty() && secret.len() < MIN_SECRET_BYTES => fail(format!(
                "auth.jwt_secret (OPSBOARD_JWT_SECRET) is {} bytes long; it must be at least \
                 {MIN_SECRET_BYTES} bytes; {how}",
                secret.len()
            )),
            // Development takes any secret of 32 bytes (the tests' fixed one among them).
            Environment::Production => match crate::web::secret::weakness(secret) {
                Some(why) => fail(format!(
                    "auth.jwt_secret (OPSBOARD_JWT_SECRET) is too easy to guess: {why}; {how}"
                )),
                None => Ok(()),
            },
            Environment::Development => Ok(()),
        }?;
        self.auth.validate_throttling()?;
        let board = self.demands.board.trim().to_uppercase();
        if !crate::board::model::is_valid_board_key(&board) {
            return fail(format!(
                "demands.board (OPSBOARD__DEMANDS__BOARD) must be a board key such as DEM: 2 to \
                 10 upper-case letters and digits, starting with a letter; got `{}`",
                self.demands.board
            ));
        }
        self.sla.calendar()?;
        self.rollout.validate().map_err(ConfigError)?;
        if self.boards.concurrent_views == 0 {
            return fail("boards.concurrent_views must be at least 1".into());
        }
        self.webhooks.validate().map_err(ConfigError)?;
        if self.sla.breach_check_secs == 0 {
            return fail("sla.breach_check_secs must be at least 1".into());
        }
        if self.auth.admin_email.is_empty() != self.auth.admin_password.is_empty() {
            return fail(
                "auth.admin_email (OPSBOARD_ADMIN_EMAIL) and auth.admin_password \
                 (OPSBOARD_ADMIN_PASSWORD) must be set together"
                    .into(),
            );
        }
        Ok(())
    }

    /// Whether this is a production deployment.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_defaults_are_valid() {
        let settings = Settings::defaults().expect("defaults");
        assert_eq!(settings.server.bind, "127.0.0.1:8080");
        assert_eq!(settings.server.body_limit, 1 << 20);
        assert_eq!(settings.auth.token_ttl_minutes, 60);
        assert_eq!(settings.environment, Environment::Development);
        assert_eq!(settings.database.url, "data/opsboard.db");
    }

    #[test]
    fn secrets_never_appear_in_debug_output() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.auth.jwt_secret = "super-secret-value-that-is-long-enough".into();
        settings.auth.admin_password = "admin-password-value".into();
        let printed = format!("{settings:?}");
        assert!(!printed.contains("super-secret") && !printed.contains("admin-password-value"));
    }

    #[test]
    fn throttling_limits_are_checked_and_named() {
        let mut settings = Settings::defaults().expect("defaults");
        assert_eq!(settings.auth.login_account_burst, 10);
        assert!(
            !settings.auth.trust_forwarded_for,
            "the peer address by default"
        );
        settings.auth.password_hash_concurrency = 0;
        let refused = settings.validate().expect_err("no hashing at all");
        assert!(
            refused.0.contains("auth.password_hash_concurrency"),
            "{refused}"
        );
        settings.auth.password_hash_concurrency = 2;
        settings.auth.login_address_refill_secs = 0;
        let refused = settings
            .validate()
            .expect_err("a bucket that never refills");
        assert!(
            refused.0.contains("auth.login_address_refill_secs"),
            "{refused}"
        );
    }

    #[test]
    fn production_requires_a_strong_secret() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.environment = Environment::Production;
        assert!(settings.validate().is_err());
        settings.auth.jwt_secret = "x".repeat(31);
        assert!(settings.validate().is_err());
        settings.auth.jwt_secret = "x".repeat(32);
        let refused = settings
            .validate()
            .expect_err("aaaa… is refused in production");
        assert!(refused.0.contains("openssl rand -base64 48"), "{refused}");
        settings.auth.jwt_secret =
            "b6eea4e5b6db4f2355b7aa33f56299f2a9c64a9012cd971b8cd187c67008fc1f".into();
        assert!(settings.validate().is_ok());
        // Development keeps taking any secret of 32 bytes.
        settings.environment = Environment::Development;
        settings.auth.jwt_secret = "x".repeat(32);
        assert!(settings.validate().is_ok());
    }
}
