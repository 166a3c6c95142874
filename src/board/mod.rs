//! Kanban boards and their columns (the workflow). Items and moves build on this;
//! the board view, which shows the items, is a workflow (`crate::workflows::board_view`).
//!
//! Layer: feature 4 in the order of `tests/layering.rs`; it may import the kernel, web
//! plumbing, `users`, `auth` and `catalog`, never a feature after it, a workflow or the app.

pub mod columns;
pub mod handlers;
pub mod model;

/// Mounts the board endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_boards)
        .service(handlers::create_board)
        .service(handlers::get_board)
        .service(handlers::update_board)
        .service(handlers::list_columns)
        .service(handlers::add_column)
        .service(handlers::update_column)
        .service(handlers::delete_column);
}
