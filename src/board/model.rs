//! Boards and their columns: the stored rows, the API shapes, the forms and the queries. The
//! changes of a board's columns are in [`crate::board::columns`].

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::common::actor::Actor;
use crate::common::db::schema::{board_columns, boards};
use crate::common::db::{DbConnection, lower, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::person::PersonId;
use crate::common::text::{check_text, required_text};
use crate::common::version::Precondition;

/// Where a column stands in the flow; flow metrics and `started_at`/`done_at` follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnCategory {
    /// Waiting to be worked on.
    Todo,
    /// Being worked on.
    InProgress,
    /// Finished.
    Done,
}

impl ColumnCategory {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Done => "done",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Todo, Self::InProgress, Self::Done]
            .into_iter()
            .find(|c| c.as_str() == text)
    }
}

/// The workflow a board gets when it is created without columns.
pub const DEFAULT_WORKFLOW: &[(&str, ColumnCategory, Option<i32>)] = &[
    ("Backlog", ColumnCategory::Todo, None),
    ("Ready", ColumnCategory::Todo, None),
    ("In progress", ColumnCategory::InProgress, Some(5)),
    ("Review", ColumnCategory::InProgress, Some(3)),
    ("Done", ColumnCategory::Done, None),
];

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = boards)]
struct BoardRow {
    id: i64,
    key: String,
    name: String,
    description: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
    lead_id: Option<i64>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = board_columns)]
pub(super) struct ColumnRow {
    id: i64,
    board_id: i64,
    name: String,
    position: i32,
    category: String,
    wip_limit: Option<i32>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
    pauses_sla: bool,
}

/// A step of a board's workflow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "name": "In progress", "position": 2, "category": "in_progress", "wip_limit": 5, "pauses_sla": false,
    "created_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T08:00:00Z", "version": 1
}))]
pub struct Column {
    /// Numeric id, used to address the column.
    pub id: i64,
    /// Name, unique on its board regardless of case.
    pub name: String,
    /// Place in the workflow, from 0.
    pub position: i32,
    /// Where the column stands in the flow.
    pub category: ColumnCategory,
    /// Most items the column should hold; `null` for no limit.
    pub wip_limit: Option<i32>,
    /// Whether an incident waiting here stops its SLA clock ("Waiting for reporter").
    pub pauses_sla: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// A kanban board with its columns in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Board {
    /// Numeric id.
    pub id: i64,
    /// Upper-case key, unique and immutable; items are numbered `KEY-1`, `KEY-2`, …
    pub key: String,
    /// Name.
    pub name: String,
    /// Description (Markdown).
    pub description: String,
    /// Id of the board lead, accountable for items that get no accountable person from
    /// their request or their service's RACI template (such as demands for a new service).
    pub lead: Option<i64>,
    /// The workflow, in position order.
    pub columns: Vec<Column>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (name or description).
    pub updated_at: DateTime<Utc>,
    /// Increases with every change of name or description; send it back in `If-Match`.
    pub version: i64,
}

/// A column in a new board.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewColumn {
    /// Name, 1–60 characters, unique on the board.
    #[schema(
        min_length = 1,
        max_length = 60,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: String,
    /// Where the column stands in the flow.
    pub category: ColumnCategory,
    /// Most items it should hold (1–1000); omit for no limit.
    #[schema(minimum = 1, maximum = 1000)]
    pub wip_limit: Option<i32>,
    /// Whether an incident waiting here stops its SLA clock; `false` when omitted.
    #[serde(default)]
    pub pauses_sla: bool,
    /// Where to insert it (from 0); at the end when omitted.
    #[schema(minimum = 0)]
    pub position: Option<i32>,
}

/// The body of `POST /api/v1/boards`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"key": "OPS", "name": "Operations", "description": "Incidents and tasks of running services"}))]
pub struct NewBoard {
    /// 2–10 upper-case letters and digits, starting with a letter. Immutable.
    #[schema(min_length = 2, max_length = 10, pattern = "^[A-Z][A-Z0-9]{1,9}$")]
    pub key: String,
    /// Name, 1–100 characters.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: String,
    /// Description (Markdown).
    #[serde(default)]
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// The workflow; Backlog → Ready → In progress (WIP 5) → Review (WIP 3) → Done when omitted.
    /// 1 to 30 columns.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<30, _, _>"
    )]
    #[schema(min_items = 1, max_items = 30)]
    pub columns: Option<Vec<NewColumn>>,
    /// The board lead (an active user, by id or e-mail), accountable when nobody else is.
    pub lead: Option<PersonId>,
}

/// The body of `PATCH /api/v1/boards/{key}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Operations and incidents"}))]
pub struct BoardChanges {
    /// New name.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// New board lead (an active user, by id or e-mail); `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub lead: Option<Option<PersonId>>,
}

/// Filters of `GET /api/v1/boards`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardFilter {
    /// Case-insensitive search in key and name.
    pub q: Option<String>,
    /// Only boards changed at or after this instant: an RFC 3339 time, or a span back
    /// from now (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub updated_since: Option<crate::common::query::Since>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ColumnRow {
    pub(super) fn into_api(self) -> Result<Column, ApiError> {
        Ok(Column {
            category: ColumnCategory::parse(&self.category)
                .ok_or_else(|| ApiError::internal(format!("unknown category {}", self.category)))?,
            id: self.id,
            name: self.name,
            position: self.position,
            wip_limit: self.wip_limit,
            pauses_sla: self.pauses_sla,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            version: self.version,
        })
    }
}

pub(super) fn check_name(
    field: &str,
    name: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> String {
    required_text(errors, field, name, max)
}

pub(super) fn check_wip(field: &str, wip: Option<i32>, errors: &mut Vec<FieldError>) {
    if wip.is_some_and(|w| !(1..=1000).contains(&w)) {
        errors.push(FieldError::new(
            field,
            "must be between 1 and 1000, or null for no limit",
        ));
    }
}

/// Whether `key` is a valid board key.
pub fn is_valid_board_key(key: &str) -> bool {
    (2..=10).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_uppercase())
        && key
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn load_columns(
    conn: &mut DbConnection,
    board_ids: &[i64],
) -> Result<Vec<(i64, Column)>, ApiError> {
    board_columns::table
        .filter(board_columns::board_id.eq_any(board_ids))
        .order((
            board_columns::board_id,
            board_columns::position,
            board_columns::id,
        ))
        .select(ColumnRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|row| {
            let board_id = row.board_id;
            row.into_api().map(|c| (board_id, c))
        })
        .collect()
}

fn assemble(conn: &mut DbConnection, rows: Vec<BoardRow>) -> Result<Vec<Board>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut columns = load_columns(conn, &ids)?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let mine = columns
                .iter()
                .filter(|(b, _)| *b == row.id)
                .map(|(_, c)| c.clone())
                .collect();
            columns.retain(|(b, _)| *b != row.id);
            Board {
                id: row.id,
                key: row.key,
                name: row.name,
                description: row.description,
                lead: row.lead_id,
                columns: mine,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
                version: row.version,
            }
        })
        .collect())
}

impl Board {
    fn row(conn: &mut DbConnection, key: &str) -> Result<BoardRow, ApiError> {
        boards::table
            .filter(boards::key.eq(key.to_uppercase()))
            .select(BoardRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("There is no board `{key}`.")))
    }

    /// The stored row of a board, locked until the end of the transaction (see
    /// [`crate::common::db::lock`]): changes of a board and of its set of columns start here, so they
    /// never interleave.
    fn row_for_update(conn: &mut DbConnection, key: &str) -> Result<BoardRow, ApiError> {
        let row = Board::row(conn, key)?;
        if crate::common::db::lock(conn, crate::common::db::Lock::Board(row.id))? {
            return Board::row(conn, key);
        }
        Ok(row)
    }

    /// The board with its columns, locked like [`Board::row_for_update`].
    pub(super) fn find_for_update(conn: &mut DbConnection, key: &str) -> Result<Board, ApiError> {
        let row = Board::row_for_update(conn, key)?;
        assemble(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no board `{key}`.")))
    }

    /// The board with this key (any case), with its columns.
    pub fn find(conn: &mut DbConnection, key: &str) -> Result<Board, ApiError> {
        let row = Board::row(conn, key)?;
        assemble(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no board `{key}`.")))
    }

    /// Creates a board with its workflow (the default one when none is given).
    pub fn create(
        conn: &mut DbConnection,
        form: &NewBoard,
        actor: &Actor,
    ) -> Result<Board, ApiError> {
        let mut errors = Vec::new();
        let key = form.key.trim().to_string();
        if !is_valid_board_key(&key) {
            errors.push(FieldError::new(
                "key",
                "must be 2–10 upper-case letters and digits, starting with a letter, such as OPS",
            ));
        }
        let name = check_name("name", &form.name, 100, &mut errors);
        check_text(&mut errors, "description", &form.description, 20_000);
        let columns: Vec<(String, ColumnCategory, Option<i32>, bool)> = match &form.columns {
            Some(columns) => {
                if columns.is_empty() {
                    errors.push(FieldError::new(
                        "columns",
                        "a board needs at least one column",
                    ));
                }
                let mut seen = Vec::new();
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let name =
                            check_name(&format!("columns[{i}].name"), &c.name, 60, &mut errors);
                        if seen.contains(&name.to_lowercase()) {
                            errors.push(FieldError::new(
                                format!("columns[{i}].name"),
                                "is used twice",
                            ));
                        }
                        seen.push(name.to_lowercase());
                        check_wip(&format!("columns[{i}].wip_limit"), c.wip_limit, &mut errors);
                        (name, c.category, c.wip_limit, c.pauses_sla)
                    })
                    .collect()
            }
            None => DEFAULT_WORKFLOW
                .iter()
                .map(|(n, c, w)| (n.to_string(), *c, *w, false))
                .collect(),
        };
        let lead = check_lead(conn, form.lead.as_ref(), &mut errors)?;
        ApiError::from_fields(errors)?;
        let taken = boards::table
            .filter(boards::key.eq(&key))
            .select(boards::id)
            .first::<i64>(conn)
            .optional()?;
        if taken.is_some() {
            return Err(ApiError::Conflict(format!(
                "A board with the key {key} exists already."
            )));
        }
        let stamp = now();
        let id: i64 = diesel::insert_into(boards::table)
            .values((
                boards::key.eq(&key),
                boards::name.eq(&name),
                boards::description.eq(&form.description),
                boards::next_item_number.eq(1_i64),
                boards::lead_id.eq(lead),
                boards::created_at.eq(stamp),
                boards::updated_at.eq(stamp),
                boards::version.eq(1_i64),
            ))
            .returning(boards::id)
            .get_result(conn)?;
        for (position, (name, category, wip, pauses_sla)) in columns.iter().enumerate() {
            insert_column(
                conn,
                id,
                name,
                i32::try_from(position).unwrap_or(i32::MAX),
                *category,
                *wip,
                *pauses_sla,
            )?;
        }
        history::record(
            conn,
            Subject {
                entity_type: "board",
                entity_id: id,
            },
            "created",
            actor,
            json!({"key": key, "name": name, "columns": columns.iter().map(|c| &c.0).collect::<Vec<_>>()}),
        )?;
        Board::find(conn, &key)
    }

    /// One page of boards in id order, each with its columns (two queries).
    pub fn list(conn: &mut DbConnection, filter: &BoardFilter) -> Result<Page<Board>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let mut query = boards::table
            .select(BoardRow::as_select())
            .order(boards::id.asc())
            .into_boxed();
        if let Some(after) = paging.after::<i64>()? {
            query = query.filter(boards::id.gt(after));
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(boards::updated_at.ge(since.0.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            query = query.filter(
                lower(boards::key)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(boards::name).like(pattern).escape('\\')),
            );
        }
        let rows = query.limit(limit + 1).load(conn)?;
        let boards = assemble(conn, rows)?;
        Ok(Page::from_rows(boards, limit, |b| b.id))
    }

    /// Changes name or description, honouring `If-Match`.
    pub fn update(
        conn: &mut DbConnection,
        key: &str,
        changes: &BoardChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<Board, ApiError> {
        let mut errors = Vec::new();
        let name = changes
            .name
            .as_deref()
            .map(|n| check_name("name", n, 100, &mut errors));
        if let Some(d) = &changes.description {
            check_text(&mut errors, "description", d, 20_000);
        }
        let lead = match &changes.lead {
            Some(lead) => Some(check_lead(conn, lead.as_ref(), &mut errors)?),
            None => None,
        };
        ApiError::from_fields(errors)?;
        let row = Board::row_for_update(conn, key)?;
        expected.check(row.version)?;
        let new_name = name.unwrap_or(row.name.clone());
        let new_description = changes
            .description
            .clone()
            .unwrap_or(row.description.clone());
        let new_lead = lead.unwrap_or(row.lead_id);
        if new_name == row.name && new_description == row.description && new_lead == row.lead_id {
            return Board::find(conn, key);
        }
        crate::versioned_write!(
            conn,
            boards,
            row.id,
            row.version,
            (
                boards::name.eq(&new_name),
                boards::description.eq(&new_description),
                boards::lead_id.eq(new_lead),
            ),
        )?;
        history::record(
            conn,
            Subject {
                entity_type: "board",
                entity_id: row.id,
            },
            "updated",
            actor,
            json!({"name": {"old": row.name, "new": new_name}, "description_changed": new_description != row.description,
                   "lead": {"old": row.lead_id, "new": new_lead}}),
        )?;
        Board::find(conn, key)
    }
}

pub(super) fn insert_column(
    conn: &mut DbConnection,
    board_id: i64,
    name: &str,
    position: i32,
    category: ColumnCategory,
    wip_limit: Option<i32>,
    pauses_sla: bool,
) -> Result<i64, ApiError> {
    let stamp = now();
    Ok(diesel::insert_into(board_columns::table)
        .values((
            board_columns::board_id.eq(board_id),
            board_columns::name.eq(name),
            board_columns::position.eq(position),
            board_columns::category.eq(category.as_str()),
            board_columns::wip_limit.eq(wip_limit),
            board_columns::pauses_sla.eq(pauses_sla),
            board_columns::created_at.eq(stamp),
            board_columns::updated_at.eq(stamp),
            board_columns::version.eq(1_i64),
        ))
        .returning(board_columns::id)
        .get_result(conn)?)
}

/// A board lead must be an active user: their id.
fn check_lead(
    conn: &mut DbConnection,
    lead: Option<&PersonId>,
    errors: &mut Vec<FieldError>,
) -> Result<Option<i64>, ApiError> {
    let Some(lead) = lead else {
        return Ok(None);
    };
    Ok(match lead.resolve(conn, "lead", true)? {
        Ok(id) => Some(id),
        Err(error) => {
            errors.push(error);
            None
        }
    })
}
