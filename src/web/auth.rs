//! Who calls: the `[auth]` settings, and the extractor that turns `Authorization: Bearer …`
//! into the calling [`Actor`]. The bearer is either a person's JWT from the login or a
//! script's API token (`opb_…`, see [`crate::common::token`]). Either way the user is re-read
//! from storage on every request, in one query, so that a deactivated user's tokens stop
//! working at once; a JWT issued before the user's last password change, password reset, role
//! change or deactivation (an older `auth_epoch`) is refused; an API token must be live and
//! hold the scope the request needs. The request's `X-Opsboard-Origin` (or the API token's own
//! origin, which wins) goes into the actor, and so into every history event it writes.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::common::actor::{Actor, Principal, Role, Visibility};
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::password::PasswordGate;
use crate::common::token::{self, Scope};
use crate::web::jwt::JwtKeys;
use crate::web::principal_cache::{Cached, CredentialKey, PrincipalCache};
pub use crate::web::settings::AuthSettings;
use crate::web::throttle::LoginThrottle;

/// What checking a password costs a request: a turn of the argon2 cap and an attempt from the
/// login throttle's buckets for the client's address.
pub struct PasswordChecks {
    /// The cap on concurrent argon2 work.
    pub passwords: web::Data<PasswordGate>,
    throttle: web::Data<LoginThrottle>,
    address: IpAddr,
}

impl PasswordChecks {
    /// Takes one attempt for `email` from the client's address; 429 when either is spent.
    pub fn admit(&self, email: &str) -> Result<(), ApiError> {
        self.throttle.admit(email, self.address)
    }
}

impl FromRequest for PasswordChecks {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let passwords = req.app_data::<web::Data<PasswordGate>>().cloned();
        let throttle = req.app_data::<web::Data<LoginThrottle>>().cloned();
        std::future::ready(match (passwords, throttle) {
            (Some(passwords), Some(throttle)) => Ok(PasswordChecks {
                address: throttle.client_address(req),
                passwords,
                throttle,
            }),
            _ => Err(ApiError::internal(
                "PasswordGate and LoginThrottle are not registered",
            )),
        })
    }
}

/// An argon2id hash of a random password, verified when a login names an unknown e-mail, so
/// that a wrong e-mail costs the same time as a wrong password.
#[derive(Debug, Clone)]
pub struct DummyHash(pub String);

/// The authenticated caller: the [`Actor`] every write of the request is made by, and the
/// login e-mail (for the login throttle).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    /// The caller as an actor (with the API token and origin of the request).
    pub actor: Actor,
    /// Their login e-mail.
    pub email: String,
    /// The scopes of the API token the request came with; `None` for a person's login, which
    /// may do whatever the role allows.
    pub scopes: Option<Vec<Scope>>,
    /// When the API token the request came with expires; `None` for a person's login. A
    /// token makes no token that outlives it.
    pub token_expires_at: Option<chrono::NaiveDateTime>,
}

/// The header a write names its origin with (a sync script's label, such as `jira-sync`).
pub const ORIGIN_HEADER: &str = "X-Opsboard-Origin";

impl CurrentUser {
    /// Fails with 403 unless the caller's role is `minimum` or higher.
    pub fn require(&self, minimum: Role) -> Result<(), ApiError> {
        self.actor.require(minimum)
    }

    /// The caller's id.
    pub fn id(&self) -> i64 {
        self.actor.id()
    }

    /// The caller's role.
    pub fn role(&self) -> Role {
        self.actor.role
    }

    /// Which items the caller may read.
    pub fn visibility(&self) -> Visibility {
        self.actor.visibility()
    }

    /// Fails with 403 `insufficient-scope` when the caller is an API token without `scope`.
    pub fn require_scope(&self, scope: Scope) -> Result<(), ApiError> {
        match &self.scopes {
            Some(scopes) if !scopes.contains(&scope) => Err(ApiError::InsufficientScope {
                scope: scope.as_str(),
            }),
            _ => Ok(()),
        }
    }
}

/// The `X-Opsboard-Origin` of a request: absent, or a valid label (400 naming the header).
fn origin_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let mut values = req.headers().get_all(ORIGIN_HEADER);
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let bad = || ApiError::bad_field(ORIGIN_HEADER, token::ORIGIN_RULE);
    if values.next().is_some() {
        return Err(ApiError::bad_field(ORIGIN_HEADER, "must be given once"));
    }
    let text = value.to_str().map_err(|_| bad())?.trim();
    if token::is_valid_origin(text) {
        Ok(Some(text.to_string()))
    } else {
        Err(bad())
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let db = req.app_data::<web::Data<Db>>().cloned();
        let jwt = req.app_data::<web::Data<JwtKeys>>().cloned();
        let cache = req.app_data::<web::Data<PrincipalCache>>().cloned();
        let bearer = bearer_token(req);
        let origin = origin_of(req);
        let needed = token::required_scope(req.method().as_str(), req.path());
        Box::pin(async move {
            let (Some(db), Some(jwt)) = (db, jwt) else {
                return Err(ApiError::internal("Db and JwtKeys are not registered"));
            };
            let bearer = bearer?;
            let origin = origin?;
            if bearer.starts_with(token::SECRET_PREFIX) {
                return by_api_token(
                    &db,
                    cache.as_ref().map(|c| c.as_ref()),
                    bearer,
                    origin,
                    needed,
                )
                .await;
            }
            let claims = jwt.verify(&bearer)?;
            let id: i64 = claims.sub.parse().map_err(|_| {
                ApiError::Unauthorized("The access token's subject is invalid.".into())
            })?;
            let Some(token_epoch) = claims.auth_epoch else {
                return Err(ApiError::Unauthorized(
                    "The access token lacks the auth_epoch claim; log in again.".into(),
                ));
            };
            let key = CredentialKey::Login(id, token_epoch);
            let principal = match cache.as_ref().and_then(|c| c.get(&key)) {
                Some(Cached::Login(principal)) => Ok(principal),
                _ => {
                    let generation = cache.as_ref().map(|c| c.generation());
                    let loaded = db.lookup(move |conn| Principal::load(conn, id)).await;
                    if let (Some(cache), Some(generation), Ok(principal)) =
                        (&cache, generation, &loaded)
                    {
                        cache.put(key, generation, Cached::Login(principal.clone()));
                    }
                    loaded
                }
            };
            match principal {
                Ok(principal) if !principal.active => Err(ApiError::Unauthorized(
                    "This account is deactivated.".into(),
                )),
                Ok(principal) if principal.auth_epoch == token_epoch => Ok(CurrentUser {
                    actor: principal.actor.with_origin(origin),
                    email: principal.email,
                    scopes: None,
                    token_expires_at: None,
                }),
                Ok(_) => Err(ApiError::Unauthorized(
                    "The access token was revoked by a change of password, role or account \
                     status; log in again."
                        .into(),
                )),
                Err(ApiError::NotFound(_)) => Err(ApiError::Unauthorized(
                    "The token's user no longer exists.".into(),
                )),
                Err(other) => Err(other),
            }
        })
    }
}

/// The caller behind an API token: live, of an active user, holding the scope `needed`.
async fn by_api_token(
    db: &Db,
    cache: Option<&PrincipalCache>,
    secret: String,
    header_origin: Option<String>,
    needed: Scope,
) -> Result<CurrentUser, ApiError> {
    let key = CredentialKey::Token(token::hash(&secret));
    let cached = match cache.and_then(|c| c.get(&key)) {
        // Expiry is a matter of time, not of a write: checked on every hit.
        Some(Cached::Token(principal, grant)) if grant.expires_at > crate::common::db::now() => {
            Some((principal, grant))
        }
        _ => None,
    };
    let (principal, grant) = match cached {
        Some(hit) => hit,
        None => {
            let generation = cache.map(|c| c.generation());
            let (principal, grant) = db
                .run(move |conn| {
                    let (principal, grant) = token::authenticate(conn, &secret)?;
                    if principal.active
                        && let Err(error) = token::touch(conn, &grant)
                    {
                        // Bookkeeping: a read is not refused because its last use could not
                        // be noted (SQLite busy with a long write, say); the next request
                        // notes it.
                        log::warn!("last use of API token {} not noted: {error}", grant.id);
                    }
                    Ok((principal, grant))
                })
                .await?;
            if let (Some(cache), Some(generation)) = (cache, generation) {
                cache.put(
                    key,
                    generation,
                    Cached::Token(principal.clone(), grant.clone()),
                );
            }
            (principal, grant)
        }
    };
    if !principal.active {
        return Err(ApiError::Unauthorized(
            "This API token's account is deactivated.".into(),
        ));
    }
    if !grant.scopes.contains(&needed) {
        return Err(ApiError::InsufficientScope {
            scope: needed.as_str(),
        });
    }
    let origin = grant.origin.clone().or(header_origin);
    let mut actor = principal.actor.with_origin(origin);
    actor.token_id = Some(grant.id);
    Ok(CurrentUser {
        actor,
        email: principal.email,
        scopes: Some(grant.scopes),
        token_expires_at: Some(grant.expires_at),
    })
}

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized(
            "This endpoint needs `Authorization: Bearer <token>`: a person's access token from \
             POST /api/v1/auth/login, or a script's API token (opb_…) from POST /api/v1/tokens."
                .into(),
        )
    })?;
    let text = value.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim().to_string())
        }
        _ => Err(ApiError::Unauthorized(
            "The Authorization header must be `Bearer <token>`.".into(),
        )),
    }
}
