//! Deactivating a person (`POST /users/{id}/deactivate`) and switching them on again. A
//! deactivation hands what the person is accountable for to a `replacement`: the services'
//! RACI templates (catalog) and the open items (items), so it combines three features and
//! sits above them.

use actix_web::{HttpResponse, post, web};

use crate::catalog::raci::hand_over_accountability;
use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::version::Precondition;
use crate::items::raci::hand_over_items;
use crate::users::model::User;
use crate::web::auth::CurrentUser;
use crate::web::params::UserIdPath;
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::ok_with_etag;

/// Mounts the two endpoints under the API scope, next to the users'.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(deactivate_user).service(reactivate_user);
}

/// Who takes over when a user is deactivated.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"replacement": "anja.krueger@example.org"}))]
pub struct Deactivation {
    /// The active user (id or e-mail) who becomes accountable for the services this user is
    /// accountable for.
    pub replacement: Option<crate::common::person::PersonId>,
}

/// Deactivate a user.
///
/// Admins only. The user can no longer log in and every token they hold stops working at once;
/// their history stays. Deactivating an inactive user changes nothing. The last active admin
/// cannot be deactivated. A user who is accountable for services is only deactivated when the
/// body names a `replacement` who takes those over (409 listing the services otherwise).
#[utoipa::path(
    tag = "users",
    params(UserIdPath, IfMatchHeader),
    request_body(content = Option<Deactivation>, description = "Optional: who takes over"),
    responses(
        (status = 200, description = "The deactivated user", body = User,
         headers(("ETag" = String, description = "The user's new version"))),
        (status = 409, description = "This is the last active admin, or the user is accountable \
         for services and no replacement was named", body = crate::common::error::Problem,
         content_type = "application/problem+json"),
    )
)]
#[post("/users/{id}/deactivate")]
pub async fn deactivate_user(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // The body is optional; when present it must be valid JSON like any other.
    let deactivation: Deactivation = if body.iter().all(u8::is_ascii_whitespace) {
        Deactivation::default()
    } else {
        // `null` is the same as no body.
        crate::common::parse::parse_json::<Option<Deactivation>>(&body)?.unwrap_or_default()
    };
    set_active(
        db,
        caller,
        id.into_inner(),
        if_match,
        false,
        deactivation.replacement,
    )
    .await
}

/// Reactivate a user.
///
/// Admins only. The user may log in again; tokens issued before the deactivation stay invalid.
#[utoipa::path(
    tag = "users",
    params(UserIdPath, IfMatchHeader),
    responses(
        (status = 200, description = "The reactivated user", body = User,
         headers(("ETag" = String, description = "The user's new version"))),
    )
)]
#[post("/users/{id}/reactivate")]
pub async fn reactivate_user(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    set_active(db, caller, id.into_inner(), if_match, true, None).await
}

async fn set_active(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: i64,
    if_match: Precondition,
    active: bool,
    replacement: Option<crate::common::person::PersonId>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let actor = caller.actor;
    let user = db
        .transaction(move |conn| {
            let replacement = match &replacement {
                None => None,
                Some(person) => Some(
                    person
                        .resolve(conn, "replacement", false)?
                        .map_err(|e| ApiError::Validation(vec![e]))?,
                ),
            };
            let hand_over = |conn: &mut crate::common::db::DbConnection| {
                hand_over_accountability(conn, id, replacement, &actor)?;
                if let Some(replacement) = replacement {
                    hand_over_items(conn, id, replacement, &actor)?;
                }
                Ok(())
            };
            User::set_active(conn, id, active, &actor, if_match, &hand_over)
        })
        .await?;
    Ok(ok_with_etag(&user, user.version))
}
