//! Text input, checked the same way everywhere: nothing PostgreSQL cannot store, nothing
//! absurdly long, and free-text search patterns escaped for `LIKE`.

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
