//! The one place where errors become HTTP responses.
//!
//! Policy: every error is an RFC 9457 `application/problem+json` body ([`Problem`]).
//! - A client's mistake is a 4xx that says what was wrong and, for validation, names each field
//!   (`errors: [{field, message}]`); nothing was changed.
//! - `diesel::NotFound` becomes 404, once ([`database`]); a broken unique key becomes 409 naming
//!   the field it guards ([`database::UNIQUE_FIELDS`]), a broken foreign key a 409 too. Neither
//!   ever carries the database's text or constraint names: features check these rules first and
//!   say more; what reaches this mapping is a race with a concurrent request. A broken check
//!   constraint is a 422 without field or names, for the same reason.
//! - Anything unexpected is logged with its whole cause chain and answered with an opaque 500
//!   that leaks no detail. An unreachable database is a 503, so that clients retry.
//! - Throttled logins are a 429 and work the server cannot start in time (password hashing at
//!   its cap) a 503; both say in `Retry-After` when to try again.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

pub mod database;

/// Base of the `type` URIs of opsboard's problems; each kind appends its slug.
pub const PROBLEM_TYPE_BASE: &str = "https://opsboard.dev/problems/";

/// The media type of every error body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem document, the body of every error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "https://opsboard.dev/problems/validation",
    "title": "Validation failed",
    "status": 422,
    "detail": "The request body has 1 invalid field.",
    "errors": [{"field": "email", "message": "must be an e-mail address"}]
}))]
pub struct Problem {
    /// URI that identifies the kind of problem.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// Short, human-readable summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    pub detail: String,
    /// For validation problems: each invalid field and what is wrong with it; for a 409 on a
    /// unique value, the field whose value is taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// For a stale `If-Match` (412) or a version conflict: the resource's current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<i64>,
    /// For 405: the methods the resource does allow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    /// For `wip-limit-exceeded`: the column's WIP limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wip_limit: Option<i32>,
    /// For `wip-limit-exceeded`: the keys of the items in the column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<String>>,
    /// For `insufficient-scope`: the scope the API token lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_scope: Option<String>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct FieldError {
    /// Path of the field, dotted for nested values (`raci.accountable`, `labels[2]`); path and
    /// query parameters use their own names.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// A field error from anything printable.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every error a handler or a feature function can return.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be parsed (malformed JSON, bad query string).
    #[error("{detail}")]
    BadRequest {
        /// What could not be parsed.
        detail: String,
        /// The field, when one can be named.
        errors: Vec<FieldError>,
    },
    /// 401: no usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 403 `insufficient-scope`: the API token lacks the scope this request needs.
    #[error("insufficient scope: {scope}")]
    InsufficientScope {
        /// The scope the request needs (`write`, `import`, …).
        scope: &'static str,
    },
    /// 404: no such resource (or route).
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<String>),
    /// 409: the request conflicts with the current state (duplicate key, last admin, …).
    #[error("{0}")]
    Conflict(String),
    /// 409: a value that must be unique is taken, found by the database (a concurrent request
    /// took it between the feature's own check and the write).
    #[error("unique value taken")]
    Taken {
        /// The field whose value is taken, where the constraint is known.
        field: Option<&'static str>,
    },
    /// 409 `wip-limit-exceeded`: the target column is at its WIP limit.
    #[error("WIP limit exceeded")]
    WipLimitExceeded {
        /// The column's name.
        column: String,
        /// Its limit.
        limit: i32,
        /// Keys of the items in it.
        items: Vec<String>,
    },
    /// 409 `stale-source`: an upsert by reference carries a `source_updated_at` older than the
    /// one already applied; a late or retried delivery cannot roll an item back.
    #[error("stale source: {0}")]
    StaleSource(String),
    /// 409 `item-deleted`: the reference belongs to a deleted item (or comment).
    #[error("deleted: {0}")]
    Deleted(String),
    /// 412 `precondition-failed`: `If-Match` or `If-None-Match` does not hold for a resource
    /// that does not exist, or exists where it must not.
    #[error("precondition failed: {0}")]
    PreconditionNotMet(String),
    /// 409 `idempotency-key-in-use`: the first request with this `Idempotency-Key` is still
    /// running; retry after `Retry-After`.
    #[error("idempotency key in use")]
    IdempotencyKeyInUse,
    /// 422 `idempotency-key-reused`: the `Idempotency-Key` belongs to another request.
    #[error("idempotency key reused: {0}")]
    IdempotencyKeyReused(String),
    /// 412: `If-Match` names a version that is no longer current.
    #[error("stale version")]
    PreconditionFailed {
        /// The version the resource has now.
        current_version: i64,
    },
    /// 413: the body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 414: the request target (path and query) is longer than opsboard reads.
    #[error("URI too long")]
    UriTooLong {
        /// The limit in bytes.
        limit: usize,
    },
    /// 431: the request's header fields are larger than opsboard reads.
    #[error("request header fields too large")]
    HeadersTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 415: the body is not JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType(String),
    /// 422: well-formed but invalid input; each field is named.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// 422: a write broke a check constraint of the database that the feature's own validation
    /// did not catch (a value combined with a concurrent change, or a rule not yet checked).
    #[error("check constraint violated")]
    CheckViolation,
    /// 429 `too-many-requests`: too many attempts (login throttling); even a right password is
    /// refused until the wait is over.
    #[error("too many requests: {detail}")]
    TooManyRequests {
        /// What was throttled.
        detail: String,
        /// Seconds until an attempt is let through again, sent as `Retry-After`.
        retry_after_secs: u64,
    },
    /// 503 `overloaded`: the server is at its cap for password hashing and could not start this
    /// request's share in time.
    #[error("overloaded: {detail}")]
    Overloaded {
        /// What could not start.
        detail: String,
        /// Seconds to wait before retrying, sent as `Retry-After`.
        retry_after_secs: u64,
    },
    /// 503 after retries: a concurrent writer held the database (SQLite's lock, PostgreSQL's
    /// serialization failure). [`crate::common::db::Db::transaction`] retries these before giving up.
    #[error("database busy: {0}")]
    Busy(String),
    /// 503: the database cannot be reached right now.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 410 `cursor-expired`: a cursor that cannot be resumed here (made by another database,
    /// or ahead of this one's history, as after a restore); start again from the head.
    #[error("cursor expired: {0}")]
    CursorExpired(String),
    /// 500: a fault of ours; the cause is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// A 422 for a single field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError::new(field, message)])
    }

    /// `Ok` when no field was found invalid, else a 422 listing them all.
    pub fn from_fields(errors: Vec<FieldError>) -> Result<(), ApiError> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(errors))
        }
    }

    /// A 400 for a single field that could not be parsed.
    pub fn bad_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError::BadRequest {
            detail: format!("`{field}`: {message}"),
            errors: vec![FieldError::new(field, message)],
        }
    }

    /// `Ok` when nothing refers to `subject`, else a 409 that names everything that still
    /// does: `refs` pairs a count with what those records are (`"demand(s) as requesting
    /// organization"`); `hint` says what to do instead. Every delete that references can block
    /// checks them through this, so that the answer is never the database's foreign-key error.
    pub fn unless_unreferenced(
        subject: &str,
        refs: &[(i64, &str)],
        hint: &str,
    ) -> Result<(), ApiError> {
        let named: Vec<String> = refs
            .iter()
            .filter(|(count, _)| *count > 0)
            .map(|(count, what)| format!("{count} {what}"))
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        Err(ApiError::Conflict(format!(
            "{subject} is still referred to by {}; {hint}",
            named.join(", ")
        )))
    }

    /// An unexpected error; its text goes to the log only.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    /// An unexpected error with the causes under it; the whole chain ([`cause_chain`]) goes to
    /// the log only.
    pub fn internal_error(error: &(dyn std::error::Error + 'static)) -> Self {
        ApiError::Internal(cause_chain(error))
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let (slug, title, detail) = match self {
            ApiError::BadRequest { detail, .. } => ("bad-request", "Bad request", detail.clone()),
            ApiError::Unauthorized(d) => ("unauthorized", "Authentication required", d.clone()),
            ApiError::Forbidden(d) => ("forbidden", "Forbidden", d.clone()),
            ApiError::InsufficientScope { scope } => (
                "insufficient-scope",
                "Insufficient scope",
                format!(
                    "This request needs an API token with the scope `{scope}`; this token \
                     lacks it. Create a token with that scope (POST /api/v1/tokens)."
                ),
            ),
            ApiError::NotFound(d) => ("not-found", "Not found", d.clone()),
            ApiError::MethodNotAllowed(allowed) => (
                "method-not-allowed",
                "Method not allowed",
                format!("This resource allows only {}.", allowed.join(", ")),
            ),
            ApiError::Conflict(d) => ("conflict", "Conflict", d.clone()),
            ApiError::Taken { field } => (
                "conflict",
                "Conflict",
                match field {
                    Some(field) => format!(
                        "The value of `{field}` is already taken (perhaps by a request at the \
                         same moment); reload and choose another."
                    ),
                    None => "A value that must be unique is already taken (perhaps by a request \
                             at the same moment); reload and try again."
                        .to_string(),
                },
            ),
            ApiError::WipLimitExceeded {
                column,
                limit,
                items,
            } => (
                "wip-limit-exceeded",
                "WIP limit exceeded",
                format!(
                    "Column {column} is at its WIP limit of {limit} ({}); finish something first, \
                     or a manager may pass override_wip.",
                    items.join(", ")
                ),
            ),
            ApiError::StaleSource(d) => ("stale-source", "Stale source", d.clone()),
            ApiError::IdempotencyKeyInUse => (
                "idempotency-key-in-use",
                "Idempotency key in use",
                "The first request with this Idempotency-Key is still running; retry in a \
                 moment to get its response."
                    .to_string(),
            ),
            ApiError::IdempotencyKeyReused(d) => (
                "idempotency-key-reused",
                "Idempotency key reused",
                d.clone(),
            ),
            ApiError::Deleted(d) => ("item-deleted", "Deleted", d.clone()),
            ApiError::PreconditionNotMet(d) => {
                ("precondition-failed", "Precondition failed", d.clone())
            }
            ApiError::PreconditionFailed { current_version } => (
                "stale-version",
                "Precondition failed",
                format!(
                    "If-Match does not name the current version {current_version}; \
                     reload the resource and apply your change again."
                ),
            ),
            ApiError::PayloadTooLarge { limit } => (
                "payload-too-large",
                "Payload too large",
                format!("The request body exceeds the limit of {limit} bytes."),
            ),
            ApiError::UriTooLong { limit } => (
                "uri-too-long",
                "URI too long",
                format!(
                    "The path and query exceed the limit of {limit} bytes; send long filters \
                     in fewer parameters or page with the cursor."
                ),
            ),
            ApiError::HeadersTooLarge { limit } => (
                "header-fields-too-large",
                "Request header fields too large",
                format!("The request's header fields exceed the limit of {limit} bytes."),
            ),
            ApiError::UnsupportedMediaType(d) => (
                "unsupported-media-type",
                "Unsupported media type",
                d.clone(),
            ),
            ApiError::Validation(errors) => (
                "validation",
                "Validation failed",
                match errors.as_slice() {
                    [one] => format!("`{}` {}", one.field, one.message),
                    many => format!("The request has {} invalid fields.", many.len()),
                },
            ),
            ApiError::CheckViolation => (
                "validation",
                "Validation failed",
                "A value breaks a rule of the stored data (perhaps together with a change made \
                 at the same moment); reload, look over the values and try again."
                    .to_string(),
            ),
            ApiError::TooManyRequests { detail, .. } => {
                ("too-many-requests", "Too many requests", detail.clone())
            }
            ApiError::Overloaded { detail, .. } => {
                ("overloaded", "Service overloaded", detail.clone())
            }
            ApiError::Unavailable(_) | ApiError::Busy(_) => (
                "unavailable",
                "Service unavailable",
                "The database cannot be reached; try again shortly.".to_string(),
            ),
            ApiError::CursorExpired(d) => ("cursor-expired", "Cursor expired", d.clone()),
            ApiError::Internal(_) => (
                "internal",
                "Internal server error",
                "An unexpected error occurred; it has been logged.".to_string(),
            ),
        };
        Problem {
            problem_type: format!("{PROBLEM_TYPE_BASE}{slug}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail,
            errors: match self {
                ApiError::Validation(errors) | ApiError::BadRequest { errors, .. } => {
                    errors.clone()
                }
                ApiError::IdempotencyKeyReused(_) => vec![FieldError::new(
                    "Idempotency-Key",
                    "belongs to another request",
                )],
                ApiError::Taken { field: Some(field) } => {
                    vec![FieldError::new(*field, "is already taken")]
                }
                _ => Vec::new(),
            },
            current_version: match self {
                ApiError::PreconditionFailed { current_version } => Some(*current_version),
                _ => None,
            },
            allowed_methods: match self {
                ApiError::MethodNotAllowed(allowed) => Some(allowed.clone()),
                _ => None,
            },
            wip_limit: match self {
                ApiError::WipLimitExceeded { limit, .. } => Some(*limit),
                _ => None,
            },
            items: match self {
                ApiError::WipLimitExceeded { items, .. } => Some(items.clone()),
                _ => None,
            },
            required_scope: match self {
                ApiError::InsufficientScope { scope } => Some(scope.to_string()),
                _ => None,
            },
        }
    }
}

/// `error` and every `source()` under it, outermost first, as `a: b: c`, for the log. A cause
/// whose text the level above already shows (`failed: b` over `b`) is not repeated.
pub fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut above = chain.clone();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !above.ends_with(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        above = text;
        source = cause.source();
    }
    chain
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_)
            | ApiError::Taken { .. }
            | ApiError::WipLimitExceeded { .. }
            | ApiError::StaleSource(_)
            | ApiError::Deleted(_)
            | ApiError::IdempotencyKeyInUse => StatusCode::CONFLICT,
            ApiError::IdempotencyKeyReused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PreconditionNotMet(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) | ApiError::CheckViolation => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unavailable(_) | ApiError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::CursorExpired(_) => StatusCode::GONE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => log::error!("internal error: {cause}"),
            ApiError::Unavailable(cause) | ApiError::Busy(cause) => {
                log::warn!("database unavailable: {cause}")
            }
            ApiError::Overloaded { detail, .. } => log::warn!("overloaded: {detail}"),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        match self {
            ApiError::Unauthorized(_) => {
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    r#"Bearer realm="opsboard", error="invalid_token""#,
                ));
            }
            ApiError::InsufficientScope { scope } => {
                // RFC 6750, section 3.1: the scope the token would need.
                response.insert_header((
                    header::WWW_AUTHENTICATE,
                    format!(
                        r#"Bearer realm="opsboard", error="insufficient_scope", scope="{scope}""#
                    ),
                ));
            }
            ApiError::MethodNotAllowed(allowed) => {
                response.insert_header((header::ALLOW, allowed.join(", ")));
            }
            ApiError::Unavailable(_) | ApiError::Busy(_) => {
                response.insert_header((header::RETRY_AFTER, "5"));
            }
            ApiError::IdempotencyKeyInUse => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::TooManyRequests {
                retry_after_secs, ..
            }
            | ApiError::Overloaded {
                retry_after_secs, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        let body = serde_json::to_vec(&self.problem()).unwrap_or_else(|_| b"{}".to_vec());
        response.body(body)
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        ApiError::internal_error(&error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn an_internal_error_leaks_nothing() {
        let error = ApiError::internal("connection to 10.0.0.5 refused: password for opsboard");
        let response = error.error_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = response.into_body().try_into_bytes().unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("\"status\":500"), "{text}");
        assert!(
            !text.contains("10.0.0.5") && !text.contains("password"),
            "{text}"
        );
    }

    /// An error with a cause, for the chain tests.
    #[derive(Debug)]
    struct Layer {
        text: &'static str,
        cause: Option<Box<Layer>>,
    }

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.text)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.cause
                .as_deref()
                .map(|c| c as &(dyn std::error::Error + 'static))
        }
    }

    fn layers(texts: &[&'static str]) -> Layer {
        let mut chain: Option<Box<Layer>> = None;
        for text in texts.iter().rev() {
            chain = Some(Box::new(Layer { text, cause: chain }));
        }
        *chain.unwrap_or_else(|| panic!("no layers"))
    }

    #[test]
    fn an_internal_error_keeps_its_whole_cause_chain_for_the_log() {
        let error = layers(&["a", "b", "c"]);
        assert_eq!(cause_chain(&error), "a: b: c");
        assert_eq!(cause_chain(&layers(&["alone"])), "alone");
        // A level that already shows its cause does not repeat it.
        let wrapped = layers(&["loading failed: bad row", "bad row", "column 3"]);
        assert_eq!(cause_chain(&wrapped), "loading failed: bad row: column 3");
        match ApiError::internal_error(&error) {
            ApiError::Internal(logged) => assert_eq!(logged, "a: b: c"),
            other => panic!("{other:?}"),
        }
        // Diesel's own wrappers: the cause of a failed deserialization reaches the log.
        let diesel_error = diesel::result::Error::DeserializationError(Box::new(error));
        match ApiError::from(diesel_error) {
            ApiError::Internal(logged) => assert_eq!(logged, "a: b: c"),
            other => panic!("{other:?}"),
        }
    }
}
