//! Authentication and authorization: argon2id passwords, JWT access tokens, the extractor that
//! gives handlers the calling user, and one-line role checks.

pub mod handlers;
pub mod jwt;
pub mod password;
pub mod secret;
pub mod throttle;

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;
use crate::users::model::User;

/// A user's global role. `admin` > `manager` > `member` > `viewer`; a `requester` is a
/// stakeholder who may only submit and follow demands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages users and everything else.
    Admin,
    /// Manages boards, services and the catalogue.
    Manager,
    /// A team member: works on items.
    Member,
    /// Reads everything, changes nothing.
    Viewer,
    /// A stakeholder who submits and follows demands of their organization.
    Requester,
}

impl Role {
    /// Every role, highest first.
    pub const ALL: [Role; 5] = [
        Role::Admin,
        Role::Manager,
        Role::Member,
        Role::Viewer,
        Role::Requester,
    ];

    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Requester => "requester",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    fn rank(self) -> u8 {
        match self {
            Role::Admin => 4,
            Role::Manager => 3,
            Role::Member => 2,
            Role::Viewer => 1,
            Role::Requester => 0,
        }
    }

    /// Whether this role includes the rights of `other`.
    pub fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

/// The authenticated caller, re-read from storage on every request so that a deactivated
/// user's tokens stop working at once, and so that a token issued before the user's last
/// password change, password reset, role change or deactivation (an older `auth_epoch`) is
/// refused: the same one query that loads the user.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

impl CurrentUser {
    /// Fails with 403 unless the caller's role is `minimum` or higher.
    pub fn require(&self, minimum: Role) -> Result<(), ApiError> {
        if self.0.role.at_least(minimum) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "This needs the role `{}` or higher; you are `{}`.",
                minimum.as_str(),
                self.0.role.as_str()
            )))
        }
    }

    /// The caller's id.
    pub fn id(&self) -> i64 {
        self.0.id
    }

    /// Which items the caller may read.
    pub fn visibility(&self) -> Visibility {
        if self.0.role == Role::Requester {
            Visibility::Organization(self.0.organization_id)
        } else {
            Visibility::All
        }
    }
}

/// Which items a caller may read. Everything is visible to everyone, except to requesters:
/// a stakeholder sees only the demands of their own organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// The team: every item.
    All,
    /// A requester: the demands this organization raised (none without an organization).
    Organization(Option<i64>),
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("AppState is not registered"))?;
            let token = token?;
            let claims = state.jwt.verify(&token)?;
            let id: i64 = claims.sub.parse().map_err(|_| {
                ApiError::Unauthorized("The access token's subject is invalid.".into())
            })?;
            let Some(token_epoch) = claims.auth_epoch else {
                return Err(ApiError::Unauthorized(
                    "The access token lacks the auth_epoch claim; log in again.".into(),
                ));
            };
            let user = state
                .db
                .run(move |conn| User::find_with_auth_epoch(conn, id).map_err(ApiError::from))
                .await;
            match user {
                Ok((user, _)) if !user.active => Err(ApiError::Unauthorized(
                    "This account is deactivated.".into(),
                )),
                Ok((user, epoch)) if epoch == token_epoch => Ok(CurrentUser(user)),
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
