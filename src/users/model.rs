//! Users: the stored row, the API shape, the forms for creating and changing one, and the
//! queries, side by side.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::common::actor::{Actor, Role};
use crate::common::db::schema::users;
use crate::common::db::{self, DbConnection, Lock, lower, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::password;
use crate::common::text::required_text;
pub use crate::common::text::{MAX_EMAIL_CHARS, canonical_email, normalize_email};
use crate::common::version::Precondition;

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
    /// Only users changed at or after this instant (RFC 3339), for sync scripts.
    pub updated_since: Option<DateTime<Utc>>,
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

impl User {
    /// The user with this id.
    pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<User> {
        Self::find_with_auth_epoch(conn, id).map(|(user, _)| user)
    }

    /// The user with this id and their token epoch, for the caller extractor: a token is
    /// valid only while it carries the epoch the user has now.
    pub fn find_with_auth_epoch(conn: &mut DbConnection, id: i64) -> QueryResult<(User, i64)> {
        let row = users::table
            .find(id)
            .select(UserRow::as_select())
            .first(conn)?;
        let epoch = row.auth_epoch;
        let user = row
            .into_user()
            .map_err(|_| diesel::result::Error::NotFound)?;
        Ok((user, epoch))
    }

    /// The stored password hash of a user, to verify a `current_password` against outside a
    /// transaction.
    pub fn password_hash(conn: &mut DbConnection, id: i64) -> Result<String, ApiError> {
        Ok(users::table
            .find(id)
            .select(users::password_hash)
            .first(conn)?)
    }

    /// What a login needs of the account with this e-mail (any case), if there is one.
    pub fn find_for_login(
        conn: &mut DbConnection,
        email: &str,
    ) -> Result<Option<Credentials>, ApiError> {
        let row = users::table
            .filter(users::email.eq(canonical_email(email)))
            .select(UserRow::as_select())
            .first(conn)
            .optional()?;
        match row {
            Some(row) => {
                let password_hash = row.password_hash.clone();
                let auth_epoch = row.auth_epoch;
                Ok(Some(Credentials {
                    user: row.into_user()?,
                    password_hash,
                    auth_epoch,
                }))
            }
            None => Ok(None),
        }
    }

    /// Whether any user exists (for the first-admin bootstrap).
    pub fn any_exists(conn: &mut DbConnection) -> QueryResult<bool> {
        diesel::select(diesel::dsl::exists(users::table.select(users::id))).get_result(conn)
    }

    /// Validates and stores a new user, hashing the password here: for the command line and
    /// start-up. Requests hash first, outside their transaction, and call [`User::insert`].
    pub fn create(conn: &mut DbConnection, form: NewUser, actor: &Actor) -> Result<User, ApiError> {
        form.check()?;
        let hash = password::hash(&form.password)?;
        User::insert(conn, &form, &hash, actor)
    }

    /// Stores a new user whose password is already hashed, with its `created` event, in one
    /// transaction. Refuses an invalid form (422) and a taken e-mail (409).
    pub fn insert(
        conn: &mut DbConnection,
        form: &NewUser,
        hash: &str,
        actor: &Actor,
    ) -> Result<User, ApiError> {
        let (email, display_name) = form.check()?;
        conn.transaction(|conn| {
            let taken = users::table
                .filter(users::email.eq(&email))
                .select(users::id)
                .first::<i64>(conn)
                .optional()?;
            if taken.is_some() {
                return Err(ApiError::Conflict(format!(
                    "A user with the e-mail {email} exists already."
                )));
            }
            let stamp = now();
            let id: i64 = diesel::insert_into(users::table)
                .values((
                    users::email.eq(&email),
                    users::display_name.eq(&display_name),
                    users::role.eq(form.role.as_str()),
                    users::password_hash.eq(&hash),
                    users::active.eq(true),
                    users::created_at.eq(stamp),
                    users::updated_at.eq(stamp),
                    users::version.eq(1_i64),
                ))
                .returning(users::id)
                .get_result(conn)?;
            history::record(
                conn,
                Subject {
                    entity_type: "user",
                    entity_id: id,
                },
                "created",
                actor,
                json!({"email": email, "display_name": display_name, "role": form.role.as_str()}),
            )?;
            Ok(User::find(conn, id)?)
        })
    }

    /// One page of users in id order.
    pub fn list(conn: &mut DbConnection, filter: &UserFilter) -> Result<Page<User>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let mut query = users::table
            .select(UserRow::as_select())
            .order(users::id.asc())
            .into_boxed();
        if let Some(after) = paging.after::<i64>()? {
            query = query.filter(users::id.gt(after));
        }
        if let Some(role) = filter.role {
            query = query.filter(users::role.eq(role.as_str()));
        }
        if let Some(active) = filter.active {
            query = query.filter(users::active.eq(active));
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(users::updated_at.ge(since.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            query = query.filter(
                users::email
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(users::display_name).like(pattern).escape('\\')),
            );
        }
        let rows = query.limit(limit + 1).load(conn)?;
        let users = rows
            .into_iter()
            .map(UserRow::into_user)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page::from_rows(users, limit, |u| u.id))
    }

    /// Applies `changes` on behalf of `actor`, checking rights, `If-Match` and the rule that one
    /// active admin must remain; writes the `updated` event in the same transaction.
    ///
    /// A new password comes prepared in `password` (see [`PasswordChange`]); `changes.password`
    /// is then only checked for its strength.
    pub fn update(
        conn: &mut DbConnection,
        id: i64,
        changes: UserChanges,
        actor: &Actor,
        expected_version: Precondition,
        password: Option<PasswordChange>,
    ) -> Result<User, ApiError> {
        let is_admin = actor.role == Role::Admin;
        if !is_admin {
            if actor.id() != id {
                return Err(ApiError::Forbidden(
                    "Only admins may change other users.".into(),
                ));
            }
            let admin_only: Vec<&str> = [
                ("email", changes.email.is_some()),
                ("role", changes.role.is_some()),
                ("organization_id", changes.organization_id.is_some()),
            ]
            .into_iter()
            .filter_map(|(f, set)| set.then_some(f))
            .collect();
            if !admin_only.is_empty() {
                return Err(ApiError::Forbidden(format!(
                    "Only admins may change {}.",
                    admin_only.join(" and ")
                )));
            }
        }
        let mut errors = Vec::new();
        let email = changes
            .email
            .as_deref()
            .map(|e| normalize_email("email", e, &mut errors));
        let display_name = changes
            .display_name
            .as_deref()
            .map(|n| check_display_name(n, &mut errors));
        if let Some(Err(e)) = changes
            .password
            .as_deref()
            .map(|p| password::check_strength("password", p))
        {
            errors.push(e);
        }
        ApiError::from_fields(errors)?;
        if changes.password.is_some() != password.is_some() {
            return Err(ApiError::internal(
                "a password change must be prepared before its transaction",
            ));
        }
        let new_hash = password.as_ref().map(|p| p.new_hash.clone());

        conn.transaction(|conn| {
            // A role change may demote an admin: take the admin set first (always before a
            // user row, so that two such changes cannot deadlock), then the row itself.
            if changes.role.is_some() {
                db::lock(conn, Lock::Admins)?;
            }
            db::lock(conn, Lock::User(id))?;
            let row: UserRow = users::table
                .find(id)
                .select(UserRow::as_select())
                .first(conn)?;
            expected_version.check(row.version)?;
            if let Some(change) = &password
                && !is_admin
            {
                match &change.verified_against {
                    Some(verified) if *verified == row.password_hash => {}
                    Some(_) => {
                        return Err(ApiError::Conflict(
                            "The password changed while this request was checked; send it \
                             again with the present password."
                                .into(),
                        ));
                    }
                    None => {
                        return Err(ApiError::invalid(
                            "current_password",
                            "must be your present password to set a new one",
                        ));
                    }
                }
            }
            let mut changed = Diff::new();
            if let Some(email) = &email {
                changed.field("email", &row.email, email);
                if *email != row.email {
                    let taken = users::table
                        .filter(users::email.eq(email))
                        .select(users::id)
                        .first::<i64>(conn)
                        .optional()?;
                    if taken.is_some() {
                        return Err(ApiError::Conflict(format!(
                            "A user with the e-mail {email} exists already."
                        )));
                    }
                }
            }
            if let Some(name) = &display_name {
                changed.field("display_name", &row.display_name, name);
            }
            if let Some(role) = changes.role {
                changed.field("role", &row.role, role.as_str());
                if row.role == Role::Admin.as_str() && role != Role::Admin && row.active {
                    ensure_another_admin(conn, id)?;
                }
            }
            if let Some(organization) = changes.organization_id {
                changed.field("organization_id", row.organization_id, organization);
                if let Some(org) = organization {
                    // Checked here for both engines; PostgreSQL also has the foreign key.
                    let exists: bool = diesel::select(diesel::dsl::exists(
                        crate::common::db::schema::organizations::table.find(org),
                    ))
                    .get_result(conn)?;
                    if !exists {
                        return Err(ApiError::invalid(
                            "organization_id",
                            format!("organization {org} does not exist"),
                        ));
                    }
                }
            }
            if new_hash.is_some() {
                // Never the hash itself: only the fact that it changed.
                changed.note("password", json!({"changed": true}));
            }
            if changed.is_empty() {
                return row.into_user();
            }
            // A new password or role ends every session opened before (the tokens' epoch).
            let revoke = i64::from(
                new_hash.is_some() || changes.role.is_some_and(|r| r.as_str() != row.role),
            );
            crate::versioned_write!(
                conn,
                users,
                id,
                row.version,
                (
                    users::email.eq(email.unwrap_or(row.email.clone())),
                    users::display_name.eq(display_name.unwrap_or(row.display_name.clone())),
                    users::role.eq(changes.role.map(Role::as_str).unwrap_or(&row.role)),
                    users::organization_id
                        .eq(changes.organization_id.unwrap_or(row.organization_id)),
                    users::password_hash.eq(new_hash.unwrap_or(row.password_hash.clone())),
                    users::auth_epoch.eq(users::auth_epoch + revoke),
                ),
            )?;
            history::record(
                conn,
                Subject {
                    entity_type: "user",
                    entity_id: id,
                },
                "updated",
                actor,
                changed.into_data(),
            )?;
            Ok(User::find(conn, id)?)
        })
    }

    /// Activates or deactivates a user; refuses to deactivate the last active admin. Before a
    /// deactivation is written, `hand_over` runs in the same transaction, under the user's
    /// lock: the workflow that deactivates passes what must change hands first.
    pub fn set_active(
        conn: &mut DbConnection,
        id: i64,
        active: bool,
        actor: &Actor,
        expected_version: Precondition,
        hand_over: &dyn Fn(&mut DbConnection) -> Result<(), ApiError>,
    ) -> Result<User, ApiError> {
        conn.transaction(|conn| {
            // Deactivating an admin reads the admin set: lock it, then the row (see `update`).
            db::lock(conn, Lock::Admins)?;
            db::lock(conn, Lock::User(id))?;
            let row: UserRow = users::table
                .find(id)
                .select(UserRow::as_select())
                .first(conn)?;
            expected_version.check(row.version)?;
            if row.active == active {
                return row.into_user();
            }
            if !active && row.role == Role::Admin.as_str() {
                ensure_another_admin(conn, id)?;
            }
            if !active {
                hand_over(conn)?;
            }
            crate::versioned_write!(
                conn,
                users,
                id,
                row.version,
                (
                    users::active.eq(active),
                    // Deactivation ends every session; reactivation opens none of the old ones.
                    users::auth_epoch.eq(users::auth_epoch + i64::from(!active)),
                ),
            )?;
            history::record(
                conn,
                Subject {
                    entity_type: "user",
                    entity_id: id,
                },
                if active { "reactivated" } else { "deactivated" },
                actor,
                json!({"active": {"old": row.active, "new": active}}),
            )?;
            Ok(User::find(conn, id)?)
        })
    }
}

/// Fails with 409 unless an active admin other than `except` exists.
fn ensure_another_admin(conn: &mut DbConnection, except: i64) -> Result<(), ApiError> {
    let others: i64 = users::table
        .filter(users::role.eq(Role::Admin.as_str()))
        .filter(users::active.eq(true))
        .filter(users::id.ne(except))
        .count()
        .get_result(conn)?;
    if others == 0 {
        Err(ApiError::Conflict(
            "This is the last active admin; make another user admin first.".into(),
        ))
    } else {
        Ok(())
    }
}
