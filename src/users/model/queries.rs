//! Reading users: one by id (with or without what a login needs), whether any exists, and the
//! filtered list.

use diesel::prelude::*;

use super::{Credentials, User, UserFilter, UserRow, canonical_email};
use crate::common::db::schema::users;
use crate::common::db::{DbConnection, lower};
use crate::common::error::ApiError;
use crate::common::pagination::{Page, PageParams};

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
            query = query.filter(users::updated_at.ge(since.0.naive_utc()));
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
}
