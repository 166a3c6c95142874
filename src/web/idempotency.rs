//! `Idempotency-Key` on POST and PATCH: the middleware that answers a repeated request with
//! the stored response of the first (see [`crate::common::idempotency`]), so that no handler
//! needs to know about it.
//!
//! - The key is 1–255 visible ASCII characters, sent plain or as a structured-field string
//!   (`"…"`); anything else is a 400 naming the header.
//! - Keys are per caller: a person (by user id, whichever login token) or an API token (by its
//!   hash). A request without credentials passes untouched and meets its 401; one whose
//!   credentials no longer hold (a revoked or expired token, a deactivated user, a login
//!   ended by a password change) gets its 401 before anything stored is replayed.
//! - The same key with the same method, path and body replays the first response (status,
//!   body, `Content-Type`, `ETag`, `Location`, `Link`) with `Idempotency-Replayed: true`, and
//!   writes nothing; with another request it is a 422 `idempotency-key-reused`; while the first
//!   still runs, a 409 `idempotency-key-in-use` with `Retry-After: 1`.
//! - A response is kept for 24 hours, unless it is no outcome of the request: a 5xx, a 401 or a
//!   429 give the key back, so that the retry runs.

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::idempotency::{self, Begin, Request, Stored};
use crate::common::token;
use crate::web::auth::CurrentUser;
use crate::web::extract::BodyLimit;
use crate::web::jwt::JwtKeys;

/// The request header.
pub const KEY_HEADER: &str = "Idempotency-Key";
/// The response header of a replay.
pub const REPLAYED_HEADER: &str = "Idempotency-Replayed";

/// The headers of a response that a replay gives again.
const KEPT_HEADERS: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::ETAG,
    header::LOCATION,
    header::LINK,
];

/// The key of a request, if it has one: 400 naming the header when it is malformed.
fn key_of(req: &ServiceRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(KEY_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_field(
            KEY_HEADER,
            "must be 1–255 visible ASCII characters, such as a UUID (given once)",
        )
    };
    if values.next().is_some() {
        return Err(bad());
    }
    let text = value.to_str().map_err(|_| bad())?.trim();
    // A structured-field string ("…") or the plain text most clients send.
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(text.to_string()))
}

/// Whose request it is, without a database round trip: `user:<id>` for a valid JWT,
/// `token:<hash>` for an API token (checked by the handler's extractor as usual).
fn principal_of(req: &ServiceRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, bearer) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let bearer = bearer.trim();
    if bearer.starts_with(token::SECRET_PREFIX) {
        return token::is_well_formed(bearer).then(|| format!("token:{}", token::hash(bearer)));
    }
    let jwt = req.app_data::<web::Data<JwtKeys>>()?;
    let claims = jwt.verify(bearer).ok()?;
    Some(format!("user:{}", claims.sub))
}

fn bytes_to_payload(body: web::Bytes) -> Payload {
    let (_, mut payload) = actix_http::h1::Payload::create(true);
    payload.unread_data(body);
    Payload::from(payload)
}

/// Whether a response is the outcome of its request, to be kept for replays.
fn keeps(status: u16) -> bool {
    status < 500 && status != 401 && status != 429
}

/// Middleware: idempotent POST and PATCH (see the module's documentation).
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<BoxBody>>, actix_web::Error> {
    let method = req.method().as_str().to_string();
    let applies = method == "POST" || method == "PATCH";
    let key = match applies.then(|| key_of(&req)).transpose() {
        Ok(key) => key.flatten(),
        Err(error) => return Ok(req.error_response(error).map_into_right_body()),
    };
    let (Some(key), Some(principal), Some(db)) = (
        key,
        principal_of(&req),
        req.app_data::<web::Data<Db>>().cloned(),
    ) else {
        return next
            .call(req)
            .await
            .map(|res| res.map_into_boxed_body().map_into_left_body());
    };
    // The caller, in full, before anything stored is answered: the principal above is only
    // read from the credential, and a token revoked or expired since, a deactivated user or a
    // login ended by a password change must get their 401 (and a token its 403 for a missing
    // scope), not a replay. The handler authenticates again; only keyed requests pay twice.
    if let Err(error) = req.extract::<CurrentUser>().await {
        return Ok(req.error_response(error).map_into_right_body());
    }
    // The body, to fingerprint it and hand it on; one over the limit is left to the handler.
    let limit = req.app_data::<BodyLimit>().map(|l| l.0).unwrap_or(1 << 20);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return next
            .call(req)
            .await
            .map(|res| res.map_into_boxed_body().map_into_left_body());
    }
    let body = match req.extract::<web::Bytes>().await {
        Ok(body) => body,
        Err(_) => {
            let error = ApiError::PayloadTooLarge { limit };
            return Ok(req.error_response(error).map_into_right_body());
        }
    };
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |pq| pq.as_str().to_string());
    let mut digest = Sha256::new();
    for part in [method.as_bytes(), path.as_bytes(), &body] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    let fingerprint: String = digest
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    req.set_payload(bytes_to_payload(body));
    let request = Request {
        principal,
        key,
        fingerprint,
        method,
        path,
    };
    let begun = {
        let request = request.clone();
        db.run(move |conn| idempotency::begin(conn, &request)).await
    };
    match begun {
        Err(error) => Ok(req.error_response(error).map_into_right_body()),
        Ok(Begin::Replay(stored)) => {
            let mut response = HttpResponse::build(
                actix_web::http::StatusCode::from_u16(stored.status)
                    .unwrap_or(actix_web::http::StatusCode::OK),
            );
            for (name, value) in &stored.headers {
                if let (Ok(name), Ok(value)) = (
                    HeaderName::try_from(name.as_str()),
                    HeaderValue::try_from(value.as_str()),
                ) {
                    response.insert_header((name, value));
                }
            }
            response.insert_header((REPLAYED_HEADER, "true"));
            Ok(req
                .into_response(response.body(stored.body))
                .map_into_right_body())
        }
        Ok(Begin::Running) => {
            let error = ApiError::IdempotencyKeyInUse;
            Ok(req.error_response(error).map_into_right_body())
        }
        Ok(Begin::Mismatch { method, path }) => {
            let error = ApiError::IdempotencyKeyReused(format!(
                "This Idempotency-Key was used for another request ({method} {path}, or the \
                 same with another body) in the last 24 hours; use a new key for a new request."
            ));
            Ok(req.error_response(error).map_into_right_body())
        }
        Ok(Begin::Run) => {
            let response = match next.call(req).await {
                Ok(response) => response,
                Err(error) => {
                    let request = request.clone();
                    let _ = db
                        .run(move |conn| idempotency::release(conn, &request))
                        .await;
                    return Err(error);
                }
            };
            let status = response.status().as_u16();
            if !keeps(status) {
                let request = request.clone();
                let _ = db
                    .run(move |conn| idempotency::release(conn, &request))
                    .await;
                return Ok(response.map_into_boxed_body().map_into_left_body());
            }
            let (http_req, res) = response.into_parts();
            let (head, body) = res.into_parts();
            let body = actix_web::body::to_bytes(body)
                .await
                .map_err(|_| actix_web::error::ErrorInternalServerError("response body"))?;
            let headers: Vec<(String, String)> = KEPT_HEADERS
                .iter()
                .filter_map(|name| {
                    let value = head.headers().get(name)?.to_str().ok()?;
                    Some((name.as_str().to_string(), value.to_string()))
                })
                .collect();
            let stored = Stored {
                status,
                headers,
                body: body.to_vec(),
            };
            let saved = db
                .run(move |conn| idempotency::complete(conn, &request, &stored))
                .await;
            if let Err(error) = saved {
                log::warn!("the response to an idempotent request was not stored: {error}");
            }
            let res = head.set_body(BoxBody::new(body));
            Ok(ServiceResponse::new(http_req, res).map_into_left_body())
        }
    }
}
