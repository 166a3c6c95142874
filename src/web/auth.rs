//! Who calls: the `[auth]` settings, and the extractor that turns `Authorization: Bearer <JWT>`
//! into the calling [`Actor`], re-read from storage on every request so that a deactivated
//! user's tokens stop working at once, and a token issued before the user's last password
//! change, password reset, role change or deactivation (an older `auth_epoch`) is refused —
//! in the one query that loads the caller.

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
use crate::web::jwt::JwtKeys;
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
    /// The caller as an actor.
    pub actor: Actor,
    /// Their login e-mail.
    pub email: String,
}

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
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let db = req.app_data::<web::Data<Db>>().cloned();
        let jwt = req.app_data::<web::Data<JwtKeys>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let (Some(db), Some(jwt)) = (db, jwt) else {
                return Err(ApiError::internal("Db and JwtKeys are not registered"));
            };
            let token = token?;
            let claims = jwt.verify(&token)?;
            let id: i64 = claims.sub.parse().map_err(|_| {
                ApiError::Unauthorized("The access token's subject is invalid.".into())
            })?;
            let Some(token_epoch) = claims.auth_epoch else {
                return Err(ApiError::Unauthorized(
                    "The access token lacks the auth_epoch claim; log in again.".into(),
                ));
            };
            match db.run(move |conn| Principal::load(conn, id)).await {
                Ok(principal) if !principal.active => Err(ApiError::Unauthorized(
                    "This account is deactivated.".into(),
                )),
                Ok(principal) if principal.auth_epoch == token_epoch => Ok(CurrentUser {
                    actor: principal.actor,
                    email: principal.email,
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

fn bearer_token(req: &HttpRequest) -> Result<String, ApiError> {
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError::Unauthorized(
            "This endpoint needs `Authorization: Bearer <token>`; get a token from \
             POST /api/v1/auth/login."
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
