//! API tokens of scripts: the secret's form, its hash, the scopes that narrow what a token may
//! do, and the lookup of the caller behind a token.
//!
//! A secret is `opb_` followed by 32 random base62 characters (190 bits) and a 6-character
//! checksum, like GitHub's tokens: the prefix lets secret scanners find a leaked one, the
//! checksum lets a typo be told from a revoked token without a lookup. Only the SHA-256 of the
//! whole secret is stored: a secret has full entropy, so a fast hash is safe, and every
//! request can check it without argon2's cost.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::common::actor::{Actor, Principal, Role};
use crate::common::db::schema::{api_tokens, users};
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Subject};

/// What every secret begins with.
pub const SECRET_PREFIX: &str = "opb_";

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_CHARS: usize = 32;
const CHECK_CHARS: usize = 6;

/// What a token may do, on top of what its user's role allows.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every GET the user may do.
    Read,
    /// Every write the user's role allows, except imports, webhooks and user administration.
    Write,
    /// Imports (`POST /services/import`, `/organizations/import`, `/imports/…`).
    Import,
    /// Webhook subscriptions (`/webhooks`).
    Webhooks,
    /// User administration and other people's tokens.
    Admin,
}
text_enum!(Scope {
    Read => "read",
    Write => "write",
    Import => "import",
    Webhooks => "webhooks",
    Admin => "admin",
});

/// The scopes stored for a token: names separated by spaces, in a fixed order.
pub fn format_scopes(scopes: &[Scope]) -> String {
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scopes of a stored token.
pub fn parse_scopes(text: &str) -> Vec<Scope> {
    text.split_whitespace().filter_map(Scope::parse).collect()
}

/// The scope a request needs: decided in one place for every request, so that no handler can
/// forget it. Webhook subscriptions need `webhooks`; any other GET (or HEAD) needs `read`;
/// imports need `import`; writes to user administration need `admin`; every other write needs
/// `write`. (Other people's tokens need `admin` too, which their handlers check, as only they
/// know whose token it is.)
pub fn required_scope(method: &str, path: &str) -> Scope {
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    let under = |prefix: &str| {
        path == prefix
            || path
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('/'))
    };
    if under("/webhooks") {
        Scope::Webhooks
    } else if method == "GET" || method == "HEAD" {
        Scope::Read
    } else if under("/imports") || path.ends_with("/import") {
        Scope::Import
    } else if under("/users") {
        Scope::Admin
    } else {
        Scope::Write
    }
}

/// Whether `origin` is a valid origin label: 1–64 letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit (`jira-sync`, `openproject.bridge`).
pub fn is_valid_origin(origin: &str) -> bool {
    origin.len() <= 64
        && origin
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && origin
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// What an origin must look like, for messages.
pub const ORIGIN_RULE: &str = "must be 1–64 letters, digits, `.`, `_` or `-`, starting with a letter or digit, such as jira-sync";

/// A new secret and what is stored of it: `(secret, hash, display prefix)`.
pub fn generate() -> (String, String, String) {
    use rand::Rng;
    let mut rng = rand::rng();
    let random: String = (0..RANDOM_CHARS)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let secret = format!("{SECRET_PREFIX}{random}{}", checksum(&random));
    let hash = hash(&secret);
    let shown = secret[..SECRET_PREFIX.len() + 4].to_string();
    (secret, hash, shown)
}

/// The checksum of a secret's random part: six base62 characters of its SHA-256.
fn checksum(random: &str) -> String {
    let digest = Sha256::digest(random.as_bytes());
    let mut n = u64::from_be_bytes([
        0, 0, digest[0], digest[1], digest[2], digest[3], digest[4], digest[5],
    ]);
    let mut out = [b'0'; CHECK_CHARS];
    for slot in out.iter_mut().rev() {
        *slot = ALPHABET[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `secret` has the form of an opsboard token, its checksum included.
pub fn is_well_formed(secret: &str) -> bool {
    let Some(body) = secret.strip_prefix(SECRET_PREFIX) else {
        return false;
    };
    body.len() == RANDOM_CHARS + CHECK_CHARS
        && body.bytes().all(|b| b.is_ascii_alphanumeric())
        && checksum(&body[..RANDOM_CHARS]) == body[RANDOM_CHARS..]
}

/// What is stored of a secret: the lower-case hex SHA-256 of the whole bearer value. (The
/// idempotency store keys a token's requests by the same digest.)
pub fn hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A token as authentication sees it.
#[derive(Debug, Clone)]
pub struct TokenGrant {
    /// The token's id.
    pub id: i64,
    /// What it may do.
    pub scopes: Vec<Scope>,
    /// The origin its writes record.
    pub origin: Option<String>,
    /// When it stops working.
    pub expires_at: NaiveDateTime,
    /// When it was last used (at most a minute off).
    pub last_used_at: Option<NaiveDateTime>,
}

/// The caller behind a secret: its user as a principal, and the token. 401 when the secret is
/// malformed, unknown, revoked or expired, or its user is gone — in one query.
pub fn authenticate(
    conn: &mut DbConnection,
    secret: &str,
) -> Result<(Principal, TokenGrant), ApiError> {
    let unauthorized = |why: &str| ApiError::Unauthorized(why.to_string());
    if !is_well_formed(secret) {
        return Err(unauthorized(
            "The API token is malformed (a token is opb_ and 38 letters and digits).",
        ));
    }
    type Row = (
        i64,
        String,
        Option<String>,
        NaiveDateTime,
        Option<NaiveDateTime>,
        Option<NaiveDateTime>,
        (i64, String, String, Option<i64>, bool, i64),
    );
    let row: Option<Row> = api_tokens::table
        .inner_join(users::table)
        .filter(api_tokens::secret_hash.eq(hash(secret)))
        .select((
            api_tokens::id,
            api_tokens::scopes,
            api_tokens::origin,
            api_tokens::expires_at,
            api_tokens::revoked_at,
            api_tokens::last_used_at,
            (
                users::id,
                users::email,
                users::role,
                users::organization_id,
                users::active,
                users::auth_epoch,
            ),
        ))
        .first(conn)
        .optional()?;
    let Some((id, scopes, origin, expires_at, revoked_at, last_used_at, user)) = row else {
        return Err(unauthorized("The API token is unknown."));
    };
    if revoked_at.is_some() {
        return Err(unauthorized("The API token was revoked."));
    }
    if expires_at <= now() {
        return Err(unauthorized("The API token has expired."));
    }
    let (user_id, email, role, organization_id, active, auth_epoch) = user;
    let role = Role::parse(&role)
        .ok_or_else(|| ApiError::internal(format!("user {user_id} has unknown role {role}")))?;
    Ok((
        Principal {
            actor: Actor::user(user_id, role, organization_id),
            email,
            active,
            auth_epoch,
        },
        TokenGrant {
            id,
            scopes: parse_scopes(&scopes),
            origin,
            expires_at,
            last_used_at,
        },
    ))
}

/// Notes that a token was used now, unless that was noted less than a minute ago: a busy
/// script does not turn every read into a write.
pub fn touch(conn: &mut DbConnection, grant: &TokenGrant) -> Result<(), ApiError> {
    let stamp = now();
    let minute_ago = stamp - chrono::Duration::minutes(1);
    if grant.last_used_at.is_some_and(|t| t > minute_ago) {
        return Ok(());
    }
    diesel::update(
        api_tokens::table.filter(
            api_tokens::id.eq(grant.id).and(
                api_tokens::last_used_at
                    .is_null()
                    .or(api_tokens::last_used_at.lt(minute_ago)),
            ),
        ),
    )
    .set(api_tokens::last_used_at.eq(stamp))
    .execute(conn)?;
    Ok(())
}

/// Revokes every live token of a user, each with its `token_revoked` event on the user
/// (`reason` says why): what deactivating a person does. Returns how many were revoked.
pub fn revoke_all_of(
    conn: &mut DbConnection,
    user_id: i64,
    actor: &Actor,
    reason: &str,
) -> Result<usize, ApiError> {
    let stamp = now();
    let live: Vec<(i64, String)> = api_tokens::table
        .filter(
            api_tokens::user_id
                .eq(user_id)
                .and(api_tokens::revoked_at.is_null())
                .and(api_tokens::expires_at.gt(stamp)),
        )
        .select((api_tokens::id, api_tokens::name))
        .load(conn)?;
    for (id, name) in &live {
        diesel::update(api_tokens::table.find(id))
            .set((
                api_tokens::revoked_at.eq(Some(stamp)),
                api_tokens::revoked_by.eq(actor.user_id),
            ))
            .execute(conn)?;
        history::record(
            conn,
            Subject {
                entity_type: "user",
                entity_id: user_id,
            },
            "token_revoked",
            actor,
            json!({"token_id": id, "name": name, "reason": reason}),
        )?;
    }
    Ok(live.len())
}

/// A stored time as the API shows it.
pub fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_well_formed_and_a_typo_is_caught() {
        let (secret, hash_, shown) = generate();
        assert!(
            secret.starts_with("opb_") && secret.len() == 4 + 38,
            "{secret}"
        );
        assert!(is_well_formed(&secret));
        assert_eq!(hash_, hash(&secret));
        assert_eq!(hash_.len(), 64);
        assert!(secret.starts_with(&shown));
        let mut typo = secret.clone().into_bytes();
        typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed(&String::from_utf8_lossy(&typo)));
        assert!(!is_well_formed("opb_short"));
        assert!(!is_well_formed("eyJhbGciOiJIUzI1NiJ9.e30.x"));
        assert_ne!(generate().0, secret);
    }

    #[test]
    fn each_request_needs_one_scope() {
        assert_eq!(required_scope("GET", "/api/v1/items"), Scope::Read);
        assert_eq!(required_scope("HEAD", "/api/v1/users"), Scope::Read);
        assert_eq!(required_scope("POST", "/api/v1/items"), Scope::Write);
        assert_eq!(required_scope("PATCH", "/api/v1/items/OPS-1"), Scope::Write);
        assert_eq!(
            required_scope("POST", "/api/v1/services/import"),
            Scope::Import
        );
        assert_eq!(
            required_scope("POST", "/api/v1/imports/jira"),
            Scope::Import
        );
        assert_eq!(required_scope("POST", "/api/v1/users"), Scope::Admin);
        assert_eq!(
            required_scope("POST", "/api/v1/users/3/deactivate"),
            Scope::Admin
        );
        assert_eq!(required_scope("GET", "/api/v1/webhooks"), Scope::Webhooks);
        assert_eq!(
            required_scope("POST", "/api/v1/webhooks/1/test"),
            Scope::Webhooks
        );
        assert_eq!(required_scope("POST", "/api/v1/usersx"), Scope::Write);
        assert_eq!(
            format_scopes(&[Scope::Write, Scope::Read, Scope::Write]),
            "read write"
        );
        assert_eq!(
            parse_scopes("read write nonsense"),
            vec![Scope::Read, Scope::Write]
        );
    }
}
