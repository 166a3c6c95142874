//! The monthly governance report: portfolio, demands, incidents with SLA compliance, flow per
//! board, and the decisions needed, as JSON, as one self-contained printable HTML page (charts
//! inline) and as Markdown. The rollout section comes with the rollout feature.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::db::DbConnection;
use crate::common::db::schema::{
    boards, demand_details, incident_details, item_raci, items, services, users,
};
use crate::common::error::ApiError;
use crate::reports::charts::{self, xml};
use crate::reports::flow::{self, FlowParams, Lang};
use crate::reports::sla::{self, SlaParams, SlaRow};

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
    /// Change since the end of last month (services added).
    pub added_this_month: i64,
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
    /// Why: `pending_demand`, `breached_sla` or `older_than_p95`.
    pub kind: String,
    /// The item.
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
    /// Incidents and SLA compliance.
    pub incidents: IncidentSection,
    /// Flow per board.
    pub flow: Vec<BoardFlow>,
    /// Decisions needed, each with its key and accountable person.
    pub decisions_needed: Vec<DecisionNeeded>,
    /// Sections not part of this report yet.
    pub omitted: Vec<String>,
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

/// The governance report of `month`.
pub fn report(conn: &mut DbConnection, month: Option<&str>) -> Result<GovernanceReport, ApiError> {
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
        added_this_month: 0,
    };
    for (lifecycle, kind, maturity, created) in &catalogue {
        *portfolio.by_lifecycle.entry(lifecycle.clone()).or_default() += 1;
        *portfolio.by_kind.entry(kind.clone()).or_default() += 1;
        *portfolio
            .by_maturity
            .entry(maturity.to_string())
            .or_default() += 1;
        if *created >= start {
            portfolio.added_this_month += 1;
        }
    }
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
        incidents,
        flow: flows,
        decisions_needed: decisions,
        omitted: vec![
            "rollout: comes with the rollout feature (per service and district, blocked and overdue entries)"
                .into(),
        ],
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

/// The report as Markdown (tables; for Confluence or a wiki). Text from users is escaped for
/// table cells.
pub fn markdown(report: &GovernanceReport) -> String {
    let cell = |t: &str| t.replace('|', "\\|").replace('\n', " ");
    let mut out = format!(
        "# Governance-Bericht {}\n\nZeitraum {} – {}, Stand {}\n\n",
        report.month,
        charts::date(report.from, Lang::De),
        charts::date(report.to, Lang::De),
        report.asof.format("%d.%m.%Y %H:%M UTC")
    );
    out += "## Entscheidungsbedarf\n\n| Art | Schlüssel | Titel | Detail | Verantwortlich |\n|---|---|---|---|---|\n";
    for d in &report.decisions_needed {
        out += &format!(
            "| {} | {} | {} | {} | {} |\n",
            d.kind,
            cell(&d.key),
            cell(&d.title),
            cell(&d.detail),
            cell(d.accountable.as_deref().unwrap_or("–"))
        );
    }
    out += &format!(
        "\n## Portfolio\n\n{} Services ({} neu in diesem Monat)\n\n- Lebenszyklus: {}\n- Art: {}\n- Reifegrad: {}\n",
        report.portfolio.total,
        report.portfolio.added_this_month,
        counts_line(&report.portfolio.by_lifecycle),
        counts_line(&report.portfolio.by_kind),
        counts_line(&report.portfolio.by_maturity)
    );
    out += "\n## Bedarfe\n\n### Entschieden\n\n| Schlüssel | Titel | Entscheidung | Verantwortlich |\n|---|---|---|---|\n";
    for d in &report.demands.decided {
        out += &format!(
            "| {} | {} | {} | {} |\n",
            cell(&d.key),
            cell(&d.title),
            d.detail,
            cell(d.accountable.as_deref().unwrap_or("–"))
        );
    }
    out += "\n### Offen (nach Alter)\n\n| Schlüssel | Titel | Alter (Tage) | Verantwortlich |\n|---|---|---|---|\n";
    for d in &report.demands.pending {
        out += &format!(
            "| {} | {} | {} | {} |\n",
            cell(&d.key),
            cell(&d.title),
            d.detail,
            cell(d.accountable.as_deref().unwrap_or("–"))
        );
    }
    out += "\n### Roadmap\n\n";
    for (quarter, list) in &report.demands.roadmap {
        out += &format!(
            "- **{quarter}**: {}\n",
            if list.is_empty() {
                "–".to_string()
            } else {
                list.iter()
                    .map(|d| format!("{} {}", cell(&d.key), cell(&d.title)))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        );
    }
    out += &format!(
        "\n## Störungen\n\n- Gemeldet nach Schweregrad: {}\n- SLA-Erfolgsquote: {} (Vormonat {})\n",
        counts_line(&report.incidents.reported_by_severity),
        share(&report.incidents.sla),
        share(&report.incidents.sla_last_month)
    );
    out += "\n## Fluss\n\n| Board | Durchsatz je Monat | Durchlaufzeit p50/p85/p95 (Tage) | Älter als SLE |\n|---|---|---|---|\n";
    for f in &report.flow {
        out += &format!(
            "| {} | {} | {} / {} / {} | {} |\n",
            f.board,
            counts_line(&f.throughput_monthly),
            opt(f.cycle_time_p50),
            opt(f.cycle_time_p85),
            opt(f.cycle_time_p95),
            if f.older_than_sle.is_empty() {
                "–".to_string()
            } else {
                f.older_than_sle.join(", ")
            }
        );
    }
    out += "\n## Nicht enthalten\n\n";
    for o in &report.omitted {
        out += &format!("- {o}\n");
    }
    out
}

/// The report as one printable, self-contained HTML page: no script, no external resource,
/// the charts inline as SVG.
pub fn html(report: &GovernanceReport) -> String {
    let mut body = String::new();
    let table = |head: &[&str], rows: Vec<Vec<String>>| {
        let mut t = String::from("<table><thead><tr>");
        for h in head {
            t += &format!("<th>{}</th>", xml(h));
        }
        t += "</tr></thead><tbody>";
        if rows.is_empty() {
            t += &format!("<tr><td colspan=\"{}\">–</td></tr>", head.len());
        }
        for row in rows {
            t += "<tr>";
            for c in row {
                t += &format!("<td>{}</td>", xml(&c));
            }
            t += "</tr>";
        }
        t + "</tbody></table>"
    };
    body += &format!(
        "<h1>Governance-Bericht {}</h1><p>Zeitraum {} – {}, Stand {}</p>",
        xml(&report.month),
        charts::date(report.from, Lang::De),
        charts::date(report.to, Lang::De),
        report.asof.format("%d.%m.%Y %H:%M UTC")
    );
    body += "<h2>Entscheidungsbedarf</h2>";
    body += &table(
        &["Art", "Schlüssel", "Titel", "Detail", "Verantwortlich"],
        report
            .decisions_needed
            .iter()
            .map(|d| {
                vec![
                    d.kind.clone(),
                    d.key.clone(),
                    d.title.clone(),
                    d.detail.clone(),
                    d.accountable.clone().unwrap_or_else(|| "–".into()),
                ]
            })
            .collect(),
    );
    body += &format!(
        "<h2>Portfolio</h2><p>{} Services ({} neu in diesem Monat)</p><ul><li>Lebenszyklus: {}</li><li>Art: {}</li><li>Reifegrad: {}</li></ul>",
        report.portfolio.total,
        report.portfolio.added_this_month,
        xml(&counts_line(&report.portfolio.by_lifecycle)),
        xml(&counts_line(&report.portfolio.by_kind)),
        xml(&counts_line(&report.portfolio.by_maturity))
    );
    let named = |list: &[NamedItem]| {
        list.iter()
            .map(|d| {
                vec![
                    d.key.clone(),
                    d.title.clone(),
                    d.detail.clone(),
                    d.accountable.clone().unwrap_or_else(|| "–".into()),
                ]
            })
            .collect::<Vec<_>>()
    };
    body += "<h2>Bedarfe</h2><h3>Entschieden</h3>";
    body += &table(
        &["Schlüssel", "Titel", "Entscheidung", "Verantwortlich"],
        named(&report.demands.decided),
    );
    body += "<h3>Offen (nach Alter)</h3>";
    body += &table(
        &["Schlüssel", "Titel", "Alter (Tage)", "Verantwortlich"],
        named(&report.demands.pending),
    );
    body += "<h3>Roadmap</h3><ul>";
    for (quarter, list) in &report.demands.roadmap {
        body += &format!(
            "<li><strong>{}</strong>: {}</li>",
            xml(quarter),
            if list.is_empty() {
                "–".to_string()
            } else {
                xml(&list
                    .iter()
                    .map(|d| format!("{} {}", d.key, d.title))
                    .collect::<Vec<_>>()
                    .join("; "))
            }
        );
    }
    body += "</ul>";
    body += &format!(
        "<h2>Störungen</h2><ul><li>Gemeldet nach Schweregrad: {}</li><li>SLA-Erfolgsquote: {} (Vormonat {})</li></ul>",
        xml(&counts_line(&report.incidents.reported_by_severity)),
        share(&report.incidents.sla),
        share(&report.incidents.sla_last_month)
    );
    body += "<h2>Fluss</h2>";
    body += &table(
        &[
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
                    f.older_than_sle.join(", "),
                ]
            })
            .collect(),
    );
    body += "<h2>Diagramme</h2>";
    for (name, svg) in &report.charts {
        body += &format!(
            "<figure><figcaption>{}</figcaption>{svg}</figure>",
            xml(name)
        );
    }
    body += "<h2>Nicht enthalten</h2><ul>";
    for o in &report.omitted {
        body += &format!("<li>{}</li>", xml(o));
    }
    body += "</ul>";
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
