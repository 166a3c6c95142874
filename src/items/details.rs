//! Comments on items and links between items, with their handlers. Each change writes its
//! event into the item's history in the same transaction.

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::common::actor::{Role, Visibility};
use crate::common::db::Db;
use crate::common::db::schema::{item_comments, item_links, items, users};
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::text::{check_not_blank, check_text};
use crate::common::version::Precondition;
use crate::items::model::Item;
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::params::{CommentIdPath, ItemKeyPath};
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, ok_with_etag};

/// A comment on an item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Comment {
    /// Numeric id.
    pub id: i64,
    /// The author's user id.
    pub author_id: i64,
    /// The author's display name.
    pub author_name: String,
    /// The text (Markdown); `null` once deleted.
    pub body: Option<String>,
    /// Whether the author changed it after posting.
    pub edited: bool,
    /// When it was posted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Set when it was deleted (the tombstone stays in the thread).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// The body of a new or changed comment.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Tritt nur bei Dateien über 10 MB auf."}))]
pub struct CommentInput {
    /// The text (Markdown), 1–20,000 characters.
    #[schema(
        min_length = 1,
        max_length = 20000,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub body: String,
}

type CommentRow = (
    i64,
    i64,
    String,
    String,
    bool,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
    i64,
);

fn to_comment(row: CommentRow) -> Comment {
    let (id, author_id, author_name, body, edited, created_at, updated_at, deleted_at, version) =
        row;
    Comment {
        id,
        author_id,
        author_name,
        body: deleted_at.is_none().then_some(body),
        edited,
        created_at: created_at.and_utc(),
        updated_at: updated_at.and_utc(),
        deleted_at: deleted_at.map(|t| t.and_utc()),
        version,
    }
}

fn check_body(body: &str) -> Result<String, ApiError> {
    let mut errors = Vec::new();
    check_not_blank(&mut errors, "body", body);
    check_text(&mut errors, "body", body, 20_000);
    if errors.is_empty() {
        Ok(body.to_string())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn comment(conn: &mut DbConnection, item_id: i64, id: i64) -> Result<Comment, ApiError> {
    item_comments::table
        .inner_join(users::table)
        .filter(
            item_comments::id
                .eq(id)
                .and(item_comments::item_id.eq(item_id)),
        )
        .select((
            item_comments::id,
            item_comments::author_id,
            users::display_name,
            item_comments::body,
            item_comments::edited,
            item_comments::created_at,
            item_comments::updated_at,
            item_comments::deleted_at,
            item_comments::version,
        ))
        .first::<CommentRow>(conn)
        .optional()?
        .map(to_comment)
        .ok_or_else(|| ApiError::NotFound(format!("There is no comment {id} on this item.")))
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
        .run(move |conn| {
            let item = Item::row_visible(conn, &key, visibility)?;
            let limit = paging.limit()?;
            let mut query = item_comments::table
                .inner_join(users::table)
                .filter(item_comments::item_id.eq(item.id))
                .order(item_comments::id.asc())
                .select((
                    item_comments::id,
                    item_comments::author_id,
                    users::display_name,
                    item_comments::body,
                    item_comments::edited,
                    item_comments::created_at,
                    item_comments::updated_at,
                    item_comments::deleted_at,
                    item_comments::version,
                ))
                .into_boxed();
            if let Some(after) = paging.after::<i64>()? {
                query = query.filter(item_comments::id.gt(after));
            }
            let rows: Vec<CommentRow> = query.limit(limit + 1).load(conn)?;
            Ok(Page::from_rows(
                rows.into_iter().map(to_comment).collect(),
                limit,
                |c: &Comment| c.id,
            ))
        })
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
        .transaction(move |conn| {
            let item = Item::row_visible(conn, &key, visibility)?;
            if visibility == Visibility::All {
                crate::items::incident::on_team_comment(conn, item.id)?;
            }
            let text = check_body(&body.0.body)?;
            let stamp = now();
            let id: i64 = diesel::insert_into(item_comments::table)
                .values((
                    item_comments::item_id.eq(item.id),
                    item_comments::author_id.eq(actor.id()),
                    item_comments::body.eq(&text),
                    item_comments::edited.eq(false),
                    item_comments::created_at.eq(stamp),
                    item_comments::updated_at.eq(stamp),
                    item_comments::version.eq(1_i64),
                ))
                .returning(item_comments::id)
                .get_result(conn)?;
            history::record(
                conn,
                Subject {
                    entity_type: "item",
                    entity_id: item.id,
                },
                "commented",
                &actor,
                json!({"comment": id}),
            )?;
            Ok((item.key.clone(), comment(conn, item.id, id)?))
        })
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
            let item = Item::row_visible(conn, &key, visibility)?;
            // Read the comment under its lock, so that its version is the one writers see.
            crate::common::db::lock(conn, crate::common::db::Lock::Comment(id))?;
            let current = comment(conn, item.id, id)?;
            if current.author_id != actor.id() {
                return Err(ApiError::Forbidden(
                    "Only the author may edit a comment.".into(),
                ));
            }
            if current.deleted_at.is_some() {
                return Err(ApiError::Conflict("The comment is deleted.".into()));
            }
            if_match.check(current.version)?;
            let text = check_body(&body.0.body)?;
            crate::versioned_write!(
                conn,
                item_comments,
                id,
                current.version,
                (
                    item_comments::body.eq(&text),
                    item_comments::edited.eq(true),
                ),
            )?;
            history::record(
                conn,
                Subject {
                    entity_type: "item",
                    entity_id: item.id,
                },
                "comment_edited",
                &actor,
                json!({"comment": id, "body": {"old": current.body, "new": text}}),
            )?;
            comment(conn, item.id, id)
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
        let item = Item::row_visible(conn, &key, visibility)?;
        // Read the comment under its lock, so that its version is the one writers see.
        crate::common::db::lock(conn, crate::common::db::Lock::Comment(id))?;
        let current = comment(conn, item.id, id)?;
        if current.author_id != actor.id() && !is_admin {
            return Err(ApiError::Forbidden(
                "Only the author or an admin may delete a comment.".into(),
            ));
        }
        if current.deleted_at.is_some() {
            return Ok(());
        }
        if_match.check(current.version)?;
        crate::versioned_write!(
            conn,
            item_comments,
            id,
            current.version,
            (
                item_comments::body.eq(""),
                item_comments::deleted_at.eq(Some(now())),
            ),
        )?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: item.id,
            },
            "comment_deleted",
            &actor,
            json!({"comment": id}),
        )
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// How two items are linked, as seen from one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// This item blocks the other.
    Blocks,
    /// The other item blocks this one.
    BlockedBy,
    /// The two are related.
    Relates,
    /// This item duplicates the other.
    Duplicates,
    /// The other item duplicates this one.
    DuplicatedBy,
}

impl LinkKind {
    /// The stored kind and whether this item is the stored source.
    fn stored(self) -> (&'static str, bool) {
        match self {
            Self::Blocks => ("blocks", true),
            Self::BlockedBy => ("blocks", false),
            Self::Relates => ("relates", true),
            Self::Duplicates => ("duplicates", true),
            Self::DuplicatedBy => ("duplicates", false),
        }
    }

    fn seen_from(kind: &str, is_source: bool) -> Self {
        match (kind, is_source) {
            ("blocks", true) => Self::Blocks,
            ("blocks", false) => Self::BlockedBy,
            ("duplicates", true) => Self::Duplicates,
            ("duplicates", false) => Self::DuplicatedBy,
            _ => Self::Relates,
        }
    }
}

/// A link as seen from one item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// The link's id (the same from both ends).
    pub id: i64,
    /// How this item relates to the other.
    pub kind: LinkKind,
    /// The other item's key.
    pub item: String,
    /// The other item's title.
    pub title: String,
    /// When the link was made.
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/items/{key}/links`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "blocks", "item": "OPS-7"}))]
pub struct NewLink {
    /// How this item relates to the other.
    pub kind: LinkKind,
    /// The other item's key or id.
    pub item: String,
}

fn links_of(conn: &mut DbConnection, item_id: i64) -> Result<Vec<Link>, ApiError> {
    let rows: Vec<(i64, i64, i64, String, NaiveDateTime)> = item_links::table
        .filter(
            item_links::source_id
                .eq(item_id)
                .or(item_links::target_id.eq(item_id)),
        )
        .order(item_links::id)
        .select((
            item_links::id,
            item_links::source_id,
            item_links::target_id,
            item_links::kind,
            item_links::created_at,
        ))
        .load(conn)?;
    let others: Vec<i64> = rows
        .iter()
        .map(|r| if r.1 == item_id { r.2 } else { r.1 })
        .collect();
    let names: std::collections::HashMap<i64, (String, String)> = items::table
        .filter(items::id.eq_any(&others).and(items::deleted_at.is_null()))
        .select((items::id, items::key, items::title))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, key, title)| (id, (key, title)))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|(id, source, target, kind, created_at)| {
            let is_source = source == item_id;
            let other = if is_source { target } else { source };
            names.get(&other).map(|(key, title)| Link {
                id,
                kind: LinkKind::seen_from(&kind, is_source),
                item: key.clone(),
                title: title.clone(),
                created_at: created_at.and_utc(),
            })
        })
        .collect())
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
    let links = db
        .run(move |conn| {
            let item = Item::row(conn, &key)?;
            links_of(conn, item.id)
        })
        .await?;
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
        .transaction(move |conn| {
            let this = Item::row(conn, &key)?;
            let other = Item::row(conn, &body.0.item).map_err(|_| {
                ApiError::invalid("item", format!("there is no item `{}`", body.0.item))
            })?;
            if other.id == this.id {
                return Err(ApiError::invalid(
                    "item",
                    "an item cannot be linked to itself",
                ));
            }
            let (kind, this_is_source) = body.0.kind.stored();
            let (source, target) = if this_is_source {
                (this.id, other.id)
            } else {
                (other.id, this.id)
            };
            let mut existing = item_links::table
                .filter(item_links::kind.eq(kind))
                .filter(
                    item_links::source_id
                        .eq(source)
                        .and(item_links::target_id.eq(target)),
                )
                .select(item_links::id)
                .into_boxed();
            if kind == "relates" {
                existing = existing.or_filter(
                    item_links::kind
                        .eq(kind)
                        .and(item_links::source_id.eq(target))
                        .and(item_links::target_id.eq(source)),
                );
            }
            if existing.first::<i64>(conn).optional()?.is_some() {
                return Err(ApiError::Conflict(format!(
                    "{} and {} are linked this way already.",
                    this.key, other.key
                )));
            }
            let id: i64 = diesel::insert_into(item_links::table)
                .values((
                    item_links::source_id.eq(source),
                    item_links::target_id.eq(target),
                    item_links::kind.eq(kind),
                    item_links::created_by.eq(actor.user_id),
                    item_links::created_at.eq(now()),
                ))
                .returning(item_links::id)
                .get_result(conn)?;
            for (subject, seen) in [
                (this.id, body.0.kind),
                (other.id, LinkKind::seen_from(kind, !this_is_source)),
            ] {
                let with = if subject == this.id {
                    &other.key
                } else {
                    &this.key
                };
                history::record(
                    conn,
                    Subject {
                        entity_type: "item",
                        entity_id: subject,
                    },
                    "linked",
                    &actor,
                    json!({"link": id, "kind": seen, "item": with}),
                )?;
            }
            links_of(conn, this.id)?
                .into_iter()
                .find(|l| l.id == id)
                .ok_or_else(|| ApiError::internal("link vanished"))
        })
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
    db.transaction(move |conn| {
        let item = Item::row(conn, &key)?;
        let link: Option<(i64, i64, String)> = item_links::table
            .filter(item_links::id.eq(id))
            .filter(
                item_links::source_id
                    .eq(item.id)
                    .or(item_links::target_id.eq(item.id)),
            )
            .select((
                item_links::source_id,
                item_links::target_id,
                item_links::kind,
            ))
            .first(conn)
            .optional()?;
        let Some((source, target, kind)) = link else {
            return Err(ApiError::NotFound(format!(
                "Item {} has no link {id}.",
                item.key
            )));
        };
        diesel::delete(item_links::table.find(id)).execute(conn)?;
        // Each side's event names the other end, as `linked` does.
        let keys: std::collections::HashMap<i64, String> = items::table
            .filter(items::id.eq_any([source, target]))
            .select((items::id, items::key))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect();
        for (subject, other) in [(source, target), (target, source)] {
            history::record(
                conn,
                Subject {
                    entity_type: "item",
                    entity_id: subject,
                },
                "unlinked",
                &actor,
                json!({"link": id, "kind": kind, "item": keys.get(&other)}),
            )?;
        }
        Ok(())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Confines a page of an item's history to what the caller may see: an event that names
/// another item (by convention in `data.item`, as `linked` and `unlinked` do) keeps that key
/// for a requester only when the other item is visible to them too, a demand of their own
/// organization. Otherwise the key is left out and the event stays, so the requester still
/// sees that their demand was linked, not to what. The team sees everything.
pub(crate) fn confine_history(
    conn: &mut DbConnection,
    events: &mut [history::Event],
    visibility: Visibility,
) -> Result<(), ApiError> {
    let Visibility::Organization(org) = visibility else {
        return Ok(());
    };
    let named: Vec<String> = events
        .iter()
        .filter_map(|e| {
            e.data
                .get(history::OTHER_ITEM)?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    // The same rule as every other read of a requester: demands their organization raised.
    let visible: std::collections::HashSet<String> = items::table
        .filter(items::key.eq_any(&named))
        .filter(items::item_type.eq(crate::items::model::ItemType::Demand.as_str()))
        .filter(items::id.eq_any(crate::items::model::demands_of(org.unwrap_or(-1))))
        .select(items::key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    for event in events.iter_mut() {
        let hidden = event
            .data
            .get(history::OTHER_ITEM)
            .is_some_and(|key| key.as_str().is_none_or(|key| !visible.contains(key)));
        if hidden && let Some(data) = event.data.as_object_mut() {
            data.remove(history::OTHER_ITEM);
        }
    }
    Ok(())
}
