//! The rollout's types: statuses, the checklist setting, waves and entries as the API shows
//! them, and the bodies that change them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Where a service stands in one administration.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    /// Planned in a wave; nothing done yet.
    Planned,
    /// The administration prepares: agreements, responsibility data, connections.
    Preparing,
    /// Technically connected (transport, DVDV, mailbox); not yet tested.
    TechnicalReady,
    /// In the production test.
    Testing,
    /// Live: citizens of this administration use the service.
    Live,
    /// Halted for now (a blocker, a withdrawal).
    Paused,
    /// The service does not apply to this administration; left out of the shares.
    NotApplicable,
}
text_enum!(RolloutStatus {
    Planned => "planned",
    Preparing => "preparing",
    TechnicalReady => "technical_ready",
    Testing => "testing",
    Live => "live",
    Paused => "paused",
    NotApplicable => "not_applicable",
});

impl RolloutStatus {
    /// Every status, in the order of the rollout.
    pub const ALL: [RolloutStatus; 7] = [
        Self::Planned,
        Self::Preparing,
        Self::TechnicalReady,
        Self::Testing,
        Self::Live,
        Self::Paused,
        Self::NotApplicable,
    ];

    /// Whether the administration is on its way (neither live, paused nor out of scope).
    pub fn in_progress(self) -> bool {
        matches!(
            self,
            Self::Planned | Self::Preparing | Self::TechnicalReady | Self::Testing
        )
    }
}

/// One prerequisite of a joining administration, as configured (`[rollout] checklist`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistStep {
    /// Its key: lower-case letters, digits and `_`.
    pub key: String,
    /// What it is.
    pub label: String,
    /// Whether `live` needs it done.
    #[serde(default = "yes")]
    pub mandatory: bool,
}

fn yes() -> bool {
    true
}

/// The rollout settings (`[rollout]`): the checklist every entry carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutSettings {
    /// The prerequisites of a joining administration, in order.
    pub checklist: Vec<ChecklistStep>,
}

impl Default for RolloutSettings {
    fn default() -> Self {
        let step = |key: &str, label: &str, mandatory: bool| ChecklistStep {
            key: key.into(),
            label: label.into(),
            mandatory,
        };
        RolloutSettings {
            checklist: vec![
                step("dpa", "Data-processing agreement (AVV) signed", true),
                step(
                    "responsibility_data",
                    "Responsibility data in the editorial system / PVOG",
                    true,
                ),
                step(
                    "transport",
                    "Transport connection (OSCI or FIT-Connect)",
                    true,
                ),
                step("dvdv", "DVDV entry", true),
                step("mailbox", "Return channel / mailbox", true),
                step("payment", "Payment component (where fees are due)", false),
                step("case_management", "Case-management system connected", true),
                step("production_test", "Production test passed", true),
                step("announcement", "Announcement to citizens", false),
            ],
        }
    }
}

impl RolloutSettings {
    /// Checks the settings: keys well-formed and distinct, at least one step.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for step in &self.checklist {
            let valid = !step.key.is_empty()
                && step.key.len() <= 40
                && step
                    .key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !valid {
                return Err(format!(
                    "rollout.checklist: key `{}` must be 1–40 lower-case letters, digits or _",
                    step.key
                ));
            }
            if !seen.insert(step.key.as_str()) {
                return Err(format!("rollout.checklist: key `{}` repeats", step.key));
            }
            if step.label.trim().is_empty() {
                return Err(format!(
                    "rollout.checklist: step `{}` needs a label",
                    step.key
                ));
            }
        }
        Ok(())
    }
}

/// A checklist step of an entry: done or not, by whom and when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChecklistState {
    /// The step's key.
    pub key: String,
    /// What it is.
    pub label: String,
    /// Whether `live` needs it.
    pub mandatory: bool,
    /// Whether it is done.
    pub done: bool,
    /// Who ticked it (a user id; `null` for the system or when not done).
    pub done_by: Option<i64>,
    /// When it was ticked.
    pub done_at: Option<DateTime<Utc>>,
}

/// What is stored of a done step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoneStep {
    /// Who.
    pub by: Option<i64>,
    /// When (RFC 3339).
    pub at: DateTime<Utc>,
}

/// The stored checklist: the done steps by key.
pub type StoredChecklist = BTreeMap<String, DoneStep>;

/// A rollout wave of a service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"id": 1, "service": "wohngeld", "name": "Welle 1",
    "planned_start": "2027-01-04", "planned_go_live": "2027-03-01", "entries": 12,
    "created_at": "2026-12-04T08:00:00Z", "updated_at": "2026-12-04T08:00:00Z", "version": 1}))]
pub struct Wave {
    /// Numeric id.
    pub id: i64,
    /// The service's key.
    pub service: String,
    /// Its name, unique within the service (`Welle 1`, `Pilot`).
    pub name: String,
    /// When the wave starts.
    pub planned_start: Option<NaiveDate>,
    /// When its administrations are to go live; an entry without a date of its own takes it.
    pub planned_go_live: Option<NaiveDate>,
    /// How many entries belong to it.
    pub entries: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// The body of `POST /api/v1/services/{key}/waves`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Welle 1", "planned_start": "2027-01-04", "planned_go_live": "2027-03-01"}))]
pub struct NewWave {
    /// 1–80 characters, unique within the service.
    #[schema(min_length = 1, max_length = 80)]
    pub name: String,
    /// When the wave starts.
    pub planned_start: Option<NaiveDate>,
    /// When its administrations are to go live.
    pub planned_go_live: Option<NaiveDate>,
}

/// The body of `PATCH /api/v1/services/{key}/waves/{name}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaveChanges {
    /// New name.
    #[schema(min_length = 1, max_length = 80)]
    pub name: Option<String>,
    /// New start; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub planned_start: Option<Option<NaiveDate>>,
    /// New go-live; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub planned_go_live: Option<Option<NaiveDate>>,
}

/// A rollout entry: one online service in one municipal administration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RolloutEntry {
    /// Numeric id.
    pub id: i64,
    /// The service's key.
    pub service: String,
    /// The administration's short name.
    pub administration: String,
    /// The administration's name.
    pub administration_name: String,
    /// The district of the administration (short name); `null` for a kreisfreie Stadt.
    pub district: Option<String>,
    /// Where the rollout stands.
    pub status: RolloutStatus,
    /// The wave (its name) of the service this entry belongs to.
    pub wave: Option<String>,
    /// When it is to go live (its own date, else its wave's).
    pub planned_go_live: Option<NaiveDate>,
    /// When it went live; set when the status becomes `live`.
    pub actual_go_live: Option<NaiveDate>,
    /// Who drives it (a user id); `null`: the service's RACI.
    pub owner_id: Option<i64>,
    /// Who answers for it: `owner_id`, else the accountable person of the service's RACI
    /// template (`null` when it has none).
    pub effective_owner_id: Option<i64>,
    /// What holds it up, in words.
    pub blocker: Option<String>,
    /// Items (by key) that block it; each such item lists this entry at
    /// `GET /api/v1/items/{key}/rollout`.
    pub blocked_by: Vec<String>,
    /// Whether anything blocks it (`blocker` or `blocked_by`).
    pub blocked: bool,
    /// Whether the planned go-live has passed and it is not live (nor out of scope).
    pub overdue: bool,
    /// The prerequisites, in the configured order.
    pub checklist: Vec<ChecklistState>,
    /// Free notes.
    pub notes: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// The body of `PUT` (creates; on an existing entry the same as `PATCH`) and `PATCH
/// /api/v1/rollout/{service}/{administration}`. Only the fields present change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "testing", "checklist": {"dvdv": true, "mailbox": true}}))]
pub struct EntryChanges {
    /// New status. `live` needs every mandatory checklist step done, or a manager's
    /// `override`; leaving `live` needs a `reason`.
    pub status: Option<RolloutStatus>,
    /// The wave (by name, of this service); `null` takes it out of its wave.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub wave: Option<Option<String>>,
    /// Planned go-live; `null` removes it (the wave's date applies).
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub planned_go_live: Option<Option<NaiveDate>>,
    /// The day it went live, when becoming `live` on another day than today.
    pub actual_go_live: Option<NaiveDate>,
    /// Who drives it (a user id); `null`: the service's RACI.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub owner_id: Option<Option<i64>>,
    /// What holds it up; `null` or empty removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 2000)]
    pub blocker: Option<Option<String>>,
    /// The items (keys such as `OPS-12`) that block it: the whole list.
    #[schema(max_items = 50)]
    pub blocked_by: Option<Vec<String>>,
    /// Checklist steps by key: `true` ticks one (by you, now), `false` unticks it.
    pub checklist: Option<BTreeMap<String, bool>>,
    /// Notes (the whole text).
    #[schema(max_length = 10000)]
    pub notes: Option<String>,
    /// Why a `live` entry leaves `live` (a withdrawal); required then, recorded in the
    /// history.
    #[schema(max_length = 2000)]
    pub reason: Option<String>,
    /// A manager's reason to take it `live` with mandatory steps open; recorded in the
    /// history with the open steps. Managers and admins only.
    #[serde(rename = "override")]
    #[schema(max_length = 2000)]
    pub override_reason: Option<String>,
}

/// The body of `POST /api/v1/rollout/plan`: exactly one of `administrations`, `district`,
/// `all`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"service": "wohngeld", "wave": "Welle 1", "district": "LUP"}))]
pub struct RolloutPlan {
    /// The service's key.
    pub service: String,
    /// The wave (by name, of the service) the entries belong to.
    pub wave: String,
    /// The administrations by short name.
    #[schema(max_items = 500)]
    pub administrations: Option<Vec<String>>,
    /// Every administration of this district (short or full name).
    pub district: Option<String>,
    /// `true`: every municipal administration.
    pub all: Option<bool>,
}

/// What `POST /api/v1/rollout/plan` did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PlanReport {
    /// Entries created (`planned`).
    pub created: Vec<String>,
    /// Administrations that had an entry already (left as they are).
    pub existing: Vec<String>,
}

/// The query of `GET /api/v1/rollout`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EntryFilter {
    /// Only this service's entries (key).
    pub service: Option<String>,
    /// Only this administration's entries (short name).
    pub administration: Option<String>,
    /// Only entries with this status.
    pub status: Option<RolloutStatus>,
    /// `true`: only entries something blocks (a `blocker` or blocking items); `false`: only
    /// the others.
    pub blocked: Option<bool>,
    /// `true`: only entries whose planned go-live (their own, else their wave's) has passed
    /// while they are not live nor out of scope; `false`: only the others.
    pub overdue: Option<bool>,
    /// Only entries changed at or after this instant: an RFC 3339 time, or a span back from
    /// now (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub updated_since: Option<crate::common::query::Since>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The query of `GET /api/v1/rollout/matrix`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MatrixFilter {
    /// Only these services (keys, comma-separated).
    pub service: Option<String>,
    /// Only the administrations of this district (short name or name).
    pub district: Option<String>,
    /// Only entries of waves with this name.
    pub wave: Option<String>,
    /// Only cells with this status.
    pub status: Option<RolloutStatus>,
    /// Only administrations of this kind: `amt`, `municipality`, `city`.
    pub kind: Option<String>,
    /// `csv` or `svg` instead of JSON (the same as `Accept: text/csv` or `image/svg+xml`).
    pub format: Option<String>,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MatrixCell {
    /// The status.
    pub status: RolloutStatus,
    /// The planned go-live (the entry's, else its wave's).
    pub planned_go_live: Option<NaiveDate>,
    /// Whether anything blocks it.
    pub blocked: bool,
    /// The wave's name.
    pub wave: Option<String>,
}

/// A row of the matrix: one administration.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MatrixRow {
    /// The administration's short name.
    pub administration: String,
    /// Its name.
    pub name: String,
    /// `amt`, `municipality` or `city`.
    pub kind: String,
    /// Its district's short name; `null` for a kreisfreie Stadt.
    pub district: Option<String>,
    /// Its cells by service key; a service without an entry here is absent.
    pub cells: BTreeMap<String, MatrixCell>,
}

/// A column of the matrix: one service.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MatrixColumn {
    /// The service's key.
    pub key: String,
    /// Its name.
    pub name: String,
}

/// The rollout matrix: administrations × services.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Matrix {
    /// The services, in key order.
    pub services: Vec<MatrixColumn>,
    /// The administrations, grouped by district (the kreisfreie Städte first), by name.
    pub rows: Vec<MatrixRow>,
}

/// How `GET /api/v1/rollout/progress` groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgressBy {
    /// One group per service.
    #[default]
    Service,
    /// One group per district (the kreisfreie Städte as one).
    District,
    /// One group per wave (`service/wave`), entries without a wave as one per service.
    Wave,
}

/// The query of `GET /api/v1/rollout/progress`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressQuery {
    /// `service` (default), `district` or `wave`.
    pub by: Option<ProgressBy>,
    /// Only this service (key).
    pub service: Option<String>,
}

/// The figures of one group (or of all).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ProgressFigures {
    /// Entries per status (every status, zeros included).
    pub counts: BTreeMap<String, i64>,
    /// All entries.
    pub total: i64,
    /// Entries the service applies to: all but `not_applicable`.
    pub applicable: i64,
    /// Live entries.
    pub live: i64,
    /// `live / applicable`, from 0 to 1; `null` when nothing applies.
    pub live_share: Option<f64>,
    /// Entries whose planned go-live has passed and that are not live (nor out of scope).
    pub overdue: i64,
    /// Entries with a blocker or blocking items.
    pub blocked: i64,
    /// Whether every applicable entry is live (and there is one).
    pub live_everywhere: bool,
}

/// One group of the progress.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressGroup {
    /// The group's key: a service key, a district's short name (`null` for the kreisfreie
    /// Städte), or `service/wave`.
    pub key: Option<String>,
    /// Its name.
    pub name: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: ProgressFigures,
}

/// `GET /api/v1/rollout/progress`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// How it is grouped.
    pub by: ProgressBy,
    /// The groups.
    pub groups: Vec<ProgressGroup>,
    /// All entries together.
    pub total: ProgressFigures,
    /// Services live everywhere they apply (keys), the figure the federal dashboard counts.
    pub services_live_everywhere: Vec<String>,
}

/// A rollout entry an item blocks, for `GET /api/v1/items/{key}/rollout`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BlockedEntry {
    /// The service's key.
    pub service: String,
    /// The administration's short name.
    pub administration: String,
    /// The entry's status.
    pub status: RolloutStatus,
}

/// What a matrix upload did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MatrixUploadReport {
    /// Cells read.
    pub cells: usize,
    /// Entries created.
    pub created: usize,
    /// Entries whose status changed.
    pub updated: usize,
    /// Cells equal to what was stored.
    pub unchanged: usize,
}
