//! Extractors whose errors are problem documents naming the field: a JSON body and a query
//! string, parsed by [`crate::common::parse`].

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use crate::common::error::ApiError;
use crate::common::parse::{parse_json, parse_query};

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
            let body = read_body(&mut payload, limit).await?;
            parse_json(&body).map(Json)
        })
    }
}

/// The whole body of a request, at most `limit` bytes (a 413 problem beyond).
pub async fn read_body(
    payload: &mut (
             impl futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>> + Unpin
         ),
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
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
    Ok(body)
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
