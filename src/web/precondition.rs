//! `If-Match` as a [`Precondition`] for the model: absent or `*` is any version, `"3"` (or
//! `W/"3"`) is version 3; anything else is a 400 naming the header.

use actix_web::dev::Payload;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{FromRequest, HttpRequest};

use crate::common::error::ApiError;
pub use crate::common::version::Precondition;

/// The `If-Match` request header as an OpenAPI parameter: a handler that takes a
/// [`Precondition`] names this in `#[utoipa::path(params(...))]`. The 412 it can lead to is
/// added to every such operation where the app completes the document (`openapi::finish`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatchHeader {
    /// The `ETag` you last read, e.g. `"3"`
    #[param(rename = "If-Match", pattern = r#"^(\*|(W/)?"[0-9]{1,18}")$"#)]
    pub if_match: Option<String>,
}

impl FromRequest for Precondition {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(parse_if_match(req.headers().get(header::IF_MATCH)))
    }
}

fn parse_if_match(value: Option<&HeaderValue>) -> Result<Precondition, ApiError> {
    let Some(value) = value else {
        return Ok(Precondition(None));
    };
    let bad = || {
        ApiError::bad_field(
            "If-Match",
            "must be the ETag of the resource, such as \"3\" (or * for any version)",
        )
    };
    let text = value.to_str().map_err(|_| bad())?.trim();
    if text == "*" {
        return Ok(Precondition(None));
    }
    // An entity tag is quoted (RFC 9110); a weak one compares equal for our integer versions.
    let text = text.strip_prefix("W/").unwrap_or(text);
    let number = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .ok_or_else(bad)?;
    number
        .parse::<i64>()
        .map(|v| Precondition(Some(v)))
        .map_err(|_| bad())
}
