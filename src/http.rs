//! Request and response plumbing shared by every feature: JSON and query extractors whose
//! errors name the offending field, `ETag`/`If-Match`, and the answer for unknown routes and
//! methods. All of it reports through [`ApiError`], so every error is a problem document.

use std::future::Future;
use std::pin::Pin;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, FieldError};

/// The request-body limit, registered as app data from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A JSON request body. Unlike actix's own, its errors are problem documents that name the
/// field: malformed JSON is a 400, a wrong type or an unknown field a 422 naming it, a body that
/// is not JSON a 415, one over the limit a 413.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req.app_data::<BodyLimit>().map(|l| l.0).unwrap_or(1 << 20);
        let content_type = req.content_type().to_ascii_lowercase();
        let declared_length = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut payload = payload.take();
        Box::pin(async move {
            if content_type != "application/json" && !content_type.ends_with("+json") {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "The request body must be application/json, not `{}`.",
                    if content_type.is_empty() {
                        "none"
                    } else {
                        &content_type
                    }
                )));
            }
            if declared_length.is_some_and(|n| n > limit) {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            let mut body = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::BadRequest {
                    detail: format!("The request body could not be read: {e}"),
                    errors: Vec::new(),
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(ApiError::PayloadTooLarge { limit });
                }
                body.extend_from_slice(&chunk);
            }
            parse_json(&body).map(Json)
        })
    }
}

/// Parses a JSON document, naming the field of any type error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let message = strip_position(&inner.to_string());
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let (field, message) = name_the_field(&path, &message);
                    Err(ApiError::Validation(vec![FieldError::new(field, message)]))
                }
                _ => Err(ApiError::BadRequest {
                    detail: format!(
                        "The request body is not valid JSON: {message} (line {}, column {}).",
                        inner.line(),
                        inner.column()
                    ),
                    errors: Vec::new(),
                }),
            }
        }
    }
}

/// serde reports a missing or unknown field at the parent's path; name the field itself.
fn name_the_field(path: &str, message: &str) -> (String, String) {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted("missing field `") {
        return (join(name), "is required".to_string());
    }
    if let Some(name) = quoted("unknown field `") {
        // Here serde's path already ends with the unknown field itself.
        let field = if path.ends_with(&name) {
            path.to_string()
        } else {
            join(name)
        };
        let writable = message
            .split("expected one of ")
            .nth(1)
            .unwrap_or("")
            .to_string();
        let detail = if writable.is_empty() {
            "is not a field that can be set here".to_string()
        } else {
            format!("is not a field that can be set here; writable fields: {writable}")
        };
        return (field, detail);
    }
    let field = if path == "." {
        "body".to_string()
    } else {
        path.to_string()
    };
    (field, message.to_string())
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters whose parse errors are 400 problems naming the parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequest for Query<T> {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_query(req.query_string()).map(Query))
    }
}

/// Parses a query string, naming the parameter of any error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let (field, message) = name_the_field(&path, &message);
        let field = if field == "body" {
            "query".to_string()
        } else {
            field
        };
        ApiError::bad_field(field, message)
    })
}

/// The `ETag` value of a version: a strong validator, `"<version>"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A 200 JSON response with the resource's `ETag`.
pub fn ok_with_etag<T: Serialize>(body: &T, version: i64) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// A 201 JSON response with `Location` and `ETag`.
pub fn created<T: Serialize>(body: &T, location: &str, version: i64) -> HttpResponse {
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .insert_header((header::ETAG, etag(version)))
        .json(body)
}

/// The version a client's `If-Match` names: `None` when absent or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IfMatch(pub Option<i64>);

impl IfMatch {
    /// Fails with 412 when a version was named and it is not `current`.
    pub fn check(self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            Some(expected) if expected != current => Err(ApiError::PreconditionFailed {
                current_version: current,
            }),
            _ => Ok(()),
        }
    }
}

impl FromRequest for IfMatch {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_if_match(req.headers().get(header::IF_MATCH)))
    }
}

fn parse_if_match(value: Option<&HeaderValue>) -> Result<IfMatch, ApiError> {
    let Some(value) = value else {
        return Ok(IfMatch(None));
    };
    let bad = || {
        ApiError::bad_field(
            "If-Match",
            "must be the ETag of the resource, such as \"3\" (or * for any version)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(IfMatch(None));
    }
    // An entity tag is quoted (RFC 9110); a weak one compares equal for our integer versions.
    let text = text.strip_prefix("W/").unwrap_or(text);
    let number = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    number
        .parse::<i64>()
        .map(|v| IfMatch(Some(v)))
        .map_err(|_| bad())
}

/// Every path and the methods it serves, taken from the OpenAPI document so that the 405
/// answer can never disagree with the spec.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<(Vec<String>, Vec<String>)>,
}

impl RouteTable {
    /// Builds the table from the document's paths.
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        let mut routes = Vec::new();
        for (path, item) in api.paths.paths.iter() {
            let segments = path
                .strip_prefix('/')
                .unwrap_or(path)
                .split('/')
                .map(str::to_string)
                .collect();
            let mut methods = Vec::new();
            let ops = [
                ("GET", item.get.is_some()),
                ("HEAD", item.get.is_some()),
                ("POST", item.post.is_some()),
                ("PUT", item.put.is_some()),
                ("PATCH", item.patch.is_some()),
                ("DELETE", item.delete.is_some()),
            ];
            for (method, present) in ops {
                if present {
                    methods.push(method.to_string());
                }
            }
            routes.push((segments, methods));
        }
        RouteTable { routes }
    }

    /// The methods allowed on `path`, if some route matches it. Only the leading slash is
    /// dropped: `/health/` is not `/health` (actix does not route it there either), so it must
    /// not get a 405 whose `Allow` names the methods of `/health`.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let wanted: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        self.routes.iter().find_map(|(segments, methods)| {
            let matches = segments.len() == wanted.len()
                && segments.iter().zip(&wanted).all(|(pattern, actual)| {
                    (pattern.starts_with('{') && !actual.is_empty()) || pattern == actual
                });
            matches.then(|| methods.clone())
        })
    }
}

/// The answer for any request no route took: 405 with `Allow` when the path exists, else 404;
/// a path that exists only without its trailing slash is a 404 that names that path.
pub async fn no_route(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let table = req.app_data::<web::Data<RouteTable>>();
    let path = req.path();
    if let Some(methods) = table.and_then(|t| t.allowed(path)) {
        return Err(ApiError::MethodNotAllowed(methods));
    }
    let without_slash = path.trim_end_matches('/');
    let suggestion = (without_slash.len() < path.len() && !without_slash.is_empty())
        .then_some(without_slash)
        .filter(|p| table.is_some_and(|t| t.allowed(p).is_some()));
    Err(ApiError::NotFound(match suggestion {
        Some(p) => format!("No resource at {path}; did you mean {p} (without the trailing slash)?"),
        None => format!("No resource at {path}."),
    }))
}

/// The longest request target (path and query) opsboard reads, in bytes; longer is a 414.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The largest header section opsboard reads (names, values and their separators), in bytes;
/// larger is a 431. actix-http itself answers a request head over 128 KiB, or with more than
/// 96 header fields, with an empty 431 before the app sees it; this limit stays well below.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The first limit of the request head that `req` exceeds, as the problem to answer with.
pub fn check_request_head(req: &HttpRequest) -> Result<(), ApiError> {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |pq| pq.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len());
    if target > MAX_URI_BYTES {
        return Err(ApiError::UriTooLong {
            limit: MAX_URI_BYTES,
        });
    }
    // Each field as on the wire: `name: value` and CRLF.
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::HeadersTooLarge {
            limit: MAX_HEADER_BYTES,
        });
    }
    Ok(())
}

/// Middleware: answers a request whose head exceeds [`MAX_URI_BYTES`] or [`MAX_HEADER_BYTES`]
/// with a problem document, before routing, authentication or any handler.
pub async fn limit_request_head(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Err(error) = check_request_head(req.request()) {
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// Rejects text that PostgreSQL cannot store (NUL) or that is absurdly long, for both engines
/// alike; `errors` collects the problem under `field`.
pub fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max_chars: usize) {
    if value.contains('\0') {
        errors.push(FieldError::new(field, "must not contain NUL characters"));
    } else if value.chars().count() > max_chars {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
}

/// Serde helper for PATCH bodies: tells an absent field (`None`) from an explicit `null`
/// (`Some(None)`, "remove the value"). Use with `#[serde(default, deserialize_with = …)]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Serde helper for a list in a request body: at most `N` entries, else a 422 naming the
/// field ("must hold at most N entries"). Parsing stops at entry `N + 1`, so an oversized list
/// costs no memory. Pair it with `#[schema(max_items = N)]`, the same number, so that the spec
/// says what the server enforces: `#[serde(default, deserialize_with =
/// "crate::http::at_most::<20, _, _>")]`.
pub fn at_most<'de, const N: usize, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <AtMost<T, N> as serde::Deserialize>::deserialize(deserializer).map(|list| list.0)
}

/// [`at_most`] for an optional list (`null` or absent is `None`), as PATCH bodies have them;
/// use with `#[serde(default, deserialize_with = "crate::http::at_most_or_null::<N, _, _>")]`.
pub fn at_most_or_null<'de, const N: usize, D, T>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<AtMost<T, N>> as serde::Deserialize>::deserialize(deserializer)
        .map(|list| list.map(|l| l.0))
}

/// A list of at most `N` entries, read by [`at_most`].
struct AtMost<T, const N: usize>(Vec<T>);

impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for AtMost<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<T, const N: usize>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Entries<T, N> {
            type Value = AtMost<T, N>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a list of at most {N} entries")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(entry) = seq.next_element()? {
                    if entries.len() == N {
                        return Err(serde::de::Error::custom(format!(
                            "must hold at most {N} entries"
                        )));
                    }
                    entries.push(entry);
                }
                Ok(AtMost(entries))
            }
        }

        deserializer.deserialize_seq(Entries::<T, N>(std::marker::PhantomData))
    }
}

/// The LIKE pattern for a free-text `q` parameter: trimmed, lower-cased, with `%`, `_` and `\`
/// escaped (use with `ESCAPE '\'`), wrapped in `%…%`. `None` when `q` is absent or blank; a 400
/// naming `q` when it cannot be searched.
pub fn search_pattern(q: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    check_text(&mut errors, "q", q, 200);
    if let Some(e) = errors.pop() {
        return Err(ApiError::bad_field(e.field, e.message));
    }
    Ok(Some(format!("%{}%", escape_like(&q.to_lowercase()))))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "crate::http::at_most::<3, _, _>")]
        tags: Vec<String>,
        #[serde(default, deserialize_with = "crate::http::at_most_or_null::<2, _, _>")]
        refs: Option<Vec<i64>>,
    }

    fn field_error(body: &str) -> Option<FieldError> {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(mut errors)) => errors.pop(),
            other => panic!("expected a 422 for {body}: {other:?}"),
        }
    }

    #[test]
    fn lists_over_their_limit_are_422_naming_the_field() {
        let ok = parse_json::<Body>(br#"{"tags": ["a", "b", "c"], "refs": [1, 2]}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((ok.tags.len(), ok.refs.map(|r| r.len())), (3, Some(2)));
        let absent = parse_json::<Body>(b"{}").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(absent.tags.is_empty() && absent.refs.is_none());
        let null = parse_json::<Body>(br#"{"refs": null}"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(null.refs.is_none());
        assert_eq!(
            field_error(r#"{"tags": ["a", "b", "c", "d"]}"#),
            Some(FieldError::new("tags", "must hold at most 3 entries"))
        );
        assert_eq!(
            field_error(r#"{"refs": [1, 2, 3]}"#),
            Some(FieldError::new("refs", "must hold at most 2 entries"))
        );
        // An entry of the wrong type is still named by its index.
        assert_eq!(
            field_error(r#"{"tags": ["a", 1]}"#).map(|e| e.field),
            Some("tags[1]".to_string())
        );
    }
}
