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
