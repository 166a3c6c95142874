//! HTTP handlers of the catalogue: online services and their RACI templates, organizations, and
//! the imports of services and organizations.

use actix_web::{HttpMessage, HttpRequest, HttpResponse, delete, get, patch, post, put, web};

use crate::catalog::import::{self, ImportFormat, ImportReport};
use crate::catalog::organizations::{
    NewOrganization, Organization, OrganizationChanges, OrganizationFilter,
};
use crate::catalog::raci::{self, PersonRaci, RaciInput, RaciTemplate};
use crate::catalog::services::{
    OrganizationIndex, Service, ServiceChanges, ServiceFilter, ServiceInput,
};
use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::common::version::Precondition;
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::params::{OrganizationPath, ServiceKeyPath, UserIdPath};
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, ok_with_etag};

/// List online services.
///
/// Filter by lifecycle, kind, operator, responsible organization, tag, free text (`q` searches
/// key, name and LeiKa keys, regardless of case) and `updated_since`; sort by `key`, `name` or
/// `updated_at` (prefix `-` to reverse). Viewer and up.
#[utoipa::path(
    tag = "services",
    params(ServiceFilter),
    responses((status = 200, description = "One page of services", body = Page<Service>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/services")]
pub async fn list_services(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<ServiceFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = filter.0;
    let page = db.run(move |conn| Service::list(conn, &filter)).await?;
    Ok(page.respond(&req))
}

/// Create an online service.
///
/// Managers and admins. `operator` and `responsible` name organizations by short name.
#[utoipa::path(
    tag = "services",
    request_body = ServiceInput,
    responses(
        (status = 201, description = "The new service", body = Service,
         headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The key is taken", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/services")]
pub async fn create_service(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<ServiceInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let service = db
        .transaction(move |conn| {
            let orgs = OrganizationIndex::load(conn)?;
            let resolved = body.0.validate(&orgs).map_err(ApiError::Validation)?;
            Service::upsert(conn, &resolved, &orgs, &actor, true)?;
            Service::find(conn, &resolved_key(&body.0))
        })
        .await?;
    Ok(created(
        &service,
        &format!("/api/v1/services/{}", service.key),
        service.version,
    ))
}

fn resolved_key(input: &ServiceInput) -> String {
    input.key.trim().to_string()
}

/// Get an online service.
///
/// Addressed by its key. Viewer and up. With its rollout to the municipal administrations in
/// short (`rollout`: entries per status, the live share, whether it is live everywhere, its
/// waves).
#[utoipa::path(
    tag = "services",
    params(ServiceKeyPath),
    responses((status = 200, description = "The service", body = crate::catalog::rollout_view::ServicePage,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/services/{key}")]
pub async fn get_service(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let page = db
        .run(move |conn| {
            let service = Service::find(conn, &key)?;
            let rollout = crate::catalog::rollout_view::service_rollout(conn, service.id)?;
            Ok(crate::catalog::rollout_view::ServicePage { service, rollout })
        })
        .await?;
    Ok(ok_with_etag(&page, page.service.version))
}

/// Change an online service.
///
/// Managers and admins. Only the fields present change; `null` clears an optional field. The
/// key cannot change. Retire a service (`"lifecycle": "retired"`) rather than deleting it.
/// Honours `If-Match`.
#[utoipa::path(
    tag = "services",
    params(ServiceKeyPath, IfMatchHeader),
    request_body = ServiceChanges,
    responses(
        (status = 200, description = "The changed service", body = Service,
         headers(("ETag" = String, description = "Its new version"))),
    )
)]
#[patch("/services/{key}")]
pub async fn update_service(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<ServiceChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let service = db
        .transaction(move |conn| Service::update(conn, &key, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&service, service.version))
}

/// Delete an online service.
///
/// Managers and admins. Removes the service and its RACI template; its history stays. A
/// service that items refer to (deleted ones included), that an incident lists among its
/// affected services, or that has SLA policies of its own cannot be deleted: the 409 names
/// what still refers to it. Retire it instead, or delete its policies first.
#[utoipa::path(
    tag = "services",
    params(ServiceKeyPath, IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Items, incidents (as affected service) or SLA policies refer to the service", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/services/{key}")]
pub async fn delete_service(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    db.transaction(move |conn| Service::delete(conn, &key, &actor, if_match))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Get a service's RACI template.
///
/// Who is accountable (exactly one person), responsible, consulted and informed for the
/// service's items. Its `ETag` is the template's own version.
#[utoipa::path(
    tag = "services",
    params(ServiceKeyPath),
    responses((status = 200, description = "The RACI template", body = RaciTemplate,
        headers(("ETag" = String, description = "The template's version"))))
)]
#[get("/services/{key}/raci")]
pub async fn get_service_raci(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let template = db.run(move |conn| raci::template(conn, &key)).await?;
    Ok(ok_with_etag(&template, template.version))
}

/// Replace a service's RACI template.
///
/// Managers and admins. The whole set is replaced in one transaction. Exactly one accountable
/// person is required whenever any role is set; every person must be an active user. Send the
/// template's `ETag` as `If-Match`: of two concurrent changes one wins, the other gets 412.
#[utoipa::path(
    tag = "services",
    params(ServiceKeyPath, IfMatchHeader),
    request_body = RaciInput,
    responses(
        (status = 200, description = "The new template", body = RaciTemplate,
         headers(("ETag" = String, description = "The template's new version"))),
    )
)]
#[put("/services/{key}/raci")]
pub async fn put_service_raci(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<RaciInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let template = db
        .transaction(move |conn| raci::replace(conn, &key, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&template, template.version))
}

/// A person's RACI roles.
///
/// The services where the user is accountable, responsible, consulted or informed, so that a
/// person's load is visible. Viewer and up, or the person themself.
#[utoipa::path(
    tag = "users",
    params(UserIdPath),
    responses((status = 200, description = "The person's services by role", body = PersonRaci))
)]
#[get("/users/{id}/raci")]
pub async fn get_user_raci(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if caller.id() != id {
        caller.require(Role::Viewer)?;
    }
    let roles = db.run(move |conn| raci::of_person(conn, id)).await?;
    Ok(HttpResponse::Ok().json(roles))
}

/// Import online services.
///
/// Managers and admins. Send a CSV file (`Content-Type: text/csv`; header row with the columns
/// `key;name;description;lifecycle;kind;maturity_level;ozg_id;leika_keys;topic;operator;responsible;url;go_live_date;tags`,
/// `;` or `,` separated, UTF-8 with or without BOM) or a JSON array of services
/// (`application/json`, the same fields as `POST /api/v1/services`). Idempotent by key:
/// importing the same file twice reports every row `unchanged` the second time. All-or-nothing:
/// if any row is invalid nothing is written and the 422 problem lists every bad row as
/// `line N: column` (a column named twice in the header is `line 1: <column>`). Cells are
/// stored as given, formulas included; CSV that opsboard writes neutralizes them.
#[utoipa::path(
    tag = "services",
    request_body(
        content(
            (String = "text/csv", example = "key;name;kind;lifecycle;operator;leika_keys\nwohngeld;Wohngeld;own;productive;DVZ;99107001000000|99107002000000\n"),
            (import::ServiceImport = "application/json"),
        ),
        description = "The services to create or update"
    ),
    responses(
        (status = 200, description = "What the import did", body = ImportReport),
    )
)]
#[post("/services/import")]
pub async fn import_services(
    db: web::Data<Db>,
    caller: CurrentUser,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let format = ImportFormat::from_content_type(req.content_type())?;
    let parsed = import::parse(format, &body);
    let actor = caller.actor.clone();
    let report = db
        .transaction(move |conn| {
            import::apply(conn, &parsed, &actor, &mut |_| {}).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// Import organizations.
///
/// Managers and admins. Send a CSV file (`Content-Type: text/csv`; header row with the columns
/// `short_name;name;kind;contact_email`, `;` or `,` separated, UTF-8 with or without BOM) or a
/// JSON array of organizations (`application/json`, the same fields as
/// `POST /api/v1/organizations`). Idempotent by short name (regardless of case): importing the
/// same file twice reports every row `unchanged` the second time; a row is the whole
/// organization, so an empty `contact_email` removes the stored one. All-or-nothing: if any
/// row is invalid nothing is written and the 422 problem lists every bad row as
/// `line N: column`. Import the organizations before the services that name them.
#[utoipa::path(
    tag = "organizations",
    request_body(
        content(
            (String = "text/csv", example = "short_name;name;kind;contact_email\nLKT;Landkreistag Mecklenburg-Vorpommern;municipal_association;geschaeftsstelle@lkt.example.org\n"),
            (import::organizations::OrganizationImport = "application/json"),
        ),
        description = "The organizations to create or update"
    ),
    responses(
        (status = 200, description = "What the import did", body = ImportReport),
    )
)]
#[post("/organizations/import")]
pub async fn import_organizations(
    db: web::Data<Db>,
    caller: CurrentUser,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let format = ImportFormat::from_content_type(req.content_type())?;
    let parsed = import::organizations::parse(format, &body);
    let actor = caller.actor.clone();
    let report = db
        .transaction(move |conn| {
            import::organizations::apply(conn, &parsed, &actor, &mut |_| {}).map_err(ApiError::from)
        })
        .await?;
    Ok(HttpResponse::Ok().json(report))
}

/// List organizations.
///
/// In id order, one page at a time. Every team member (viewer and up) may read them.
#[utoipa::path(
    tag = "organizations",
    params(OrganizationFilter),
    responses((status = 200, description = "One page of organizations", body = Page<Organization>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/organizations")]
pub async fn list_organizations(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<OrganizationFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = filter.0;
    let page = db
        .run(move |conn| Organization::list(conn, &filter))
        .await?;
    Ok(page.respond(&req))
}

/// Create an organization.
///
/// Managers and admins. The short name is unique regardless of case and cannot change later.
#[utoipa::path(
    tag = "organizations",
    request_body = NewOrganization,
    responses(
        (status = 201, description = "The new organization", body = Organization,
         headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The short name is taken", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/organizations")]
pub async fn create_organization(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<NewOrganization>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let org = db
        .transaction(move |conn| Organization::create(conn, body.0.clone(), &actor))
        .await?;
    Ok(created(
        &org,
        &format!("/api/v1/organizations/{}", org.short_name),
        org.version,
    ))
}

/// Get an organization.
///
/// Addressed by its short name, in any case (`dvz` finds `DVZ`). Viewer and up. A municipal
/// administration's page lists the online services live there and on their way
/// (`rollout`).
#[utoipa::path(
    tag = "organizations",
    params(OrganizationPath),
    responses((status = 200, description = "The organization", body = crate::catalog::rollout_view::OrganizationPage,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/organizations/{short_name}")]
pub async fn get_organization(
    db: web::Data<Db>,
    caller: CurrentUser,
    short_name: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let page = db
        .run(move |conn| {
            let organization = Organization::find(conn, &short_name)?;
            let rollout =
                crate::catalog::rollout_view::organization_rollout(conn, organization.id)?;
            Ok(crate::catalog::rollout_view::OrganizationPage {
                organization,
                rollout,
            })
        })
        .await?;
    Ok(ok_with_etag(&page, page.organization.version))
}

/// Change an organization.
///
/// Managers and admins; only the fields present change. Honours `If-Match`.
#[utoipa::path(
    tag = "organizations",
    params(OrganizationPath, IfMatchHeader),
    request_body = OrganizationChanges,
    responses(
        (status = 200, description = "The changed organization", body = Organization,
         headers(("ETag" = String, description = "Its new version"))),
    )
)]
#[patch("/organizations/{short_name}")]
pub async fn update_organization(
    db: web::Data<Db>,
    caller: CurrentUser,
    short_name: web::Path<String>,
    if_match: Precondition,
    body: Json<OrganizationChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let org = db
        .transaction(move |conn| Organization::update(conn, &short_name, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&org, org.version))
}

/// Delete an organization.
///
/// Managers and admins, only while nothing refers to it: no service (as operator or
/// responsible), no user, no demand (as requesting organization) and no incident (as
/// reporting organization), deleted items included. Otherwise a 409 names what still does.
#[utoipa::path(
    tag = "organizations",
    params(OrganizationPath, IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Services, users, demands or incidents still refer to it", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[delete("/organizations/{short_name}")]
pub async fn delete_organization(
    db: web::Data<Db>,
    caller: CurrentUser,
    short_name: web::Path<String>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    db.transaction(move |conn| Organization::delete(conn, &short_name, &actor, if_match))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
