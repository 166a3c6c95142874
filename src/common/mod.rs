//! The kernel: what every feature stands on, and which imports nothing else of the crate.
//!
//! Errors and their problem documents, the database handle, schema and locks, pagination,
//! the append-only history and the positions of its changes feed, text validation, the versioned write, password hashing, the
//! business calendar and the CSV writer. A module here may use another module here and
//! external crates, never `crate::web`, a feature or the app (the layering test in
//! `tests/layering.rs` holds it to that).

pub mod actor;
pub mod calendar;
pub mod csv_out;
pub mod db;
pub mod error;
pub mod feed;
pub mod fresh_cache;
pub mod history;
pub mod idempotency;
pub mod pagination;
pub mod parse;
pub mod password;
pub mod person;
pub mod query;
pub mod text;
pub mod token;
pub mod version;
