//! The append-only history: every mutation writes one event in the same transaction, so that
//! nothing changes without a trace and the flow metrics have a single source.

use diesel::prelude::*;
use serde_json::Value;

use crate::common::actor::Actor;
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

/// Appends one event by `actor`. Call it inside the transaction of the change it describes.
pub fn record(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    kind: &str,
    actor: &Actor,
    data: Value,
) -> Result<(), ApiError> {
    diesel::insert_into(events::table)
        .values((
            events::entity_type.eq(subject.entity_type),
            events::entity_id.eq(subject.entity_id),
            events::kind.eq(kind),
            events::actor_id.eq(actor.user_id),
            events::data.eq(data.to_string()),
            events::created_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// What a change did to an entity's fields, as the `data` of an `updated` event:
/// `{field: {"old": …, "new": …}}` for each field whose value differs, in the order noted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff(serde_json::Map<String, Value>);

impl Diff {
    /// No change yet.
    pub fn new() -> Diff {
        Diff::default()
    }

    /// Notes `field` when `old` and `new` differ (as JSON); an equal pair is no change.
    pub fn field(&mut self, field: &str, old: impl serde::Serialize, new: impl serde::Serialize) {
        let (old, new) = (json(old), json(new));
        if old != new {
            self.0.insert(
                field.to_string(),
                serde_json::json!({"old": old, "new": new}),
            );
        }
    }

    /// Notes every top-level field in which the JSON objects `old` and `new` differ, named
    /// `<prefix>.<field>` when a prefix is given (`demand.value`).
    pub fn fields_of(&mut self, prefix: Option<&str>, old: &Value, new: &Value) {
        if let Some(new) = new.as_object() {
            for (field, value) in new {
                let name = match prefix {
                    Some(prefix) => format!("{prefix}.{field}"),
                    None => field.clone(),
                };
                self.field(&name, old.get(field), value);
            }
        }
    }

    /// Adds the changes of `other` (the fields stored beside the entity).
    pub fn extend(&mut self, other: Diff) {
        self.0.extend(other.0);
    }

    /// Notes a fact about the change that is not an old/new pair, such as
    /// `password: {"changed": true}` where the values must not be written down.
    pub fn note(&mut self, field: &str, value: Value) {
        self.0.insert(field.to_string(), value);
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `field` changed.
    pub fn touches(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The event's `data`.
    pub fn into_data(self) -> Value {
        Value::Object(self.0)
    }
}

fn json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
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
