//! The data the reports derive from the items' history: each item's stays in columns
//! (`item_intervals`) and its start, finish and reopenings (`item_flow`), by the definitions of
//! the flow report (README, "Reports"). Kept in the transaction that writes an item's
//! `created`, `moved` or `deleted` event (the kernel's history calls [`refresh`]), so that
//! imported, backdated history counts like any other; [`rebuild`] recomputes all of it.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::board::model::ColumnCategory;
use crate::common::db::DbConnection;
use crate::common::db::schema::{board_columns, events, item_flow, item_intervals, items};
use crate::common::error::ApiError;
use crate::common::history::{Arrival, FlowChange, FlowEvent, NewEvent};

/// One stay of an item in a column.
#[derive(Debug, Clone, PartialEq)]
pub struct Stay {
    /// The column.
    pub column_id: i64,
    /// Its category (when it was derived).
    pub category: ColumnCategory,
    /// When the item entered it.
    pub entered_at: NaiveDateTime,
    /// When it left (`None`: still there, or deleted there).
    pub left_at: Option<NaiveDateTime>,
}

/// An item's flow by the definitions: start, finish, reopenings, time in progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Flow {
    /// The first entry into an `in_progress` or `done` column after the latest entry into a
    /// `todo` column.
    pub started_at: Option<NaiveDateTime>,
    /// The latest entry into a `done` column, while the item is still in one.
    pub finished_at: Option<NaiveDateTime>,
    /// How often the item left a `done` column.
    pub reopen_count: i32,
    /// Finished without a stay in an `in_progress` column since its start.
    pub skipped_wip: bool,
    /// Seconds spent in `in_progress` columns, closed stays only.
    pub progress_seconds: i64,
}

/// The flow of an item that made `stays` (in order).
pub fn flow_of(stays: &[Stay]) -> Flow {
    let mut flow = Flow::default();
    let mut previous: Option<ColumnCategory> = None;
    let mut progressed_since_start = false;
    for stay in stays {
        if previous == Some(ColumnCategory::Done) && stay.category != ColumnCategory::Done {
            flow.reopen_count += 1;
        }
        match stay.category {
            ColumnCategory::Todo => {
                // A false start (or a new beginning): the start is reset.
                flow.started_at = None;
                flow.finished_at = None;
                progressed_since_start = false;
            }
            ColumnCategory::InProgress => {
                if flow.started_at.is_none() {
                    flow.started_at = Some(stay.entered_at);
                }
                flow.finished_at = None;
                progressed_since_start = true;
                if let Some(left) = stay.left_at {
                    flow.progress_seconds += (left - stay.entered_at).num_seconds().max(0);
                }
            }
            ColumnCategory::Done => {
                if flow.started_at.is_none() {
                    flow.started_at = Some(stay.entered_at);
                }
                flow.finished_at = Some(stay.entered_at);
            }
        }
        previous = Some(stay.category);
    }
    flow.skipped_wip = flow.finished_at.is_some() && !progressed_since_start;
    flow
}

/// An item's stays from its `created`, `moved` and `deleted` events `(kind, data, at)` in
/// order; columns unknown to `categories` (deleted since) count as `todo`.
pub fn stays_of(
    events: &[(String, String, NaiveDateTime)],
    categories: &HashMap<i64, ColumnCategory>,
) -> (Vec<Stay>, Option<NaiveDateTime>) {
    let mut stays: Vec<Stay> = Vec::new();
    let mut deleted_at = None;
    for (kind, data, at) in events {
        let data: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        let column = match kind.as_str() {
            "created" => data["column"].as_i64(),
            "moved" => data["to_column"].as_i64(),
            "deleted" => {
                deleted_at = Some(*at);
                None
            }
            _ => None,
        };
        if kind == "deleted" {
            continue;
        }
        let Some(column) = column else { continue };
        if let Some(last) = stays.last_mut() {
            if last.column_id == column {
                continue;
            }
            last.left_at = Some(*at);
        }
        stays.push(Stay {
            column_id: column,
            category: categories
                .get(&column)
                .copied()
                .unwrap_or(ColumnCategory::Todo),
            entered_at: *at,
            left_at: None,
        });
    }
    (stays, deleted_at)
}

/// Every column's category.
fn categories(conn: &mut DbConnection) -> Result<HashMap<i64, ColumnCategory>, ApiError> {
    let rows: Vec<(i64, String)> = board_columns::table
        .select((board_columns::id, board_columns::category))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, c)| Some((id, ColumnCategory::parse(&c)?)))
        .collect())
}

type EventRow = (i64, String, String, NaiveDateTime);

/// The `created`, `moved` and `deleted` events of `ids`, by item, in time order (ties in the
/// order they were written).
fn flow_events(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<EventRow>, ApiError> {
    Ok(events::table
        .filter(
            events::entity_type
                .eq("item")
                .and(events::entity_id.eq_any(ids))
                .and(events::kind.eq_any(crate::common::history::FLOW_KINDS)),
        )
        .order((events::entity_id, events::created_at, events::id))
        .select((
            events::entity_id,
            events::kind,
            events::data,
            events::created_at,
        ))
        .load(conn)?)
}

/// Replaces the derived data of `ids` by what their history says, in the caller's transaction.
pub fn refresh(conn: &mut DbConnection, ids: &[i64]) -> Result<(), ApiError> {
    let categories = categories(conn)?;
    for chunk in ids.chunks(500) {
        let boards: HashMap<i64, (i64, NaiveDateTime)> = items::table
            .filter(items::id.eq_any(chunk))
            .select((items::id, items::board_id, items::created_at))
            .load::<(i64, i64, NaiveDateTime)>(conn)?
            .into_iter()
            .map(|(id, board, created)| (id, (board, created)))
            .collect();
        let rows = flow_events(conn, chunk)?;
        diesel::delete(item_intervals::table.filter(item_intervals::item_id.eq_any(chunk)))
            .execute(conn)?;
        diesel::delete(item_flow::table.filter(item_flow::item_id.eq_any(chunk))).execute(conn)?;
        write(conn, &rows, &boards, &categories)?;
    }
    Ok(())
}

/// Brings the derived data up to date after `written` (an item's events of
/// [`crate::common::history::FLOW_KINDS`] in the order they were written, inside their transaction): the
/// common cases — a new item, a move that is the item's latest, a deletion — are applied as
/// they are, in a few prepared statements; anything else (several events of one item, a
/// backdated move, a move to another board) recomputes the item from its history
/// ([`refresh`]). Either way the rows are those [`rebuild`] would write.
pub fn update(conn: &mut DbConnection, written: &[FlowEvent]) -> Result<(), ApiError> {
    let mut per_item: HashMap<i64, usize> = HashMap::new();
    for event in written {
        *per_item.entry(event.item_id).or_default() += 1;
    }
    let mut replay: Vec<i64> = Vec::new();
    for event in written {
        let alone = per_item.get(&event.item_id) == Some(&1);
        if !alone || !apply(conn, event)? {
            replay.push(event.item_id);
        }
    }
    if !replay.is_empty() {
        replay.sort_unstable();
        replay.dedup();
        refresh(conn, &replay)?;
    }
    Ok(())
}

/// Applies one event to the item's derived data when that can be done exactly; `false` when
/// the item is to be recomputed instead (nothing was written then).
fn apply(conn: &mut DbConnection, event: &FlowEvent) -> Result<bool, ApiError> {
    let item = event.item_id;
    match event.change {
        FlowChange::Arrived(arrival) => {
            let Some(category) = ColumnCategory::parse(arrival.category) else {
                return Ok(false);
            };
            let stay = Stay {
                column_id: arrival.column_id,
                category,
                entered_at: event.at,
                left_at: None,
            };
            insert_first_stay(conn, item, arrival.board_id, arrival.created_at, &stay)?;
            Ok(true)
        }
        FlowChange::Created(Some(column)) => {
            // A new item: one stay, in its first column (the item and the column in one
            // statement).
            let found: Option<(i64, NaiveDateTime, i64, String)> = items::table
                .inner_join(board_columns::table.on(board_columns::id.eq(column)))
                .filter(items::id.eq(item))
                .select((
                    items::board_id,
                    items::created_at,
                    board_columns::board_id,
                    board_columns::category,
                ))
                .first(conn)
                .optional()?;
            let Some((board, created_at, column_board, category)) = found else {
                return Ok(false);
            };
            let Some(category) = ColumnCategory::parse(&category) else {
                return Ok(false);
            };
            if column_board != board {
                return Ok(false);
            }
            let stay = Stay {
                column_id: column,
                category,
                entered_at: event.at,
                left_at: None,
            };
            insert_first_stay(conn, item, board, created_at, &stay)?;
            Ok(true)
        }
        FlowChange::Moved(Some(column)) => {
            let mut stays = stays_stored(conn, item)?;
            let Some(last) = stays.last() else {
                return Ok(false);
            };
            // Only a move after the item's present stay, on its board, extends the history
            // as it stands; a backdated one reorders it.
            if last.stay.left_at.is_some() || event.at < last.stay.entered_at {
                return Ok(false);
            }
            if last.stay.column_id == column {
                // Not a move between columns: the stays are unchanged.
                return Ok(true);
            }
            let Some((board, category)) = column_of(conn, column)? else {
                return Ok(false);
            };
            if board != last.board_id {
                return Ok(false);
            }
            let open_id = last.id;
            diesel::update(item_intervals::table.find(open_id))
                .set(item_intervals::left_at.eq(event.at))
                .execute(conn)?;
            let stay = Stay {
                column_id: column,
                category,
                entered_at: event.at,
                left_at: None,
            };
            insert_stay(conn, item, board, &stay)?;
            if let Some(last) = stays.last_mut() {
                last.stay.left_at = Some(event.at);
            }
            let mut path: Vec<Stay> = stays.into_iter().map(|s| s.stay).collect();
            path.push(stay);
            let flow = flow_of(&path);
            let changed = diesel::update(item_flow::table.find(item))
                .set((
                    item_flow::started_at.eq(flow.started_at),
                    item_flow::finished_at.eq(flow.finished_at),
                    item_flow::reopen_count.eq(flow.reopen_count),
                    item_flow::skipped_wip.eq(flow.skipped_wip),
                    item_flow::progress_seconds.eq(flow.progress_seconds),
                ))
                .execute(conn)?;
            if changed != 1 {
                // No flow row to update: written above for nothing, so recomputed.
                refresh(conn, &[item])?;
            }
            Ok(true)
        }
        FlowChange::Deleted => {
            // The present stay ends with the item; start and finish stay as they were.
            let flows = diesel::update(
                item_flow::table
                    .find(item)
                    .filter(item_flow::deleted_at.is_null()),
            )
            .set(item_flow::deleted_at.eq(event.at))
            .execute(conn)?;
            if flows != 1 {
                return Ok(false);
            }
            diesel::update(
                item_intervals::table.filter(
                    item_intervals::item_id
                        .eq(item)
                        .and(item_intervals::left_at.is_null()),
                ),
            )
            .set(item_intervals::left_at.eq(event.at))
            .execute(conn)?;
            Ok(true)
        }
        FlowChange::Created(None) | FlowChange::Moved(None) | FlowChange::Rewritten => Ok(false),
    }
}

/// The board and category of a column, if it exists and its category is known.
fn column_of(
    conn: &mut DbConnection,
    column: i64,
) -> Result<Option<(i64, ColumnCategory)>, ApiError> {
    let row: Option<(i64, String)> = board_columns::table
        .find(column)
        .select((board_columns::board_id, board_columns::category))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(board, category)| Some((board, ColumnCategory::parse(&category)?))))
}

/// A stored stay with its row's id and board.
struct StoredStay {
    id: i64,
    board_id: i64,
    stay: Stay,
}

/// The item's stored stays, in order.
fn stays_stored(conn: &mut DbConnection, item: i64) -> Result<Vec<StoredStay>, ApiError> {
    let rows: Vec<(i64, i64, i64, String, NaiveDateTime, Option<NaiveDateTime>)> =
        item_intervals::table
            .filter(item_intervals::item_id.eq(item))
            .order((item_intervals::entered_at, item_intervals::id))
            .select((
                item_intervals::id,
                item_intervals::board_id,
                item_intervals::column_id,
                item_intervals::category,
                item_intervals::entered_at,
                item_intervals::left_at,
            ))
            .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, board_id, column_id, category, entered_at, left_at)| StoredStay {
                id,
                board_id,
                stay: Stay {
                    column_id,
                    category: ColumnCategory::parse(&category).unwrap_or(ColumnCategory::Todo),
                    entered_at,
                    left_at,
                },
            },
        )
        .collect())
}

/// Inserts one stay of `item` (a prepared statement).
fn insert_stay(
    conn: &mut DbConnection,
    item: i64,
    board: i64,
    stay: &Stay,
) -> Result<(), ApiError> {
    diesel::insert_into(item_intervals::table)
        .values((
            item_intervals::item_id.eq(item),
            item_intervals::board_id.eq(board),
            item_intervals::column_id.eq(stay.column_id),
            item_intervals::category.eq(stay.category.as_str()),
            item_intervals::entered_at.eq(stay.entered_at),
            item_intervals::left_at.eq(stay.left_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Inserts a new item's only stay and its flow: on PostgreSQL in one statement, as this runs
/// under the board's lock that other creations queue behind; SQLite has no `INSERT` inside
/// `WITH`, and no round trip to save.
fn insert_first_stay(
    conn: &mut DbConnection,
    item: i64,
    board: i64,
    created_at: NaiveDateTime,
    stay: &Stay,
) -> Result<(), ApiError> {
    if let DbConnection::Postgresql(pg) = conn {
        FirstStay::new(item, board, created_at, stay).execute(pg)?;
        return Ok(());
    }
    let flow = flow_of(std::slice::from_ref(stay));
    insert_stay(conn, item, board, stay)?;
    diesel::insert_into(item_flow::table)
        .values((
            item_flow::item_id.eq(item),
            item_flow::board_id.eq(board),
            item_flow::created_at.eq(created_at),
            item_flow::started_at.eq(flow.started_at),
            item_flow::finished_at.eq(flow.finished_at),
            item_flow::reopen_count.eq(flow.reopen_count),
            item_flow::skipped_wip.eq(flow.skipped_wip),
            item_flow::progress_seconds.eq(flow.progress_seconds),
            item_flow::deleted_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?;
    Ok(())
}

/// A new item's stay and flow as one PostgreSQL statement (a data-modifying `WITH`), prepared
/// once per connection ([`crate::prepared_statement`]).
#[derive(Debug, Clone, Copy)]
struct FirstStay {
    item: i64,
    board: i64,
    column: i64,
    category: &'static str,
    entered_at: NaiveDateTime,
    left_at: Option<NaiveDateTime>,
    created_at: NaiveDateTime,
    started_at: Option<NaiveDateTime>,
    finished_at: Option<NaiveDateTime>,
    reopen_count: i32,
    skipped_wip: bool,
    progress_seconds: i64,
}

impl FirstStay {
    fn new(item: i64, board: i64, created_at: NaiveDateTime, stay: &Stay) -> FirstStay {
        let flow = flow_of(std::slice::from_ref(stay));
        FirstStay {
            item,
            board,
            column: stay.column_id,
            category: stay.category.as_str(),
            entered_at: stay.entered_at,
            left_at: stay.left_at,
            created_at,
            started_at: flow.started_at,
            finished_at: flow.finished_at,
            reopen_count: flow.reopen_count,
            skipped_wip: flow.skipped_wip,
            progress_seconds: flow.progress_seconds,
        }
    }

    /// `stay AS (INSERT INTO item_intervals …)`, a `WITH` query of the statement.
    fn push_stay<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        out.push_sql(
            "stay AS (INSERT INTO item_intervals \
             (item_id, board_id, column_id, category, entered_at, left_at) VALUES (",
        );
        out.push_bind_param::<BigInt, _>(&self.item)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.board)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.column)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.category)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.entered_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.left_at)?;
        out.push_sql("))");
        Ok(())
    }

    /// `INSERT INTO item_flow …`.
    fn push_flow<'b>(
        &'b self,
        out: &mut diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Timestamp};
        out.push_sql(
            "INSERT INTO item_flow (item_id, board_id, created_at, started_at, finished_at, \
             reopen_count, skipped_wip, progress_seconds, deleted_at) VALUES (",
        );
        out.push_bind_param::<BigInt, _>(&self.item)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.board)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.started_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamp>, _>(&self.finished_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Integer, _>(&self.reopen_count)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.skipped_wip)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.progress_seconds)?;
        out.push_sql(", NULL)");
        Ok(())
    }
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for FirstStay {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("WITH ");
        self.push_stay(&mut out)?;
        out.push_sql(" ");
        self.push_flow(&mut out)
    }
}

crate::prepared_statement!(FirstStay);

/// A new item's `created` event, its first stay and its flow as one statement, `RETURNING`
/// the event's id: what the history asks of this feature for an item whose creator told
/// where it stands ([`write_arrival`]).
struct FirstStayWithEvent<'a> {
    event: &'a NewEvent<'a>,
    stay: FirstStay,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for FirstStayWithEvent<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql("WITH event AS (");
        diesel::query_builder::QueryFragment::<diesel::pg::Pg>::walk_ast(
            self.event,
            out.reborrow(),
        )?;
        out.push_sql("), ");
        self.stay.push_stay(&mut out)?;
        out.push_sql(", flow AS (");
        self.stay.push_flow(&mut out)?;
        out.push_sql(") SELECT id FROM event");
        Ok(())
    }
}

crate::prepared_statement!(FirstStayWithEvent<'_>, returns diesel::sql_types::BigInt);

/// Writes a new item's `created` event with its first stay and flow in one statement, on
/// PostgreSQL, where a creation holds its board's lock: registered with the history
/// ([`crate::common::history::register_arrival_writer`]). The rows are those [`apply`]
/// writes for the arrival at commit.
pub fn write_arrival(
    conn: &mut diesel::pg::PgConnection,
    event: &NewEvent<'_>,
    arrival: &Arrival,
) -> Result<i64, ApiError> {
    let category = ColumnCategory::parse(arrival.category).ok_or_else(|| {
        ApiError::internal(format!("unknown column category {}", arrival.category))
    })?;
    let stay = Stay {
        column_id: arrival.column_id,
        category,
        entered_at: event.at(),
        left_at: None,
    };
    let stay = FirstStay::new(
        event.entity_id(),
        arrival.board_id,
        arrival.created_at,
        &stay,
    );
    Ok(FirstStayWithEvent { event, stay }.get_result(conn)?)
}

/// Writes the derived data of the items whose events are `rows` (grouped by item).
fn write(
    conn: &mut DbConnection,
    rows: &[EventRow],
    boards: &HashMap<i64, (i64, NaiveDateTime)>,
    categories: &HashMap<i64, ColumnCategory>,
) -> Result<(), ApiError> {
    type IntervalRow = (
        i64,
        i64,
        i64,
        &'static str,
        NaiveDateTime,
        Option<NaiveDateTime>,
    );
    let mut intervals: Vec<IntervalRow> = Vec::new();
    let mut flows = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let item = rows[start].0;
        let end = rows[start..]
            .iter()
            .position(|r| r.0 != item)
            .map_or(rows.len(), |n| start + n);
        let history: Vec<(String, String, NaiveDateTime)> = rows[start..end]
            .iter()
            .map(|(_, kind, data, at)| (kind.clone(), data.clone(), *at))
            .collect();
        start = end;
        let Some((board, created)) = boards.get(&item).copied() else {
            continue;
        };
        let (stays, deleted_at) = stays_of(&history, categories);
        let flow = flow_of(&stays);
        for stay in &stays {
            intervals.push((
                item,
                board,
                stay.column_id,
                stay.category.as_str(),
                stay.entered_at,
                stay.left_at.or(deleted_at),
            ));
        }
        flows.push((item, board, created, flow, deleted_at));
    }
    // Multi-row inserts as SQL text (diesel's batch insert is not available on the
    // multi-engine connection): every value is a number, a timestamp formatted here or a
    // category name, never text from a request.
    for batch in intervals.chunks(500) {
        let values: Vec<String> = batch
            .iter()
            .map(|(item, board, column, category, entered, left)| {
                format!(
                    "({item}, {board}, {column}, '{category}', {}, {})",
                    literal(Some(*entered)),
                    literal(*left)
                )
            })
            .collect();
        diesel::sql_query(format!(
            "INSERT INTO item_intervals (item_id, board_id, column_id, category, entered_at, \
             left_at) VALUES {}",
            values.join(", ")
        ))
        .execute(conn)?;
    }
    for batch in flows.chunks(500) {
        let values: Vec<String> = batch
            .iter()
            .map(|(item, board, created, flow, deleted)| {
                format!(
                    "({item}, {board}, {}, {}, {}, {}, {}, {}, {})",
                    literal(Some(*created)),
                    literal(flow.started_at),
                    literal(flow.finished_at),
                    flow.reopen_count,
                    if flow.skipped_wip { "TRUE" } else { "FALSE" },
                    flow.progress_seconds,
                    literal(*deleted)
                )
            })
            .collect();
        diesel::sql_query(format!(
            "INSERT INTO item_flow (item_id, board_id, created_at, started_at, finished_at, \
             reopen_count, skipped_wip, progress_seconds, deleted_at) VALUES {}",
            values.join(", ")
        ))
        .execute(conn)?;
    }
    Ok(())
}

/// A timestamp as an SQL literal both engines read as diesel writes it (`NULL` for none).
fn literal(at: Option<NaiveDateTime>) -> String {
    match at {
        Some(at) => format!("'{}'", at.format("%Y-%m-%d %H:%M:%S%.f")),
        None => "NULL".to_string(),
    }
}

/// Recomputes the derived data of every item from the history, in the caller's transaction;
/// returns how many items it covers. `opsboard reports rebuild` runs it.
pub fn rebuild(conn: &mut DbConnection) -> Result<usize, ApiError> {
    diesel::delete(item_intervals::table).execute(conn)?;
    diesel::delete(item_flow::table).execute(conn)?;
    let categories = categories(conn)?;
    let all: Vec<(i64, i64, NaiveDateTime)> = items::table
        .order(items::id)
        .select((items::id, items::board_id, items::created_at))
        .load(conn)?;
    for chunk in all.chunks(2000) {
        let ids: Vec<i64> = chunk.iter().map(|r| r.0).collect();
        let boards: HashMap<i64, (i64, NaiveDateTime)> = chunk
            .iter()
            .map(|(id, board, created)| (*id, (*board, *created)))
            .collect();
        let rows = flow_events(conn, &ids)?;
        write(conn, &rows, &boards, &categories)?;
    }
    Ok(all.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnCategory::{Done, InProgress, Todo};

    fn at(hour: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2027, 1, 4)
            .and_then(|d| d.and_hms_opt(hour, 0, 0))
            .expect("valid")
    }

    fn stays(path: &[(ColumnCategory, u32)]) -> Vec<Stay> {
        let mut out: Vec<Stay> = Vec::new();
        for (i, (category, hour)) in path.iter().enumerate() {
            if let Some(last) = out.last_mut() {
                last.left_at = Some(at(*hour));
            }
            out.push(Stay {
                column_id: i as i64,
                category: *category,
                entered_at: at(*hour),
                left_at: None,
            });
        }
        out
    }

    #[test]
    fn a_false_start_resets_the_start_and_a_reopening_withdraws_the_finish() {
        let flow = flow_of(&stays(&[
            (Todo, 1),
            (InProgress, 2),
            (Todo, 3),
            (InProgress, 4),
        ]));
        assert_eq!(flow.started_at, Some(at(4)));
        assert_eq!(flow.progress_seconds, 3600);
        let reopened = flow_of(&stays(&[
            (Todo, 1),
            (InProgress, 2),
            (Done, 3),
            (InProgress, 5),
        ]));
        assert_eq!(
            (
                reopened.started_at,
                reopened.finished_at,
                reopened.reopen_count
            ),
            (Some(at(2)), None, 1)
        );
        let again = flow_of(&stays(&[
            (InProgress, 2),
            (Done, 3),
            (InProgress, 5),
            (Done, 7),
        ]));
        assert_eq!(
            (
                again.started_at,
                again.finished_at,
                again.reopen_count,
                again.skipped_wip
            ),
            (Some(at(2)), Some(at(7)), 1, false)
        );
    }

    #[test]
    fn todo_straight_to_done_starts_and_finishes_at_once() {
        let flow = flow_of(&stays(&[(Todo, 1), (Done, 6)]));
        assert_eq!(
            (flow.started_at, flow.finished_at, flow.skipped_wip),
            (Some(at(6)), Some(at(6)), true)
        );
    }
}
