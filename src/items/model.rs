//! Items (demands, tasks, incidents): the stored rows, the API shapes, the forms and the
//! queries. A page of items loads in a fixed number of queries, whatever its size.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::board::model::ColumnCategory;
use crate::catalog::raci::{self, PersonRef, RaciInput, RaciRole};
use crate::common::actor::{Actor, Visibility};
use crate::common::db::schema::{
    board_columns, boards, demand_details, incident_details, item_external_refs, item_labels,
    item_raci, items, organizations, service_raci, services, users,
};
use crate::common::db::{DbConnection, Lock, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::pagination::{
    Page, PageParams, SortCursor, encode_cursor, format_cursor_time, parse_cursor_time,
};
use crate::common::text::{TagRule, check_text, http_url, required_text, tag_list};
use crate::common::version::Precondition;
use crate::items::demand::{self as demands, Decision, DemandFields, DemandInput};
use crate::items::incident::{self as incidents, IncidentFields, IncidentInput};
use crate::items::rank;
use crate::sla::clock::SlaState;
use crate::sla::severity::Severity;

/// What kind of work an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// A request from a stakeholder.
    Demand,
    /// A piece of work.
    Task,
    /// Something broken in a running service.
    Incident,
}
text_enum!(ItemType { Demand => "demand", Task => "task", Incident => "incident" });

/// How urgent an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Drop everything.
    Critical,
    /// Soon.
    High,
    /// Normal (default).
    #[default]
    Medium,
    /// When there is time.
    Low,
}
text_enum!(Priority { Critical => "critical", High => "high", Medium => "medium", Low => "low" });

impl Priority {
    /// The severity this priority suggests, for incidents that name none.
    pub fn suggested_severity(self) -> Severity {
        match self {
            Priority::Critical => Severity::S1,
            Priority::High => Severity::S2,
            Priority::Medium => Severity::S3,
            Priority::Low => Severity::S4,
        }
    }

    /// Urgency as a number, 0 for critical; the order of `sort=priority`.
    pub fn order(self) -> i32 {
        match self {
            Priority::Critical => 0,
            Priority::High => 1,
            Priority::Medium => 2,
            Priority::Low => 3,
        }
    }
}

/// A column as shown on an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ColumnRef {
    /// The column's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its category.
    pub category: ColumnCategory,
}

/// The RACI roles on an item: exactly one accountable person.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct ItemRaci {
    /// The one accountable person.
    pub accountable: Option<PersonRef>,
    /// Responsible people.
    pub responsible: Vec<PersonRef>,
    /// Consulted people.
    pub consulted: Vec<PersonRef>,
    /// Informed people.
    pub informed: Vec<PersonRef>,
}

/// The same item in another system, for sync scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"system": "jira", "key": "OZG-123", "url": "https://jira.example.org/browse/OZG-123"}))]
pub struct ExternalRef {
    /// The other system: lower-case letters, digits, `-`, `_` (`jira`, `openproject`).
    #[schema(min_length = 1, max_length = 31, pattern = "^[a-z][a-z0-9_-]{0,30}$")]
    pub system: String,
    /// The item's key or id there; unique per system across all items.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub key: String,
    /// A link to it there.
    #[schema(max_length = 2000, pattern = "^https?://[^\\s]+$")]
    pub url: Option<String>,
}

/// A demand, task or incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Item {
    /// Numeric id; `/items/{id}` works as well as `/items/{key}`.
    pub id: i64,
    /// `BOARD-NUMBER`, such as `OPS-42`; never changes, never reused.
    pub key: String,
    /// Demand, task or incident.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// Title, 1–200 characters.
    pub title: String,
    /// Description (Markdown).
    pub description: String,
    /// Key of the online service it concerns (optional only for tasks).
    pub service: Option<String>,
    /// Key of its board.
    pub board: String,
    /// The column it is in.
    pub column: ColumnRef,
    /// Orders it inside its column (byte order).
    pub rank: String,
    /// How urgent it is.
    pub priority: Priority,
    /// Free lower-case labels.
    pub labels: Vec<String>,
    /// When it is due.
    pub due_date: Option<NaiveDate>,
    /// Id of the user who created it.
    pub created_by: Option<i64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it first entered an `in_progress` column.
    pub started_at: Option<DateTime<Utc>>,
    /// When it entered a `done` column; cleared when it leaves.
    pub done_at: Option<DateTime<Utc>>,
    /// Set on a deleted item's tombstone (only listed with `include_deleted=true`).
    pub deleted_at: Option<DateTime<Utc>>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
    /// Who is responsible, accountable, consulted, informed.
    pub raci: ItemRaci,
    /// The same item in other systems (one reference per system).
    pub external_refs: Vec<ExternalRef>,
    /// Demand fields: intake and decision. Only on demands.
    pub demand: Option<DemandFields>,
    /// Incident fields: severity, reporter, response and resolution. Only on incidents.
    pub incident: Option<IncidentFields>,
    /// The SLA clocks of an incident, when a policy applies to it.
    pub sla: Option<SlaState>,
}

/// The body of `POST /api/v1/items`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "board": "OPS", "type": "incident", "title": "Wohngeld: Upload bricht ab",
    "service": "wohngeld-antrag", "priority": "high", "labels": ["upload"]
}))]
pub struct NewItem {
    /// Key of the board.
    pub board: String,
    /// Demand, task or incident.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// Title, 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub title: String,
    /// Description (Markdown), up to 64 KiB.
    #[serde(default)]
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// Key of the online service; required unless the item is a task.
    pub service: Option<String>,
    /// Priority; `medium` when omitted.
    #[serde(default)]
    pub priority: Priority,
    /// Labels: lower-case letters, digits, `-`, `_`, `.`; at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub labels: Vec<String>,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// RACI roles; when no accountable person is named, the service's RACI template is used.
    pub raci: Option<RaciInput>,
    /// References to the same item in other systems, one per system; at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub external_refs: Vec<ExternalRef>,
    /// Demand fields (demands only).
    pub demand: Option<DemandInput>,
    /// Incident fields (incidents only; `severity` is required).
    pub incident: Option<IncidentInput>,
    /// Managers only: create the item even when the board's first column is at its WIP limit
    /// (recorded in the history).
    #[serde(default)]
    pub override_wip: bool,
}

/// The body of `PATCH /api/v1/items/{key}`. `key`, `created_*`, `version` and the timestamps
/// are not writable; moves go through `POST /items/{key}/move`, RACI through its own PUT.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"priority": "critical", "labels": ["upload", "bundid"]}))]
pub struct ItemChanges {
    /// New type (a demand or incident needs a service).
    #[serde(rename = "type")]
    pub item_type: Option<ItemType>,
    /// New title.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub title: Option<String>,
    /// New description.
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// New service key; `null` removes it (tasks only).
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub service: Option<Option<String>>,
    /// New priority.
    pub priority: Option<Priority>,
    /// New labels (replaces the list); at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub labels: Option<Vec<String>>,
    /// New due date; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub due_date: Option<Option<NaiveDate>>,
    /// New external references (replaces the list); at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub external_refs: Option<Vec<ExternalRef>>,
    /// Changed demand fields (demands only); the decision has its own endpoint.
    pub demand: Option<DemandInput>,
    /// Changed incident fields (incidents only).
    pub incident: Option<IncidentInput>,
}

/// The body of `POST /api/v1/items/{key}/move`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"column": 3, "after": "OPS-12"}))]
pub struct MoveRequest {
    /// Id of the target column (on the item's board).
    pub column: i64,
    /// Place the item just before this item (key) of the target column.
    pub before: Option<String>,
    /// Place the item just after this item (key) of the target column.
    pub after: Option<String>,
    /// Managers only: move even when the column is at its WIP limit (recorded in the history).
    #[serde(default)]
    pub override_wip: bool,
    /// For an incident moved to a `done` column: how it was resolved (required there unless
    /// the incident already has a resolution).
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub resolution: Option<String>,
}

/// How an item list is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum ItemSort {
    /// Oldest first (default).
    #[default]
    #[serde(rename = "created_at")]
    CreatedAt,
    /// Newest first.
    #[serde(rename = "-created_at")]
    CreatedAtDesc,
    /// Least recently changed first (what a sync script wants).
    #[serde(rename = "updated_at")]
    UpdatedAt,
    /// Most recently changed first.
    #[serde(rename = "-updated_at")]
    UpdatedAtDesc,
    /// Board order: by rank, as the cards stand in their columns (use with `column`).
    #[serde(rename = "rank")]
    Rank,
    /// Reverse board order.
    #[serde(rename = "-rank")]
    RankDesc,
    /// Most urgent first: critical, high, medium, low.
    #[serde(rename = "priority")]
    Priority,
    /// Least urgent first.
    #[serde(rename = "-priority")]
    PriorityDesc,
}

/// Filters of `GET /api/v1/items`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemFilter {
    /// Only items on this board (key).
    pub board: Option<String>,
    /// Only items of this service (key).
    pub service: Option<String>,
    /// Only items of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub item_type: Option<ItemType>,
    /// Only items in this column (id).
    pub column: Option<i64>,
    /// Only items in columns of this category (`todo`, `in_progress`, `done`).
    pub category: Option<ColumnCategory>,
    /// Only items of this priority.
    pub priority: Option<Priority>,
    /// Only items this user is accountable for.
    pub accountable: Option<i64>,
    /// Only items this user is responsible for.
    pub responsible: Option<i64>,
    /// Only items where this user holds any role ("my items").
    pub involved: Option<i64>,
    /// Only items with this label.
    pub label: Option<String>,
    /// With `external_key`: the item known under that key in this system (`jira`).
    pub external_system: Option<String>,
    /// With `external_system`: the key there (`OZG-123`).
    pub external_key: Option<String>,
    /// Case-insensitive search in key, title and description.
    pub q: Option<String>,
    /// Only items changed at or after this instant (RFC 3339), for sync scripts.
    pub updated_since: Option<DateTime<Utc>>,
    /// Include tombstones of deleted items (`deleted_at` set), for sync scripts.
    pub include_deleted: Option<bool>,
    /// Only demands with this decision.
    pub decision: Option<Decision>,
    /// Only incidents of this severity.
    pub severity: Option<Severity>,
    /// Only demands raised by this organization (short name).
    pub requesting_organization: Option<String>,
    /// Order: `created_at` (default), `updated_at`, `rank`, `priority` (most urgent first);
    /// prefix `-` to reverse. Ties are broken by id.
    #[param(inline)]
    pub sort: Option<ItemSort>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An item as stored in its own table, without what lives beside it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = items)]
pub(crate) struct ItemRow {
    pub(crate) id: i64,
    pub(crate) board_id: i64,
    pub(crate) key: String,
    pub(crate) item_type: String,
    pub(crate) title: String,
    description: String,
    pub(crate) service_id: Option<i64>,
    pub(crate) column_id: i64,
    pub(crate) rank: String,
    pub(crate) priority: String,
    pub(crate) due_date: Option<NaiveDate>,
    created_by: Option<i64>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    started_at: Option<NaiveDateTime>,
    done_at: Option<NaiveDateTime>,
    deleted_at: Option<NaiveDateTime>,
    pub(crate) version: i64,
}

impl ItemRow {
    /// Whether the item is a demand.
    pub(crate) fn is_demand(&self) -> bool {
        self.item_type == ItemType::Demand.as_str()
    }
}

/// Labels of items by id (one query).
pub(crate) fn labels_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, ApiError> {
    let mut labels: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, label) in item_labels::table
        .filter(item_labels::item_id.eq_any(ids))
        .order((item_labels::item_id, item_labels::label))
        .select((item_labels::item_id, item_labels::label))
        .load::<(i64, String)>(conn)?
    {
        labels.entry(id).or_default().push(label);
    }
    Ok(labels)
}

/// RACI roles of items by id (one query).
pub(crate) fn raci_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, ItemRaci>, ApiError> {
    let mut result: HashMap<i64, ItemRaci> = HashMap::new();
    let rows: Vec<(i64, String, i64, String, String, bool)> = item_raci::table
        .inner_join(users::table)
        .filter(item_raci::item_id.eq_any(ids))
        .order((
            item_raci::item_id,
            item_raci::role,
            users::display_name,
            users::id,
        ))
        .select((
            item_raci::item_id,
            item_raci::role,
            users::id,
            users::display_name,
            users::email,
            users::active,
        ))
        .load(conn)?;
    for (item, role, id, display_name, email, active) in rows {
        let person = PersonRef {
            id,
            display_name,
            email,
            active,
        };
        let entry = result.entry(item).or_default();
        match role.as_str() {
            "accountable" => entry.accountable = Some(person),
            "responsible" => entry.responsible.push(person),
            "consulted" => entry.consulted.push(person),
            _ => entry.informed.push(person),
        }
    }
    Ok(result)
}

/// External references of items by id (one query).
fn refs_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<ExternalRef>>, ApiError> {
    let mut refs: HashMap<i64, Vec<ExternalRef>> = HashMap::new();
    for (id, system, key, url) in item_external_refs::table
        .filter(item_external_refs::item_id.eq_any(ids))
        .order((item_external_refs::item_id, item_external_refs::system))
        .select((
            item_external_refs::item_id,
            item_external_refs::system,
            item_external_refs::ext_key,
            item_external_refs::url,
        ))
        .load::<(i64, String, String, Option<String>)>(conn)?
    {
        refs.entry(id)
            .or_default()
            .push(ExternalRef { system, key, url });
    }
    Ok(refs)
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
        let valid_system = !system.is_empty()
            && system.len() <= 31
            && system.starts_with(|c: char| c.is_ascii_lowercase())
            && system
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_system {
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
        out.push(ExternalRef { system, key, url });
    }
    out.sort_by(|a, b| a.system.cmp(&b.system));
    out
}

/// Stores an item's references; a key another item holds in the same system is a 409.
fn write_refs(conn: &mut DbConnection, id: i64, refs: &[ExternalRef]) -> Result<(), ApiError> {
    diesel::delete(item_external_refs::table.filter(item_external_refs::item_id.eq(id)))
        .execute(conn)?;
    for r in refs {
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
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Turns rows into API items in a fixed number of queries: labels, RACI, references, and
/// column, board and service together; demand fields when there are demands; incident fields and SLA
/// clocks when there are incidents.
fn assemble(conn: &mut DbConnection, rows: Vec<ItemRow>) -> Result<Vec<Item>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut labels = labels_of(conn, &ids)?;
    let mut racis = raci_of(conn, &ids)?;
    let mut refs = refs_of(conn, &ids)?;
    // Column, board and service of every item in one joined query.
    let mut places: HashMap<i64, (String, String, String, Option<String>)> = HashMap::new();
    for (id, column_name, category, board_key, service_key) in items::table
        .inner_join(board_columns::table)
        .inner_join(boards::table)
        .left_join(services::table)
        .filter(items::id.eq_any(&ids))
        .select((
            items::id,
            board_columns::name,
            board_columns::category,
            boards::key,
            services::key.nullable(),
        ))
        .load::<(i64, String, String, String, Option<String>)>(conn)?
    {
        places.insert(id, (column_name, category, board_key, service_key));
    }
    let demand_ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.item_type == ItemType::Demand.as_str())
        .map(|r| r.id)
        .collect();
    let mut demand_fields = if demand_ids.is_empty() {
        HashMap::new()
    } else {
        demands::load(conn, &demand_ids)?
    };
    let incident_items: Vec<(i64, Option<i64>)> = rows
        .iter()
        .filter(|r| r.item_type == ItemType::Incident.as_str())
        .map(|r| (r.id, r.service_id))
        .collect();
    let (mut incident_fields, mut sla_states) = incidents::load(conn, &incident_items)?;
    rows.into_iter()
        .map(|row| {
            let (column_name, category, board_key, service_key) =
                places.remove(&row.id).unwrap_or_default();
            Ok(Item {
                item_type: ItemType::parse(&row.item_type).ok_or_else(|| {
                    ApiError::internal(format!("unknown item type {}", row.item_type))
                })?,
                priority: Priority::parse(&row.priority).ok_or_else(|| {
                    ApiError::internal(format!("unknown priority {}", row.priority))
                })?,
                column: ColumnRef {
                    id: row.column_id,
                    name: column_name,
                    category: ColumnCategory::parse(&category).ok_or_else(|| {
                        ApiError::internal(format!("unknown category {category}"))
                    })?,
                },
                service: service_key,
                board: board_key,
                labels: labels.remove(&row.id).unwrap_or_default(),
                raci: racis.remove(&row.id).unwrap_or_default(),
                external_refs: refs.remove(&row.id).unwrap_or_default(),
                demand: demand_fields.remove(&row.id),
                incident: incident_fields.remove(&row.id),
                sla: sla_states.remove(&row.id),
                id: row.id,
                key: row.key,
                title: row.title,
                description: row.description,
                rank: row.rank,
                due_date: row.due_date,
                created_by: row.created_by,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
                started_at: row.started_at.map(|t| t.and_utc()),
                done_at: row.done_at.map(|t| t.and_utc()),
                deleted_at: row.deleted_at.map(|t| t.and_utc()),
                version: row.version,
            })
        })
        .collect()
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
    let id = services::table
        .filter(services::key.eq(key))
        .select(services::id)
        .first::<i64>(conn)
        .optional()?;
    if id.is_none() {
        errors.push(FieldError::new(
            "service",
            format!("there is no service `{key}`"),
        ));
    }
    Ok(id)
}

fn write_labels(conn: &mut DbConnection, id: i64, labels: &[String]) -> Result<(), ApiError> {
    diesel::delete(item_labels::table.filter(item_labels::item_id.eq(id))).execute(conn)?;
    for label in labels {
        diesel::insert_into(item_labels::table)
            .values((item_labels::item_id.eq(id), item_labels::label.eq(label)))
            .execute(conn)?;
    }
    Ok(())
}

fn write_raci(conn: &mut DbConnection, id: i64, rows: &[(i64, RaciRole)]) -> Result<(), ApiError> {
    diesel::delete(item_raci::table.filter(item_raci::item_id.eq(id))).execute(conn)?;
    for (user_id, role) in rows {
        diesel::insert_into(item_raci::table)
            .values((
                item_raci::item_id.eq(id),
                item_raci::user_id.eq(user_id),
                item_raci::role.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

fn raci_summary(raci: &ItemRaci) -> Value {
    let ids = |people: &[PersonRef]| people.iter().map(|p| p.id).collect::<Vec<_>>();
    json!({
        "accountable": raci.accountable.as_ref().map(|p| p.id),
        "responsible": ids(&raci.responsible), "consulted": ids(&raci.consulted), "informed": ids(&raci.informed),
    })
}

/// A column's live items in board order (rank, then id), without `except`: `(id, key, rank)`.
fn column_order(
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
fn bottom_rank(conn: &mut DbConnection, column_id: i64) -> Result<String, ApiError> {
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
fn check_wip(
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
    /// The stored row of a live item by key (any case) or numeric id, or 404.
    pub(crate) fn row(conn: &mut DbConnection, key_or_id: &str) -> Result<ItemRow, ApiError> {
        // Two fixed queries rather than one boxed one: diesel keeps prepared statements only
        // for queries whose SQL never varies, and PostgreSQL then skips planning.
        let live = items::table
            .select(ItemRow::as_select())
            .filter(items::deleted_at.is_null());
        let row = match key_or_id.parse::<i64>() {
            Ok(id) => live.filter(items::id.eq(id)).first(conn).optional()?,
            Err(_) => live
                .filter(items::key.eq(key_or_id.to_uppercase()))
                .first(conn)
                .optional()?,
        };
        row.ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }

    /// The stored row of a live item, locked until the end of the transaction: the row every
    /// write of an item starts from, so that a concurrent writer waits and then reads the
    /// version this one leaves (see [`crate::common::db::lock`]).
    pub(crate) fn row_for_update(
        conn: &mut DbConnection,
        key_or_id: &str,
    ) -> Result<ItemRow, ApiError> {
        let row = Item::row(conn, key_or_id)?;
        if crate::common::db::lock(conn, Lock::Item(row.id))? {
            // Locked only now: read again what the lock protects.
            return Item::row(conn, &row.id.to_string());
        }
        Ok(row)
    }

    /// Moves a locked item's version and `updated_at` on for a change stored beside it (its
    /// RACI roles, a demand's decision), through the one versioned write.
    pub(crate) fn touch(conn: &mut DbConnection, row: &ItemRow) -> Result<(), ApiError> {
        crate::versioned_write!(conn, items, row.id, row.version).map(drop)
    }

    /// The stored row of a live item the caller may see: a requester sees only the demands of
    /// their own organization, and gets the same 404 for any other item as for a missing one.
    pub(crate) fn row_visible(
        conn: &mut DbConnection,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<ItemRow, ApiError> {
        let row = Item::row(conn, key_or_id)?;
        if let Visibility::Organization(org) = visibility {
            let requested_by: Option<i64> = if row.item_type == ItemType::Demand.as_str() {
                demand_details::table
                    .find(row.id)
                    .select(demand_details::requesting_org_id)
                    .first::<Option<i64>>(conn)
                    .optional()?
                    .flatten()
            } else {
                None
            };
            if org.is_none() || requested_by != org {
                return Err(ApiError::NotFound(format!(
                    "There is no item `{key_or_id}`."
                )));
            }
        }
        Ok(row)
    }

    /// The live item by key or id, if the caller may see it (404 otherwise).
    pub fn find_visible(
        conn: &mut DbConnection,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<Item, ApiError> {
        let row = Item::row_visible(conn, key_or_id, visibility)?;
        assemble(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }

    /// Items by id, in id order (deleted ones included), in a fixed number of queries.
    pub fn by_ids(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<Item>, ApiError> {
        let rows = items::table
            .filter(items::id.eq_any(ids))
            .order(items::id.asc())
            .select(ItemRow::as_select())
            .load(conn)?;
        assemble(conn, rows)
    }

    /// The live item by key or id.
    pub fn find(conn: &mut DbConnection, key_or_id: &str) -> Result<Item, ApiError> {
        let row = Item::row(conn, key_or_id)?;
        assemble(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }

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
        let mut raci_rows = match &form.raci {
            Some(input) => match raci::validate(conn, input, "raci.") {
                Ok(rows) => rows,
                Err(ApiError::Validation(e)) => {
                    errors.extend(e);
                    Vec::new()
                }
                Err(other) => return Err(other),
            },
            None => Vec::new(),
        };
        if errors.is_empty() && !raci_rows.iter().any(|(_, r)| *r == RaciRole::Accountable) {
            // No accountable named: take the service's template, if it has one.
            let template: Vec<(i64, String, bool)> = match service_id {
                Some(sid) => service_raci::table
                    .inner_join(users::table)
                    .filter(service_raci::service_id.eq(sid))
                    .select((service_raci::user_id, service_raci::role, users::active))
                    .load(conn)?,
                None => Vec::new(),
            };
            let lead = board.as_ref().and_then(|b| b.2);
            if template.iter().any(|(_, r, _)| r == "accountable") {
                for (user, role, active) in template {
                    let role = match role.as_str() {
                        "accountable" => RaciRole::Accountable,
                        "responsible" => RaciRole::Responsible,
                        "consulted" => RaciRole::Consulted,
                        _ => RaciRole::Informed,
                    };
                    // Deactivated people in an old template are skipped, except the accountable
                    // one, whom the template rules keep active.
                    if (active || role == RaciRole::Accountable)
                        && !raci_rows.contains(&(user, role))
                    {
                        raci_rows.push((user, role));
                    }
                }
            } else if let Some(lead) = lead {
                // No template either: the board lead is accountable, as in Jira.
                raci_rows.push((lead, RaciRole::Accountable));
            } else {
                errors.push(FieldError::new(
                    "raci.accountable",
                    "an accountable person is required: name one, give the service a RACI \
                     template, or give the board a lead",
                ));
            }
        }
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
        // Claim the next number; the row lock (PostgreSQL) or write lock (SQLite) serializes
        // concurrent creations, so numbers are never handed out twice. The board is locked
        // before its column, as every change of a board's columns does.
        diesel::update(boards::table.find(board_id))
            .set(boards::next_item_number.eq(boards::next_item_number + 1))
            .execute(conn)?;
        let number: i64 = boards::table
            .find(board_id)
            .select(boards::next_item_number)
            .first::<i64>(conn)?
            - 1;
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
        // The column's WIP limit and bottom rank are read and then written on: hold its lock.
        crate::common::db::lock(conn, Lock::Column(first_column.0))?;
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
        let rank = bottom_rank(conn, first_column.0)?;
        let stamp = now();
        let category = ColumnCategory::parse(&first_column.1);
        let id: i64 = diesel::insert_into(items::table)
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
            .returning(items::id)
            .get_result(conn)?;
        write_labels(conn, id, &labels)?;
        write_raci(conn, id, &raci_rows)?;
        write_refs(conn, id, &refs)?;
        if let Some(fields) = &demand {
            demands::store(conn, id, fields, None)?;
        }
        if let Some(fields) = &incident {
            incidents::store(conn, id, fields, None)?;
        }
        let item = Item::find(conn, &key)?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: id,
            },
            "created",
            actor,
            json!({"key": key, "type": form.item_type.as_str(), "title": title, "service": item.service,
                   "column": item.column.id, "priority": form.priority.as_str(), "labels": labels,
                   "raci": raci_summary(&item.raci), "demand": item.demand, "incident": item.incident,
                   "override_wip": overridden}),
        )?;
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
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: row.id,
            },
            "updated",
            actor,
            changed.into_data(),
        )?;
        Item::find(conn, &row.key)
    }

    /// Replaces the item's RACI roles (exactly one accountable), honouring `If-Match`.
    /// Who is accountable changes only by the hand of the present accountable person or of a
    /// manager (`actor_manages`): a member cannot make themself accountable and then decide.
    pub fn replace_raci(
        conn: &mut DbConnection,
        key_or_id: &str,
        input: &RaciInput,
        actor: &Actor,
        actor_manages: bool,
        expected: Precondition,
    ) -> Result<Item, ApiError> {
        let row = Item::row_for_update(conn, key_or_id)?;
        expected.check(row.version)?;
        let rows = raci::validate(conn, input, "")?;
        let Some(accountable) = rows
            .iter()
            .find(|(_, r)| *r == RaciRole::Accountable)
            .map(|(user, _)| *user)
        else {
            return Err(ApiError::invalid(
                "accountable",
                "is required: every item has one accountable person",
            ));
        };
        let before = raci_of(conn, &[row.id])?
            .remove(&row.id)
            .unwrap_or_default();
        let present = before.accountable.as_ref().map(|p| p.id);
        if present != Some(accountable) && !actor_manages && present != actor.user_id {
            return Err(ApiError::Forbidden(format!(
                "Only the accountable person of {}, managers and admins may change who is \
                 accountable for it.",
                row.key
            )));
        }
        Item::touch(conn, &row)?;
        write_raci(conn, row.id, &rows)?;
        let item = Item::find(conn, &row.key)?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: row.id,
            },
            "raci_changed",
            actor,
            json!({"old": raci_summary(&before), "new": raci_summary(&item.raci)}),
        )?;
        let (old, new) = (
            before.accountable.map(|p| p.id),
            item.raci.accountable.as_ref().map(|p| p.id),
        );
        if old != new {
            history::record(
                conn,
                Subject {
                    entity_type: "item",
                    entity_id: row.id,
                },
                "accountable_changed",
                actor,
                json!({"old": old, "new": new}),
            )?;
        }
        Ok(item)
    }

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
        incidents::on_move(
            conn,
            row.id,
            row.item_type == ItemType::Incident.as_str(),
            ColumnCategory::parse(&category),
            request.resolution.as_deref(),
        )?;
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

    /// One page of items in the requested order, in a fixed number of queries whatever the
    /// page size: the page, then labels, RACI, references, places, and demand and incident
    /// fields when the page holds such items.
    pub fn list(
        conn: &mut DbConnection,
        filter: &ItemFilter,
        visibility: Visibility,
    ) -> Result<Page<Item>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let sort = filter.sort.unwrap_or_default();
        let after = paging
            .after::<SortCursor>()?
            .map(|c| c.for_sort(sort))
            .transpose()?;
        let mut query = items::table.select(ItemRow::as_select()).into_boxed();
        if let Visibility::Organization(org) = visibility {
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(demands_of(org.unwrap_or(-1)))),
            );
        }
        if let Some(decision) = filter.decision {
            let ids = demand_details::table
                .filter(demand_details::decision.eq(decision.as_str()))
                .select(demand_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if let Some(severity) = filter.severity {
            let ids = incident_details::table
                .filter(incident_details::severity.eq(severity.as_str()))
                .select(incident_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Incident.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if let Some(org) = &filter.requesting_organization {
            let ids = demand_details::table
                .inner_join(organizations::table)
                .filter(
                    crate::common::db::lower(organizations::short_name)
                        .eq(org.trim().to_lowercase()),
                )
                .select(demand_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if !filter.include_deleted.unwrap_or(false) {
            query = query.filter(items::deleted_at.is_null());
        }
        if let Some(board) = &filter.board {
            let ids = boards::table
                .filter(boards::key.eq(board.trim().to_uppercase()))
                .select(boards::id);
            query = query.filter(items::board_id.eq_any(ids));
        }
        if let Some(service) = &filter.service {
            let ids = services::table
                .filter(services::key.eq(service.trim().to_string()))
                .select(services::id.nullable());
            query = query.filter(items::service_id.eq_any(ids));
        }
        if let Some(item_type) = filter.item_type {
            query = query.filter(items::item_type.eq(item_type.as_str()));
        }
        if let Some(column) = filter.column {
            query = query.filter(items::column_id.eq(column));
        }
        if let Some(category) = filter.category {
            let ids = board_columns::table
                .filter(board_columns::category.eq(category.as_str()))
                .select(board_columns::id);
            query = query.filter(items::column_id.eq_any(ids));
        }
        if let Some(priority) = filter.priority {
            query = query.filter(items::priority.eq(priority.as_str()));
        }
        for (user, role) in [
            (filter.accountable, "accountable"),
            (filter.responsible, "responsible"),
        ] {
            if let Some(user) = user {
                let ids = item_raci::table
                    .filter(item_raci::user_id.eq(user).and(item_raci::role.eq(role)))
                    .select(item_raci::item_id);
                query = query.filter(items::id.eq_any(ids));
            }
        }
        if let Some(user) = filter.involved {
            let ids = item_raci::table
                .filter(item_raci::user_id.eq(user))
                .select(item_raci::item_id);
            query = query.filter(items::id.eq_any(ids));
        }
        if let Some(label) = &filter.label {
            let ids = item_labels::table
                .filter(item_labels::label.eq(label.trim().to_lowercase()))
                .select(item_labels::item_id);
            query = query.filter(items::id.eq_any(ids));
        }
        match (&filter.external_system, &filter.external_key) {
            (Some(system), Some(key)) => {
                let ids = item_external_refs::table
                    .filter(
                        item_external_refs::system
                            .eq(system.trim().to_string())
                            .and(item_external_refs::ext_key.eq(key.trim().to_string())),
                    )
                    .select(item_external_refs::item_id);
                query = query.filter(items::id.eq_any(ids));
            }
            (None, None) => {}
            _ => {
                return Err(ApiError::bad_field(
                    "external_key",
                    "give external_system and external_key together",
                ));
            }
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(items::updated_at.ge(since.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            query = query.filter(
                crate::common::db::lower(items::key)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(crate::common::db::lower(items::title)
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(crate::common::db::lower(items::description)
                        .like(pattern)
                        .escape('\\')),
            );
        }
        let bad_cursor = || ApiError::bad_field("cursor", "is not a cursor returned by this list");
        let time_after = |after: Option<SortCursor>| match after {
            Some(c) => parse_cursor_time(&c.v)
                .map(|v| Some((v, c.id)))
                .ok_or_else(bad_cursor),
            None => Ok(None),
        };
        use ItemSort as S;
        let desc = matches!(
            sort,
            S::CreatedAtDesc | S::UpdatedAtDesc | S::RankDesc | S::PriorityDesc
        );
        query = match sort {
            S::CreatedAt | S::CreatedAtDesc => {
                let after = time_after(after)?;
                crate::keyset_order!(query, items::created_at, items::id, desc, after)
            }
            S::UpdatedAt | S::UpdatedAtDesc => {
                let after = time_after(after)?;
                crate::keyset_order!(query, items::updated_at, items::id, desc, after)
            }
            S::Rank | S::RankDesc => {
                let after = after.map(|c| (c.v, c.id));
                crate::keyset_order!(query, items::rank, items::id, desc, after)
            }
            S::Priority | S::PriorityDesc => {
                let after = match after {
                    Some(c) => Some((c.v.parse::<i32>().map_err(|_| bad_cursor())?, c.id)),
                    None => None,
                };
                crate::keyset_order!(query, priority_order(), items::id, desc, after)
            }
        };
        let rows = query.limit(limit + 1).load(conn)?;
        let items = assemble(conn, rows)?;
        let mut page = Page::from_rows(items, limit, |_| ());
        if page.next_cursor.is_some()
            && let Some(last) = page.items.last()
        {
            let v = match sort {
                S::CreatedAt | S::CreatedAtDesc => format_cursor_time(last.created_at),
                S::UpdatedAt | S::UpdatedAtDesc => format_cursor_time(last.updated_at),
                S::Rank | S::RankDesc => last.rank.clone(),
                S::Priority | S::PriorityDesc => last.priority.order().to_string(),
            };
            page.next_cursor = Some(encode_cursor(&SortCursor::new(sort, v, last.id)));
        }
        Ok(page)
    }
}

/// The urgency of an item's priority as a number, 0 for critical: sorting the stored text
/// would put `critical` after `high`.
#[diesel::dsl::auto_type]
fn priority_order() -> _ {
    let critical: &'static str = "critical";
    let high: &'static str = "high";
    let medium: &'static str = "medium";
    diesel::dsl::case_when(
        items::priority.eq(critical),
        0_i32.into_sql::<diesel::sql_types::Integer>(),
    )
    .when(
        items::priority.eq(high),
        1_i32.into_sql::<diesel::sql_types::Integer>(),
    )
    .when(
        items::priority.eq(medium),
        2_i32.into_sql::<diesel::sql_types::Integer>(),
    )
    .otherwise(3_i32.into_sql::<diesel::sql_types::Integer>())
}

/// The ids of the demands an organization raised, as a subquery: what a requester may see.
#[diesel::dsl::auto_type]
pub(crate) fn demands_of(org: i64) -> _ {
    demand_details::table
        .filter(demand_details::requesting_org_id.eq(org))
        .select(demand_details::item_id)
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

/// Gives a deactivated person's open items (not done, not deleted) to `replacement` as their
/// accountable person: each item's version moves on and its history gets an
/// `accountable_changed` event, as with a RACI change by hand.
pub(crate) fn hand_over_items(
    conn: &mut DbConnection,
    user_id: i64,
    replacement: i64,
    actor: &Actor,
) -> Result<usize, ApiError> {
    let held: Vec<(i64, i64)> = items::table
        .inner_join(item_raci::table)
        .filter(
            item_raci::user_id
                .eq(user_id)
                .and(item_raci::role.eq(RaciRole::Accountable.as_str()))
                .and(items::deleted_at.is_null())
                .and(items::done_at.is_null()),
        )
        .select((items::id, items::version))
        .load(conn)?;
    if held.is_empty() {
        return Ok(0);
    }
    raci::check_replacement(conn, user_id, replacement)?;
    for (item_id, _) in &held {
        crate::common::db::lock(conn, Lock::Item(*item_id))?;
    }
    for (item_id, _) in &held {
        // Read under the lock: the version other writers see until this transaction ends.
        let version: i64 = items::table
            .find(item_id)
            .select(items::version)
            .first(conn)?;
        diesel::update(
            item_raci::table.filter(
                item_raci::item_id
                    .eq(item_id)
                    .and(item_raci::role.eq(RaciRole::Accountable.as_str())),
            ),
        )
        .set(item_raci::user_id.eq(replacement))
        .execute(conn)?;
        crate::versioned_write!(conn, items, *item_id, version)?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: *item_id,
            },
            "accountable_changed",
            actor,
            json!({"old": user_id, "new": replacement, "reason": "deactivated"}),
        )?;
    }
    Ok(held.len())
}
