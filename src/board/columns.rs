//! The columns of a board, its workflow: adding, changing, moving and deleting one, and the
//! renumbering that keeps their positions 0, 1, 2, … Every change takes the board's lock first
//! ([`Board::add_column`], [`Board::update_column`], [`Board::delete_column`]).

use diesel::prelude::*;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::board::model::{
    Board, Column, ColumnCategory, ColumnRow, NewColumn, check_name, check_wip, insert_column,
};
use crate::common::actor::Actor;
use crate::common::db::schema::{board_columns, items};
use crate::common::db::{DbConnection, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::version::Precondition;

/// The body of `PATCH /api/v1/boards/{key}/columns/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"wip_limit": 4, "position": 1}))]
pub struct ColumnChanges {
    /// New name.
    #[schema(
        min_length = 1,
        max_length = 60,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: Option<String>,
    /// New category.
    pub category: Option<ColumnCategory>,
    /// New WIP limit; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(minimum = 1, maximum = 1000)]
    pub wip_limit: Option<Option<i32>>,
    /// Whether an incident waiting here stops its SLA clock.
    pub pauses_sla: Option<bool>,
    /// New place in the workflow; the other columns shift.
    #[schema(minimum = 0)]
    pub position: Option<i32>,
}

impl Board {
    /// Adds a column at `position` (the end when omitted); the columns after it shift.
    pub fn add_column(
        conn: &mut DbConnection,
        key: &str,
        form: &NewColumn,
        actor: &Actor,
    ) -> Result<Column, ApiError> {
        let mut errors = Vec::new();
        let name = check_name("name", &form.name, 60, &mut errors);
        check_wip("wip_limit", form.wip_limit, &mut errors);
        if form.position.is_some_and(|p| p < 0) {
            errors.push(FieldError::new("position", "must be 0 or more"));
        }
        ApiError::from_fields(errors)?;
        let board = Board::find_for_update(conn, key)?;
        ensure_unique_name(&board, &name, None)?;
        let count = i32::try_from(board.columns.len()).unwrap_or(i32::MAX);
        let position = form.position.map_or(count, |p| p.min(count));
        let id = insert_column(
            conn,
            board.id,
            &name,
            position,
            form.category,
            form.wip_limit,
            form.pauses_sla,
        )?;
        let mut order: Vec<i64> = board.columns.iter().map(|c| c.id).collect();
        order.insert(
            usize::try_from(position)
                .unwrap_or(order.len())
                .min(order.len()),
            id,
        );
        renumber(conn, &order, Some(id))?;
        history::record(
            conn,
            Subject {
                entity_type: "board",
                entity_id: board.id,
            },
            "column_added",
            actor,
            json!({"column": id, "name": name, "position": position}),
        )?;
        column_by_id(conn, board.id, id)
    }

    /// Renames, re-categorizes, re-limits or moves a column, honouring `If-Match`.
    pub fn update_column(
        conn: &mut DbConnection,
        key: &str,
        column_id: i64,
        changes: &ColumnChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<Column, ApiError> {
        let mut errors = Vec::new();
        let name = changes
            .name
            .as_deref()
            .map(|n| check_name("name", n, 60, &mut errors));
        if let Some(wip) = changes.wip_limit {
            check_wip("wip_limit", wip, &mut errors);
        }
        if changes.position.is_some_and(|p| p < 0) {
            errors.push(FieldError::new("position", "must be 0 or more"));
        }
        ApiError::from_fields(errors)?;
        let board = Board::find_for_update(conn, key)?;
        let current = board
            .columns
            .iter()
            .find(|c| c.id == column_id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("Board {key} has no column {column_id}.")))?;
        expected.check(current.version)?;
        if let Some(name) = &name {
            ensure_unique_name(&board, name, Some(column_id))?;
        }
        let new_name = name.unwrap_or(current.name.clone());
        let new_category = changes.category.unwrap_or(current.category);
        let new_wip = changes.wip_limit.unwrap_or(current.wip_limit);
        let new_pauses = changes.pauses_sla.unwrap_or(current.pauses_sla);
        let mut changed = Diff::new();
        changed.field("name", &current.name, &new_name);
        changed.field("category", current.category, new_category);
        changed.field("wip_limit", current.wip_limit, new_wip);
        changed.field("pauses_sla", current.pauses_sla, new_pauses);
        let mut moved_to = current.position;
        if let Some(position) = changes.position {
            let mut order: Vec<i64> = board
                .columns
                .iter()
                .map(|c| c.id)
                .filter(|id| *id != column_id)
                .collect();
            let at = usize::try_from(position)
                .unwrap_or(order.len())
                .min(order.len());
            order.insert(at, column_id);
            let new_position = i32::try_from(at).unwrap_or(i32::MAX);
            if new_position != current.position {
                changed.field("position", current.position, new_position);
                // The others here; this column's position goes with its versioned write.
                renumber(conn, &order, Some(column_id))?;
                moved_to = new_position;
            }
        }
        if changed.is_empty() {
            return Ok(current);
        }
        crate::versioned_write!(
            conn,
            board_columns,
            column_id,
            current.version,
            (
                board_columns::name.eq(&new_name),
                board_columns::category.eq(new_category.as_str()),
                board_columns::wip_limit.eq(new_wip),
                board_columns::pauses_sla.eq(new_pauses),
                board_columns::position.eq(moved_to),
            ),
        )?;
        changed.note("column", json!(column_id));
        history::record(
            conn,
            Subject {
                entity_type: "board",
                entity_id: board.id,
            },
            "column_changed",
            actor,
            changed.into_data(),
        )?;
        column_by_id(conn, board.id, column_id)
    }

    /// Deletes an empty column; the last column of a board stays.
    pub fn delete_column(
        conn: &mut DbConnection,
        key: &str,
        column_id: i64,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<(), ApiError> {
        let board = Board::find_for_update(conn, key)?;
        // Lock the column too: a move into it holds this lock while it counts the column.
        crate::common::db::lock(conn, crate::common::db::Lock::Column(column_id))?;
        let current = board
            .columns
            .iter()
            .find(|c| c.id == column_id)
            .cloned()
            .ok_or_else(|| ApiError::NotFound(format!("Board {key} has no column {column_id}.")))?;
        expected.check(current.version)?;
        if board.columns.len() == 1 {
            return Err(ApiError::Conflict(
                "A board keeps at least one column.".into(),
            ));
        }
        let live: Vec<String> = items::table
            .filter(
                items::column_id
                    .eq(column_id)
                    .and(items::deleted_at.is_null()),
            )
            .order(items::rank)
            .select(items::key)
            .load(conn)?;
        if !live.is_empty() {
            return Err(ApiError::Conflict(format!(
                "Column {} still holds {} item(s): {}. Move them first.",
                current.name,
                live.len(),
                live.join(", ")
            )));
        }
        let order: Vec<i64> = board
            .columns
            .iter()
            .map(|c| c.id)
            .filter(|id| *id != column_id)
            .collect();
        // Tombstones of deleted items keep a column; they move with no trace to the first one.
        if let Some(first) = order.first() {
            diesel::update(items::table.filter(items::column_id.eq(column_id)))
                .set(items::column_id.eq(first))
                .execute(conn)?;
        }
        crate::versioned_delete!(conn, board_columns, column_id, current.version)?;
        renumber(conn, &order, None)?;
        history::record(
            conn,
            Subject {
                entity_type: "board",
                entity_id: board.id,
            },
            "column_deleted",
            actor,
            json!({"column": column_id, "name": current.name}),
        )
    }
}

fn ensure_unique_name(board: &Board, name: &str, except: Option<i64>) -> Result<(), ApiError> {
    let clash = board
        .columns
        .iter()
        .any(|c| Some(c.id) != except && c.name.to_lowercase() == name.to_lowercase());
    if clash {
        Err(ApiError::Conflict(format!(
            "Board {} has a column named {name} already.",
            board.key
        )))
    } else {
        Ok(())
    }
}

/// Gives the columns in `order` the positions 0, 1, … (all but `except`, which its caller
/// writes itself); a column whose position changes moves to its next version, so that its
/// ETag names the state it has. Called under the board's lock, which every column write
/// takes, so the relative bump cannot lose a write.
fn renumber(conn: &mut DbConnection, order: &[i64], except: Option<i64>) -> Result<(), ApiError> {
    for (position, id) in order.iter().enumerate() {
        if Some(*id) == except {
            continue;
        }
        let position = i32::try_from(position).unwrap_or(i32::MAX);
        diesel::update(
            board_columns::table.filter(
                board_columns::id
                    .eq(id)
                    .and(board_columns::position.ne(position)),
            ),
        )
        .set((
            board_columns::position.eq(position),
            board_columns::version.eq(board_columns::version + 1),
            board_columns::updated_at.eq(now()),
        ))
        .execute(conn)?;
    }
    Ok(())
}

fn column_by_id(conn: &mut DbConnection, board_id: i64, id: i64) -> Result<Column, ApiError> {
    board_columns::table
        .filter(
            board_columns::id
                .eq(id)
                .and(board_columns::board_id.eq(board_id)),
        )
        .select(ColumnRow::as_select())
        .first(conn)?
        .into_api()
}
