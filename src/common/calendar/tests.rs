//! Tests of the business calendar: Easter and the holidays of Mecklenburg-Vorpommern, business
//! minutes between two instants and business minutes added to one, across weekends, holidays
//! and DST switches.

use super::*;
use chrono_tz::Europe::Berlin;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// Berlin wall-clock time as a UTC instant (must be unambiguous).
fn berlin(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Berlin
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).unwrap()
}

#[test]
fn easter_sunday_known_dates() {
    for (year, m, d) in [
        (2019, 4, 21),
        (2024, 3, 31),
        (2025, 4, 20),
        (2026, 4, 5),
        (2027, 3, 28),
        (2028, 4, 16),
        (2008, 3, 23),
        (2038, 4, 25),
        (1818, 3, 22),
    ] {
        assert_eq!(easter_sunday(year), Some(date(year, m, d)), "{year}");
    }
}

#[test]
fn easter_sunday_out_of_range_is_none() {
    assert_eq!(easter_sunday(i32::MAX), None);
    assert_eq!(easter_sunday(i32::MIN), None);
    assert!(public_holidays(i32::MAX).is_empty());
}

#[test]
fn mv_holidays_2027() {
    let expected = vec![
        (date(2027, 1, 1), "Neujahr"),
        (date(2027, 3, 8), "Internationaler Frauentag"),
        (date(2027, 3, 26), "Karfreitag"),
        (date(2027, 3, 29), "Ostermontag"),
        (date(2027, 5, 1), "Tag der Arbeit"),
        (date(2027, 5, 6), "Christi Himmelfahrt"),
        (date(2027, 5, 17), "Pfingstmontag"),
        (date(2027, 10, 3), "Tag der Deutschen Einheit"),
        (date(2027, 10, 31), "Reformationstag"),
        (date(2027, 12, 25), "1. Weihnachtstag"),
        (date(2027, 12, 26), "2. Weihnachtstag"),
    ];
    let actual: Vec<_> = public_holidays(2027)
        .into_iter()
        .map(|h| (h.date, h.name))
        .collect();
    assert_eq!(actual, expected);
}

#[test]
fn womens_day_only_from_2023() {
    assert!(
        !public_holidays(2022)
            .iter()
            .any(|h| h.date == date(2022, 3, 8))
    );
    assert_eq!(public_holidays(2022).len(), 10);
    assert!(
        public_holidays(2023)
            .iter()
            .any(|h| h.date == date(2023, 3, 8))
    );
    assert!(Calendar::default().is_business_day(date(2022, 3, 8)));
    assert!(!Calendar::default().is_business_day(date(2027, 3, 8)));
}

#[test]
fn holidays_sorted_even_when_sharing_a_date() {
    // 2008: Christi Himmelfahrt fell on 1 May.
    let list = public_holidays(2008);
    assert!(list.windows(2).all(|w| w[0].date <= w[1].date));
    assert_eq!(
        list.iter().filter(|h| h.date == date(2008, 5, 1)).count(),
        2
    );
}

#[test]
fn business_days() {
    let cal = Calendar::default();
    assert!(cal.is_business_day(date(2027, 3, 25))); // Thursday
    assert!(!cal.is_business_day(date(2027, 3, 26))); // Karfreitag
    assert!(!cal.is_business_day(date(2027, 3, 27))); // Saturday
    assert!(!cal.is_business_day(date(2027, 3, 29))); // Ostermontag
    let no_holidays = Calendar {
        mv_holidays: false,
        ..Calendar::default()
    };
    assert!(no_holidays.is_business_day(date(2027, 3, 26)));
}

#[test]
fn minutes_across_weekend() {
    let cal = Calendar::default();
    // Fri 2025-06-13 15:00 → Mon 2025-06-16 09:00 (no holiday in between).
    let from = berlin(2025, 6, 13, 15, 0);
    let to = berlin(2025, 6, 16, 9, 0);
    assert_eq!(cal.business_minutes_between(from, to), 120);
}

#[test]
fn minutes_across_easter_2027() {
    let cal = Calendar::default();
    let from = berlin(2027, 3, 25, 15, 0);
    let to = berlin(2027, 3, 30, 9, 0);
    assert_eq!(cal.business_minutes_between(from, to), 120);
}

#[test]
fn minutes_across_reformation_day() {
    let cal = Calendar::default();
    let from = berlin(2025, 10, 30, 15, 0);
    let to = berlin(2025, 11, 3, 9, 0);
    assert_eq!(cal.business_minutes_between(from, to), 120);
}

#[test]
fn minutes_across_dst_switches() {
    let cal = Calendar::default();
    // Spring forward on Sunday 2026-03-29.
    let from = berlin(2026, 3, 27, 15, 0);
    let to = berlin(2026, 3, 30, 9, 0);
    assert_eq!(cal.business_minutes_between(from, to), 120);
    // Fall back on Sunday 2026-10-25.
    let from = berlin(2026, 10, 23, 15, 0);
    let to = berlin(2026, 10, 26, 9, 0);
    assert_eq!(cal.business_minutes_between(from, to), 120);
}

#[test]
fn minutes_start_outside_hours_and_same_day() {
    let cal = Calendar::default();
    // Before opening and after closing on a Tuesday.
    let from = berlin(2025, 6, 17, 6, 0);
    let to = berlin(2025, 6, 17, 18, 0);
    assert_eq!(cal.business_minutes_between(from, to), 480);
    // Saturday night to Monday 08:45.
    let from = berlin(2025, 6, 14, 23, 0);
    let to = berlin(2025, 6, 16, 8, 45);
    assert_eq!(cal.business_minutes_between(from, to), 45);
    // Within one working day.
    let from = berlin(2025, 6, 17, 9, 10);
    let to = berlin(2025, 6, 17, 11, 25);
    assert_eq!(cal.business_minutes_between(from, to), 135);
    // Partial minutes are floored.
    let to_partial = to + TimeDelta::seconds(59);
    assert_eq!(cal.business_minutes_between(from, to_partial), 135);
}

#[test]
fn minutes_empty_or_reversed_span_is_zero() {
    let cal = Calendar::default();
    let t = berlin(2025, 6, 17, 10, 0);
    assert_eq!(cal.business_minutes_between(t, t), 0);
    assert_eq!(
        cal.business_minutes_between(t, berlin(2025, 6, 16, 10, 0)),
        0
    );
}

#[test]
fn add_minutes_over_weekend() {
    let cal = Calendar::default();
    let from = berlin(2025, 6, 13, 15, 30);
    assert_eq!(
        cal.add_business_minutes(from, 60),
        berlin(2025, 6, 16, 8, 30)
    );
    let saturday = berlin(2025, 6, 14, 11, 0);
    assert_eq!(
        cal.add_business_minutes(saturday, 30),
        berlin(2025, 6, 16, 8, 30)
    );
}

#[test]
fn add_minutes_across_easter_2027() {
    let cal = Calendar::default();
    let from = berlin(2027, 3, 25, 15, 0);
    assert_eq!(
        cal.add_business_minutes(from, 120),
        berlin(2027, 3, 30, 9, 0)
    );
}

#[test]
fn add_minutes_edge_cases() {
    let cal = Calendar::default();
    let from = berlin(2025, 6, 17, 8, 0);
    // A full working day ends exactly at closing, not at the next opening.
    assert_eq!(
        cal.add_business_minutes(from, 480),
        berlin(2025, 6, 17, 16, 0)
    );
    assert_eq!(
        cal.add_business_minutes(from, 481),
        berlin(2025, 6, 18, 8, 1)
    );
    assert_eq!(cal.add_business_minutes(from, 0), from);
    assert_eq!(cal.add_business_minutes(from, -5), from);
}

#[test]
fn add_minutes_without_working_hours_saturates() {
    let cal = Calendar::new(Berlin, [None; 7]);
    let from = berlin(2025, 6, 17, 8, 0);
    let never = from + TimeDelta::days(SEARCH_HORIZON_DAYS);
    assert_eq!(cal.add_business_minutes(from, 1), never);
    assert_eq!(
        Calendar::default().add_business_minutes(from, i64::MAX),
        never
    );
    assert_eq!(
        Calendar::default().add_business_minutes(DateTime::<Utc>::MAX_UTC, 10),
        DateTime::<Utc>::MAX_UTC
    );
    assert_eq!(cal.business_minutes_between(from, never), 0);
}

#[test]
fn extreme_instants_do_not_panic() {
    let cal = Calendar::default();
    let min = DateTime::<Utc>::MIN_UTC;
    let max = DateTime::<Utc>::MAX_UTC;
    let _ = cal.business_minutes_between(max - TimeDelta::days(3), max);
    let _ = cal.business_minutes_between(min, min + TimeDelta::days(10));
    let _ = cal.add_business_minutes(min, 600);
    let _ = cal.add_business_minutes(max - TimeDelta::days(1), 600);
}

#[test]
fn dst_gap_and_overlap_in_working_hours() {
    // Sunday hours 02:30–04:00; 2026-03-29 (gap 02:00–03:00) and
    // 2026-10-25 (02:00–03:00 twice) are ordinary Sundays.
    let mut hours = [None; 7];
    hours[6] = Some((time(2, 30), time(4, 0)));
    let cal = Calendar::new(Berlin, hours);
    // Gap: opening moves to 03:00 CEST → 60 minutes.
    let from = berlin(2026, 3, 28, 12, 0);
    let to = berlin(2026, 3, 30, 0, 0);
    assert_eq!(cal.business_minutes_between(from, to), 60);
    // Overlap: opening is the earlier 02:30 (CEST) → 150 minutes.
    let from = berlin(2026, 10, 24, 12, 0);
    let to = berlin(2026, 10, 26, 0, 0);
    assert_eq!(cal.business_minutes_between(from, to), 150);
    assert_eq!(
        cal.add_business_minutes(from, 150),
        berlin(2026, 10, 25, 4, 0)
    );
}

#[test]
fn round_trip_add_then_count() {
    let cal = Calendar::default();
    let minutes = [
        1, 7, 59, 60, 61, 479, 480, 481, 960, 1_000, 2_400, 10_000, 50_000,
    ];
    // Start instants every 7 h 13 min 17.5 s through spring 2027 (Easter,
    // Frauentag, DST switch) and around Reformationstag/fall-back 2026.
    let step = TimeDelta::seconds(7 * 3600 + 13 * 60 + 17) + TimeDelta::milliseconds(500);
    for start in [berlin(2027, 2, 20, 0, 0), berlin(2026, 10, 15, 0, 0)] {
        let mut from = start;
        for i in 0..200 {
            let m = minutes[i % minutes.len()];
            let due = cal.add_business_minutes(from, m);
            assert_eq!(cal.business_minutes_between(from, due), m, "{from} + {m}");
            // Earliest: one second less is not enough.
            let earlier = due - TimeDelta::seconds(1);
            assert_eq!(
                cal.business_minutes_between(from, earlier),
                m - 1,
                "{from} + {m}"
            );
            from += step;
        }
    }
}

#[test]
fn whole_year_2027_is_exact_and_fast() {
    let cal = Calendar::default();
    // 365 days − 104 weekend days = 261 weekdays; weekday holidays in 2027:
    // Neujahr, Frauentag, Karfreitag, Ostermontag, Himmelfahrt, Pfingstmontag
    // (1 May, 3 Oct, 31 Oct, 25/26 Dec fall on weekends) → 255 × 480 min.
    let weekdays = (1..=365)
        .filter_map(|d| NaiveDate::from_yo_opt(2027, d))
        .filter(|d| d.weekday().num_days_from_monday() < 5)
        .count();
    assert_eq!(weekdays, 261);
    let business_days = (1..=365)
        .filter_map(|d| NaiveDate::from_yo_opt(2027, d))
        .filter(|d| cal.is_business_day(*d))
        .count();
    assert_eq!(business_days, 255);

    let started = std::time::Instant::now();
    let minutes = cal.business_minutes_between(berlin(2027, 1, 1, 0, 0), berlin(2028, 1, 1, 0, 0));
    assert_eq!(minutes, 255 * 480);
    assert_eq!(minutes, 122_400);
    // Generous bound even for a debug build; day-by-day takes milliseconds.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
}
