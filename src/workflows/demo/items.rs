//! The generator of the demo's items: a few hundred incidents, tasks and demands, spread over
//! the services, the columns, the severities and the decisions, from the texts and knobs of
//! `data/demo/items.toml` (which explains the rules). Deterministic but for the clock:
//! incidents are reported relative to now.

use diesel::prelude::*;
use serde::Deserialize;

use super::{broken, files, read_toml};
use crate::board::model::Board;
use crate::catalog::organizations::Organization;
use crate::common::actor::Actor;
use crate::common::version::Precondition;
use crate::db::DbConnection;
use crate::db::schema::services;
use crate::demands::model::{self as demands, DecisionRequest};
use crate::error::ApiError;
use crate::items::demand::{Decision, DemandInput, Effort};
use crate::items::incident::IncidentInput;
use crate::items::types::{Item, ItemType, MoveRequest, NewItem, Priority};
use crate::sla::severity::Severity;

/// `items.toml`: the texts and knobs of the item generator (the file explains the rules).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ItemPlan {
    pub(super) count: usize,
    pub(super) requesting_organizations: Vec<String>,
    pub(super) priorities: Vec<Priority>,
    pub(super) label: String,
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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TaskPlan {
    pub(super) board: String,
    pub(super) titles: Vec<String>,
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
        ];
        match lists.iter().find(|(_, len)| *len == 0) {
            Some((list, _)) => Err(broken(
                files::ITEMS.0,
                format!("`{list}` must not be empty"),
            )),
            None => Ok(plan),
        }
    }
}

/// A few hundred items: incidents and tasks on OPS, demands on DEM, spread over the columns
/// and the services, by the team's members; `items.toml` says how.
pub(super) fn seed_items(
    conn: &mut DbConnection,
    plan: &ItemPlan,
    team: &[Actor],
    decider: &Actor,
) -> Result<usize, ApiError> {
    let services: Vec<String> = services::table
        .order(services::id)
        .select(services::key)
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
    let now = chrono::Utc::now();
    let mut created = 0;
    for i in 0..plan.count {
        let (board, item_type, title) = match i % 4 {
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
        let service = &services[(i * 7) % services.len()];
        let actor = &team[i % team.len()];
        let mut form = NewItem {
            board: board.clone(),
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
            due_date: None,
            raci: None,
            external_refs: Vec::new(),
            demand: None,
            incident: None,
            override_wip: true,
        };
        let target = i % 9;
        if item_type == ItemType::Incident {
            // Reported over the last ten days; older open ones have run out of time.
            let reported_at = now - chrono::Duration::minutes(((i * 397) % 14_400) as i64 + 5);
            let done = target == 8;
            let answered = done || i % 3 != 0;
            let soon = |minutes: i64| {
                let at = reported_at + chrono::Duration::minutes(minutes);
                (at < now).then_some(at)
            };
            form.incident = Some(IncidentInput {
                severity: Some(SEVERITIES[((i / 4) * 2 + i % 4) % 4]),
                reported_at: Some(reported_at),
                reported_by_org: Some(
                    requesting
                        .get(i % requesting.len().max(1))
                        .map(|o| o.short_name.clone()),
                ),
                impact: Some(plan.incidents.impact.clone()),
                first_response_at: Some(if answered { soon(20) } else { None }),
                resolved_at: Some(if done { soon(180) } else { None }),
                resolution: Some(done.then(|| plan.incidents.resolution.clone())),
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
        }
        let item = Item::create(conn, &form, actor, true)?;
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
                let caller = decider;
                let request = DecisionRequest {
                    decision,
                    reason: reason.cloned(),
                    target_quarter: (decision == Decision::Accepted)
                        .then(|| format!("2027-Q{}", 1 + d % 4)),
                    value: None,
                    effort: Some([Effort::S, Effort::M, Effort::L][d % 3]),
                    override_wip: true,
                };
                let decided =
                    demands::decide(conn, &item.key, &request, caller, Precondition(None))?;
                if decision == Decision::Accepted && d % 3 == 0 {
                    let board = Board::find(conn, board)?;
                    let column = board.columns.get(2).ok_or_else(|| {
                        broken(
                            files::BOARDS.0,
                            format!("{} needs a third column", board.key),
                        )
                    })?;
                    let request = MoveRequest {
                        column: column.id,
                        before: None,
                        after: None,
                        override_wip: true,
                        resolution: None,
                    };
                    Item::move_to(
                        conn,
                        &decided.key,
                        &request,
                        decider,
                        true,
                        Precondition(None),
                    )?;
                }
            }
            continue;
        }
        // Spread over the workflow; the WIP limits are overridden as a team lead would.
        if target > 3 {
            let board = Board::find(conn, board)?;
            let Some(last) = board.columns.len().checked_sub(1) else {
                continue;
            };
            let column = &board.columns[(target - 3).min(last)];
            let request = MoveRequest {
                column: column.id,
                before: None,
                after: None,
                override_wip: true,
                resolution: None,
            };
            Item::move_to(conn, &item.key, &request, actor, true, Precondition(None))?;
        }
    }
    Ok(created)
}
