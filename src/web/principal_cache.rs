//! A short-lived cache of who a credential belongs to, so that a read costs one trip to the
//! database (the handler's) rather than two (the caller's lookup, then the handler's).
//!
//! Revocation stays immediate on this instance: an entry is good only while no write with
//! history events has committed since it was read (deactivation, a role or password change and
//! a token's revocation all write one), so the first request after such a write reads the
//! caller afresh. Another instance on the same PostgreSQL database sees a revocation within
//! `auth.principal_cache_ms` (0 turns the cache off). Expiry is checked on every hit.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::common::actor::Principal;
use crate::common::token::TokenGrant;

/// Entries kept at most; a full cache is emptied rather than managed (it refills in one
/// request per caller).
const MAX_ENTRIES: usize = 10_000;

/// What a credential resolved to.
#[derive(Clone)]
pub enum Cached {
    /// A person's login: the principal of the token's subject.
    Login(Principal),
    /// An API token: its owner and the grant.
    Token(Principal, TokenGrant),
}

/// The key of a credential: a login by user and session epoch, a token by its secret's hash.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum CredentialKey {
    /// User id and the token's `auth_epoch`.
    Login(i64, i64),
    /// The SHA-256 of an API token's secret, as stored.
    Token(String),
}

struct Entry {
    read_at: Instant,
    generation: u64,
    value: Cached,
}

/// The cache; one per app, shared by its workers.
pub struct PrincipalCache {
    ttl: Duration,
    commits: tokio::sync::watch::Receiver<u64>,
    entries: Mutex<HashMap<CredentialKey, Entry>>,
}

impl PrincipalCache {
    /// A cache whose entries live `ttl` at most and die with any commit counted by `commits`
    /// (see [`crate::common::db::Db::commits`]).
    pub fn new(ttl: Duration, commits: tokio::sync::watch::Receiver<u64>) -> PrincipalCache {
        PrincipalCache {
            ttl,
            commits,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The commit count now: read it before looking a credential up in the database, and
    /// store the result under it, so that a write committing meanwhile outdates the entry.
    pub fn generation(&self) -> u64 {
        *self.commits.borrow()
    }

    /// The cached value of `key`, if it is fresh.
    pub fn get(&self, key: &CredentialKey) -> Option<Cached> {
        if self.ttl.is_zero() {
            return None;
        }
        let generation = self.generation();
        let entries = self.entries.lock().ok()?;
        let entry = entries.get(key)?;
        (entry.generation == generation && entry.read_at.elapsed() < self.ttl)
            .then(|| entry.value.clone())
    }

    /// Remembers `value` for `key`, read at commit count `generation`.
    pub fn put(&self, key: CredentialKey, generation: u64, value: Cached) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                read_at: Instant::now(),
                generation,
                value,
            },
        );
    }
}
