//! Monte Carlo forecasts from daily throughput, as ActionableAgile does them: each trial draws,
//! for every simulated day, one historical day's throughput (with replacement). "When" asks
//! on which day a number of items is done; "how many" asks how many items are done by a date.
//! The draws come from ChaCha8 seeded with `seed`, so the same seed gives the same answer.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use diesel::prelude::*;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::db::DbConnection;
use crate::common::db::schema::item_flow;
use crate::common::error::ApiError;
use crate::items::types::ItemType;
use crate::reports::flow::{FlowParams, day_start, local_date, population, scope};

/// The question a forecast answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// When will `items` items be done?
    When,
    /// How many items will be done by `until`?
    HowMany,
}

/// Which days pass in the simulation and count in the history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Days {
    /// Every calendar day.
    #[default]
    All,
    /// Business days of the business calendar only (weekends and public holidays skipped).
    Workdays,
}

/// The body of `POST /api/v1/forecasts`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"board": "OPS", "mode": "when", "items": 10, "start_date": "2027-02-01", "seed": 42}))]
pub struct ForecastRequest {
    /// The board whose throughput is the history.
    pub board: String,
    /// Only items of this service.
    pub service: Option<String>,
    /// Only items of this type.
    #[serde(rename = "type")]
    pub item_type: Option<ItemType>,
    /// Only items with this label.
    pub label: Option<String>,
    /// `when` or `how_many`.
    pub mode: Mode,
    /// For `when`: how many items (1–100,000).
    pub items: Option<i64>,
    /// For `how_many`: the last day counted (local date).
    pub until: Option<NaiveDate>,
    /// The first simulated day; default today.
    pub start_date: Option<NaiveDate>,
    /// First day of the history; default 90 days before `history_to`.
    pub history_from: Option<NaiveDate>,
    /// Last day of the history; default yesterday.
    pub history_to: Option<NaiveDate>,
    /// Trials, 1,000–100,000 (default 10,000).
    pub trials: Option<u32>,
    /// The random seed; the same seed gives the same answer. Default: a random one, which the
    /// answer names.
    pub seed: Option<u64>,
    /// `all` (default) or `workdays`.
    pub days: Option<Days>,
}

/// One percentile of the answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastPercentile {
    /// The probability, in percent.
    pub p: u32,
    /// For `when`: done on or before this day with probability `p`.
    pub date: Option<NaiveDate>,
    /// For `how_many`: at least this many with probability `p`.
    pub items: Option<i64>,
}

/// One bar of the histogram.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistogramBar {
    /// For `when`: the day.
    pub date: Option<NaiveDate>,
    /// For `how_many`: the count.
    pub items: Option<i64>,
    /// Trials with this outcome.
    pub trials: u32,
}

/// The inputs as used.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ForecastInputs {
    /// The board.
    pub board: String,
    /// The question.
    pub mode: Mode,
    /// For `when`: the items.
    pub items: Option<i64>,
    /// For `how_many`: the last day.
    pub until: Option<NaiveDate>,
    /// The first simulated day.
    pub start_date: NaiveDate,
    /// The history's first day.
    pub history_from: NaiveDate,
    /// The history's last day.
    pub history_to: NaiveDate,
    /// The days of the history that counted (all, or business days only).
    pub history_days: usize,
    /// The finishes in the history.
    pub history_finishes: i64,
    /// Trials run.
    pub trials: u32,
    /// The seed used: pass it again for the same answer.
    pub seed: u64,
    /// `all` or `workdays`.
    pub days: Days,
}

/// A forecast.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Forecast {
    /// The answer at p50, p70, p85 and p95.
    pub percentiles: Vec<ForecastPercentile>,
    /// How the trials' outcomes spread.
    pub histogram: Vec<HistogramBar>,
    /// The inputs as used.
    pub inputs: ForecastInputs,
    /// Why the answer may mislead (a short or mostly empty history, trials that never finish).
    pub warnings: Vec<String>,
}

/// The probabilities answered.
pub const PERCENTILES: [u32; 4] = [50, 70, 85, 95];

/// The longest a simulated trial runs, in days (ten years).
pub const MAX_SIMULATED_DAYS: i64 = 3660;

/// Runs the forecast `request` asks for.
pub fn forecast(conn: &mut DbConnection, request: &ForecastRequest) -> Result<Forecast, ApiError> {
    let calendar = crate::common::calendar::current();
    let tz = calendar.tz;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let history_to = request.history_to.unwrap_or(today - Duration::days(1));
    let history_from = request
        .history_from
        .unwrap_or(history_to - Duration::days(89));
    let params = FlowParams {
        board: Some(request.board.clone()),
        from: Some(history_from),
        to: Some(history_to),
        service: request.service.clone(),
        item_type: request.item_type,
        label: request.label.clone(),
        ..FlowParams::default()
    };
    let scope = scope(conn, &params).map_err(|e| rename_field(e, "from", "history_from"))?;
    let trials = request.trials.unwrap_or(10_000);
    if !(1_000..=100_000).contains(&trials) {
        return Err(ApiError::invalid("trials", "must be 1,000–100,000"));
    }
    let days = request.days.unwrap_or_default();
    let start_date = request.start_date.unwrap_or(today);
    let (items, until) = match request.mode {
        Mode::When => match request.items {
            Some(n) if (1..=100_000).contains(&n) => (Some(n), None),
            Some(_) => return Err(ApiError::invalid("items", "must be 1–100,000")),
            None => return Err(ApiError::invalid("items", "is required for `when`")),
        },
        Mode::HowMany => match request.until {
            Some(until) if until < start_date => {
                return Err(ApiError::invalid(
                    "until",
                    "must not be before `start_date`",
                ));
            }
            Some(until) if (until - start_date).num_days() > MAX_SIMULATED_DAYS => {
                return Err(ApiError::invalid("until", "must be within ten years"));
            }
            Some(until) => (None, Some(until)),
            None => return Err(ApiError::invalid("until", "is required for `how_many`")),
        },
    };
    // The history: finishes per day of [history_from, history_to].
    let members = population(conn, &scope)?;
    let finishes: Vec<(i64, Option<chrono::NaiveDateTime>)> = item_flow::table
        .filter(
            item_flow::board_id
                .eq(scope.board_id)
                .and(item_flow::deleted_at.is_null())
                .and(item_flow::finished_at.ge(day_start(&tz, scope.from)))
                .and(item_flow::finished_at.lt(day_start(&tz, scope.to + Duration::days(1)))),
        )
        .select((item_flow::item_id, item_flow::finished_at))
        .load(conn)?;
    let mut per_day: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    let counts = |date: &NaiveDate| days == Days::All || calendar.is_business_day(*date);
    let mut date = scope.from;
    while date <= scope.to {
        if counts(&date) {
            per_day.insert(date, 0);
        }
        date += Duration::days(1);
    }
    for (item, finished) in finishes {
        let Some(finished) = finished else { continue };
        if !members.contains(&item) {
            continue;
        }
        if let Some(n) = per_day.get_mut(&local_date(&tz, finished)) {
            *n += 1;
        }
    }
    let history: Vec<i64> = per_day.values().copied().collect();
    let total: i64 = history.iter().sum();
    if total == 0 {
        return Err(ApiError::invalid(
            "history_from",
            "the history holds no finished items: nothing to forecast from",
        ));
    }
    let mut warnings = Vec::new();
    if history.len() < 30 {
        warnings.push(format!(
            "the history covers {} days; at least 30 are advised",
            history.len()
        ));
    }
    let zeros = history.iter().filter(|n| **n == 0).count();
    if zeros * 2 > history.len() {
        warnings.push(format!(
            "{zeros} of {} days of the history had no finishes",
            history.len()
        ));
    }
    let seed = request.seed.unwrap_or_else(rand::random);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let passes = |date: NaiveDate| days == Days::All || calendar.is_business_day(date);
    let mut percentiles = Vec::new();
    let histogram;
    match request.mode {
        Mode::When => {
            let wanted = items.unwrap_or(1);
            let mut outcomes: Vec<Option<NaiveDate>> = Vec::with_capacity(trials as usize);
            for _ in 0..trials {
                let mut done = 0;
                let mut day = start_date;
                let mut finished = None;
                for _ in 0..MAX_SIMULATED_DAYS {
                    if passes(day) {
                        done += history[rng.random_range(0..history.len())];
                        if done >= wanted {
                            finished = Some(day);
                            break;
                        }
                    }
                    day += Duration::days(1);
                }
                outcomes.push(finished);
            }
            let never = outcomes.iter().filter(|o| o.is_none()).count();
            if never > 0 {
                warnings.push(format!(
                    "{never} trials did not finish within ten years; they count as never"
                ));
            }
            // `None` (never) sorts last.
            outcomes.sort_by_key(|o| o.unwrap_or(NaiveDate::MAX));
            for p in PERCENTILES {
                let rank = (p as usize * outcomes.len()).div_ceil(100).max(1);
                percentiles.push(ForecastPercentile {
                    p,
                    date: outcomes.get(rank - 1).copied().flatten(),
                    items: None,
                });
            }
            let mut bars: BTreeMap<NaiveDate, u32> = BTreeMap::new();
            for outcome in outcomes.into_iter().flatten() {
                *bars.entry(outcome).or_default() += 1;
            }
            histogram = bars
                .into_iter()
                .map(|(date, trials)| HistogramBar {
                    date: Some(date),
                    items: None,
                    trials,
                })
                .collect();
        }
        Mode::HowMany => {
            let last = until.unwrap_or(start_date);
            let simulated: Vec<NaiveDate> = std::iter::successors(Some(start_date), |d| {
                Some(*d + Duration::days(1)).filter(|d| *d <= last)
            })
            .filter(|d| passes(*d))
            .collect();
            let mut outcomes: Vec<i64> = (0..trials)
                .map(|_| {
                    simulated
                        .iter()
                        .map(|_| history[rng.random_range(0..history.len())])
                        .sum()
                })
                .collect();
            // Most first: at least the value at rank ⌈p·n/100⌉ with probability p.
            outcomes.sort_unstable_by(|a, b| b.cmp(a));
            for p in PERCENTILES {
                let rank = (p as usize * outcomes.len()).div_ceil(100).max(1);
                percentiles.push(ForecastPercentile {
                    p,
                    date: None,
                    items: outcomes.get(rank - 1).copied(),
                });
            }
            let mut bars: BTreeMap<i64, u32> = BTreeMap::new();
            for outcome in outcomes {
                *bars.entry(outcome).or_default() += 1;
            }
            histogram = bars
                .into_iter()
                .map(|(items, trials)| HistogramBar {
                    date: None,
                    items: Some(items),
                    trials,
                })
                .collect();
        }
    }
    Ok(Forecast {
        percentiles,
        histogram,
        inputs: ForecastInputs {
            board: scope.board_key,
            mode: request.mode,
            items,
            until,
            start_date,
            history_from: scope.from,
            history_to: scope.to,
            history_days: history.len(),
            history_finishes: total,
            trials,
            seed,
            days,
        },
        warnings,
    })
}

/// The same error naming `to` instead of `from` (the history's fields have their own names).
fn rename_field(error: ApiError, from: &str, to: &str) -> ApiError {
    match error {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    if e.field == from {
                        e.field = to.to_string();
                    } else if e.field == "to" {
                        e.field = "history_to".to_string();
                    }
                    e
                })
                .collect(),
        ),
        other => other,
    }
}
