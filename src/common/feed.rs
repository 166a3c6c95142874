//! Positions in the changes feed: every history event gets a `seq` that strictly increases in
//! the order in which events become visible, so that a reader who pages with "after this seq"
//! sees every committed event exactly once, even when transactions commit out of the order in
//! which they began.
//!
//! - SQLite has one writer at a time: the order of event ids is the order of commits, and a
//!   trigger (migration `2026-12-04-000010_sync`) copies the id into `seq` on insert.
//! - PostgreSQL runs writers side by side, and an identity or sequence value is taken when a
//!   row is inserted, not when it becomes visible: a reader could see event 12 committed while
//!   event 11's transaction is still open, move its cursor past 11, and never see it. So events
//!   are inserted without a `seq`, and positions are given after commit by
//!   [`number_committed`]: under a transaction-scoped advisory lock, every committed event
//!   without a position gets the next ones, in id order. One numbering at a time, each after the
//!   previous one committed, so a reader who can see a position can see every smaller one; an
//!   event committed while a numbering runs waits for the next, which gives it larger positions
//!   than any already visible. Readers of the feed (and the webhook worker) number before they
//!   read, through [`numbered_head`], which looks first and so costs one statement while
//!   nothing waits for a position; writers pay nothing.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::common::db::DbConnection;
use crate::common::db::schema::{events, installation};
use crate::common::error::ApiError;
use crate::common::history::in_transaction;

/// The advisory-lock key of the numbering: any number nothing else uses; this one spells
/// "opsfeed" in ASCII.
const NUMBERING_LOCK_KEY: i64 = 0x006f_7073_6665_6564;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

/// Gives positions to the committed events that have none yet (PostgreSQL; on SQLite every
/// event has its position from the start). Returns how many were numbered: 0 also when
/// another numbering holds the lock, whose events become visible when it commits.
pub fn number_committed(conn: &mut DbConnection) -> Result<usize, ApiError> {
    if !matches!(conn, DbConnection::Postgresql(_)) {
        return Ok(0);
    }
    in_transaction(conn, |conn| {
        let DbConnection::Postgresql(pg) = conn else {
            return Ok(0);
        };
        let locked = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS locked")
            .bind::<BigInt, _>(NUMBERING_LOCK_KEY)
            .get_result::<Locked>(pg)?
            .locked;
        if !locked {
            return Ok(0);
        }
        // The snapshot of this one statement holds the committed events only; the highest
        // position is read under the lock, after the previous numbering committed.
        let numbered = diesel::sql_query(
            "UPDATE events AS e SET seq = n.base + n.rank \
             FROM (SELECT id, row_number() OVER (ORDER BY id) AS rank, \
                          (SELECT coalesce(max(seq), 0) FROM events) AS base \
                   FROM events WHERE seq IS NULL) AS n \
             WHERE e.id = n.id",
        )
        .execute(pg)?;
        Ok(numbered)
    })
}

/// The highest position, once every committed event has one: what a reader of the feed (or
/// of anything whose tag is the feed's head) starts from. When every committed event has its
/// position, which is always so on SQLite and usually so between writes on PostgreSQL, this
/// is one statement; otherwise the numbering runs first ([`number_committed`]). Both are read
/// in one snapshot, so a head returned without numbering covers every event committed before
/// it, and any event committed later gets a larger position.
pub fn numbered_head(conn: &mut DbConnection) -> Result<i64, ApiError> {
    let (head, unnumbered): (Option<i64>, bool) = diesel::select((
        events::table
            .select(diesel::dsl::max(events::seq))
            .single_value(),
        diesel::dsl::exists(events::table.filter(events::seq.is_null())),
    ))
    .get_result(conn)?;
    if !unnumbered {
        return Ok(head.unwrap_or(0));
    }
    number_committed(conn)?;
    self::head(conn)
}

/// The highest position given so far (0 before the first event).
fn head(conn: &mut DbConnection) -> Result<i64, ApiError> {
    let head: Option<i64> = events::table
        .select(diesel::dsl::max(events::seq))
        .first(conn)?;
    Ok(head.unwrap_or(0))
}

/// This database's identity, made by its first migration: a cursor of the feed carries it,
/// so that a cursor of another database is refused rather than taken for a position here.
pub fn installation_id(conn: &mut DbConnection) -> Result<String, ApiError> {
    Ok(installation::table
        .select(installation::id)
        .order(installation::created_at.asc())
        .first(conn)?)
}
