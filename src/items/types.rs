//! The vocabulary of items: their types and priorities, the item as the API shows it, the
//! bodies of create, change and move, and the filters and orders of the list.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::board::model::ColumnCategory;
use crate::catalog::raci::{PersonRef, RaciInput};
use crate::common::query::{PersonParam, Since};
use crate::items::demand::{Decision, DemandFields, DemandInput};
use crate::items::incident::{IncidentFields, IncidentInput};
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
#[schema(example = json!({"system": "jira", "key": "10042", "alias": "OZG-123", "url": "https://jira.example.org/browse/OZG-123"}))]
pub struct ExternalRef {
    /// The other system: lower-case letters, digits, `-`, `_` (`jira`, `openproject`).
    #[schema(min_length = 1, max_length = 31, pattern = "^[a-z][a-z0-9_-]{0,30}$")]
    pub system: String,
    /// The item's *stable* id there (Jira's numeric issue id, OpenProject's work-package id),
    /// which survives a move between projects; unique per system across all items.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub key: String,
    /// A link to it there.
    #[schema(max_length = 2000, pattern = "^https?://[^\\s]+$")]
    pub url: Option<String>,
    /// Its human key there (`OZG-123`), which may change (a Jira issue moved to another
    /// project gets a new key); for reading, not for finding.
    #[serde(default)]
    #[schema(max_length = 200, pattern = r"^[^\u0000]*$")]
    pub alias: Option<String>,
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
    /// Soonest due first; items without a due date last.
    #[serde(rename = "due_date")]
    DueDate,
    /// Latest due first; items without a due date first.
    #[serde(rename = "-due_date")]
    DueDateDesc,
}

/// Filters of `GET /api/v1/items`. Filters combine with AND; a list parameter takes several
/// values, comma-separated (`category=todo,in_progress`) or repeated, and matches any of them.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemFilter {
    /// Only items on this board (key).
    pub board: Option<String>,
    /// Only items of this service (key).
    pub service: Option<String>,
    /// Only items of these types (`demand`, `task`, `incident`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "crate::common::parse::comma_list"
    )]
    #[param(rename = "type", style = Form, explode = false, max_items = 20)]
    pub item_type: Option<Vec<ItemType>>,
    /// Only items in this column (id).
    pub column: Option<i64>,
    /// Only items in columns of these categories (`todo`, `in_progress`, `done`).
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub category: Option<Vec<ColumnCategory>>,
    /// `true`: only items not in a `done` column (what is still to do); `false`: only items in
    /// one.
    pub open: Option<bool>,
    /// Only items of these priorities.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub priority: Option<Vec<Priority>>,
    /// Only items this user is accountable for: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub accountable: Option<PersonParam>,
    /// Only items this user is responsible for: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub responsible: Option<PersonParam>,
    /// Only items where this user holds any RACI role ("my items"): a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub involved: Option<PersonParam>,
    /// Only items with this label.
    pub label: Option<String>,
    /// Only items due on or before this date.
    pub due_before: Option<NaiveDate>,
    /// Only items due on or after this date.
    pub due_after: Option<NaiveDate>,
    /// `true`: only items past their due date (due before today in the app's time zone) and
    /// not in a `done` column; `false`: only items that are not.
    pub overdue: Option<bool>,
    /// With `external_key`: the item known under that key in this system (`jira`).
    pub external_system: Option<String>,
    /// With `external_system`: the item's stable id there, as in `external_refs[].key`
    /// (Jira's issue id `10042`, not its `alias` `OZG-123`). `GET
    /// /items/by-ref/{system}/{key}` finds the same item directly.
    pub external_key: Option<String>,
    /// Case-insensitive search in key, title and description.
    pub q: Option<String>,
    /// Only items changed at or after this instant: an RFC 3339 time, or a span back from now
    /// (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub updated_since: Option<Since>,
    /// Include tombstones of deleted items (`deleted_at` set), for sync scripts.
    pub include_deleted: Option<bool>,
    /// Only demands with these decisions.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub decision: Option<Vec<Decision>>,
    /// Only incidents of these severities.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub severity: Option<Vec<Severity>>,
    /// Only demands raised by this organization (short name).
    pub requesting_organization: Option<String>,
    /// Order: `created_at` (default), `updated_at`, `rank`, `priority` (most urgent first),
    /// `due_date` (soonest first, items without one last); prefix `-` to reverse. Ties are
    /// broken by id.
    #[param(inline)]
    pub sort: Option<ItemSort>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// With `Accept: text/csv`: `excel-de` (default: UTF-8 BOM, `;`, CRLF, `dd.mm.yyyy`,
    /// decimal comma) or `rfc4180` (`,`, ISO 8601).
    pub dialect: Option<crate::common::csv_out::Dialect>,
}
