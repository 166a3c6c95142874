//! Who acts: the role ladder, what a caller may see, and the [`Actor`] that every write is
//! made by and that its history event records.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::db::DbConnection;
use crate::common::db::schema::users;
use crate::common::error::ApiError;

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

/// Which items a caller may read. Everything is visible to everyone, except to requesters:
/// a stakeholder sees only the demands of their own organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Visibility {
    /// The team: every item.
    All,
    /// A requester: the demands this organization raised (none without an organization).
    Organization(Option<i64>),
}

/// Who makes a change: the user (none for the system itself, such as the SLA breach check or
/// the first start), their role and their organization, and for a script the API token it
/// came through and the origin it names. Every write takes one and records its user, token
/// and origin in the history event, so that a sync script can skip its own writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The acting user; `None` for the system.
    pub user_id: Option<i64>,
    /// Their role (`Admin` for the system).
    pub role: Role,
    /// Their organization, if any.
    pub organization_id: Option<i64>,
    /// The API token the request came through (`None` for a person's login or the system).
    pub token_id: Option<i64>,
    /// Where the write comes from, such as `jira-sync`: the token's origin, else the request's
    /// `X-Opsboard-Origin` header. Readers exclude it with `exclude_origin=`.
    pub origin: Option<String>,
}

impl Actor {
    /// The system itself: start-up, demo loading, background checks.
    pub const SYSTEM: Actor = Actor {
        user_id: None,
        role: Role::Admin,
        organization_id: None,
        token_id: None,
        origin: None,
    };

    /// A user acting with their role.
    pub fn user(id: i64, role: Role, organization_id: Option<i64>) -> Actor {
        Actor {
            user_id: Some(id),
            role,
            organization_id,
            token_id: None,
            origin: None,
        }
    }

    /// The same actor, writing with `origin` (a sync script's label, such as `jira-sync`).
    pub fn with_origin(self, origin: Option<String>) -> Actor {
        Actor { origin, ..self }
    }

    /// The acting user's id, or 0 for the system (which owns no rows).
    pub fn id(&self) -> i64 {
        self.user_id.unwrap_or(0)
    }

    /// Whether the role includes `minimum`.
    pub fn is_at_least(&self, minimum: Role) -> bool {
        self.role.at_least(minimum)
    }

    /// Managers and admins: they may override WIP limits and change who is accountable.
    pub fn manages(&self) -> bool {
        self.role.at_least(Role::Manager)
    }

    /// Fails with 403 unless the role is `minimum` or higher.
    pub fn require(&self, minimum: Role) -> Result<(), ApiError> {
        if self.role.at_least(minimum) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "This needs the role `{}` or higher; you are `{}`.",
                minimum.as_str(),
                self.role.as_str()
            )))
        }
    }

    /// Which items this actor may read.
    pub fn visibility(&self) -> Visibility {
        if self.role == Role::Requester {
            Visibility::Organization(self.organization_id)
        } else {
            Visibility::All
        }
    }
}

/// What authenticating a request needs of a user: the actor, the login e-mail, whether the
/// account is active, and the token epoch that revokes older tokens.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user as an actor.
    pub actor: Actor,
    /// Their login e-mail (stored lower-case).
    pub email: String,
    /// Whether they may log in.
    pub active: bool,
    /// Counts up when their password, role or activity changes.
    pub auth_epoch: i64,
}

impl Principal {
    /// The principal of user `id` (one query), or 404.
    pub fn load(conn: &mut DbConnection, id: i64) -> Result<Principal, ApiError> {
        let (email, role, organization_id, active, auth_epoch): (
            String,
            String,
            Option<i64>,
            bool,
            i64,
        ) = crate::common::db::first_on_engine(
            users::table.find(id).select((
                users::email,
                users::role,
                users::organization_id,
                users::active,
                users::auth_epoch,
            )),
            conn,
        )?;
        let role = Role::parse(&role)
            .ok_or_else(|| ApiError::internal(format!("user {id} has unknown role {role}")))?;
        Ok(Principal {
            actor: Actor::user(id, role, organization_id),
            email,
            active,
            auth_epoch,
        })
    }
}
