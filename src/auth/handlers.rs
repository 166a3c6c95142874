//! `POST /api/v1/auth/login` and `GET /api/v1/me`.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::users::model::User;
use crate::web::auth::{CurrentUser, DummyHash, PasswordChecks};
use crate::web::extract::Json;
use crate::web::jwt::JwtKeys;
use crate::web::respond::ok_with_etag;

/// Mounts the authentication endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(login).service(me);
}

/// Credentials for a login.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"email": "admin@example.org", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    /// The account's e-mail (any case).
    pub email: String,
    /// The account's password.
    pub password: String,
}

/// An access token for `Authorization: Bearer …`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"access_token": "eyJhbGciOiJIUzI1NiJ9…", "token_type": "Bearer", "expires_in": 3600}))]
pub struct TokenResponse {
    /// The JWT to send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: i64,
}

/// Log in.
///
/// Exchanges e-mail and password for an access token (HS256 JWT). A wrong e-mail, a wrong
/// password and a deactivated account all get the same 401, in the same time. In Swagger UI,
/// paste the `access_token` into "Authorize".
///
/// Attempts are throttled per account (the e-mail, whether or not it exists) and per client
/// address: after `auth.login_account_burst` attempts (10 by default) an account gets one more
/// every `auth.login_account_refill_secs` (30 s), and in between every attempt, even with the
/// right password, gets 429 with `Retry-After`. The token stays valid until it expires or the
/// user's password, role or active state changes.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 401, description = "Wrong e-mail or password", body = crate::common::error::Problem,
         content_type = "application/problem+json"),
        (status = 429, description = "Too many attempts for this account or from this address; \
         try again after `Retry-After` seconds", body = crate::common::error::Problem,
         content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds until an attempt is let through"))),
        (status = 503, description = "The server is busy checking other passwords (or the \
         database is unavailable); try again after `Retry-After` seconds",
         body = crate::common::error::Problem, content_type = "application/problem+json",
         headers(("Retry-After" = u64, description = "Seconds to wait before retrying"))),
    )
)]
#[post("/auth/login")]
pub async fn login(
    db: web::Data<Db>,
    jwt: web::Data<JwtKeys>,
    checks: PasswordChecks,
    dummy_hash: web::Data<DummyHash>,
    body: Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest {
        email,
        password: given,
    } = body.0;
    checks.admit(&email)?;
    let found = db
        .run(move |conn| User::find_for_login(conn, &email))
        .await?;
    // The connection is back in the pool before argon2 runs. Verify against a dummy hash
    // when there is no such user, so that both failures cost the same argon2 work and cannot
    // be told apart by timing.
    let (candidate, hash) = match found {
        Some(credentials) => (
            Some((credentials.user, credentials.auth_epoch)),
            credentials.password_hash,
        ),
        None => (None, dummy_hash.0.clone()),
    };
    let matches = checks.passwords.verify(given, hash).await?;
    let (user, auth_epoch) = candidate
        .filter(|(user, _)| matches && user.active)
        .ok_or_else(|| ApiError::Unauthorized("Wrong e-mail or password.".into()))?;
    let token = jwt.issue(user.id, user.role.as_str(), auth_epoch)?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: jwt.ttl_seconds(),
        }))
}

/// Who am I.
///
/// The user the access token belongs to.
#[utoipa::path(
    tag = "auth",
    responses(
        (status = 200, description = "The calling user", body = User,
         headers(("ETag" = String, description = "The user's version"))),
    )
)]
#[get("/me")]
pub async fn me(db: web::Data<Db>, caller: CurrentUser) -> Result<HttpResponse, ApiError> {
    let id = caller.id();
    let user = db.run(move |conn| Ok(User::find(conn, id)?)).await?;
    Ok(ok_with_etag(&user, user.version))
}
