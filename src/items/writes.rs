//! Writing items: create, change (PATCH) and soft delete, with the checks of their fields and
//! the labels and external references stored beside them.

use diesel::prelude::*;
use serde_json::json;

use crate::board::model::ColumnCategory;
use crate::catalog::services::Service;
use crate::common::actor::Actor;
use crate::common::db::schema::{board_columns, boards, item_external_refs, item_labels, items};
use crate::common::db::{DbConnection, execute_on_engine, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::text::{TagRule, check_text, http_url, optional_text, required_text, tag_list};
use crate::common::version::Precondition;
use crate::items::demand::{self as demands, DemandInput};
use crate::items::incident::{self as incidents, IncidentInput};
use crate::items::moves::{bottom_rank_after, check_wip, column_order, place_at_bottom};
use crate::items::queries::{Beside, assemble, assemble_beside, assemble_placed, raci_of_people};
use crate::items::raci::{insert_raci, new_item_raci, raci_summary};
use crate::items::rows::{ItemRow, Place};
use crate::items::types::{ExternalRef, Item, ItemChanges, ItemType, NewItem};

/// Whether `system` names another system as references do: 1–31 lower-case letters, digits,
/// `-` or `_`, starting with a letter (`jira`, `openproject`).
pub(crate) fn is_valid_system(system: &str) -> bool {
    system.len() <= 31
        && system.starts_with(|c: char| c.is_ascii_lowercase())
        && system
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn check_refs(refs: &[ExternalRef], errors: &mut Vec<FieldError>) -> Vec<ExternalRef> {
    // Also `maxItems` of `external_refs` in NewItem and ItemChanges: a sync script mirrors an
    // item into a handful of systems, not thousands.
    const MAX_EXTERNAL_REFS: usize = 20;
    if refs.len() > MAX_EXTERNAL_REFS {
        errors.push(FieldError::new(
            "external_refs",
            format!("must hold at most {MAX_EXTERNAL_REFS} entries"),
        ));
    }
    let mut out: Vec<ExternalRef> = Vec::new();
    for (i, r) in refs.iter().enumerate() {
        let system = r.system.trim().to_string();
        if !is_valid_system(&system) {
            errors.push(FieldError::new(
                format!("external_refs[{i}].system"),
                "must be lower-case letters, digits, `-` or `_`, such as jira",
            ));
        } else if out.iter().any(|o| o.system == system) {
            errors.push(FieldError::new(
                format!("external_refs[{i}].system"),
                "appears twice: one reference per system",
            ));
        }
        let key = required_text(errors, &format!("external_refs[{i}].key"), &r.key, 200);
        let url = http_url(errors, &format!("external_refs[{i}].url"), r.url.as_deref());
        let alias = optional_text(
            errors,
            &format!("external_refs[{i}].alias"),
            r.alias.as_deref(),
            200,
        );
        out.push(ExternalRef {
            system,
            key,
            url,
            alias,
        });
    }
    out.sort_by(|a, b| a.system.cmp(&b.system));
    out
}

/// Stores an item's references; a key another item holds in the same system is a 409.
///
/// A reference that stays (the same system and key) is updated in place rather than written
/// anew: its row also keeps the `source_updated_at` an upsert by reference applied last, and a
/// new alias or link must not forget it, or a late delivery could roll the item back.
fn write_refs(conn: &mut DbConnection, id: i64, refs: &[ExternalRef]) -> Result<(), ApiError> {
    let stored: Vec<(String, String)> = item_external_refs::table
        .filter(item_external_refs::item_id.eq(id))
        .select((item_external_refs::system, item_external_refs::ext_key))
        .load(conn)?;
    let stays = |system: &str, key: &str| refs.iter().any(|r| r.system == system && r.key == key);
    for (system, key) in &stored {
        if !stays(system, key) {
            diesel::delete(
                item_external_refs::table.filter(
                    item_external_refs::item_id
                        .eq(id)
                        .and(item_external_refs::system.eq(system)),
                ),
            )
            .execute(conn)?;
        }
    }
    for r in refs {
        if stored.iter().any(|(s, k)| *s == r.system && *k == r.key) {
            diesel::update(
                item_external_refs::table.filter(
                    item_external_refs::item_id
                        .eq(id)
                        .and(item_external_refs::system.eq(&r.system)),
                ),
            )
            .set((
                item_external_refs::url.eq(&r.url),
                item_external_refs::alias.eq(&r.alias),
            ))
            .execute(conn)?;
            continue;
        }
        let holder: Option<String> = item_external_refs::table
            .inner_join(items::table)
            .filter(
                item_external_refs::system
                    .eq(&r.system)
                    .and(item_external_refs::ext_key.eq(&r.key)),
            )
            .select(items::key)
            .first(conn)
            .optional()?;
        if let Some(holder) = holder {
            return Err(ApiError::Conflict(format!(
                "{} {} already belongs to {holder}.",
                r.system, r.key
            )));
        }
        diesel::insert_into(item_external_refs::table)
            .values((
                item_external_refs::item_id.eq(id),
                item_external_refs::system.eq(&r.system),
                item_external_refs::ext_key.eq(&r.key),
                item_external_refs::url.eq(&r.url),
                item_external_refs::alias.eq(&r.alias),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn check_labels(field: &str, labels: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let rule = TagRule {
        noun: "labels",
        max_chars: 40,
        max_entries: 20,
    };
    tag_list(errors, field, labels, rule)
}

fn check_title(title: &str, errors: &mut Vec<FieldError>) -> String {
    required_text(errors, "title", title, 200)
}

fn service_id(
    conn: &mut DbConnection,
    key: Option<&str>,
    errors: &mut Vec<FieldError>,
) -> Result<Option<i64>, ApiError> {
    let Some(key) = key.map(str::trim).filter(|k| !k.is_empty()) else {
        return Ok(None);
    };
    Service::id_for_field(conn, key, "service", errors)
}

fn write_labels(conn: &mut DbConnection, id: i64, labels: &[String]) -> Result<(), ApiError> {
    diesel::delete(item_labels::table.filter(item_labels::item_id.eq(id))).execute(conn)?;
    insert_labels(conn, id, labels)
}

/// The labels of an item that has none yet (a new one), in one statement: one label's is
/// prepared once per connection, several go as one multi-row insert.
fn insert_labels(conn: &mut DbConnection, id: i64, labels: &[String]) -> Result<(), ApiError> {
    match labels {
        [] => {}
        [label] => {
            diesel::insert_into(item_labels::table)
                .values((item_labels::item_id.eq(id), item_labels::label.eq(label)))
                .execute(conn)?;
        }
        many => {
            let rows: Vec<_> = many
                .iter()
                .map(|label| (item_labels::item_id.eq(id), item_labels::label.eq(label)))
                .collect();
            execute_on_engine(diesel::insert_into(item_labels::table).values(&rows), conn)?;
        }
    }
    Ok(())
}

/// A new item's `INSERT … RETURNING` (`insert`) with its labels and RACI people, as one
/// PostgreSQL statement whatever their number (a data-modifying `WITH`, the people and labels
/// as unnested arrays): under the board's lock, one round trip rather than three. Prepared
/// once per connection, as diesel's insert is (its query id stays static).
///
/// The item is appended at the bottom of its column, `rank` (its rank) after the column's
/// hint ([`Claimed::bottom_hint`]): the statement stores that rank as the column's new hint,
/// and returns beside the row whether an item of the column already ranks at or after it
/// (read in the statement's snapshot, taken after the column's lock; the new row is not in
/// it). Only a move to the bottom since the last creation leaves such an item; the caller
/// then places the new one after it ([`super::moves::place_at_bottom`]).
#[derive(Debug, Clone, diesel::query_builder::QueryId)]
struct WithLabelsAndRaci<I> {
    insert: I,
    labels: Vec<String>,
    people: Vec<i64>,
    roles: Vec<&'static str>,
    column_id: i64,
    rank: String,
}

impl<I> diesel::query_builder::QueryFragment<diesel::pg::Pg> for WithLabelsAndRaci<I>
where
    I: diesel::query_builder::QueryFragment<diesel::pg::Pg>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{Array, BigInt, Text};
        out.push_sql("WITH item AS (");
        self.insert.walk_ast(out.reborrow())?;
        out.push_sql(
            "), labels AS (INSERT INTO item_labels (item_id, label) \
             SELECT item.id, unnest(",
        );
        out.push_bind_param::<Array<Text>, _>(&self.labels)?;
        out.push_sql(
            ") FROM item), raci AS (INSERT INTO item_raci (item_id, user_id, role) \
             SELECT item.id, person.user_id, person.role FROM item, unnest(",
        );
        out.push_bind_param::<Array<BigInt>, _>(&self.people)?;
        out.push_sql(", ");
        out.push_bind_param::<Array<Text>, _>(&self.roles)?;
        out.push_sql(
            ") AS person (user_id, role)), hint AS (UPDATE board_columns \
             SET bottom_rank_hint = ",
        );
        out.push_bind_param::<Text, _>(&self.rank)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<BigInt, _>(&self.column_id)?;
        out.push_sql(") SELECT item.*, EXISTS (SELECT 1 FROM items below WHERE below.column_id = ");
        out.push_bind_param::<BigInt, _>(&self.column_id)?;
        out.push_sql(" AND below.deleted_at IS NULL AND below.rank >= ");
        out.push_bind_param::<Text, _>(&self.rank)?;
        out.push_sql(") FROM item");
        Ok(())
    }
}

impl<I: diesel::query_builder::Query> diesel::query_builder::Query for WithLabelsAndRaci<I> {
    /// The new row, and whether an item of its column ranked at or after it.
    type SqlType = (I::SqlType, diesel::sql_types::Bool);
}

impl<I> RunQueryDsl<diesel::pg::PgConnection> for WithLabelsAndRaci<I> {}

/// Takes a board's next item number (`UPDATE boards SET next_item_number = next_item_number + 1
/// WHERE id = … RETURNING next_item_number`). Written out because diesel never prepares an
/// UPDATE it builds (a changeset's columns may vary), and this one runs under the board's lock
/// on every creation: parsed and planned each time, it cost about 0.1 ms of the time that
/// other creations waited.
#[derive(Debug, Clone, Copy)]
struct ClaimNumber {
    board_id: i64,
}

impl<DB> diesel::query_builder::QueryFragment<DB> for ClaimNumber
where
    DB: diesel::backend::Backend,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    DB: diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        out.push_sql("UPDATE boards SET next_item_number = next_item_number + 1 WHERE id = ");
        out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.board_id)?;
        out.push_sql(" RETURNING next_item_number");
        Ok(())
    }
}

crate::prepared_statement!(ClaimNumber, returns diesel::sql_types::BigInt);

/// On PostgreSQL, [`ClaimNumber`] and the lock of the board's first column in one statement:
/// the board's row is locked first (the claim's `UPDATE` runs before the join can hand a
/// column row up to `FOR UPDATE`), as every change of a board's columns locks them, and one
/// round trip fewer is spent while other creations on the board wait.
///
/// The columns are read in the statement's snapshot, taken before it waited for the board.
/// The locked column's row is its latest version (PostgreSQL re-reads a row that changed
/// while it waited for its lock), so its name, category and WIP limit are current; only a
/// reorder or a new first column committed while this creation waited is not seen, and the
/// item goes where the first column stood when it asked: as if it had been created just
/// before that change. The column's items are read by later statements, after the lock.
#[derive(Debug, Clone, Copy)]
struct ClaimNumberAndColumn {
    board_id: i64,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for ClaimNumberAndColumn {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> QueryResult<()> {
        out.push_sql(
            "WITH claim AS (UPDATE boards SET next_item_number = next_item_number + 1 \
             WHERE id = ",
        );
        out.push_bind_param::<diesel::sql_types::BigInt, _>(&self.board_id)?;
        out.push_sql(
            " RETURNING id, next_item_number) \
             SELECT claim.next_item_number, c.id, c.category, c.name, c.wip_limit, \
             c.bottom_rank_hint \
             FROM claim JOIN board_columns c ON c.board_id = claim.id \
             ORDER BY c.position, c.id LIMIT 1 FOR UPDATE OF c",
        );
        Ok(())
    }
}

/// The SQL types of [`ClaimNumberAndColumn`]'s row: the number, the column's id, category,
/// name, WIP limit and bottom rank hint.
type ClaimedRow = (
    diesel::sql_types::BigInt,
    diesel::sql_types::BigInt,
    diesel::sql_types::Text,
    diesel::sql_types::Text,
    diesel::sql_types::Nullable<diesel::sql_types::Integer>,
    diesel::sql_types::Nullable<diesel::sql_types::Text>,
);

crate::prepared_statement!(ClaimNumberAndColumn, returns ClaimedRow);

/// A board's next item number and its first column, with the board's and the column's locks
/// held (see [`ClaimNumberAndColumn`]).
struct Claimed {
    number: i64,
    /// The first column's `(id, category)`.
    column: (i64, String),
    column_name: String,
    wip_limit: Option<i32>,
    /// On PostgreSQL, the rank the last creation into the column gave its item (the column's
    /// `bottom_rank_hint`, read from the locked row, so current): the new item goes after it
    /// without a read of the column's items. `None` on SQLite, whose creations read the bottom
    /// rank itself, and before the column's first creation on PostgreSQL.
    bottom_hint: Option<String>,
}

/// Claims the board's next number and locks its first column: the row locks (PostgreSQL) or
/// the write lock (SQLite) serialize concurrent creations, so numbers are never handed out
/// twice. The board is locked before its column, as every change of a board's columns does.
fn claim_number_and_column(conn: &mut DbConnection, board_id: i64) -> Result<Claimed, ApiError> {
    if let DbConnection::Postgresql(pg) = conn {
        let (next, id, category, column_name, wip_limit, bottom_hint): (
            i64,
            i64,
            String,
            String,
            Option<i32>,
            Option<String>,
        ) = ClaimNumberAndColumn { board_id }.get_result(pg)?;
        return Ok(Claimed {
            number: next - 1,
            column: (id, category),
            column_name,
            wip_limit,
            bottom_hint,
        });
    }
    let number: i64 = ClaimNumber { board_id }.get_result::<i64>(conn)? - 1;
    // SQLite: `BEGIN IMMEDIATE` holds the one write lock, so a plain read is a locked one.
    let (first_column, column_name, wip_limit): ((i64, String), String, Option<i32>) =
        board_columns::table
            .filter(board_columns::board_id.eq(board_id))
            .order((board_columns::position, board_columns::id))
            .select((
                (board_columns::id, board_columns::category),
                board_columns::name,
                board_columns::wip_limit,
            ))
            .first(conn)?;
    Ok(Claimed {
        number,
        column: first_column,
        column_name,
        wip_limit,
        bottom_hint: None,
    })
}

/// Why an item of this type needs a service.
fn service_required(item_type: ItemType) -> String {
    match item_type {
        ItemType::Demand => "is required for a demand, unless it asks for a new service named in \
             demand.proposed_service"
            .into(),
        other => format!("is required for a {}", other.as_str()),
    }
}

impl Item {
    /// Creates an item at the bottom of its board's first column, with its RACI (from the
    /// input, else from the service's template) and its `created` event.
    pub fn create(
        conn: &mut DbConnection,
        form: &NewItem,
        actor: &Actor,
        may_override: bool,
    ) -> Result<Item, ApiError> {
        let mut errors = Vec::new();
        let title = check_title(&form.title, &mut errors);
        check_text(&mut errors, "description", &form.description, 65_536);
        let labels = check_labels("labels", &form.labels, &mut errors);
        let refs = check_refs(&form.external_refs, &mut errors);
        let board = boards::table
            .filter(boards::key.eq(form.board.trim().to_uppercase()))
            .select((boards::id, boards::key, boards::lead_id))
            .first::<(i64, String, Option<i64>)>(conn)
            .optional()?;
        if board.is_none() {
            errors.push(FieldError::new(
                "board",
                format!("there is no board `{}`", form.board.trim()),
            ));
        }
        let service_id = service_id(conn, form.service.as_deref(), &mut errors)?;
        let demand = match (form.item_type, &form.demand) {
            (ItemType::Demand, input) => Some(demands::resolve(
                conn,
                input.as_ref().unwrap_or(&DemandInput::default()),
                None,
                &mut errors,
            )?),
            (_, Some(_)) => {
                errors.push(FieldError::new("demand", "is only for demands"));
                None
            }
            _ => None,
        };
        let incident = match (form.item_type, &form.incident) {
            (ItemType::Incident, input) => incidents::resolve(
                conn,
                input.as_ref().unwrap_or(&IncidentInput::default()),
                None,
                &[],
                service_id,
                form.priority.suggested_severity(),
                &mut errors,
            )?,
            (_, Some(_)) => {
                errors.push(FieldError::new("incident", "is only for incidents"));
                None
            }
            _ => None,
        };
        let new_service = demand.as_ref().and_then(|d| d.proposed_service()).is_some();
        if form.item_type != ItemType::Task
            && form.service.as_deref().is_none_or(|s| s.trim().is_empty())
            && !new_service
        {
            errors.push(FieldError::new("service", service_required(form.item_type)));
        }
        let lead = board.as_ref().and_then(|b| b.2);
        let lead_first = form.item_type == ItemType::Demand;
        let raci_rows = new_item_raci(
            conn,
            form.raci.as_ref(),
            service_id,
            lead,
            lead_first,
            &mut errors,
        )?;
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let Some((board_id, board_key, _)) = board else {
            return Err(ApiError::internal("board vanished"));
        };
        if form.override_wip && !may_override {
            return Err(ApiError::Forbidden(
                "Only managers and admins may override a WIP limit.".into(),
            ));
        }
        // What a new task's or demand's roles show of their people is read before the board's
        // lock below, so that the item need not be read back under it (an incident's affected
        // services are read back with the rest).
        let known_raci = match form.item_type {
            ItemType::Incident => None,
            _ => {
                let roles: Vec<(i64, &str)> = raci_rows
                    .iter()
                    .map(|(user, role)| (*user, role.as_str()))
                    .collect();
                Some(raci_of_people(conn, &roles)?)
            }
        };
        // Whether the webhooks want the event, asked before the locks that other creations
        // on this board queue behind.
        history::look_ahead(conn)?;
        // The next number, and the first column whose WIP limit and bottom rank are read and
        // then written on, each under its lock.
        let Claimed {
            number,
            column: first_column,
            column_name,
            wip_limit,
            bottom_hint,
        } = claim_number_and_column(conn, board_id)?;
        let overridden = match wip_limit {
            // A column with a limit holds few items: load them for the count and the message.
            Some(_) => {
                let held: Vec<String> = column_order(conn, first_column.0, None)?
                    .into_iter()
                    .map(|o| o.1)
                    .collect();
                check_wip(&column_name, wip_limit, &held, form.override_wip)?
            }
            None => false,
        };
        let key = format!("{board_key}-{number}");
        let rank = bottom_rank_after(conn, first_column.0, bottom_hint.as_deref())?;
        let stamp = now();
        let category = ColumnCategory::parse(&first_column.1);
        let insert = diesel::insert_into(items::table)
            .values((
                items::board_id.eq(board_id),
                items::number.eq(number),
                items::key.eq(&key),
                items::item_type.eq(form.item_type.as_str()),
                items::title.eq(&title),
                items::description.eq(&form.description),
                items::service_id.eq(service_id),
                items::column_id.eq(first_column.0),
                items::rank.eq(&rank),
                items::priority.eq(form.priority.as_str()),
                items::due_date.eq(form.due_date),
                items::created_by.eq(actor.user_id),
                items::created_at.eq(stamp),
                items::updated_at.eq(stamp),
                items::started_at
                    .eq((category == Some(ColumnCategory::InProgress)).then_some(stamp)),
                items::done_at.eq((category == Some(ColumnCategory::Done)).then_some(stamp)),
                items::version.eq(1_i64),
            ))
            // The row's columns as such: `as_returning()` would tie them to one backend, which
            // the insert of the multi-engine connection cannot send (the columns are the same
            // whichever backend the derive is asked for).
            .returning(<ItemRow as Selectable<diesel::pg::Pg>>::construct_selection());
        // A new item has nothing beside it yet: nothing to delete or compare with.
        let row: ItemRow = match conn {
            DbConnection::Postgresql(pg) => {
                let (mut row, overtaken): (ItemRow, bool) = WithLabelsAndRaci {
                    insert,
                    labels: labels.clone(),
                    people: raci_rows.iter().map(|(user, _)| *user).collect(),
                    roles: raci_rows.iter().map(|(_, role)| role.as_str()).collect(),
                    column_id: first_column.0,
                    rank: rank.clone(),
                }
                .get_result(pg)?;
                if overtaken {
                    row.rank = place_at_bottom(conn, first_column.0, row.id)?;
                }
                row
            }
            // SQLite has no INSERT inside WITH, and one writer with no round trips to save.
            DbConnection::Sqlite(_) => {
                let row: ItemRow = insert.get_result(conn)?;
                insert_labels(conn, row.id, &labels)?;
                insert_raci(conn, row.id, &raci_rows)?;
                row
            }
        };
        let id = row.id;
        if !refs.is_empty() {
            write_refs(conn, id, &refs)?;
        }
        if let Some(fields) = &demand {
            demands::store(conn, id, fields, None)?;
        }
        if let Some(fields) = &incident {
            incidents::store(conn, id, fields, None)?;
        }
        // Where it stands is known here (the service by the key it was found by), and so is
        // what lives beside it, but an incident's affected services.
        let place: Place = (
            column_name,
            first_column.1,
            board_key,
            service_id.and(form.service.as_deref().map(|s| s.trim().to_string())),
        );
        let item = match known_raci {
            Some(raci) => {
                let mut beside = Beside::default();
                // Already sorted, as the check of the list leaves it.
                beside.labels.insert(id, labels.clone());
                beside.raci.insert(id, raci);
                beside.refs.insert(id, refs);
                assemble_beside(conn, vec![(row, place)], beside)?
            }
            None => assemble_placed(conn, vec![(row, place)])?,
        }
        .pop()
        .ok_or_else(|| ApiError::internal(format!("item {key} vanished")))?;
        let state = item.as_state()?;
        let data = json!({"key": key, "type": form.item_type.as_str(), "title": title, "service": item.service,
               "column": item.column.id, "priority": form.priority.as_str(), "labels": labels,
               "raci": raci_summary(&item.raci), "demand": item.demand, "incident": item.incident,
               "override_wip": overridden});
        let arrival = history::Arrival {
            board_id,
            column_id: item.column.id,
            category: item.column.category.as_str(),
            created_at: stamp,
        };
        history::record_item_created(conn, id, actor, data, state, arrival)?;
        Ok(item)
    }

    /// Applies a PATCH, honouring `If-Match`, with one `updated` event listing each change.
    pub fn update(
        conn: &mut DbConnection,
        key_or_id: &str,
        changes: &ItemChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<Item, ApiError> {
        let row = Item::row_for_update(conn, key_or_id)?;
        expected.check(row.version)?;
        // The row is already loaded: assemble it rather than look it up again.
        let current = assemble(conn, vec![row.clone()])?
            .pop()
            .ok_or_else(|| ApiError::internal("item vanished"))?;
        let mut errors = Vec::new();
        let title = changes
            .title
            .as_deref()
            .map(|t| check_title(t, &mut errors))
            .unwrap_or(current.title.clone());
        let description = changes
            .description
            .clone()
            .unwrap_or(current.description.clone());
        check_text(&mut errors, "description", &description, 65_536);
        let labels = match &changes.labels {
            Some(l) => check_labels("labels", l, &mut errors),
            None => current.labels.clone(),
        };
        let refs = match &changes.external_refs {
            Some(r) => check_refs(r, &mut errors),
            None => current.external_refs.clone(),
        };
        let item_type = changes.item_type.unwrap_or(current.item_type);
        let service_key = changes.service.clone().unwrap_or(current.service.clone());
        let service_id = service_id(conn, service_key.as_deref(), &mut errors)?;
        // Type-specific fields: resolved whenever the item is of that type, so that a change
        // of type or service is checked against them too; storing writes only what changed.
        let demand = if item_type == ItemType::Demand {
            let stored = demands::row_of(conn, row.id)?;
            let input = changes.demand.clone().unwrap_or_default();
            let resolved = demands::resolve(conn, &input, stored.as_ref(), &mut errors)?;
            Some((resolved, stored))
        } else {
            if changes.demand.is_some() {
                errors.push(FieldError::new("demand", "is only for demands"));
            }
            None
        };
        let incident = if item_type == ItemType::Incident {
            let stored = incidents::row_of(conn, row.id)?;
            let affected = incidents::affected_ids(conn, row.id)?;
            let input = changes.incident.clone().unwrap_or_default();
            let suggested = changes
                .priority
                .unwrap_or(current.priority)
                .suggested_severity();
            incidents::resolve(
                conn,
                &input,
                stored.as_ref(),
                &affected,
                service_id,
                suggested,
                &mut errors,
            )?
            .map(|resolved| (resolved, stored, affected))
        } else {
            if changes.incident.is_some() {
                errors.push(FieldError::new("incident", "is only for incidents"));
            }
            None
        };
        let new_service = demand
            .as_ref()
            .is_some_and(|(d, _)| d.proposed_service().is_some());
        if item_type != ItemType::Task
            && service_id.is_none()
            && service_key.is_none()
            && !new_service
        {
            errors.push(FieldError::new("service", service_required(item_type)));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let priority = changes.priority.unwrap_or(current.priority);
        let due_date = changes.due_date.unwrap_or(current.due_date);
        let mut changed = Diff::new();
        changed.field("type", current.item_type, item_type);
        changed.field("title", &current.title, &title);
        changed.field("description", &current.description, &description);
        changed.field("service", &current.service, &service_key);
        changed.field("priority", current.priority, priority);
        changed.field("labels", &current.labels, &labels);
        changed.field("due_date", current.due_date, due_date);
        changed.field("external_refs", &current.external_refs, &refs);
        if let Some((fields, stored)) = &demand {
            changed.extend(demands::store(conn, row.id, fields, stored.as_ref())?);
        }
        if let Some((fields, stored, affected)) = &incident {
            let before = stored.as_ref().map(|s| (s, affected.as_slice()));
            changed.extend(incidents::store(conn, row.id, fields, before)?);
        }
        if changed.is_empty() {
            return Ok(current);
        }
        crate::versioned_write!(
            conn,
            items,
            row.id,
            row.version,
            (
                items::item_type.eq(item_type.as_str()),
                items::title.eq(&title),
                items::description.eq(&description),
                items::service_id.eq(service_id),
                items::priority.eq(priority.as_str()),
                items::due_date.eq(due_date),
            ),
        )?;
        if labels != current.labels {
            write_labels(conn, row.id, &labels)?;
        }
        if refs != current.external_refs {
            write_refs(conn, row.id, &refs)?;
        }
        // The item as it now stands goes into its event (the "updated" events are not part
        // of what an item shows), so the history need not read it again before the commit.
        let item = Item::find(conn, &row.key)?;
        history::record_item_in_state(
            conn,
            row.id,
            "updated",
            actor,
            changed.into_data(),
            item.as_state()?,
        )?;
        Ok(item)
    }

    /// Soft-deletes the item: it leaves lists and views, its tombstone stays for sync.
    pub fn delete(
        conn: &mut DbConnection,
        key_or_id: &str,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<(), ApiError> {
        let row = Item::row_for_update(conn, key_or_id)?;
        expected.check(row.version)?;
        let stamp = now();
        crate::versioned_write!(
            conn,
            items,
            row.id,
            row.version,
            items::deleted_at.eq(Some(stamp)),
        )?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: row.id,
            },
            "deleted",
            actor,
            json!({"key": row.key}),
        )
    }
}
