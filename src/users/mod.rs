//! People with a login: listing, creating, changing and deactivating them.

pub mod handlers;
pub mod model;

/// Mounts the user endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_users)
        .service(handlers::create_user)
        .service(handlers::get_user)
        .service(handlers::update_user)
        .service(handlers::deactivate_user)
        .service(handlers::reactivate_user);
}
