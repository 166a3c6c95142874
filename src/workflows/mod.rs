//! Workflows that combine several features; they sit above the features and below the app.
//! Deactivating a person hands over what they are accountable for (users, catalog, items);
//! the board view shows items with their incident state on a board's columns (board, items,
//! sla); the demo loads the demo data through the features' own import paths. A feature
//! (`catalog`, `board`, `items`, …) knows only itself and what lies below it; a feature never
//! imports a workflow.

pub mod board_view;
pub mod deactivation;
pub mod demo;
pub mod jira;
