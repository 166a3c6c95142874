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
use crate::common::db::{Db, DbConnection};
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

/// A request's credential, checked as far as it can be without storage: the bearer's form,
/// a JWT's signature, algorithm, expiry, issuer and audience, the `X-Opsboard-Origin` header.
/// As an extractor it answers 401 at once for what needs no storage. The rest is checked
/// against storage: on the connection of the handler's own work when the handler takes a
/// `Credential` ([`Credential::lookup`], [`Credential::run`]), which saves a request one trip
/// to the blocking pool and, on PostgreSQL, one checkout; or in a trip of its own when it
/// takes a [`CurrentUser`].
pub struct Credential {
    bearer: Bearer,
    origin: Option<String>,
    needed: Scope,
    cache: Option<web::Data<PrincipalCache>>,
    /// What the principal cache answered, once asked: a handler that looks at the caller
    /// before its work (to answer from a cache of its own) asks it once per request.
    asked: std::cell::OnceCell<Option<CurrentUser>>,
}

/// What the bearer token is.
enum Bearer {
    /// A person's JWT, whose signature and claims are valid: the user and the `auth_epoch`
    /// it was issued in.
    Login { id: i64, epoch: i64 },
    /// A script's API token (`opb_…`), checked against storage only.
    ApiToken(String),
}

impl Credential {
    /// The credential of `req`; 401 for a missing, malformed or invalid bearer, 400 for a bad
    /// origin header.
    fn of(req: &HttpRequest) -> Result<Credential, ApiError> {
        let cache = req.app_data::<web::Data<PrincipalCache>>().cloned();
        let bearer = bearer_token(req)?;
        let origin = origin_of(req)?;
        let needed = token::required_scope(req.method().as_str(), req.path());
        let bearer = if bearer.starts_with(token::SECRET_PREFIX) {
            Bearer::ApiToken(bearer)
        } else {
            let Some(jwt) = req.app_data::<web::Data<JwtKeys>>() else {
                return Err(ApiError::internal("JwtKeys are not registered"));
            };
            let claims = jwt.verify(&bearer)?;
            let id: i64 = claims.sub.parse().map_err(|_| {
                ApiError::Unauthorized("The access token's subject is invalid.".into())
            })?;
            let Some(epoch) = claims.auth_epoch else {
                return Err(ApiError::Unauthorized(
                    "The access token lacks the auth_epoch claim; log in again.".into(),
                ));
            };
            Bearer::Login { id, epoch }
        };
        Ok(Credential {
            bearer,
            origin,
            needed,
            cache,
            asked: std::cell::OnceCell::new(),
        })
    }

    /// The caller, when the principal cache holds them (`auth.principal_cache_ms`).
    fn cached(&self) -> Option<CurrentUser> {
        self.asked.get_or_init(|| self.ask_cache()).clone()
    }

    /// [`Credential::cached`], asking the principal cache.
    fn ask_cache(&self) -> Option<CurrentUser> {
        let cache = self.cache.as_ref()?;
        match &self.bearer {
            Bearer::Login { id, epoch } => match cache.get(&CredentialKey::Login(*id, *epoch))? {
                Cached::Login(principal) => login_caller(principal, *epoch, &self.origin).ok(),
                Cached::Token(..) => None,
            },
            Bearer::ApiToken(secret) => match cache
                .get(&CredentialKey::Token(token::hash(secret)))?
            {
                // Expiry is a matter of time, not of a write: checked on every hit.
                Cached::Token(principal, grant) if grant.expires_at > crate::common::db::now() => {
                    token_caller(principal, grant, self.needed, &self.origin).ok()
                }
                _ => None,
            },
        }
    }

    /// The caller, checked against storage on `conn`: the user exists and is active, a JWT is
    /// of the user's present `auth_epoch`, an API token is live and holds the scope the
    /// request needs (its last use is noted). 401 or 403 otherwise. Remembered in the
    /// principal cache when it is on; [`Credential::cached`] is asked first, by the callers.
    fn load(&self, conn: &mut DbConnection) -> Result<CurrentUser, ApiError> {
        let generation = self.cache.as_ref().and_then(|c| c.generation());
        let remember = |key: CredentialKey, value: Cached| {
            if let Some(cache) = &self.cache {
                cache.put(key, generation, value, 1);
            }
        };
        match &self.bearer {
            Bearer::Login { id, epoch } => {
                let principal = match Principal::load(conn, *id) {
                    Err(ApiError::NotFound(_)) => {
                        return Err(ApiError::Unauthorized(
                            "The token's user no longer exists.".into(),
                        ));
                    }
                    other => other?,
                };
                remember(
                    CredentialKey::Login(*id, *epoch),
                    Cached::Login(principal.clone()),
                );
                login_caller(principal, *epoch, &self.origin)
            }
            Bearer::ApiToken(secret) => {
                let (principal, grant) = token::authenticate(conn, secret)?;
                if principal.active
                    && let Err(error) = token::touch(conn, &grant)
                {
                    // Bookkeeping: a read is not refused because its last use could not be
                    // noted (SQLite busy with a long write, say); the next request notes it.
                    log::warn!("last use of API token {} not noted: {error}", grant.id);
                }
                remember(
                    CredentialKey::Token(token::hash(secret)),
                    Cached::Token(principal.clone(), grant.clone()),
                );
                token_caller(principal, grant, self.needed, &self.origin)
            }
        }
    }

    /// Runs `work` for the verified caller in one trip to storage, as [`Db::lookup`] runs a
    /// short read by key: the caller's check and the work share the pooled connection (and,
    /// on SQLite, its snapshot).
    pub async fn lookup<T, F>(self, db: &Db, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection, &CurrentUser) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let cached = self.cached();
        self.checked(cached, db, work, true).await
    }

    /// The caller, when the principal cache holds them: without a trip to storage, for a
    /// handler that may answer from a cache of its own. The answer is remembered, so that a
    /// later [`Credential::lookup`] or [`Credential::run`] does not ask the cache again.
    pub fn known(&self) -> Option<CurrentUser> {
        self.cached()
    }

    /// Runs `work` for the verified caller in one trip to the blocking pool, as [`Db::run`]
    /// does: for work that grows with the data (a board view, a list).
    pub async fn run<T, F>(self, db: &Db, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection, &CurrentUser) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let cached = self.cached();
        self.checked(cached, db, work, false).await
    }

    /// Runs `work` for the caller in one trip: `cached` when the principal cache held them
    /// (looked up once, by the caller of this), else checked against storage first.
    async fn checked<T, F>(
        self,
        cached: Option<CurrentUser>,
        db: &Db,
        work: F,
        short: bool,
    ) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection, &CurrentUser) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        // An API token checked against storage notes its last use, a write: never on the
        // async worker.
        let short = short && (cached.is_some() || matches!(self.bearer, Bearer::Login { .. }));
        let checked = move |conn: &mut DbConnection| {
            let caller = match cached {
                Some(caller) => caller,
                None => self.load(conn)?,
            };
            work(conn, &caller)
        };
        if short {
            db.lookup(checked).await
        } else {
            db.run(checked).await
        }
    }

    /// The caller alone: from the principal cache without a trip, else in a trip of its own.
    async fn caller(self, db: &Db) -> Result<CurrentUser, ApiError> {
        match self.cached() {
            Some(caller) => Ok(caller),
            None => {
                self.checked(None, db, |_, caller| Ok(caller.clone()), true)
                    .await
            }
        }
    }
}

/// The caller behind a person's login of `epoch`, when their account still allows it.
fn login_caller(
    principal: Principal,
    epoch: i64,
    origin: &Option<String>,
) -> Result<CurrentUser, ApiError> {
    if !principal.active {
        return Err(ApiError::Unauthorized(
            "This account is deactivated.".into(),
        ));
    }
    if principal.auth_epoch != epoch {
        return Err(ApiError::Unauthorized(
            "The access token was revoked by a change of password, role or account status; \
             log in again."
                .into(),
        ));
    }
    Ok(CurrentUser {
        actor: principal.actor.with_origin(origin.clone()),
        email: principal.email,
        scopes: None,
        token_expires_at: None,
    })
}

/// The caller behind an API token: of an active user, holding the scope `needed`.
fn token_caller(
    principal: Principal,
    grant: token::TokenGrant,
    needed: Scope,
    header_origin: &Option<String>,
) -> Result<CurrentUser, ApiError> {
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
    let origin = grant.origin.clone().or(header_origin.clone());
    let mut actor = principal.actor.with_origin(origin);
    actor.token_id = Some(grant.id);
    Ok(CurrentUser {
        actor,
        email: principal.email,
        scopes: Some(grant.scopes),
        token_expires_at: Some(grant.expires_at),
    })
}

impl FromRequest for Credential {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(Credential::of(req))
    }
}

impl FromRequest for CurrentUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let db = req.app_data::<web::Data<Db>>().cloned();
        let credential = Credential::of(req);
        Box::pin(async move {
            let Some(db) = db else {
                return Err(ApiError::internal("Db is not registered"));
            };
            credential?.caller(&db).await
        })
    }
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
