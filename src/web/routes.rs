//! The answers no handler gives: 405 with `Allow` for a known path, 404 otherwise (taking the
//! routes from the OpenAPI document, so they cannot disagree with the spec), and the limits of
//! a request head.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::common::error::ApiError;

/// Every path, the methods it serves and the query parameters each method takes, taken from
/// the OpenAPI document so that the 405 answer and the check of query strings can never
/// disagree with the spec.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    routes: Vec<Route>,
}

/// One documented path: its segments (`{name}` for a parameter) and, per method, the names of
/// the query parameters it documents.
#[derive(Debug, Clone)]
struct Route {
    segments: Vec<String>,
    methods: Vec<(String, Vec<String>)>,
}

impl Route {
    /// Whether the path matches, and how many literal segments it matched (more literal
    /// segments win: `/demands/roadmap` over `/demands/{key}`).
    fn score(&self, wanted: &[&str]) -> Option<usize> {
        let matches = self.segments.len() == wanted.len()
            && self.segments.iter().zip(wanted).all(|(pattern, actual)| {
                (pattern.starts_with('{') && !actual.is_empty()) || pattern == actual
            });
        matches.then(|| self.segments.iter().filter(|s| !s.starts_with('{')).count())
    }
}

impl RouteTable {
    /// Builds the table from the document's paths.
    pub fn from_openapi(api: &utoipa::openapi::OpenApi) -> Self {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::path::{Operation, Parameter, ParameterIn};
        let query_names = |shared: &Option<Vec<RefOr<Parameter>>>, op: &Operation| {
            let mut names: Vec<String> = shared
                .iter()
                .chain(op.parameters.iter())
                .flatten()
                .filter_map(|p| match p {
                    RefOr::T(p) if p.parameter_in == ParameterIn::Query => Some(p.name.clone()),
                    _ => None,
                })
                .collect();
            names.sort();
            names.dedup();
            names
        };
        let mut routes = Vec::new();
        for (path, item) in api.paths.paths.iter() {
            let segments = path
                .strip_prefix('/')
                .unwrap_or(path)
                .split('/')
                .map(str::to_string)
                .collect();
            let ops = [
                ("GET", &item.get),
                ("HEAD", &item.get),
                ("POST", &item.post),
                ("PUT", &item.put),
                ("PATCH", &item.patch),
                ("DELETE", &item.delete),
            ];
            let methods = ops
                .into_iter()
                .filter_map(|(method, op)| {
                    op.as_ref()
                        .map(|op| (method.to_string(), query_names(&item.parameters, op)))
                })
                .collect();
            routes.push(Route { segments, methods });
        }
        RouteTable { routes }
    }

    /// The best route for `path`, if any matches it. Only the leading slash is dropped:
    /// `/health/` is not `/health` (actix does not route it there either), so it must not get
    /// a 405 whose `Allow` names the methods of `/health`.
    fn route(&self, path: &str) -> Option<&Route> {
        let wanted: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
        self.routes
            .iter()
            .filter_map(|route| route.score(&wanted).map(|score| (score, route)))
            .max_by_key(|(score, _)| *score)
            .map(|(_, route)| route)
    }

    /// The methods allowed on `path`, if some route matches it.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        self.route(path)
            .map(|route| route.methods.iter().map(|(m, _)| m.clone()).collect())
    }

    /// The query parameters that `method` on `path` documents, if the spec has that
    /// operation (Swagger UI and the document itself are not in it).
    pub fn query_parameters(&self, method: &str, path: &str) -> Option<&[String]> {
        self.route(path)?
            .methods
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, names)| names.as_slice())
    }

    /// A 400 naming the first query parameter of `query` that `method` on `path` does not
    /// document, and the ones it does: a misspelt filter (`limitt`, `overdue` where there is
    /// none) must not answer an unfiltered page that the caller takes for a filtered one.
    pub fn check_query(&self, method: &str, path: &str, query: &str) -> Result<(), ApiError> {
        if query.is_empty() {
            return Ok(());
        }
        let Some(accepted) = self.query_parameters(method, path) else {
            return Ok(());
        };
        for (name, _) in form_urlencoded::parse(query.as_bytes()) {
            if !accepted.iter().any(|a| *a == name) {
                let message = if accepted.is_empty() {
                    format!("is not a query parameter of {method} {path}, which takes none")
                } else {
                    format!(
                        "is not a query parameter of {method} {path}; accepted: {}",
                        accepted.join(", ")
                    )
                };
                return Err(ApiError::bad_field(name.into_owned(), message));
            }
        }
        Ok(())
    }
}

/// Middleware: answers a request whose query string names a parameter that its operation does
/// not document with a 400 problem naming it, before authentication or any handler. Request
/// bodies are strict (an unknown field is a 422); query strings are strict in the same way.
pub async fn strict_query(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let checked = req
        .app_data::<web::Data<RouteTable>>()
        .map(|table| table.check_query(req.method().as_str(), req.path(), req.query_string()));
    if let Some(Err(error)) = checked {
        return Ok(req.error_response(error).map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
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
