//! Optimistic concurrency: every mutable row has an integer `version`, sent as `ETag`; a write
//! names the version it expects ([`Precondition`], from `If-Match`) and gets 412 with the current
//! version when the row has moved on. A write without one applies to whatever is current.

use crate::common::error::ApiError;

/// The version a write expects: `None` (no `If-Match`, or `*`) accepts any.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Precondition(pub Option<i64>);

impl Precondition {
    /// No expectation: last writer wins.
    pub const ANY: Precondition = Precondition(None);

    /// Fails with 412 when a version was named and it is not `current`.
    pub fn check(self, current: i64) -> Result<(), ApiError> {
        match self.0 {
            Some(expected) if expected != current => Err(ApiError::PreconditionFailed {
                current_version: current,
            }),
            _ => Ok(()),
        }
    }
}

/// What a versioned write that changed no row answers: 412 with the version the row has now,
/// or 404 when the row is gone.
pub fn stale(current: Option<i64>) -> ApiError {
    match current {
        Some(current_version) => ApiError::PreconditionFailed { current_version },
        None => ApiError::NotFound("The resource does not exist.".into()),
    }
}

/// The one versioned write: sets `$changes`, the next version and `updated_at` on row `$id` of
/// `$table` if its version is still `$expected`; otherwise 412 with the version the row has
/// now, or 404 when it is gone. Evaluates to `Result<i64, ApiError>` with the new version.
///
/// `$table.$column` names a second version column (a service's `raci_version`). Callers read
/// `$expected` (a plain value: it is used more than once) under the row's lock ([`crate::common::db::lock`]), so a write without
/// `If-Match` never meets this 412; it guards the writes that a lock does not cover. A macro
/// because diesel's changeset types differ at every call and their bounds do not cross the
/// multi-backend connection as one generic function.
#[macro_export]
macro_rules! versioned_write {
    // Only the version moves: the change is in rows that hang off this one (RACI, lists).
    ($conn:expr, $table:ident . $version:ident, $id:expr, $expected:expr $(,)?) => {
        $crate::versioned_write!(@write $conn, $table, $version, $id, $expected, (
            $table::$version.eq($expected + 1),
            $table::updated_at.eq($crate::common::db::now()),
        ))
    };
    ($conn:expr, $table:ident, $id:expr, $expected:expr $(,)?) => {
        $crate::versioned_write!($conn, $table.version, $id, $expected)
    };
    ($conn:expr, $table:ident, $id:expr, $expected:expr, $changes:expr $(,)?) => {
        $crate::versioned_write!($conn, $table.version, $id, $expected, $changes)
    };
    ($conn:expr, $table:ident . $version:ident, $id:expr, $expected:expr, $changes:expr $(,)?) => {
        $crate::versioned_write!(@write $conn, $table, $version, $id, $expected, (
            $changes,
            $table::$version.eq($expected + 1),
            $table::updated_at.eq($crate::common::db::now()),
        ))
    };
    (@write $conn:expr, $table:ident, $version:ident, $id:expr, $expected:expr, $set:expr) => {{
        use diesel::prelude::*;
        let conn: &mut $crate::common::db::DbConnection = $conn;
        let (id, expected): (i64, i64) = ($id, $expected);
        (|| -> Result<i64, $crate::common::error::ApiError> {
            let written = diesel::update($table::table)
                .filter($table::id.eq(id).and($table::$version.eq(expected)))
                .set($set)
                .execute(conn)?;
            if written == 1 {
                return Ok(expected + 1);
            }
            let current = $table::table
                .find(id)
                .select($table::$version)
                .first::<i64>(conn)
                .optional()?;
            Err($crate::common::version::stale(current))
        })()
    }};
}

/// The versioned delete: removes row `$id` of `$table` if its version is still `$expected`,
/// else 412 with the current version (404 when it is gone already). `Result<(), ApiError>`.
#[macro_export]
macro_rules! versioned_delete {
    ($conn:expr, $table:ident, $id:expr, $expected:expr $(,)?) => {{
        use diesel::prelude::*;
        let conn: &mut $crate::common::db::DbConnection = $conn;
        let (id, expected): (i64, i64) = ($id, $expected);
        (|| -> Result<(), $crate::common::error::ApiError> {
            let deleted = diesel::delete(
                $table::table.filter($table::id.eq(id).and($table::version.eq(expected))),
            )
            .execute(conn)?;
            if deleted == 1 {
                return Ok(());
            }
            let current = $table::table
                .find(id)
                .select($table::version)
                .first::<i64>(conn)
                .optional()?;
            Err($crate::common::version::stale(current))
        })()
    }};
}
