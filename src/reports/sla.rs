//! SLA compliance per month × service × severity, by Jira Service Management's rule: a
//! resolution clock is `met` or `breached_completed` in the month it completed, and
//! `breached_open` in the month it breached; open clocks not yet breached are left out.
//! `success_share` = met / (met + breached_completed + breached_open). Plus nearest-rank
//! p50/p85 of the resolution time in business hours (pauses excluded).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::calendar::ClockKind;
use crate::common::db::DbConnection;
use crate::common::db::schema::{incident_details, items, services};
use crate::common::error::ApiError;
use crate::reports::flow::{Lang, MIN_PERCENTILE_VALUES};
use crate::sla::clock::{ClockInput, Pause, pauses_of, states};
use crate::sla::severity::Severity;

/// The query of the SLA report.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlaParams {
    /// First day (local date); default the first day of the month five months before `to`.
    pub from: Option<NaiveDate>,
    /// Last day (local date); default today.
    pub to: Option<NaiveDate>,
    /// Only incidents of this service (key).
    pub service: Option<String>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// With `Accept: text/csv`: `excel-de` (default) or `rfc4180`.
    pub dialect: Option<crate::common::csv_out::Dialect>,
    /// For the chart: `de` (default) or `en`.
    pub lang: Option<Lang>,
}

/// Compliance of one month, service and severity (or of a whole month).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct SlaRow {
    /// The month, `2027-01`.
    pub month: String,
    /// The service's key (`null` in the month totals, or for an incident without one).
    pub service: Option<String>,
    /// The severity (`null` in the month totals).
    pub severity: Option<String>,
    /// Resolved within the target.
    pub met: i64,
    /// Resolved after the target.
    pub breached_completed: i64,
    /// Not resolved, past the target (counted in the month it breached).
    pub breached_open: i64,
    /// met / (met + breached_completed + breached_open); `null` without any.
    pub success_share: Option<f64>,
    /// Resolved incidents (met + breached_completed).
    pub resolved: i64,
    /// Median resolution time in business hours (nearest rank; `null` under 5).
    pub resolution_hours_p50: Option<f64>,
    /// 85th percentile of the resolution time in business hours.
    pub resolution_hours_p85: Option<f64>,
    #[serde(skip)]
    hours: Vec<f64>,
}

/// The SLA report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SlaReport {
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// When it was computed.
    pub asof: DateTime<Utc>,
    /// Per month, service and severity.
    pub rows: Vec<SlaRow>,
    /// Per month, everything together.
    pub months: Vec<SlaRow>,
}

fn business_hours(from: DateTime<Utc>, to: DateTime<Utc>, pauses: &[Pause]) -> f64 {
    let clock = ClockKind::Business;
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
    let minutes = (clock.minutes(from, to) - paused).max(0);
    (minutes as f64 / 6.0).round() / 10.0
}

fn finish(row: &mut SlaRow) {
    let counted = row.met + row.breached_completed + row.breached_open;
    row.success_share = (counted > 0).then(|| {
        let share = row.met as f64 / counted as f64;
        (share * 10_000.0).round() / 10_000.0
    });
    row.resolved = row.met + row.breached_completed;
    row.hours.sort_by(|a, b| a.total_cmp(b));
    let at = |p: usize| {
        (row.hours.len() >= MIN_PERCENTILE_VALUES)
            .then(|| row.hours[(p * row.hours.len()).div_ceil(100).max(1) - 1])
    };
    row.resolution_hours_p50 = at(50);
    row.resolution_hours_p85 = at(85);
}

/// The SLA report of `params`.
pub fn report(conn: &mut DbConnection, params: &SlaParams) -> Result<SlaReport, ApiError> {
    let tz = crate::common::calendar::current().tz;
    let now = Utc::now();
    let today = now.with_timezone(&tz).date_naive();
    let to = params.to.unwrap_or(today);
    let from = params.from.unwrap_or_else(|| {
        let back = to - Duration::days(5 * 31);
        NaiveDate::from_ymd_opt(back.year(), back.month(), 1).unwrap_or(back)
    });
    if from > to {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    let mut query = items::table
        .inner_join(incident_details::table)
        .left_join(services::table)
        .filter(items::deleted_at.is_null())
        .select((
            items::id,
            incident_details::severity,
            items::service_id,
            services::key.nullable(),
            incident_details::reported_at,
            incident_details::first_response_at,
            incident_details::resolved_at,
        ))
        .into_boxed();
    if let Some(service) = &params.service {
        let known: i64 = services::table
            .filter(services::key.eq(service))
            .count()
            .get_result(conn)?;
        if known == 0 {
            return Err(ApiError::invalid(
                "service",
                format!("no service `{service}`"),
            ));
        }
        query = query.filter(services::key.eq(service));
    }
    if let Some(severity) = params.severity {
        query = query.filter(incident_details::severity.eq(severity.as_str()));
    }
    type Row = (
        i64,
        String,
        Option<i64>,
        Option<String>,
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
        Option<chrono::NaiveDateTime>,
    );
    let rows: Vec<Row> = query.load(conn)?;
    let inputs: Vec<ClockInput> = rows
        .iter()
        .map(|r| ClockInput {
            item_id: r.0,
            severity: r.1.clone(),
            service_id: r.2,
            reported_at: r.4.and_utc(),
            first_response_at: r.5.map(|t| t.and_utc()),
            resolved_at: r.6.map(|t| t.and_utc()),
        })
        .collect();
    let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let mut pauses = HashMap::new();
    for chunk in ids.chunks(5000) {
        pauses.extend(pauses_of(conn, chunk)?);
    }
    let policies = crate::sla::policies::all(conn)?;
    let clocks = states(&inputs, &policies, &pauses, now);
    let none = Vec::new();
    let mut groups: BTreeMap<(String, Option<String>, String), SlaRow> = BTreeMap::new();
    let mut months: BTreeMap<String, SlaRow> = BTreeMap::new();
    for (input, row) in inputs.iter().zip(&rows) {
        let Some(state) = clocks.get(&input.item_id) else {
            continue;
        };
        // The moment that places the clock in a month: its completion, or its breach.
        let (at, kind) = match input.resolved_at {
            Some(resolved) if state.resolution_breached => (resolved, 1),
            Some(resolved) => (resolved, 0),
            None if state.resolution_breached => (state.resolution_due_at, 2),
            None => continue,
        };
        let date = at.with_timezone(&tz).date_naive();
        if date < from || date > to {
            continue;
        }
        let month = format!("{:04}-{:02}", date.year(), date.month());
        let hours = input.resolved_at.map(|resolved| {
            business_hours(
                input.reported_at,
                resolved,
                pauses.get(&input.item_id).unwrap_or(&none),
            )
        });
        let key = (month.clone(), row.3.clone(), input.severity.clone());
        for target in [
            groups.entry(key).or_insert_with(|| SlaRow {
                month: month.clone(),
                service: row.3.clone(),
                severity: Some(input.severity.clone()),
                ..SlaRow::default()
            }),
            months.entry(month.clone()).or_insert_with(|| SlaRow {
                month: month.clone(),
                ..SlaRow::default()
            }),
        ] {
            match kind {
                0 => target.met += 1,
                1 => target.breached_completed += 1,
                _ => target.breached_open += 1,
            }
            target.hours.extend(hours);
        }
    }
    let mut rows: Vec<SlaRow> = groups.into_values().collect();
    rows.iter_mut().for_each(finish);
    let mut months: Vec<SlaRow> = months.into_values().collect();
    months.iter_mut().for_each(finish);
    Ok(SlaReport {
        from,
        to,
        asof: now,
        rows,
        months,
    })
}

/// The rows as CSV.
pub fn csv(
    report: &SlaReport,
    dialect: crate::common::csv_out::Dialect,
) -> Result<Vec<u8>, ApiError> {
    use crate::common::csv_out::{Cell, CsvOut};
    let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("writing CSV: {e}"));
    let mut out = CsvOut::with_dialect(Vec::new(), dialect).map_err(|e| failed(&e))?;
    out.row(
        [
            "month",
            "service",
            "severity",
            "met",
            "breached_completed",
            "breached_open",
            "success_share",
            "resolved",
            "resolution_hours_p50",
            "resolution_hours_p85",
        ]
        .map(Cell::Text),
    )
    .map_err(|e| failed(&e))?;
    let decimal = |x: Option<f64>| x.map_or(Cell::Empty, Cell::Decimal);
    for row in &report.rows {
        out.row([
            Cell::Text(&row.month),
            row.service.as_deref().map_or(Cell::Empty, Cell::Text),
            row.severity.as_deref().map_or(Cell::Empty, Cell::Text),
            Cell::Integer(row.met),
            Cell::Integer(row.breached_completed),
            Cell::Integer(row.breached_open),
            decimal(row.success_share),
            Cell::Integer(row.resolved),
            decimal(row.resolution_hours_p50),
            decimal(row.resolution_hours_p85),
        ])
        .map_err(|e| failed(&e))?;
    }
    out.finish().map_err(|e| failed(&e))
}
