//! Writing users: creating one (with its password hash), changing one under the rights and
//! the one-admin rule, and switching an account on or off; each writes its event.

use diesel::prelude::*;
use serde_json::json;

use super::{
    NewUser, PasswordChange, User, UserChanges, UserRow, check_display_name, normalize_email,
};
use crate::common::actor::{Actor, Role};
use crate::common::db::schema::users;
use crate::common::db::{self, DbConnection, Lock, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Diff, Subject};
use crate::common::password;
use crate::common::version::Precondition;

impl User {
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
                // A deactivated person's scripts stop too, for good: a reactivated service
                // user gets new tokens.
                crate::common::token::revoke_all_of(conn, id, actor, "user deactivated")?;
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
