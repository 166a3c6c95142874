//! Ranks: strings that order items inside a column and always leave room between two
//! neighbours (fractional indexing over base 62), so that a move writes one row.

/// The digits, in ASCII order so that string order is numeric order.
const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE: u32 = 62;

/// Ranks longer than this trigger a re-rank of the column.
pub const MAX_RANK_LEN: usize = 48;

fn digit(rank: &[u8], i: usize) -> u32 {
    rank.get(i)
        .and_then(|c| DIGITS.iter().position(|d| d == c))
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or(0)
}

fn char_of(value: u32) -> char {
    DIGITS
        .get(value as usize)
        .map(|d| *d as char)
        .unwrap_or('z')
}

/// A rank strictly between `low` (or the start) and `high` (or the end). Requires
/// `low < high`; the result never ends in `0`, so there is always room again.
pub fn between(low: Option<&str>, high: Option<&str>) -> String {
    let low = low.unwrap_or("").as_bytes();
    let mut high = high.map(str::as_bytes);
    let mut out = String::new();
    let mut i = 0;
    loop {
        let l = digit(low, i);
        let h = match high {
            Some(h) => digit(h, i),
            None => BASE,
        };
        if l == h {
            out.push(char_of(l));
            i += 1;
            continue;
        }
        let mid = (l + h) / 2;
        if mid > l {
            out.push(char_of(mid));
            return out;
        }
        // h == l + 1: keep l here and find room above the rest of `low`.
        out.push(char_of(l));
        high = None;
        i += 1;
    }
}

/// `count` evenly spaced ranks, for (re-)ranking a whole column.
pub fn spread(count: usize) -> Vec<String> {
    // Two digits give 3,843 slots; three give 238,327.
    let width = if count < 1_000 { 2 } else { 3 };
    let slots = u64::from(BASE).pow(width) - 1;
    let step = (slots / (count as u64 + 1)).max(1);
    (1..=count as u64)
        .map(|n| {
            let mut value = n * step;
            let mut text = vec!['0'; width as usize];
            for position in (0..width as usize).rev() {
                text[position] = char_of(u32::try_from(value % u64::from(BASE)).unwrap_or(0));
                value /= u64::from(BASE);
            }
            let text: String = text.into_iter().collect();
            text.trim_end_matches('0').to_string()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ];
        for (low, high) in cases {
            let mid = between(low, high);
            assert!(low.is_none_or(|l| l < mid.as_str()), "{low:?} < {mid}");
            assert!(high.is_none_or(|h| mid.as_str() < h), "{mid} < {high:?}");
            assert!(!mid.ends_with('0'));
        }
    }

    #[test]
    fn repeated_inserts_stay_ordered_and_short() {
        // Always inserting right after the first item: the worst case for growth.
        let first = between(None, None);
        let mut next = between(Some(&first), None);
        for _ in 0..200 {
            let mid = between(Some(&first), Some(&next));
            assert!(first < mid && mid < next);
            next = mid;
        }
        assert!(next.len() < MAX_RANK_LEN, "{}", next.len());
    }

    #[test]
    fn spread_ranks_ascend() {
        for count in [1, 2, 10, 999, 5_000] {
            let ranks = spread(count);
            assert_eq!(ranks.len(), count);
            assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{count}");
            assert!(ranks.iter().all(|r| !r.is_empty() && !r.ends_with('0')));
        }
    }
}
