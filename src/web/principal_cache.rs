//! A short-lived cache of who a credential belongs to, so that a read costs one trip to the
//! database (the handler's) rather than two (the caller's lookup, then the handler's), or
//! none when the handler's answer is kept too.
//!
//! An entry is good only while no process has committed a write with history events since
//! it was read (deactivation, a role or password change and a token's revocation all write
//! one): one through this server is seen at once, one by another process (the command line,
//! a second instance) within `database.watch_ms` (see [`crate::common::db::watch`]); with the
//! watch off nothing is kept. `auth.principal_cache_ms` bounds an entry's life besides. An
//! API token's expiry is checked on every hit, a JWT's before the cache is asked.

use std::time::Duration;

use crate::common::actor::Principal;
use crate::common::db::watch::Freshness;
use crate::common::fresh_cache::FreshCache;
use crate::common::token::TokenGrant;

/// Entries kept at most.
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

/// The cache; one per app, shared by its workers. A full cache is emptied rather than
/// managed (it refills in one request per caller).
pub type PrincipalCache = FreshCache<CredentialKey, Cached>;

/// The cache for `ttl` (`auth.principal_cache_ms`) over `freshness` (see
/// [`crate::common::db::Db::freshness`]).
pub fn principal_cache(ttl: Duration, freshness: Freshness) -> PrincipalCache {
    FreshCache::new(ttl, MAX_ENTRIES, freshness)
}
