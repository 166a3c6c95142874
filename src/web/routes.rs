//! The answers no handler gives: 405 with `Allow` for a known path, 404 otherwise (taking the
//! routes from the OpenAPI document, so they cannot disagree with the spec), and the limits of
//! a request head.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::common::error::ApiError;

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
