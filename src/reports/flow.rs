//! The flow report: cycle and lead time with nearest-rank percentiles, weekly throughput,
//! daily WIP, cumulative flow, aging and the service level expectation, computed from the
//! derived data of [`crate::reports::derive`] by the definitions in the README ("Reports").
//!
//! Days are local dates of the business calendar's time zone (Europe/Berlin); WIP and the
//! cumulative flow are one sweep over the boundaries of the column intervals (a +1 on the day
//! an item entered a column, a −1 on the day it left), not a join of intervals with days.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::board::model::ColumnCategory;
use crate::common::db::schema::{
    board_columns, boards, item_flow, item_intervals, item_labels, items, services,
};
use crate::common::db::{DbConnection, lower};
use crate::common::error::ApiError;
use crate::items::types::ItemType;
use crate::reports::derive::{Stay, flow_of};

/// The longest range a report covers, in days (three years).
pub const MAX_RANGE_DAYS: i64 = 3 * 366;

/// Fewer values than this give no percentiles.
pub const MIN_PERCENTILE_VALUES: usize = 5;

/// The query of the flow report (and its CSV tables).
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowParams {
    /// The board's key, such as OPS (required).
    pub board: Option<String>,
    /// First day of the range (local date); default 89 days before `to`.
    pub from: Option<NaiveDate>,
    /// Last day of the range (local date); default today.
    pub to: Option<NaiveDate>,
    /// The moment aging is measured at (RFC 3339); default now.
    pub asof: Option<DateTime<Utc>>,
    /// Only items of this service (key).
    pub service: Option<String>,
    /// Only items of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub item_type: Option<ItemType>,
    /// Only items with this label.
    pub label: Option<String>,
    /// With `Accept: text/csv`: the table to download.
    pub section: Option<FlowSection>,
    /// With `Accept: text/csv`: `excel-de` (default) or `rfc4180`.
    pub dialect: Option<crate::common::csv_out::Dialect>,
    /// For the charts: `de` (default) or `en`.
    pub lang: Option<Lang>,
}

/// The language of a chart's texts and number formats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// German: `1.234,5`, `04.01.2027`.
    #[default]
    De,
    /// English: `1,234.5`, `2027-01-04`.
    En,
}

/// A table of the flow report as CSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlowSection {
    /// The finished items with cycle and lead time.
    CycleTime,
    /// The same items, as lead time.
    LeadTime,
    /// Finishes per ISO week.
    Throughput,
    /// Items in progress per day.
    Wip,
    /// The cumulative flow per day and column.
    Cfd,
    /// Open started items and their age.
    Aging,
}

/// Who and what a report covers, resolved.
#[derive(Debug, Clone)]
pub struct Scope {
    /// The board.
    pub board_id: i64,
    /// Its key.
    pub board_key: String,
    /// Its name.
    pub board_name: String,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// The moment of aging.
    pub asof: DateTime<Utc>,
    /// The time zone of days.
    pub tz: Tz,
    /// The filters.
    pub service: Option<String>,
    /// The type filter.
    pub item_type: Option<ItemType>,
    /// The label filter.
    pub label: Option<String>,
}

/// A finished item of the cycle- or lead-time population.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FinishedItem {
    /// Its key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// Its type.
    #[serde(rename = "type")]
    pub item_type: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its start.
    pub started_at: DateTime<Utc>,
    /// Its finish.
    pub finished_at: DateTime<Utc>,
    /// Whole days: date(finish) − date(start) + 1 for cycle time, date(finish) −
    /// date(created) + 1 for lead time.
    pub days: i64,
    /// Hours spent in `in_progress` columns.
    pub time_in_progress_hours: f64,
    /// How often it was reopened.
    pub reopen_count: i32,
    /// Went from `todo` straight to `done`.
    pub skipped_wip: bool,
}

/// Cycle or lead time of the items finished in the range.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TimeStats {
    /// How many items.
    pub n: usize,
    /// Median, nearest rank, whole days (`null` under 5 values).
    pub p50: Option<i64>,
    /// 85th percentile.
    pub p85: Option<i64>,
    /// 95th percentile.
    pub p95: Option<i64>,
    /// Why the percentiles are `null`, when they are.
    pub note: Option<String>,
    /// The items, earliest finish first.
    pub items: Vec<FinishedItem>,
}

/// Finishes in one ISO week.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WeekCount {
    /// The ISO week, `2027-W01`.
    pub week: String,
    /// Its Monday.
    pub start: NaiveDate,
    /// Its Sunday.
    pub end: NaiveDate,
    /// Items finished (and still finished) in it.
    pub count: i64,
    /// The range cuts the week.
    pub partial: bool,
}

/// A count on a day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DayCount {
    /// The local date.
    pub date: NaiveDate,
    /// The count at the end of the day.
    pub count: i64,
}

/// A column of the cumulative flow.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CfdColumn {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its category.
    pub category: String,
}

/// The cumulative flow on one day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CfdDay {
    /// The local date.
    pub date: NaiveDate,
    /// For each column in board order: items whose column at the end of the day is this one
    /// or a later one.
    pub counts: Vec<i64>,
}

/// The cumulative flow diagram's data.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Cfd {
    /// The board's columns in board order.
    pub columns: Vec<CfdColumn>,
    /// One entry per day of the range.
    pub days: Vec<CfdDay>,
}

/// An open started item at `asof`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgingItem {
    /// Its key.
    pub key: String,
    /// Its title.
    pub title: String,
    /// The column it is in.
    pub column: String,
    /// Its start.
    pub started_at: DateTime<Utc>,
    /// date(asof) − date(start) + 1.
    pub age_days: i64,
    /// Where the age stands against the finished items' cycle times: `under_p50`,
    /// `p50_to_p85`, `p85_to_p95`, `over_p95`; `null` without percentiles.
    pub band: Option<String>,
}

/// The service level expectation.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sle {
    /// The p85 cycle time in days (`null` under 5 finished items).
    pub days: Option<i64>,
    /// Open started items.
    pub open: usize,
    /// Open items whose age already exceeds it.
    pub exceeding: usize,
    /// Their keys, oldest first.
    pub exceeding_items: Vec<String>,
}

/// The flow report.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowReport {
    /// The board's key.
    pub board: String,
    /// The board's name.
    pub board_name: String,
    /// First day.
    pub from: NaiveDate,
    /// Last day.
    pub to: NaiveDate,
    /// The moment of aging.
    pub asof: DateTime<Utc>,
    /// The time zone of days.
    pub timezone: String,
    /// Cycle time of the items finished in the range.
    pub cycle_time: TimeStats,
    /// Lead time of the same items.
    pub lead_time: TimeStats,
    /// Finishes per ISO week.
    pub throughput_weekly: Vec<WeekCount>,
    /// Items in `in_progress` columns at the end of each day.
    pub wip_daily: Vec<DayCount>,
    /// The cumulative flow.
    pub cfd: Cfd,
    /// Open started items, oldest first.
    pub aging: Vec<AgingItem>,
    /// The service level expectation.
    pub sle: Sle,
}

/// The local date of a stored UTC time.
pub fn local_date(tz: &Tz, at: NaiveDateTime) -> NaiveDate {
    tz.from_utc_datetime(&at).date_naive()
}

/// The UTC time at which local day `date` begins.
pub fn day_start(tz: &Tz, date: NaiveDate) -> NaiveDateTime {
    let midnight = date.and_time(chrono::NaiveTime::MIN);
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.naive_utc())
        .unwrap_or(midnight)
}

/// The value at rank ⌈p·n/100⌉ of `sorted` (nearest rank, never interpolated); `None` under
/// [`MIN_PERCENTILE_VALUES`] values.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.len() < MIN_PERCENTILE_VALUES {
        return None;
    }
    let n = sorted.len();
    let rank = (p as usize * n).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// Resolves the query: the board, the range and the filters (422 naming what is wrong).
pub fn scope(conn: &mut DbConnection, params: &FlowParams) -> Result<Scope, ApiError> {
    let calendar = crate::common::calendar::current();
    let tz = calendar.tz;
    let Some(board) = params
        .board
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
    else {
        return Err(ApiError::invalid("board", "give the board's key"));
    };
    let found: Option<(i64, String, String)> = boards::table
        .filter(lower(boards::key).eq(board.to_lowercase()))
        .select((boards::id, boards::key, boards::name))
        .first(conn)
        .optional()?;
    let Some((board_id, board_key, board_name)) = found else {
        return Err(ApiError::invalid("board", format!("no board `{board}`")));
    };
    let today = Utc::now().with_timezone(&tz).date_naive();
    let to = params.to.unwrap_or(today);
    let from = params.from.unwrap_or(to - Duration::days(89));
    if from > to {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(ApiError::invalid(
            "to",
            format!("the range may cover at most {MAX_RANGE_DAYS} days"),
        ));
    }
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
    }
    Ok(Scope {
        board_id,
        board_key,
        board_name,
        from,
        to,
        asof: params.asof.unwrap_or_else(Utc::now),
        tz,
        service: params.service.clone(),
        item_type: params.item_type,
        label: params.label.as_ref().map(|l| l.trim().to_lowercase()),
    })
}

/// The live items of the scope's board that pass its filters.
pub fn population(conn: &mut DbConnection, scope: &Scope) -> Result<HashSet<i64>, ApiError> {
    let mut query = items::table
        .filter(
            items::board_id
                .eq(scope.board_id)
                .and(items::deleted_at.is_null()),
        )
        .select(items::id)
        .into_boxed();
    if let Some(service) = &scope.service {
        query = query.filter(
            items::service_id.eq_any(
                services::table
                    .filter(services::key.eq(service))
                    .select(services::id.nullable()),
            ),
        );
    }
    if let Some(item_type) = scope.item_type {
        query = query.filter(items::item_type.eq(item_type.as_str()));
    }
    if let Some(label) = &scope.label {
        query = query.filter(
            items::id.eq_any(
                item_labels::table
                    .filter(item_labels::label.eq(label))
                    .select(item_labels::item_id),
            ),
        );
    }
    Ok(query.load::<i64>(conn)?.into_iter().collect())
}

/// Key, title and type of items (chunked).
fn details(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, (String, String, String)>, ApiError> {
    let mut out = HashMap::new();
    for chunk in ids.chunks(5000) {
        let rows: Vec<(i64, String, String, String)> = items::table
            .filter(items::id.eq_any(chunk))
            .select((items::id, items::key, items::title, items::item_type))
            .load(conn)?;
        out.extend(rows.into_iter().map(|(id, k, t, ty)| (id, (k, t, ty))));
    }
    Ok(out)
}

fn utc(at: NaiveDateTime) -> DateTime<Utc> {
    at.and_utc()
}

type FlowRow = (
    i64,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    i32,
    bool,
    i64,
);

/// The items finished in the range, with their flow.
fn finished(
    conn: &mut DbConnection,
    scope: &Scope,
    members: &HashSet<i64>,
) -> Result<Vec<FlowRow>, ApiError> {
    let rows: Vec<FlowRow> = item_flow::table
        .filter(
            item_flow::board_id
                .eq(scope.board_id)
                .and(item_flow::deleted_at.is_null())
                .and(item_flow::finished_at.ge(day_start(&scope.tz, scope.from)))
                .and(item_flow::finished_at.lt(day_start(&scope.tz, scope.to + Duration::days(1)))),
        )
        .order((item_flow::finished_at, item_flow::item_id))
        .select((
            item_flow::item_id,
            item_flow::created_at,
            item_flow::started_at,
            item_flow::finished_at,
            item_flow::reopen_count,
            item_flow::skipped_wip,
            item_flow::progress_seconds,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter(|r| members.contains(&r.0))
        .collect())
}

fn stats(mut items: Vec<FinishedItem>, what: &str) -> TimeStats {
    items.sort_by(|a, b| a.finished_at.cmp(&b.finished_at).then(a.key.cmp(&b.key)));
    let mut days: Vec<i64> = items.iter().map(|i| i.days).collect();
    days.sort_unstable();
    let n = days.len();
    TimeStats {
        n,
        p50: percentile(&days, 50),
        p85: percentile(&days, 85),
        p95: percentile(&days, 95),
        note: (n < MIN_PERCENTILE_VALUES).then(|| {
            format!(
                "{n} finished item(s) in the range: percentiles of {what} need at least \
                 {MIN_PERCENTILE_VALUES} values"
            )
        }),
        items,
    }
}

/// Finishes per ISO week of the range, weeks without finishes included.
pub fn weekly(scope: &Scope, finishes: &[NaiveDate]) -> Vec<WeekCount> {
    let monday = |d: NaiveDate| d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
    let mut weeks = Vec::new();
    let mut start = monday(scope.from);
    while start <= scope.to {
        let end = start + Duration::days(6);
        let iso = start.iso_week();
        weeks.push(WeekCount {
            week: format!("{}-W{:02}", iso.year(), iso.week()),
            start,
            end,
            count: finishes
                .iter()
                .filter(|d| **d >= start && **d <= end)
                .count() as i64,
            partial: start < scope.from || end > scope.to,
        });
        start += Duration::days(7);
    }
    weeks
}

/// The board's columns in board order: `(id, name, category)`.
pub fn columns_of(
    conn: &mut DbConnection,
    board_id: i64,
) -> Result<Vec<(i64, String, String)>, ApiError> {
    Ok(board_columns::table
        .filter(board_columns::board_id.eq(board_id))
        .order((board_columns::position, board_columns::id))
        .select((
            board_columns::id,
            board_columns::name,
            board_columns::category,
        ))
        .load(conn)?)
}

type IntervalRow = (i64, i64, String, NaiveDateTime, Option<NaiveDateTime>);

/// Daily WIP and cumulative flow: one sweep over the interval boundaries.
fn sweep(
    conn: &mut DbConnection,
    scope: &Scope,
    members: &HashSet<i64>,
    columns: &[(i64, String, String)],
) -> Result<(Vec<DayCount>, Cfd), ApiError> {
    let days = usize::try_from((scope.to - scope.from).num_days() + 1).unwrap_or(0);
    let begin = day_start(&scope.tz, scope.from);
    let end = day_start(&scope.tz, scope.to + Duration::days(1));
    // Two queries, each on the index over (board, left_at): the intervals still open, and
    // those left since the range began (not every interval entered before its end).
    let select = (
        item_intervals::item_id,
        item_intervals::column_id,
        item_intervals::category,
        item_intervals::entered_at,
        item_intervals::left_at,
    );
    let mut rows: Vec<IntervalRow> = item_intervals::table
        .filter(
            item_intervals::board_id
                .eq(scope.board_id)
                .and(item_intervals::left_at.is_null())
                .and(item_intervals::entered_at.lt(end)),
        )
        .select(select)
        .load(conn)?;
    rows.extend(
        item_intervals::table
            .filter(
                item_intervals::board_id
                    .eq(scope.board_id)
                    .and(item_intervals::left_at.ge(begin))
                    .and(item_intervals::entered_at.lt(end)),
            )
            .select(select)
            .load::<IntervalRow>(conn)?,
    );
    let index: HashMap<i64, usize> = columns.iter().enumerate().map(|(i, c)| (c.0, i)).collect();
    let mut per_column = vec![vec![0_i64; days + 1]; columns.len()];
    let mut wip = vec![0_i64; days + 1];
    let day_index = |date: NaiveDate| (date - scope.from).num_days().clamp(0, days as i64) as usize;
    for (item, column, category, entered, left) in rows {
        if !members.contains(&item) {
            continue;
        }
        // At the end of day d the item is in this column when it entered on or before d and
        // left after d: the days [date(entered), date(left)).
        let first = day_index(local_date(&scope.tz, entered));
        let last = left.map_or(days, |l| day_index(local_date(&scope.tz, l)));
        if first >= last {
            continue;
        }
        if let Some(i) = index.get(&column) {
            per_column[*i][first] += 1;
            per_column[*i][last] -= 1;
        }
        if category == ColumnCategory::InProgress.as_str() {
            wip[first] += 1;
            wip[last] -= 1;
        }
    }
    let mut wip_daily = Vec::with_capacity(days);
    let mut running = 0;
    for (d, delta) in wip.iter().take(days).enumerate() {
        running += delta;
        wip_daily.push(DayCount {
            date: scope.from + Duration::days(d as i64),
            count: running,
        });
    }
    let mut running = vec![0_i64; columns.len()];
    let mut cfd_days = Vec::with_capacity(days);
    for d in 0..days {
        for (c, series) in per_column.iter().enumerate() {
            running[c] += series[d];
        }
        let mut counts = vec![0_i64; columns.len()];
        let mut total = 0;
        for c in (0..columns.len()).rev() {
            total += running[c];
            counts[c] = total;
        }
        cfd_days.push(CfdDay {
            date: scope.from + Duration::days(d as i64),
            counts,
        });
    }
    let cfd = Cfd {
        columns: columns
            .iter()
            .map(|(id, name, category)| CfdColumn {
                id: *id,
                name: name.clone(),
                category: category.clone(),
            })
            .collect(),
        days: cfd_days,
    };
    Ok((wip_daily, cfd))
}

/// The open started items at `asof`: in an `in_progress` column then, with their start from
/// their stays up to `asof`. `(item, column, start)`.
///
/// An item still in the column it was in at `asof` has made no move since, so its start is the
/// derived one (`item_flow`); only items that moved after `asof` (a report of the past) have
/// their stays replayed up to it.
fn open_started(
    conn: &mut DbConnection,
    scope: &Scope,
    members: &HashSet<i64>,
) -> Result<Vec<(i64, i64, NaiveDateTime)>, ApiError> {
    let asof = scope.asof.naive_utc();
    let in_progress = ColumnCategory::InProgress.as_str();
    // On the index over (board, left_at): still there, with the derived start.
    let still_there: Vec<(i64, i64, Option<NaiveDateTime>)> = item_intervals::table
        .inner_join(item_flow::table.on(item_flow::item_id.eq(item_intervals::item_id)))
        .filter(
            item_intervals::board_id
                .eq(scope.board_id)
                .and(item_intervals::left_at.is_null())
                .and(item_intervals::category.eq(in_progress))
                .and(item_intervals::entered_at.le(asof)),
        )
        .select((
            item_intervals::item_id,
            item_intervals::column_id,
            item_flow::started_at,
        ))
        .load(conn)?;
    let mut open: Vec<(i64, i64, NaiveDateTime)> = still_there
        .into_iter()
        .filter(|(item, _, _)| members.contains(item))
        .filter_map(|(item, column, start)| Some((item, column, start?)))
        .collect();
    // Left since `asof`: replayed.
    let moved_since: Vec<(i64, i64)> = item_intervals::table
        .filter(
            item_intervals::board_id
                .eq(scope.board_id)
                .and(item_intervals::left_at.gt(asof))
                .and(item_intervals::category.eq(in_progress))
                .and(item_intervals::entered_at.le(asof)),
        )
        .select((item_intervals::item_id, item_intervals::column_id))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .filter(|(item, _)| members.contains(item))
        .collect();
    let ids: Vec<i64> = moved_since.iter().map(|c| c.0).collect();
    let mut stays: HashMap<i64, Vec<Stay>> = HashMap::new();
    for chunk in ids.chunks(5000) {
        let rows: Vec<IntervalRow> = item_intervals::table
            .filter(
                item_intervals::item_id
                    .eq_any(chunk)
                    .and(item_intervals::entered_at.le(asof)),
            )
            .order((
                item_intervals::item_id,
                item_intervals::entered_at,
                item_intervals::id,
            ))
            .select((
                item_intervals::item_id,
                item_intervals::column_id,
                item_intervals::category,
                item_intervals::entered_at,
                item_intervals::left_at,
            ))
            .load(conn)?;
        for (item, column, category, entered, left) in rows {
            stays.entry(item).or_default().push(Stay {
                column_id: column,
                category: ColumnCategory::parse(&category).unwrap_or(ColumnCategory::Todo),
                entered_at: entered,
                left_at: left.filter(|l| *l <= asof),
            });
        }
    }
    open.extend(moved_since.into_iter().filter_map(|(item, column)| {
        let start = flow_of(stays.get(&item)?).started_at?;
        Some((item, column, start))
    }));
    Ok(open)
}

/// The flow report of `params`.
pub fn report(conn: &mut DbConnection, params: &FlowParams) -> Result<FlowReport, ApiError> {
    let scope = scope(conn, params)?;
    report_of(conn, &scope)
}

/// The flow report of a resolved scope.
pub fn report_of(conn: &mut DbConnection, scope: &Scope) -> Result<FlowReport, ApiError> {
    let tz = scope.tz;
    let members = population(conn, scope)?;
    let done = finished(conn, scope, &members)?;
    let open = open_started(conn, scope, &members)?;
    let mut ids: Vec<i64> = done.iter().map(|r| r.0).collect();
    ids.extend(open.iter().map(|o| o.0));
    let details = details(conn, &ids)?;
    let unknown = || (String::new(), String::new(), String::new());
    let mut cycle = Vec::new();
    let mut lead = Vec::new();
    let mut finishes = Vec::new();
    for (item, created, started, finished_at, reopen_count, skipped_wip, seconds) in &done {
        let (Some(start), Some(finish)) = (started, finished_at) else {
            continue;
        };
        let (key, title, item_type) = details.get(item).cloned().unwrap_or_else(unknown);
        let finish_date = local_date(&tz, *finish);
        finishes.push(finish_date);
        let base = FinishedItem {
            key,
            title,
            item_type,
            created_at: utc(*created),
            started_at: utc(*start),
            finished_at: utc(*finish),
            days: (finish_date - local_date(&tz, *start)).num_days() + 1,
            time_in_progress_hours: (*seconds as f64 / 360.0).round() / 10.0,
            reopen_count: *reopen_count,
            skipped_wip: *skipped_wip,
        };
        lead.push(FinishedItem {
            days: (finish_date - local_date(&tz, *created)).num_days() + 1,
            ..base.clone()
        });
        cycle.push(base);
    }
    let cycle_time = stats(cycle, "cycle time");
    let lead_time = stats(lead, "lead time");
    let columns = columns_of(conn, scope.board_id)?;
    let (wip_daily, cfd) = sweep(conn, scope, &members, &columns)?;
    let names: HashMap<i64, String> = columns.iter().map(|c| (c.0, c.1.clone())).collect();
    let asof_date = tz.from_utc_datetime(&scope.asof.naive_utc()).date_naive();
    let band = |age: i64| -> Option<String> {
        let (p50, p85, p95) = (cycle_time.p50?, cycle_time.p85?, cycle_time.p95?);
        Some(
            if age <= p50 {
                "under_p50"
            } else if age <= p85 {
                "p50_to_p85"
            } else if age <= p95 {
                "p85_to_p95"
            } else {
                "over_p95"
            }
            .to_string(),
        )
    };
    let mut aging: Vec<AgingItem> = open
        .iter()
        .map(|(item, column, start)| {
            let (key, title, _) = details.get(item).cloned().unwrap_or_else(unknown);
            let age_days = (asof_date - local_date(&tz, *start)).num_days() + 1;
            AgingItem {
                key,
                title,
                column: names.get(column).cloned().unwrap_or_default(),
                started_at: utc(*start),
                age_days,
                band: band(age_days),
            }
        })
        .collect();
    aging.sort_by(|a, b| b.age_days.cmp(&a.age_days).then(a.key.cmp(&b.key)));
    let sle_days = cycle_time.p85;
    let exceeding_items: Vec<String> = match sle_days {
        Some(limit) => aging
            .iter()
            .filter(|a| a.age_days > limit)
            .map(|a| a.key.clone())
            .collect(),
        None => Vec::new(),
    };
    Ok(FlowReport {
        board: scope.board_key.clone(),
        board_name: scope.board_name.clone(),
        from: scope.from,
        to: scope.to,
        asof: scope.asof,
        timezone: tz.name().to_string(),
        throughput_weekly: weekly(scope, &finishes),
        cycle_time,
        lead_time,
        wip_daily,
        cfd,
        sle: Sle {
            days: sle_days,
            open: aging.len(),
            exceeding: exceeding_items.len(),
            exceeding_items,
        },
        aging,
    })
}

/// One table of the report as CSV rows (header first).
pub fn csv_table(
    report: &FlowReport,
    section: FlowSection,
    dialect: crate::common::csv_out::Dialect,
) -> Result<Vec<u8>, ApiError> {
    use crate::common::csv_out::{Cell, CsvOut};
    let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("writing CSV: {e}"));
    let mut out = CsvOut::with_dialect(Vec::new(), dialect).map_err(|e| failed(&e))?;
    let mut row = |cells: Vec<Cell<'_>>| out.row(cells).map_err(|e| failed(&e));
    match section {
        FlowSection::CycleTime | FlowSection::LeadTime => {
            let stats = if section == FlowSection::CycleTime {
                &report.cycle_time
            } else {
                &report.lead_time
            };
            row(vec![
                "key".into(),
                "title".into(),
                "type".into(),
                "created_at".into(),
                "started_at".into(),
                "finished_at".into(),
                "days".into(),
                "time_in_progress_hours".into(),
                "reopen_count".into(),
                "skipped_wip".into(),
            ])?;
            for item in &stats.items {
                row(vec![
                    Cell::Text(&item.key),
                    Cell::Text(&item.title),
                    Cell::Text(&item.item_type),
                    Cell::Time(item.created_at),
                    Cell::Time(item.started_at),
                    Cell::Time(item.finished_at),
                    Cell::Integer(item.days),
                    Cell::Decimal(item.time_in_progress_hours),
                    Cell::Integer(i64::from(item.reopen_count)),
                    Cell::Text(if item.skipped_wip { "true" } else { "false" }),
                ])?;
            }
        }
        FlowSection::Throughput => {
            row(vec![
                "week".into(),
                "start".into(),
                "end".into(),
                "count".into(),
                "partial".into(),
            ])?;
            for week in &report.throughput_weekly {
                row(vec![
                    Cell::Text(&week.week),
                    Cell::Date(week.start),
                    Cell::Date(week.end),
                    Cell::Integer(week.count),
                    Cell::Text(if week.partial { "true" } else { "false" }),
                ])?;
            }
        }
        FlowSection::Wip => {
            row(vec!["date".into(), "wip".into()])?;
            for day in &report.wip_daily {
                row(vec![Cell::Date(day.date), Cell::Integer(day.count)])?;
            }
        }
        FlowSection::Cfd => {
            let mut header = vec![Cell::Text("date")];
            header.extend(report.cfd.columns.iter().map(|c| Cell::Text(&c.name)));
            row(header)?;
            for day in &report.cfd.days {
                let mut cells = vec![Cell::Date(day.date)];
                cells.extend(day.counts.iter().map(|c| Cell::Integer(*c)));
                row(cells)?;
            }
        }
        FlowSection::Aging => {
            row(vec![
                "key".into(),
                "title".into(),
                "column".into(),
                "started_at".into(),
                "age_days".into(),
                "band".into(),
            ])?;
            for item in &report.aging {
                row(vec![
                    Cell::Text(&item.key),
                    Cell::Text(&item.title),
                    Cell::Text(&item.column),
                    Cell::Time(item.started_at),
                    Cell::Integer(item.age_days),
                    Cell::Text(item.band.as_deref().unwrap_or("")),
                ])?;
            }
        }
    }
    out.finish().map_err(|e| failed(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_is_never_interpolated() {
        let days = [1, 2, 3, 4, 10];
        // ⌈0.5·5⌉ = 3 → 3; ⌈0.85·5⌉ = 5 → 10; interpolation would give 3 and 7.6.
        assert_eq!(percentile(&days, 50), Some(3));
        assert_eq!(percentile(&days, 85), Some(10));
        assert_eq!(percentile(&days[..4], 50), None);
    }
}
