//! The catalogue: organizations, online services and their RACI templates, bulk import.
//!
//! Layer: feature 3 in the order of `tests/layering.rs`; it may import the kernel, web
//! plumbing, `users` and `auth`, never a feature after it, a workflow or the app.

pub mod handlers;
pub mod import;
pub mod organizations;
pub mod raci;
pub mod rollout_view;
pub mod services;

/// Mounts the catalogue endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_organizations)
        .service(handlers::import_organizations)
        .service(handlers::create_organization)
        .service(handlers::get_organization)
        .service(handlers::update_organization)
        .service(handlers::delete_organization)
        .service(handlers::list_services)
        .service(handlers::import_services)
        .service(handlers::create_service)
        .service(handlers::get_service)
        .service(handlers::update_service)
        .service(handlers::delete_service)
        .service(handlers::get_service_raci)
        .service(handlers::put_service_raci)
        .service(handlers::get_user_raci);
}
