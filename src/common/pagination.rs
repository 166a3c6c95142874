//! Keyset (cursor) pagination shared by every list: `?limit=` (default 50, max 500) and
//! `?cursor=`, a body `{items, next_cursor}` and a `Link: <…>; rel="next"` header.
//!
//! A cursor is opaque to clients: base64url of the last row's sort key. Keyset pages stay
//! correct while rows are inserted, unlike offsets, which a sync script would trip over.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::error::ApiError;

/// Page size when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size a client may ask for.
pub const MAX_LIMIT: i64 = 500;

/// The paging parameters of every list.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// A `limit` parameter as a page size: the default when absent, 400 naming `limit` when it is
/// outside 1–[`MAX_LIMIT`].
pub fn page_size(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad_field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

impl PageParams {
    /// The page size, validated.
    pub fn limit(&self) -> Result<i64, ApiError> {
        page_size(self.limit)
    }

    /// The decoded cursor, if any.
    pub fn after<K: for<'de> Deserialize<'de>>(&self) -> Result<Option<K>, ApiError> {
        // An empty cursor is the first page, as with no cursor at all.
        let Some(cursor) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let bad = || ApiError::bad_field("cursor", "is not a cursor returned by this list");
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }

    /// The [`SortCursor`] of a list sorted by `sort`, if a cursor was sent: 400 naming
    /// `cursor` when it is none of this list's, or was made for another sort.
    pub fn after_sorted(&self, sort: impl std::fmt::Debug) -> Result<Option<SortCursor>, ApiError> {
        self.after::<SortCursor>()?
            .map(|c| c.for_sort(sort))
            .transpose()
    }
}

/// Encodes a sort key as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page, in the list's order.
    pub items: Vec<T>,
    /// Pass this as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells that more exist.
    pub fn from_rows<K: Serialize>(
        mut rows: Vec<T>,
        limit: i64,
        key_of: impl Fn(&T) -> K,
    ) -> Page<T> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|last| encode_cursor(&key_of(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }

    /// Converts the items, keeping the cursor.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// The cursor of a sorted list: the sort it was made for, the last row's sort value (as text)
/// and its id, which breaks ties so that no row is skipped or repeated between pages.
#[derive(Debug, Serialize, Deserialize)]
pub struct SortCursor {
    /// The sort of the list the cursor was made for: a value of one sort means nothing in
    /// another (a rank is no priority), so a cursor is accepted with its own sort only.
    #[serde(default)]
    pub s: String,
    /// The sort value of the last row of the previous page.
    pub v: String,
    /// The id of that row.
    pub id: i64,
}

impl SortCursor {
    /// The cursor after the row with sort value `v` and id `id` in a list sorted by `sort`.
    pub fn new(sort: impl std::fmt::Debug, v: String, id: i64) -> Self {
        SortCursor {
            s: format!("{sort:?}"),
            v,
            id,
        }
    }

    /// This cursor, if it was made for a list sorted by `sort`; else a 400 naming `cursor`.
    pub fn for_sort(self, sort: impl std::fmt::Debug) -> Result<Self, ApiError> {
        if self.s == format!("{sort:?}") {
            Ok(self)
        } else {
            Err(ApiError::bad_field(
                "cursor",
                "was returned for another `sort`; keep the sort while paging, or start again \
                 without a cursor",
            ))
        }
    }
}

/// A timestamp as a cursor value, to the microsecond.
pub fn format_cursor_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()
}

/// The timestamp of a cursor value written by [`format_cursor_time`].
pub fn parse_cursor_time(v: &str) -> Option<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// Orders a boxed diesel query by `$value` then `$id`, ascending or descending, and keeps only
/// the rows after `$after` (`Option<(value, id)>`): one way to do keyset paging for every list.
#[macro_export]
macro_rules! keyset_order {
    ($query:expr, $value:expr, $id:expr, $desc:expr, $after:expr) => {{
        let mut query = $query;
        let desc: bool = $desc;
        if let Some((v, id)) = $after {
            query = if desc {
                query.filter($value.lt(v.clone()).or($value.eq(v).and($id.lt(id))))
            } else {
                query.filter($value.gt(v.clone()).or($value.eq(v).and($id.gt(id))))
            };
        }
        if desc {
            query.order(($value.desc(), $id.desc()))
        } else {
            query.order(($value.asc(), $id.asc()))
        }
    }};
}
