//! HTTP handlers for `/api/v1/items` and its comments, links and history: each extracts the
//! request, checks the caller's role and calls one function of the items model.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};

use crate::catalog::raci::RaciInput;
use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::history::{Event, HistoryParams};
use crate::common::pagination::{Page, PageParams};
use crate::common::version::Precondition;
use crate::items::activity;
use crate::items::cache::ItemCache;
use crate::items::comments::{self, Comment, CommentInput};
use crate::items::history;
use crate::items::links::{self, Link, NewLink};
use crate::items::types::{Item, ItemChanges, ItemFilter, ItemRaci, MoveRequest, NewItem};
use crate::web::auth::{Credential, CurrentUser};
use crate::web::extract::{Json, Query};
use crate::web::params::{CommentIdPath, ItemKeyPath};
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, etag, ok_json_with_etag, ok_with_etag};

/// List items.
///
/// Oldest first unless `sort` says otherwise. Filter by board, service, type, column, person (`accountable=`,
/// `responsible=`, `involved=` for any role: "my items" is one call), label, text and
/// `updated_since`; `include_deleted=true` adds the tombstones of deleted items for sync
/// scripts. Viewer and up; a requester sees the demands of their own organization only.
///
/// With `Accept: text/csv` every item the filters select comes as one CSV download (no
/// paging; at most 100,000 rows), columns `key, type, title, board, column, category,
/// service, priority, labels, accountable, responsible, due_date, created_at, updated_at,
/// started_at, done_at, severity` (labels and responsible people `|`-separated, people by
/// e-mail). `dialect=excel-de` (default): UTF-8 BOM, `;`, CRLF, dates `dd.mm.yyyy`, times
/// local `dd.mm.yyyy HH:MM`, decimal comma; `dialect=rfc4180`: `,`, CRLF, ISO 8601 dates and
/// UTC times. A cell beginning with `=`, `+`, `-`, `@`, tab or CR gets a leading `'`.
#[utoipa::path(
    tag = "items",
    params(ItemFilter),
    responses((status = 200, description = "One page of items (or, with `Accept: text/csv`, all of them as CSV)",
        content((Page<Item> = "application/json"), (String = "text/csv")),
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/items")]
pub async fn list_items(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<ItemFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let filter = filter.0;
    let (visibility, me) = (caller.visibility(), caller.id());
    if crate::web::respond::accepts(&req, "text/csv") {
        let dialect = filter.dialect.unwrap_or_default();
        let body = db
            .run(move |conn| {
                crate::items::export::items_csv(conn, &filter, visibility, me, dialect)
            })
            .await?;
        return Ok(crate::web::respond::csv_download(body, "items.csv"));
    }
    let page = db
        .run(move |conn| Item::list(conn, &filter, visibility, me))
        .await?;
    Ok(page.respond(&req))
}

/// Create an item.
///
/// Members and up. The item gets the next key of its board (`OPS-43`) and goes to the bottom
/// of the board's first column. When `raci` names no accountable person, the service's RACI
/// template is copied; when neither has one, the board lead is accountable, and without a lead
/// the item is refused (422). A demand's default is the board lead first (the demand manager,
/// with the template's accountable person as responsible). A first column at its
/// WIP limit refuses new items (409 `wip-limit-exceeded`); managers may pass `override_wip`.
#[utoipa::path(
    tag = "items",
    request_body = NewItem,
    responses(
        (status = 201, description = "The new item", body = Item,
            headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "The board's first column is at its WIP limit (`wip-limit-exceeded`)", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/items")]
pub async fn create_item(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<NewItem>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let manages = caller.role().at_least(Role::Manager);
    let item = db
        .transaction(move |conn| Item::create(conn, &body.0, &actor, manages))
        .await?;
    Ok(created(
        &item,
        &format!("/api/v1/items/{}", item.key),
        item.version,
    ))
}

/// Get an item.
///
/// By key (`OPS-42`, any case) or numeric id, like Jira's `issueIdOrKey`. A deleted item is 404.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath),
    responses((status = 200, description = "The item", body = Item, headers(("ETag" = String, description = "Its version"))))
)]
#[get("/items/{key}")]
pub async fn get_item(
    db: web::Data<Db>,
    cache: web::Data<ItemCache>,
    credential: Credential,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = key.into_inner();
    // The hottest GET. A caller and an item both kept since the last commit cost no trip to
    // storage; otherwise the caller is checked in the same trip as the read.
    if let Some(caller) = credential.known() {
        caller.require(Role::Requester)?;
        if let Some(kept) = cache.get(&key, caller.visibility()) {
            return Ok(ok_json_with_etag(kept.body, etag(kept.version)));
        }
    }
    let generation = cache.generation();
    let wanted = key.clone();
    let (item, clocks, visibility) = credential
        .lookup(&db, move |conn, caller| {
            caller.require(Role::Requester)?;
            let visibility = caller.visibility();
            let (item, clocks) = Item::find_visible_clocked(conn, &wanted, visibility)?;
            Ok((item, clocks, visibility))
        })
        .await?;
    let kept = cache
        .keep(&key, visibility, generation, item, &clocks)
        .map_err(|e| ApiError::internal(format!("item {key} not written out: {e}")))?;
    Ok(ok_json_with_etag(kept.body, etag(kept.version)))
}

/// Change an item.
///
/// Members and up; only the fields present change. `key`, `created_*`, `version` and the
/// timestamps are not writable (422 naming the field). Honours `If-Match`.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, IfMatchHeader),
    request_body = ItemChanges,
    responses(
        (status = 200, description = "The changed item", body = Item, headers(("ETag" = String, description = "Its new version"))),
    )
)]
#[patch("/items/{key}")]
pub async fn update_item(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<ItemChanges>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let item = db
        .transaction(move |conn| Item::update(conn, &key, &body.0, &actor, if_match))
        .await?;
    Ok(ok_with_etag(&item, item.version))
}

/// Delete an item.
///
/// Members and up. A soft delete: the item leaves lists and views and `GET` answers 404, while
/// `GET /items?include_deleted=true&updated_since=…` returns its tombstone. Honours `If-Match`.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
    )
)]
#[delete("/items/{key}")]
pub async fn delete_item(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    db.transaction(move |conn| Item::delete(conn, &key, &actor, if_match))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Get an item's RACI roles.
///
/// Who is responsible, accountable (exactly one person), consulted and informed. The `ETag` is
/// the item's version, for `If-Match` on the PUT. Viewer and up.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath),
    responses((status = 200, description = "The roles", body = ItemRaci, headers(("ETag" = String, description = "The item's version"))))
)]
#[get("/items/{key}/raci")]
pub async fn get_item_raci(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let item = db.run(move |conn| Item::find(conn, &key)).await?;
    Ok(ok_with_etag(&item.raci, item.version))
}

/// Replace an item's RACI roles.
///
/// Members and up. Exactly one accountable person, always; every person an active user. The
/// whole set is replaced in one transaction. Who is accountable changes only by the present
/// accountable person, a manager or an admin (403 otherwise); anyone who may write may change
/// the other roles. Honours `If-Match` (the item's version).
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, IfMatchHeader),
    request_body = RaciInput,
    responses(
        (status = 200, description = "The new roles", body = ItemRaci, headers(("ETag" = String, description = "The item's new version"))),
    )
)]
#[put("/items/{key}/raci")]
pub async fn put_item_raci(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<RaciInput>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let manages = caller.role().at_least(Role::Manager);
    let item = db
        .transaction(move |conn| Item::replace_raci(conn, &key, &body.0, &actor, manages, if_match))
        .await?;
    Ok(ok_with_etag(&item.raci, item.version))
}

/// Move an item.
///
/// Members and up. Places the item in `column` (an id on its board), just `before` or `after`
/// a named item of that column, or at the bottom. A move writes one row; when ranks run out of
/// room the column is re-ranked in the same transaction. Moving into a column at its WIP limit
/// is refused with 409 `wip-limit-exceeded`; managers may pass `override_wip: true`, which the
/// history records. `started_at` is set on the first entry into an `in_progress` column,
/// `done_at` on entry into a `done` column and cleared when the item leaves it.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, IfMatchHeader),
    request_body = MoveRequest,
    responses(
        (status = 200, description = "The moved item", body = Item, headers(("ETag" = String, description = "Its new version"))),
        (status = 409, description = "The column is at its WIP limit (`wip-limit-exceeded`)", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/items/{key}/move")]
pub async fn move_item(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    if_match: Precondition,
    body: Json<MoveRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let may_override = caller.role().at_least(Role::Manager);
    let item = db
        .transaction(move |conn| Item::move_to(conn, &key, &body.0, &actor, may_override, if_match))
        .await?;
    Ok(ok_with_etag(&item, item.version))
}

/// An item's history.
///
/// Every change, oldest first: who, when, what (field, old and new value; moves with their
/// columns; RACI changes), and the origin of writes made by sync scripts (`exclude_origin=`
/// leaves those out). Written in the same transaction as the change. Viewer and up; a
/// requester reads the history of their own organization's demands only, and sees the key
/// of a linked item only when that item is one of their organization's demands too.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, HistoryParams),
    responses((status = 200, description = "One page of events", body = Page<Event>))
)]
#[get("/items/{key}/history")]
pub async fn item_history(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    params: Query<HistoryParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let params = params.0;
    let visibility = caller.visibility();
    let page = db
        .run(move |conn| history::page(conn, &key, visibility, &params))
        .await?;
    Ok(page.respond(&req))
}

/// The activity stream.
///
/// What happened to items across boards, newest first: each entry is a history event (as
/// `GET /items/{key}/history` shows it, with `actor_name` and the `names` of the columns and
/// people it names) and the item it is about (key, title, type, board). "What changed since
/// yesterday on my boards" is `?board=OPS,DEM&since=P1D`; "what did I do" is `?person=me`.
/// Viewer and up; a requester sees the events of their own organization's demands only.
#[utoipa::path(
    tag = "items",
    params(activity::ActivityFilter),
    responses((status = 200, description = "One page of activity, newest first",
        body = Page<activity::Activity>,
        headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))))
)]
#[get("/activity")]
pub async fn list_activity(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<activity::ActivityFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let (filter, visibility, me) = (filter.0, caller.visibility(), caller.id());
    let page = db
        .run(move |conn| activity::page(conn, &filter, visibility, me))
        .await?;
    Ok(page.respond(&req))
}

/// List an item's comments.
///
/// Oldest first; deleted comments stay as tombstones (`body: null`). Viewer and up; a
/// requester reads the comments on their own organization's demands.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, PageParams),
    responses((status = 200, description = "One page of comments", body = Page<Comment>))
)]
#[get("/items/{key}/comments")]
pub async fn list_comments(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    paging: Query<PageParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let paging = paging.0;
    let visibility = caller.visibility();
    let page = db
        .run(move |conn| comments::list(conn, &key, visibility, &paging))
        .await?;
    Ok(page.respond(&req))
}

/// Comment on an item.
///
/// Members and up; a requester comments on their own organization's demands. On an incident,
/// the team's first comment is the first response when none is recorded.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath),
    request_body = CommentInput,
    responses((status = 201, description = "The new comment", body = Comment,
        headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))))
)]
#[post("/items/{key}/comments")]
pub async fn add_comment(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    body: Json<CommentInput>,
) -> Result<HttpResponse, ApiError> {
    if caller.role() == Role::Viewer {
        return Err(ApiError::Forbidden(
            "Viewers read; members and up comment, requesters on their own demands.".into(),
        ));
    }
    let actor = caller.actor.clone();
    let visibility = caller.visibility();
    let (item_key, comment) = db
        .transaction(move |conn| comments::add(conn, &key, &body.0, &actor, visibility))
        .await?;
    Ok(created(
        &comment,
        &format!("/api/v1/items/{item_key}/comments/{}", comment.id),
        comment.version,
    ))
}

/// Edit a comment.
///
/// The author only. The comment is marked `edited`. Honours `If-Match`.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, CommentIdPath, IfMatchHeader),
    request_body = CommentInput,
    responses(
        (status = 200, description = "The edited comment", body = Comment, headers(("ETag" = String, description = "Its new version"))),
    )
)]
#[patch("/items/{key}/comments/{id}")]
pub async fn edit_comment(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, i64)>,
    if_match: Precondition,
    body: Json<CommentInput>,
) -> Result<HttpResponse, ApiError> {
    // Authors only; a requester authors comments on their organization's demands.
    caller.require(Role::Requester)?;
    let visibility = caller.visibility();
    let actor = caller.actor.clone();
    let (key, id) = path.into_inner();
    let comment = db
        .transaction(move |conn| {
            comments::edit(conn, &key, id, &body.0, &actor, visibility, if_match)
        })
        .await?;
    Ok(ok_with_etag(&comment, comment.version))
}

/// Delete a comment.
///
/// The author or an admin. A tombstone stays in the thread (`body: null`, `deleted_at` set).
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, CommentIdPath, IfMatchHeader),
    responses(
        (status = 204, description = "Deleted"),
    )
)]
#[delete("/items/{key}/comments/{id}")]
pub async fn delete_comment(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, i64)>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    // Authors only; a requester authors comments on their organization's demands.
    caller.require(Role::Requester)?;
    let visibility = caller.visibility();
    let actor = caller.actor.clone();
    let is_admin = caller.role() == Role::Admin;
    let (key, id) = path.into_inner();
    db.transaction(move |conn| {
        comments::delete(conn, &key, id, &actor, visibility, is_admin, if_match)
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// List an item's links.
///
/// Each link from this item's side: `blocks` / `blocked_by`, `relates`, `duplicates` /
/// `duplicated_by`. Links to deleted items are left out. Viewer and up.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath),
    responses((status = 200, description = "The links", body = Vec<Link>))
)]
#[get("/items/{key}/links")]
pub async fn list_links(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let links = db.run(move |conn| links::list(conn, &key)).await?;
    Ok(HttpResponse::Ok().json(links))
}

/// Link two items.
///
/// Members and up. Stored once, shown from both ends; a link that exists already (from either
/// end) is a 409. Both items' histories record it.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath),
    request_body = NewLink,
    responses(
        (status = 201, description = "The new link, from this item's side", body = Link),
        (status = 409, description = "The items are linked this way already", body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/items/{key}/links")]
pub async fn add_link(
    db: web::Data<Db>,
    caller: CurrentUser,
    key: web::Path<String>,
    body: Json<NewLink>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let link = db
        .transaction(move |conn| links::add(conn, &key, &body.0, &actor))
        .await?;
    Ok(HttpResponse::Created().json(link))
}

/// Remove a link.
///
/// Members and up; from either end. Both items' histories record it.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, ("id" = i64, Path, description = "The link's id")),
    responses((status = 204, description = "Removed"))
)]
#[delete("/items/{key}/links/{id}")]
pub async fn delete_link(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let actor = caller.actor.clone();
    let (key, id) = path.into_inner();
    db.transaction(move |conn| links::delete(conn, &key, id, &actor))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
