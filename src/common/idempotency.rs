//! The store of idempotent requests: the first response to a request with an
//! `Idempotency-Key`, per caller and key, kept for a day, so that a client that retries after
//! a timeout gets the answer of the first attempt instead of a second item (the IETF httpapi
//! draft "The Idempotency-Key HTTP Header Field", as Stripe does it).
//!
//! A key is taken when its request begins (a row without a status) and completed with the
//! response when it ends; a second request with the key meanwhile is told to wait. Should the
//! process die between the two, the row stays without a status: after [`LEASE`] the next request
//! with that key runs again. That window is the price of storing the response outside the
//! handler's own transaction; the handler's write itself is still all or nothing.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::common::db::schema::idempotency_keys;
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;

/// How long a response is kept.
pub const RETENTION: Duration = Duration::hours(24);

/// How long a request may run before a repeat with its key may take it over (the first one's
/// process having died).
pub const LEASE: Duration = Duration::minutes(5);

/// A request as the store knows it.
#[derive(Debug, Clone)]
pub struct Request {
    /// Whose: `user:<id>` for a person's login, `token:<hash>` for an API token.
    pub principal: String,
    /// The client's key.
    pub key: String,
    /// SHA-256 of method, path with query, and body.
    pub fingerprint: String,
    /// The method.
    pub method: String,
    /// The path with its query.
    pub path: String,
}

/// A stored response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its status.
    pub status: u16,
    /// The headers replayed with it, as `[[name, value], …]` JSON.
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// The key is new (or expired, or its first request died): run the request.
    Run,
    /// The same request ran before: answer as it was answered.
    Replay(Stored),
    /// The same key's first request is still running.
    Running,
    /// The key was used for another request.
    Mismatch {
        /// The method and path it was used for.
        method: String,
        /// Its path.
        path: String,
    },
}

type Row = (
    String,
    String,
    String,
    Option<i32>,
    Option<String>,
    Option<Vec<u8>>,
    NaiveDateTime,
    NaiveDateTime,
);

/// Takes the key for `request`, or says why not. Not inside a transaction: the insert that
/// loses to a concurrent one must not abort anything.
pub fn begin(conn: &mut DbConnection, request: &Request) -> Result<Begin, ApiError> {
    for _ in 0..3 {
        let stamp = now();
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::principal.eq(&request.principal),
                idempotency_keys::idempotency_key.eq(&request.key),
                idempotency_keys::fingerprint.eq(&request.fingerprint),
                idempotency_keys::method.eq(&request.method),
                idempotency_keys::path.eq(&request.path),
                idempotency_keys::created_at.eq(stamp),
                idempotency_keys::expires_at.eq(stamp + RETENTION),
            ))
            .execute(conn);
        match inserted {
            Ok(_) => return Ok(Begin::Run),
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
            Err(other) => return Err(other.into()),
        }
        let row: Option<Row> = idempotency_keys::table
            .find((&request.principal, &request.key))
            .select((
                idempotency_keys::fingerprint,
                idempotency_keys::method,
                idempotency_keys::path,
                idempotency_keys::status,
                idempotency_keys::response_headers,
                idempotency_keys::response_body,
                idempotency_keys::created_at,
                idempotency_keys::expires_at,
            ))
            .first(conn)
            .optional()?;
        // Gone meanwhile (cleaned up, or its request failed): try the insert again.
        let Some((fingerprint, method, path, status, headers, body, created_at, expires_at)) = row
        else {
            continue;
        };
        let stale_run = status.is_none() && created_at + LEASE <= stamp;
        if expires_at <= stamp || stale_run {
            // Expired, or its request died: delete exactly that row and take the key anew.
            diesel::delete(
                idempotency_keys::table
                    .find((&request.principal, &request.key))
                    .filter(idempotency_keys::created_at.eq(created_at)),
            )
            .execute(conn)?;
            continue;
        }
        if fingerprint != request.fingerprint {
            return Ok(Begin::Mismatch { method, path });
        }
        return Ok(match status {
            None => Begin::Running,
            Some(status) => Begin::Replay(Stored {
                status: u16::try_from(status).unwrap_or(500),
                headers: headers
                    .and_then(|h| serde_json::from_str(&h).ok())
                    .unwrap_or_default(),
                body: body.unwrap_or_default(),
            }),
        });
    }
    Err(ApiError::Busy(
        "the idempotency key changed hands repeatedly".into(),
    ))
}

/// Stores the response of a request that ran.
pub fn complete(
    conn: &mut DbConnection,
    request: &Request,
    response: &Stored,
) -> Result<(), ApiError> {
    let headers = serde_json::to_string(&response.headers)
        .map_err(|e| ApiError::internal(format!("headers as JSON: {e}")))?;
    diesel::update(idempotency_keys::table.find((&request.principal, &request.key)))
        .set((
            idempotency_keys::status.eq(Some(i32::from(response.status))),
            idempotency_keys::response_headers.eq(Some(headers)),
            idempotency_keys::response_body.eq(Some(&response.body)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Gives the key back: the request's answer is not its outcome (a fault, a throttle), so that a
/// retry runs again.
pub fn release(conn: &mut DbConnection, request: &Request) -> Result<(), ApiError> {
    diesel::delete(
        idempotency_keys::table
            .find((&request.principal, &request.key))
            .filter(idempotency_keys::status.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// Deletes the stored responses whose day is over; returns how many.
pub fn clean_up(conn: &mut DbConnection) -> Result<usize, ApiError> {
    Ok(
        diesel::delete(idempotency_keys::table.filter(idempotency_keys::expires_at.le(now())))
            .execute(conn)?,
    )
}
