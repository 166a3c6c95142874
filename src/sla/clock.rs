//! SLA clocks of incidents, computed from their history: the response clock runs from
//! `reported_at` to `first_response_at`, the resolution clock to `resolved_at`; both stop while
//! the incident waits in a column that pauses the SLA. Nothing here is stored, so a changed
//! policy or calendar recomputes every clock consistently.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::calendar::ClockKind;
use crate::common::db::DbConnection;
use crate::common::db::schema::{board_columns, events};
use crate::common::error::ApiError;
use crate::sla::policies::{SlaPolicy, policy_for};

/// A period in a pausing column: its start, and its end unless it still lasts.
pub type Pause = (DateTime<Utc>, Option<DateTime<Utc>>);

/// The pauses of each item, by item id.
pub type Pauses = HashMap<i64, Vec<Pause>>;

/// The SLA state of an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "policy_id": 2, "clock": "business", "response_due_at": "2026-11-27T11:12:00Z",
    "resolution_due_at": "2026-12-01T09:12:00Z", "response_breached": false,
    "resolution_breached": false, "remaining_business_minutes": 312, "paused": false
}))]
pub struct SlaState {
    /// The policy that applies (the service's own for the severity, else the general one).
    pub policy_id: i64,
    /// How the policy counts time.
    pub clock: ClockKind,
    /// When the first response is due. While the clock is paused, this assumes it resumes now.
    pub response_due_at: DateTime<Utc>,
    /// When the resolution is due. While the clock is paused, this assumes it resumes now.
    pub resolution_due_at: DateTime<Utc>,
    /// Whether the first response came, or is still missing, after its due time.
    pub response_breached: bool,
    /// Whether the resolution came, or is still missing, after its due time.
    pub resolution_breached: bool,
    /// Minutes left until the resolution is due, counted on the policy's clock (business
    /// minutes unless the policy counts calendar minutes); negative when overdue, `null` once
    /// resolved.
    pub remaining_business_minutes: Option<i64>,
    /// Whether the clocks stand still because the incident waits in a pausing column.
    pub paused: bool,
}

/// What the clocks of one incident start from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockInput {
    /// The item's id.
    pub item_id: i64,
    /// Stored severity (`s1` … `s4`).
    pub severity: String,
    /// The item's own service.
    pub service_id: Option<i64>,
    /// When the clocks start.
    pub reported_at: DateTime<Utc>,
    /// When the response clock stopped.
    pub first_response_at: Option<DateTime<Utc>>,
    /// When the resolution clock stopped.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// One row of [`pauses_of`]'s union: an item's `created` or `moved` event (item, event id,
/// kind, data, time), or a column that pauses the SLA (column id, 0, `pausing`, "", epoch).
type ClockRow = (i64, i64, String, String, chrono::NaiveDateTime);

/// The union of [`pauses_of`], its item ids matched by the macro `$matches`.
macro_rules! clock_union {
    ($matches:ident) => {{
        use diesel::sql_types::{BigInt, Text, Timestamp};
        events::table
            .filter(
                events::entity_type
                    .eq("item")
                    .and($matches!(events::entity_id))
                    // Two comparisons rather than `IN (?, ?)`, which SQLite would parse
                    // and plan again on every call (diesel caches no statement with `IN`).
                    .and(events::kind.eq("created").or(events::kind.eq("moved"))),
            )
            .select((
                events::entity_id,
                events::id,
                events::kind,
                events::data,
                events::created_at,
            ))
            .union_all(
                board_columns::table
                    .filter(board_columns::pauses_sla.eq(true))
                    .select((
                        board_columns::id,
                        0_i64.into_sql::<BigInt>(),
                        PAUSING.into_sql::<Text>(),
                        "".into_sql::<Text>(),
                        chrono::DateTime::UNIX_EPOCH
                            .naive_utc()
                            .into_sql::<Timestamp>(),
                    )),
            )
    }};
}

/// The kind of a [`ClockRow`] that names a pausing column.
const PAUSING: &str = "pausing";

/// Periods in which each item stood in a pausing column (`None` end: still there), read from
/// the items' `created` and `moved` events together with the columns that pause, in one
/// statement (a `UNION ALL`: an incident's GET costs one round trip for its clock).
pub fn pauses_of(conn: &mut DbConnection, ids: &[i64]) -> Result<Pauses, ApiError> {
    use crate::common::db::load_on_engine;
    let mut out: Pauses = HashMap::new();
    let rows: Vec<ClockRow> = match ids {
        [] => return Ok(out),
        [one] => {
            macro_rules! matches {
                ($column:expr) => {
                    $column.eq(*one)
                };
            }
            load_on_engine(clock_union!(matches), conn)?
        }
        many => {
            macro_rules! matches {
                ($column:expr) => {
                    $column.eq_any(many)
                };
            }
            load_on_engine(clock_union!(matches), conn)?
        }
    };
    let (columns, mut moves): (Vec<ClockRow>, Vec<ClockRow>) =
        rows.into_iter().partition(|row| row.2 == PAUSING);
    let pausing: HashSet<i64> = columns.into_iter().map(|row| row.0).collect();
    if pausing.is_empty() {
        return Ok(out);
    }
    moves.sort_unstable_by_key(|row| (row.0, row.1));
    let rows = moves
        .into_iter()
        .map(|(item, _, kind, data, at)| (item, kind, data, at));
    let mut open: HashMap<i64, DateTime<Utc>> = HashMap::new();
    for (item, kind, data, at) in rows {
        let data: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
        let column = if kind == "created" {
            data["column"].as_i64()
        } else {
            data["to_column"].as_i64()
        };
        let paused = column.is_some_and(|c| pausing.contains(&c));
        let at = at.and_utc();
        match (open.get(&item).copied(), paused) {
            (None, true) => {
                open.insert(item, at);
            }
            (Some(start), false) => {
                open.remove(&item);
                out.entry(item).or_default().push((start, Some(at)));
            }
            _ => {}
        }
    }
    for (item, start) in open {
        out.entry(item).or_default().push((start, None));
    }
    Ok(out)
}

/// Minutes of `clock` between `from` and `to` outside the pauses.
fn running_minutes(
    clock: ClockKind,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    pauses: &[Pause],
) -> i64 {
    let paused: i64 = pauses
        .iter()
        .map(|(start, end)| {
            let start = (*start).max(from);
            let end = end.unwrap_or(to).min(to);
            if end > start {
                clock.minutes(start, end)
            } else {
                0
            }
        })
        .sum();
    clock.minutes(from, to) - paused
}

/// When `target` running minutes have passed since `from`, skipping the pauses; a pause that
/// has not ended is taken to end `now`.
fn due_at(
    clock: ClockKind,
    from: DateTime<Utc>,
    target: i64,
    pauses: &[Pause],
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut cursor = from;
    let mut remaining = target;
    for (start, end) in pauses {
        let end = end.unwrap_or(now.max(*start));
        if end <= cursor {
            continue;
        }
        let start = (*start).max(cursor);
        let available = clock.minutes(cursor, start);
        if available >= remaining {
            return clock.add(cursor, remaining);
        }
        remaining -= available;
        cursor = end;
    }
    clock.add(cursor, remaining)
}

/// The SLA state of each incident that has a policy.
pub fn states(
    inputs: &[ClockInput],
    policies: &[SlaPolicy],
    pauses: &Pauses,
    now: DateTime<Utc>,
) -> HashMap<i64, SlaState> {
    let none = Vec::new();
    inputs
        .iter()
        .filter_map(|input| {
            let policy = policy_for(policies, &input.severity, input.service_id)?;
            let (response_minutes, resolution_minutes) = (
                i64::from(policy.response_minutes),
                i64::from(policy.resolution_minutes),
            );
            let pauses = pauses.get(&input.item_id).unwrap_or(&none);
            let clock = policy.clock;
            let start = input.reported_at;
            let response_due_at = due_at(clock, start, response_minutes, pauses, now);
            let resolution_due_at = due_at(clock, start, resolution_minutes, pauses, now);
            let paused =
                input.resolved_at.is_none() && pauses.iter().any(|(s, e)| *s <= now && e.is_none());
            let remaining = input
                .resolved_at
                .is_none()
                .then(|| resolution_minutes - running_minutes(clock, start, now, pauses));
            Some((
                input.item_id,
                SlaState {
                    policy_id: policy.id,
                    clock,
                    response_due_at,
                    resolution_due_at,
                    response_breached: input.first_response_at.unwrap_or(now) > response_due_at,
                    resolution_breached: input.resolved_at.unwrap_or(now) > resolution_due_at,
                    remaining_business_minutes: remaining,
                    paused,
                },
            ))
        })
        .collect()
}

/// What the SLA clocks of some incidents are computed from: their inputs, the policies and
/// their pauses. Each of these changes only by a commit, so the clocks of an incident kept in
/// memory are computed afresh from it at any later time, exactly as a new read would, without
/// one.
#[derive(Debug, Clone, Default)]
pub struct ClockBasis {
    inputs: Vec<ClockInput>,
    policies: Vec<SlaPolicy>,
    pauses: Pauses,
}

impl ClockBasis {
    /// Reads the policies, and the pauses of `inputs` when any policy applies (at most three
    /// queries, none for no inputs).
    pub fn read(conn: &mut DbConnection, inputs: Vec<ClockInput>) -> Result<Self, ApiError> {
        if inputs.is_empty() {
            return Ok(ClockBasis::default());
        }
        let policies = crate::sla::policies::all(conn)?;
        let pauses = if policies.is_empty() {
            Pauses::new()
        } else {
            let ids: Vec<i64> = inputs.iter().map(|i| i.item_id).collect();
            pauses_of(conn, &ids)?
        };
        Ok(ClockBasis {
            inputs,
            policies,
            pauses,
        })
    }

    /// The SLA state of each incident that has a policy, at `now`, counted in the calendar
    /// current on this thread (see [`crate::common::calendar::with_calendar`]).
    pub fn states(&self, now: DateTime<Utc>) -> HashMap<i64, SlaState> {
        states(&self.inputs, &self.policies, &self.pauses, now)
    }

    /// Just what the clocks of `item_id` need: its input, the policy that applies to it and
    /// its pauses.
    pub fn of(&self, item_id: i64) -> ClockBasis {
        let inputs: Vec<ClockInput> = self
            .inputs
            .iter()
            .filter(|i| i.item_id == item_id)
            .cloned()
            .collect();
        let policies = inputs
            .iter()
            .filter_map(|i| policy_for(&self.policies, &i.severity, i.service_id))
            .cloned()
            .collect();
        let pauses = self
            .pauses
            .get(&item_id)
            .map(|p| Pauses::from([(item_id, p.clone())]))
            .unwrap_or_default();
        ClockBasis {
            inputs,
            policies,
            pauses,
        }
    }

    /// About how many bytes it holds, for a cache's bound.
    pub fn weight(&self) -> usize {
        let pauses: usize = self.pauses.values().map(Vec::len).sum();
        self.inputs.len() * 96 + self.policies.len() * 160 + pauses * 32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        // Winter time in Berlin is UTC+1.
        Utc.with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid")
            - Duration::hours(1)
    }

    #[test]
    fn a_pause_shifts_the_due_time_by_its_running_minutes() {
        // Monday 2026-11-30 09:00, 4 business hours; paused 10:00–15:00 on Monday.
        let from = at(2026, 11, 30, 9, 0);
        let pauses = vec![(at(2026, 11, 30, 10, 0), Some(at(2026, 11, 30, 15, 0)))];
        let due = due_at(
            ClockKind::Business,
            from,
            240,
            &pauses,
            at(2026, 12, 5, 0, 0),
        );
        // 60 minutes before the pause, 60 after it (15:00–16:00), 120 on Tuesday: 10:00.
        assert_eq!(due, at(2026, 12, 1, 10, 0));
        let used = running_minutes(ClockKind::Business, from, due, &pauses);
        assert_eq!(used, 240);
    }

    #[test]
    fn an_open_pause_projects_the_due_time_from_now() {
        let from = at(2026, 11, 30, 9, 0);
        let now = at(2026, 11, 30, 13, 0);
        let pauses = vec![(at(2026, 11, 30, 10, 0), None)];
        let due = due_at(ClockKind::Calendar, from, 120, &pauses, now);
        assert_eq!(due, at(2026, 11, 30, 14, 0));
    }
}
