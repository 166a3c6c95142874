//! opsboard: a ticketing and demand-management backend for teams that run public online
//! services. This crate builds the actix-web application from its state; `main.rs` only parses
//! the command line, and the tests build the very same app.

/// Adds `as_str`, `parse` and `NAMES` to a fieldless enum stored as text.
macro_rules! text_enum {
    ($ty:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        impl $ty {
            /// The stored and serialized name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
            /// Parses a stored or written name.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some(Self::$variant),)* _ => None }
            }
            /// Every name, for messages.
            pub const NAMES: &'static [&'static str] = &[$($text),*];
        }
    };
}

pub mod auth;
pub mod board;
pub mod catalog;
pub mod changes;
pub mod common;
pub mod config;
pub mod demands;
pub mod health;
pub mod incidents;
pub mod items;
pub mod openapi;
pub mod reports;
pub mod rollout;
pub mod sla;
pub mod startup;
pub mod tokens;
pub mod users;
pub mod web;
pub mod webhooks;
pub mod workflows;

// The kernel's modules under their old names, for the binary and the tests.
pub use common::{db, error};

use std::sync::Arc;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{
    DefaultHeaders, ErrorHandlerResponse, ErrorHandlers, Logger, Next, from_fn,
};
use actix_web::{App, HttpResponse, ResponseError};
use utoipa_actix_web::{AppExt, scope};
use utoipa_swagger_ui::{Config as SwaggerConfig, SwaggerUi};

use crate::common::db::Db;
use crate::common::error::{ApiError, PROBLEM_CONTENT_TYPE};
use crate::config::Settings;
use crate::web::extract::BodyLimit;
use crate::web::jwt::JwtKeys;
use crate::web::routes::RouteTable;

/// What the running app is made of; cheap to clone. The app registers each piece as app data
/// of its own type, and a handler extracts only what it needs (`web::Data<Db>`,
/// `web::Data<PasswordGate>`, …), so that no feature depends on the app.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub db: Db,
    /// Token signing and verification.
    pub jwt: Arc<JwtKeys>,
    /// The validated configuration.
    pub settings: Arc<Settings>,
    /// An argon2id hash of a random password, verified when a login names an unknown e-mail.
    pub dummy_hash: Arc<web::auth::DummyHash>,
    /// The per-account and per-address login buckets.
    pub login_throttle: Arc<web::throttle::LoginThrottle>,
    /// The cap on concurrent password hashing.
    pub passwords: common::password::PasswordGate,
    /// The turns of board-view building, shared by every worker.
    pub view_turns: Arc<workflows::board_view::ViewTurns>,
    /// Who the recent credentials belong to, so that a read makes one trip to the database.
    pub principals: Arc<web::principal_cache::PrincipalCache>,
    /// The tasks and demands recently answered, kept until any process commits a change.
    pub items: Arc<items::cache::ItemCache>,
}

/// Registers every documented route: the probes at the root, the API under `/api/v1`.
fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.configure(health::configure).service(
        scope::scope("/api/v1")
            .configure(auth::handlers::configure)
            .configure(users::configure)
            .configure(tokens::configure)
            .configure(workflows::deactivation::configure)
            .configure(catalog::configure)
            .configure(board::configure)
            .configure(workflows::board_view::configure)
            .configure(items::configure)
            .configure(demands::configure)
            .configure(incidents::configure)
            .configure(sla::configure)
            .configure(rollout::configure)
            .configure(changes::configure)
            .configure(webhooks::configure)
            .configure(reports::configure)
            .service(workflows::jira::handlers::import_jira),
    );
}

/// Connects the kernel's hooks to the features that fill them: the item snapshots of the
/// changes feed. Idempotent; everything that opens the database or builds the app calls it.
pub fn register_hooks() {
    common::history::register_item_snapshots(items::types::Item::snapshots);
    common::history::register_event_observer(webhooks::outbox::OBSERVER);
    common::history::register_item_derived(reports::derive::update);
    common::history::register_arrival_writer(reports::derive::write_arrival);
}

/// The OpenAPI document of the app, exactly as served at `/api-docs/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, api) = App::new()
        .into_utoipa_app()
        .openapi(openapi::base())
        .configure(routes)
        .split_for_parts();
    openapi::finish(api)
}

/// Where the OpenAPI document is served, and where Swagger UI reads it.
const OPENAPI_JSON_PATH: &str = "/api-docs/openapi.json";

/// The OpenAPI document as every worker serves it: its JSON, and the route table derived
/// from it. Built once per process and shared: a copy per worker cost 8.6 MB of resident
/// memory each (a 2-core machine idled at 53 MB with two workers, 44 MB with one).
struct ServedDocument {
    json: actix_web::web::Bytes,
    routes: Arc<RouteTable>,
}

impl ServedDocument {
    /// The process's document, built by the first worker that asks.
    fn shared() -> Arc<ServedDocument> {
        static DOCUMENT: std::sync::OnceLock<Arc<ServedDocument>> = std::sync::OnceLock::new();
        DOCUMENT
            .get_or_init(|| {
                let api = openapi_document();
                let json = serde_json::to_vec(&api).unwrap_or_else(|error| {
                    log::error!("the OpenAPI document does not serialize: {error}");
                    Vec::new()
                });
                Arc::new(ServedDocument {
                    json: json.into(),
                    routes: Arc::new(RouteTable::from_openapi(&api)),
                })
            })
            .clone()
    }
}

/// Builds the application: routes, the docs, error handling and request logging.
pub fn build_app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    register_hooks();
    // Every worker registers the routes through utoipa, which describes them again; that
    // description is dropped at once, and all workers share one document.
    let (app, _) = App::new()
        .into_utoipa_app()
        .openapi(openapi::base())
        .configure(routes)
        .split_for_parts();
    let document = ServedDocument::shared();
    let body_limit = state.settings.server.body_limit;
    use actix_web::web::Data;
    app.app_data(Data::new(state.db.clone()))
        .app_data(Data::from(state.jwt.clone()))
        .app_data(Data::from(state.dummy_hash.clone()))
        .app_data(Data::from(state.login_throttle.clone()))
        .app_data(Data::new(state.passwords.clone()))
        .app_data(Data::new(state.settings.demands.clone()))
        .app_data(Data::new(state.settings.boards.clone()))
        .app_data(Data::new(state.settings.webhooks.clone()))
        .app_data(Data::new(state.settings.rollout.clone()))
        .app_data(Data::from(state.view_turns.clone()))
        .app_data(Data::from(state.principals.clone()))
        .app_data(Data::from(state.items.clone()))
        .app_data(Data::from(document.routes.clone()))
        .app_data(BodyLimit(body_limit))
        .app_data(actix_web::web::PayloadConfig::new(body_limit))
        .app_data(
            actix_web::web::PathConfig::default().error_handler(|error, req| {
                // Name the path parameter that did not parse.
                // Numeric parameters are the ids; a key like OPS is text and always parses.
                let unparsable = |(name, value): &(&str, &str)| {
                    (*name == "id" || name.ends_with("_id")) && value.parse::<i64>().is_err()
                };
                let field = req
                    .match_info()
                    .iter()
                    .find(unparsable)
                    .map(|(name, _)| name.to_string())
                    .unwrap_or_else(|| "path".to_string());
                ApiError::bad_field(field, format!("is not valid here: {error}")).into()
            }),
        )
        .route(
            OPENAPI_JSON_PATH,
            actix_web::web::get().to(move || {
                let json = document.json.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type(header::ContentType::json())
                        .body(json)
                }
            }),
        )
        .service(
            SwaggerUi::new("/swagger-ui/{_:.*}").config(
                SwaggerConfig::new([OPENAPI_JSON_PATH])
                    .validator_url("none")
                    .persist_authorization(true),
            ),
        )
        .route(
            "/swagger-ui",
            actix_web::web::get().to(|| async {
                HttpResponse::PermanentRedirect()
                    .insert_header((header::LOCATION, "/swagger-ui/"))
                    .finish()
            }),
        )
        .default_service(actix_web::web::to(web::routes::no_route))
        .wrap(from_fn(web::idempotency::idempotency))
        .wrap(from_fn(web::routes::strict_query))
        .wrap(ErrorHandlers::new().default_handler(ensure_problem))
        .wrap(from_fn(head_as_get))
        .wrap(from_fn(web::routes::limit_request_head))
        .wrap(DefaultHeaders::new().add(("X-Content-Type-Options", "nosniff")))
        .wrap(from_fn(security_headers))
        .wrap(Logger::new(r#"%a "%r" %s %b %Dms"#))
        // Outermost, so that what is stored for replays is the plain body: compresses what the
        // client accepts (br, gzip, zstd), such as the megabytes of a large board view.
        .wrap(actix_web::middleware::Compress::default())
}

/// The Content-Security-Policy of Swagger UI: scripts, stylesheets and images only from this
/// server (plus the `data:` SVG icons its stylesheet uses), requests only to this server, no
/// inline script (the page has none), no framing, no forms, no `<base>`. The one inline
/// `<style>` Swagger UI renders, the colours of its logo, is allowed by its hash rather than
/// by `'unsafe-inline'`; a test recomputes the hash from the served preset, so an upgrade of
/// Swagger UI that changes it fails there instead of in a browser.
pub const SWAGGER_UI_CSP: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// Headers that depend on what is served, set on every response including errors: the API
/// (`/api/v1`) answers with authenticated data, which no cache may keep; Swagger UI
/// (`/swagger-ui`) gets a CSP that allows only this server's assets and may not be framed.
async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let path = req.path();
    let api = path == "/api/v1" || path.starts_with("/api/v1/");
    let docs = path == "/swagger-ui" || path.starts_with("/swagger-ui/");
    // The layers inside answer every error with a response (handlers' errors become responses
    // where they arise, `ensure_problem` returns `Ok`), so an `Err` here cannot carry one.
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    if api {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if docs {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(SWAGGER_UI_CSP),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    Ok(res)
}

/// Serves `HEAD` wherever `GET` is served, as HTTP requires: the request is routed as `GET`,
/// and actix-http leaves out the body because the connection saw a `HEAD`.
async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.method() == actix_web::http::Method::HEAD {
        req.head_mut().method = actix_web::http::Method::GET;
    }
    next.call(req).await
}

/// Turns any error response that is not yet a problem document (one produced inside actix
/// itself) into one, so that every error a client sees has the same shape.
fn ensure_problem<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == PROBLEM_CONTENT_TYPE.as_bytes());
    if is_problem || !(res.status().is_client_error() || res.status().is_server_error()) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let error = match status.as_u16() {
        400 => ApiError::BadRequest {
            detail: "The request is malformed.".into(),
            errors: Vec::new(),
        },
        401 => ApiError::Unauthorized("Authentication is required.".into()),
        403 => ApiError::Forbidden("Not allowed.".into()),
        404 => ApiError::NotFound("No such resource.".into()),
        413 => ApiError::PayloadTooLarge {
            limit: res
                .request()
                .app_data::<BodyLimit>()
                .map(|l| l.0)
                .unwrap_or(0),
        },
        415 => ApiError::UnsupportedMediaType("Unsupported media type.".into()),
        503 => ApiError::Unavailable(format!("status {status}")),
        s if s >= 500 => ApiError::internal(format!("actix answered {status}")),
        _ => ApiError::BadRequest {
            detail: format!("The request failed ({status})."),
            errors: Vec::new(),
        },
    };
    let mut replacement = error.error_response();
    *replacement.status_mut() = status;
    let (req, _) = res.into_parts();
    let res: ServiceResponse<EitherBody<B, BoxBody>> =
        ServiceResponse::new(req, replacement).map_into_right_body();
    Ok(ErrorHandlerResponse::Response(res))
}
