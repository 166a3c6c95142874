//! Turning validated settings into a running service: secret, pool, migrations, the first
//! admin, and the HTTP server with graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpServer;
use rand::RngCore;
use rand::distr::{Alphanumeric, SampleString};

use crate::common::actor::Role;
use crate::common::db::{self, Db};
use crate::common::password;
use crate::config::Settings;
use crate::users::model::{NewUser, User};
use crate::web::jwt::JwtKeys;
use crate::{AppState, build_app};

/// The first admin of a development database when none is configured.
pub const DEFAULT_ADMIN_EMAIL: &str = "admin@example.org";

/// Opens and migrates the database, returning the handle, which counts SLA time in the
/// calendar of the settings (also for the command line: `seed-demo`, imports).
pub fn open_database(settings: &Settings) -> Result<Db, String> {
    crate::register_hooks();
    let calendar = settings.sla.calendar().map_err(|e| e.to_string())?;
    let pool = db::build_pool(&settings.database)?;
    let mut conn = pool.get().map_err(|e| {
        format!(
            "cannot connect to the database DATABASE_URL={}: {}",
            db::redact(&settings.database.url),
            db::one_line(&e.to_string())
        )
    })?;
    let applied = db::run_migrations(&mut conn)?;
    if applied > 0 {
        log::info!("applied {applied} migration(s)");
    }
    Ok(Db::from_settings(pool, &settings.database)
        .with_calendar(calendar)
        .with_hooks(crate::common::history::TRANSACTION_HOOKS))
}

/// Checks the settings that name rows of the database, once it is migrated: the demand board
/// (its key was checked with the other settings). One that does not exist yet is a warning
/// saying what will happen.
fn check_named_things(conn: &mut db::DbConnection, settings: &Settings) -> Result<(), String> {
    use diesel::prelude::*;
    let key = settings.demands.board.trim().to_uppercase();
    let exists: bool = diesel::select(diesel::dsl::exists(
        db::schema::boards::table.filter(db::schema::boards::key.eq(&key)),
    ))
    .get_result(conn)
    .map_err(|e| format!("cannot read the boards: {e}"))?;
    if !exists {
        // On a fresh install with the default board this is how it should be: say it, but do
        // not warn a newcomer about it. A board someone configured and that is missing is a
        // warning.
        let default = Settings::defaults()
            .map(|d| d.demands.board.trim().to_uppercase())
            .unwrap_or_default();
        let level = if key == default {
            log::Level::Info
        } else {
            log::Level::Warn
        };
        log::log!(
            level,
            "demands.board: there is no board {key} yet; the first POST /api/v1/demands creates \
             it (columns Intake, Accepted, …, led by the first admin). To use another board, \
             create it (POST /api/v1/boards) or set OPSBOARD__DEMANDS__BOARD to an existing key"
        );
    }
    Ok(())
}

/// Builds the state the app runs on: opens the database, resolves the JWT secret and creates
/// the first admin on an empty database.
pub fn prepare(settings: Settings) -> Result<AppState, String> {
    let db = open_database(&settings)?;
    let mut conn = db.pool().get().map_err(|e| e.to_string())?;
    check_named_things(&mut conn, &settings)?;
    drop(conn);
    bootstrap_admin(&db, &settings)?;
    state_over(settings, db)
}

/// The state over a database that is already open (or, for tests of an outage, one that
/// cannot be reached): the JWT keys, with a random secret in development when none is set.
pub fn state_over(settings: Settings, db: Db) -> Result<AppState, String> {
    let secret = if settings.auth.jwt_secret.is_empty() {
        log::warn!(
            "no JWT secret configured (OPSBOARD_JWT_SECRET): using a random one for this run; \
             tokens will not survive a restart"
        );
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        bytes.to_vec()
    } else {
        settings.auth.jwt_secret.as_bytes().to_vec()
    };
    let jwt = JwtKeys::new(&secret, &settings.auth)?;
    let dummy_hash = password::hash(&Alphanumeric.sample_string(&mut rand::rng(), 32))
        .map_err(|e| e.to_string())?;
    let throttle = crate::web::throttle::LoginThrottle::new(&settings.auth);
    let passwords = password::PasswordGate::new(
        settings.auth.password_hash_concurrency,
        Duration::from_secs(settings.auth.password_hash_wait_secs),
    );
    let db = db.with_watch(crate::common::db::watch::CommitWatch::start(
        &settings.database,
    ));
    let view_turns = crate::workflows::board_view::ViewTurns::new(
        settings.boards.concurrent_views,
        settings.boards.view_cache_mb,
        db.freshness(),
    );
    let principals = crate::web::principal_cache::principal_cache(
        Duration::from_millis(settings.auth.principal_cache_ms),
        db.freshness(),
    );
    let items = crate::items::cache::ItemCache::new(
        settings.database.item_cache_mb,
        db.freshness(),
        db.calendar(),
    );
    Ok(AppState {
        principals: Arc::new(principals),
        items: Arc::new(items),
        db,
        view_turns: Arc::new(view_turns),
        jwt: Arc::new(jwt),
        settings: Arc::new(settings),
        dummy_hash: Arc::new(crate::web::auth::DummyHash(dummy_hash)),
        login_throttle: Arc::new(throttle),
        passwords,
    })
}

/// Creates the first admin on a database without users, as the settings say.
fn bootstrap_admin(db: &Db, settings: &Settings) -> Result<(), String> {
    let mut conn = db.pool().get().map_err(|e| e.to_string())?;
    if User::any_exists(&mut conn).map_err(|e| e.to_string())? {
        return Ok(());
    }
    let auth = &settings.auth;
    let (email, password, generated) = if !auth.admin_email.is_empty() {
        (auth.admin_email.clone(), auth.admin_password.clone(), false)
    } else if settings.is_production() {
        log::warn!(
            "the database has no users; set OPSBOARD_ADMIN_EMAIL and OPSBOARD_ADMIN_PASSWORD or \
             run `opsboard user create --role admin`"
        );
        return Ok(());
    } else {
        (
            DEFAULT_ADMIN_EMAIL.to_string(),
            Alphanumeric.sample_string(&mut rand::rng(), 20),
            true,
        )
    };
    let form = NewUser {
        email: email.clone(),
        display_name: "Administrator".into(),
        role: Role::Admin,
        password: password.clone(),
    };
    User::create(&mut conn, form, &crate::common::actor::Actor::SYSTEM).map_err(|e| match e {
        crate::common::error::ApiError::Validation(errors) => format!(
            "OPSBOARD_ADMIN_EMAIL / OPSBOARD_ADMIN_PASSWORD: {}",
            errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.to_string(),
    })?;
    if generated {
        // Printed once, so that a newcomer can log in; it is not stored anywhere in clear.
        log::warn!(
            "created the first admin: e-mail {email}  password {password}  (shown only now)"
        );
    } else {
        log::info!("created the first admin {email}");
    }
    Ok(())
}

/// Loads the demo data into an empty database and logs the demo logins. Refused in production.
/// With `must_load`, a database that already has data is an error; otherwise it is only noted.
pub fn load_demo(db: &Db, settings: &Settings, must_load: bool) -> Result<(), String> {
    if settings.is_production() {
        return Err("demo data is never loaded in production (OPSBOARD_ENV=production)".into());
    }
    // Through run_here, so that the demo's SLA clocks count in this app's calendar.
    if !must_load
        && db
            .run_here(crate::workflows::demo::has_data)
            .map_err(|e| e.to_string())?
    {
        log::info!("demo data not loaded: the database already has data");
        return Ok(());
    }
    let summary = db
        .run_here(crate::workflows::demo::seed)
        .map_err(|e| e.problem().detail)?;
    log::info!(
        "loaded demo data: {} organizations, {} online services with RACI templates, {} items on the OPS and DEM boards",
        summary.organizations,
        summary.services,
        summary.items
    );
    for (email, role, team_role) in &summary.logins {
        log::info!(
            "demo login: {email:<40} password {}  ({role}, {team_role})",
            crate::workflows::demo::DEMO_PASSWORD
        );
    }
    Ok(())
}

/// Checks for newly breached SLAs at the configured interval and records each breach as an
/// event; a failed check is logged and retried at the next tick.
fn watch_sla_breaches(state: AppState) {
    let every = Duration::from_secs(state.settings.sla.breach_check_secs);
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(every);
        loop {
            interval.tick().await;
            let result = state
                .db
                .transaction(|conn| {
                    crate::incidents::model::record_breaches(conn, chrono::Utc::now())
                })
                .await;
            match result {
                Ok(0) => {}
                Ok(n) => log::info!("recorded {n} new SLA breach(es)"),
                Err(e) => log::warn!("SLA breach check failed: {e}"),
            }
        }
    });
}

/// Deletes the stored responses of idempotent requests whose day is over, every ten minutes.
fn clean_up_idempotency_keys(state: AppState) {
    actix_web::rt::spawn(async move {
        let mut interval = actix_web::rt::time::interval(Duration::from_secs(600));
        loop {
            interval.tick().await;
            match state.db.run(crate::common::idempotency::clean_up).await {
                Ok(0) => {}
                Ok(n) => log::debug!("deleted {n} expired idempotency key(s)"),
                Err(e) => log::warn!("cleaning up idempotency keys failed: {e}"),
            }
        }
    });
}

/// Refuses what a start cannot do before anything is changed: demo data in production.
pub fn check_start(settings: &Settings, demo: bool) -> Result<(), String> {
    if demo && settings.is_production() {
        return Err("demo data is never loaded in production (OPSBOARD_ENV=production)".into());
    }
    Ok(())
}

/// Takes the listening sockets of `bind` (`address:port` or `host:port`) as actix-web's `bind`
/// does: every address the name resolves to, succeeding when at least one can be bound.
pub fn bind_listeners(bind: &str) -> Result<Vec<std::net::TcpListener>, String> {
    use std::net::ToSocketAddrs;
    let addresses = bind
        .to_socket_addrs()
        .map_err(|e| format!("cannot listen on {bind} (OPSBOARD_BIND): {e}"))?;
    let mut listeners = Vec::new();
    let mut last_error = None;
    for address in addresses {
        match std::net::TcpListener::bind(address).and_then(|l| l.set_nonblocking(true).map(|()| l))
        {
            Ok(listener) => listeners.push(listener),
            Err(e) => last_error = Some(e),
        }
    }
    if listeners.is_empty() {
        let why = last_error.map_or_else(
            || "the name resolves to no address".to_string(),
            |e| e.to_string(),
        );
        return Err(format!(
            "cannot listen on {bind} (OPSBOARD_BIND): {why}; nothing was changed"
        ));
    }
    Ok(listeners)
}

/// Runs the HTTP server until SIGTERM or Ctrl-C, then lets in-flight requests finish. With
/// `demo`, an empty development database first gets the demo data.
///
/// Every check that can fail comes before every side effect: the address is bound first, so a
/// busy port leaves the database untouched (no migration, no first admin whose one-time
/// password would be lost), then the database is migrated, the first admin created and the
/// demo data loaded.
pub async fn serve(settings: Settings, demo: bool) -> Result<(), String> {
    check_start(&settings, demo)?;
    let bind = settings.server.bind.clone();
    let listeners = bind_listeners(&bind)?;
    let workers = settings.server.workers;
    let shutdown_timeout = settings.server.shutdown_timeout_secs;
    let pool_size = settings.database.pool_size;
    let backend = db::parse_url(&settings.database.url).0;
    let state = actix_web::web::block(move || {
        let state = prepare(settings)?;
        if demo {
            load_demo(&state.db, &state.settings, false)?;
        }
        Ok::<_, String>(state)
    })
    .await
    .map_err(|e| e.to_string())??;
    // Blocking work is database work, bounded by the pool anyway; more threads than connections
    // only wait, and each one keeps its stack and allocator cache (measured: 170 MB resident
    // after a load with tokio's default of 512, against the pool of 8).
    let blocking_threads = usize::try_from(pool_size).unwrap_or(8).max(2);
    watch_sla_breaches(state.clone());
    clean_up_idempotency_keys(state.clone());
    // Stops with the server's runtime; kept so that dropping it does not stop it earlier.
    let _webhook_worker =
        state.settings.webhooks.worker.then(|| {
            crate::webhooks::worker::spawn(state.db.clone(), state.settings.webhooks.clone())
        });
    let mut server = HttpServer::new(move || build_app(state.clone()))
        .worker_max_blocking_threads(blocking_threads)
        .shutdown_timeout(shutdown_timeout)
        .client_request_timeout(Duration::from_secs(30));
    if workers > 0 {
        server = server.workers(workers);
    }
    for listener in listeners {
        server = server
            .listen(listener)
            .map_err(|e| format!("cannot listen on {bind}: {e}"))?;
    }
    for address in server.addrs() {
        log::info!(
            "opsboard {} listening on http://{address} ({backend:?}); API docs: http://{address}/swagger-ui/",
            env!("CARGO_PKG_VERSION")
        );
    }
    server.run().await.map_err(|e| e.to_string())
}
