//! HTTP handlers for items and comments addressed by their reference in another system
//! (`/api/v1/items/by-ref/{system}/{key}`, `/api/v1/items/{key}/comments/by-ref/{system}/{key}`).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, put, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::version::Precondition;
use crate::items::by_ref::{self, CommentUpsert, ItemUpsert, Upserted};
use crate::items::comments::Comment;
use crate::items::types::Item;
use crate::web::auth::CurrentUser;
use crate::web::extract::Json;
use crate::web::params::ItemKeyPath;
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::{created, ok_with_etag};

/// `{system}/{key}` of a reference.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReferencePath {
    /// The other system: lower-case letters, digits, `-`, `_` (`jira`, `openproject`)
    pub system: String,
    /// The stable id there (Jira's numeric issue or comment id, OpenProject's work-package id)
    pub key: String,
}

/// `{system}/{ref_key}` of a comment's reference.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CommentReferencePath {
    /// The other system: lower-case letters, digits, `-`, `_` (`jira`, `openproject`)
    pub system: String,
    /// The comment's stable id there
    pub ref_key: String,
}

/// `If-None-Match` of a create-only PUT.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatchHeader {
    /// `*`: create only; 412 when an item has the reference already
    #[param(rename = "If-None-Match", pattern = r"^\*$")]
    pub if_none_match: Option<String>,
}

/// Whether the request says `If-None-Match: *`; any other value is a 400 naming the header.
fn create_only(req: &HttpRequest) -> Result<bool, ApiError> {
    match req.headers().get(header::IF_NONE_MATCH) {
        None => Ok(false),
        Some(value) if value.as_bytes().trim_ascii() == b"*" => Ok(true),
        Some(_) => Err(ApiError::bad_field(
            "If-None-Match",
            "only `*` is understood here (create only)",
        )),
    }
}

/// Create or update an item by its reference.
///
/// The call a sync script makes for every item it mirrors from JIRA or OpenProject: creates the
/// item with the reference `{system}/{key}` (201, `Location`, `ETag`), or updates the item that
/// has it (200). `key` is the other system's *stable* id (Jira's numeric issue id, which
/// survives a move between projects); `alias` its human key (`OZG-123`). Two concurrent PUTs of
/// one reference make one item: the second finds the first's. On an update the fields the body
/// names are set, the others left alone; `board` and `type` must match the item's (422
/// otherwise). The same values again change nothing (200, no event, the same version), so a
/// script that writes back what it read makes no echo. With `source_updated_at` (the remote's
/// own `updated` time) an older state than the one applied last is refused with 409
/// `stale-source` and changes nothing: a late or retried webhook cannot roll the item back. A
/// reference of a deleted item is 409 `item-deleted`. Honours `If-Match` (412 when stale, or
/// when no item has the reference) and `If-None-Match: *` (create only: 412 when one has).
/// Members and up.
#[utoipa::path(
    tag = "items",
    params(ReferencePath, IfMatchHeader, IfNoneMatchHeader),
    request_body = ItemUpsert,
    responses(
        (status = 200, description = "The item that has the reference, updated (or unchanged)", body = Item,
            headers(("ETag" = String, description = "Its version"))),
        (status = 201, description = "The new item with the reference", body = Item,
            headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "`stale-source`, `item-deleted` or `wip-limit-exceeded`",
            body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[put("/items/by-ref/{system}/{key}")]
pub async fn put_item_by_ref(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
    if_match: Precondition,
    req: HttpRequest,
    body: Json<ItemUpsert>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let create_only = create_only(&req)?;
    let (system, key) = path.into_inner();
    let actor = caller.actor.clone();
    let manages = caller.role().at_least(Role::Manager);
    let body = std::sync::Arc::new(body.0);
    let attempt = || {
        let (system, key, actor, body) = (system.clone(), key.clone(), actor.clone(), body.clone());
        db.transaction(move |conn| {
            by_ref::upsert(
                conn,
                &system,
                &key,
                &body,
                &actor,
                manages,
                if_match,
                create_only,
            )
        })
    };
    // The lock of the reference makes concurrent upserts take turns; should a write of the
    // same reference by another path (POST /items or PATCH naming it) win the race (the unique
    // index, or the reference's check in a creation that waited for the board), the first
    // attempt ends in `Taken` and the second finds that item and updates it.
    let (item, upserted) = match attempt().await {
        Err(ApiError::Taken { .. }) => attempt().await?,
        other => other?,
    };
    Ok(match upserted {
        Upserted::Created => created(&item, &format!("/api/v1/items/{}", item.key), item.version),
        Upserted::Found => ok_with_etag(&item, item.version),
    })
}

/// Get an item by its reference.
///
/// The item that has the reference `{system}/{key}`; 404 when none has it, or when its item was
/// deleted (the detail says so). Viewer and up; a requester sees their organization's demands.
#[utoipa::path(
    tag = "items",
    params(ReferencePath),
    responses((status = 200, description = "The item", body = Item,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/items/by-ref/{system}/{key}")]
pub async fn get_item_by_ref(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let (system, key) = path.into_inner();
    let visibility = caller.visibility();
    let item = db
        .run(move |conn| by_ref::find(conn, &system, &key, visibility))
        .await?;
    Ok(ok_with_etag(&item, item.version))
}

/// Delete an item by its reference.
///
/// A soft delete, as `DELETE /items/{key}`: the tombstone stays for the changes feed. 204 also
/// when the item is deleted already; 404 only for a reference no item ever had. Honours
/// `If-Match`. Members and up.
#[utoipa::path(
    tag = "items",
    params(ReferencePath, IfMatchHeader),
    responses((status = 204, description = "Deleted (or deleted already)"))
)]
#[delete("/items/by-ref/{system}/{key}")]
pub async fn delete_item_by_ref(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String)>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Member)?;
    let (system, key) = path.into_inner();
    let actor = caller.actor.clone();
    db.transaction(move |conn| by_ref::delete(conn, &system, &key, &actor, if_match))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Create or edit a comment by its reference.
///
/// The comment with the reference `{system}/{key}` (the other system's comment id) on the item:
/// created (201) or, when it exists, edited (200; its author's right, as any edit — a comment
/// mirrored by a sync user is that user's). The same text again changes nothing (200, no
/// event, the same version). `url` is left as it is when omitted. An older
/// `source_updated_at` than the one applied last is 409 `stale-source`; a deleted comment's
/// reference 409 `item-deleted`; a reference of a comment on another item 409. Honours
/// `If-Match` (412 when stale, or when no comment has the reference) and `If-None-Match: *`
/// (create only: 412 when one has). Members and up; a requester on their own organization's
/// demands.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, CommentReferencePath, IfMatchHeader, IfNoneMatchHeader),
    request_body = CommentUpsert,
    responses(
        (status = 200, description = "The comment, edited (or unchanged)", body = Comment,
            headers(("ETag" = String, description = "Its version"))),
        (status = 201, description = "The new comment", body = Comment,
            headers(("Location" = String, description = "Its URL"), ("ETag" = String, description = "Its version"))),
        (status = 409, description = "`stale-source`, `item-deleted`, or the reference is another item's",
            body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[put("/items/{key}/comments/by-ref/{system}/{ref_key}")]
pub async fn put_comment_by_ref(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String, String)>,
    if_match: Precondition,
    req: HttpRequest,
    body: Json<CommentUpsert>,
) -> Result<HttpResponse, ApiError> {
    if caller.role() == Role::Viewer {
        return Err(ApiError::Forbidden(
            "Viewers read; members and up comment, requesters on their own demands.".into(),
        ));
    }
    let create_only = create_only(&req)?;
    let (item_key, system, key) = path.into_inner();
    let actor = caller.actor.clone();
    let visibility = caller.visibility();
    let (item_key, comment, upserted) = db
        .transaction(move |conn| {
            by_ref::upsert_comment(
                conn,
                &item_key,
                &system,
                &key,
                &body.0,
                &actor,
                visibility,
                if_match,
                create_only,
            )
        })
        .await?;
    Ok(match upserted {
        Upserted::Created => created(
            &comment,
            &format!("/api/v1/items/{item_key}/comments/{}", comment.id),
            comment.version,
        ),
        Upserted::Found => ok_with_etag(&comment, comment.version),
    })
}

/// Delete a comment by its reference.
///
/// Its tombstone stays in the thread. The author or an admin. 204 also when it is deleted
/// already; 404 for a reference no comment of the item ever had. Honours `If-Match`.
#[utoipa::path(
    tag = "items",
    params(ItemKeyPath, CommentReferencePath, IfMatchHeader),
    responses((status = 204, description = "Deleted (or deleted already)"))
)]
#[delete("/items/{key}/comments/by-ref/{system}/{ref_key}")]
pub async fn delete_comment_by_ref(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(String, String, String)>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Requester)?;
    let (item_key, system, key) = path.into_inner();
    let actor = caller.actor.clone();
    let visibility = caller.visibility();
    let is_admin = caller.role() == Role::Admin;
    db.transaction(move |conn| {
        by_ref::delete_comment(
            conn, &item_key, &system, &key, &actor, visibility, is_admin, if_match,
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
