//! The append-only history: every mutation writes one event in the same transaction, so that
//! nothing changes without a trace and the flow metrics have a single source.

use diesel::prelude::*;
use serde_json::Value;

use crate::common::db::schema::events;
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;

/// What an event is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The kind of entity, `user`, `item`, …
    pub entity_type: &'a str,
    /// Its id.
    pub entity_id: i64,
}

/// Appends one event. Call it inside the transaction of the change it describes.
pub fn record(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    kind: &str,
    actor_id: Option<i64>,
    data: Value,
) -> Result<(), ApiError> {
    diesel::insert_into(events::table)
        .values((
            events::entity_type.eq(subject.entity_type),
            events::entity_id.eq(subject.entity_id),
            events::kind.eq(kind),
            events::actor_id.eq(actor_id),
            events::data.eq(data.to_string()),
            events::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// The field of an event's `data` that names another item (its key), as `linked` and
/// `unlinked` do. Reads confine it: a requester sees it only for items visible to them.
pub const OTHER_ITEM: &str = "item";

/// One entry of an entity's history.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Increasing id; the order of events.
    pub id: i64,
    /// What happened: `created`, `updated`, `moved`, `raci_changed`, `accountable_changed`,
    /// `deleted`, …
    pub kind: String,
    /// Who did it (`null` for the system).
    pub actor_id: Option<i64>,
    /// The details: for changes `{field: {old, new}}`; for moves the columns; for links the
    /// other item's key in `item`, which a requester sees only when that item is visible to
    /// them (a demand of their own organization).
    pub data: Value,
    /// When it happened.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// One page of an entity's events, oldest first.
pub fn events_of(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    paging: &crate::common::pagination::PageParams,
) -> Result<crate::common::pagination::Page<Event>, ApiError> {
    let limit = paging.limit()?;
    let mut query = events::table
        .filter(
            events::entity_type
                .eq(subject.entity_type)
                .and(events::entity_id.eq(subject.entity_id)),
        )
        .order(events::id.asc())
        .select((
            events::id,
            events::kind,
            events::actor_id,
            events::data,
            events::created_at,
        ))
        .into_boxed();
    if let Some(after) = paging.after::<i64>()? {
        query = query.filter(events::id.gt(after));
    }
    let rows: Vec<(i64, String, Option<i64>, String, chrono::NaiveDateTime)> =
        query.limit(limit + 1).load(conn)?;
    let events = rows
        .into_iter()
        .map(|(id, kind, actor_id, data, created_at)| Event {
            id,
            kind,
            actor_id,
            data: serde_json::from_str(&data).unwrap_or(Value::Null),
            created_at: created_at.and_utc(),
        })
        .collect();
    Ok(crate::common::pagination::Page::from_rows(
        events,
        limit,
        |e| e.id,
    ))
}

/// The fields that differ between two JSON objects, as `{"<prefix>.<field>": {"old", "new"}}`
/// entries for an `updated` event.
pub fn field_changes(prefix: &str, before: Value, after: Value) -> serde_json::Map<String, Value> {
    let mut changed = serde_json::Map::new();
    if let (Value::Object(before), Value::Object(after)) = (before, after) {
        for (field, new) in after {
            let old = before.get(&field).cloned().unwrap_or(Value::Null);
            if old != new {
                changed.insert(
                    format!("{prefix}.{field}"),
                    serde_json::json!({"old": old, "new": new}),
                );
            }
        }
    }
    changed
}
