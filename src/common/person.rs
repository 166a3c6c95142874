//! A person as other records show them: in RACI lists of services and items, as accountable
//! people and as the hand-over's replacement.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A person as shown in RACI lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PersonRef {
    /// The user's id.
    pub id: i64,
    /// Their display name.
    pub display_name: String,
    /// Their e-mail.
    pub email: String,
    /// Whether they may log in.
    pub active: bool,
}
