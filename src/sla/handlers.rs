//! HTTP handlers for `/api/v1/sla-policies`: each extracts the request, checks the caller's
//! role and calls the policy functions of [`crate::sla::policies`].

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::history::Event;
use crate::common::pagination::{Page, PageParams};
use crate::common::version::Precondition;
use crate::sla::policies::{NewSlaPolicy, SlaPolicy, SlaPolicyChanges, SlaPolicyFilter};
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::params::SlaPolicyIdPath;
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, ok_with_etag};

/// List SLA policies.
///
/// Ordered by severity, then service key, the policy for every service (`service: null`) first
/// within a severity. Filter by `severity` and `service` (key; only that service's own
/// policies). Viewer and up.
#[utoipa::path(
    tag = "sla",
    params(SlaPolicyFilter),
    responses((status = 200, description = "One page of SLA policies", body = Page<SlaPolicy>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/sla-policies")]
pub async fn list_sla_policies(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<SlaPolicyFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = filter.0;
    let page = db.run(move |conn| SlaPolicy::list(conn, &filter)).await?;
    Ok(page.respond(&req))
}

/// Create an SLA policy.
///
/// Managers and admins. One policy per severity for every service (`service` omitted or
/// `null`), and one per severity and service; a second one is a 409. Severity and service
/// cannot change later.
#[utoipa::path(
    tag = "sla",
    request_body = NewSlaPolicy,
    responses(
        (status = 201, description = "The new policy", body = SlaPolicy,
         headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The severity already has a policy for that service (or for every service)", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/sla-policies")]
pub async fn create_sla_policy(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<NewSlaPolicy>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let form = body.0;
    let policy = db
        .transaction(move |conn| SlaPolicy::create(conn, &form, &actor))
        .await?;
    Ok(created(
        &policy,
        &format!("/api/v1/sla-policies/{}", policy.id),
        policy.version,
    ))
}

/// Get an SLA policy.
///
/// Viewer and up.
#[utoipa::path(
    tag = "sla",
    params(SlaPolicyIdPath),
    responses((status = 200, description = "The policy", body = SlaPolicy,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/sla-policies/{id}")]
pub async fn get_sla_policy(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let id = id.into_inner();
    let policy = db.run(move |conn| SlaPolicy::find(conn, id)).await?;
    Ok(ok_with_etag(&policy, policy.version))
}

/// Change an SLA policy.
///
/// Managers and admins; only the fields present change, and the resolution target must stay at
/// least the response target. Severity and service cannot change (422 naming the field):
/// create a new policy and delete this one instead. Honours `If-Match`.
#[utoipa::path(
    tag = "sla",
    params(SlaPolicyIdPath, IfMatchHeader),
    request_body = SlaPolicyChanges,
    responses(
        (status = 200, description = "The changed policy", body = SlaPolicy,
         headers(("ETag" = String, description = "Its new version"))),
    )
)]
#[patch("/sla-policies/{id}")]
pub async fn update_sla_policy(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
    body: Json<SlaPolicyChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let id = id.into_inner();
    let changes = body.0;
    let policy = db
        .transaction(move |conn| SlaPolicy::update(conn, id, &changes, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&policy, policy.version))
}

/// Delete an SLA policy.
///
/// Managers and admins. Incidents of its severity and service then fall back to the policy for
/// every service, if there is one. Its history stays readable. Honours `If-Match`.
#[utoipa::path(
    tag = "sla",
    params(SlaPolicyIdPath, IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
    )
)]
#[delete("/sla-policies/{id}")]
pub async fn delete_sla_policy(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Manager)?;
    let actor = caller.actor.clone();
    let id = id.into_inner();
    db.transaction(move |conn| SlaPolicy::delete(conn, id, &actor, if_match))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// An SLA policy's history.
///
/// Every change, oldest first: who, when, what (`created` with the targets, `updated` with each
/// field's old and new value, `deleted`). Still readable after the policy was deleted. Viewer
/// and up.
#[utoipa::path(
    tag = "sla",
    params(SlaPolicyIdPath, PageParams),
    responses((status = 200, description = "One page of events", body = Page<Event>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/sla-policies/{id}/history")]
pub async fn sla_policy_history(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    paging: Query<PageParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let id = id.into_inner();
    let paging = paging.0;
    let page = db
        .run(move |conn| SlaPolicy::history(conn, id, &paging))
        .await?;
    Ok(page.respond(&req))
}
