//! The outbox: for every event written, one delivery per active subscription that wants it,
//! inserted in the same transaction by one statement. With no active subscription it is one
//! prepared `EXISTS` on a small table (the insert is a text statement that each engine parses
//! and plans anew, which a write without subscribers should not pay for).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;
use crate::common::history::{EventObserver, WrittenEvent};

/// The status of a delivery still to be sent.
pub const PENDING: &str = "pending";
/// The status of a delivery the receiver accepted (2xx).
pub const DELIVERED: &str = "delivered";
/// The status of a delivery given up on.
pub const FAILED: &str = "failed";

/// The `webhook-id` of an event's deliveries: the same for every subscription and retry.
pub fn message_id(event_id: i64) -> String {
    format!("evt_{event_id}")
}

/// The `type` of an event's payload: `item.moved`, `board.updated`, …
pub fn event_type(entity_type: &str, kind: &str) -> String {
    format!("{entity_type}.{kind}")
}

/// A subscription matches when it is active, names the kind (or `*`), has no entity filter or
/// this entity's, and no board filter or this board (an item's board, or the board itself).
const INSERT: &str = "INSERT INTO webhook_deliveries \
    (subscription_id, event_id, message_id, event_type, entity_type, entity_id, status, \
     attempts, next_attempt_at, created_at) \
    SELECT s.id, $1, $2, $3, $4, $5, 'pending', 0, $6, $6 FROM webhook_subscriptions s \
    WHERE s.active \
      AND (s.events = '*' OR s.events LIKE $7) \
      AND (s.entity_type IS NULL OR s.entity_type = $4) \
      AND (s.board_id IS NULL \
           OR ($4 = 'board' AND s.board_id = $5) \
           OR ($4 = 'item' AND s.board_id = (SELECT i.board_id FROM items i WHERE i.id = $5)))";

/// The history's event observer: the outbox.
pub const OBSERVER: EventObserver = EventObserver {
    wants: any_active,
    observe: write_deliveries,
};

/// Whether any subscription is active. Looked up in each write transaction, not cached in
/// the process: another instance on the same database may have added a subscription a moment
/// ago, and a missed delivery cannot be recovered.
fn any_active(conn: &mut DbConnection) -> Result<bool, ApiError> {
    Ok(diesel::select(diesel::dsl::exists(
        crate::common::db::schema::webhook_subscriptions::table
            .filter(crate::common::db::schema::webhook_subscriptions::active.eq(true)),
    ))
    .get_result(conn)?)
}

/// Writes the event's deliveries, one per matching subscription.
fn write_deliveries(conn: &mut DbConnection, event: &WrittenEvent<'_>) -> Result<(), ApiError> {
    let at = now();
    let pattern = format!("%,{},%", event.kind);
    let message = message_id(event.id);
    let kind = event_type(event.entity_type, event.kind);
    macro_rules! run {
        ($conn:expr, $sql:expr) => {
            diesel::sql_query($sql)
                .bind::<BigInt, _>(event.id)
                .bind::<Text, _>(&message)
                .bind::<Text, _>(&kind)
                .bind::<Text, _>(event.entity_type)
                .bind::<BigInt, _>(event.entity_id)
                .bind::<Timestamp, _>(at)
                .bind::<Text, _>(&pattern)
                .execute($conn)
        };
    }
    match conn {
        DbConnection::Postgresql(pg) => run!(pg, INSERT),
        DbConnection::Sqlite(sqlite) => run!(sqlite, sqlite_sql(INSERT)),
    }?;
    Ok(())
}

/// A statement with PostgreSQL's `$n` parameters in SQLite's numbered form `?n`.
pub fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}
