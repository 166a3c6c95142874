//! The OpenAPI document. Paths and schemas are collected from the mounted handlers by
//! utoipa-actix-web, so the spec is the app; this module adds what is common to all of them:
//! the info block, the two bearer schemes (a person's JWT, a script's API token) and their
//! requirement on every operation but the public ones, the `X-Opsboard-Origin` header of every
//! write, the 412 of every operation that takes `If-Match`, and the standard error responses.
//! A handler's `#[utoipa::path]` names only what is its own.

use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::common::error::{ApiError, FieldError, PROBLEM_CONTENT_TYPE, Problem};
use crate::common::token;

/// The fixed parts of the document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "opsboard",
        description = "Ticketing and demand-management backend for teams that run public online \
services: demands, tasks and incidents per online service on kanban boards, with RACI roles \
and a complete history.\n\nAuthenticate with `POST /api/v1/auth/login`, then send \
`Authorization: Bearer <access_token>` (in Swagger UI: \"Authorize\"). Every error is an \
RFC 9457 `application/problem+json` document. Lists use cursor pagination (`limit`, `cursor`, \
`next_cursor`, `Link: rel=\"next\"`). Mutable resources carry a `version`, returned as `ETag`; \
send it back in `If-Match` to avoid overwriting a concurrent change (412 when stale).",
        license(name = "EUPL-1.2", identifier = "EUPL-1.2"),
    ),
    tags(
        (name = "auth", description = "Logging in and the calling user"),
        (name = "users", description = "People with a login and their roles"),
        (name = "tokens", description = "API tokens for scripts: scoped, expiring, revocable, with an origin"),
        (name = "organizations", description = "Stakeholder bodies: ministries, agencies, operators, municipalities, vendors"),
        (name = "services", description = "The catalogue of online services and their RACI templates"),
        (name = "boards", description = "Kanban boards and their workflow columns"),
        (name = "items", description = "Demands, tasks and incidents: RACI, moves, history"),
        (name = "sla", description = "Service-level agreements: response and resolution targets of incidents per severity and service"),
        (name = "imports", description = "Bringing in history from JIRA"),
        (name = "rollout", description = "Rolling online services out to the municipal administrations: waves, entries, the matrix, the progress"),
        (name = "changes", description = "The changes feed: every change of every entity in commit order, for sync scripts"),
        (name = "webhooks", description = "Receivers subscribed to events, signed as Standard Webhooks, with reliable delivery"),
        (name = "reports", description = "Flow metrics, SLA compliance, forecasts, charts and CSV: statistics from the history"),
        (name = "health", description = "Probes for load balancers and deploy scripts"),
    ),
    // Enums used only as query parameters: utoipa collects the schemas of bodies, not of
    // parameters, so they are named here (a generated client needs every `$ref` to resolve).
    components(schemas(
        Problem,
        FieldError,
        crate::common::csv_out::Dialect,
        crate::reports::flow::FlowSection,
        crate::reports::flow::Lang,
        crate::reports::governance::GovernanceFormat
    )),
)]
struct BaseDoc;

/// The fixed parts of the document, before the handlers' paths are added.
pub fn base() -> utoipa::openapi::OpenApi {
    let mut api = BaseDoc::openapi();
    api.info.version = env!("CARGO_PKG_VERSION").to_string();
    api
}

/// The standard error responses, as `(status, component name, description)`.
const STANDARD_RESPONSES: &[(&str, &str, &str)] = &[
    (
        "400",
        "BadRequest",
        "Malformed JSON, an unparsable parameter or one the operation does not take; `errors` names it",
    ),
    (
        "401",
        "Unauthorized",
        "Missing, expired or invalid access token",
    ),
    (
        "403",
        "Forbidden",
        "The caller's role does not allow this, or the API token lacks the scope it needs \
         (`insufficient-scope`, naming it in `required_scope`)",
    ),
    ("404", "NotFound", "No such resource"),
    (
        "413",
        "PayloadTooLarge",
        "The request body is over the size limit",
    ),
    (
        "415",
        "UnsupportedMediaType",
        "The request body is not application/json",
    ),
    (
        "422",
        "ValidationFailed",
        "Invalid input; `errors` names each field",
    ),
    (
        "500",
        "InternalError",
        "An unexpected error; details are in the server log only",
    ),
    (
        "503",
        "Unavailable",
        "The database cannot be reached; retry later",
    ),
];

/// The paths whose operations anyone may call without a token: the probes and logging in.
/// Every other operation requires the bearer token.
const PUBLIC_PATHS: &[&str] = &["/health", "/ready", "/api/v1/auth/login"];

/// The response of an operation that takes `If-Match` when the version sent is not the
/// current one.
const PRECONDITION_FAILED: &str = "`If-Match` is stale";

/// Completes the collected document: the bearer scheme, the shared error responses, and on
/// every operation its security requirement and the errors it can give.
pub fn finish(mut api: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    let components = api.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        "bearer".to_string(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("The `access_token` from `POST /api/v1/auth/login`."))
                .build(),
        )),
    );
    components.security_schemes.insert(
        "api_token".to_string(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("opb_…")
                .description(Some(
                    "An API token of a script, from `POST /api/v1/tokens`: acts as its user, \
                     narrowed by its scopes (`read`, `write`, `import`, `webhooks`, `admin`). \
                     Each operation names the scope it needs in its `api_token` requirement; \
                     a request outside the token's scopes is a 403 `insufficient-scope`.",
                ))
                .build(),
        )),
    );
    for (status, name, description) in STANDARD_RESPONSES {
        let response = problem_response(description, example_of(status));
        components
            .responses
            .insert(name.to_string(), RefOr::T(response));
    }
    for (path, item) in api.paths.paths.iter_mut() {
        let has_id = path.contains('{');
        // (method, takes Idempotency-Key, operation)
        let operations = [
            ("GET", false, item.get.as_mut()),
            ("POST", true, item.post.as_mut()),
            ("PUT", false, item.put.as_mut()),
            ("PATCH", true, item.patch.as_mut()),
            ("DELETE", false, item.delete.as_mut()),
        ];
        let public = PUBLIC_PATHS.contains(&path.as_str());
        for (method, idempotent, operation) in operations {
            let Some(operation) = operation else {
                continue;
            };
            parameters_are_unique(operation);
            if !public {
                require_bearer(operation, token::required_scope(method, path));
                if method != "GET" {
                    add_origin_header(operation);
                }
                if idempotent {
                    add_idempotency_key(operation);
                }
            }
            add_precondition_failed(operation);
            add_standard_errors(operation, has_id);
        }
    }
    api
}

fn problem_response(description: &str, example: Option<serde_json::Value>) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .example(example)
                .build(),
        )
        .build()
}

/// The example of a standard error response: a problem of that status, made by the same
/// conversion the server answers with, so that Swagger UI shows a 401 as a 401 (the schema's
/// own example is a 422).
fn example_of(status: &str) -> Option<serde_json::Value> {
    let error = match status {
        "400" => ApiError::bad_field(
            "limitt",
            "is not a query parameter of GET /api/v1/items; accepted: board, category, cursor, \
             limit, …",
        ),
        "401" => ApiError::Unauthorized(
            "The access token was revoked by a change of password, role or account status; \
             log in again."
                .into(),
        ),
        "403" => {
            ApiError::Forbidden("This needs the role `member` or higher; you are `viewer`.".into())
        }
        "404" => ApiError::NotFound("No item OPS-4711.".into()),
        "412" => ApiError::PreconditionFailed { current_version: 3 },
        "413" => ApiError::PayloadTooLarge { limit: 1 << 20 },
        "415" => ApiError::UnsupportedMediaType(
            "The request body must be application/json, not `text/plain`.".into(),
        ),
        "422" => ApiError::Validation(vec![FieldError::new("title", "must not be blank")]),
        "500" => ApiError::Internal("hidden".into()),
        "503" => ApiError::Unavailable("The database is not available; retry later.".into()),
        _ => return None,
    };
    serde_json::to_value(error.problem()).ok()
}

/// A path parameter named by a shared type (`crate::web::params`) is inferred a second time,
/// undocumented, by utoipa from the handler's `web::Path` argument; the first, documented one
/// is kept. (OpenAPI allows a name only once per location anyway.)
fn parameters_are_unique(operation: &mut Operation) {
    let Some(parameters) = operation.parameters.as_mut() else {
        return;
    };
    let mut seen: Vec<(String, ParameterIn)> = Vec::new();
    parameters.retain(|parameter| match parameter {
        RefOr::T(parameter) => {
            let key = (parameter.name.clone(), parameter.parameter_in.clone());
            let first = !seen.contains(&key);
            seen.push(key);
            first
        }
        RefOr::Ref(_) => true,
    });
}

/// Every operation that is not public requires a person's login or a script's API token with
/// `scope`: the scope the server demands of it, from the same rule
/// ([`token::required_scope`]), so that the document cannot disagree with the server. (OpenAPI
/// 3.1 lets the requirement of an HTTP scheme name roles; these are the token's scopes.)
fn require_bearer(operation: &mut Operation, scope: token::Scope) {
    let security = operation.security.get_or_insert_with(Vec::new);
    if security.is_empty() {
        // Either one: a person's login or a script's API token.
        security.push(SecurityRequirement::new("bearer", Vec::<String>::new()));
        security.push(SecurityRequirement::new("api_token", [scope.as_str()]));
    }
}

/// Every POST and PATCH may carry an `Idempotency-Key`: a repeat replays the first response.
fn add_idempotency_key(operation: &mut Operation) {
    use utoipa::openapi::path::ParameterBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let parameter = ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .description(Some(
            "A key of your choice (a UUID) that makes the request safe to retry: a repeat with \
             the same key, method, path and body within 24 hours gets the first response again \
             (with `Idempotency-Replayed: true`) and writes nothing; the same key with another \
             request is a 422 `idempotency-key-reused`; a repeat while the first still runs a \
             409 `idempotency-key-in-use`. Keys are per caller.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(257))
                .pattern(Some("^[!-~]{1,255}$|^\"[!-~]{1,255}\"$"))
                .examples([serde_json::json!("8e03978e-40d5-43e8-bc93-6894a57f9324")]),
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(parameter));
    let responses = &mut operation.responses.responses;
    responses.entry("409".to_string()).or_insert_with(|| {
        RefOr::T(problem_response(
            "Conflict; also `idempotency-key-in-use` while the first request with the key runs",
            None,
        ))
    });
    responses.entry("422".to_string()).or_insert_with(|| {
        RefOr::T(problem_response(
            "Invalid input; also `idempotency-key-reused` for a key of another request",
            None,
        ))
    });
}

/// Every write may name the origin its history event records.
fn add_origin_header(operation: &mut Operation) {
    use utoipa::openapi::path::ParameterBuilder;
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    let parameter = ParameterBuilder::new()
        .name("X-Opsboard-Origin")
        .parameter_in(ParameterIn::Header)
        .description(Some(
            "Where the write comes from, such as `jira-sync`: recorded in the history event, so \
             that the writer can skip its own changes (`exclude_origin=` on the changes feed and \
             item histories). An API token's own origin wins.",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(64))
                .pattern(Some("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"))
                .examples([serde_json::json!("jira-sync")]),
        ))
        .build();
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .push(RefOr::T(parameter));
}

/// An operation that takes `If-Match` answers 412 when it is stale.
fn add_precondition_failed(operation: &mut Operation) {
    let takes_if_match = operation.parameters.iter().flatten().any(|parameter| {
        matches!(parameter, RefOr::T(p)
            if matches!(p.parameter_in, ParameterIn::Header) && p.name.eq_ignore_ascii_case("If-Match"))
    });
    if takes_if_match {
        operation
            .responses
            .responses
            .entry("412".to_string())
            .or_insert_with(|| RefOr::T(problem_response(PRECONDITION_FAILED, example_of("412"))));
    }
}

/// A header is a string or absent, never JSON `null`; utoipa would make an optional one
/// `["string", "null"]`, which invites fuzzers to send the text `null`.
fn headers_are_never_null(operation: &mut Operation) {
    use utoipa::openapi::schema::{Schema, SchemaType, Type};
    for parameter in operation.parameters.iter_mut().flatten() {
        if let RefOr::T(parameter) = parameter
            && matches!(parameter.parameter_in, ParameterIn::Header)
            && let Some(RefOr::T(Schema::Object(schema))) = parameter.schema.as_mut()
            && let SchemaType::Array(types) = &schema.schema_type
        {
            let types: Vec<Type> = types
                .iter()
                .filter(|t| **t != Type::Null)
                .cloned()
                .collect();
            if let [only] = types.as_slice() {
                schema.schema_type = SchemaType::Type(only.clone());
            }
        }
    }
}

fn add_standard_errors(operation: &mut Operation, has_path_parameter: bool) {
    headers_are_never_null(operation);
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    for (status, name, _) in STANDARD_RESPONSES {
        let applies = match *status {
            // Every operation refuses a query parameter it does not document.
            "400" => true,
            "401" | "403" => secured,
            "404" => has_path_parameter,
            "413" | "415" | "422" => has_body,
            _ => true,
        };
        if applies && !operation.responses.responses.contains_key(*status) {
            operation.responses.responses.insert(
                status.to_string(),
                RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))),
            );
        }
    }
}

/// The document as committed in `openapi/openapi.json`: pretty JSON ending in a newline.
pub fn to_pretty_json(api: &utoipa::openapi::OpenApi) -> String {
    let mut text = api.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}
