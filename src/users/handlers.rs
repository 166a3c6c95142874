//! HTTP handlers for `/api/v1/users`: extract, authorize, call the model, respond.

use actix_web::{HttpRequest, HttpResponse, get, patch, post, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::common::password;
use crate::common::password::PasswordGate;
use crate::common::version::Precondition;
use crate::users::model::{NewUser, PasswordChange, User, UserChanges, UserFilter};
use crate::web::auth::{CurrentUser, PasswordChecks};
use crate::web::extract::{Json, Query};
use crate::web::params::UserIdPath;
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::PageResponse;
use crate::web::respond::{created, ok_with_etag};

/// List users.
///
/// Users in id order, one page at a time. Everyone in the team (viewer and up) may list users;
/// requesters may not. Follow `next_cursor` (or the `Link: rel="next"` header) for more.
#[utoipa::path(
    tag = "users",
    params(UserFilter),
    responses(
        (status = 200, description = "One page of users", body = Page<User>,
         headers(("Link" = String, description = "`<…>; rel=\"next\"` when there is a next page"))),
    )
)]
#[get("/users")]
pub async fn list_users(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<UserFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Viewer)?;
    let filter = filter.0;
    let page = db.run(move |conn| User::list(conn, &filter)).await?;
    Ok(page.respond(&req))
}

/// Create a user.
///
/// Admins only. The e-mail must be unused (regardless of case); the password needs at least
/// 12 characters and is stored as an argon2id hash.
#[utoipa::path(
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, description = "The new user", body = User,
         headers(("Location" = String, description = "URL of the new user"),
                 ("ETag" = String, description = "The user's version"))),
        (status = 409, description = "The e-mail is taken", body = crate::common::error::Problem,
         content_type = "application/problem+json"),
        (status = 503, description = "The server is busy hashing other passwords (or the \
         database is unavailable); try again after `Retry-After` seconds",
         body = crate::common::error::Problem,
         content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
#[post("/users")]
pub async fn create_user(
    db: web::Data<Db>,
    passwords: web::Data<PasswordGate>,
    caller: CurrentUser,
    body: Json<NewUser>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let actor = caller.actor.clone();
    let form = body.0;
    form.check()?;
    // Hashed before the transaction, within the cap on argon2 work: no connection waits for it.
    let hash = passwords.hash(form.password.clone()).await?;
    let user = db
        .transaction(move |conn| User::insert(conn, &form, &hash, &actor))
        .await?;
    Ok(created(
        &user,
        &format!("/api/v1/users/{}", user.id),
        user.version,
    ))
}

/// Get a user.
///
/// Team members (viewer and up) may read any user; a requester only themself.
#[utoipa::path(
    tag = "users",
    params(UserIdPath),
    responses(
        (status = 200, description = "The user", body = User,
         headers(("ETag" = String, description = "The user's version, for If-Match"))),
    )
)]
#[get("/users/{id}")]
pub async fn get_user(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if caller.id() != id {
        caller.require(Role::Viewer)?;
    }
    let user = db
        .run(move |conn| User::find(conn, id).map_err(ApiError::from))
        .await?;
    Ok(ok_with_etag(&user, user.version))
}

/// A user's history.
///
/// Every change of the account, oldest first: creation, changes of name, role or password (never
/// the password itself), deactivation and reactivation, and the API tokens made and revoked
/// for the user. Team members (viewer and up) may read any user's; a requester only their own.
#[utoipa::path(
    tag = "users",
    params(UserIdPath, crate::common::pagination::PageParams),
    responses((status = 200, description = "One page of events",
        body = Page<crate::common::history::Event>))
)]
#[get("/users/{id}/history")]
pub async fn user_history(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    paging: Query<crate::common::pagination::PageParams>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if caller.id() != id {
        caller.require(Role::Viewer)?;
    }
    let paging = paging.0;
    let page = db
        .run(move |conn| {
            User::find(conn, id)?;
            crate::common::history::events_of(
                conn,
                crate::common::history::Subject {
                    entity_type: "user",
                    entity_id: id,
                },
                &paging,
                &[],
            )
        })
        .await?;
    Ok(page.respond(&req))
}

/// Change a user.
///
/// Only the fields present change. Admins may change any user's e-mail, display name, role and
/// password; everyone may change their own display name and password (giving
/// `current_password`, whose attempts count against the login throttle). Send the `ETag` as
/// `If-Match` to be sure not to overwrite another
/// change: a stale one gets 412 with the current version. The last active admin cannot be
/// demoted. A new password (own change or an admin's reset) and a new role end every session
/// of the user: tokens issued before get 401, and the user logs in again.
#[utoipa::path(
    tag = "users",
    params(UserIdPath, IfMatchHeader),
    request_body = UserChanges,
    responses(
        (status = 200, description = "The changed user", body = User,
         headers(("ETag" = String, description = "The user's new version"))),
        (status = 409, description = "The e-mail is taken, or this is the last admin",
         body = crate::common::error::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts at `current_password` for this \
         account or from this address (they count like logins); try again after `Retry-After` \
         seconds", body = crate::common::error::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds until an attempt is let through"))),
        (status = 503, description = "The server is busy hashing other passwords (when the \
         body sets `password`), or the database is unavailable; try again after `Retry-After` \
         seconds",
         body = crate::common::error::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
#[patch("/users/{id}")]
pub async fn update_user(
    db: web::Data<Db>,
    checks: PasswordChecks,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
    body: Json<UserChanges>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if caller.id() != id {
        caller.require(Role::Admin)?;
    }
    let changes = body.0;
    let password = match &changes.password {
        Some(new) => Some(prepare_password(&db, &checks, &caller, id, new, &changes).await?),
        None => None,
    };
    let actor = caller.actor;
    let user = db
        .transaction(move |conn| {
            User::update(
                conn,
                id,
                changes.clone(),
                &actor,
                if_match,
                password.clone(),
            )
        })
        .await?;
    Ok(ok_with_etag(&user, user.version))
}

/// A new password, checked, verified and hashed before the transaction that stores it, each
/// argon2 step within the cap. Users changing their own password prove it with
/// `current_password`; those attempts count against the same per-account and per-address
/// budget as logins, so a stolen token cannot be used to guess the password.
async fn prepare_password(
    db: &Db,
    checks: &PasswordChecks,
    caller: &CurrentUser,
    id: i64,
    new: &str,
    changes: &UserChanges,
) -> Result<PasswordChange, ApiError> {
    password::check_strength("password", new).map_err(|e| ApiError::Validation(vec![e]))?;
    let verified_against = if caller.role() == Role::Admin {
        None
    } else {
        let missing = || {
            ApiError::invalid(
                "current_password",
                "must be your present password to set a new one",
            )
        };
        let current = changes.current_password.clone().ok_or_else(missing)?;
        checks.admit(&caller.email)?;
        let stored = db.run(move |conn| User::password_hash(conn, id)).await?;
        if !checks.passwords.verify(current, stored.clone()).await? {
            return Err(missing());
        }
        Some(stored)
    };
    Ok(PasswordChange {
        new_hash: checks.passwords.hash(new.to_string()).await?,
        verified_against,
    })
}
