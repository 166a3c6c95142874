//! Ranks: strings that order items inside a column and always leave room between two
//! neighbours (fractional indexing over base 62), so that a move writes one row.
//!
//! A rank is a base-62 fraction `0.d₁d₂…` written as its digits, in ASCII order so that byte
//! order is numeric order, never ending in `0` (else `V` and `V0` would be equal numbers but
//! different strings). Every function here is total: when the neighbours leave no room (equal,
//! inverted or malformed ranks, as a race or a copied database can leave behind) it answers
//! `None`, and the caller re-ranks the column with [`spread`] in the same transaction.

/// The digits, in ASCII order so that string order is numeric order.
const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE: u32 = 62;

/// Ranks longer than this trigger a re-rank of the column.
pub const MAX_RANK_LEN: usize = 48;

/// Digits of the fixed-point form used for appending: 62¹⁰ ≈ 8.4 × 10¹⁷ fits in a `u64`.
const UNIT_DIGITS: u32 = 10;

fn value_of(c: u8) -> Option<u32> {
    DIGITS
        .iter()
        .position(|d| *d == c)
        .and_then(|p| u32::try_from(p).ok())
}

fn char_of(value: u32) -> char {
    DIGITS
        .get(value as usize)
        .map(|d| *d as char)
        .unwrap_or('z')
}

/// The digits of a well-formed rank: non-empty, only base-62 digits, not ending in `0`.
fn digits(rank: &str) -> Option<Vec<u32>> {
    let values = rank.bytes().map(value_of).collect::<Option<Vec<u32>>>()?;
    (values.last().is_some_and(|d| *d != 0)).then_some(values)
}

/// Whether `rank` is a well-formed rank.
pub fn is_valid(rank: &str) -> bool {
    digits(rank).is_some()
}

/// A rank strictly between `low` (or the start) and `high` (or the end), as short as the
/// neighbours allow. `None` when there is no such rank: `low >= high`, or a malformed rank.
pub fn between(low: Option<&str>, high: Option<&str>) -> Option<String> {
    let low = match low {
        Some(l) => digits(l)?,
        None => Vec::new(),
    };
    let high = match high {
        Some(h) => Some(digits(h)?),
        None => None,
    };
    if let Some(h) = &high
        && low >= *h
    {
        // Well-formed ranks compare as digit sequences exactly as they compare as numbers.
        return None;
    }
    let at = |d: &[u32], i: usize| d.get(i).copied().unwrap_or(0);
    let mut out = String::new();
    let mut bounded = high.is_some();
    // Each step either returns or moves one digit on; past the end of `low` with an open
    // upper bound the midpoint is always free, so this ends within len(low) + len(high) + 1.
    for i in 0..=(low.len() + high.as_ref().map_or(0, Vec::len)) {
        let l = at(&low, i);
        let h = match (&high, bounded) {
            (Some(h), true) => at(h, i),
            _ => BASE,
        };
        if l == h {
            out.push(char_of(l));
            continue;
        }
        let mid = (l + h) / 2;
        if mid > l {
            out.push(char_of(mid));
            return Some(out);
        }
        // h == l + 1: keep l here; anything above the rest of `low` is now below `high`.
        out.push(char_of(l));
        bounded = false;
    }
    None
}

/// The rank's value in units of 62⁻¹⁰, rounded down, and whether digits were cut off.
fn units(digits: &[u32]) -> (u64, bool) {
    let mut value = 0_u64;
    for i in 0..UNIT_DIGITS as usize {
        value = value * u64::from(BASE) + u64::from(digits.get(i).copied().unwrap_or(0));
    }
    (value, digits.len() > UNIT_DIGITS as usize)
}

/// The shortest rank string of a value in units (trailing zeros dropped).
fn from_units(mut value: u64) -> String {
    let mut text = vec![0_u32; UNIT_DIGITS as usize];
    for slot in text.iter_mut().rev() {
        *slot = u32::try_from(value % u64::from(BASE)).unwrap_or(0);
        value /= u64::from(BASE);
    }
    while text.last() == Some(&0) {
        text.pop();
    }
    text.into_iter().map(char_of).collect()
}

/// The step for appending after a value: in the lower half of the range a step of 62⁻²
/// (ranks of two digits), in the next quarter 62⁻³, in the next eighth 62⁻⁴, and so on. So the
/// first ~1,900 appends to an empty column take two characters, the next ~60,000 three: ranks
/// grow with the logarithm of the appends, where halving the gap to the end would add a
/// character every six.
fn append_step(value: u64) -> u64 {
    let full = u64::from(BASE).pow(UNIT_DIGITS);
    let mut zone_end = full / 2;
    let mut step = u64::from(BASE).pow(UNIT_DIGITS - 2);
    while value >= zone_end && step > 1 {
        zone_end += (full - zone_end) / 2;
        step /= u64::from(BASE);
    }
    step.max(1)
}

/// The first rank of an empty column: low in the range, so that the appends after it take
/// two characters for longer.
const FIRST: &str = "1";

/// A short rank after `low` (or the first rank of an empty column), for appending at the
/// bottom. `None` when `low` is malformed or leaves no room at this precision.
pub fn after(low: Option<&str>) -> Option<String> {
    let Some(low) = low else {
        return Some(FIRST.to_string());
    };
    let (value, _) = units(&digits(low)?);
    let step = append_step(value);
    // The next multiple of the step above `value`: greater than `low` even when digits beyond
    // the tenth were cut off, because `low` < value + 1 unit ≤ the result.
    let next = (value / step + 1).checked_mul(step)?;
    (next < u64::from(BASE).pow(UNIT_DIGITS)).then(|| from_units(next))
}

/// A rank for a place between two neighbours, either of which may be missing: appending at
/// the bottom takes the short steps of [`after`], anything else [`between`]. `None` when the
/// neighbours leave no room; the caller then re-ranks the column.
pub fn place(low: Option<&str>, high: Option<&str>) -> Option<String> {
    match high {
        None => after(low),
        Some(_) => between(low, high),
    }
}

/// `count` evenly spaced ranks, for (re-)ranking a whole column. They fill the lower half of
/// the range, so that appends after a re-rank stay in the two-digit zone of [`after`].
pub fn spread(count: usize) -> Vec<String> {
    // The lower half holds 1,921 two-digit ranks, 119,163 three-digit ones, and so on.
    let width: u32 = match count {
        0..1_000 => 2,
        1_000..60_000 => 3,
        _ => 5,
    };
    let half = u64::from(BASE).pow(width) / 2;
    let step = (half / (count as u64 + 1)).max(1);
    let scale = u64::from(BASE).pow(UNIT_DIGITS - width);
    (1..=count as u64)
        .map(|n| from_units(n * step * scale))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so that the property tests need no crate
    /// and fail the same way every time.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        /// A rank of 1 to 12 digits, sometimes malformed (a trailing `0`, a foreign byte, empty).
        fn rank(&mut self) -> String {
            let len = 1 + self.below(12) as usize;
            let mut text: String = (0..len)
                .map(|_| char_of(u32::try_from(self.below(62)).unwrap_or(0)))
                .collect();
            match self.below(20) {
                0 => text.push('0'),
                1 => text.push('!'),
                2 => text.clear(),
                _ => {}
            }
            text
        }
    }

    fn check_between(low: Option<&str>, high: Option<&str>) {
        let result = between(low, high);
        let ordered = low.is_none_or(is_valid)
            && high.is_none_or(is_valid)
            && match (low, high) {
                (Some(l), Some(h)) => l < h,
                _ => true,
            };
        match result {
            Some(mid) => {
                assert!(ordered, "{low:?} {high:?} gave {mid}");
                assert!(is_valid(&mid), "{mid} is malformed");
                assert!(low.is_none_or(|l| l < mid.as_str()), "{low:?} < {mid}");
                assert!(high.is_none_or(|h| mid.as_str() < h), "{mid} < {high:?}");
            }
            None => assert!(!ordered, "{low:?} < {high:?} has room"),
        }
    }

    #[test]
    fn between_is_strictly_between() {
        let cases = [
            (None, None),
            (None, Some("V")),
            (Some("V"), None),
            (Some("a"), Some("b")),
            (Some("a"), Some("a1")),
            (Some("az"), Some("b")),
            (Some("1"), Some("2")),
            (Some("zzzz"), None),
            (None, Some("0001")),
        ];
        for (low, high) in cases {
            check_between(low, high);
            assert!(between(low, high).is_some(), "{low:?} {high:?}");
        }
    }

    #[test]
    fn between_refuses_equal_inverted_and_malformed_neighbours() {
        for (low, high) in [
            ("zq", "zq"),
            ("b", "a"),
            ("V", "V0"),
            ("V0", "V1"),
            ("", "V"),
            ("V!", "W"),
        ] {
            assert_eq!(between(Some(low), Some(high)), None, "{low} {high}");
        }
        assert_eq!(between(Some("ä"), None), None);
    }

    #[test]
    fn between_terminates_in_strict_order_for_random_pairs() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let a = random.rank();
            let b = if random.below(8) == 0 {
                a.clone()
            } else {
                random.rank()
            };
            check_between(Some(&a), Some(&b));
            check_between(Some(&b), Some(&a));
            check_between(Some(&a), None);
            check_between(None, Some(&a));
        }
    }

    #[test]
    fn repeated_inserts_stay_ordered_and_short() {
        // Always inserting right after the first item: the worst case for growth.
        let first = after(None).expect("first");
        let mut next = after(Some(&first)).expect("second");
        for _ in 0..200 {
            let mid = between(Some(&first), Some(&next)).expect("room");
            assert!(first < mid && mid < next);
            next = mid;
        }
        assert!(next.len() < MAX_RANK_LEN, "{}", next.len());
    }

    #[test]
    fn appending_stays_short_and_ordered() {
        let mut last = after(None).expect("first");
        let mut longest = last.len();
        for n in 1..70_000 {
            let next = after(Some(&last)).expect("room");
            assert!(last < next && is_valid(&next), "{last} {next}");
            longest = longest.max(next.len());
            if n == 1_500 {
                assert!(longest <= 2, "{longest} characters after {n} appends");
            }
            last = next;
        }
        assert!(longest <= 4, "{longest} characters after 70,000 appends");
    }

    #[test]
    fn after_handles_long_and_malformed_ranks() {
        let long = "V".repeat(40);
        let next = after(Some(&long)).expect("room");
        assert!(long < next && next.len() <= UNIT_DIGITS as usize);
        assert_eq!(after(Some("V0")), None);
        assert_eq!(after(Some(&"z".repeat(12))), None);
    }

    #[test]
    fn spread_ranks_ascend_and_leave_room_to_append() {
        for count in [1, 2, 10, 999, 1_000, 5_000, 70_000] {
            let ranks = spread(count);
            assert_eq!(ranks.len(), count);
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{count}");
            assert!(ranks.iter().all(|r| is_valid(r)), "{count}");
            let last = ranks.last().expect("one");
            let appended = after(Some(last)).expect("room after a spread");
            assert!(appended.len() <= 5, "{count}: {appended}");
        }
    }
}
