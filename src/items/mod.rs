//! Items on boards: demands, tasks and incidents with RACI roles, ranks, moves and history.

pub mod demand;
pub mod details;
pub mod handlers;
pub mod incident;
pub mod model;
pub mod rank;

/// Mounts the item endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_items)
        .service(handlers::create_item)
        .service(handlers::get_item)
        .service(handlers::update_item)
        .service(handlers::delete_item)
        .service(handlers::get_item_raci)
        .service(handlers::put_item_raci)
        .service(handlers::move_item)
        .service(handlers::item_history)
        .service(details::list_comments)
        .service(details::add_comment)
        .service(details::edit_comment)
        .service(details::delete_comment)
        .service(details::list_links)
        .service(details::add_link)
        .service(details::delete_link);
}
