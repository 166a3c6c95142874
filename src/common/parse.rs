//! Parsing what a client sent, naming the field of every mistake: JSON bodies (a type error is
//! a 422 for its field, malformed JSON a 400), query strings (a 400 for the parameter), and the
//! serde helpers that request types use (`null` versus absent, lists with a bound).

use serde::de::DeserializeOwned;

use crate::common::error::{ApiError, FieldError};

/// Parses a JSON document, naming the field of any type error.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize(deserializer) {
        Ok(value) => Ok(value),
        Err(error) => {
            let path = error.path().to_string();
            let inner = error.into_inner();
            let message = strip_position(&inner.to_string());
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let (field, message) = name_the_field(&path, &message);
                    Err(ApiError::Validation(vec![FieldError::new(field, message)]))
                }
                _ => Err(ApiError::BadRequest {
                    detail: format!(
                        "The request body is not valid JSON: {message} (line {}, column {}).",
                        inner.line(),
                        inner.column()
                    ),
                    errors: Vec::new(),
                }),
            }
        }
    }
}

/// serde reports a missing or unknown field at the parent's path; name the field itself.
fn name_the_field(path: &str, message: &str) -> (String, String) {
    let quoted = |prefix: &str| {
        message
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_string)
    };
    let join = |name: String| {
        if path == "." || path.is_empty() {
            name
        } else {
            format!("{path}.{name}")
        }
    };
    if let Some(name) = quoted("missing field `") {
        return (join(name), "is required".to_string());
    }
    if let Some(name) = quoted("unknown field `") {
        // Here serde's path already ends with the unknown field itself.
        let field = if path.ends_with(&name) {
            path.to_string()
        } else {
            join(name)
        };
        let writable = message
            .split("expected one of ")
            .nth(1)
            .unwrap_or("")
            .to_string();
        let detail = if writable.is_empty() {
            "is not a field that can be set here".to_string()
        } else {
            format!("is not a field that can be set here; writable fields: {writable}")
        };
        return (field, detail);
    }
    let field = if path == "." {
        "body".to_string()
    } else {
        path.to_string()
    };
    (field, message.to_string())
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Parses a query string, naming the parameter of any error. A parameter given more than once
/// (`category=todo&category=done`) reads as its values joined by commas (`todo,done`), which is
/// what a list parameter ([`comma_list`]) takes; any other parameter then fails to parse and
/// is named.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        match pairs.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(&value);
            }
            None => pairs.push((name.into_owned(), value.into_owned())),
        }
    }
    let encoded = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(encoded.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let message = error.into_inner().to_string();
        let (field, message) = name_the_field(&path, &message);
        let field = if field == "body" {
            "query".to_string()
        } else {
            field
        };
        ApiError::bad_field(field, message)
    })
}

/// Serde helper for a query parameter that takes several values, comma-separated or repeated
/// (`category=todo,in_progress`): each value parses as `T`, an empty value is an error, at
/// most 20 values. Use with `#[serde(default, deserialize_with =
/// "crate::common::parse::comma_list")]` on an `Option<Vec<T>>`, and document the parameter
/// with `#[param(value_type = Option<Vec<T>>, style = Form, explode = false)]`.
pub fn comma_list<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::{Error, IntoDeserializer};
    let Some(text) = <Option<String> as serde::Deserialize>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let mut values = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(D::Error::custom("holds an empty value"));
        }
        if values.len() == 20 {
            return Err(D::Error::custom("takes at most 20 values"));
        }
        let value = T::deserialize(part.into_deserializer())
            .map_err(|e: serde::de::value::Error| D::Error::custom(e.to_string()))?;
        values.push(value);
    }
    Ok(Some(values))
}

/// Serde helper for PATCH bodies: tells an absent field (`None`) from an explicit `null`
/// (`Some(None)`, "remove the value"). Use with `#[serde(default, deserialize_with = …)]`.
pub fn double_option<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// Serde helper for a list in a request body: at most `N` entries, else a 422 naming the
/// field ("must hold at most N entries"). Parsing stops at entry `N + 1`, so an oversized list
/// costs no memory. Pair it with `#[schema(max_items = N)]`, the same number, so that the spec
/// says what the server enforces: `#[serde(default, deserialize_with =
/// "crate::common::parse::at_most::<20, _, _>")]`.
pub fn at_most<'de, const N: usize, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <AtMost<T, N> as serde::Deserialize>::deserialize(deserializer).map(|list| list.0)
}

/// [`at_most`] for an optional list (`null` or absent is `None`), as PATCH bodies have them;
/// use with `#[serde(default, deserialize_with = "crate::common::parse::at_most_or_null::<N, _, _>")]`.
pub fn at_most_or_null<'de, const N: usize, D, T>(
    deserializer: D,
) -> Result<Option<Vec<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<AtMost<T, N>> as serde::Deserialize>::deserialize(deserializer)
        .map(|list| list.map(|l| l.0))
}

/// A list of at most `N` entries, read by [`at_most`].
struct AtMost<T, const N: usize>(Vec<T>);

impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::Deserialize<'de> for AtMost<T, N> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries<T, const N: usize>(std::marker::PhantomData<T>);

        impl<'de, T: serde::Deserialize<'de>, const N: usize> serde::de::Visitor<'de> for Entries<T, N> {
            type Value = AtMost<T, N>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "a list of at most {N} entries")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(N));
                while let Some(entry) = seq.next_element()? {
                    if entries.len() == N {
                        return Err(serde::de::Error::custom(format!(
                            "must hold at most {N} entries"
                        )));
                    }
                    entries.push(entry);
                }
                Ok(AtMost(entries))
            }
        }

        deserializer.deserialize_seq(Entries::<T, N>(std::marker::PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default, deserialize_with = "crate::common::parse::at_most::<3, _, _>")]
        tags: Vec<String>,
        #[serde(
            default,
            deserialize_with = "crate::common::parse::at_most_or_null::<2, _, _>"
        )]
        refs: Option<Vec<i64>>,
    }

    fn field_error(body: &str) -> Option<FieldError> {
        match parse_json::<Body>(body.as_bytes()) {
            Err(ApiError::Validation(mut errors)) => errors.pop(),
            other => panic!("expected a 422 for {body}: {other:?}"),
        }
    }

    #[test]
    fn lists_over_their_limit_are_422_naming_the_field() {
        let ok = parse_json::<Body>(br#"{"tags": ["a", "b", "c"], "refs": [1, 2]}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((ok.tags.len(), ok.refs.map(|r| r.len())), (3, Some(2)));
        let absent = parse_json::<Body>(b"{}").unwrap_or_else(|e| panic!("{e:?}"));
        assert!(absent.tags.is_empty() && absent.refs.is_none());
        let null = parse_json::<Body>(br#"{"refs": null}"#).unwrap_or_else(|e| panic!("{e:?}"));
        assert!(null.refs.is_none());
        assert_eq!(
            field_error(r#"{"tags": ["a", "b", "c", "d"]}"#),
            Some(FieldError::new("tags", "must hold at most 3 entries"))
        );
        assert_eq!(
            field_error(r#"{"refs": [1, 2, 3]}"#),
            Some(FieldError::new("refs", "must hold at most 2 entries"))
        );
        // An entry of the wrong type is still named by its index.
        assert_eq!(
            field_error(r#"{"tags": ["a", 1]}"#).map(|e| e.field),
            Some("tags[1]".to_string())
        );
    }
}
