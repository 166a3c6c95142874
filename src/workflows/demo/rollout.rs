//! The demo's rollout (`data/demo/rollout.toml`): waves of a few municipal EfA services,
//! planned for administrations, districts or all, and a spread of statuses and blockers, each
//! written through the functions behind the rollout's endpoints.

use std::collections::BTreeMap;

use chrono::Duration;
use serde::Deserialize;

use crate::common::actor::Actor;
use crate::common::version::Precondition;
use crate::db::DbConnection;
use crate::error::ApiError;
use crate::rollout::model::{EntryChanges, NewWave, RolloutPlan, RolloutSettings, RolloutStatus};
use crate::rollout::{entries, matrix, waves};

/// `rollout.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RolloutPlanFile {
    /// The team member (e-mail) who plans and updates.
    pub by: String,
    /// The steps ticked for each status.
    checklist: BTreeMap<RolloutStatus, Vec<String>>,
    service: Vec<DemoService>,
    #[serde(default)]
    blocker: Vec<DemoBlocker>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoService {
    key: String,
    wave: Vec<DemoWave>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoWave {
    name: String,
    start_days: i64,
    go_live_days: i64,
    administrations: Option<Vec<String>>,
    district: Option<String>,
    all: Option<bool>,
    spread: Vec<RolloutStatus>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoBlocker {
    service: String,
    administration: String,
    blocker: Option<String>,
    #[serde(default)]
    blocked_by: Vec<String>,
}

/// Loads the rollout; answers how many entries it created.
pub(super) fn seed_rollout(
    conn: &mut DbConnection,
    plan: &RolloutPlanFile,
    actor: &Actor,
) -> Result<usize, ApiError> {
    let settings = RolloutSettings::default();
    let today = crate::items::queries::today();
    let mut created = 0;
    for service in &plan.service {
        for wave in &service.wave {
            let go_live = today + Duration::days(wave.go_live_days);
            waves::create(
                conn,
                &service.key,
                &NewWave {
                    name: wave.name.clone(),
                    planned_start: Some(today + Duration::days(wave.start_days)),
                    planned_go_live: Some(go_live),
                },
                actor,
            )?;
            let report = matrix::plan(
                conn,
                &settings,
                &RolloutPlan {
                    service: service.key.clone(),
                    wave: wave.name.clone(),
                    administrations: wave.administrations.clone(),
                    district: wave.district.clone(),
                    all: wave.all,
                },
                actor,
            )?;
            created += report.created.len();
            if wave.spread.is_empty() {
                continue;
            }
            for (i, administration) in report.created.iter().enumerate() {
                let status = wave.spread[i % wave.spread.len()];
                if status == RolloutStatus::Planned {
                    continue;
                }
                let ticks = plan
                    .checklist
                    .get(&status)
                    .map(|steps| steps.iter().map(|s| (s.clone(), true)).collect());
                let changes = EntryChanges {
                    status: Some(status),
                    checklist: ticks,
                    actual_go_live: (status == RolloutStatus::Live).then(|| go_live.min(today)),
                    ..EntryChanges::default()
                };
                entries::write(
                    conn,
                    &settings,
                    &service.key,
                    administration,
                    &changes,
                    actor,
                    Precondition::ANY,
                    false,
                )?;
            }
        }
    }
    for blocker in &plan.blocker {
        let changes = EntryChanges {
            blocker: Some(blocker.blocker.clone()),
            blocked_by: Some(blocker.blocked_by.clone()),
            ..EntryChanges::default()
        };
        entries::write(
            conn,
            &settings,
            &blocker.service,
            &blocker.administration,
            &changes,
            actor,
            Precondition::ANY,
            false,
        )?;
    }
    Ok(created)
}
