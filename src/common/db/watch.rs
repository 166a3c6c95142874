//! Seeing the commits of every process on the database, so that what this process keeps in
//! memory (the callers it checked, the items it answered) can be trusted without asking the
//! database again on every request.
//!
//! This process's own writes are counted as they commit ([`super::Db::note_commit`]). The
//! watch adds everyone else's, the command line's and a second instance's, on one connection
//! of its own outside the pool:
//! - PostgreSQL: `LISTEN opsboard_commits`. Every statement that writes history events
//!   notifies it (a trigger on `events`, migration 18), with the schema as payload so that
//!   databases sharing a server (one schema per test run) do not disturb each other. libpq
//!   queues a notification when it arrives; the watch takes what has arrived every
//!   `database.watch_ms`, without a round trip, and asks the server `SELECT 1` now and then
//!   so that a dead connection is noticed.
//! - SQLite: `PRAGMA data_version`, which changes whenever another connection (of any
//!   process) has committed, read from shared memory every `database.watch_ms`.
//!
//! A cache may serve only while the watch is *live*: it has looked within [`LIVE_WITHIN`]
//! (or four looks' time, for a `watch_ms` above 6). A lost connection, a starved thread or a
//! watch turned off make every cached answer a miss, read from the database as if there were
//! no cache. So another process's commit reaches this process's caches within about
//! `watch_ms` (plus, on PostgreSQL, the notification's way over the socket), and never later
//! than that bound.
//!
//! An idle watch (nobody asked for [`Freshness::generation`] for a second) looks ten times
//! a second only and is not live; the first request after a pause is therefore a miss, and
//! the watch is back at full pace for the next one. So a server, or a test, nobody is using
//! costs almost nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::{Backend, ConnectionManager, DatabaseSettings, DbConnection};

/// How long after its last look the watch is still trusted, at least (with a `watch_ms`
/// above a sixth of it, four looks' time).
pub const LIVE_WITHIN: Duration = Duration::from_millis(25);
/// A watch nobody asked for this long turns idle.
const IDLE_AFTER: Duration = Duration::from_secs(1);
/// How often an idle watch looks (to drain notifications and keep its connection).
const IDLE_PACE: Duration = Duration::from_millis(100);
/// How often the PostgreSQL watch asks the server, so that a dead connection shows.
const PING_EVERY: Duration = Duration::from_millis(500);
/// How long the watch waits before it connects again after a failure.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// The PostgreSQL notification channel; the trigger of migration 18 notifies it.
pub const CHANNEL: &str = "opsboard_commits";

/// What the watch's thread and its readers share.
struct State {
    /// When the watch started: the origin of the millisecond stamps below.
    origin: Instant,
    /// Commits of any process seen so far (counted once per look that saw any).
    seen: AtomicU64,
    /// Milliseconds since `origin` of the last look at full pace; 0 for none.
    looked_ms: AtomicU64,
    /// Milliseconds since `origin` of the last question to [`CommitWatch::seen`].
    wanted_ms: AtomicU64,
    /// How long after a look the watch is trusted, in milliseconds.
    live_ms: u64,
}

impl State {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The watch of every process's commits; cheap to clone. Its thread ends when the last
/// clone is dropped.
#[derive(Clone)]
pub struct CommitWatch {
    state: Option<Arc<State>>,
}

impl CommitWatch {
    /// No watch: never live, so every cache that relies on it misses.
    pub fn off() -> CommitWatch {
        CommitWatch { state: None }
    }

    /// Starts watching the database of `settings` every `settings.watch_ms` on a thread of
    /// its own; [`CommitWatch::off`] when `watch_ms` is 0 or the database is SQLite in
    /// memory (no other connection can write to it: this process's own commits are counted
    /// without a watch).
    pub fn start(settings: &DatabaseSettings) -> CommitWatch {
        let (backend, address) = super::parse_url(&settings.url);
        if settings.watch_ms == 0 || (backend == Backend::Sqlite && address == ":memory:") {
            return CommitWatch::off();
        }
        let state = Arc::new(State {
            origin: Instant::now(),
            seen: AtomicU64::new(0),
            looked_ms: AtomicU64::new(0),
            wanted_ms: AtomicU64::new(0),
            live_ms: (LIVE_WITHIN.as_millis() as u64).max(4 * settings.watch_ms),
        });
        let manager = ConnectionManager::new(settings);
        let pace = Duration::from_millis(settings.watch_ms);
        let weak = Arc::downgrade(&state);
        let spawned = std::thread::Builder::new()
            .name("commit-watch".into())
            .spawn(move || watch(manager, pace, weak));
        match spawned {
            Ok(_) => CommitWatch { state: Some(state) },
            Err(error) => {
                log::warn!("the commit watch could not start, caches stay off: {error}");
                CommitWatch::off()
            }
        }
    }

    /// The count of commits the watch has seen, when it is live; `None` when it is not.
    pub fn seen(&self) -> Option<u64> {
        let state = self.state.as_ref()?;
        let now = state.now_ms();
        state.wanted_ms.store(now, Ordering::Relaxed);
        let looked = state.looked_ms.load(Ordering::Acquire);
        let live = looked > 0 && now.saturating_sub(looked) < state.live_ms;
        live.then(|| state.seen.load(Ordering::Acquire))
    }
}

/// The connection the watch looks through, and what it last saw there.
enum Looking {
    /// PostgreSQL, listening; notifications are taken for `schema` only.
    Postgres {
        conn: diesel::pg::PgConnection,
        schema: String,
        pinged: Instant,
    },
    /// SQLite and the `data_version` it last read.
    Sqlite {
        conn: diesel::sqlite::SqliteConnection,
        version: i64,
    },
}

#[derive(QueryableByName)]
struct DataVersion {
    #[diesel(sql_type = BigInt)]
    data_version: i64,
}

#[derive(QueryableByName)]
struct CurrentSchema {
    #[diesel(sql_type = diesel::sql_types::Text)]
    schema: String,
}

impl Looking {
    fn open(manager: &ConnectionManager) -> Result<Looking, String> {
        use r2d2::ManageConnection;
        match manager.connect().map_err(|e| e.to_string())? {
            DbConnection::Postgresql(mut conn) => {
                conn.batch_execute(&format!("LISTEN {CHANNEL}"))
                    .map_err(|e| e.to_string())?;
                let schema = diesel::sql_query("SELECT current_schema()::text AS schema")
                    .get_result::<CurrentSchema>(&mut conn)
                    .map_err(|e| e.to_string())?
                    .schema;
                Ok(Looking::Postgres {
                    conn,
                    schema,
                    pinged: Instant::now(),
                })
            }
            DbConnection::Sqlite(mut conn) => {
                let version = data_version(&mut conn)?;
                Ok(Looking::Sqlite { conn, version })
            }
        }
    }

    /// Whether anyone committed since the last look.
    fn look(&mut self) -> Result<bool, String> {
        match self {
            Looking::Postgres {
                conn,
                schema,
                pinged,
            } => {
                if pinged.elapsed() >= PING_EVERY {
                    conn.batch_execute("SELECT 1").map_err(|e| e.to_string())?;
                    *pinged = Instant::now();
                }
                let mut committed = false;
                for notification in conn.notifications_iter() {
                    let notification = notification.map_err(|e| e.to_string())?;
                    committed |= notification.payload == *schema;
                }
                Ok(committed)
            }
            Looking::Sqlite { conn, version } => {
                let now = data_version(conn)?;
                let committed = now != *version;
                *version = now;
                Ok(committed)
            }
        }
    }
}

fn data_version(conn: &mut diesel::sqlite::SqliteConnection) -> Result<i64, String> {
    diesel::sql_query("PRAGMA data_version")
        .get_result::<DataVersion>(conn)
        .map(|row| row.data_version)
        .map_err(|e| e.to_string())
}

/// The watch's loop: looks every `pace` while wanted, ten times a second while idle, and
/// ends when the last [`CommitWatch`] is gone.
fn watch(manager: ConnectionManager, pace: Duration, state: Weak<State>) {
    let mut looking: Option<Looking> = None;
    loop {
        let Some(shared) = state.upgrade() else {
            return;
        };
        let wanted = shared
            .now_ms()
            .saturating_sub(shared.wanted_ms.load(Ordering::Relaxed))
            < IDLE_AFTER.as_millis() as u64;
        let mut wait = if wanted { pace } else { IDLE_PACE };
        match looking.as_mut().map(Looking::look) {
            None => match Looking::open(&manager) {
                Ok(opened) => {
                    // Commits made while the watch was away were not seen: whatever was
                    // cached before is outdated.
                    shared.seen.fetch_add(1, Ordering::AcqRel);
                    looking = Some(opened);
                    wait = Duration::ZERO;
                }
                Err(error) => {
                    log::debug!("the commit watch cannot connect: {error}");
                    wait = RECONNECT_AFTER;
                }
            },
            Some(Ok(committed)) => {
                if committed {
                    shared.seen.fetch_add(1, Ordering::AcqRel);
                }
                if wanted {
                    // Never 0, which means "not looked yet".
                    shared
                        .looked_ms
                        .store(shared.now_ms().max(1), Ordering::Release);
                }
            }
            Some(Err(error)) => {
                log::warn!("the commit watch lost its connection, caches pause: {error}");
                shared.looked_ms.store(0, Ordering::Release);
                looking = None;
            }
        }
        drop(shared);
        std::thread::sleep(wait);
    }
}

/// Whether what was read at one moment may still be served: this process's commits and
/// the watch's count, together. Cheap to clone; one per cache.
#[derive(Clone)]
pub struct Freshness {
    commits: tokio::sync::watch::Receiver<u64>,
    watch: CommitWatch,
}

impl Freshness {
    /// Over this process's commit count and a watch of everyone's.
    pub fn new(commits: tokio::sync::watch::Receiver<u64>, watch: CommitWatch) -> Freshness {
        Freshness { commits, watch }
    }

    /// A number that changes with every commit of any process, or `None` when the watch is
    /// not live and nothing may be served from memory. Read it before reading the database
    /// and keep what was read under it: a commit meanwhile outdates it.
    pub fn generation(&self) -> Option<u64> {
        let seen = self.watch.seen()?;
        Some(seen.wrapping_add(*self.commits.borrow()))
    }
}
