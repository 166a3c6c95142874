//! The generator of the demo's items: a few hundred incidents, tasks and demands, spread over
//! the services, the columns, the severities and the decisions, from the texts and knobs of
//! `data/demo/items.toml` (which explains the rules). Deterministic but for the clock:
//! incidents are reported and due dates fall relative to now. The placement respects the WIP
//! limits of the boards, and the SLA policies decide how old an open incident may be.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Deserialize;

use super::{broken, files, read_toml};
use crate::board::model::{Board, Column, ColumnCategory};
use crate::catalog::organizations::Organization;
use crate::catalog::raci::{Accountable, PersonId, RaciInput};
use crate::common::actor::Actor;
use crate::common::version::Precondition;
use crate::db::DbConnection;
use crate::db::schema::{service_raci, services};
use crate::demands::model::{self as demands, DecisionRequest};
use crate::error::ApiError;
use crate::items::demand::{Decision, DemandInput, Effort};
use crate::items::incident::IncidentInput;
use crate::items::types::{Item, ItemType, MoveRequest, NewItem, Priority};
use crate::sla::policies::NewSlaPolicy;
use crate::sla::severity::Severity;

/// `items.toml`: the texts and knobs of the item generator (the file explains the rules).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemPlan {
    pub(super) count: usize,
    pub(super) requesting_organizations: Vec<String>,
    pub(super) priorities: Vec<Priority>,
    pub(super) label: String,
    pub(super) due_dates: DuePlan,
    pub(super) incidents: IncidentPlan,
    pub(super) tasks: TaskPlan,
    pub(super) demands: DemandPlan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentPlan {
    pub(super) board: String,
    pub(super) titles: Vec<String>,
    pub(super) impact: String,
    pub(super) resolution: String,
    pub(super) columns: Vec<String>,
    pub(super) resolved_within_days: u32,
    pub(super) response_after_minutes: u32,
    pub(super) resolved_after_minutes: u32,
    pub(super) open_age_shares: Vec<f64>,
    pub(super) breached_every: usize,
    pub(super) breached_days_ago: Vec<u32>,
}

/// `[due_dates]`: which tasks and demands are due, and when.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DuePlan {
    pub(super) every: usize,
    pub(super) days_from_today: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskPlan {
    pub(super) board: String,
    pub(super) titles: Vec<String>,
    pub(super) columns: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DemandPlan {
    pub(super) board: String,
    pub(super) titles: Vec<String>,
    pub(super) justification: String,
    pub(super) decided_by: String,
    pub(super) rejected_because: String,
    pub(super) deferred_because: String,
    pub(super) columns: Vec<String>,
}

impl ItemPlan {
    /// Reads `items.toml`; every list must hold something, for the generator takes turns in it.
    pub(super) fn read() -> Result<ItemPlan, ApiError> {
        let plan: ItemPlan = read_toml(files::ITEMS)?;
        let lists = [
            (
                "requesting_organizations",
                plan.requesting_organizations.len(),
            ),
            ("priorities", plan.priorities.len()),
            ("incidents.titles", plan.incidents.titles.len()),
            ("tasks.titles", plan.tasks.titles.len()),
            ("demands.titles", plan.demands.titles.len()),
            (
                "due_dates.days_from_today",
                plan.due_dates.days_from_today.len(),
            ),
            ("incidents.columns", plan.incidents.columns.len()),
            (
                "incidents.open_age_shares",
                plan.incidents.open_age_shares.len(),
            ),
            (
                "incidents.breached_days_ago",
                plan.incidents.breached_days_ago.len(),
            ),
            ("tasks.columns", plan.tasks.columns.len()),
            ("demands.columns", plan.demands.columns.len()),
            ("due_dates.every", plan.due_dates.every),
            ("incidents.breached_every", plan.incidents.breached_every),
        ];
        if let Some(share) = plan
            .incidents
            .open_age_shares
            .iter()
            .find(|s| !(0.0..1.0).contains(*s))
        {
            return Err(broken(
                files::ITEMS.0,
                format!("`incidents.open_age_shares`: {share} is not from 0 to below 1"),
            ));
        }
        match lists.iter().find(|(_, len)| *len == 0) {
            Some((list, _)) => Err(broken(
                files::ITEMS.0,
                format!("`{list}` must not be empty (or 0)"),
            )),
            None => Ok(plan),
        }
    }
}

/// How full each column is, so that the generator moves an item only where the WIP limit
/// leaves room, as the team would.
struct Placement {
    counts: HashMap<i64, i32>,
}

impl Placement {
    /// The column of `board` named `name` when it has room for one more item.
    fn room<'b>(&self, board: &'b Board, name: &str) -> Result<Option<&'b Column>, ApiError> {
        let column = board
            .columns
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| {
                broken(
                    files::ITEMS.0,
                    format!("board {} has no column `{name}`", board.key),
                )
            })?;
        let count = self.counts.get(&column.id).copied().unwrap_or(0);
        Ok(column
            .wip_limit
            .is_none_or(|limit| count < limit)
            .then_some(column))
    }

    /// Records a move of one item from `from` to `to`.
    fn moved(&mut self, from: i64, to: i64) {
        *self.counts.entry(from).or_default() -= 1;
        *self.counts.entry(to).or_default() += 1;
    }
}

/// Moves `key` into `column` within its WIP limit (never overriding it).
fn move_item(
    conn: &mut DbConnection,
    key: &str,
    column: &Column,
    actor: &Actor,
) -> Result<Item, ApiError> {
    let request = MoveRequest {
        column: column.id,
        before: None,
        after: None,
        override_wip: false,
        resolution: None,
    };
    Item::move_to(conn, key, &request, actor, true, Precondition(None))
}

/// A few hundred items: incidents and tasks on OPS, demands on DEM, spread over the columns
/// and the services, by the team's members; `items.toml` says how. `policies` are the SLA
/// policies, whose resolution targets bound the age of an open incident.
pub(super) fn seed_items(
    conn: &mut DbConnection,
    plan: &ItemPlan,
    policies: &[NewSlaPolicy],
    team: &[Actor],
    decider: &Actor,
) -> Result<usize, ApiError> {
    let services: Vec<(i64, String)> = services::table
        .order(services::id)
        .select((services::id, services::key))
        .load(conn)?;
    if services.is_empty() || team.is_empty() {
        return Ok(0);
    }
    const SEVERITIES: [Severity; 4] = [Severity::S1, Severity::S2, Severity::S3, Severity::S4];
    let orgs = Organization::all(conn)?;
    let requesting: Vec<&Organization> = plan
        .requesting_organizations
        .iter()
        .filter_map(|short| orgs.iter().find(|o| o.short_name == *short))
        .collect();
    let mut boards: HashMap<String, Board> = HashMap::new();
    for key in [
        &plan.incidents.board,
        &plan.tasks.board,
        &plan.demands.board,
    ] {
        if !boards.contains_key(key) {
            boards.insert(key.clone(), Board::find(conn, key)?);
        }
    }
    let mut placement = Placement {
        counts: HashMap::new(),
    };
    let now = chrono::Utc::now();
    let today = now.date_naive();
    let minutes = |m: i64| chrono::Duration::minutes(m);
    let mut created = 0;
    let mut dated = 0;
    for i in 0..plan.count {
        let (board_key, item_type, title) = match i % 4 {
            0 | 1 => {
                let titles = &plan.incidents.titles;
                (
                    &plan.incidents.board,
                    ItemType::Incident,
                    &titles[i % titles.len()],
                )
            }
            2 => (
                &plan.tasks.board,
                ItemType::Task,
                &plan.tasks.titles[i % plan.tasks.titles.len()],
            ),
            _ => {
                let titles = &plan.demands.titles;
                (
                    &plan.demands.board,
                    ItemType::Demand,
                    &titles[i % titles.len()],
                )
            }
        };
        let board = boards
            .get(board_key)
            .ok_or_else(|| broken(files::ITEMS.0, format!("no board {board_key}")))?;
        let (service_id, service) = &services[(i * 7) % services.len()];
        let actor = &team[i % team.len()];
        let due_date = if item_type != ItemType::Incident {
            dated += 1;
            let due = &plan.due_dates;
            (dated % due.every == 0).then(|| {
                let days = due.days_from_today[(dated / due.every) % due.days_from_today.len()];
                today + chrono::Duration::days(days)
            })
        } else {
            None
        };
        let mut form = NewItem {
            board: board_key.clone(),
            item_type,
            title: format!("{title} ({service})"),
            description: String::new(),
            service: Some(service.clone()),
            priority: plan.priorities[i % plan.priorities.len()],
            labels: if i % 5 == 0 {
                vec![plan.label.clone()]
            } else {
                Vec::new()
            },
            due_date,
            raci: None,
            external_refs: Vec::new(),
            demand: None,
            incident: None,
            override_wip: false,
        };
        // Where the item goes: its turn in the `columns` of its kind.
        let n = i / 4 * 2 + i % 4;
        let mut target = match item_type {
            ItemType::Incident => Some(&plan.incidents.columns[n % plan.incidents.columns.len()]),
            ItemType::Task => Some(&plan.tasks.columns[(i / 4) % plan.tasks.columns.len()]),
            _ => None,
        };
        if item_type == ItemType::Incident {
            let incidents = &plan.incidents;
            let severity = SEVERITIES[n % 4];
            let breached = n % incidents.breached_every == 0;
            let mut done = false;
            if let Some(name) = target {
                done = board
                    .columns
                    .iter()
                    .any(|c| c.name == *name && c.category == ColumnCategory::Done);
                if breached && done {
                    // A breached incident is still open: it waits in the first column.
                    target = None;
                    done = false;
                }
            }
            let (reported_at, first_response_at, resolved_at) = if breached {
                let days = incidents.breached_days_ago
                    [(n / incidents.breached_every) % incidents.breached_days_ago.len()];
                (now - chrono::Duration::days(i64::from(days)), None, None)
            } else if done {
                let window = i64::from(incidents.resolved_within_days.max(1)) * 1440;
                let reported_at = now - minutes(1440 + (n as i64 * 397) % window);
                (
                    reported_at,
                    Some(reported_at + minutes(incidents.response_after_minutes.into())),
                    Some(reported_at + minutes(incidents.resolved_after_minutes.into())),
                )
            } else {
                // Open within its targets: reported a share of its resolution target ago,
                // in calendar minutes (never more business minutes than that).
                let target = policies
                    .iter()
                    .find(|p| p.severity == severity && p.service.is_none())
                    .map(|p| p.resolution_minutes)
                    .ok_or_else(|| {
                        broken(
                            files::SLA_POLICIES.0,
                            format!("no policy for {severity:?} and every service"),
                        )
                    })?;
                let share = incidents.open_age_shares[(n / 4) % incidents.open_age_shares.len()];
                let age = (f64::from(target) * share) as i64;
                let reported_at = now - minutes(age);
                let answered = reported_at + minutes(incidents.response_after_minutes.into());
                (reported_at, (answered < now).then_some(answered), None)
            };
            form.incident = Some(IncidentInput {
                severity: Some(severity),
                reported_at: Some(reported_at),
                reported_by_org: Some(
                    requesting
                        .get(i % requesting.len().max(1))
                        .map(|o| o.short_name.clone()),
                ),
                impact: Some(incidents.impact.clone()),
                first_response_at: Some(first_response_at),
                resolved_at: Some(resolved_at),
                resolution: Some(done.then(|| incidents.resolution.clone())),
                ..IncidentInput::default()
            });
        }
        if item_type == ItemType::Demand {
            let org = requesting.get((i / 4) % requesting.len().max(1));
            form.demand = Some(DemandInput {
                requesting_organization: Some(org.map(|o| o.short_name.clone())),
                justification: Some(plan.demands.justification.clone()),
                value: Some(Some(i32::try_from(i % 5).unwrap_or(0) + 1)),
                desired_date: Some(chrono::NaiveDate::from_ymd_opt(
                    2027,
                    1 + (i % 12) as u32,
                    1,
                )),
                ..DemandInput::default()
            });
            // The demand manager (the board's lead) is accountable for a demand; the
            // service's accountable case worker is responsible for it.
            if let Some(lead) = board.lead {
                let case_worker: Option<i64> = service_raci::table
                    .filter(service_raci::service_id.eq(service_id))
                    .filter(service_raci::role.eq("accountable"))
                    .select(service_raci::user_id)
                    .first(conn)
                    .optional()?;
                form.raci = Some(RaciInput {
                    accountable: Some(Accountable::One(PersonId::Id(lead))),
                    responsible: case_worker
                        .filter(|w| *w != lead)
                        .map(PersonId::Id)
                        .into_iter()
                        .collect(),
                    consulted: Vec::new(),
                    informed: Vec::new(),
                });
            }
        }
        let item = Item::create(conn, &form, actor, true)?;
        let first = item.column.id;
        *placement.counts.entry(first).or_default() += 1;
        created += 1;
        if item_type == ItemType::Demand {
            // Every fifth stays pending; the others are decided by the demand manager.
            let d = i / 4;
            let (decision, reason) = match d % 5 {
                0 => (None, None),
                1 | 2 => (Some(Decision::Accepted), None),
                3 => (
                    Some(Decision::Rejected),
                    Some(&plan.demands.rejected_because),
                ),
                _ => (
                    Some(Decision::Deferred),
                    Some(&plan.demands.deferred_because),
                ),
            };
            if let Some(decision) = decision {
                let request = DecisionRequest {
                    decision,
                    reason: reason.cloned(),
                    target_quarter: (decision == Decision::Accepted)
                        .then(|| format!("2027-Q{}", 1 + d % 4)),
                    value: None,
                    effort: Some([Effort::S, Effort::M, Effort::L][d % 3]),
                    override_wip: false,
                };
                let decided =
                    demands::decide(conn, &item.key, &request, decider, Precondition(None))?;
                placement.moved(first, decided.column.id);
                if decision == Decision::Accepted {
                    let accepted = (d / 5) * 2 + d % 5 - 1;
                    let columns = &plan.demands.columns;
                    let name = &columns[accepted % columns.len()];
                    if let Some(column) = placement.room(board, name)?
                        && column.id != decided.column.id
                    {
                        move_item(conn, &decided.key, column, decider)?;
                        placement.moved(decided.column.id, column.id);
                    }
                }
            }
            continue;
        }
        if let Some(name) = target
            && let Some(column) = placement.room(board, name)?
            && column.id != first
        {
            move_item(conn, &item.key, column, actor)?;
            placement.moved(first, column.id);
        }
    }
    Ok(created)
}
