//! The demand fields of an item: the requesting organization, estimates, the decision and
//! its reason, the target quarter; their storage beside the item row. Intake, decisions and
//! the roadmap, which build on them, are in `crate::demands`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::catalog::organizations::organization_id;
use crate::common::db::DbConnection;
use crate::common::db::schema::{demand_details, organizations};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::Diff;
use crate::common::text::{check_text, trimmed};

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

pub(crate) fn check_quarter(field: &str, quarter: Option<&str>, errors: &mut Vec<FieldError>) {
    if let Some(q) = quarter
        && !is_quarter(q)
    {
        errors.push(FieldError::new(field, "must be a quarter such as 2027-Q2"));
    }
}

pub(crate) fn check_value(field: &str, value: Option<i32>, errors: &mut Vec<FieldError>) {
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
        Some(p) => trimmed(p.as_deref()),
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
    pub(crate) value: Option<i32>,
    pub(crate) effort: Option<String>,
    pub(crate) decision: String,
    pub(crate) decision_reason: Option<String>,
    pub(crate) decided_by: Option<i64>,
    pub(crate) decided_at: Option<NaiveDateTime>,
    pub(crate) target_quarter: Option<String>,
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
) -> Result<Diff, ApiError> {
    let values = (
        demand_details::requesting_org_id.eq(fields.requesting_org_id),
        demand_details::proposed_service.eq(&fields.proposed_service),
        demand_details::desired_date.eq(fields.desired_date),
        demand_details::justification.eq(&fields.justification),
        demand_details::value.eq(fields.value),
        demand_details::effort.eq(fields.effort.map(Effort::as_str)),
        demand_details::target_quarter.eq(&fields.target_quarter),
    );
    let mut changed = Diff::new();
    match current {
        Some(row) => {
            changed.fields_of(
                Some("demand"),
                &resolved_of(row).as_history(),
                &fields.as_history(),
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
