//! HTTP handlers for `/api/v1/tokens`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, delete, get, post, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::common::token::Scope;
use crate::tokens::model::{ApiToken, CreatedToken, NewToken, TokenFilter};
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::respond::PageResponse;

/// `{id}` of `/tokens/{id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenIdPath {
    /// The token's id
    pub id: i64,
}

/// Whether the caller may act on other people's tokens: an admin, and with an API token only
/// one that holds `admin`.
fn admin_scope(caller: &CurrentUser) -> bool {
    caller.role() == Role::Admin && caller.require_scope(Scope::Admin).is_ok()
}

/// List API tokens.
///
/// Your own working tokens; `include_inactive=true` adds revoked and expired ones. Admins see
/// everyone's (`user=` for one user's). Never the secrets: each token shows its `prefix` and
/// when it was last used. Any role.
#[utoipa::path(
    tag = "tokens",
    params(TokenFilter),
    responses((status = 200, description = "One page of tokens", body = Page<ApiToken>))
)]
#[get("/tokens")]
pub async fn list_tokens(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<TokenFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (filter, admin) = (filter.0, admin_scope(&caller));
    let actor = caller.actor.clone();
    let page = db
        .run(move |conn| ApiToken::list(conn, &filter, &actor, admin))
        .await?;
    Ok(page.respond(&req))
}

/// Create an API token.
///
/// For a script that talks to opsboard without a person's password: it acts as its user,
/// narrowed by its `scopes` (`read`: every GET the user may do; `write`: every write the role
/// allows except imports, webhooks and user administration; `import`; `webhooks`; `admin`:
/// users and other people's tokens). It expires (90 days unless `expires_at` says otherwise,
/// at most a year) and may carry an `origin` that every write through it records, so that a
/// sync script can skip its own writes in `GET /changes?exclude_origin=…`. The secret
/// (`opb_…`) is in this answer only; opsboard keeps its hash. Send it as
/// `Authorization: Bearer opb_…`. Anyone may make tokens for themself; admins for any user
/// (`user`: id or e-mail), typically a service user such as `sync-jira@…` with role `member`.
/// A request made with an API token may only give the scopes that token holds, and no later
/// expiry than its own (the default is shortened to it).
#[utoipa::path(
    tag = "tokens",
    request_body = NewToken,
    responses((status = 201, description = "The token and, once, its secret", body = CreatedToken,
        headers(("Location" = String, description = "The token's URL"))))
)]
#[post("/tokens")]
pub async fn create_token(
    db: web::Data<Db>,
    caller: CurrentUser,
    body: Json<NewToken>,
) -> Result<HttpResponse, ApiError> {
    let actor = caller.actor.clone();
    let (scopes, expires_at) = (caller.scopes.clone(), caller.token_expires_at);
    let created_token = db
        .transaction(move |conn| {
            ApiToken::create(conn, &body.0, &actor, scopes.as_deref(), expires_at)
        })
        .await?;
    // No ETag: a token has no version to send back in If-Match; it is only ever revoked.
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/tokens/{}", created_token.token.id),
        ))
        .json(created_token))
}

/// Get an API token.
///
/// Your own, or any for an admin. Never the secret.
#[utoipa::path(
    tag = "tokens",
    params(TokenIdPath),
    responses((status = 200, description = "The token", body = ApiToken))
)]
#[get("/tokens/{id}")]
pub async fn get_token(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, admin) = (id.into_inner(), admin_scope(&caller));
    let actor = caller.actor.clone();
    let token = db
        .run(move |conn| ApiToken::find(conn, id, &actor, admin))
        .await?;
    Ok(HttpResponse::Ok().json(token))
}

/// Revoke an API token.
///
/// At once: its next request gets 401. Your own, or any for an admin. The token stays listed
/// (with `include_inactive=true`) with `revoked_at`; revoking it again answers 204 as well.
/// The user's history records it.
#[utoipa::path(
    tag = "tokens",
    params(TokenIdPath),
    responses((status = 204, description = "Revoked"))
)]
#[delete("/tokens/{id}")]
pub async fn revoke_token(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let (id, admin) = (id.into_inner(), admin_scope(&caller));
    let actor = caller.actor.clone();
    db.transaction(move |conn| ApiToken::revoke(conn, id, &actor, admin))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
