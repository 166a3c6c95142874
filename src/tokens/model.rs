//! Creating, listing and revoking API tokens; each creation and revocation is an event in the
//! history of the token's user.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::common::actor::{Actor, Role};
use crate::common::db::schema::{api_tokens, users};
use crate::common::db::{self, DbConnection, Lock, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::person::PersonId;
use crate::common::text::required_text;
use crate::common::token::{self, Scope};

/// How long a token lives when its creator names no expiry.
pub const DEFAULT_LIFETIME_DAYS: i64 = 90;
/// The longest a token may live.
pub const MAX_LIFETIME_DAYS: i64 = 366;

/// An API token as lists show it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 4, "user_id": 7, "user_email": "sync-jira@example.org", "name": "JIRA-Brücke",
    "scopes": ["read", "write"], "origin": "jira-sync", "prefix": "opb_x7Kq",
    "expires_at": "2027-03-04T10:00:00Z", "created_at": "2026-12-04T10:00:00Z", "created_by": 1,
    "last_used_at": "2026-12-04T10:05:00Z", "revoked_at": null, "active": true
}))]
pub struct ApiToken {
    /// The token's id (for `GET` and `DELETE /tokens/{id}`).
    pub id: i64,
    /// The user it acts as.
    pub user_id: i64,
    /// That user's e-mail.
    pub user_email: String,
    /// What it is for.
    pub name: String,
    /// What it may do: `read`, `write`, `import`, `webhooks`, `admin`.
    pub scopes: Vec<Scope>,
    /// The origin its writes record (`exclude_origin=` skips them).
    pub origin: Option<String>,
    /// The first characters of the secret, to recognize it.
    pub prefix: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// Who made it.
    pub created_by: Option<i64>,
    /// When it was last used (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Whether it works now: not revoked, not expired.
    pub active: bool,
}

/// A token just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "secret": "opb_x7KqR2mB8vN4pL6tY1wZ3cD5fG9hJ0kS2aQ4eU",
    "token": {"id": 4, "user_id": 7, "user_email": "sync-jira@example.org", "name": "JIRA-Brücke",
        "scopes": ["read", "write"], "origin": "jira-sync", "prefix": "opb_x7Kq",
        "expires_at": "2027-03-04T10:00:00Z", "created_at": "2026-12-04T10:00:00Z",
        "created_by": 1, "last_used_at": null, "revoked_at": null, "active": true}
}))]
pub struct CreatedToken {
    /// The secret: send it as `Authorization: Bearer opb_…`. Shown only now; opsboard keeps
    /// only its hash.
    pub secret: String,
    /// The token.
    pub token: ApiToken,
}

/// The body of `POST /api/v1/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "JIRA-Brücke", "scopes": ["read", "write"], "origin": "jira-sync",
    "user": "sync-jira@example.org", "expires_at": "2027-03-04T10:00:00Z"
}))]
pub struct NewToken {
    /// What it is for, 1–100 characters.
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// What it may do: one or more of `read`, `write`, `import`, `webhooks`, `admin`. A token
    /// acts as its user, so it never does more than the user's role allows.
    #[schema(min_items = 1, max_items = 5)]
    pub scopes: Vec<Scope>,
    /// When it stops working: at most a year ahead; 90 days when omitted. A token made with
    /// an API token expires no later than that token.
    pub expires_at: Option<DateTime<Utc>>,
    /// The origin its writes record, such as `jira-sync`: 1–64 letters, digits, `.`, `_`, `-`.
    #[schema(max_length = 64, pattern = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    pub origin: Option<String>,
    /// Admins only: the user (id or e-mail) the token acts as, such as a service user; the
    /// caller when omitted.
    pub user: Option<PersonId>,
}

/// Filters of `GET /api/v1/tokens`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokenFilter {
    /// Admins: only the tokens of this user (id). Others see their own tokens only.
    pub user: Option<i64>,
    /// Include revoked and expired tokens (default: only working ones).
    pub include_inactive: Option<bool>,
    /// Tokens per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

type TokenRow = (
    i64,
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    chrono::NaiveDateTime,
    chrono::NaiveDateTime,
    Option<i64>,
    Option<chrono::NaiveDateTime>,
    Option<chrono::NaiveDateTime>,
);

#[diesel::dsl::auto_type]
fn token_columns() -> _ {
    (
        api_tokens::id,
        api_tokens::user_id,
        users::email,
        api_tokens::name,
        api_tokens::scopes,
        api_tokens::origin,
        api_tokens::prefix,
        api_tokens::expires_at,
        api_tokens::created_at,
        api_tokens::created_by,
        api_tokens::last_used_at,
        api_tokens::revoked_at,
    )
}

impl ApiToken {
    fn from_row(row: TokenRow) -> ApiToken {
        let (
            id,
            user_id,
            user_email,
            name,
            scopes,
            origin,
            prefix,
            expires_at,
            created_at,
            created_by,
            last_used_at,
            revoked_at,
        ) = row;
        ApiToken {
            id,
            user_id,
            user_email,
            name,
            scopes: token::parse_scopes(&scopes),
            origin,
            prefix,
            active: revoked_at.is_none() && expires_at > now(),
            expires_at: expires_at.and_utc(),
            created_at: created_at.and_utc(),
            created_by,
            last_used_at: last_used_at.map(|t| t.and_utc()),
            revoked_at: revoked_at.map(|t| t.and_utc()),
        }
    }

    /// The token with this id, if the caller may see it: their own, or any for an admin
    /// (whose API token needs the `admin` scope for that); 404 otherwise.
    pub fn find(
        conn: &mut DbConnection,
        id: i64,
        caller: &Actor,
        admin_scope: bool,
    ) -> Result<ApiToken, ApiError> {
        let token = api_tokens::table
            .inner_join(users::table)
            .filter(api_tokens::id.eq(id))
            .select(token_columns())
            .first::<TokenRow>(conn)
            .optional()?
            .map(ApiToken::from_row);
        match token {
            Some(token) if token.user_id == caller.id() => Ok(token),
            Some(token) if caller.role == Role::Admin && admin_scope => Ok(token),
            _ => Err(ApiError::NotFound(format!(
                "There is no token {id} of yours."
            ))),
        }
    }

    /// One page of tokens: the caller's own, or (an admin, with `admin_scope`) everyone's or
    /// one user's.
    pub fn list(
        conn: &mut DbConnection,
        filter: &TokenFilter,
        caller: &Actor,
        admin_scope: bool,
    ) -> Result<Page<ApiToken>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let sees_all = caller.role == Role::Admin && admin_scope;
        let mut query = api_tokens::table
            .inner_join(users::table)
            .select(token_columns())
            .order(api_tokens::id.asc())
            .into_boxed();
        match (sees_all, filter.user) {
            (true, Some(user)) => query = query.filter(api_tokens::user_id.eq(user)),
            (true, None) => {}
            (false, Some(user)) if user != caller.id() => {
                return Err(ApiError::Forbidden(
                    "Only admins (with an API token: with the scope `admin`) list other \
                     people's tokens."
                        .into(),
                ));
            }
            (false, _) => query = query.filter(api_tokens::user_id.eq(caller.id())),
        }
        if !filter.include_inactive.unwrap_or(false) {
            query = query.filter(
                api_tokens::revoked_at
                    .is_null()
                    .and(api_tokens::expires_at.gt(now())),
            );
        }
        if let Some(after) = paging.after::<i64>()? {
            query = query.filter(api_tokens::id.gt(after));
        }
        let rows: Vec<TokenRow> = query.limit(limit + 1).load(conn)?;
        Ok(Page::from_rows(
            rows.into_iter().map(ApiToken::from_row).collect(),
            limit,
            |t| t.id,
        ))
    }

    /// Makes a token for `form.user` (admins) or the caller. A token that makes tokens gives
    /// them only scopes it holds itself (`caller_scopes`) and no later expiry than its own
    /// (`caller_expires_at`), so that no token can widen or prolong itself.
    pub fn create(
        conn: &mut DbConnection,
        form: &NewToken,
        caller: &Actor,
        caller_scopes: Option<&[Scope]>,
        caller_expires_at: Option<chrono::NaiveDateTime>,
    ) -> Result<CreatedToken, ApiError> {
        let mut errors: Vec<FieldError> = Vec::new();
        let name = required_text(&mut errors, "name", &form.name, 100);
        if form.scopes.is_empty() {
            errors.push(FieldError::new(
                "scopes",
                format!("must name at least one of {}", Scope::NAMES.join(", ")),
            ));
        }
        if let Some(held) = caller_scopes {
            for (i, scope) in form.scopes.iter().enumerate() {
                if !held.contains(scope) {
                    errors.push(FieldError::new(
                        format!("scopes[{i}]"),
                        format!(
                            "`{}` is not a scope of the token this request came with",
                            scope.as_str()
                        ),
                    ));
                }
            }
        }
        let stamp = now();
        let expires_at = match form.expires_at {
            // A token's own expiry shortens the default of the tokens it makes.
            None => caller_expires_at
                .map_or(stamp + Duration::days(DEFAULT_LIFETIME_DAYS), |latest| {
                    latest.min(stamp + Duration::days(DEFAULT_LIFETIME_DAYS))
                }),
            Some(at) => {
                let at = at.naive_utc().trunc_subsecs(6);
                if at <= stamp {
                    errors.push(FieldError::new("expires_at", "must lie in the future"));
                } else if at > stamp + Duration::days(MAX_LIFETIME_DAYS) {
                    errors.push(FieldError::new(
                        "expires_at",
                        "must lie at most a year ahead; make a new token when it expires",
                    ));
                } else if let Some(latest) = caller_expires_at.filter(|latest| at > *latest) {
                    // Else a token could renew itself for a year, however short its own life.
                    errors.push(FieldError::new(
                        "expires_at",
                        format!(
                            "must not lie beyond the expiry of the token this request came \
                             with ({}Z)",
                            latest.format("%Y-%m-%dT%H:%M:%S")
                        ),
                    ));
                }
                at
            }
        };
        let origin = form.origin.as_deref().map(str::trim);
        if let Some(origin) = origin
            && !token::is_valid_origin(origin)
        {
            errors.push(FieldError::new("origin", token::ORIGIN_RULE));
        }
        let user_id = match &form.user {
            None => caller.id(),
            Some(person) => match person.resolve(conn, "user", true)? {
                Ok(id) => id,
                Err(error) => {
                    errors.push(error);
                    caller.id()
                }
            },
        };
        ApiError::from_fields(errors)?;
        // The user's row, locked: a deactivation at the same moment (which revokes the user's
        // tokens under the same lock) either comes first, and the user is refused below, or
        // comes after and revokes this token too. Without it a token made in between would
        // survive the deactivation and work again after a reactivation.
        db::lock(conn, Lock::User(user_id))?;
        let active: bool = users::table
            .find(user_id)
            .select(users::active)
            .first(conn)?;
        if !active {
            return Err(ApiError::invalid("user", "is a deactivated user"));
        }
        if user_id != caller.id() {
            if caller.role != Role::Admin {
                return Err(ApiError::Forbidden(
                    "Only admins make tokens for other users.".into(),
                ));
            }
            if caller_scopes.is_some_and(|s| !s.contains(&Scope::Admin)) {
                return Err(ApiError::InsufficientScope {
                    scope: Scope::Admin.as_str(),
                });
            }
        }
        if caller.user_id.is_none() {
            return Err(ApiError::Forbidden("The system makes no tokens.".into()));
        }
        let (secret, hash, prefix) = token::generate();
        let scopes = token::format_scopes(&form.scopes);
        let id: i64 = diesel::insert_into(api_tokens::table)
            .values((
                api_tokens::user_id.eq(user_id),
                api_tokens::name.eq(&name),
                api_tokens::secret_hash.eq(&hash),
                api_tokens::prefix.eq(&prefix),
                api_tokens::scopes.eq(&scopes),
                api_tokens::origin.eq(origin),
                api_tokens::expires_at.eq(expires_at),
                api_tokens::created_at.eq(stamp),
                api_tokens::created_by.eq(caller.user_id),
            ))
            .returning(api_tokens::id)
            .get_result(conn)?;
        history::record(
            conn,
            Subject {
                entity_type: "user",
                entity_id: user_id,
            },
            "token_created",
            caller,
            json!({"token_id": id, "name": name, "scopes": token::parse_scopes(&scopes),
                   "origin": origin, "expires_at": expires_at.and_utc(), "prefix": prefix}),
        )?;
        let token = ApiToken::find(conn, id, caller, true)?;
        Ok(CreatedToken { secret, token })
    }

    /// Revokes a token at once: its next request gets 401. Revoking a revoked token changes
    /// nothing.
    pub fn revoke(
        conn: &mut DbConnection,
        id: i64,
        caller: &Actor,
        admin_scope: bool,
    ) -> Result<(), ApiError> {
        let token = ApiToken::find(conn, id, caller, admin_scope)?;
        if token.revoked_at.is_some() {
            return Ok(());
        }
        let revoked = diesel::update(
            api_tokens::table.filter(api_tokens::id.eq(id).and(api_tokens::revoked_at.is_null())),
        )
        .set((
            api_tokens::revoked_at.eq(Some(now())),
            api_tokens::revoked_by.eq(caller.user_id),
        ))
        .execute(conn)?;
        if revoked == 0 {
            // A concurrent revocation came first.
            return Ok(());
        }
        history::record(
            conn,
            Subject {
                entity_type: "user",
                entity_id: token.user_id,
            },
            "token_revoked",
            caller,
            json!({"token_id": id, "name": token.name, "reason": "revoked"}),
        )
    }
}
