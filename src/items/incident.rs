//! The incident fields of an item: severity, reporter, affected services, impact, first
//! response and resolution; their storage beside the item row, and the SLA clocks computed
//! from them. What only the incident views need (the attention lists, breach events) is in
//! `crate::incidents`.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::catalog::organizations::organization_id;
use crate::catalog::services::Service;
use crate::common::db::DbConnection;
use crate::common::db::schema::{incident_details, incident_services, organizations, services};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::Diff;
use crate::common::text::{check_text, trimmed};
use crate::sla::clock::{ClockBasis, ClockInput, SlaState};
use crate::sla::severity::Severity;

/// The incident fields of an incident item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "severity": "s2", "reported_at": "2026-11-27T09:12:00Z", "reported_by_org": "LK-VG",
    "affected_services": ["wohngeld-antrag"], "impact": "Uploads fail for all applicants",
    "first_response_at": "2026-11-27T09:40:00Z", "resolved_at": null, "resolution": null
}))]
pub struct IncidentFields {
    /// Severity, `s1` (outage) to `s4` (cosmetic or question).
    pub severity: Severity,
    /// When it was reported; the SLA clocks start here.
    pub reported_at: DateTime<Utc>,
    /// Short name of the organization that reported it.
    pub reported_by_org: Option<String>,
    /// Keys of the services it affects, the item's own service among them.
    pub affected_services: Vec<String>,
    /// What users cannot do (Markdown).
    pub impact: String,
    /// When the team first answered; stops the response clock. Set by the first comment or
    /// move of a team member when not given.
    pub first_response_at: Option<DateTime<Utc>>,
    /// When it was resolved; stops the resolution clock. Set when it enters a `done` column.
    pub resolved_at: Option<DateTime<Utc>>,
    /// How it was resolved; required to move it to a `done` column.
    pub resolution: Option<String>,
}

/// Incident fields on `POST /items` and `PATCH /items/{key}`: an absent field stays as it is,
/// `null` clears it. Without a `severity`, a new incident takes the one its priority suggests
/// (critical → s1, high → s2, medium → s3, low → s4).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"severity": "s2", "reported_by_org": "LK-VG", "impact": "Uploads fail"}))]
pub struct IncidentInput {
    /// Severity.
    pub severity: Option<Severity>,
    /// When it was reported; now when omitted on creation.
    pub reported_at: Option<DateTime<Utc>>,
    /// Short name of the reporting organization.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub reported_by_org: Option<Option<String>>,
    /// Keys of further affected services (the item's own service is always included); at
    /// most 500, room for an outage of a platform that every service of the catalogue uses.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<500, _, _>"
    )]
    #[schema(max_items = 500)]
    pub affected_services: Option<Vec<String>>,
    /// What users cannot do (Markdown), up to 64 KiB.
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub impact: Option<String>,
    /// When the team first answered.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub first_response_at: Option<Option<DateTime<Utc>>>,
    /// When it was resolved.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub resolved_at: Option<Option<DateTime<Utc>>>,
    /// How it was resolved (Markdown).
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 65536, pattern = r"^[^\u0000]*$")]
    pub resolution: Option<Option<String>>,
}

/// The stored incident fields of an item.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = incident_details)]
pub(crate) struct IncidentRow {
    pub(crate) item_id: i64,
    pub(crate) severity: String,
    pub(crate) reported_at: NaiveDateTime,
    reported_by_org_id: Option<i64>,
    impact: String,
    pub(crate) first_response_at: Option<NaiveDateTime>,
    pub(crate) resolved_at: Option<NaiveDateTime>,
    pub(crate) resolution: Option<String>,
}

/// The incident fields resolved against storage, ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResolvedIncident {
    severity: Severity,
    reported_at: NaiveDateTime,
    reported_by_org_id: Option<i64>,
    affected_service_ids: Vec<i64>,
    impact: String,
    first_response_at: Option<NaiveDateTime>,
    resolved_at: Option<NaiveDateTime>,
    resolution: Option<String>,
}

impl ResolvedIncident {
    fn as_history(&self) -> Value {
        json!({
            "severity": self.severity, "reported_at": self.reported_at.and_utc(),
            "reported_by_org_id": self.reported_by_org_id,
            "affected_service_ids": self.affected_service_ids, "impact": self.impact,
            "first_response_at": self.first_response_at.map(|t| t.and_utc()),
            "resolved_at": self.resolved_at.map(|t| t.and_utc()), "resolution": self.resolution,
        })
    }
}

/// The stored incident fields of one item, if it has them.
pub(crate) fn row_of(
    conn: &mut DbConnection,
    item_id: i64,
) -> Result<Option<IncidentRow>, ApiError> {
    Ok(incident_details::table
        .find(item_id)
        .select(IncidentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stored incident rows of items by id, in one query.
pub(crate) fn rows_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<Vec<(IncidentRow, Option<String>)>, ApiError> {
    let query = incident_details::table
        .left_join(organizations::table)
        .select((
            <IncidentRow as Selectable<diesel::pg::Pg>>::construct_selection(),
            organizations::short_name.nullable(),
        ));
    Ok(crate::load_for_ids!(
        query,
        incident_details::item_id,
        ids,
        conn
    )?)
}

/// Affected service keys of items by id, in one query.
pub(crate) fn affected_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, ApiError> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    let query = incident_services::table
        .inner_join(services::table)
        .order((incident_services::item_id, services::key))
        .select((incident_services::item_id, services::key));
    let rows: Vec<(i64, String)> =
        crate::load_for_ids!(query, incident_services::item_id, ids, conn)?;
    for (item, key) in rows {
        out.entry(item).or_default().push(key);
    }
    Ok(out)
}

/// Turns stored rows into API fields.
pub(crate) fn fields_of(
    row: IncidentRow,
    org: Option<String>,
    affected: Vec<String>,
) -> Result<IncidentFields, ApiError> {
    Ok(IncidentFields {
        severity: Severity::parse(&row.severity)
            .ok_or_else(|| ApiError::internal(format!("unknown severity {}", row.severity)))?,
        reported_at: row.reported_at.and_utc(),
        reported_by_org: org,
        affected_services: affected,
        impact: row.impact,
        first_response_at: row.first_response_at.map(|t| t.and_utc()),
        resolved_at: row.resolved_at.map(|t| t.and_utc()),
        resolution: row.resolution,
    })
}

fn micros(t: DateTime<Utc>) -> NaiveDateTime {
    use chrono::SubsecRound;
    t.naive_utc().trunc_subsecs(6)
}

/// Merges an input over the current fields (none for a new incident), checking every value;
/// problems go to `errors` with the field's full name (`incident.severity`). The item's own
/// service is always among the affected ones.
pub(crate) fn resolve(
    conn: &mut DbConnection,
    input: &IncidentInput,
    current: Option<&IncidentRow>,
    current_affected: &[i64],
    own_service: Option<i64>,
    default_severity: Severity,
    errors: &mut Vec<FieldError>,
) -> Result<Option<ResolvedIncident>, ApiError> {
    let severity = match (input.severity, current) {
        (Some(s), _) => Some(s),
        (None, Some(c)) => Severity::parse(&c.severity),
        (None, None) => Some(default_severity),
    };
    let reported_by_org_id = match &input.reported_by_org {
        Some(Some(name)) => organization_id(conn, "incident.reported_by_org", name, errors)?,
        Some(None) => None,
        None => current.and_then(|c| c.reported_by_org_id),
    };
    let mut affected: Vec<i64> = match &input.affected_services {
        Some(keys) => {
            let mut ids = Vec::new();
            for (i, key) in keys.iter().enumerate() {
                let field = format!("incident.affected_services[{i}]");
                ids.extend(Service::id_for_field(conn, key.trim(), field, errors)?);
            }
            ids
        }
        None => current_affected.to_vec(),
    };
    if let Some(own) = own_service {
        affected.push(own);
    }
    affected.sort_unstable();
    affected.dedup();
    let impact = input
        .impact
        .clone()
        .or_else(|| current.map(|c| c.impact.clone()))
        .unwrap_or_default();
    check_text(errors, "incident.impact", &impact, 65_536);
    let resolution = match &input.resolution {
        Some(r) => trimmed(r.as_deref()),
        None => current.and_then(|c| c.resolution.clone()),
    };
    if let Some(r) = &resolution {
        check_text(errors, "incident.resolution", r, 65_536);
    }
    let reported_at = input
        .reported_at
        .map(micros)
        .or(current.map(|c| c.reported_at))
        .unwrap_or_else(crate::common::db::now);
    let first_response_at = match input.first_response_at {
        Some(t) => t.map(micros),
        None => current.and_then(|c| c.first_response_at),
    };
    let resolved_at = match input.resolved_at {
        Some(t) => t.map(micros),
        None => current.and_then(|c| c.resolved_at),
    };
    for (field, at) in [
        ("incident.first_response_at", first_response_at),
        ("incident.resolved_at", resolved_at),
    ] {
        if at.is_some_and(|at| at < reported_at) {
            errors.push(FieldError::new(field, "must not be before reported_at"));
        }
    }
    Ok(severity.map(|severity| ResolvedIncident {
        severity,
        reported_at,
        reported_by_org_id,
        affected_service_ids: affected,
        impact,
        first_response_at,
        resolved_at,
        resolution,
    }))
}

/// Affected service ids of one item.
pub(crate) fn affected_ids(conn: &mut DbConnection, item_id: i64) -> Result<Vec<i64>, ApiError> {
    Ok(incident_services::table
        .filter(incident_services::item_id.eq(item_id))
        .order(incident_services::service_id)
        .select(incident_services::service_id)
        .load(conn)?)
}

/// Writes the incident fields of an item (insert or update) and returns what changed, by
/// field, as `{"incident.severity": {"old": …, "new": …}}` entries for the `updated` event.
pub(crate) fn store(
    conn: &mut DbConnection,
    item_id: i64,
    fields: &ResolvedIncident,
    current: Option<(&IncidentRow, &[i64])>,
) -> Result<Diff, ApiError> {
    let values = (
        incident_details::severity.eq(fields.severity.as_str()),
        incident_details::reported_at.eq(fields.reported_at),
        incident_details::reported_by_org_id.eq(fields.reported_by_org_id),
        incident_details::impact.eq(&fields.impact),
        incident_details::first_response_at.eq(fields.first_response_at),
        incident_details::resolved_at.eq(fields.resolved_at),
        incident_details::resolution.eq(&fields.resolution),
    );
    let mut changed = Diff::new();
    match current {
        Some((row, affected)) => {
            let before = ResolvedIncident {
                severity: Severity::parse(&row.severity).unwrap_or(fields.severity),
                reported_at: row.reported_at,
                reported_by_org_id: row.reported_by_org_id,
                affected_service_ids: affected.to_vec(),
                impact: row.impact.clone(),
                first_response_at: row.first_response_at,
                resolved_at: row.resolved_at,
                resolution: row.resolution.clone(),
            }
            .as_history();
            changed.fields_of(Some("incident"), &before, &fields.as_history());
            if !changed.is_empty() {
                diesel::update(incident_details::table.find(item_id))
                    .set(values)
                    .execute(conn)?;
            }
        }
        None => {
            diesel::insert_into(incident_details::table)
                .values((incident_details::item_id.eq(item_id), values))
                .execute(conn)?;
        }
    }
    if current.is_none_or(|(_, affected)| affected != fields.affected_service_ids.as_slice()) {
        diesel::delete(incident_services::table.filter(incident_services::item_id.eq(item_id)))
            .execute(conn)?;
        for service in &fields.affected_service_ids {
            diesel::insert_into(incident_services::table)
                .values((
                    incident_services::item_id.eq(item_id),
                    incident_services::service_id.eq(service),
                ))
                .execute(conn)?;
        }
    }
    Ok(changed)
}

/// What an incident's clocks start from.
pub(crate) fn clock_input(item_id: i64, service_id: Option<i64>, row: &IncidentRow) -> ClockInput {
    ClockInput {
        item_id,
        severity: row.severity.clone(),
        service_id,
        reported_at: row.reported_at.and_utc(),
        first_response_at: row.first_response_at.map(|t| t.and_utc()),
        resolved_at: row.resolved_at.map(|t| t.and_utc()),
    }
}

/// The SLA states of incidents at `now`: policies, then the pauses when any policy applies
/// (at most three queries).
pub(crate) fn clocks(
    conn: &mut DbConnection,
    inputs: &[ClockInput],
    now: DateTime<Utc>,
) -> Result<HashMap<i64, SlaState>, ApiError> {
    Ok(ClockBasis::read(conn, inputs.to_vec())?.states(now))
}

/// Incident fields by item id, and what their SLA clocks are computed from.
pub(crate) type IncidentsAndClocks = (HashMap<i64, IncidentFields>, ClockBasis);

/// Incident fields of items (id and own service), and what their SLA clocks are computed
/// from, given the services each affects ([`affected_of`], or read with the item's other
/// rows), in at most four queries whatever their number: fields, policies, pausing columns,
/// moves.
pub(crate) fn load(
    conn: &mut DbConnection,
    items: &[(i64, Option<i64>)],
    mut affected: HashMap<i64, Vec<String>>,
) -> Result<IncidentsAndClocks, ApiError> {
    if items.is_empty() {
        return Ok((HashMap::new(), ClockBasis::default()));
    }
    let ids: Vec<i64> = items.iter().map(|(id, _)| *id).collect();
    let service_of: HashMap<i64, Option<i64>> = items.iter().copied().collect();
    let rows = rows_of(conn, &ids)?;
    let inputs: Vec<ClockInput> = rows
        .iter()
        .map(|(row, _)| {
            clock_input(
                row.item_id,
                service_of.get(&row.item_id).copied().flatten(),
                row,
            )
        })
        .collect();
    let clocks = ClockBasis::read(conn, inputs)?;
    let mut fields = HashMap::new();
    for (row, org) in rows {
        let id = row.item_id;
        fields.insert(
            id,
            fields_of(row, org, affected.remove(&id).unwrap_or_default())?,
        );
    }
    Ok((fields, clocks))
}

/// What a move does to an incident: entering a `done` column needs a resolution (from the
/// move, else the one stored) and stops the resolution clock; leaving `done` reopens it; the
/// first move into work or done by the team counts as the first response when none is
/// recorded. Runs in the move's transaction, before the move itself.
pub(crate) fn on_move(
    conn: &mut DbConnection,
    item_id: i64,
    is_incident: bool,
    target: Option<crate::board::model::ColumnCategory>,
    resolution: Option<&str>,
) -> Result<(), ApiError> {
    use crate::board::model::ColumnCategory;
    let resolution = resolution
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string);
    let stored = if is_incident {
        row_of(conn, item_id)?
    } else {
        None
    };
    let Some(stored) = stored else {
        if resolution.is_some() {
            return Err(ApiError::invalid(
                "resolution",
                "is only for incidents moved to a done column",
            ));
        }
        return Ok(());
    };
    let stamp = crate::common::db::now();
    let done = target == Some(ColumnCategory::Done);
    if resolution.is_some() && !done {
        return Err(ApiError::invalid(
            "resolution",
            "is only for incidents moved to a done column",
        ));
    }
    if let Some(r) = &resolution {
        let mut errors = Vec::new();
        check_text(&mut errors, "resolution", r, 65_536);
        ApiError::from_fields(errors)?;
    }
    let new_resolution = resolution.or(stored.resolution.clone());
    if done && new_resolution.is_none() {
        return Err(ApiError::invalid(
            "resolution",
            "an incident needs a resolution before it is done: say how it was resolved",
        ));
    }
    let responds = matches!(
        target,
        Some(ColumnCategory::InProgress) | Some(ColumnCategory::Done)
    );
    let first_response_at = stored.first_response_at.or(responds.then_some(stamp));
    let resolved_at = if done {
        stored.resolved_at.or(Some(stamp))
    } else {
        None
    };
    diesel::update(incident_details::table.find(item_id))
        .set((
            incident_details::resolution.eq(&new_resolution),
            incident_details::first_response_at.eq(first_response_at),
            incident_details::resolved_at.eq(resolved_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// A comment by the team is the first response to an incident when none is recorded.
pub(crate) fn on_team_comment(conn: &mut DbConnection, item_id: i64) -> Result<(), ApiError> {
    diesel::update(
        incident_details::table.filter(
            incident_details::item_id
                .eq(item_id)
                .and(incident_details::first_response_at.is_null()),
        ),
    )
    .set(incident_details::first_response_at.eq(Some(crate::common::db::now())))
    .execute(conn)?;
    Ok(())
}
