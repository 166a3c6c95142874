//! Items and comments addressed by their reference in another system: what a sync script
//! mirroring JIRA or OpenProject uses instead of bookkeeping of its own. `PUT` creates the
//! item with that reference or updates the one that has it, so that a retried or repeated
//! mirror never makes a second item; `source_updated_at` keeps a late delivery from rolling an
//! item back; the same values again change nothing.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::catalog::raci::{self, RaciInput, RaciRole};
use crate::common::actor::{Actor, Visibility};
use crate::common::db::schema::{comment_external_refs, item_comments, item_external_refs, items};
use crate::common::db::{self, DbConnection, Lock};
use crate::common::error::{ApiError, FieldError};
use crate::common::text::{http_url, optional_text, required_text};
use crate::common::version::Precondition;
use crate::items::comments::{self, Comment, CommentInput};
use crate::items::demand::DemandInput;
use crate::items::incident::IncidentInput;
use crate::items::types::{
    ExternalRef, Item, ItemChanges, ItemType, MoveRequest, NewItem, Priority,
};
use crate::items::writes::is_valid_system;

/// The body of `PUT /api/v1/items/by-ref/{system}/{key}`: the fields of `POST /items` plus
/// the reference's `alias`, `url` and `source_updated_at`, and where the item stands. Creating
/// needs `board`, `type` and `title`; an update sets the fields the body names and leaves the
/// others as they are (so a script that maps only some fields erases nothing), and an explicit
/// `null` clears a field that may be empty.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "board": "OPS", "type": "incident", "title": "Wohngeld: Upload bricht ab",
    "service": "wohngeld", "priority": "high", "labels": ["upload"],
    "incident": {"severity": "s2"},
    "alias": "OZG-123", "url": "https://jira.example.org/browse/OZG-123",
    "source_updated_at": "2026-02-02T08:00:00Z", "column": 3
}))]
pub struct ItemUpsert {
    /// Key of the board; required to create, and it must match on an update (items do not
    /// change boards).
    pub board: Option<String>,
    /// Demand, task or incident; required to create, and it must match on an update.
    #[serde(rename = "type")]
    pub item_type: Option<ItemType>,
    /// Title, 1–200 characters; required to create.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub title: Option<String>,
    /// Description (Markdown), up to 64 KiB.
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// Key of the online service; `null` removes it (tasks only).
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub service: Option<Option<String>>,
    /// Priority.
    pub priority: Option<Priority>,
    /// Labels (replace the list); at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub labels: Option<Vec<String>>,
    /// Due date; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub due_date: Option<Option<NaiveDate>>,
    /// RACI roles (people by id or e-mail); replaces them when they differ, under the rules of
    /// `PUT /items/{key}/raci` (who may change the accountable person).
    pub raci: Option<RaciInput>,
    /// Demand fields (demands only).
    pub demand: Option<DemandInput>,
    /// Incident fields (incidents only).
    pub incident: Option<IncidentInput>,
    /// The item's human key in the other system (`OZG-123`), which may change; `null`
    /// removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 200, pattern = r"^[^\u0000]*$")]
    pub alias: Option<Option<String>>,
    /// A link to the item in the other system; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 2000, pattern = "^https?://[^\\s]+$")]
    pub url: Option<Option<String>>,
    /// The other system's own time of this state of the item (Jira's `updated`): an upsert
    /// older than the one applied last is refused (409 `stale-source`) and changes nothing.
    pub source_updated_at: Option<DateTime<Utc>>,
    /// A column of the item's board (id) where the item belongs, as the other system's status
    /// maps to it: when it is elsewhere, it moves to the bottom of that column (WIP limits
    /// hold; managers may pass `override_wip`).
    pub column: Option<i64>,
    /// Managers only: create or move even past a WIP limit (recorded in the history).
    #[serde(default)]
    pub override_wip: bool,
}

/// The body of `PUT /api/v1/items/{key}/comments/by-ref/{system}/{key}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"body": "Tritt nur bei Dateien über 10 MB auf.",
    "url": "https://jira.example.org/browse/OZG-123?focusedCommentId=10500",
    "source_updated_at": "2026-02-02T08:00:00Z"}))]
pub struct CommentUpsert {
    /// The text (Markdown), 1–20,000 characters.
    #[schema(
        min_length = 1,
        max_length = 20000,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub body: String,
    /// A link to the comment in the other system; left as it is when omitted, `null` removes
    /// it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 2000, pattern = "^https?://[^\\s]+$")]
    pub url: Option<Option<String>>,
    /// The other system's own time of this version of the comment (older → 409
    /// `stale-source`).
    pub source_updated_at: Option<DateTime<Utc>>,
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// It created the resource.
    Created,
    /// It found the resource (and changed it, or found it equal).
    Found,
}

/// A system name and a key there, checked: 422 naming `system` or `key`.
fn check_reference(system: &str, key: &str) -> Result<(String, String), ApiError> {
    let mut errors = Vec::new();
    if !is_valid_system(system) {
        errors.push(FieldError::new(
            "system",
            "must be lower-case letters, digits, `-` or `_`, such as jira",
        ));
    }
    let key = required_text(&mut errors, "key", key, 200);
    ApiError::from_fields(errors)?;
    Ok((system.to_string(), key))
}

/// The item holding a reference, deleted ones included: `(id, key, deleted_at, the applied
/// source time)`.
type Holder = (i64, String, Option<NaiveDateTime>, Option<NaiveDateTime>);

fn holder(conn: &mut DbConnection, system: &str, key: &str) -> Result<Option<Holder>, ApiError> {
    Ok(item_external_refs::table
        .inner_join(items::table)
        .filter(
            item_external_refs::system
                .eq(system)
                .and(item_external_refs::ext_key.eq(key)),
        )
        .select((
            items::id,
            items::key,
            items::deleted_at,
            item_external_refs::source_updated_at,
        ))
        .first(conn)
        .optional()?)
}

/// 409 `stale-source` when `incoming` is older than what was applied last.
fn check_source_time(
    applied: Option<NaiveDateTime>,
    incoming: Option<DateTime<Utc>>,
    what: &str,
) -> Result<(), ApiError> {
    if let (Some(applied), Some(incoming)) = (applied, incoming)
        && incoming.naive_utc() < applied
    {
        return Err(ApiError::StaleSource(format!(
            "{what} was last updated from a source state of {}; this one ({}) is older and \
             changes nothing.",
            applied.and_utc().to_rfc3339(),
            incoming.to_rfc3339()
        )));
    }
    Ok(())
}

/// The timestamp as stored, to the microsecond like every other.
fn stored_time(at: DateTime<Utc>) -> NaiveDateTime {
    use chrono::SubsecRound;
    at.naive_utc().trunc_subsecs(6)
}

/// Creates the item with the reference `system`/`key`, or updates the one that has it, in the
/// caller's transaction. `if_match` is the item's version the caller expects (412 when it
/// differs, or when there is no such item); `create_only` is `If-None-Match: *` (412 when the
/// item exists).
#[allow(clippy::too_many_arguments)]
pub fn upsert(
    conn: &mut DbConnection,
    system: &str,
    key: &str,
    body: &ItemUpsert,
    actor: &Actor,
    manages: bool,
    if_match: Precondition,
    create_only: bool,
) -> Result<(Item, Upserted), ApiError> {
    let (system, key) = check_reference(system, key)?;
    let mut errors = Vec::new();
    // Outer `None`: not named (stays as it is); `Some(None)`: removed.
    let alias = body
        .alias
        .as_ref()
        .map(|a| optional_text(&mut errors, "alias", a.as_deref(), 200));
    let url = body
        .url
        .as_ref()
        .map(|u| http_url(&mut errors, "url", u.as_deref()));
    ApiError::from_fields(errors)?;
    // Two upserts of one reference take turns: the second finds the first's item.
    db::lock(
        conn,
        Lock::ExternalRef(db::external_ref_key("item", &system, &key)),
    )?;
    let Some((id, item_key, deleted_at, applied)) = holder(conn, &system, &key)? else {
        if if_match.0.is_some() {
            return Err(ApiError::PreconditionNotMet(format!(
                "If-Match names a version, but no item has the reference {system} {key}."
            )));
        }
        let item = create(
            conn,
            &system,
            &key,
            body,
            alias.flatten(),
            url.flatten(),
            actor,
            manages,
        )?;
        return Ok((item, Upserted::Created));
    };
    if deleted_at.is_some() {
        return Err(ApiError::Deleted(format!(
            "{system} {key} belongs to {item_key}, which was deleted; a deleted item is not \
             brought back by an upsert."
        )));
    }
    let row = Item::row_for_update(conn, &id.to_string())?;
    if create_only {
        return Err(ApiError::PreconditionNotMet(format!(
            "If-None-Match: * asks to create, but {item_key} has the reference {system} {key} \
             (version {}).",
            row.version
        )));
    }
    if_match.check(row.version)?;
    check_source_time(applied, body.source_updated_at, &item_key)?;
    let current = Item::find(conn, &item_key)?;
    let mut errors = Vec::new();
    if let Some(board) = &body.board
        && !board.trim().eq_ignore_ascii_case(&current.board)
    {
        errors.push(FieldError::new(
            "board",
            format!(
                "{item_key} is on board {}; items do not change boards",
                current.board
            ),
        ));
    }
    if let Some(item_type) = body.item_type
        && item_type != current.item_type
    {
        errors.push(FieldError::new(
            "type",
            format!(
                "{item_key} is a {}; an upsert does not change the type",
                current.item_type.as_str()
            ),
        ));
    }
    ApiError::from_fields(errors)?;
    // The reference itself: a new alias or link is a change of the item like any other.
    let refs: Vec<ExternalRef> = current
        .external_refs
        .iter()
        .map(|r| {
            if r.system == system && r.key == key {
                ExternalRef {
                    alias: alias.clone().unwrap_or(r.alias.clone()),
                    url: url.clone().unwrap_or(r.url.clone()),
                    ..r.clone()
                }
            } else {
                r.clone()
            }
        })
        .collect();
    let changes = ItemChanges {
        item_type: None,
        title: body.title.clone(),
        description: body.description.clone(),
        service: body.service.clone(),
        priority: body.priority,
        labels: body.labels.clone(),
        due_date: body.due_date,
        external_refs: (refs != current.external_refs).then_some(refs),
        demand: body.demand.clone(),
        incident: body.incident.clone(),
    };
    // Checked once above; the steps below hold the item's lock.
    Item::update(conn, &item_key, &changes, actor, Precondition::ANY)?;
    if let Some(input) = &body.raci {
        // Checked here first, so that the errors name the fields of this body (`raci.…`).
        let rows = raci::validate(conn, input, "raci.")?;
        if !rows.iter().any(|(_, role)| *role == RaciRole::Accountable) {
            return Err(ApiError::invalid(
                "raci.accountable",
                "is required: every item has one accountable person",
            ));
        }
        Item::replace_raci(conn, &item_key, input, actor, manages, Precondition::ANY)?;
    }
    place(conn, &item_key, body, actor, manages)?;
    record_source_time(conn, &system, &key, applied, body.source_updated_at)?;
    Ok((Item::find(conn, &item_key)?, Upserted::Found))
}

/// Creates the item of a reference.
#[allow(clippy::too_many_arguments)]
fn create(
    conn: &mut DbConnection,
    system: &str,
    key: &str,
    body: &ItemUpsert,
    alias: Option<String>,
    url: Option<String>,
    actor: &Actor,
    manages: bool,
) -> Result<Item, ApiError> {
    let mut errors = Vec::new();
    for (field, missing) in [
        ("board", body.board.is_none()),
        ("type", body.item_type.is_none()),
        ("title", body.title.is_none()),
    ] {
        if missing {
            errors.push(FieldError::new(
                field,
                "is required to create the item of a new reference",
            ));
        }
    }
    ApiError::from_fields(errors)?;
    let form = NewItem {
        board: body.board.clone().unwrap_or_default(),
        item_type: body.item_type.unwrap_or(ItemType::Task),
        title: body.title.clone().unwrap_or_default(),
        description: body.description.clone().unwrap_or_default(),
        service: body.service.clone().flatten(),
        priority: body.priority.unwrap_or_default(),
        labels: body.labels.clone().unwrap_or_default(),
        due_date: body.due_date.flatten(),
        raci: body.raci.clone(),
        external_refs: vec![ExternalRef {
            system: system.to_string(),
            key: key.to_string(),
            url,
            alias,
        }],
        demand: body.demand.clone(),
        incident: body.incident.clone(),
        override_wip: body.override_wip,
    };
    let item = match Item::create(conn, &form, actor, manages) {
        Ok(item) => item,
        // A creation that names the reference (POST /items) takes no lock of it and committed
        // it while this one waited for the board: give up this transaction (it has written
        // part of an item), and the handler's second attempt finds that item and updates it.
        Err(ApiError::Conflict(_)) if holder(conn, system, key)?.is_some() => {
            return Err(ApiError::Taken {
                field: Some("external_refs"),
            });
        }
        Err(other) => return Err(other),
    };
    place(conn, &item.key, body, actor, manages)?;
    record_source_time(conn, system, key, None, body.source_updated_at)?;
    Item::find(conn, &item.key)
}

/// Moves the item to the body's column when it is elsewhere.
fn place(
    conn: &mut DbConnection,
    item_key: &str,
    body: &ItemUpsert,
    actor: &Actor,
    manages: bool,
) -> Result<(), ApiError> {
    let Some(column) = body.column else {
        return Ok(());
    };
    let row = Item::row(conn, item_key)?;
    if row.column_id == column {
        return Ok(());
    }
    let request = MoveRequest {
        column,
        before: None,
        after: None,
        override_wip: body.override_wip,
        resolution: None,
    };
    Item::move_to(conn, item_key, &request, actor, manages, Precondition::ANY).map(drop)
}

/// Stores the source time applied, when it is newer: bookkeeping of the reference, no change
/// of the item (no event, no version).
fn record_source_time(
    conn: &mut DbConnection,
    system: &str,
    key: &str,
    applied: Option<NaiveDateTime>,
    incoming: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    let Some(incoming) = incoming.map(stored_time) else {
        return Ok(());
    };
    if applied.is_some_and(|a| a >= incoming) {
        return Ok(());
    }
    diesel::update(
        item_external_refs::table.filter(
            item_external_refs::system
                .eq(system)
                .and(item_external_refs::ext_key.eq(key)),
        ),
    )
    .set(item_external_refs::source_updated_at.eq(Some(incoming)))
    .execute(conn)?;
    Ok(())
}

/// The live item with a reference, if the caller may see it: 404 for a reference nobody
/// holds, and for one of a deleted item (saying so).
pub fn find(
    conn: &mut DbConnection,
    system: &str,
    key: &str,
    visibility: Visibility,
) -> Result<Item, ApiError> {
    let (system, key) = check_reference(system, key)?;
    match holder(conn, &system, &key)? {
        None => Err(ApiError::NotFound(format!(
            "No item has the reference {system} {key}."
        ))),
        Some((_, item_key, Some(deleted_at), _)) => Err(ApiError::NotFound(format!(
            "{item_key}, the item of {system} {key}, was deleted at {}.",
            deleted_at.and_utc().to_rfc3339()
        ))),
        Some((id, _, None, _)) => Item::find_visible(conn, &id.to_string(), visibility),
    }
}

/// Deletes the item with a reference (a soft delete, as `DELETE /items/{key}`); an item
/// already deleted is fine; a reference nobody ever held is 404.
pub fn delete(
    conn: &mut DbConnection,
    system: &str,
    key: &str,
    actor: &Actor,
    if_match: Precondition,
) -> Result<(), ApiError> {
    let (system, key) = check_reference(system, key)?;
    // In turn with upserts and other deletions of the reference: a second DELETE waits and
    // then finds the item deleted (204), rather than losing the item's row under its feet.
    db::lock(
        conn,
        Lock::ExternalRef(db::external_ref_key("item", &system, &key)),
    )?;
    match holder(conn, &system, &key)? {
        None => Err(ApiError::NotFound(format!(
            "No item has the reference {system} {key}."
        ))),
        Some((_, _, Some(_), _)) => Ok(()),
        Some((id, _, None, _)) => Item::delete(conn, &id.to_string(), actor, if_match),
    }
}

/// The comment holding a reference: `(comment id, its item, deleted_at, applied source time)`.
type CommentHolder = (i64, i64, Option<NaiveDateTime>, Option<NaiveDateTime>);

fn comment_holder(
    conn: &mut DbConnection,
    system: &str,
    key: &str,
) -> Result<Option<CommentHolder>, ApiError> {
    Ok(comment_external_refs::table
        .inner_join(item_comments::table)
        .filter(
            comment_external_refs::system
                .eq(system)
                .and(comment_external_refs::ext_key.eq(key)),
        )
        .select((
            item_comments::id,
            item_comments::item_id,
            item_comments::deleted_at,
            comment_external_refs::source_updated_at,
        ))
        .first(conn)
        .optional()?)
}

/// Creates the comment with a reference on an item, or edits the one that has it (its author's
/// right, as any edit); the same text again changes nothing. `if_match` is the comment's
/// version the caller expects (412 when it differs, or when no comment has the reference);
/// `create_only` is `If-None-Match: *` (412 when one has).
#[allow(clippy::too_many_arguments)]
pub fn upsert_comment(
    conn: &mut DbConnection,
    item_key: &str,
    system: &str,
    key: &str,
    body: &CommentUpsert,
    actor: &Actor,
    visibility: Visibility,
    if_match: Precondition,
    create_only: bool,
) -> Result<(String, Comment, Upserted), ApiError> {
    let (system, key) = check_reference(system, key)?;
    let mut errors = Vec::new();
    // Outer `None`: not named (stays as it is); `Some(None)`: removed.
    let url = body
        .url
        .as_ref()
        .map(|u| http_url(&mut errors, "url", u.as_deref()));
    ApiError::from_fields(errors)?;
    db::lock(
        conn,
        Lock::ExternalRef(db::external_ref_key("comment", &system, &key)),
    )?;
    let item = Item::row_visible(conn, item_key, visibility)?;
    let input = CommentInput {
        body: body.body.clone(),
    };
    let incoming = body.source_updated_at.map(stored_time);
    match comment_holder(conn, &system, &key)? {
        None => {
            if if_match.0.is_some() {
                return Err(ApiError::PreconditionNotMet(format!(
                    "If-Match names a version, but no comment has the reference {system} {key}."
                )));
            }
            let (item_key, comment) = comments::add(conn, &item.key, &input, actor, visibility)?;
            diesel::insert_into(comment_external_refs::table)
                .values((
                    comment_external_refs::comment_id.eq(comment.id),
                    comment_external_refs::system.eq(&system),
                    comment_external_refs::ext_key.eq(&key),
                    comment_external_refs::url.eq(url.flatten()),
                    comment_external_refs::source_updated_at.eq(incoming),
                ))
                .execute(conn)?;
            let comment = comments::find(conn, item.id, comment.id)?;
            Ok((item_key, comment, Upserted::Created))
        }
        Some((_, other_item, _, _)) if other_item != item.id => Err(ApiError::Conflict(format!(
            "{system} {key} is the reference of a comment on another item."
        ))),
        Some((_, _, Some(_), _)) => Err(ApiError::Deleted(format!(
            "The comment of {system} {key} was deleted; a deleted comment is not brought back \
             by an upsert."
        ))),
        Some((id, _, None, applied)) => {
            if create_only {
                return Err(ApiError::PreconditionNotMet(format!(
                    "If-None-Match: * asks to create, but comment {id} on {} has the reference \
                     {system} {key}.",
                    item.key
                )));
            }
            check_source_time(applied, body.source_updated_at, "The comment")?;
            let comment = comments::edit(conn, &item.key, id, &input, actor, visibility, if_match)?;
            // The reference's own bookkeeping: the source time applied (when newer) and the
            // link (when named); neither is a change of the comment.
            let this_ref = comment_external_refs::table.filter(
                comment_external_refs::system
                    .eq(&system)
                    .and(comment_external_refs::ext_key.eq(&key)),
            );
            if let Some(newer) = incoming.filter(|t| applied.is_none_or(|a| a < *t)) {
                diesel::update(this_ref)
                    .set(comment_external_refs::source_updated_at.eq(Some(newer)))
                    .execute(conn)?;
            }
            if let Some(url) = url {
                diesel::update(this_ref)
                    .set(comment_external_refs::url.eq(url))
                    .execute(conn)?;
            }
            let comment = comments::find(conn, item.id, comment.id)?;
            Ok((item.key, comment, Upserted::Found))
        }
    }
}

/// Deletes the comment with a reference (its tombstone stays), honouring `If-Match`; one
/// already deleted is fine; a reference nobody ever held is 404.
#[allow(clippy::too_many_arguments)]
pub fn delete_comment(
    conn: &mut DbConnection,
    item_key: &str,
    system: &str,
    key: &str,
    actor: &Actor,
    visibility: Visibility,
    may_delete_any: bool,
    if_match: Precondition,
) -> Result<(), ApiError> {
    let (system, key) = check_reference(system, key)?;
    db::lock(
        conn,
        Lock::ExternalRef(db::external_ref_key("comment", &system, &key)),
    )?;
    let item = Item::row_visible(conn, item_key, visibility)?;
    match comment_holder(conn, &system, &key)? {
        Some((id, on_item, deleted_at, _)) if on_item == item.id => match deleted_at {
            Some(_) => Ok(()),
            None => comments::delete(
                conn,
                &item.key,
                id,
                actor,
                visibility,
                may_delete_any,
                if_match,
            ),
        },
        _ => Err(ApiError::NotFound(format!(
            "No comment on {} has the reference {system} {key}.",
            item.key
        ))),
    }
}
