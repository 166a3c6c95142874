//! Storage: one connection type over SQLite and PostgreSQL, its r2d2 pool, embedded migrations.
//!
//! The backend is chosen by the URL: `postgres://` or `postgresql://` selects PostgreSQL; anything
//! else (`sqlite://path`, `sqlite:path`, or a plain path) is an SQLite file whose directory is
//! created. Every pooled SQLite connection gets WAL, foreign keys and a busy timeout.

pub mod schema;

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseSettings;
use crate::error::ApiError;

/// The schema for SQLite, embedded in the binary.
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
/// The same schema for PostgreSQL.
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either engine; queries written once run on both.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// PostgreSQL, the production engine.
    Postgresql(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// Which engine a URL selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://…`
    Postgres,
    /// a file path
    Sqlite,
}

/// The engine and the address to hand to it.
pub fn parse_url(url: &str) -> (Backend, String) {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return (Backend::Postgres, url.to_string());
    }
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    (Backend::Sqlite, path.to_string())
}

/// Opens connections for the pool, reporting the engine's own error (MultiConnection's
/// `establish` would hide it behind "invalid connection url").
#[derive(Debug, Clone)]
pub struct ConnectionManager {
    backend: Backend,
    address: String,
    busy_timeout_ms: u32,
}

/// Why a connection could not be opened or checked.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    /// The engine refused or could not be reached.
    #[error(transparent)]
    Connect(#[from] diesel::ConnectionError),
    /// A set-up statement or the health check failed.
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

impl ConnectionManager {
    /// A manager for the given URL.
    pub fn new(url: &str, busy_timeout_ms: u32) -> Self {
        let (backend, address) = parse_url(url);
        ConnectionManager {
            backend,
            address,
            busy_timeout_ms,
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = ConnectionError;

    fn connect(&self) -> Result<DbConnection, ConnectionError> {
        match self.backend {
            Backend::Postgres => Ok(DbConnection::Postgresql(PgConnection::establish(
                &self.address,
            )?)),
            Backend::Sqlite => {
                let mut conn = SqliteConnection::establish(&self.address)?;
                // busy_timeout first: switching to WAL itself needs the lock.
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                    self.busy_timeout_ms
                ))?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), ConnectionError> {
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// The shared pool; cheap to clone.
pub type Pool = r2d2::Pool<ConnectionManager>;

/// Builds the pool. For SQLite the file's directory is created first.
pub fn build_pool(settings: &DatabaseSettings) -> Result<Pool, String> {
    let manager = ConnectionManager::new(&settings.url, settings.sqlite_busy_timeout_ms);
    if manager.backend == Backend::Sqlite {
        let path = std::path::Path::new(&manager.address);
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
        }
    }
    r2d2::Pool::builder()
        .max_size(settings.pool_size)
        // A file connection cannot drop out under us; a network one can, so only PostgreSQL
        // connections are checked (one round trip) when taken from the pool.
        .test_on_check_out(manager.backend == Backend::Postgres)
        .connection_timeout(Duration::from_secs(settings.connect_timeout_secs.max(1)))
        .build(manager)
        .map_err(|e| format!("cannot open the database {}: {e}", redact(&settings.url)))
}

/// The URL with any password replaced, fit for a log line.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Applies all pending migrations of the connection's engine; returns how many ran.
pub fn run_migrations(conn: &mut DbConnection) -> Result<usize, String> {
    let applied = match conn {
        DbConnection::Postgresql(pg) => pg
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
        DbConnection::Sqlite(sqlite) => {
            // SQLite changes a constraint by rebuilding the table (its documented 12 steps):
            // with foreign keys on, dropping the old table would cascade into its children.
            // The pragma is a no-op inside a transaction, so it is set around the migrations,
            // and every migration that rebuilds a table checks the keys itself.
            sqlite
                .batch_execute("PRAGMA foreign_keys = OFF;")
                .map_err(|e| format!("migration failed: {e}"))?;
            let applied = sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|v| v.len());
            sqlite
                .batch_execute("PRAGMA foreign_keys = ON;")
                .map_err(|e| format!("migration failed: {e}"))?;
            applied
        }
    };
    applied.map_err(|e| format!("migration failed: {e}"))
}

/// Whether the schema is current: the database answers and no migration is pending.
pub fn check_ready(conn: &mut DbConnection) -> Result<(), String> {
    let pending = match conn {
        DbConnection::Postgresql(pg) => pg.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConnection::Sqlite(sqlite) => sqlite.has_pending_migration(SQLITE_MIGRATIONS),
    };
    match pending {
        Ok(false) => Ok(()),
        Ok(true) => Err("migrations are pending".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs `work` in a write transaction. On SQLite it begins with `BEGIN IMMEDIATE`: the write
/// lock is taken up front, so concurrent writers queue on the busy timeout instead of failing
/// when one of them read before another committed (SQLITE_BUSY_SNAPSHOT).
fn write_transaction<T>(
    conn: &mut DbConnection,
    work: &dyn Fn(&mut DbConnection) -> Result<T, ApiError>,
) -> Result<T, ApiError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(|tx| work(tx));
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work(conn) {
        Ok(value) => {
            match <DbConnection as Connection>::TransactionManager::commit_transaction(conn) {
                Ok(()) => Ok(value),
                Err(error) => {
                    let _ = <DbConnection as Connection>::TransactionManager::rollback_transaction(
                        conn,
                    );
                    Err(error.into())
                }
            }
        }
        Err(error) => {
            <DbConnection as Connection>::TransactionManager::rollback_transaction(conn)?;
            Err(error)
        }
    }
}

/// The pool plus a way to run blocking database work off the async workers.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
}

impl Db {
    /// Wraps a pool.
    pub fn new(pool: Pool) -> Self {
        Db { pool }
    }

    /// The pool itself, for start-up tasks and tests.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }

    /// Like [`Db::run`], inside one transaction: all of `work` is written, or none of it.
    /// A transaction that lost a race for the write lock (SQLite) or a serialization check
    /// (PostgreSQL) is retried from the start a few times before the client gets a 503.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: Fn(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        self.run(move |conn| {
            let mut attempt = 0;
            loop {
                match write_transaction(conn, &work) {
                    Err(ApiError::Busy(cause)) if attempt < 5 => {
                        attempt += 1;
                        log::debug!("transaction retried ({attempt}): {cause}");
                        std::thread::sleep(Duration::from_millis(10 * attempt));
                    }
                    other => return other,
                }
            }
        })
        .await
    }
}

diesel::define_sql_function!(
    /// SQL `lower()`, for case-insensitive comparisons on both engines (ASCII on SQLite).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

/// The current time, truncated to microseconds so that both engines store the same value.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}
