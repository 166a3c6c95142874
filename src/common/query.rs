//! Query parameter types that several lists share: a person as `me` or an id, and an instant
//! given as a time or as a span back from now (`updated_since=P1D`).

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

/// A person named in a query string: `me` (the caller) or a user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonParam {
    /// The caller.
    Me,
    /// The user with this id.
    Id(i64),
}

impl PersonParam {
    /// The user id meant, with `me` standing for `caller`.
    pub fn id(self, caller: i64) -> i64 {
        match self {
            PersonParam::Me => caller,
            PersonParam::Id(id) => id,
        }
    }
}

impl<'de> Deserialize<'de> for PersonParam {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let text = text.trim();
        if text.eq_ignore_ascii_case("me") {
            return Ok(PersonParam::Me);
        }
        text.parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .map(PersonParam::Id)
            .ok_or_else(|| serde::de::Error::custom("must be `me` or a user id"))
    }
}

/// An instant in a query string: an RFC 3339 time (`2026-12-01T08:00:00Z`), or a span back
/// from now as an ISO 8601 duration (`P1D`, `PT6H`, `P1W`) or a short one (`24h`, `30m`,
/// `7d`, `2w`), read when the request is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Since(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for Since {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_since(text.trim(), Utc::now())
            .map(Since)
            .ok_or_else(|| {
                serde::de::Error::custom(
                    "must be an RFC 3339 time (2026-12-01T08:00:00Z) or a span back from now \
                 (P1D, PT6H, 24h, 7d)",
                )
            })
    }
}

/// The instant `text` names, relative spans counted back from `now`.
pub fn parse_since(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    let span = parse_span(text)?;
    now.checked_sub_signed(span)
}

/// A span as an ISO 8601 duration of weeks, days, hours, minutes and seconds (`P1DT12H`, no
/// years or months, whose length varies), or as a number with one unit of `s`, `m`, `h`, `d`
/// or `w` (`24h`). At most ten years.
fn parse_span(text: &str) -> Option<Duration> {
    let unit = |c: char| match c.to_ascii_lowercase() {
        's' => Some(1),
        'm' => Some(60),
        'h' => Some(3_600),
        'd' => Some(86_400),
        'w' => Some(604_800),
        _ => None,
    };
    let seconds: i64 = if let Some(rest) = text.strip_prefix(['P', 'p']) {
        let mut total: i64 = 0;
        let mut in_time = false;
        let mut number = String::new();
        let mut parts = 0;
        for c in rest.chars() {
            match c {
                '0'..='9' => number.push(c),
                'T' | 't' if number.is_empty() && !in_time => in_time = true,
                _ => {
                    let n: i64 = number.parse().ok()?;
                    number.clear();
                    let factor = match (in_time, c.to_ascii_uppercase()) {
                        (false, 'W') => 604_800,
                        (false, 'D') => 86_400,
                        (true, 'H') => 3_600,
                        (true, 'M') => 60,
                        (true, 'S') => 1,
                        _ => return None,
                    };
                    total = total.checked_add(n.checked_mul(factor)?)?;
                    parts += 1;
                }
            }
        }
        if !number.is_empty() || parts == 0 {
            return None;
        }
        total
    } else {
        let split = text.len().checked_sub(1)?;
        let (number, suffix) = text.split_at(split);
        let factor = unit(suffix.chars().next()?)?;
        number.parse::<i64>().ok()?.checked_mul(factor)?
    };
    (0..=10 * 366 * 86_400)
        .contains(&seconds)
        .then(|| Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let back = |text: &str| parse_since(text, now).map(|t| (now - t).num_seconds());
        assert_eq!(back("P1D"), Some(86_400));
        assert_eq!(back("PT6H"), Some(21_600));
        assert_eq!(back("P1DT12H"), Some(129_600));
        assert_eq!(back("P2W"), Some(1_209_600));
        assert_eq!(back("PT90M"), Some(5_400));
        assert_eq!(back("24h"), Some(86_400));
        assert_eq!(back("30m"), Some(1_800));
        assert_eq!(back("7d"), Some(604_800));
        assert_eq!(back("2026-12-01T12:00:00Z"), Some(86_400));
        assert_eq!(back("2026-12-01T13:00:00+01:00"), Some(86_400));
        for wrong in [
            "",
            "P",
            "PT",
            "P1M",
            "P1Y",
            "PT1D",
            "1x",
            "h",
            "-1d",
            "P1",
            "1.5h",
            "99999999999d",
        ] {
            assert_eq!(parse_since(wrong, now), None, "{wrong}");
        }
    }
}
