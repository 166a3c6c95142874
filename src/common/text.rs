//! Text input, checked the same way everywhere: nothing PostgreSQL cannot store, nothing
//! absurdly long, and free-text search patterns escaped for `LIKE`.
//!
//! The vocabulary of text fields: [`required_text`], [`optional_text`], [`tag_list`],
//! [`http_url`] and [`normalize_email`] each check one field and push what is wrong onto the
//! request's `errors`, so that every field error of a request lands in one 422.

use crate::common::error::{ApiError, FieldError};

/// Rejects text that PostgreSQL cannot store (NUL) or that is absurdly long, for both engines
/// alike; `errors` collects the problem under `field`.
pub fn check_text(errors: &mut Vec<FieldError>, field: &str, value: &str, max_chars: usize) {
    if value.contains('\0') {
        errors.push(FieldError::new(field, "must not contain NUL characters"));
    } else if value.chars().count() > max_chars {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
}

/// `value` trimmed, or `None` when it is absent or blank: how an optional text field reads.
pub fn trimmed(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Rejects blank text ("must not be empty") under `field`; the text itself is kept as it is.
pub fn check_not_blank(errors: &mut Vec<FieldError>, field: &str, value: &str) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(field, "must not be empty"));
    }
}

/// A required text field: trimmed, not empty, and passing [`check_text`] with `max_chars`.
/// Returns the trimmed text.
pub fn required_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: &str,
    max_chars: usize,
) -> String {
    let value = value.trim().to_string();
    check_not_blank(errors, field, &value);
    check_text(errors, field, &value, max_chars);
    value
}

/// An optional text field: trimmed, blank reads as `None`, anything else must pass
/// [`check_text`] with `max_chars`.
pub fn optional_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<&str>,
    max_chars: usize,
) -> Option<String> {
    let value = trimmed(value);
    if let Some(v) = &value {
        check_text(errors, field, v, max_chars);
    }
    value
}

/// The rule for a list of tags (labels of items, tags of services): each entry trimmed and
/// lower-cased, 1 to `max_chars` of `a-z`, `0-9`, `-`, `_`, `.`; duplicates dropped; at most
/// `max_entries` entries.
#[derive(Debug, Clone, Copy)]
pub struct TagRule {
    /// What the entries are called in the message for too many, such as `labels`.
    pub noun: &'static str,
    /// The longest entry, in characters.
    pub max_chars: usize,
    /// The most entries the list may hold (after dropping duplicates).
    pub max_entries: usize,
}

/// Checks a tag list under `field` (each bad entry as `field[i]`) by `rule`; returns the
/// valid entries, normalized, without duplicates, sorted.
pub fn tag_list(
    errors: &mut Vec<FieldError>,
    field: &str,
    values: &[String],
    rule: TagRule,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in values.iter().enumerate() {
        let tag = raw.trim().to_lowercase();
        let valid = !tag.is_empty()
            && tag.len() <= rule.max_chars
            && tag
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
        if !valid {
            errors.push(FieldError::new(
                format!("{field}[{i}]"),
                format!(
                    "must be 1–{} lower-case letters, digits, `-`, `_` or `.`",
                    rule.max_chars
                ),
            ));
        } else if !out.contains(&tag) {
            out.push(tag);
        }
    }
    if out.len() > rule.max_entries {
        errors.push(FieldError::new(
            field,
            format!("must hold at most {} {}", rule.max_entries, rule.noun),
        ));
    }
    out.sort();
    out
}

/// Longest URL a field takes, in bytes.
pub const MAX_URL_LEN: usize = 2000;

/// Whether `url` is an `http://` or `https://` address with something after the scheme, at
/// most [`MAX_URL_LEN`] long, without white space or control characters.
pub fn is_http_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty())
        && url.len() <= MAX_URL_LEN
        && !url.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// An optional URL field: trimmed, blank reads as `None`, anything else must pass
/// [`is_http_url`].
pub fn http_url(errors: &mut Vec<FieldError>, field: &str, value: Option<&str>) -> Option<String> {
    let url = trimmed(value);
    if url.as_deref().is_some_and(|u| !is_http_url(u)) {
        errors.push(FieldError::new(
            field,
            "must be an http:// or https:// address",
        ));
    }
    url
}

/// The LIKE pattern for a free-text `q` parameter: trimmed, lower-cased, with `%`, `_` and `\`
/// escaped (use with `ESCAPE '\'`), wrapped in `%…%`. `None` when `q` is absent or blank; a 400
/// naming `q` when it cannot be searched.
pub fn search_pattern(q: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    check_text(&mut errors, "q", q, 200);
    if let Some(e) = errors.pop() {
        return Err(ApiError::bad_field(e.field, e.message));
    }
    Ok(Some(format!("%{}%", escape_like(&q.to_lowercase()))))
}

/// Escapes `%`, `_` and `\` for a LIKE pattern with `ESCAPE '\'`.
pub fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Longest e-mail address (RFC 5321).
pub const MAX_EMAIL_CHARS: usize = 254;

/// The stored form of an e-mail address: trimmed and lower-case. Logins look users up (and are
/// throttled) by it, so that `Anna@Example.org ` is the same account as `anna@example.org`.
pub fn canonical_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Normalizes and checks an e-mail address; the stored form is lower-case.
pub fn normalize_email(field: &str, email: &str, errors: &mut Vec<FieldError>) -> String {
    let email = canonical_email(email);
    let valid = email.len() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if !valid {
        errors.push(FieldError::new(
            field,
            "must be an e-mail address such as name@example.org",
        ));
    }
    email
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(errors: &[FieldError]) -> Vec<(String, String)> {
        errors
            .iter()
            .map(|e| (e.field.to_string(), e.message.to_string()))
            .collect()
    }

    fn one(field: &str, message: &str) -> Vec<(String, String)> {
        vec![(field.to_string(), message.to_string())]
    }

    #[test]
    fn required_text_trims_and_rejects_blank_and_long_text() {
        let mut errors = Vec::new();
        assert_eq!(
            required_text(&mut errors, "name", "  Bauamt ", 10),
            "Bauamt"
        );
        assert!(errors.is_empty());

        assert_eq!(required_text(&mut errors, "name", " \t ", 10), "");
        assert_eq!(messages(&errors), one("name", "must not be empty"));

        let mut errors = Vec::new();
        required_text(&mut errors, "title", &"ä".repeat(11), 10);
        assert_eq!(
            messages(&errors),
            one("title", "must be at most 10 characters")
        );

        let mut errors = Vec::new();
        required_text(&mut errors, "title", &"ä".repeat(10), 10);
        assert!(errors.is_empty(), "the limit counts characters, not bytes");

        let mut errors = Vec::new();
        required_text(&mut errors, "title", "a\0b", 10);
        assert_eq!(
            messages(&errors),
            one("title", "must not contain NUL characters")
        );
    }

    #[test]
    fn check_not_blank_keeps_the_text() {
        let mut errors = Vec::new();
        check_not_blank(&mut errors, "body", "  text\n");
        assert!(errors.is_empty());
        check_not_blank(&mut errors, "body", "\n ");
        assert_eq!(messages(&errors), one("body", "must not be empty"));
    }

    #[test]
    fn optional_text_reads_blank_as_absent() {
        let mut errors = Vec::new();
        assert_eq!(optional_text(&mut errors, "topic", None, 5), None);
        assert_eq!(optional_text(&mut errors, "topic", Some("  "), 5), None);
        assert_eq!(
            optional_text(&mut errors, "topic", Some(" Bauen "), 5).as_deref(),
            Some("Bauen")
        );
        assert!(errors.is_empty());
        assert_eq!(
            optional_text(&mut errors, "topic", Some("Wohnen"), 5).as_deref(),
            Some("Wohnen")
        );
        assert_eq!(
            messages(&errors),
            one("topic", "must be at most 5 characters")
        );
    }

    const LABELS: TagRule = TagRule {
        noun: "labels",
        max_chars: 5,
        max_entries: 2,
    };

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn tag_list_normalizes_deduplicates_and_sorts() {
        let mut errors = Vec::new();
        let tags = tag_list(
            &mut errors,
            "labels",
            &strings(&[" Zz ", "a-1", "zz"]),
            LABELS,
        );
        assert_eq!(tags, strings(&["a-1", "zz"]));
        assert!(errors.is_empty());
    }

    #[test]
    fn tag_list_names_each_bad_entry_and_too_many() {
        let mut errors = Vec::new();
        let tags = tag_list(
            &mut errors,
            "tags",
            &strings(&["ok", "not ok", "", "toolong", "b", "c"]),
            TagRule {
                noun: "tags",
                ..LABELS
            },
        );
        assert_eq!(tags, strings(&["b", "c", "ok"]));
        let bad = "must be 1–5 lower-case letters, digits, `-`, `_` or `.`";
        assert_eq!(
            messages(&errors),
            vec![
                ("tags[1]".to_string(), bad.to_string()),
                ("tags[2]".to_string(), bad.to_string()),
                ("tags[3]".to_string(), bad.to_string()),
                ("tags".to_string(), "must hold at most 2 tags".to_string()),
            ]
        );
    }

    #[test]
    fn http_url_takes_http_and_https_only() {
        let mut errors = Vec::new();
        assert_eq!(http_url(&mut errors, "url", None), None);
        assert_eq!(http_url(&mut errors, "url", Some(" ")), None);
        assert_eq!(
            http_url(&mut errors, "url", Some(" https://example.org/a ")).as_deref(),
            Some("https://example.org/a")
        );
        assert!(http_url(&mut errors, "url", Some("http://x")).is_some());
        assert!(errors.is_empty());

        let long = format!("https://{}", "x".repeat(MAX_URL_LEN));
        for bad in [
            "ftp://x",
            "https://",
            "example.org",
            "https://a b",
            long.as_str(),
        ] {
            let mut errors = Vec::new();
            http_url(&mut errors, "refs[0].url", Some(bad));
            assert_eq!(
                messages(&errors),
                one("refs[0].url", "must be an http:// or https:// address"),
                "{bad}"
            );
        }
    }

    #[test]
    fn normalize_email_lower_cases_and_checks_the_shape() {
        let mut errors = Vec::new();
        assert_eq!(
            normalize_email("email", " Anna@Example.ORG ", &mut errors),
            "anna@example.org"
        );
        assert!(errors.is_empty());
        for bad in [
            "anna",
            "@example.org",
            "anna@example",
            "a@b@c.de",
            "an na@x.de",
            "a@.de",
        ] {
            let mut errors = Vec::new();
            normalize_email("contact_email", bad, &mut errors);
            assert_eq!(
                messages(&errors),
                one(
                    "contact_email",
                    "must be an e-mail address such as name@example.org"
                ),
                "{bad}"
            );
        }
    }
}
