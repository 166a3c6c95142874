//! HTTP handlers for demand intake, decisions and the roadmap.

use actix_web::{HttpRequest, HttpResponse, get, post, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::common::version::Precondition;
use crate::demands::DemandSettings;
use crate::demands::model::{self, DecisionRequest, DemandIntake, RoadmapFilter, RoadmapQuarter};
use crate::items::types::{Item, ItemFilter, ItemType};
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::params::ItemKeyPath;
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, ok_with_etag};

/// Raise a demand.
///
/// For stakeholders (requesters) and the team (members and up). The demand lands on the demand
/// board (setting `demands.board`, `DEM` by default) in its first column, as a `demand` item
/// with decision `pending`; on a fresh install the first demand creates that board, with the
/// default workflow and no lead. The requesting organization is the caller's own when omitted; a
/// requester may name no other. Name the online service, or the new one wanted in
/// `proposed_service`. The board's lead, the demand manager, is accountable for it and the
/// service's RACI template adds the rest (its accountable person, the case worker, becomes
/// responsible); on a board without a lead the template's accountable person is.
#[utoipa::path(
    tag = "demands",
    request_body = DemandIntake,
    responses(
        (status = 201, description = "The new demand", body = Item,
            headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The demand board's intake column is at its WIP limit (`wip-limit-exceeded`), or `demands.board` is no board key the first demand could create the board with", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/demands")]
pub async fn raise_demand(
    db: web::Data<Db>,
    settings: web::Data<DemandSettings>,
    caller: CurrentUser,
    body: Json<DemandIntake>,
) -> Result<HttpResponse, ApiError> {
    if caller.role() == Role::Viewer {
        return Err(ApiError::Forbidden(
            "Viewers read; requesters and team members raise demands.".into(),
        ));
    }
    let board = settings.board.trim().to_uppercase();
    let item = db
        .transaction(move |conn| model::intake(conn, &body.0, &caller.actor, &board))
        .await?;
    Ok(created(
        &item,
        &format!("/api/v1/items/{}", item.key),
        item.version,
    ))
}

/// List demands.
///
/// The items of type `demand`, with every filter of `GET /items` (`decision`,
/// `requesting_organization`, `service`, …). A requester sees the demands of their own
/// organization only; the team sees all.
#[utoipa::path(
    tag = "demands",
    params(ItemFilter),
    responses((status = 200, description = "One page of demands", body = Page<Item>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/demands")]
pub async fn list_demands(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<ItemFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let mut filter = filter.0;
    if filter
        .item_type
        .as_ref()
        .is_some_and(|types| types.iter().any(|t| *t != ItemType::Demand))
    {
        return Err(ApiError::bad_field("type", "this list holds demands only"));
    }
    filter.item_type = Some(vec![ItemType::Demand]);
    let (visibility, me) = (caller.visibility(), caller.id());
    let page = db
        .run(move |conn| Item::list(conn, &filter, visibility, me))
        .await?;
    Ok(page.respond(&req))
}

/// Decide on a demand.
///
/// For the demand's accountable person, managers and admins. `rejected` and `deferred` need a
/// `reason`. Accepting a demand that still waits in the intake column (the board's first)
/// moves it to the board's next `todo` column, unless that column is at its WIP limit: then
/// the demand stays in intake, undecided, with a 409 (managers may pass `override_wip`).
/// Accepted demands appear on the roadmap under their `target_quarter`. Writes a
/// `demand_decided` event. Honours `If-Match`.
#[utoipa::path(
    tag = "demands",
    params(ItemKeyPath, IfMatchHeader),
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "The decided demand", body = Item, headers(("ETag" = String, description = "Its new version"))),
        (status = 409, description = "The item is not a demand, or accepting it would move it into a column at its WIP limit (`wip-limit-exceeded`; it stays in intake, undecided)", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/items/{key}/decision")]
pub async fn decide(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<DecisionRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let item = db
        .transaction(move |conn| model::decide(conn, &key, &body.0, &caller.actor, if_match))
        .await?;
    Ok(ok_with_etag(&item, item.version))
}

/// The roadmap.
///
/// Accepted demands by target quarter (unplanned ones last) and service, most valuable first,
/// with how far each has come. A requester sees their own organization's demands only.
#[utoipa::path(
    tag = "demands",
    params(RoadmapFilter),
    responses((status = 200, description = "The roadmap", body = Vec<RoadmapQuarter>))
)]
#[get("/demands/roadmap")]
pub async fn roadmap(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<RoadmapFilter>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let visibility = caller.visibility();
    let filter = filter.0;
    let quarters = db
        .run(move |conn| model::roadmap(conn, &filter, visibility))
        .await?;
    Ok(HttpResponse::Ok().json(quarters))
}
