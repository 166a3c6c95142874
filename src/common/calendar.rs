//! Business-hours calendar for SLA clocks.
//!
//! Response and resolution targets are agreed in *business minutes*: time only
//! passes during the working hours of a weekday, in local time, and not on the
//! public holidays of Mecklenburg-Vorpommern. All arithmetic is done on UTC
//! instants; local working hours are converted per day so that DST switches are
//! handled exactly.

use std::sync::Arc;

use chrono::{
    DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

// The calendar of the app whose database work runs on this thread right now: set by
// `common::db::Db` around each piece of work, from the app's state, so that two apps in one
// process (tests) count in their own working hours. Outside any app's work: the default one.
thread_local! {
    static CURRENT: std::cell::RefCell<Option<Arc<Calendar>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `work` with `calendar` as the one SLA clocks count in, and restores the one before
/// (also when `work` panics).
pub fn with_calendar<T>(calendar: &Arc<Calendar>, work: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<Calendar>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let _restore = Restore(CURRENT.with(|current| current.replace(Some(calendar.clone()))));
    work()
}

/// The calendar clocks count in now (see [`with_calendar`]).
pub fn current() -> Arc<Calendar> {
    static DEFAULT: std::sync::OnceLock<Arc<Calendar>> = std::sync::OnceLock::new();
    CURRENT
        .with(|current| current.borrow().clone())
        .unwrap_or_else(|| {
            DEFAULT
                .get_or_init(|| Arc::new(Calendar::default()))
                .clone()
        })
}

/// How a policy counts time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockKind {
    /// Minutes within working hours, on working days that are not public holidays (default).
    #[default]
    Business,
    /// Wall-clock minutes, day and night.
    Calendar,
}
text_enum!(ClockKind { Business => "business", Calendar => "calendar" });

impl ClockKind {
    /// Minutes of this clock between two instants.
    pub fn minutes(self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        match self {
            ClockKind::Business => current().business_minutes_between(from, to),
            ClockKind::Calendar => (to - from).num_minutes().max(0),
        }
    }

    /// The instant when `minutes` of this clock have passed since `from`.
    pub fn add(self, from: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        match self {
            ClockKind::Business => current().add_business_minutes(from, minutes),
            ClockKind::Calendar => from + TimeDelta::minutes(minutes.max(0)),
        }
    }
}

/// How far [`Calendar::add_business_minutes`] searches before giving up: about
/// 100 years. No SLA target is that long, so hitting it means the calendar has
/// (practically) no business time or the minute count is absurd.
const SEARCH_HORIZON_DAYS: i64 = 36_525;

/// A public holiday on which no business time passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Holiday {
    /// Calendar date of the holiday.
    pub date: NaiveDate,
    /// Official German name, as the authorities using the desk know it.
    pub name: &'static str,
}

/// Easter Sunday of `year` in the Gregorian calendar.
///
/// Computed with the anonymous Gregorian (Meeus/Jones/Butcher) algorithm rather
/// than a table, so every year works. Returns `None` only if chrono cannot
/// represent the resulting date.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    // Euclidean division keeps the algorithm panic-free and consistent for
    // negative (proleptic) years; for positive years it equals plain `/` and `%`.
    let y = i64::from(year);
    let a = y.rem_euclid(19);
    let b = y.div_euclid(100);
    let c = y.rem_euclid(100);
    let d = b.div_euclid(4);
    let e = b.rem_euclid(4);
    let f = (b + 8).div_euclid(25);
    let g = (b - f + 1).div_euclid(3);
    let h = (19 * a + b - d - g + 15).rem_euclid(30);
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k).rem_euclid(7);
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Public holidays of Mecklenburg-Vorpommern in `year`, sorted by date.
///
/// Internationaler Frauentag (8 March) is included from 2023 on, when the state
/// introduced it. Holidays whose date chrono cannot represent are left out.
/// Two holidays may share a date (e.g. Christi Himmelfahrt on 1 May 2008);
/// both are listed.
pub fn public_holidays(year: i32) -> Vec<Holiday> {
    let mut holidays: Vec<Holiday> = holiday_candidates(year).into_iter().flatten().collect();
    // Stable sort: Easter-based holidays can fall before or on fixed ones.
    holidays.sort_by_key(|h| h.date);
    holidays
}

/// All MV holidays of `year`, unsorted; shared by the public list and the
/// per-day check so both use the same rules.
fn holiday_candidates(year: i32) -> [Option<Holiday>; 11] {
    let fixed = |month: u32, day: u32, name: &'static str| {
        NaiveDate::from_ymd_opt(year, month, day).map(|date| Holiday { date, name })
    };
    let easter = easter_sunday(year);
    let from_easter = |days: i64, name: &'static str| {
        easter
            .and_then(|e| e.checked_add_signed(TimeDelta::days(days)))
            .map(|date| Holiday { date, name })
    };
    [
        fixed(1, 1, "Neujahr"),
        if year >= 2023 {
            fixed(3, 8, "Internationaler Frauentag")
        } else {
            None
        },
        from_easter(-2, "Karfreitag"),
        from_easter(1, "Ostermontag"),
        fixed(5, 1, "Tag der Arbeit"),
        from_easter(39, "Christi Himmelfahrt"),
        from_easter(50, "Pfingstmontag"),
        fixed(10, 3, "Tag der Deutschen Einheit"),
        fixed(10, 31, "Reformationstag"),
        fixed(12, 25, "1. Weihnachtstag"),
        fixed(12, 26, "2. Weihnachtstag"),
    ]
}

/// Whether `date` is a public holiday in Mecklenburg-Vorpommern.
fn is_mv_holiday(date: NaiveDate) -> bool {
    holiday_candidates(date.year())
        .iter()
        .flatten()
        .any(|h| h.date == date)
}

/// Working calendar that decides when an SLA clock runs.
///
/// Working hours are local wall-clock times in [`Calendar::tz`]; a day's window
/// is `[start, end)`. A day whose window is `None` or has `end <= start` has no
/// business time. Local times that do not exist (DST gap) are moved to the
/// first instant after the gap; ambiguous ones (DST overlap) use the earlier
/// instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Calendar {
    /// Time zone in which the working hours are given.
    pub tz: Tz,
    /// Working hours per weekday, Monday first (index = days from Monday).
    pub hours: [Option<(NaiveTime, NaiveTime)>; 7],
    /// Whether the public holidays of Mecklenburg-Vorpommern stop the clock.
    pub mv_holidays: bool,
}

impl Default for Calendar {
    /// Europe/Berlin, Monday to Friday 08:00–16:00, MV public holidays off.
    fn default() -> Self {
        let day = NaiveTime::from_hms_opt(8, 0, 0).zip(NaiveTime::from_hms_opt(16, 0, 0));
        Self::new(
            chrono_tz::Europe::Berlin,
            [day, day, day, day, day, None, None],
        )
    }
}

impl Calendar {
    /// Calendar with the given time zone and weekly hours (Monday first).
    ///
    /// MV public holidays apply; set [`Calendar::mv_holidays`] to `false` for a
    /// calendar without holidays.
    pub fn new(tz: Tz, hours: [Option<(NaiveTime, NaiveTime)>; 7]) -> Self {
        Self {
            tz,
            hours,
            mv_holidays: true,
        }
    }

    /// Whether business time passes on `date` at all: the weekday has working
    /// hours and the date is not a public holiday (when holidays apply).
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        self.day_hours(date).is_some() && !(self.mv_holidays && is_mv_holiday(date))
    }

    /// Whole business minutes in `[from, to)`; 0 when `to <= from`.
    ///
    /// Business seconds are summed exactly and then floored to minutes, so a
    /// partly elapsed minute does not count yet. Runs day by day, so a span of
    /// a year costs a few hundred cheap steps.
    pub fn business_minutes_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        let last = self
            .local_date(to)
            .succ_opt()
            .unwrap_or(self.local_date(to));
        let mut total = TimeDelta::zero();
        // Start a day early: zones that fall back across midnight can make the
        // previous local day's window overlap the start instant.
        let mut day = self.first_day(from);
        loop {
            if let Some((open, close)) = self.window(day) {
                let start = open.max(from);
                let end = close.min(to);
                if end > start {
                    // Bounded by `to - from`, which is itself a valid TimeDelta.
                    total += end - start;
                }
            }
            match day.succ_opt() {
                Some(next) if day < last => day = next,
                _ => break,
            }
        }
        total.num_minutes()
    }

    /// Earliest instant at which `minutes` business minutes have passed since
    /// `from`; if `from` is outside business hours the clock starts at the next
    /// opening. `minutes <= 0` returns `from`.
    ///
    /// Consistent with [`Calendar::business_minutes_between`]:
    /// `business_minutes_between(from, add_business_minutes(from, m)) == m`.
    ///
    /// Saturates instead of failing: if the target is not reached within about
    /// 100 years (a calendar without working hours, or an absurd minute count),
    /// the result is `from` + 100 years (or the latest representable instant),
    /// which for an SLA deadline means "never".
    pub fn add_business_minutes(&self, from: DateTime<Utc>, minutes: i64) -> DateTime<Utc> {
        if minutes <= 0 {
            return from;
        }
        let never = from
            .checked_add_signed(TimeDelta::days(SEARCH_HORIZON_DAYS))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let has_hours = self.hours.iter().flatten().any(|(s, e)| s < e);
        let Some(mut remaining) = minutes.checked_mul(60).and_then(TimeDelta::try_seconds) else {
            return never;
        };
        if !has_hours {
            return never;
        }
        let mut day = self.first_day(from);
        for _ in 0..=SEARCH_HORIZON_DAYS + 1 {
            if let Some((open, close)) = self.window(day) {
                let start = open.max(from);
                if close > start {
                    let available = close - start;
                    if available >= remaining {
                        return start.checked_add_signed(remaining).unwrap_or(never);
                    }
                    remaining -= available;
                }
            }
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        never
    }

    /// Local calendar date of an instant in this calendar's zone.
    ///
    /// Avoids `DateTime::date_naive`, which panics when the local time lies
    /// beyond chrono's range (instants near `DateTime::<Utc>::MAX_UTC`); such
    /// instants fall back to their UTC date.
    fn local_date(&self, instant: DateTime<Utc>) -> NaiveDate {
        let utc = instant.naive_utc();
        let offset = self.tz.offset_from_utc_datetime(&utc).fix();
        utc.checked_add_offset(offset).unwrap_or(utc).date()
    }

    /// First local day whose window may contain or follow `from` (one day
    /// early, see `business_minutes_between`).
    fn first_day(&self, from: DateTime<Utc>) -> NaiveDate {
        let date = self.local_date(from);
        date.pred_opt().unwrap_or(date)
    }

    /// Valid working hours for the weekday of `date`, ignoring holidays.
    fn day_hours(&self, date: NaiveDate) -> Option<(NaiveTime, NaiveTime)> {
        let index = date.weekday().num_days_from_monday() as usize;
        self.hours
            .get(index)
            .copied()
            .flatten()
            .filter(|(start, end)| start < end)
    }

    /// Business window of `date` as UTC instants, or `None` if no business time
    /// passes that day.
    fn window(&self, date: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let (start, end) = self.day_hours(date)?;
        if self.mv_holidays && is_mv_holiday(date) {
            return None;
        }
        let open = self.local_to_utc(date.and_time(start))?;
        let close = self.local_to_utc(date.and_time(end))?;
        (open < close).then_some((open, close))
    }

    /// Converts a local wall-clock time to UTC without panicking on DST
    /// transitions: ambiguous times take the earlier instant, non-existent
    /// times move forward to the first valid local minute (the end of the gap).
    fn local_to_utc(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Real gaps are at most a few hours; a day bounds the search safely.
        (0..=24 * 60).find_map(|step| {
            let candidate = local.checked_add_signed(TimeDelta::minutes(step))?;
            self.tz
                .from_local_datetime(&candidate)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
