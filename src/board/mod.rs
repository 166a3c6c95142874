//! Kanban boards and their columns (the workflow). Items, moves and the board view build on
//! this.

pub mod handlers;
pub mod model;
pub mod view;

/// Mounts the board endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_boards)
        .service(handlers::create_board)
        .service(handlers::get_board)
        .service(handlers::update_board)
        .service(handlers::list_columns)
        .service(handlers::add_column)
        .service(handlers::update_column)
        .service(handlers::delete_column)
        .service(view::board_view);
}
