//! Incident fields (severity, reporter, affected services, response and resolution), their
//! storage beside the item row, and the list of incidents by SLA state.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::IntoParams;

use crate::common::db::DbConnection;
use crate::common::db::schema::{boards, incident_details, incident_services, services};
use crate::common::error::ApiError;
use crate::common::query::PersonParam;
use crate::items::incident::{IncidentRow, clock_input, clocks};
use crate::items::queries::{ANY_ROLE, held_by};
use crate::sla::clock::{ClockInput, SlaState};
use crate::sla::severity::Severity;

/// Filters of `GET /api/v1/incidents`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentFilter {
    /// Only incidents whose response or resolution target is breached (`true`), or neither
    /// (`false`).
    pub breached: Option<bool>,
    /// Only open incidents whose next target (response, else resolution) falls due within
    /// this many minutes from now and is not breached yet.
    #[param(minimum = 0, maximum = 525600)]
    pub due_within: Option<i64>,
    /// Only incidents of these severities, comma-separated or repeated (`severity=s1,s2`).
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub severity: Option<Vec<Severity>>,
    /// Only incidents this user is accountable for: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub accountable: Option<PersonParam>,
    /// Only incidents this user is responsible for: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub responsible: Option<PersonParam>,
    /// Only incidents where this user holds any RACI role: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub involved: Option<PersonParam>,
    /// Only incidents on this board (key).
    pub board: Option<String>,
    /// Only incidents affecting this service (key).
    pub service: Option<String>,
    /// Only open (`true`, not resolved) or resolved (`false`) incidents.
    pub open: Option<bool>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Whether an incident's SLA matches the filter's `breached` and `due_within`.
fn sla_matches(
    filter: &IncidentFilter,
    state: Option<&SlaState>,
    row: &IncidentRow,
    now: DateTime<Utc>,
) -> bool {
    let breached = state.is_some_and(|s| s.response_breached || s.resolution_breached);
    if filter.breached.is_some_and(|wanted| wanted != breached) {
        return false;
    }
    if let Some(minutes) = filter.due_within {
        let Some(state) = state else {
            return false;
        };
        let next_due = if row.first_response_at.is_none() && !state.response_breached {
            Some(state.response_due_at)
        } else if row.resolved_at.is_none() && !state.resolution_breached {
            Some(state.resolution_due_at)
        } else {
            None
        };
        if next_due.is_none_or(|due| due > now + chrono::Duration::minutes(minutes)) {
            return false;
        }
    }
    true
}

/// One page of incidents in id order, filtered by SLA state, in a fixed number of queries:
/// the SLA of every candidate is computed in one pass, then only the page is assembled. `me`
/// is the caller, whom `accountable=me` and the like name.
pub fn list(
    conn: &mut DbConnection,
    filter: &IncidentFilter,
    me: i64,
) -> Result<crate::common::pagination::Page<crate::items::types::Item>, ApiError> {
    use crate::common::db::schema::items;
    let paging = crate::common::pagination::PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    };
    let limit = paging.limit()?;
    if filter
        .due_within
        .is_some_and(|m| !(0..=525_600).contains(&m))
    {
        return Err(ApiError::bad_field(
            "due_within",
            "must be between 0 and 525600 minutes",
        ));
    }
    let mut query = items::table
        .inner_join(incident_details::table)
        .filter(
            items::deleted_at
                .is_null()
                .and(items::item_type.eq("incident")),
        )
        .order(items::id.asc())
        .select((items::id, items::service_id, IncidentRow::as_select()))
        .into_boxed();
    if let Some(after) = paging.after::<i64>()? {
        query = query.filter(items::id.gt(after));
    }
    if let Some(severities) = &filter.severity {
        query =
            query.filter(incident_details::severity.eq_any(severities.iter().map(|s| s.as_str())));
    }
    for (person, role) in [
        (filter.accountable, vec!["accountable"]),
        (filter.responsible, vec!["responsible"]),
        (filter.involved, ANY_ROLE.to_vec()),
    ] {
        if let Some(person) = person {
            query = query.filter(items::id.eq_any(held_by(person.id(me), role)));
        }
    }
    if let Some(board) = &filter.board {
        let ids = boards::table
            .filter(boards::key.eq(board.trim().to_uppercase()))
            .select(boards::id);
        query = query.filter(items::board_id.eq_any(ids));
    }
    if let Some(open) = filter.open {
        query = if open {
            query.filter(incident_details::resolved_at.is_null())
        } else {
            query.filter(incident_details::resolved_at.is_not_null())
        };
    }
    if let Some(service) = &filter.service {
        let ids = incident_services::table
            .inner_join(services::table)
            .filter(services::key.eq(service.trim().to_string()))
            .select(incident_services::item_id);
        query = query.filter(items::id.eq_any(ids));
    }
    let candidates: Vec<(i64, Option<i64>, IncidentRow)> = query.load(conn)?;
    let inputs: Vec<ClockInput> = candidates
        .iter()
        .map(|(id, service_id, row)| clock_input(*id, *service_id, row))
        .collect();
    let now = Utc::now();
    let states = clocks(conn, &inputs, now)?;
    let wanted: Vec<i64> = candidates
        .iter()
        .filter(|(id, _, row)| sla_matches(filter, states.get(id), row, now))
        .map(|(id, _, _)| *id)
        .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
        .collect();
    let items = crate::items::types::Item::by_ids(conn, &wanted)?;
    Ok(crate::common::pagination::Page::from_rows(
        items,
        limit,
        |i| i.id,
    ))
}

/// Writes one `sla_breached` event for every clock that has run out since the last check
/// (response or resolution), so that a later webhook can deliver it; a breach is recorded
/// once. Returns how many events were written. Runs in a fixed number of queries plus one
/// insert per new breach.
pub fn record_breaches(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, ApiError> {
    use crate::common::db::schema::{events, items};
    let candidates: Vec<(i64, Option<i64>, IncidentRow)> = items::table
        .inner_join(incident_details::table)
        .filter(
            items::deleted_at
                .is_null()
                .and(items::item_type.eq("incident")),
        )
        .select((items::id, items::service_id, IncidentRow::as_select()))
        .load(conn)?;
    let inputs: Vec<ClockInput> = candidates
        .iter()
        .map(|(id, service_id, row)| clock_input(*id, *service_id, row))
        .collect();
    let states = clocks(conn, &inputs, now)?;
    if states.is_empty() {
        return Ok(0);
    }
    let ids: Vec<i64> = candidates.iter().map(|c| c.0).collect();
    let recorded: std::collections::HashSet<(i64, String)> = events::table
        .filter(
            events::entity_type
                .eq("item")
                .and(events::kind.eq("sla_breached"))
                .and(events::entity_id.eq_any(&ids)),
        )
        .select((events::entity_id, events::data))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .filter_map(|(id, data)| {
            let data: Value = serde_json::from_str(&data).ok()?;
            Some((id, data["clock"].as_str()?.to_string()))
        })
        .collect();
    let mut written = 0;
    for (id, _, row) in &candidates {
        let Some(state) = states.get(id) else {
            continue;
        };
        for (which, breached, due_at) in [
            ("response", state.response_breached, state.response_due_at),
            (
                "resolution",
                state.resolution_breached,
                state.resolution_due_at,
            ),
        ] {
            if breached && !recorded.contains(&(*id, which.to_string())) {
                crate::common::history::record(
                    conn,
                    crate::common::history::Subject {
                        entity_type: "item",
                        entity_id: *id,
                    },
                    "sla_breached",
                    &crate::common::actor::Actor::SYSTEM,
                    json!({"clock": which, "due_at": due_at, "severity": row.severity,
                           "policy_id": state.policy_id}),
                )?;
                written += 1;
            }
        }
    }
    Ok(written)
}
