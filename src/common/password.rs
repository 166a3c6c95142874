//! Password hashing with argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane;
//! the argon2 crate's defaults).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::common::error::{ApiError, FieldError};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted; hashing megabytes would be a cheap denial of service.
pub const MAX_PASSWORD_CHARS: usize = 256;

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Checks the length rules, reporting under `field`.
pub fn check_strength(field: &str, password: &str) -> Result<(), FieldError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_PASSWORD_CHARS} characters"),
        ));
    }
    if password.contains('\0') {
        return Err(FieldError::new(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// Hashes a password to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) with a random salt.
pub fn hash(password: &str) -> Result<String, ApiError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h: PasswordHash| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the stored hash. A malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// The cap on argon2 work running at once. Each hash or verification takes 19 MiB and
/// 30–80 ms of a core; without a cap a flood of logins fills the blocking thread pool, which
/// every database request needs too, and the memory. A request takes a permit *before* its
/// work goes to the blocking pool, so a waiting login holds no thread; one that cannot get a
/// permit within `auth.password_hash_wait_secs` gets 503 with `Retry-After`.
#[derive(Clone)]
pub struct PasswordGate {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    wait: std::time::Duration,
}

impl PasswordGate {
    /// At most `concurrency` hashes at once; waiting at most `wait` for a turn.
    pub fn new(concurrency: usize, wait: std::time::Duration) -> Self {
        PasswordGate {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            wait,
        }
    }

    /// A turn to hash or verify; hold it while the work runs.
    pub async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
        let acquire = self.permits.clone().acquire_owned();
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(ApiError::internal(format!(
                "password semaphore closed: {closed}"
            ))),
            Err(_) => Err(ApiError::Overloaded {
                detail: "The server is busy checking other passwords; try again shortly.".into(),
                retry_after_secs: self.wait.as_secs().max(1),
            }),
        }
    }

    /// [`verify`] on the blocking pool, within the cap.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, ApiError> {
        let _permit = self.permit().await?;
        Ok(actix_web::web::block(move || verify(&password, &stored)).await?)
    }

    /// [`hash`] on the blocking pool, within the cap: before a transaction begins, so that no
    /// connection (and on SQLite not the write lock) waits for argon2.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let _permit = self.permit().await?;
        actix_web::web::block(move || hash(&password)).await?
    }
}
