//! The OpenAPI document. Paths and schemas are collected from the mounted handlers by
//! utoipa-actix-web, so the spec is the app; this module adds what is common to all of them:
//! the info block, the bearer scheme and the standard error responses.

use utoipa::OpenApi;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use crate::common::error::{FieldError, PROBLEM_CONTENT_TYPE, Problem};

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
        (name = "organizations", description = "Stakeholder bodies: ministries, agencies, operators, municipalities, vendors"),
        (name = "services", description = "The catalogue of online services and their RACI templates"),
        (name = "boards", description = "Kanban boards and their workflow columns"),
        (name = "items", description = "Demands, tasks and incidents: RACI, moves, history"),
        (name = "sla", description = "Service-level agreements: response and resolution targets of incidents per severity and service"),
        (name = "health", description = "Probes for load balancers and deploy scripts"),
    ),
    components(schemas(Problem, FieldError)),
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
        "Malformed JSON or an unparsable parameter; `errors` names it",
    ),
    (
        "401",
        "Unauthorized",
        "Missing, expired or invalid access token",
    ),
    ("403", "Forbidden", "The caller's role does not allow this"),
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

/// Completes the collected document: the bearer scheme, the shared error responses, and on
/// every operation the errors it can give.
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
    for (_, name, description) in STANDARD_RESPONSES {
        components
            .responses
            .insert(name.to_string(), RefOr::T(problem_response(description)));
    }
    for (path, item) in api.paths.paths.iter_mut() {
        let has_id = path.contains('{');
        let operations = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.patch.as_mut(),
            item.delete.as_mut(),
        ];
        for operation in operations.into_iter().flatten() {
            add_standard_errors(operation, has_id);
        }
    }
    api
}

fn problem_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_CONTENT_TYPE,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// A header is a string or absent, never JSON `null`; utoipa would make an optional one
/// `["string", "null"]`, which invites fuzzers to send the text `null`.
fn headers_are_never_null(operation: &mut Operation) {
    use utoipa::openapi::path::ParameterIn;
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
    let has_query = operation.parameters.as_ref().is_some_and(|ps| {
        ps.iter().any(|p| {
            matches!(p, RefOr::T(p) if matches!(p.parameter_in, utoipa::openapi::path::ParameterIn::Query))
        })
    });
    for (status, name, _) in STANDARD_RESPONSES {
        let applies = match *status {
            "400" => has_body || has_query || has_path_parameter,
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
