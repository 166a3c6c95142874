//! Comments on items: reading a thread, posting, editing and deleting a comment. Each change
//! writes its event into the item's history in the same transaction.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::common::actor::{Actor, Visibility};
use crate::common::db::schema::{item_comments, users};
use crate::common::db::{DbConnection, Lock, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::text::{check_not_blank, check_text};
use crate::common::version::Precondition;
use crate::items::incident;
use crate::items::types::Item;

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
    /// The same comment in other systems (set by `PUT …/comments/by-ref/{system}/{key}`).
    pub external_refs: Vec<CommentRef>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// A comment's reference in another system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommentRef {
    /// The other system (`jira`).
    pub system: String,
    /// The comment's stable id there.
    pub key: String,
    /// A link to it there.
    pub url: Option<String>,
}

/// The references of comments by id (one query).
fn refs_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<std::collections::HashMap<i64, Vec<CommentRef>>, ApiError> {
    use crate::common::db::schema::comment_external_refs as refs;
    let mut found: std::collections::HashMap<i64, Vec<CommentRef>> = Default::default();
    if ids.is_empty() {
        return Ok(found);
    }
    for (id, system, key, url) in refs::table
        .filter(refs::comment_id.eq_any(ids))
        .order((refs::comment_id, refs::system))
        .select((refs::comment_id, refs::system, refs::ext_key, refs::url))
        .load::<(i64, String, String, Option<String>)>(conn)?
    {
        found
            .entry(id)
            .or_default()
            .push(CommentRef { system, key, url });
    }
    Ok(found)
}

/// Comments of stored rows with their references.
fn with_refs(conn: &mut DbConnection, rows: Vec<CommentRow>) -> Result<Vec<Comment>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut refs = refs_of(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mut comment = to_comment(row);
            comment.external_refs = refs.remove(&comment.id).unwrap_or_default();
            comment
        })
        .collect())
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
        external_refs: Vec::new(),
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

/// The comment `id` on item `item_id` (its tombstone when deleted), with its references.
pub(crate) fn find(conn: &mut DbConnection, item_id: i64, id: i64) -> Result<Comment, ApiError> {
    let mut comment = comment(conn, item_id, id)?;
    comment.external_refs = refs_of(conn, &[id])?.remove(&id).unwrap_or_default();
    Ok(comment)
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

/// One page of the comments on an item the caller may see, oldest first; deleted comments
/// stay as tombstones.
pub fn list(
    conn: &mut DbConnection,
    key_or_id: &str,
    visibility: Visibility,
    paging: &PageParams,
) -> Result<Page<Comment>, ApiError> {
    let item = Item::row_visible(conn, key_or_id, visibility)?;
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
        with_refs(conn, rows)?,
        limit,
        |c: &Comment| c.id,
    ))
}

/// Posts a comment on an item the caller may see, with its `commented` event; the team's
/// first comment on an incident is its first response. Returns the item's key and the comment.
pub fn add(
    conn: &mut DbConnection,
    key_or_id: &str,
    input: &CommentInput,
    actor: &Actor,
    visibility: Visibility,
) -> Result<(String, Comment), ApiError> {
    let item = Item::row_visible(conn, key_or_id, visibility)?;
    if visibility == Visibility::All {
        incident::on_team_comment(conn, item.id)?;
    }
    let text = check_body(&input.body)?;
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
        actor,
        json!({"comment": id}),
    )?;
    Ok((item.key.clone(), find(conn, item.id, id)?))
}

/// Changes the text of a comment: its author only, not once deleted, honouring `If-Match`;
/// the comment is marked `edited` and the history records old and new text.
pub fn edit(
    conn: &mut DbConnection,
    key_or_id: &str,
    id: i64,
    input: &CommentInput,
    actor: &Actor,
    visibility: Visibility,
    expected: Precondition,
) -> Result<Comment, ApiError> {
    let item = Item::row_visible(conn, key_or_id, visibility)?;
    // Read the comment under its lock, so that its version is the one writers see.
    crate::common::db::lock(conn, Lock::Comment(id))?;
    let current = comment(conn, item.id, id)?;
    if current.author_id != actor.id() {
        return Err(ApiError::Forbidden(
            "Only the author may edit a comment.".into(),
        ));
    }
    if current.deleted_at.is_some() {
        return Err(ApiError::Conflict("The comment is deleted.".into()));
    }
    expected.check(current.version)?;
    let text = check_body(&input.body)?;
    if current.body.as_deref() == Some(text.as_str()) {
        // The same text again: no change, no event, the same version.
        return find(conn, item.id, id);
    }
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
        actor,
        json!({"comment": id, "body": {"old": current.body, "new": text}}),
    )?;
    find(conn, item.id, id)
}

/// Dates a comment back to when another system's user wrote and last edited it (an import):
/// its times and its `commented` event's. For a comment just made by the import.
pub fn backdate(
    conn: &mut DbConnection,
    id: i64,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
) -> Result<(), ApiError> {
    use crate::common::db::schema::events;
    diesel::update(item_comments::table.find(id))
        .set((
            item_comments::created_at.eq(created.naive_utc()),
            item_comments::updated_at.eq(updated.naive_utc().max(created.naive_utc())),
        ))
        .execute(conn)?;
    let item_id: i64 = item_comments::table
        .find(id)
        .select(item_comments::item_id)
        .first(conn)?;
    let events_of_item: Vec<(i64, String)> = events::table
        .filter(
            events::entity_type
                .eq("item")
                .and(events::entity_id.eq(item_id))
                .and(events::kind.eq("commented")),
        )
        .select((events::id, events::data))
        .load(conn)?;
    for (event, data) in events_of_item {
        let names_it = serde_json::from_str::<serde_json::Value>(&data)
            .is_ok_and(|d| d["comment"] == json!(id));
        if names_it {
            diesel::update(events::table.find(event))
                .set(events::created_at.eq(created.naive_utc()))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Deletes a comment, leaving its tombstone in the thread: its author, or anyone when
/// `may_delete_any` (an admin). Honours `If-Match`; deleting a deleted comment does nothing.
pub fn delete(
    conn: &mut DbConnection,
    key_or_id: &str,
    id: i64,
    actor: &Actor,
    visibility: Visibility,
    may_delete_any: bool,
    expected: Precondition,
) -> Result<(), ApiError> {
    let item = Item::row_visible(conn, key_or_id, visibility)?;
    // Read the comment under its lock, so that its version is the one writers see.
    crate::common::db::lock(conn, Lock::Comment(id))?;
    let current = comment(conn, item.id, id)?;
    if current.author_id != actor.id() && !may_delete_any {
        return Err(ApiError::Forbidden(
            "Only the author or an admin may delete a comment.".into(),
        ));
    }
    if current.deleted_at.is_some() {
        return Ok(());
    }
    expected.check(current.version)?;
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
        actor,
        json!({"comment": id}),
    )
}
