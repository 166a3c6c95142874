//! Whether a JWT signing secret is fit for production: long enough is not enough, since 32
//! spaces, `aaaa…` or `changeme-changeme-…` are 32 bytes too. Anyone who guesses the secret can
//! sign tokens for any user, so production refuses secrets that look typed rather than drawn.
//!
//! The checks are heuristics tuned so that the output of `openssl rand -base64 32|48` or
//! `openssl rand -hex 32` always passes (a random string has no short period, uses many distinct
//! characters, spreads them evenly and contains no dictionary word of six letters or more).

use std::collections::HashMap;

/// The smallest JWT secret accepted in production, in bytes (the HS256 key size).
pub const MIN_SECRET_BYTES: usize = 32;

/// How to make a good secret; every refusal says it.
pub const HOW_TO_GENERATE: &str = "generate one with `openssl rand -base64 48`";

/// Fewer distinct characters than this cannot come from a random generator at 32+ characters
/// (32 hex digits drawn at random use about 14 of the 16).
const MIN_DISTINCT_CHARS: usize = 10;

/// Shannon entropy per character below this means a few characters dominate (random hex has
/// about 3.5–4 bits, base64 about 4.8–5.5).
const MIN_BITS_PER_CHAR: f64 = 3.0;

/// Words that mark a placeholder or a hand-made secret, matched case-insensitively anywhere.
/// Each has at least six letters or digits (or a `-`/`_`, which base64 and hex never print), so
/// that random output contains one only by rare chance (about one base64 secret in five
/// million; the operator then draws another).
const PLACEHOLDERS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "s3cr3t",
    "password",
    "passw0rd",
    "p4ssw0rd",
    "example",
    "your-",
    "your_",
    "yoursecret",
    "placeholder",
    "replace",
    "default",
    "sample",
    "insecure",
    "opsboard",
    "qwerty",
    "letmein",
    "12345678",
    "abcdefgh",
];

/// Why `secret` is too weak for production, or `None` when it looks random enough.
pub fn weakness(secret: &str) -> Option<String> {
    let bytes = secret.len();
    if bytes < MIN_SECRET_BYTES {
        return Some(format!(
            "it is {bytes} bytes long; it must be at least {MIN_SECRET_BYTES} bytes"
        ));
    }
    if secret.trim().is_empty() {
        return Some("it is only whitespace".into());
    }
    let chars: Vec<char> = secret.chars().collect();
    let mut counts: HashMap<char, usize> = HashMap::new();
    for &c in &chars {
        *counts.entry(c).or_default() += 1;
    }
    if counts.len() == 1 {
        return Some("it repeats one character".into());
    }
    if let Some(period) = shortest_period(&chars) {
        return Some(format!(
            "it repeats a pattern of {period} character{}",
            if period == 1 { "" } else { "s" }
        ));
    }
    let lower = secret.to_lowercase();
    if let Some(word) = PLACEHOLDERS.iter().find(|w| lower.contains(*w)) {
        return Some(format!("it contains `{word}`, which marks a placeholder"));
    }
    if counts.len() < MIN_DISTINCT_CHARS {
        return Some(format!("it uses only {} distinct characters", counts.len()));
    }
    let total = chars.len() as f64;
    let bits: f64 = counts
        .values()
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum();
    if bits < MIN_BITS_PER_CHAR {
        return Some(format!(
            "its characters carry only {bits:.1} bits each (at least {MIN_BITS_PER_CHAR:.1} \
             expected of a random secret)"
        ));
    }
    None
}

/// The length of the shortest unit whose repetition makes up `chars` (the last repetition may
/// be cut short), when the unit repeats at least twice; `None` for a string without a period.
fn shortest_period(chars: &[char]) -> Option<usize> {
    (1..=chars.len() / 2).find(|&p| chars.iter().skip(p).zip(chars).all(|(a, b)| a == b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use rand::rngs::StdRng;
    use rand::{RngCore, SeedableRng};

    fn random(rng: &mut StdRng, bytes: usize) -> Vec<u8> {
        let mut buffer = vec![0u8; bytes];
        rng.fill_bytes(&mut buffer);
        buffer
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn what_openssl_rand_prints_always_passes() {
        // The same encodings as `openssl rand -base64 32|48` and `openssl rand -hex 32`,
        // many times over, so that a heuristic that trips on chance would show here. Seeded, so
        // the test is the same every run.
        let mut rng = StdRng::seed_from_u64(9);
        for _ in 0..2_000 {
            for secret in [
                STANDARD.encode(random(&mut rng, 32)),
                STANDARD.encode(random(&mut rng, 48)),
                hex(&random(&mut rng, 32)),
            ] {
                assert_eq!(weakness(&secret), None, "{secret}");
            }
        }
    }

    #[test]
    fn real_generated_secrets_pass() {
        // Printed by openssl on this machine.
        let good = [
            // openssl rand -base64 32
            "oo59ZIHnIX6xAaP1m8ZSFBLcqkjVgDgbreXr3cTI+KA=",
            "sNWSBKMr1YIk+pr1ehoiNjfBquOwOdd7dW76sP9mfYk=",
            // openssl rand -base64 48
            "25LF1FikNzq9eq2Yzdzj0kzjmBU60Jg2rH+lEqWY82MJznv+Rh5/4tyS2TsYSqCB",
            // openssl rand -hex 32
            "b6eea4e5b6db4f2355b7aa33f56299f2a9c64a9012cd971b8cd187c67008fc1f",
            // a long passphrase of unrelated words
            "orbit-tulip-gravel-muffin-lantern-quasar-velvet",
        ];
        for secret in good {
            assert_eq!(weakness(secret), None, "{secret}");
        }
    }

    #[test]
    fn weak_secrets_are_refused_with_a_reason() {
        let bad = [
            ("short-but-random-Zq8", "bytes long"),
            (&" ".repeat(32), "whitespace"),
            (&"\t \n".repeat(16), "whitespace"),
            (&"a".repeat(32), "one character"),
            (&"a".repeat(64), "one character"),
            (&"ab".repeat(16), "pattern of 2"),
            (&"abc123".repeat(6), "pattern of 6"),
            (&"0123456789abcdef".repeat(2), "pattern of 16"),
            ("changeme-changeme-changeme-changeme-", "pattern of 9"),
            ("changeme-changeme-changeme-changeme!", "changeme"),
            ("changeme-please-before-going-live-now", "changeme"),
            ("a-production-secret-of-at-least-32-bytes", "secret"),
            ("my-super-SECRET-signing-key-for-jwt-tokens", "secret"),
            ("your-256-bit-key-goes-here-right-now-ok", "your-"),
            ("Password1Password2Password3Password4", "password"),
            ("https://opsboard.example.org/jwt-signing-key", "example"),
            ("xyzzy-xyzzy-qwerty-plugh-plugh-frobozz", "qwerty"),
            ("aaaabbbbaaaabbbbaaaabbbbaaaabbbbababab", "distinct"),
            ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaqzxwvutsrponm", "bits"),
        ];
        for (secret, reason) in bad {
            let why = weakness(secret).unwrap_or_else(|| panic!("accepted {secret:?}"));
            assert!(why.contains(reason), "{secret:?}: {why}");
        }
    }
}
