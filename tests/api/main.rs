//! Black-box tests: the real app over HTTP, every storage-touching test on SQLite and on
//! PostgreSQL (`OPSBOARD_TEST_DATABASE_URL`).

mod auth;
mod board_polling;
mod boards;
mod by_ref;
mod catalog;
mod changes;
mod cli;
mod concurrency;
mod demands;
mod demo;
mod docs;
mod errors;
mod first_hour;
mod fixtures;
mod hardening_auth;
mod hardening_edges;
mod helpers;
mod idempotency;
mod import;
mod incidents;
mod items;
mod jira_import;
mod read_cache;
mod readme;
mod reports;
mod rollout;
mod sla_policies;
mod storage;
mod team_lead;
mod tokens;
mod users;
mod versions;
mod webhooks;
