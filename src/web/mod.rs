//! Web plumbing: what turns HTTP into plain values for the features and their answers back
//! into HTTP. Extractors whose errors name the field, `If-Match` as a precondition, `ETag` and
//! `Link` responses, the caller's identity from a bearer token, login throttling, and the
//! answers for unknown routes. It imports only the kernel (`crate::common`); models never
//! import it, handlers do.

pub mod auth;
pub mod extract;
pub mod idempotency;
pub mod jwt;
pub mod params;
pub mod precondition;
pub mod principal_cache;
pub mod respond;
pub mod routes;
pub mod secret;
pub mod settings;
pub mod throttle;
