//! The monthly governance report: portfolio, demands, incidents with SLA compliance, flow per
//! board, the rollout to the municipal administrations, and the decisions needed, as JSON, as
//! one self-contained printable HTML page (charts inline) and as Markdown.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::db::DbConnection;
use crate::common::db::schema::{
    boards, demand_details, events, incident_details, item_raci, items, rollout_entries, services,
    users,
};
use crate::common::error::ApiError;
use crate::reports::charts::{self, xml};
use crate::reports::flow::{self, FlowParams, Lang};
use crate::reports::sla::{self, SlaParams, SlaRow};
use crate::rollout::model::{
    ProgressBy, ProgressFigures, ProgressGroup, RolloutEntry, RolloutSettings, RolloutStatus,
};

/// The query of the governance report.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GovernanceParams {
    /// The month, `YYYY-MM` (required).
    pub month: Option<String>,
    /// `json` (default), `html` or `markdown`; `Accept: text/html` or `text/markdown` too.
    pub format: Option<GovernanceFormat>,
}

/// The representation of the governance report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GovernanceFormat {
    /// JSON.
    Json,
    /// One printable, self-contained HTML page.
    Html,
    /// Markdown, for Confluence or a wiki.
    Markdown,
}

/// Counts by a name.
pub type Counts = BTreeMap<String, i64>;

/// The services of the catalogue.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Portfolio {
    /// Services by lifecycle.
    pub by_lifecycle: Counts,
    /// Services by kind.
    pub by_kind: Counts,
    /// Services by maturity level.
    pub by_maturity: Counts,
    /// Services in the catalogue at the end of the month.
    pub total: i64,
    /// What changed since the end of last month.
    pub change_since_last_month: PortfolioChange,
}

/// The catalogue's changes within the month, from the services' history.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PortfolioChange {
    /// Services in the catalogue at the end of last month.
    pub total_last_month: i64,
    /// Services added this month (keys).
    pub added: Vec<String>,
    /// Services deleted this month (keys).
    pub removed: Vec<String>,
    /// Services whose lifecycle changed this month, from the first to the last value.
    pub lifecycle_changed: Vec<ServiceChange>,
    /// Services whose maturity level changed this month.
    pub maturity_changed: Vec<ServiceChange>,
}

/// A field of a service that changed within the month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ServiceChange {
    /// The service's key.
    pub service: String,
    /// The value at the end of last month.
    pub from: String,
    /// The value at the end of this month.
    pub to: String,
}

/// The rollout of the online services to the municipal administrations.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutSection {
    /// Every entry together.
    pub total: ProgressFigures,
    /// Entries that went live this month.
    pub went_live_this_month: i64,
    /// Progress per service.
    pub by_service: Vec<ProgressGroup>,
    /// Progress per district (the kreisfreie Städte as one group).
    pub by_district: Vec<ProgressGroup>,
    /// Services live everywhere they apply (keys).
    pub services_live_everywhere: Vec<String>,
    /// Entries something blocks, by service and administration.
    pub blocked: Vec<RolloutAttention>,
    /// Entries past their planned go-live, by service and administration.
    pub overdue: Vec<RolloutAttention>,
}

/// A rollout entry the governance round looks at.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RolloutAttention {
    /// `service/administration`, the entry's path under `/api/v1/rollout/`.
    pub key: String,
    /// The service's name.
    pub service_name: String,
    /// The administration's name.
    pub administration_name: String,
    /// The district (short name); `null` for a kreisfreie Stadt.
    pub district: Option<String>,
    /// Where it stands.
    pub status: RolloutStatus,
    /// Its planned go-live.
    pub planned_go_live: Option<NaiveDate>,
    /// What holds it up: the blocker text and the blocking items.
    pub blocker: Option<String>,
    /// Items (keys) that block it.
    pub blocked_by: Vec<String>,
    /// Who answers for it (display name): its owner, else the service's accountable person.
    pub accountable: Option<String>,
}

/// An item the report names.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NamedItem {
    /// Its key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// What the report says of it (decision, age, quarter, …).
    pub detail: String,
    /// The accountable person (display name).
    pub accountable: Option<String>,
}

/// Demands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DemandSection {
    /// Decided this month, with the decision.
    pub decided: Vec<NamedItem>,
    /// Pending, oldest first, with their age in days.
    pub pending: Vec<NamedItem>,
    /// Accepted demands planned for the next two quarters, by quarter.
    pub roadmap: BTreeMap<String, Vec<NamedItem>>,
}

/// Incidents.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentSection {
    /// Reported this month, by severity.
    pub reported_by_severity: Counts,
    /// SLA compliance this month.
    pub sla: Option<SlaRow>,
    /// SLA compliance last month.
    pub sla_last_month: Option<SlaRow>,
}

/// Flow of one board.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BoardFlow {
    /// The board's key.
    pub board: String,
    /// Finishes per month, the last six months up to this one (`YYYY-MM` → count).
    pub throughput_monthly: Counts,
    /// Cycle time of the items finished this month.
    pub cycle_time_p50: Option<i64>,
    /// 85th percentile.
    pub cycle_time_p85: Option<i64>,
    /// 95th percentile.
    pub cycle_time_p95: Option<i64>,
    /// Open items older than the SLE (the p85 cycle time of the last six months).
    pub older_than_sle: Vec<String>,
}

/// A decision the governance round needs to take.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecisionNeeded {
    /// Why: `pending_demand`, `blocked_rollout`, `breached_sla` or `older_than_p95`.
    pub kind: String,
    /// The item's key, or for a rollout entry `service/administration`.
    pub key: String,
    /// Its title.
    pub title: String,
    /// The detail (age, due time).
    pub detail: String,
    /// The accountable person.
    pub accountable: Option<String>,
}

/// The governance report of a month.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GovernanceReport {
    /// The month, `YYYY-MM`.
    pub month: String,
    /// Its first day.
    pub from: NaiveDate,
    /// Its last day.
    pub to: NaiveDate,
    /// When the report was made.
    pub asof: chrono::DateTime<Utc>,
    /// The service portfolio.
    pub portfolio: Portfolio,
    /// Demands.
    pub demands: DemandSection,
    /// The rollout to the municipal administrations.
    pub rollout: RolloutSection,
    /// Incidents and SLA compliance.
    pub incidents: IncidentSection,
    /// Flow per board.
    pub flow: Vec<BoardFlow>,
    /// Decisions needed, each with its key and accountable person.
    pub decisions_needed: Vec<DecisionNeeded>,
    #[serde(skip)]
    charts: Vec<(String, String)>,
}

/// The first and last day of `YYYY-MM` (422 naming `month` otherwise).
pub fn month_range(month: Option<&str>) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let Some(text) = month else {
        return Err(ApiError::invalid("month", "give the month as YYYY-MM"));
    };
    let first = NaiveDate::parse_from_str(&format!("{}-01", text.trim()), "%Y-%m-%d")
        .map_err(|_| ApiError::invalid("month", "must be YYYY-MM, such as 2027-01"))?;
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .ok_or_else(|| ApiError::invalid("month", "is out of range"))?;
    Ok((first, next - Duration::days(1)))
}

fn month_of(date: NaiveDate) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

fn accountable_names(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<BTreeMap<i64, String>, ApiError> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(5000) {
        let rows: Vec<(i64, String)> = item_raci::table
            .inner_join(users::table)
            .filter(
                item_raci::item_id
                    .eq_any(chunk)
                    .and(item_raci::role.eq("accountable")),
            )
            .select((item_raci::item_id, users::display_name))
            .load(conn)?;
        out.extend(rows);
    }
    Ok(out)
}

/// The catalogue's changes between `start` and `end` from the services' `created`, `updated`
/// and `deleted` events; `total` is the count at `end`.
fn portfolio_change(
    conn: &mut DbConnection,
    start: chrono::NaiveDateTime,
    end: chrono::NaiveDateTime,
    total: i64,
) -> Result<PortfolioChange, ApiError> {
    let rows: Vec<(i64, String, String)> = events::table
        .filter(
            events::entity_type
                .eq("service")
                .and(events::created_at.ge(start))
                .and(events::created_at.lt(end))
                .and(events::kind.eq_any(["created", "updated", "deleted"])),
        )
        .order(events::id)
        .select((events::entity_id, events::kind, events::data))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let keys: BTreeMap<i64, String> = services::table
        .filter(services::id.eq_any(&ids))
        .select((services::id, services::key))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut change = PortfolioChange::default();
    // key → (first old, last new) per field, in the order of the events.
    let mut lifecycle: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut maturity: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut created = std::collections::BTreeSet::new();
    for (id, kind, data) in rows {
        let data: serde_json::Value = serde_json::from_str(&data).unwrap_or_default();
        let Some(key) = keys
            .get(&id)
            .cloned()
            .or_else(|| data.get("key").and_then(|k| k.as_str()).map(str::to_string))
        else {
            continue;
        };
        match kind.as_str() {
            "created" => {
                created.insert(key.clone());
                change.added.push(key);
            }
            "deleted" => {
                // Added and deleted within the month: neither at either end.
                if !created.remove(&key) {
                    change.removed.push(key.clone());
                }
                change.added.retain(|k| *k != key);
                lifecycle.remove(&key);
                maturity.remove(&key);
            }
            _ => {
                for (field, seen) in [
                    ("lifecycle", &mut lifecycle),
                    ("maturity_level", &mut maturity),
                ] {
                    if let Some(diff) = data.get(field)
                        && !created.contains(&key)
                    {
                        let (old, new) = (text(&diff["old"]), text(&diff["new"]));
                        seen.entry(key.clone())
                            .and_modify(|e| e.1 = new.clone())
                            .or_insert((old, new));
                    }
                }
            }
        }
    }
    let changes = |seen: BTreeMap<String, (String, String)>| {
        seen.into_iter()
            .filter(|(_, (from, to))| from != to)
            .map(|(service, (from, to))| ServiceChange { service, from, to })
            .collect()
    };
    change.lifecycle_changed = changes(lifecycle);
    change.maturity_changed = changes(maturity);
    change.total_last_month = total - change.added.len() as i64 + change.removed.len() as i64;
    Ok(change)
}

/// The rollout section: progress by service and by district, the blocked and the overdue
/// entries with who answers for them.
fn rollout_section(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    start: NaiveDate,
    end: NaiveDate,
) -> Result<RolloutSection, ApiError> {
    let by_service = crate::rollout::matrix::progress(conn, ProgressBy::Service, None)?;
    let by_district = crate::rollout::matrix::progress(conn, ProgressBy::District, None)?;
    let went_live_this_month = rollout_entries::table
        .filter(
            rollout_entries::actual_go_live
                .ge(start)
                .and(rollout_entries::actual_go_live.le(end)),
        )
        .count()
        .get_result(conn)?;
    let entries = crate::rollout::entries::needing_attention(conn, settings)?;
    let owner_ids: Vec<i64> = entries
        .iter()
        .filter_map(|e| e.effective_owner_id)
        .collect();
    let owners: BTreeMap<i64, String> = users::table
        .filter(users::id.eq_any(owner_ids))
        .select((users::id, users::display_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    let service_names: BTreeMap<String, String> = by_service
        .groups
        .iter()
        .filter_map(|g| Some((g.key.clone()?, g.name.clone())))
        .collect();
    let attention = |e: &RolloutEntry| RolloutAttention {
        key: format!("{}/{}", e.service, e.administration),
        service_name: service_names
            .get(&e.service)
            .cloned()
            .unwrap_or_else(|| e.service.clone()),
        administration_name: e.administration_name.clone(),
        district: e.district.clone(),
        status: e.status,
        planned_go_live: e.planned_go_live,
        blocker: e.blocker.clone(),
        blocked_by: e.blocked_by.clone(),
        accountable: e.effective_owner_id.and_then(|id| owners.get(&id).cloned()),
    };
    Ok(RolloutSection {
        total: by_service.total.clone(),
        went_live_this_month,
        services_live_everywhere: by_service.services_live_everywhere.clone(),
        blocked: entries
            .iter()
            .filter(|e| e.blocked)
            .map(attention)
            .collect(),
        overdue: entries
            .iter()
            .filter(|e| e.overdue)
            .map(attention)
            .collect(),
        by_service: by_service.groups,
        by_district: by_district.groups,
    })
}

/// What holds a rollout entry up, in words: its blocker and the blocking items.
fn hold_up(entry: &RolloutAttention) -> String {
    let mut parts: Vec<String> = entry.blocker.iter().cloned().collect();
    if !entry.blocked_by.is_empty() {
        parts.push(format!("blocked by {}", entry.blocked_by.join(", ")));
    }
    parts.join("; ")
}

/// The governance report of `month`.
pub fn report(
    conn: &mut DbConnection,
    rollout_settings: &RolloutSettings,
    month: Option<&str>,
) -> Result<GovernanceReport, ApiError> {
    let (from, to) = month_range(month)?;
    let tz = crate::common::calendar::current().tz;
    let end = flow::day_start(&tz, to + Duration::days(1));
    let start = flow::day_start(&tz, from);
    // Portfolio.
    let catalogue: Vec<(String, String, i16, chrono::NaiveDateTime)> = services::table
        .filter(services::created_at.lt(end))
        .select((
            services::lifecycle,
            services::kind,
            services::maturity_level,
            services::created_at,
        ))
        .load(conn)?;
    let mut portfolio = Portfolio {
        by_lifecycle: Counts::new(),
        by_kind: Counts::new(),
        by_maturity: Counts::new(),
        total: catalogue.len() as i64,
        change_since_last_month: PortfolioChange::default(),
    };
    for (lifecycle, kind, maturity, _) in &catalogue {
        *portfolio.by_lifecycle.entry(lifecycle.clone()).or_default() += 1;
        *portfolio.by_kind.entry(kind.clone()).or_default() += 1;
        *portfolio
            .by_maturity
            .entry(maturity.to_string())
            .or_default() += 1;
    }
    portfolio.change_since_last_month = portfolio_change(conn, start, end, portfolio.total)?;
    // Demands.
    type DemandRow = (
        i64,
        String,
        String,
        String,
        Option<chrono::NaiveDateTime>,
        Option<String>,
        chrono::NaiveDateTime,
    );
    let demands: Vec<DemandRow> = items::table
        .inner_join(demand_details::table)
        .filter(items::deleted_at.is_null())
        .select((
            items::id,
            items::key,
            items::title,
            demand_details::decision,
            demand_details::decided_at,
            demand_details::target_quarter,
            items::created_at,
        ))
        .load(conn)?;
    let ids: Vec<i64> = demands.iter().map(|d| d.0).collect();
    let mut accountable = accountable_names(conn, &ids)?;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let asof_date = today.min(to);
    let quarter = |d: NaiveDate| format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1);
    let next_quarters = [
        quarter(to),
        quarter(to.checked_add_months(chrono::Months::new(3)).unwrap_or(to)),
    ];
    let mut section = DemandSection {
        decided: Vec::new(),
        pending: Vec::new(),
        roadmap: next_quarters
            .iter()
            .map(|q| (q.clone(), Vec::new()))
            .collect(),
    };
    let mut decisions = Vec::new();
    for (id, key, title, decision, decided_at, target, created) in &demands {
        let named = |detail: String| NamedItem {
            key: key.clone(),
            title: title.clone(),
            detail,
            accountable: accountable.get(id).cloned(),
        };
        if let Some(decided) = decided_at
            && *decided >= start
            && *decided < end
            && decision != "pending"
        {
            section.decided.push(named(decision.clone()));
        }
        if decision == "pending" && *created < end {
            let age = (asof_date - flow::local_date(&tz, *created)).num_days() + 1;
            section.pending.push(named(format!("{age}")));
            if age > 30 {
                decisions.push(DecisionNeeded {
                    kind: "pending_demand".into(),
                    key: key.clone(),
                    title: title.clone(),
                    detail: format!("pending for {age} days"),
                    accountable: accountable.get(id).cloned(),
                });
            }
        }
        if decision == "accepted"
            && let Some(q) = target
            && let Some(list) = section.roadmap.get_mut(q)
        {
            list.push(named(q.clone()));
        }
    }
    section.pending.sort_by(|a, b| {
        b.detail
            .parse::<i64>()
            .unwrap_or(0)
            .cmp(&a.detail.parse::<i64>().unwrap_or(0))
    });
    // Rollout: blocked entries need a decision.
    let rollout = rollout_section(conn, rollout_settings, from, to)?;
    for entry in &rollout.blocked {
        decisions.push(DecisionNeeded {
            kind: "blocked_rollout".into(),
            key: entry.key.clone(),
            title: format!("{} – {}", entry.service_name, entry.administration_name),
            detail: hold_up(entry),
            accountable: entry.accountable.clone(),
        });
    }
    // Incidents and SLA.
    let reported: Vec<String> = items::table
        .inner_join(incident_details::table)
        .filter(
            items::deleted_at.is_null().and(
                incident_details::reported_at
                    .ge(start)
                    .and(incident_details::reported_at.lt(end)),
            ),
        )
        .select(incident_details::severity)
        .load(conn)?;
    let mut by_severity = Counts::new();
    for severity in reported {
        *by_severity.entry(severity).or_default() += 1;
    }
    let last_from = from
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(from);
    let sla_report = sla::report(
        conn,
        &SlaParams {
            from: Some(last_from),
            to: Some(to),
            ..SlaParams::default()
        },
    )?;
    let this_month = month_of(from);
    let last_month = month_of(last_from);
    let incidents = IncidentSection {
        reported_by_severity: by_severity,
        sla: sla_report
            .months
            .iter()
            .find(|m| m.month == this_month)
            .cloned(),
        sla_last_month: sla_report
            .months
            .iter()
            .find(|m| m.month == last_month)
            .cloned(),
    };
    let mut charts_inline = vec![("SLA".to_string(), charts::sla(&sla_report, Lang::De)?)];
    // Breached open SLA clocks: decisions needed.
    let open_breaches = breached_open(conn)?;
    let breach_ids: Vec<i64> = open_breaches.iter().map(|b| b.0).collect();
    accountable.extend(accountable_names(conn, &breach_ids)?);
    for (id, key, title, due) in open_breaches {
        decisions.push(DecisionNeeded {
            kind: "breached_sla".into(),
            key,
            title,
            detail: format!(
                "resolution was due {}",
                due.with_timezone(&tz).format("%d.%m.%Y %H:%M")
            ),
            accountable: accountable.get(&id).cloned(),
        });
    }
    // Flow per board.
    let board_keys: Vec<String> = boards::table
        .order(boards::key)
        .select(boards::key)
        .load(conn)?;
    let six_months_from = from
        .checked_sub_months(chrono::Months::new(5))
        .unwrap_or(from);
    let asof = Utc::now().min(end.and_utc());
    let mut flows = Vec::new();
    for board in board_keys {
        let long = flow::report(
            conn,
            &FlowParams {
                board: Some(board.clone()),
                from: Some(six_months_from),
                to: Some(to),
                asof: Some(asof),
                ..FlowParams::default()
            },
        )?;
        let month_only = flow::report(
            conn,
            &FlowParams {
                board: Some(board.clone()),
                from: Some(from),
                to: Some(to),
                asof: Some(asof),
                ..FlowParams::default()
            },
        )?;
        let mut monthly = Counts::new();
        let mut m = six_months_from;
        while m <= to {
            monthly.insert(month_of(m), 0);
            m = m
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(to + Duration::days(1));
        }
        for item in &long.cycle_time.items {
            let date = item.finished_at.with_timezone(&tz).date_naive();
            *monthly.entry(month_of(date)).or_default() += 1;
        }
        let older: Vec<String> = long.sle.exceeding_items.clone();
        if let Some(p95) = long.cycle_time.p95 {
            for aged in long.aging.iter().filter(|a| a.age_days > p95) {
                decisions.push(DecisionNeeded {
                    kind: "older_than_p95".into(),
                    key: aged.key.clone(),
                    title: aged.title.clone(),
                    detail: format!("{} days old, p95 is {p95} days", aged.age_days),
                    accountable: None,
                });
            }
        }
        charts_inline.push((
            format!("{board}: Durchsatz"),
            charts::throughput(&long, Lang::De)?,
        ));
        charts_inline.push((
            format!("{board}: Durchlaufzeit"),
            charts::cycle_time(&month_only, Lang::De)?,
        ));
        flows.push(BoardFlow {
            board,
            throughput_monthly: monthly,
            cycle_time_p50: month_only.cycle_time.p50,
            cycle_time_p85: month_only.cycle_time.p85,
            cycle_time_p95: month_only.cycle_time.p95,
            older_than_sle: older,
        });
    }
    // The accountable people of aged items.
    let aged_keys: Vec<String> = decisions
        .iter()
        .filter(|d| d.accountable.is_none())
        .map(|d| d.key.clone())
        .collect();
    if !aged_keys.is_empty() {
        let rows: Vec<(String, String)> = items::table
            .inner_join(item_raci::table.inner_join(users::table))
            .filter(
                items::key
                    .eq_any(&aged_keys)
                    .and(item_raci::role.eq("accountable")),
            )
            .select((items::key, users::display_name))
            .load(conn)?;
        let names: BTreeMap<String, String> = rows.into_iter().collect();
        for decision in decisions.iter_mut().filter(|d| d.accountable.is_none()) {
            decision.accountable = names.get(&decision.key).cloned();
        }
    }
    Ok(GovernanceReport {
        month: this_month,
        from,
        to,
        asof: Utc::now(),
        portfolio,
        demands: section,
        rollout,
        incidents,
        flow: flows,
        decisions_needed: decisions,
        charts: charts_inline,
    })
}

/// An open incident whose resolution clock has breached: `(id, key, title, due)`.
type Breach = (i64, String, String, chrono::DateTime<Utc>);

/// Open incidents whose resolution clock has breached.
fn breached_open(conn: &mut DbConnection) -> Result<Vec<Breach>, ApiError> {
    use crate::sla::clock::{ClockInput, pauses_of, states};
    type Row = (
        i64,
        String,
        String,
        String,
        Option<i64>,
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
    );
    let rows: Vec<Row> = items::table
        .inner_join(incident_details::table)
        .filter(
            items::deleted_at
                .is_null()
                .and(incident_details::resolved_at.is_null()),
        )
        .select((
            items::id,
            items::key,
            items::title,
            incident_details::severity,
            items::service_id,
            incident_details::reported_at,
            incident_details::first_response_at,
        ))
        .load(conn)?;
    let inputs: Vec<ClockInput> = rows
        .iter()
        .map(|r| ClockInput {
            item_id: r.0,
            severity: r.3.clone(),
            service_id: r.4,
            reported_at: r.5.and_utc(),
            first_response_at: r.6.map(|t| t.and_utc()),
            resolved_at: None,
        })
        .collect();
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let pauses = pauses_of(conn, &ids)?;
    let policies = crate::sla::policies::all(conn)?;
    let clocks = states(&inputs, &policies, &pauses, Utc::now());
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let state = clocks.get(&r.0)?;
            state
                .resolution_breached
                .then_some((r.0, r.1, r.2, state.resolution_due_at))
        })
        .collect())
}

fn counts_line(counts: &Counts) -> String {
    if counts.is_empty() {
        return "–".into();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn share(row: &Option<SlaRow>) -> String {
    match row.as_ref().and_then(|r| r.success_share) {
        Some(x) => format!("{:.1} %", x * 100.0).replace('.', ","),
        None => "–".into(),
    }
}

fn opt(v: Option<i64>) -> String {
    v.map_or("–".into(), |v| v.to_string())
}

fn percent(share: Option<f64>) -> String {
    share.map_or("–".into(), |x| {
        format!("{:.1} %", x * 100.0).replace('.', ",")
    })
}

fn or_dash(text: Option<&str>) -> String {
    text.filter(|t| !t.is_empty()).unwrap_or("–").to_string()
}

/// One block of the printed report; [`markdown`] and [`html`] render the same blocks, so the
/// two never say different things.
enum Block {
    Title(String),
    Heading(String),
    Subheading(String),
    Text(String),
    /// Entries with an optional bold label.
    List(Vec<(Option<String>, String)>),
    Table(Vec<&'static str>, Vec<Vec<String>>),
    /// A chart (SVG); only the HTML page shows it.
    Figure(String, String),
}

fn progress_rows(groups: &[ProgressGroup]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            vec![
                g.name.clone(),
                format!("{} / {}", g.figures.live, g.figures.applicable),
                percent(g.figures.live_share),
                g.figures.overdue.to_string(),
                g.figures.blocked.to_string(),
            ]
        })
        .collect()
}

const PROGRESS_HEAD: [&str; 5] = ["", "Live / zutreffend", "Anteil", "Überfällig", "Blockiert"];

fn blocks(report: &GovernanceReport) -> Vec<Block> {
    let mut out = vec![
        Block::Title(format!("Governance-Bericht {}", report.month)),
        Block::Text(format!(
            "Zeitraum {} – {}, Stand {}",
            charts::date(report.from, Lang::De),
            charts::date(report.to, Lang::De),
            report.asof.format("%d.%m.%Y %H:%M UTC")
        )),
        Block::Heading("Entscheidungsbedarf".into()),
        Block::Table(
            vec!["Art", "Schlüssel", "Titel", "Detail", "Verantwortlich"],
            report
                .decisions_needed
                .iter()
                .map(|d| {
                    vec![
                        d.kind.clone(),
                        d.key.clone(),
                        d.title.clone(),
                        d.detail.clone(),
                        or_dash(d.accountable.as_deref()),
                    ]
                })
                .collect(),
        ),
    ];
    // Portfolio.
    let p = &report.portfolio;
    let c = &p.change_since_last_month;
    let changed = |list: &[ServiceChange]| {
        if list.is_empty() {
            return "–".to_string();
        }
        list.iter()
            .map(|x| format!("{} ({} → {})", x.service, x.from, x.to))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // A fresh catalogue adds hundreds of services at once: the page names the first ones and
    // counts the rest (the JSON has them all).
    let keys = |list: &[String]| {
        const SHOWN: usize = 20;
        match list.len() {
            0 => "–".to_string(),
            n if n <= SHOWN => list.join(", "),
            n => format!("{} … und {} weitere", list[..SHOWN].join(", "), n - SHOWN),
        }
    };
    out.push(Block::Heading("Portfolio".into()));
    out.push(Block::Text(format!(
        "{} Services (Ende Vormonat {})",
        p.total, c.total_last_month
    )));
    out.push(Block::List(vec![
        (Some("Lebenszyklus".into()), counts_line(&p.by_lifecycle)),
        (Some("Art".into()), counts_line(&p.by_kind)),
        (Some("Reifegrad".into()), counts_line(&p.by_maturity)),
        (Some("Neu".into()), keys(&c.added)),
        (Some("Entfernt".into()), keys(&c.removed)),
        (
            Some("Lebenszyklus geändert".into()),
            changed(&c.lifecycle_changed),
        ),
        (
            Some("Reifegrad geändert".into()),
            changed(&c.maturity_changed),
        ),
    ]));
    // Rollout.
    let r = &report.rollout;
    out.push(Block::Heading("Rollout".into()));
    out.push(Block::Text(format!(
        "{} von {} zutreffenden Einträgen live ({}), {} in diesem Monat live gegangen; {} überfällig, {} blockiert. Überall live: {}.",
        r.total.live,
        r.total.applicable,
        percent(r.total.live_share),
        r.went_live_this_month,
        r.total.overdue,
        r.total.blocked,
        keys(&r.services_live_everywhere)
    )));
    let mut head = PROGRESS_HEAD.to_vec();
    head[0] = "Service";
    out.push(Block::Subheading("Nach Service".into()));
    out.push(Block::Table(head.clone(), progress_rows(&r.by_service)));
    head[0] = "Kreis";
    out.push(Block::Subheading("Nach Kreis".into()));
    out.push(Block::Table(head, progress_rows(&r.by_district)));
    out.push(Block::Subheading("Blockiert".into()));
    out.push(Block::Table(
        vec![
            "Eintrag",
            "Verwaltung",
            "Status",
            "Was blockiert",
            "Verantwortlich",
        ],
        r.blocked
            .iter()
            .map(|e| {
                vec![
                    e.key.clone(),
                    e.administration_name.clone(),
                    e.status.as_str().to_string(),
                    hold_up(e),
                    or_dash(e.accountable.as_deref()),
                ]
            })
            .collect(),
    ));
    out.push(Block::Subheading("Überfällig".into()));
    out.push(Block::Table(
        vec![
            "Eintrag",
            "Verwaltung",
            "Status",
            "Geplant",
            "Verantwortlich",
        ],
        r.overdue
            .iter()
            .map(|e| {
                vec![
                    e.key.clone(),
                    e.administration_name.clone(),
                    e.status.as_str().to_string(),
                    e.planned_go_live
                        .map_or("–".into(), |d| charts::date(d, Lang::De)),
                    or_dash(e.accountable.as_deref()),
                ]
            })
            .collect(),
    ));
    // Demands.
    let named = |list: &[NamedItem]| {
        list.iter()
            .map(|d| {
                vec![
                    d.key.clone(),
                    d.title.clone(),
                    d.detail.clone(),
                    or_dash(d.accountable.as_deref()),
                ]
            })
            .collect::<Vec<_>>()
    };
    out.push(Block::Heading("Bedarfe".into()));
    out.push(Block::Subheading("Entschieden".into()));
    out.push(Block::Table(
        vec!["Schlüssel", "Titel", "Entscheidung", "Verantwortlich"],
        named(&report.demands.decided),
    ));
    out.push(Block::Subheading("Offen (nach Alter)".into()));
    out.push(Block::Table(
        vec!["Schlüssel", "Titel", "Alter (Tage)", "Verantwortlich"],
        named(&report.demands.pending),
    ));
    out.push(Block::Subheading("Roadmap".into()));
    out.push(Block::List(
        report
            .demands
            .roadmap
            .iter()
            .map(|(quarter, list)| {
                let text = if list.is_empty() {
                    "–".to_string()
                } else {
                    list.iter()
                        .map(|d| format!("{} {}", d.key, d.title))
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                (Some(quarter.clone()), text)
            })
            .collect(),
    ));
    // Incidents.
    out.push(Block::Heading("Störungen".into()));
    out.push(Block::List(vec![
        (
            Some("Gemeldet nach Schweregrad".into()),
            counts_line(&report.incidents.reported_by_severity),
        ),
        (
            Some("SLA-Erfolgsquote".into()),
            format!(
                "{} (Vormonat {})",
                share(&report.incidents.sla),
                share(&report.incidents.sla_last_month)
            ),
        ),
    ]));
    // Flow.
    out.push(Block::Heading("Fluss".into()));
    out.push(Block::Table(
        vec![
            "Board",
            "Durchsatz je Monat",
            "Durchlaufzeit p50/p85/p95 (Tage)",
            "Älter als SLE",
        ],
        report
            .flow
            .iter()
            .map(|f| {
                vec![
                    f.board.clone(),
                    counts_line(&f.throughput_monthly),
                    format!(
                        "{} / {} / {}",
                        opt(f.cycle_time_p50),
                        opt(f.cycle_time_p85),
                        opt(f.cycle_time_p95)
                    ),
                    keys(&f.older_than_sle),
                ]
            })
            .collect(),
    ));
    if !report.charts.is_empty() {
        out.push(Block::Heading("Diagramme".into()));
        for (name, svg) in &report.charts {
            out.push(Block::Figure(name.clone(), svg.clone()));
        }
    }
    out
}

/// The report as Markdown (tables; for Confluence or a wiki). Text from users is escaped, so
/// a title cannot break a table or start a heading. The charts are in the HTML page only.
pub fn markdown(report: &GovernanceReport) -> String {
    // Backslash-escape what Markdown would read as markup; keep it on one line.
    let text = |t: &str| {
        let mut out = String::with_capacity(t.len());
        for ch in t.chars() {
            match ch {
                '\n' | '\r' => out.push(' '),
                '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' => {
                    out.push('\\');
                    out.push(ch);
                }
                _ => out.push(ch),
            }
        }
        out
    };
    let mut out = String::new();
    for block in blocks(report) {
        match block {
            Block::Title(t) => out += &format!("# {}\n\n", text(&t)),
            Block::Heading(t) => out += &format!("## {}\n\n", text(&t)),
            Block::Subheading(t) => out += &format!("### {}\n\n", text(&t)),
            Block::Text(t) => out += &format!("{}\n\n", text(&t)),
            Block::List(entries) => {
                for (label, t) in entries {
                    match label {
                        Some(label) => out += &format!("- **{}**: {}\n", text(&label), text(&t)),
                        None => out += &format!("- {}\n", text(&t)),
                    }
                }
                out += "\n";
            }
            Block::Table(head, rows) => {
                out += &format!(
                    "| {} |\n",
                    head.iter().map(|h| text(h)).collect::<Vec<_>>().join(" | ")
                );
                out += &format!("|{}\n", "---|".repeat(head.len()));
                for row in rows {
                    out += &format!(
                        "| {} |\n",
                        row.iter().map(|c| text(c)).collect::<Vec<_>>().join(" | ")
                    );
                }
                out += "\n";
            }
            Block::Figure(..) => {}
        }
    }
    out
}

/// The report as one printable, self-contained HTML page: no script, no external resource,
/// the charts inline as SVG.
pub fn html(report: &GovernanceReport) -> String {
    let mut body = String::new();
    for block in blocks(report) {
        match block {
            Block::Title(t) => body += &format!("<h1>{}</h1>", xml(&t)),
            Block::Heading(t) => body += &format!("<h2>{}</h2>", xml(&t)),
            Block::Subheading(t) => body += &format!("<h3>{}</h3>", xml(&t)),
            Block::Text(t) => body += &format!("<p>{}</p>", xml(&t)),
            Block::List(entries) => {
                body += "<ul>";
                for (label, t) in entries {
                    match label {
                        Some(label) => {
                            body +=
                                &format!("<li><strong>{}</strong>: {}</li>", xml(&label), xml(&t))
                        }
                        None => body += &format!("<li>{}</li>", xml(&t)),
                    }
                }
                body += "</ul>";
            }
            Block::Table(head, rows) => {
                body += "<table><thead><tr>";
                for h in &head {
                    body += &format!("<th>{}</th>", xml(h));
                }
                body += "</tr></thead><tbody>";
                if rows.is_empty() {
                    body += &format!("<tr><td colspan=\"{}\">–</td></tr>", head.len());
                }
                for row in rows {
                    body += "<tr>";
                    for c in row {
                        body += &format!("<td>{}</td>", xml(&c));
                    }
                    body += "</tr>";
                }
                body += "</tbody></table>";
            }
            Block::Figure(name, svg) => {
                body += &format!(
                    "<figure><figcaption>{}</figcaption>{svg}</figure>",
                    xml(&name)
                )
            }
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"de\"><head><meta charset=\"utf-8\">\
         <title>Governance-Bericht {}</title><style>\
         body{{font-family:sans-serif;margin:2em;max-width:1000px;color:#111}}\
         table{{border-collapse:collapse;width:100%;margin:.5em 0 1em}}\
         th,td{{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}}\
         th{{background:#eee}}figure{{margin:1em 0;page-break-inside:avoid}}\
         figure svg{{max-width:100%;height:auto}}h2{{page-break-after:avoid}}\
         @media print{{body{{margin:0}}}}</style></head><body>{body}</body></html>\n",
        xml(&report.month)
    )
}
