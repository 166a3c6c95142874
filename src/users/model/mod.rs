//! Users: the stored row, the API shape and the forms for creating and changing one, with
//! their checks. The reads are in `queries`, the writes (create, update, (de)activate) in
//! `writes`.

mod queries;
mod writes;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::actor::Role;
use crate::common::db::schema::users;
use crate::common::error::{ApiError, FieldError};
use crate::common::password;
use crate::common::text::required_text;
pub use crate::common::text::{MAX_EMAIL_CHARS, canonical_email, normalize_email};

/// Longest display name.
pub const MAX_NAME_CHARS: usize = 100;

/// A user as stored, password hash included; never serialized.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct UserRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    organization_id: Option<i64>,
    password_hash: String,
    active: bool,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
    auth_epoch: i64,
}

/// A person with a login.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 7, "email": "anna.schulz@example.org", "display_name": "Anna Schulz",
    "role": "member", "organization_id": null, "active": true,
    "created_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T08:00:00Z", "version": 1
}))]
pub struct User {
    /// Numeric id, stable for ever.
    pub id: i64,
    /// Login e-mail, unique regardless of case; stored lower-cased.
    pub email: String,
    /// Name shown to others.
    pub display_name: String,
    /// Global role.
    pub role: Role,
    /// The stakeholder organization the person belongs to, if any.
    pub organization_id: Option<i64>,
    /// Whether the person may log in. Deactivated users keep their history.
    pub active: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

impl UserRow {
    fn into_user(self) -> Result<User, ApiError> {
        let role = Role::parse(&self.role).ok_or_else(|| {
            ApiError::internal(format!("user {} has unknown role {}", self.id, self.role))
        })?;
        Ok(User {
            id: self.id,
            email: self.email,
            display_name: self.display_name,
            role,
            organization_id: self.organization_id,
            active: self.active,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            version: self.version,
        })
    }
}

/// A user's login data: the stored argon2id hash to verify against, and the token epoch that a
/// token issued now carries (see [`User::find_with_auth_epoch`]).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// Its argon2id PHC string.
    pub password_hash: String,
    /// Its present token epoch.
    pub auth_epoch: i64,
}

/// The body of `POST /api/v1/users`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "email": "anna.schulz@example.org", "display_name": "Anna Schulz",
    "role": "member", "password": "correct horse battery staple"
}))]
pub struct NewUser {
    /// Login e-mail; unique regardless of case.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Name shown to others, 1–100 characters, not only blanks.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub display_name: String,
    /// Global role.
    pub role: Role,
    /// 12 to 256 characters.
    #[schema(format = Password, min_length = 12, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub password: String,
}

/// The body of `PATCH /api/v1/users/{id}`: only the fields present change. Admins may change
/// everything; other users only their own `display_name` and `password` (with
/// `current_password`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"display_name": "Anna Schulz-Meyer"}))]
pub struct UserChanges {
    /// New login e-mail (admins only).
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// New display name, 1–100 characters, not only blanks.
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub display_name: Option<String>,
    /// New role (admins only).
    pub role: Option<Role>,
    /// The organization the person belongs to (admins only); `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub organization_id: Option<Option<i64>>,
    /// New password, 12 to 256 characters.
    #[schema(format = Password, min_length = 12, max_length = 256, pattern = r"^[^\u0000]*$")]
    pub password: Option<String>,
    /// The caller's present password; required when users change their own password.
    #[schema(format = Password)]
    pub current_password: Option<String>,
}

/// Filters of `GET /api/v1/users`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Only users with this role.
    pub role: Option<Role>,
    /// Only active (`true`) or deactivated (`false`) users.
    pub active: Option<bool>,
    /// Case-insensitive search in e-mail and display name.
    pub q: Option<String>,
    /// Only users changed at or after this instant: an RFC 3339 time, or a span back
    /// from now (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub updated_since: Option<crate::common::query::Since>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl NewUser {
    /// Checks the form, naming every invalid field: the normalized e-mail and display name.
    pub fn check(&self) -> Result<(String, String), ApiError> {
        let mut errors = Vec::new();
        let email = normalize_email("email", &self.email, &mut errors);
        let display_name = check_display_name(&self.display_name, &mut errors);
        if let Err(e) = password::check_strength("password", &self.password) {
            errors.push(e);
        }
        ApiError::from_fields(errors)?;
        Ok((email, display_name))
    }
}

/// A new password, prepared before the transaction that stores it: argon2 takes tens of
/// milliseconds, and no transaction (on SQLite: the write lock) should wait for it.
#[derive(Debug, Clone)]
pub struct PasswordChange {
    /// The new password's argon2id hash.
    pub new_hash: String,
    /// For users changing their own password: the stored hash their `current_password` was
    /// verified against. The change is refused (409) if the stored hash changed meanwhile.
    pub verified_against: Option<String>,
}

fn check_display_name(name: &str, errors: &mut Vec<FieldError>) -> String {
    required_text(errors, "display_name", name, MAX_NAME_CHARS)
}
