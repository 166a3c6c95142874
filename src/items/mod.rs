//! Items on boards: demands, tasks and incidents with RACI roles, ranks, moves and history.
//!
//! The files build on each other in this order, each using only those before it: `rank`,
//! `demand` and `incident` (the type-specific fields), `types` (the API shapes and forms),
//! `rows` (the stored row), `queries` (reading whole items), `list`, `moves`, `raci`,
//! `writes` (create, change, delete), `comments`, `links`, `history`, `activity` (the
//! stream across items), `by_ref` (items and comments by their reference in another
//! system), and the HTTP `handlers` on top.
//!
//! Layer: feature 6 in the order of `tests/layering.rs`; it may import the kernel, web plumbing
//! and the features before it (`users` … `sla`), never a feature after it, a workflow or the
//! app.

pub mod activity;
pub mod by_ref;
pub mod by_ref_handlers;
pub mod cache;
pub mod comments;
pub mod demand;
pub mod export;
pub mod handlers;
pub mod history;
pub mod incident;
pub mod links;
pub mod list;
pub mod moves;
pub mod queries;
pub mod raci;
pub mod rank;
pub mod rows;
pub mod types;
pub mod writes;

/// Mounts the item endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    // The by-ref paths first: their literal segment must win over `{key}`.
    cfg.service(by_ref_handlers::put_item_by_ref)
        .service(by_ref_handlers::get_item_by_ref)
        .service(by_ref_handlers::delete_item_by_ref)
        .service(by_ref_handlers::put_comment_by_ref)
        .service(by_ref_handlers::delete_comment_by_ref)
        .service(handlers::list_items)
        .service(handlers::create_item)
        .service(handlers::get_item)
        .service(handlers::update_item)
        .service(handlers::delete_item)
        .service(handlers::get_item_raci)
        .service(handlers::put_item_raci)
        .service(handlers::move_item)
        .service(handlers::item_history)
        .service(handlers::list_activity)
        .service(handlers::list_comments)
        .service(handlers::add_comment)
        .service(handlers::edit_comment)
        .service(handlers::delete_comment)
        .service(handlers::list_links)
        .service(handlers::add_link)
        .service(handlers::delete_link);
}
