//! How bad an incident is. SLA policies are set per severity, and incidents carry one.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How bad an incident is; `s1` is the worst (and sorts first).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Critical: the service is down.
    S1,
    /// Major: an important function fails, without a workaround.
    S2,
    /// Minor: something fails, with a workaround.
    S3,
    /// Cosmetic, or a question.
    S4,
}

text_enum!(Severity { S1 => "s1", S2 => "s2", S3 => "s3", S4 => "s4" });
