//! Storage: one connection type over SQLite and PostgreSQL, its r2d2 pool, embedded migrations.
//!
//! The backend is chosen by the URL: `postgres://` or `postgresql://` selects PostgreSQL; anything
//! else without a scheme (`sqlite://path`, `sqlite:path`, or a plain path) is an SQLite file;
//! any other scheme is refused ([`check_url`]). The file's directory is created when it lies
//! under the working directory or `database.create_dir` is set ([`sqlite_dir_to_create`]).
//! Every pooled SQLite connection gets WAL, foreign keys and a busy timeout.

pub mod lost;
pub mod schema;
pub mod watch;

use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::common::error::ApiError;

/// Storage settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path`, a plain path, or `postgres://…`.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// PostgreSQL only: seconds one connection attempt may take (libpq's `connect_timeout`).
    pub connect_timeout_secs: u64,
    /// Milliseconds a request waits for a free pooled connection before its 503.
    pub pool_timeout_ms: u64,
    /// SQLite only: milliseconds a writer waits for a lock held by another connection.
    pub sqlite_busy_timeout_ms: u32,
    /// Milliseconds within which a transaction that lost a race for a lock is retried.
    pub write_retry_ms: u64,
    /// SQLite only: create the file's directory even when it lies outside the working
    /// directory (inside it, a missing directory is always created).
    pub create_dir: bool,
    /// Tests only (refused in production): each write transaction sleeps a random 0..N ms
    /// before its commit, so that concurrent transactions commit out of the order they wrote.
    pub test_commit_delay_max_ms: u64,
    /// Milliseconds between two looks of the commit watch for other processes' commits
    /// ([`watch`]); the caches that spare requests a database read serve only while it
    /// runs. 0 turns the watch, and with it those caches, off.
    pub watch_ms: u64,
    /// Megabytes of items (tasks and demands, as their JSON) kept ready for
    /// `GET /items/{key}`, served while no process has committed a change since they were
    /// read; 0 reads every item afresh.
    pub item_cache_mb: usize,
}

/// The forms `DATABASE_URL` accepts, for messages.
pub const ACCEPTED_URLS: &str = "sqlite://path, a plain file path, postgres://… or postgresql://…";

/// Refuses a URL whose scheme is neither SQLite's nor PostgreSQL's, naming the setting and
/// the accepted forms (a `mysql://…` URL would otherwise become a directory `mysql:`).
pub fn check_url(url: &str) -> Result<(), String> {
    if let Some((scheme, _)) = url.split_once("://") {
        let looks_like_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
        if looks_like_scheme && !["sqlite", "postgres", "postgresql"].contains(&scheme) {
            return Err(format!(
                "database.url (DATABASE_URL) must be {ACCEPTED_URLS}; the scheme `{scheme}://` \
                 is not supported"
            ));
        }
    }
    Ok(())
}

/// For an SQLite URL whose directory is missing: that directory, when it may be created (it
/// lies under the working directory, or `database.create_dir` is set); an error naming
/// `DATABASE_URL` and the directory otherwise. `None` when there is nothing to create.
/// Only looks: creating it is left to [`build_pool`], after every other check.
pub fn sqlite_dir_to_create(
    settings: &DatabaseSettings,
) -> Result<Option<std::path::PathBuf>, String> {
    let (backend, address) = parse_url(&settings.url);
    if backend != Backend::Sqlite || address == ":memory:" {
        return Ok(None);
    }
    let path = std::path::Path::new(&address);
    let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) else {
        return Ok(None);
    };
    if dir.is_dir() {
        return Ok(None);
    }
    let escapes = dir
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir));
    let under_working_dir = !escapes
        && (dir.is_relative() || std::env::current_dir().is_ok_and(|cwd| dir.starts_with(cwd)));
    if under_working_dir || settings.create_dir {
        Ok(Some(dir.to_path_buf()))
    } else {
        Err(format!(
            "database.url (DATABASE_URL) names a file in {}, which does not exist; create \
             the directory, or set database.create_dir = true (OPSBOARD__DATABASE__CREATE_DIR=true) \
             to let opsboard create it",
            dir.display()
        ))
    }
}

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

/// The PostgreSQL URL with libpq's `connect_timeout` added unless the URL sets one, so that an
/// unreachable server fails a connection attempt in seconds rather than the kernel's minutes.
fn with_connect_timeout(url: &str, seconds: u64) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}connect_timeout={}", seconds.max(1))
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
    /// A manager for the configured URL and timeouts.
    pub fn new(settings: &DatabaseSettings) -> Self {
        let (backend, address) = parse_url(&settings.url);
        let address = match backend {
            Backend::Postgres => with_connect_timeout(&address, settings.connect_timeout_secs),
            Backend::Sqlite => address,
        };
        ConnectionManager {
            backend,
            address,
            busy_timeout_ms: settings.sqlite_busy_timeout_ms,
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

    /// From the connection's own state, without a round trip: a transaction left broken, a
    /// loss noted by the error mapping on this thread ([`lost`]), or a panic on the way out.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        lost::take() || std::thread::panicking() || conn.is_broken()
    }
}

/// The shared pool; cheap to clone.
pub type Pool = r2d2::Pool<ConnectionManager>;

/// Builds the pool and opens its first connection. For SQLite the file's directory is
/// created first where [`sqlite_dir_to_create`] allows it.
pub fn build_pool(settings: &DatabaseSettings) -> Result<Pool, String> {
    check_url(&settings.url)?;
    if let Some(dir) = sqlite_dir_to_create(settings)? {
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create the directory {}: {e}", dir.display()))?;
    }
    let manager = ConnectionManager::new(settings);
    pool_builder(settings).build(manager).map_err(|e| {
        format!(
            "cannot open the database DATABASE_URL={}: {}",
            redact(&settings.url),
            one_line(&e.to_string())
        )
    })
}

/// A multi-line engine message (libpq's) on one line.
pub fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// r2d2's error handler: one debug line per failed attempt instead of its own error log, so
/// that an unreachable database gives the one clear message of the caller, not dozens.
#[derive(Debug, Clone, Copy)]
struct QuietErrors;

impl r2d2::HandleError<ConnectionError> for QuietErrors {
    fn handle_error(&self, error: ConnectionError) {
        log::debug!(
            "database connection attempt failed: {}",
            one_line(&error.to_string())
        );
    }
}

/// Builds the pool without connecting: connections are opened when first needed. For a
/// service that must start while its database is down, and for tests of such an outage.
pub fn build_pool_lazily(settings: &DatabaseSettings) -> Pool {
    let manager = ConnectionManager::new(settings);
    pool_builder(settings).build_unchecked(manager)
}

fn pool_builder(settings: &DatabaseSettings) -> r2d2::Builder<ConnectionManager> {
    r2d2::Pool::builder()
        .max_size(settings.pool_size)
        .error_handler(Box::new(QuietErrors))
        // No `SELECT 1` when a connection is taken out (a round trip per request): a dead
        // PostgreSQL connection fails its first statement, which answers 503 (the client
        // retries) and marks it, and `has_broken` drops it when it comes back.
        .test_on_check_out(false)
        // How long a request waits for a free connection (or for a new one to open) before it
        // gets a 503: short, so that an outage fails fast instead of piling up requests.
        .connection_timeout(Duration::from_millis(settings.pool_timeout_ms.max(1)))
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
/// when one of them read before another committed (SQLITE_BUSY_SNAPSHOT). The hooks run
/// around `work` inside it (the history's bookkeeping). Returns the value and what the
/// `before_commit` hook told of what the transaction wrote.
fn write_transaction<T>(
    conn: &mut DbConnection,
    work: &dyn Fn(&mut DbConnection) -> Result<T, ApiError>,
    hooks: TransactionHooks,
    commit_delay_max_ms: u64,
) -> Result<(T, Wrote), ApiError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let work_and_finish = |conn: &mut DbConnection| -> Result<(T, Wrote), ApiError> {
        (hooks.begin)();
        let value = work(conn)?;
        let wrote = (hooks.before_commit)(conn)?;
        if commit_delay_max_ms > 0 {
            let delay = rand::random_range(0..=commit_delay_max_ms);
            std::thread::sleep(Duration::from_millis(delay));
        }
        Ok((value, wrote))
    };
    let DbConnection::Sqlite(sqlite) = conn else {
        return conn.transaction(|tx| work_and_finish(tx));
    };
    AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")?;
    match work_and_finish(conn) {
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

/// What runs around the work of every write transaction of a [`Db`]: `begin` before it,
/// `before_commit` after it, inside the transaction, telling what the transaction wrote. The
/// history provides them (`history::TRANSACTION_HOOKS`); the app hands them to the [`Db`] it
/// builds, so that storage does not depend on the history above it.
#[derive(Debug, Clone, Copy)]
pub struct TransactionHooks {
    /// Before the work.
    pub begin: fn(),
    /// After the work, before the commit.
    pub before_commit: fn(&mut DbConnection) -> Result<Wrote, ApiError>,
}

/// What a write transaction wrote, as its `before_commit` hook tells it: what its commit is
/// announced to (see [`Db::commits`] and [`Db::observed_commits`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Wrote {
    /// How many history events.
    pub events: usize,
    /// Whether the history's event observer (the webhooks' outbox) took its events.
    pub observed: bool,
}

impl TransactionHooks {
    /// Hooks that do nothing.
    pub const NONE: TransactionHooks = TransactionHooks {
        begin: || {},
        before_commit: |_| Ok(Wrote::default()),
    };
}

/// A row (or set of rows) that a write locks before it reads what one of its rules depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lock {
    /// An item: its version, RACI, decision and place.
    Item(i64),
    /// A board column: its WIP limit and the ranks of the items in it.
    Column(i64),
    /// A board: its item numbers and columns.
    Board(i64),
    /// A user: version, role, password, activity.
    User(i64),
    /// An online service: its fields and its RACI template.
    Service(i64),
    /// An organization.
    Organization(i64),
    /// A comment on an item.
    Comment(i64),
    /// An SLA policy.
    SlaPolicy(i64),
    /// A webhook subscription: its version and secrets.
    Webhook(i64),
    /// The set of active admins, for the rule that one must remain.
    Admins,
    /// A reference into another system (`jira`, `10042`) that an upsert by reference looks up
    /// and then creates: two upserts of one reference take turns, so the second finds the
    /// first's item instead of creating another. Taken before any row lock; the number is
    /// [`external_ref_key`].
    ExternalRef(i64),
}

/// The advisory-lock key of an external reference: FNV-1a (64 bit) over `kind`, system and key,
/// stable across processes and versions (unlike Rust's `DefaultHasher`).
pub fn external_ref_key(kind: &str, system: &str, key: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in kind
        .bytes()
        .chain([0])
        .chain(system.bytes())
        .chain([0])
        .chain(key.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The advisory-lock key of the admin set (PostgreSQL's `pg_advisory_xact_lock`): any number
/// that nothing else uses; this one spells "opsadmin" in ASCII.
const ADMINS_LOCK_KEY: i64 = 0x6f70_7361_646d_696e;

/// The class (first key) of the two-key advisory locks of external references.
const EXTERNAL_REF_LOCK_CLASS: i32 = 0x6f70_6272; // "opbr"

/// A 64-bit hash folded to the 32 bits of a two-key advisory lock.
fn fold(hash: i64) -> i32 {
    let hash = u64::from_ne_bytes(hash.to_ne_bytes());
    i32::from_ne_bytes(((hash ^ (hash >> 32)) as u32).to_ne_bytes())
}

/// Locks `what` until the end of the transaction, so that a rule which reads and then writes
/// (WIP limits, ranks, versions, the last admin) holds under concurrent writers.
///
/// On PostgreSQL this is `SELECT … FOR UPDATE` (or an advisory lock for the admin set): a
/// concurrent writer of the same row waits here until this transaction ends, then reads the
/// state this one left. On SQLite it does nothing: [`Db::transaction`] begins with
/// `BEGIN IMMEDIATE`, which already serializes every writer. Returns whether a lock was taken,
/// that is whether rows read before it may since have changed and must be read again.
pub fn lock(conn: &mut DbConnection, what: Lock) -> Result<bool, ApiError> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::BigInt;
    let DbConnection::Postgresql(pg) = conn else {
        return Ok(false);
    };
    let (sql, id) = match what {
        Lock::Item(id) => ("SELECT 1 FROM items WHERE id = $1 FOR UPDATE", id),
        Lock::Column(id) => ("SELECT 1 FROM board_columns WHERE id = $1 FOR UPDATE", id),
        Lock::Board(id) => ("SELECT 1 FROM boards WHERE id = $1 FOR UPDATE", id),
        Lock::User(id) => ("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", id),
        Lock::Service(id) => ("SELECT 1 FROM services WHERE id = $1 FOR UPDATE", id),
        Lock::Organization(id) => ("SELECT 1 FROM organizations WHERE id = $1 FOR UPDATE", id),
        Lock::Comment(id) => ("SELECT 1 FROM item_comments WHERE id = $1 FOR UPDATE", id),
        Lock::SlaPolicy(id) => ("SELECT 1 FROM sla_policies WHERE id = $1 FOR UPDATE", id),
        Lock::Webhook(id) => (
            "SELECT 1 FROM webhook_subscriptions WHERE id = $1 FOR UPDATE",
            id,
        ),
        Lock::Admins => ("SELECT pg_advisory_xact_lock($1)", ADMINS_LOCK_KEY),
        // Two keys: the class of lock and the reference's hash, so that no other advisory lock
        // (the admins', the feed's numbering) can collide with one.
        Lock::ExternalRef(hash) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock($1, $2)")
                .bind::<diesel::sql_types::Integer, _>(EXTERNAL_REF_LOCK_CLASS)
                .bind::<diesel::sql_types::Integer, _>(fold(hash))
                .execute(pg)?;
            return Ok(true);
        }
    };
    diesel::sql_query(sql).bind::<BigInt, _>(id).execute(pg)?;
    Ok(true)
}

/// The pool plus a way to run blocking database work off the async workers.
#[derive(Clone)]
pub struct Db {
    pool: Pool,
    retry_budget: Duration,
    hooks: TransactionHooks,
    commit_delay_max_ms: u64,
    calendar: std::sync::Arc<crate::common::calendar::Calendar>,
    commits: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    observed: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    watch: watch::CommitWatch,
}

impl Db {
    /// Wraps a pool. A transaction that loses a race for a lock is retried while less than
    /// `retry_budget` has passed since it first began.
    pub fn new(pool: Pool, retry_budget: Duration) -> Self {
        Db {
            pool,
            retry_budget,
            hooks: TransactionHooks::NONE,
            commit_delay_max_ms: 0,
            calendar: crate::common::calendar::current(),
            commits: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            observed: std::sync::Arc::new(tokio::sync::watch::Sender::new(0)),
            watch: watch::CommitWatch::off(),
        }
    }

    /// The same handle, with a watch of other processes' commits (see [`watch`]) for its
    /// [`Db::freshness`]: for the server, whose caches rely on it.
    pub fn with_watch(self, watch: watch::CommitWatch) -> Self {
        Db { watch, ..self }
    }

    /// Whether what was read from this database may still be served from memory: for the
    /// caches of the callers and of the items.
    pub fn freshness(&self) -> watch::Freshness {
        watch::Freshness::new(self.commits(), self.watch.clone())
    }

    /// The same handle, counting SLA time in `calendar` in all the work it runs.
    pub fn with_calendar(self, calendar: crate::common::calendar::Calendar) -> Self {
        Db {
            calendar: std::sync::Arc::new(calendar),
            ..self
        }
    }

    /// The calendar SLA time counts in for this app: for clocks computed outside a piece of
    /// database work (an incident kept in memory).
    pub fn calendar(&self) -> std::sync::Arc<crate::common::calendar::Calendar> {
        self.calendar.clone()
    }

    /// Runs `work` on a pooled connection here, on the calling thread, with this app's
    /// calendar: for start-up, the command line and background tasks that already run off
    /// the async workers.
    pub fn run_here<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut conn = self.pool.get()?;
        crate::common::calendar::with_calendar(&self.calendar, || work(&mut conn))
    }

    /// A pool and retry budget as the settings say, the pool built by `build`.
    pub fn from_settings(pool: Pool, settings: &DatabaseSettings) -> Self {
        Db {
            commit_delay_max_ms: settings.test_commit_delay_max_ms,
            ..Db::new(pool, Duration::from_millis(settings.write_retry_ms))
        }
    }

    /// The same handle, running `hooks` around the work of every write transaction.
    pub fn with_hooks(self, hooks: TransactionHooks) -> Self {
        Db { hooks, ..self }
    }

    /// Counts this process's commits that wrote history events: the changes feed's long poll
    /// waits on it rather than asking the database again and again. Writes of other
    /// processes (a second instance on one PostgreSQL database) do not show here; the long
    /// poll also looks at the database now and then.
    pub fn commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.commits.subscribe()
    }

    /// Notes a commit that wrote history events, waking the long polls of the changes feed.
    pub fn note_commit(&self) {
        self.commits.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Counts this process's commits whose events the history's event observer took (the
    /// webhooks' outbox wrote deliveries for them), and the commits noted by
    /// [`Db::note_observed_commit`]: the webhook worker waits on it, so that the other writes
    /// do not each cost it a look at the database.
    pub fn observed_commits(&self) -> tokio::sync::watch::Receiver<u64> {
        self.observed.subscribe()
    }

    /// Notes a commit the event observer's reader should look at (a delivery written outside
    /// the history, such as a test ping).
    pub fn note_observed_commit(&self) {
        self.observed.send_modify(|n| *n = n.wrapping_add(1));
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
        let calendar = self.calendar.clone();
        actix_web::web::block(move || {
            let mut conn = pool.get()?;
            crate::common::calendar::with_calendar(&calendar, || work(&mut conn))
        })
        .await?
    }

    /// Like [`Db::run`] for a short read by key: one item, the caller's account. On SQLite,
    /// when the pool has an idle connection, it runs right here on the async worker, inside
    /// one deferred transaction: an embedded database answers such a read in microseconds,
    /// less than the two thread switches of a trip to the blocking pool cost, and its
    /// statements then share one snapshot and take the WAL's read lock once instead of once
    /// each (a reader in WAL mode never waits for a writer). With no idle connection, and
    /// always on PostgreSQL (a round trip over the network), it runs on the blocking pool as
    /// [`Db::run`] does; a PostgreSQL transaction would cost two more round trips, and each
    /// statement there already reads a consistent snapshot of its own.
    ///
    /// Only for work whose size does not grow with the data: lists, board views, history
    /// and reports go through [`Db::run`], so that they never hold an async worker.
    pub async fn lookup<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let calendar = self.calendar.clone();
        let Some(mut conn) = self.pool.try_get() else {
            return self.run(work).await;
        };
        if let DbConnection::Sqlite(_) = &mut *conn {
            use diesel::Connection;
            let conn: &mut DbConnection = &mut conn;
            return crate::common::calendar::with_calendar(&calendar, || conn.transaction(work));
        }
        actix_web::web::block(move || {
            crate::common::calendar::with_calendar(&calendar, || work(&mut conn))
        })
        .await?
    }

    /// Whether the database answers and is migrated, within `deadline` whatever the state of
    /// the pool or of the blocking threads: for `/ready`, which a load balancer calls while
    /// the service may be drowning.
    pub async fn probe(&self, deadline: Duration) -> Result<(), ApiError> {
        let pool = self.pool.clone();
        let check = actix_web::web::block(move || {
            let mut conn = pool
                .get_timeout(deadline)
                .map_err(|e| ApiError::Unavailable(e.to_string()))?;
            check_ready(&mut conn).map_err(ApiError::Unavailable)
        });
        match actix_web::rt::time::timeout(deadline, check).await {
            Ok(result) => result?,
            Err(_) => Err(ApiError::Unavailable(format!(
                "no answer from the database within {} ms",
                deadline.as_millis()
            ))),
        }
    }

    /// Like [`Db::run`], inside one transaction: all of `work` is written, or none of it.
    /// A transaction that lost a race for the write lock (SQLite's busy timeout), a
    /// serialization check or a deadlock (PostgreSQL) is retried from the start, with a short
    /// growing pause, while the retry budget lasts; then the client gets a 503 with
    /// `Retry-After`. So a locked database costs a writer a few seconds, never half a minute.
    pub async fn transaction<T, F>(&self, work: F) -> Result<T, ApiError>
    where
        F: Fn(&mut DbConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let budget = self.retry_budget;
        let delay = self.commit_delay_max_ms;
        let hooks = self.hooks;
        let (value, wrote) = self
            .run(move |conn| {
                let started = std::time::Instant::now();
                let mut attempt: u64 = 0;
                loop {
                    match write_transaction(conn, &work, hooks, delay) {
                        Err(ApiError::Busy(cause)) if attempt < 8 && started.elapsed() < budget => {
                            attempt += 1;
                            log::debug!("transaction retried ({attempt}): {cause}");
                            std::thread::sleep(Duration::from_millis(10 * attempt));
                        }
                        other => return other,
                    }
                }
            })
            .await?;
        if wrote.events > 0 {
            self.note_commit();
        }
        if wrote.observed {
            self.note_observed_commit();
        }
        Ok(value)
    }
}

diesel::define_sql_function!(
    /// SQL `coalesce()` of a nullable date and a fallback, for sorting by a date that may be
    /// missing (keyset paging cannot step over NULL).
    #[sql_name = "coalesce"]
    fn coalesce_date(
        x: diesel::sql_types::Nullable<diesel::sql_types::Date>,
        y: diesel::sql_types::Date
    ) -> diesel::sql_types::Date
);

diesel::define_sql_function!(
    /// SQL `lower()`, for case-insensitive comparisons on both engines (ASCII on SQLite).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

/// Loads `query` on whichever engine `conn` is, for the few queries that diesel's
/// multi-engine connection cannot express although both engines can (`UNION ALL`: its derive
/// implements no combination clause). The query is written once; each engine prepares it as
/// its own.
pub fn load_on_engine<'query, Q, U>(
    query: Q,
    conn: &mut DbConnection,
) -> diesel::QueryResult<Vec<U>>
where
    Q: diesel::query_dsl::LoadQuery<'query, PgConnection, U>
        + diesel::query_dsl::LoadQuery<'query, SqliteConnection, U>,
{
    match conn {
        DbConnection::Postgresql(pg) => query.load(pg),
        DbConnection::Sqlite(sqlite) => query.load(sqlite),
    }
}

/// The first row of `query` on whichever engine `conn` is, for the reads on every request's
/// path (the caller, an item with its place). The multi-engine connection writes out a
/// query's SQL text each time it sends it, even one it has prepared before (its derive
/// serializes the query for the engine on every walk); the engine's own connection finds its
/// prepared statement by the query's type. For an item with its place that text was more
/// than half of the read's time on SQLite.
pub fn first_on_engine<'query, Q, U>(query: Q, conn: &mut DbConnection) -> diesel::QueryResult<U>
where
    Q: diesel::query_dsl::methods::LimitDsl,
    diesel::dsl::Limit<Q>: diesel::RunQueryDsl<PgConnection>
        + diesel::RunQueryDsl<SqliteConnection>
        + diesel::query_dsl::LoadQuery<'query, PgConnection, U>
        + diesel::query_dsl::LoadQuery<'query, SqliteConnection, U>,
{
    use diesel::RunQueryDsl;
    let query = query.limit(1);
    match conn {
        DbConnection::Postgresql(pg) => RunQueryDsl::<PgConnection>::get_result(query, pg),
        DbConnection::Sqlite(sqlite) => RunQueryDsl::<SqliteConnection>::get_result(query, sqlite),
    }
}

/// Executes `statement` on whichever engine `conn` is, for the statements that diesel's
/// multi-engine connection cannot send although both engines can: a multi-row `INSERT` (its
/// derive implements no batch insert), one statement for rows that would otherwise each take
/// a round trip.
pub fn execute_on_engine<Q>(statement: Q, conn: &mut DbConnection) -> diesel::QueryResult<usize>
where
    Q: diesel::query_dsl::methods::ExecuteDsl<PgConnection>
        + diesel::query_dsl::methods::ExecuteDsl<SqliteConnection>,
{
    match conn {
        DbConnection::Postgresql(pg) => {
            diesel::query_dsl::methods::ExecuteDsl::execute(statement, pg)
        }
        DbConnection::Sqlite(sqlite) => {
            diesel::query_dsl::methods::ExecuteDsl::execute(statement, sqlite)
        }
    }
}

/// The current time, truncated to microseconds so that both engines store the same value.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}

/// The first row of `$query` (a `QueryResult`), locked until the end of the transaction: on
/// PostgreSQL `SELECT … FOR UPDATE`, the lock taken by the statement that reads the row, so
/// that a rule which reads and then writes needs neither a statement of its own for the lock
/// nor a second read after it (a concurrent writer of the row waits, and the row returned is
/// the version it left, or none when that no longer matches the filter). On SQLite the query
/// as it is: `BEGIN IMMEDIATE` already serializes writers (see [`lock`]). A macro because
/// diesel has the locking clause only on PostgreSQL's query types.
#[macro_export]
macro_rules! first_locked {
    ($query:expr, $conn:expr) => {{
        use diesel::{QueryDsl as _, RunQueryDsl as _};
        let conn: &mut $crate::common::db::DbConnection = $conn;
        match conn {
            $crate::common::db::DbConnection::Postgresql(pg) => $query.for_update().first(pg),
            $crate::common::db::DbConnection::Sqlite(sqlite) => $query.first(sqlite),
        }
    }};
}

/// Makes `$statement`, a type that writes its own SQL (`QueryFragment::walk_ast`), a
/// statement that diesel prepares once per connection and runs with `RunQueryDsl`: its query
/// id is the type itself (with any lifetime `'static`), so that the prepared statement is
/// found again by type; `returns` names the SQL type of its rows, for `get_result` and
/// `load` (a statement that is only executed leaves it out). Written out by hand are the
/// statements that diesel's builder cannot send as one prepared statement: a data-modifying
/// `WITH`, or an `UPDATE … RETURNING` (diesel never prepares an `UPDATE` it builds, since a
/// changeset's columns may vary).
#[macro_export]
macro_rules! prepared_statement {
    (@run $statement:ty $(, $sql_type:ty)?) => {
        $(impl diesel::query_builder::Query for $statement {
            type SqlType = $sql_type;
        })?
        impl<Conn> diesel::RunQueryDsl<Conn> for $statement {}
    };
    ($statement:ident<'_> $(, returns $sql_type:ty)?) => {
        impl diesel::query_builder::QueryId for $statement<'_> {
            type QueryId = $statement<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        $crate::prepared_statement!(@run $statement<'_> $(, $sql_type)?);
    };
    ($statement:ident $(, returns $sql_type:ty)?) => {
        impl diesel::query_builder::QueryId for $statement {
            type QueryId = $statement;
            const HAS_STATIC_QUERY_ID: bool = true;
        }
        $crate::prepared_statement!(@run $statement $(, $sql_type)?);
    };
}

/// Loads `$query` filtered to rows whose `$column` is one of `$ids` (a slice). One id, the
/// common case of a single item's GET, is sent as `column = ?`: a statement with a fixed text,
/// which diesel prepares once per connection; `IN (?, ?, …)` varies with the count, so it is
/// parsed and planned again on every call (a sixth of an item GET's CPU on SQLite). Either
/// goes to the engine's own connection ([`load_on_engine`]; see [`first_on_engine`] for why),
/// so `$query` selects columns as such rather than with `as_select()`.
#[macro_export]
macro_rules! load_for_ids {
    ($query:expr, $column:expr, $ids:expr, $conn:expr) => {{
        let ids: &[i64] = $ids;
        match ids {
            [one] => $crate::common::db::load_on_engine($query.filter($column.eq(*one)), $conn),
            many => $crate::common::db::load_on_engine($query.filter($column.eq_any(many)), $conn),
        }
    }};
}
