//! Workflows that combine several features; they sit above the features and below the app.
//! Deactivating a person hands over what they are accountable for (users, catalog, items);
//! the board view shows items with their incident state on a board's columns (board, items,
//! sla). A feature never imports a workflow.

pub mod board_view;
pub mod deactivation;
