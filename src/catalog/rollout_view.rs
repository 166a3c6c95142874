//! What the pages of a service and of an organization show of the rollout (the `rollout`
//! feature owns the entries; the catalogue sits below it, so it reads the stored rows through
//! the schema only, for a summary).

use std::collections::BTreeMap;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::organizations::Organization;
use crate::catalog::services::Service;
use crate::common::db::DbConnection;
use crate::common::db::schema::{rollout_entries, rollout_waves, services};
use crate::common::error::ApiError;

/// A service's rollout to the municipal administrations, in short.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct ServiceRollout {
    /// Entries per status (only statuses that occur).
    pub counts: BTreeMap<String, i64>,
    /// All entries.
    pub total: i64,
    /// Entries it applies to (all but `not_applicable`).
    pub applicable: i64,
    /// Live entries.
    pub live: i64,
    /// `live / applicable`; `null` when nothing applies.
    pub live_share: Option<f64>,
    /// Whether it is live everywhere it applies (and applies somewhere).
    pub live_everywhere: bool,
    /// Its waves, by name.
    pub waves: Vec<String>,
}

/// A service as its page shows it: the service and its rollout summary.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServicePage {
    /// The service.
    #[serde(flatten)]
    pub service: Service,
    /// Its rollout (details at `/api/v1/rollout/matrix?service=…`).
    pub rollout: ServiceRollout,
}

/// A service rolled out to an organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServiceThere {
    /// The service's key.
    pub service: String,
    /// Its name.
    pub name: String,
    /// The entry's status.
    pub status: String,
    /// Its planned go-live.
    pub planned_go_live: Option<NaiveDate>,
    /// When it went live.
    pub actual_go_live: Option<NaiveDate>,
}

/// The rollout as an administration sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct OrganizationRollout {
    /// The services live there.
    pub live: Vec<ServiceThere>,
    /// The services on their way there (planned, preparing, technical_ready, testing, paused).
    pub in_progress: Vec<ServiceThere>,
}

/// An organization as its page shows it: the organization and the services rolled out to it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrganizationPage {
    /// The organization.
    #[serde(flatten)]
    pub organization: Organization,
    /// The services live there and in progress (empty for bodies that are no municipal
    /// administration).
    pub rollout: OrganizationRollout,
}

/// The rollout summary of a service.
pub fn service_rollout(
    conn: &mut DbConnection,
    service_id: i64,
) -> Result<ServiceRollout, ApiError> {
    let statuses: Vec<String> = rollout_entries::table
        .filter(rollout_entries::service_id.eq(service_id))
        .select(rollout_entries::status)
        .load(conn)?;
    let mut summary = ServiceRollout::default();
    for status in statuses {
        summary.total += 1;
        if status != "not_applicable" {
            summary.applicable += 1;
        }
        if status == "live" {
            summary.live += 1;
        }
        *summary.counts.entry(status).or_default() += 1;
    }
    summary.live_share =
        (summary.applicable > 0).then(|| summary.live as f64 / summary.applicable as f64);
    summary.live_everywhere = summary.applicable > 0 && summary.live == summary.applicable;
    summary.waves = rollout_waves::table
        .filter(rollout_waves::service_id.eq(service_id))
        .order((
            rollout_waves::planned_go_live.asc(),
            rollout_waves::id.asc(),
        ))
        .select(rollout_waves::name)
        .load(conn)?;
    Ok(summary)
}

type ThereRow = (
    String,
    String,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<NaiveDate>,
);

/// The services live at an organization and on their way there.
pub fn organization_rollout(
    conn: &mut DbConnection,
    organization_id: i64,
) -> Result<OrganizationRollout, ApiError> {
    let rows: Vec<ThereRow> = rollout_entries::table
        .inner_join(services::table)
        .left_join(rollout_waves::table)
        .filter(rollout_entries::organization_id.eq(organization_id))
        .order(services::key)
        .select((
            services::key,
            services::name,
            rollout_entries::status,
            rollout_entries::planned_go_live,
            rollout_waves::planned_go_live.nullable(),
            rollout_entries::actual_go_live,
        ))
        .load(conn)?;
    let mut page = OrganizationRollout::default();
    for (service, name, status, planned, wave_planned, actual) in rows {
        let there = ServiceThere {
            service,
            name,
            planned_go_live: planned.or(wave_planned),
            actual_go_live: actual,
            status: status.clone(),
        };
        match status.as_str() {
            "live" => page.live.push(there),
            "not_applicable" => {}
            _ => page.in_progress.push(there),
        }
    }
    Ok(page)
}
