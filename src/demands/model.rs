//! Demand fields (intake and decision), their storage beside the item row, the decision rule
//! and the roadmap of accepted demands.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::catalog::organizations::organization_id;
use crate::common::actor::Actor;
use crate::common::actor::{Role, Visibility};
use crate::common::db::schema::{board_columns, demand_details, items, organizations, services};
use crate::common::db::{DbConnection, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Subject};
use crate::common::text::optional_text;
use crate::common::version::Precondition;
use crate::items::demand::{
    Decision, DemandInput, Effort, check_quarter, check_value, is_quarter, row_of,
};
use crate::items::types::{Item, MoveRequest};

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
    let is_accountable = crate::items::queries::raci_of(conn, &[row.id])?
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
    let reason = optional_text(&mut errors, "reason", request.reason.as_deref(), 20_000);
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
        caller,
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
            caller,
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

/// Makes sure the demand board `key` exists: on a fresh install the first demand creates it,
/// named "Demands", with the default workflow (`DEFAULT_WORKFLOW`, whose first column is the
/// intake and whose next `todo` column takes accepted demands), led by the first active admin
/// (accountable for demands that name no service with a RACI template, until someone else is
/// made lead), so that stakeholders need not wait for an admin. Two first demands at the same moment create one
/// board: the creation runs in a savepoint, and the one that loses the race for the board's
/// unique key (PostgreSQL waits for the winner's commit) finds the winner's board instead.
fn ensure_demand_board(conn: &mut DbConnection, key: &str) -> Result<(), ApiError> {
    use crate::board::model::{Board, NewBoard};
    use crate::common::db::schema::boards;
    let exists = |conn: &mut DbConnection| -> Result<bool, ApiError> {
        Ok(boards::table
            .filter(boards::key.eq(key))
            .count()
            .get_result::<i64>(conn)?
            > 0)
    };
    if exists(conn)? {
        return Ok(());
    }
    let first_admin: Option<i64> = crate::common::db::schema::users::table
        .filter(crate::common::db::schema::users::role.eq(Role::Admin.as_str()))
        .filter(crate::common::db::schema::users::active.eq(true))
        .order(crate::common::db::schema::users::id)
        .select(crate::common::db::schema::users::id)
        .first(conn)
        .optional()?;
    let form = NewBoard {
        key: key.to_string(),
        name: "Demands".into(),
        description: "Demands of stakeholders; created with the first demand.".into(),
        columns: None,
        lead: first_admin.map(crate::common::person::PersonId::Id),
    };
    // The system makes it, not the person who happens to raise the first demand.
    match conn.transaction(|conn| Board::create(conn, &form, &Actor::SYSTEM)) {
        Ok(board) => {
            log::info!(
                "created the demand board {} with the first demand",
                board.key
            );
            Ok(())
        }
        Err(ApiError::Taken { .. } | ApiError::Conflict(_)) if exists(conn)? => Ok(()),
        Err(ApiError::Validation(_)) => Err(ApiError::Conflict(format!(
            "The demand board {key} does not exist and cannot be created: demands.board must \
             be a board key such as DEM."
        ))),
        Err(other) => Err(other),
    }
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
    ensure_demand_board(conn, board)?;
    let item = crate::items::types::NewItem {
        board: board.to_string(),
        item_type: crate::items::types::ItemType::Demand,
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
    Item::create(conn, &item, caller, false)
}
