//! Where an item stands in its column: board order, ranks, WIP limits, and moving an item
//! between and within columns.

use diesel::prelude::*;
use serde_json::json;

use crate::board::model::ColumnCategory;
use crate::common::actor::Actor;
use crate::common::db::schema::{board_columns, items};
use crate::common::db::{DbConnection, Lock, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Subject};
use crate::common::version::Precondition;
use crate::items::incident as incidents;
use crate::items::rank;
use crate::items::types::{Item, ItemType, MoveRequest};

/// A column's live items in board order (rank, then id), without `except`: `(id, key, rank)`.
pub(super) fn column_order(
    conn: &mut DbConnection,
    column_id: i64,
    except: Option<i64>,
) -> Result<Vec<(i64, String, String)>, ApiError> {
    Ok(items::table
        .filter(
            items::column_id
                .eq(column_id)
                .and(items::deleted_at.is_null())
                .and(items::id.ne(except.unwrap_or(-1))),
        )
        .order((items::rank.asc(), items::id.asc()))
        .select((items::id, items::key, items::rank))
        .load(conn)?)
}

/// The rank for a new item at the bottom of a column: one query for the bottom rank, and a
/// re-rank of the column only when it leaves no room.
pub(super) fn bottom_rank(conn: &mut DbConnection, column_id: i64) -> Result<String, ApiError> {
    let bottom: Option<String> = items::table
        .filter(
            items::column_id
                .eq(column_id)
                .and(items::deleted_at.is_null()),
        )
        .order((items::rank.desc(), items::id.desc()))
        .select(items::rank)
        .first(conn)
        .optional()?;
    match rank::after(bottom.as_deref()).filter(|r| r.len() <= rank::MAX_RANK_LEN) {
        Some(rank) => Ok(rank),
        None => {
            let others = column_order(conn, column_id, None)?;
            rank_at(conn, &others, others.len())
        }
    }
}

/// The rank for a new item at the bottom of a column whose bottom rank `hint` gives (see
/// [`super::writes`]'s creation on PostgreSQL): the rank after it, with no read of the
/// column's items; else, with no hint or none usable, [`bottom_rank`].
pub(super) fn bottom_rank_after(
    conn: &mut DbConnection,
    column_id: i64,
    hint: Option<&str>,
) -> Result<String, ApiError> {
    match hint
        .and_then(|hint| rank::after(Some(hint)))
        .filter(|r| r.len() <= rank::MAX_RANK_LEN)
    {
        Some(rank) => Ok(rank),
        None => bottom_rank(conn, column_id),
    }
}

/// Places item `id`, already in column `column_id`, after every other item of the column,
/// and notes its rank as the column's bottom rank hint; returns the rank. For a creation
/// whose rank after the hint met an item moved to the bottom since the hint was noted.
pub(super) fn place_at_bottom(
    conn: &mut DbConnection,
    column_id: i64,
    id: i64,
) -> Result<String, ApiError> {
    let others = column_order(conn, column_id, Some(id))?;
    let rank = rank_at(conn, &others, others.len())?;
    diesel::update(items::table.find(id))
        .set(items::rank.eq(&rank))
        .execute(conn)?;
    diesel::update(board_columns::table.find(column_id))
        .set(board_columns::bottom_rank_hint.eq(&rank))
        .execute(conn)?;
    Ok(rank)
}

/// The rank for a place at index `at` among `others` (a column's items in board order,
/// without the one being placed). When the neighbours leave no room (equal or malformed ranks,
/// or ranks grown past [`rank::MAX_RANK_LEN`]) the whole column is re-ranked here, in the
/// caller's transaction, around a free slot at `at`, whose rank is returned.
fn rank_at(
    conn: &mut DbConnection,
    others: &[(i64, String, String)],
    at: usize,
) -> Result<String, ApiError> {
    let low = at
        .checked_sub(1)
        .and_then(|i| others.get(i))
        .map(|o| o.2.as_str());
    let high = others.get(at).map(|o| o.2.as_str());
    if let Some(rank) = rank::place(low, high).filter(|r| r.len() <= rank::MAX_RANK_LEN) {
        return Ok(rank);
    }
    let mut spread = rank::spread(others.len() + 1);
    let slot = spread.remove(at.min(others.len()));
    for ((id, _, old), new) in others.iter().zip(spread) {
        if *old != new {
            diesel::update(items::table.find(id))
                .set(items::rank.eq(new))
                .execute(conn)?;
        }
    }
    Ok(slot)
}

/// Fails with 409 `wip-limit-exceeded` when a column with a WIP limit already holds `held`
/// items (keys), unless `override_wip` (a manager's choice, checked by the caller); returns
/// whether the limit was overridden.
pub(super) fn check_wip(
    column_name: &str,
    wip_limit: Option<i32>,
    held: &[String],
    override_wip: bool,
) -> Result<bool, ApiError> {
    let Some(limit) = wip_limit else {
        return Ok(false);
    };
    if held.len() < usize::try_from(limit).unwrap_or(usize::MAX) {
        return Ok(false);
    }
    if override_wip {
        return Ok(true);
    }
    Err(ApiError::WipLimitExceeded {
        column: column_name.to_string(),
        limit,
        items: held.to_vec(),
    })
}

impl Item {
    /// Places the item in a column, before or after a named item or at the bottom; enforces
    /// the WIP limit (managers may override, which is recorded); keeps `started_at`/`done_at`.
    ///
    /// The target column is locked first, then the item (always in this order, so that two
    /// moves cannot deadlock): concurrent moves into one column see each other's ranks and
    /// counts, and the WIP limit and the order of ranks hold under any concurrency.
    pub fn move_to(
        conn: &mut DbConnection,
        key_or_id: &str,
        request: &MoveRequest,
        actor: &Actor,
        may_override: bool,
        expected: Precondition,
    ) -> Result<Item, ApiError> {
        if request.before.is_some() && request.after.is_some() {
            return Err(ApiError::invalid(
                "before",
                "give `before` or `after`, not both",
            ));
        }
        if request.override_wip && !may_override {
            return Err(ApiError::Forbidden(
                "Only managers and admins may override a WIP limit.".into(),
            ));
        }
        crate::common::db::lock(conn, Lock::Column(request.column))?;
        let row = Item::row_for_update(conn, key_or_id)?;
        expected.check(row.version)?;
        let target: Option<(i64, String, Option<i32>, String)> = board_columns::table
            .filter(
                board_columns::id
                    .eq(request.column)
                    .and(board_columns::board_id.eq(row.board_id)),
            )
            .select((
                board_columns::id,
                board_columns::category,
                board_columns::wip_limit,
                board_columns::name,
            ))
            .first(conn)
            .optional()?;
        let Some((column_id, category, wip_limit, column_name)) = target else {
            return Err(ApiError::invalid(
                "column",
                format!("column {} is not on this item's board", request.column),
            ));
        };
        // The column's items in board order, without the one being moved (one query).
        let others = column_order(conn, column_id, Some(row.id))?;
        let overridden = if column_id == row.column_id {
            false
        } else {
            let held: Vec<String> = others.iter().map(|o| o.1.clone()).collect();
            check_wip(&column_name, wip_limit, &held, request.override_wip)?
        };
        let position_of = |field: &str, key: &str| {
            others
                .iter()
                .position(|o| o.1.eq_ignore_ascii_case(key))
                .ok_or_else(|| {
                    ApiError::invalid(field, format!("{key} is not in the target column"))
                })
        };
        let at = match (&request.before, &request.after) {
            (Some(before), _) => position_of("before", before)?,
            (_, Some(after)) => position_of("after", after)? + 1,
            _ => others.len(),
        };
        if column_id == row.column_id {
            let now_at = column_order(conn, column_id, None)?
                .iter()
                .position(|o| o.0 == row.id);
            if now_at == Some(at) {
                // Already there: no change, no event, the same version.
                return Item::find(conn, &row.key);
            }
        }
        incidents::on_move(
            conn,
            row.id,
            row.item_type == ItemType::Incident.as_str(),
            ColumnCategory::parse(&category),
            request.resolution.as_deref(),
        )?;
        let new_rank = rank_at(conn, &others, at)?;
        let stamp = now();
        let category = ColumnCategory::parse(&category);
        let started_at = row
            .started_at
            .or((category == Some(ColumnCategory::InProgress)).then_some(stamp));
        let done_at = if category == Some(ColumnCategory::Done) {
            row.done_at.or(Some(stamp))
        } else {
            None
        };
        crate::versioned_write!(
            conn,
            items,
            row.id,
            row.version,
            (
                items::column_id.eq(column_id),
                items::rank.eq(&new_rank),
                items::started_at.eq(started_at),
                items::done_at.eq(done_at),
            ),
        )?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: row.id,
            },
            "moved",
            actor,
            json!({"from_column": row.column_id, "to_column": column_id, "rank": new_rank, "override_wip": overridden}),
        )?;
        Item::find(conn, &row.key)
    }
}

/// The category of `column`, which must be a column of board `board_id` (422 naming `column`
/// otherwise).
fn category_on_board(
    conn: &mut DbConnection,
    column: i64,
    board_id: i64,
) -> Result<Option<ColumnCategory>, ApiError> {
    let category: String = board_columns::table
        .filter(
            board_columns::id
                .eq(column)
                .and(board_columns::board_id.eq(board_id)),
        )
        .select(board_columns::category)
        .first(conn)
        .optional()?
        .ok_or_else(|| {
            ApiError::invalid(
                "column",
                format!("column {column} is not on this item's board"),
            )
        })?;
    Ok(ColumnCategory::parse(&category))
}

impl Item {
    /// Replays a move that happened elsewhere, at `at`, by `actor`: an import of another
    /// system's history (JIRA's status changes). The item goes to the bottom of `column` (on its
    /// board) whatever its WIP limit — the past is not refused — and `started_at` and `done_at`
    /// follow the rules of [`Item::move_to`] with `at` as the time; the `moved` event carries
    /// `at` and `data` merged into the usual fields (the source's id of the change, so that a
    /// second import can tell which changes it already holds). A move into the column the item
    /// is in writes nothing.
    pub fn replay_move(
        conn: &mut DbConnection,
        item_id: i64,
        column: i64,
        at: chrono::DateTime<chrono::Utc>,
        actor: &Actor,
        data: serde_json::Value,
    ) -> Result<bool, ApiError> {
        crate::common::db::lock(conn, Lock::Column(column))?;
        let row = Item::row_for_update(conn, &item_id.to_string())?;
        if row.column_id == column {
            return Ok(false);
        }
        let category = category_on_board(conn, column, row.board_id)?;
        let stamp = at.naive_utc();
        let started_at = row
            .started_at
            .or((category == Some(ColumnCategory::InProgress)).then_some(stamp));
        let done_at = match category {
            Some(ColumnCategory::Done) => row.done_at.or(Some(stamp)),
            _ => None,
        };
        let new_rank = bottom_rank(conn, column)?;
        crate::versioned_write!(
            conn,
            items,
            row.id,
            row.version,
            (
                items::column_id.eq(column),
                items::rank.eq(&new_rank),
                items::started_at.eq(started_at),
                items::done_at.eq(done_at),
            ),
        )?;
        let mut event = json!({"from_column": row.column_id, "to_column": column, "rank": new_rank, "override_wip": false});
        if let (Some(event), serde_json::Value::Object(extra)) = (event.as_object_mut(), data) {
            event.extend(extra);
        }
        history::record_at(
            conn,
            Subject {
                entity_type: "item",
                entity_id: row.id,
            },
            "moved",
            actor,
            event,
            stamp,
        )?;
        Ok(true)
    }
}

impl Item {
    /// Dates an item's creation back to when another system created it (an import), in
    /// `column` of its board: the item's `created_at`, its `created` event, and where it stood
    /// first. `started_at` and `done_at` follow the column at that time. For an item just made
    /// by the import, before any other change of it.
    pub fn backdate_creation(
        conn: &mut DbConnection,
        item_id: i64,
        at: chrono::DateTime<chrono::Utc>,
        column: i64,
        author: Option<i64>,
    ) -> Result<(), ApiError> {
        use crate::common::db::schema::events;
        let row = Item::row_for_update(conn, &item_id.to_string())?;
        let stamp = at.naive_utc();
        let category = category_on_board(conn, column, row.board_id)?;
        let rank = if column == row.column_id {
            row.rank.clone()
        } else {
            bottom_rank(conn, column)?
        };
        diesel::update(items::table.find(row.id))
            .set((
                items::created_at.eq(stamp),
                items::created_by.eq(author),
                items::column_id.eq(column),
                items::rank.eq(&rank),
                items::started_at
                    .eq((category == Some(ColumnCategory::InProgress)).then_some(stamp)),
                items::done_at.eq((category == Some(ColumnCategory::Done)).then_some(stamp)),
            ))
            .execute(conn)?;
        let created: Option<(i64, String)> = events::table
            .filter(
                events::entity_type
                    .eq("item")
                    .and(events::entity_id.eq(row.id))
                    .and(events::kind.eq("created")),
            )
            .select((events::id, events::data))
            .first(conn)
            .optional()?;
        if let Some((event, data)) = created {
            let mut data: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
            data["column"] = json!(column);
            diesel::update(events::table.find(event))
                .set((
                    events::created_at.eq(stamp),
                    events::actor_id.eq(author),
                    events::data.eq(data.to_string()),
                ))
                .execute(conn)?;
            history::events_rewritten(row.id);
        }
        Ok(())
    }
}
