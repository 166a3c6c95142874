//! Demand fields (intake and decision), their storage beside the item row, the decision rule
//! and the roadmap of accepted demands.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::catalog::organizations::organization_id;
use crate::common::actor::Actor;
use crate::common::actor::{Role, Visibility};
use crate::common::db::schema::{board_columns, demand_details, items, organizations, services};
use crate::common::db::{DbConnection, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Subject};
use crate::common::text::check_text;
use crate::common::version::Precondition;
use crate::items::model::{Item, MoveRequest};

/// How much work a demand needs, in T-shirt sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effort {
    /// Hours.
    Xs,
    /// Days.
    S,
    /// Weeks.
    M,
    /// Months.
    L,
    /// A project of its own.
    Xl,
}
text_enum!(Effort { Xs => "xs", S => "s", M => "m", L => "l", Xl => "xl" });

/// Where a demand stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Not decided yet (every new demand).
    Pending,
    /// Will be done; it appears on the roadmap.
    Accepted,
    /// Will not be done; the reason says why.
    Rejected,
    /// Not now; the reason says until when or why.
    Deferred,
}
text_enum!(Decision { Pending => "pending", Accepted => "accepted", Rejected => "rejected", Deferred => "deferred" });

/// The demand fields of a demand item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "requesting_organization": "LK-VG", "proposed_service": null, "desired_date": "2027-06-30",
    "justification": "Statutory change on 1 July 2027", "value": 4, "effort": "m",
    "decision": "accepted", "decision_reason": null, "decided_by": 3,
    "decided_at": "2026-11-29T09:00:00Z", "target_quarter": "2027-Q2"
}))]
pub struct DemandFields {
    /// Short name of the organization that asks.
    pub requesting_organization: Option<String>,
    /// Name of a service that does not exist yet, when the demand is for a new service.
    pub proposed_service: Option<String>,
    /// When the requester would like it.
    pub desired_date: Option<NaiveDate>,
    /// Business justification (Markdown).
    pub justification: String,
    /// Business value, 1 (low) to 5 (high).
    pub value: Option<i32>,
    /// Estimated effort.
    pub effort: Option<Effort>,
    /// The decision; `pending` until someone decides.
    pub decision: Decision,
    /// Why it was rejected or deferred (or any note on an acceptance).
    pub decision_reason: Option<String>,
    /// Id of the user who decided.
    pub decided_by: Option<i64>,
    /// When it was decided.
    pub decided_at: Option<DateTime<Utc>>,
    /// The quarter it is planned for, such as `2027-Q2`.
    pub target_quarter: Option<String>,
}

/// Demand fields on `POST /items` and `PATCH /items/{key}`: an absent field stays as it is,
/// `null` clears it. The decision is not here: it has its own endpoint.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": 4, "effort": "m", "target_quarter": "2027-Q2"}))]
pub struct DemandInput {
    /// Short name of the organization that asks.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub requesting_organization: Option<Option<String>>,
    /// Name of a service that does not exist yet (then `service` may be omitted).
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 200)]
    pub proposed_service: Option<Option<String>>,
    /// When the requester would like it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub desired_date: Option<Option<NaiveDate>>,
    /// Business justification (Markdown), up to 64 KiB.
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub justification: Option<String>,
    /// Business value, 1 (low) to 5 (high).
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(minimum = 1, maximum = 5)]
    pub value: Option<Option<i32>>,
    /// Estimated effort.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub effort: Option<Option<Effort>>,
    /// The quarter it is planned for, `YYYY-Qn`.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(pattern = "^[0-9]{4}-Q[1-4]$")]
    pub target_quarter: Option<Option<String>>,
}

/// The body of `POST /api/v1/demands`: a stakeholder raises a demand.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "title": "Wohngeld: Nachweise nachreichen", "service": "wohngeld-antrag",
    "description": "Applicants should be able to upload missing documents later.",
    "desired_date": "2027-06-30", "justification": "Half of all applications lack a document."
}))]
pub struct DemandIntake {
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
    /// Key of the online service it concerns; omit for a new service and name it in
    /// `proposed_service`.
    pub service: Option<String>,
    /// Name of the new service wanted, when there is no service yet.
    #[schema(max_length = 200)]
    pub proposed_service: Option<String>,
    /// Short name of the organization that asks; the requester's own when omitted.
    pub requesting_organization: Option<String>,
    /// When the requester would like it.
    pub desired_date: Option<NaiveDate>,
    /// Business justification (Markdown): why it matters, for whom, by when.
    #[schema(
        min_length = 1,
        max_length = 65536,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub justification: String,
}

/// The body of `POST /api/v1/items/{key}/decision`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"decision": "accepted", "target_quarter": "2027-Q2", "value": 4, "effort": "m"}))]
pub struct DecisionRequest {
    /// The decision.
    pub decision: Decision,
    /// Why; required when rejecting or deferring.
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub reason: Option<String>,
    /// The quarter an accepted demand is planned for, `YYYY-Qn`.
    #[schema(pattern = "^[0-9]{4}-Q[1-4]$")]
    pub target_quarter: Option<String>,
    /// Business value, 1–5, if it is set with the decision.
    #[schema(minimum = 1, maximum = 5)]
    pub value: Option<i32>,
    /// Effort, if it is set with the decision.
    pub effort: Option<Effort>,
    /// Managers only: accept the demand into its next column even when that column is at its
    /// WIP limit (recorded in the history). Without it, accepting into a full column is a 409
    /// and the demand stays undecided in intake.
    #[serde(default)]
    pub override_wip: bool,
}

/// The demand fields resolved against storage, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvedDemand {
    requesting_org_id: Option<i64>,
    proposed_service: Option<String>,
    desired_date: Option<NaiveDate>,
    justification: String,
    value: Option<i32>,
    effort: Option<Effort>,
    target_quarter: Option<String>,
}

impl ResolvedDemand {
    /// The proposed service, which stands in for a service on a demand for a new one.
    pub(crate) fn proposed_service(&self) -> Option<&str> {
        self.proposed_service.as_deref()
    }

    /// The editable fields as shown in the history.
    fn as_history(&self) -> Value {
        json!({
            "requesting_org_id": self.requesting_org_id, "proposed_service": self.proposed_service,
            "desired_date": self.desired_date, "justification": self.justification,
            "value": self.value, "effort": self.effort, "target_quarter": self.target_quarter,
        })
    }
}

/// `YYYY-Qn`, such as `2027-Q2`.
pub fn is_quarter(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 7
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && &bytes[4..6] == b"-Q"
        && (b'1'..=b'4').contains(&bytes[6])
}

fn check_quarter(field: &str, quarter: Option<&str>, errors: &mut Vec<FieldError>) {
    if let Some(q) = quarter
        && !is_quarter(q)
    {
        errors.push(FieldError::new(field, "must be a quarter such as 2027-Q2"));
    }
}

fn check_value(field: &str, value: Option<i32>, errors: &mut Vec<FieldError>) {
    if value.is_some_and(|v| !(1..=5).contains(&v)) {
        errors.push(FieldError::new(field, "must be between 1 and 5"));
    }
}

/// Merges an input over the current fields (none for a new demand), checking every value;
/// problems go to `errors` with the field's full name (`demand.value`).
pub(crate) fn resolve(
    conn: &mut DbConnection,
    input: &DemandInput,
    current: Option<&DemandRow>,
    errors: &mut Vec<FieldError>,
) -> Result<ResolvedDemand, ApiError> {
    let requesting_org_id = match &input.requesting_organization {
        Some(Some(name)) => organization_id(conn, "demand.requesting_organization", name, errors)?,
        Some(None) => None,
        None => current.and_then(|c| c.requesting_org_id),
    };
    let proposed_service = match &input.proposed_service {
        Some(p) => p
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string),
        None => current.and_then(|c| c.proposed_service.clone()),
    };
    if let Some(p) = &proposed_service {
        check_text(errors, "demand.proposed_service", p, 200);
    }
    let justification = input
        .justification
        .clone()
        .or_else(|| current.map(|c| c.justification.clone()))
        .unwrap_or_default();
    check_text(errors, "demand.justification", &justification, 65_536);
    let value = input.value.unwrap_or(current.and_then(|c| c.value));
    check_value("demand.value", value, errors);
    let effort = match input.effort {
        Some(e) => e,
        None => current.and_then(|c| c.effort.as_deref().and_then(Effort::parse)),
    };
    let target_quarter = match &input.target_quarter {
        Some(q) => q.as_deref().map(str::trim).map(str::to_string),
        None => current.and_then(|c| c.target_quarter.clone()),
    };
    check_quarter("demand.target_quarter", target_quarter.as_deref(), errors);
    Ok(ResolvedDemand {
        requesting_org_id,
        proposed_service,
        desired_date: input
            .desired_date
            .unwrap_or(current.and_then(|c| c.desired_date)),
        justification,
        value,
        effort,
        target_quarter,
    })
}

/// The stored demand fields of an item.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = demand_details)]
pub(crate) struct DemandRow {
    pub(crate) item_id: i64,
    pub(crate) requesting_org_id: Option<i64>,
    proposed_service: Option<String>,
    desired_date: Option<NaiveDate>,
    justification: String,
    value: Option<i32>,
    effort: Option<String>,
    decision: String,
    decision_reason: Option<String>,
    decided_by: Option<i64>,
    decided_at: Option<NaiveDateTime>,
    target_quarter: Option<String>,
}

/// The stored demand fields of one item, if it has them.
pub(crate) fn row_of(conn: &mut DbConnection, item_id: i64) -> Result<Option<DemandRow>, ApiError> {
    Ok(demand_details::table
        .find(item_id)
        .select(DemandRow::as_select())
        .first(conn)
        .optional()?)
}

/// Demand fields of items by id, in one query.
pub(crate) fn load(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, DemandFields>, ApiError> {
    let rows: Vec<(DemandRow, Option<String>)> = demand_details::table
        .left_join(organizations::table)
        .filter(demand_details::item_id.eq_any(ids))
        .select((DemandRow::as_select(), organizations::short_name.nullable()))
        .load(conn)?;
    rows.into_iter()
        .map(|(row, org)| {
            let decision = Decision::parse(&row.decision)
                .ok_or_else(|| ApiError::internal(format!("unknown decision {}", row.decision)))?;
            Ok((
                row.item_id,
                DemandFields {
                    requesting_organization: org,
                    proposed_service: row.proposed_service,
                    desired_date: row.desired_date,
                    justification: row.justification,
                    value: row.value,
                    effort: row.effort.as_deref().and_then(Effort::parse),
                    decision,
                    decision_reason: row.decision_reason,
                    decided_by: row.decided_by,
                    decided_at: row.decided_at.map(|t| t.and_utc()),
                    target_quarter: row.target_quarter,
                },
            ))
        })
        .collect()
}

/// Writes the demand fields of an item (insert or update) and returns what changed, by field,
/// as `{"demand.value": {"old": …, "new": …}}` entries for the item's `updated` event.
pub(crate) fn store(
    conn: &mut DbConnection,
    item_id: i64,
    fields: &ResolvedDemand,
    current: Option<&DemandRow>,
) -> Result<serde_json::Map<String, Value>, ApiError> {
    let values = (
        demand_details::requesting_org_id.eq(fields.requesting_org_id),
        demand_details::proposed_service.eq(&fields.proposed_service),
        demand_details::desired_date.eq(fields.desired_date),
        demand_details::justification.eq(&fields.justification),
        demand_details::value.eq(fields.value),
        demand_details::effort.eq(fields.effort.map(Effort::as_str)),
        demand_details::target_quarter.eq(&fields.target_quarter),
    );
    let mut changed = serde_json::Map::new();
    match current {
        Some(row) => {
            changed = history::field_changes(
                "demand",
                resolved_of(row).as_history(),
                fields.as_history(),
            );
            if !changed.is_empty() {
                diesel::update(demand_details::table.find(item_id))
                    .set(values)
                    .execute(conn)?;
            }
        }
        None => {
            diesel::insert_into(demand_details::table)
                .values((
                    demand_details::item_id.eq(item_id),
                    demand_details::decision.eq(Decision::Pending.as_str()),
                    values,
                ))
                .execute(conn)?;
        }
    }
    Ok(changed)
}

fn resolved_of(row: &DemandRow) -> ResolvedDemand {
    ResolvedDemand {
        requesting_org_id: row.requesting_org_id,
        proposed_service: row.proposed_service.clone(),
        desired_date: row.desired_date,
        justification: row.justification.clone(),
        value: row.value,
        effort: row.effort.as_deref().and_then(Effort::parse),
        target_quarter: row.target_quarter.clone(),
    }
}

/// Records a decision on a demand. Allowed to the demand's accountable person, managers and
/// admins; a rejection or deferral needs a reason. Accepting a demand that still sits in the
/// intake column (the board's first) moves it to the next `todo` column. One `demand_decided`
/// event, delivered later by webhooks, says who decided what and why.
pub fn decide(
    conn: &mut DbConnection,
    key_or_id: &str,
    request: &DecisionRequest,
    caller: &Actor,
    expected: Precondition,
) -> Result<Item, ApiError> {
    let manages = caller.role.at_least(Role::Manager);
    if request.override_wip && !manages {
        return Err(ApiError::Forbidden(
            "Only managers and admins may override a WIP limit.".into(),
        ));
    }
    let seen = Item::row_visible(conn, key_or_id, caller.visibility())?;
    // Accepting may move the demand on: lock that column before the item, in the order every
    // move takes, so that its WIP limit holds and two writers cannot deadlock.
    let columns: Vec<(i64, String)> = board_columns::table
        .filter(board_columns::board_id.eq(seen.board_id))
        .order((board_columns::position, board_columns::id))
        .select((board_columns::id, board_columns::category))
        .load(conn)?;
    let next_todo = columns
        .iter()
        .skip(1)
        .find(|(_, category)| category == "todo")
        .map(|(id, _)| *id);
    if let (Decision::Accepted, Some(column)) = (request.decision, next_todo) {
        crate::common::db::lock(conn, crate::common::db::Lock::Column(column))?;
    }
    let row = Item::row_for_update(conn, &seen.id.to_string())?;
    let is_accountable = crate::items::model::raci_of(conn, &[row.id])?
        .remove(&row.id)
        .and_then(|raci| raci.accountable)
        .is_some_and(|p| p.id == caller.id());
    if !is_accountable && !manages {
        return Err(ApiError::Forbidden(
            "Only the demand's accountable person, managers and admins decide on a demand.".into(),
        ));
    }
    let Some(current) = row_of(conn, row.id)?.filter(|_| row.is_demand()) else {
        return Err(ApiError::Conflict(format!(
            "{} is a {}; only demands take a decision.",
            row.key, row.item_type
        )));
    };
    expected.check(row.version)?;
    let mut errors = Vec::new();
    let reason = request
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    if let Some(r) = &reason {
        check_text(&mut errors, "reason", r, 20_000);
    }
    if matches!(request.decision, Decision::Rejected | Decision::Deferred) && reason.is_none() {
        errors.push(FieldError::new(
            "reason",
            format!("is required when a demand is {}", request.decision.as_str()),
        ));
    }
    let quarter = request
        .target_quarter
        .as_deref()
        .map(str::trim)
        .map(str::to_string)
        .or(current.target_quarter.clone());
    check_quarter("target_quarter", quarter.as_deref(), &mut errors);
    check_value("value", request.value, &mut errors);
    ApiError::from_fields(errors)?;
    let stamp = now();
    let decided = request.decision != Decision::Pending;
    diesel::update(demand_details::table.find(row.id))
        .set((
            demand_details::decision.eq(request.decision.as_str()),
            demand_details::decision_reason.eq(&reason),
            demand_details::decided_by.eq(decided.then_some(caller.id())),
            demand_details::decided_at.eq(decided.then_some(stamp)),
            demand_details::target_quarter.eq(&quarter),
            demand_details::value.eq(request.value.or(current.value)),
            demand_details::effort.eq(request
                .effort
                .map(Effort::as_str)
                .or(current.effort.as_deref())),
        ))
        .execute(conn)?;
    Item::touch(conn, &row)?;
    history::record(
        conn,
        Subject {
            entity_type: "item",
            entity_id: row.id,
        },
        "demand_decided",
        Some(caller.id()),
        json!({"old": current.decision, "new": request.decision, "reason": reason,
               "target_quarter": quarter}),
    )?;
    // From intake to the first `todo` column after it, when it still waits in intake; a full
    // column refuses it (409), and the whole decision with it.
    let in_intake = columns.first().is_some_and(|(id, _)| *id == row.column_id);
    if let (Decision::Accepted, true, Some(column)) = (request.decision, in_intake, next_todo) {
        return Item::move_to(
            conn,
            &row.key,
            &MoveRequest {
                column,
                before: None,
                after: None,
                override_wip: request.override_wip,
                resolution: None,
            },
            caller.id(),
            manages,
            Precondition(None),
        );
    }
    Item::find(conn, &row.key)
}

/// Filters of the roadmap.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RoadmapFilter {
    /// Only demands of this service (key).
    pub service: Option<String>,
    /// Only quarters from this one on, such as `2027-Q1`.
    #[param(pattern = "^([0-9]{4}-Q[1-4])?$")]
    pub from: Option<String>,
    /// Only quarters up to this one.
    #[param(pattern = "^([0-9]{4}-Q[1-4])?$")]
    pub to: Option<String>,
}

/// An accepted demand on the roadmap.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoadmapDemand {
    /// The item's key.
    pub key: String,
    /// Title.
    pub title: String,
    /// The requesting organization's short name.
    pub requesting_organization: Option<String>,
    /// Business value, 1–5.
    pub value: Option<i32>,
    /// Effort.
    pub effort: Option<Effort>,
    /// When the requester would like it.
    pub desired_date: Option<NaiveDate>,
    /// The category of the column it is in: how far the work has come.
    pub progress: String,
}

/// The accepted demands of one service (or one proposed new service) in a quarter.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoadmapService {
    /// The service's key; `null` for a demand of a new service.
    pub service: Option<String>,
    /// The service's name, or the proposed name of a new one.
    pub name: String,
    /// Its accepted demands, most valuable first.
    pub demands: Vec<RoadmapDemand>,
}

/// One quarter of the roadmap.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoadmapQuarter {
    /// `2027-Q2`; `null` for accepted demands not planned yet.
    pub quarter: Option<String>,
    /// Services in key order, new services last.
    pub services: Vec<RoadmapService>,
}

/// Accepted demands by target quarter and service, in three queries.
pub fn roadmap(
    conn: &mut DbConnection,
    filter: &RoadmapFilter,
    visibility: Visibility,
) -> Result<Vec<RoadmapQuarter>, ApiError> {
    // An empty bound is no bound, as an empty cursor is the first page.
    let from = filter.from.as_deref().filter(|q| !q.is_empty());
    let to = filter.to.as_deref().filter(|q| !q.is_empty());
    for (field, value) in [("from", from), ("to", to)] {
        if value.is_some_and(|q| !is_quarter(q)) {
            return Err(ApiError::bad_field(
                field,
                "must be a quarter such as 2027-Q2",
            ));
        }
    }
    let mut query = items::table
        .inner_join(demand_details::table)
        .inner_join(board_columns::table)
        .left_join(services::table)
        .left_join(
            organizations::table.on(organizations::id
                .nullable()
                .eq(demand_details::requesting_org_id)),
        )
        .filter(
            items::deleted_at
                .is_null()
                .and(items::item_type.eq("demand"))
                .and(demand_details::decision.eq(Decision::Accepted.as_str())),
        )
        .select((
            items::key,
            items::title,
            demand_details::target_quarter,
            services::key.nullable(),
            services::name.nullable(),
            demand_details::proposed_service,
            organizations::short_name.nullable(),
            demand_details::value,
            demand_details::effort,
            demand_details::desired_date,
            board_columns::category,
        ))
        .into_boxed();
    if let Visibility::Organization(org) = visibility {
        query = query.filter(demand_details::requesting_org_id.eq(org.unwrap_or(-1)));
    }
    if let Some(service) = &filter.service {
        query = query.filter(services::key.nullable().eq(service.trim().to_string()));
    }
    type Row = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i32>,
        Option<String>,
        Option<NaiveDate>,
        String,
    );
    let rows: Vec<Row> = query.load(conn)?;
    // Quarter (unplanned last) → (service key, new-service name) → demands.
    // Unplanned quarters and new services sort last: `true` after `false`.
    type Services = BTreeMap<(bool, String), RoadmapService>;
    let mut quarters: BTreeMap<(bool, Option<String>), Services> = BTreeMap::new();
    for (key, title, quarter, service, name, proposed, org, value, effort, desired, progress) in
        rows
    {
        if let Some(q) = &quarter
            && (from.is_some_and(|f| q.as_str() < f) || to.is_some_and(|t| q.as_str() > t))
        {
            continue;
        }
        let group_name = name.clone().or(proposed).unwrap_or_default();
        let services = quarters
            .entry((quarter.is_none(), quarter.clone()))
            .or_default();
        let entry = services
            .entry((
                service.is_none(),
                service.clone().unwrap_or(group_name.clone()),
            ))
            .or_insert_with(|| RoadmapService {
                service: service.clone(),
                name: group_name,
                demands: Vec::new(),
            });
        entry.demands.push(RoadmapDemand {
            key,
            title,
            requesting_organization: org,
            value,
            effort: effort.as_deref().and_then(Effort::parse),
            desired_date: desired,
            progress,
        });
    }
    Ok(quarters
        .into_iter()
        .map(|((_, quarter), services)| RoadmapQuarter {
            quarter,
            services: services
                .into_values()
                .map(|mut s| {
                    s.demands
                        .sort_by(|a, b| b.value.cmp(&a.value).then(a.key.cmp(&b.key)));
                    s
                })
                .collect(),
        })
        .collect())
}

/// A stakeholder's demand: a `demand` item in the first column of the demand board, with
/// decision `pending`. A requester raises demands for their own organization only.
pub fn intake(
    conn: &mut DbConnection,
    form: &DemandIntake,
    caller: &Actor,
    board: &str,
) -> Result<Item, ApiError> {
    let mut errors = Vec::new();
    if form.justification.trim().is_empty() {
        errors.push(FieldError::new(
            "justification",
            "must say why the demand matters",
        ));
    }
    let own_org = caller.organization_id;
    let org_id = match &form.requesting_organization {
        Some(name) => organization_id(conn, "requesting_organization", name, &mut errors)?,
        None => own_org,
    };
    if caller.role == Role::Requester {
        if own_org.is_none() {
            return Err(ApiError::Forbidden(
                "Your account belongs to no organization; an admin must set it before you can \
                 raise demands."
                    .into(),
            ));
        }
        if org_id.is_some() && org_id != own_org {
            errors.push(FieldError::new(
                "requesting_organization",
                "requesters raise demands for their own organization",
            ));
        }
    }
    let proposed = form
        .proposed_service
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty());
    if form.service.as_deref().is_none_or(|s| s.trim().is_empty()) && proposed.is_none() {
        errors.push(FieldError::new(
            "service",
            "name the online service, or the new one wanted in proposed_service",
        ));
    }
    ApiError::from_fields(errors)?;
    let org_name: Option<String> = match org_id {
        Some(id) => organizations::table
            .find(id)
            .select(organizations::short_name)
            .first(conn)
            .optional()?,
        None => None,
    };
    let exists = crate::common::db::schema::boards::table
        .filter(crate::common::db::schema::boards::key.eq(board))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        return Err(ApiError::Conflict(format!(
            "The demand board {board} does not exist; an admin creates it or sets demands.board."
        )));
    }
    let item = crate::items::model::NewItem {
        board: board.to_string(),
        item_type: crate::items::model::ItemType::Demand,
        title: form.title.clone(),
        description: form.description.clone(),
        service: form.service.clone(),
        priority: Default::default(),
        labels: Vec::new(),
        due_date: None,
        raci: None,
        external_refs: Vec::new(),
        demand: Some(DemandInput {
            requesting_organization: Some(org_name),
            proposed_service: Some(proposed.map(str::to_string)),
            desired_date: Some(form.desired_date),
            justification: Some(form.justification.trim().to_string()),
            ..DemandInput::default()
        }),
        incident: None,
        override_wip: false,
    };
    Item::create(conn, &item, caller.id(), false)
}
