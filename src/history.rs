//! The append-only history: every mutation writes one event in the same transaction, so that
//! nothing changes without a trace and the flow metrics have a single source.

use diesel::prelude::*;
use serde_json::Value;

use crate::db::schema::events;
use crate::db::{DbConnection, now};
use crate::error::ApiError;

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
