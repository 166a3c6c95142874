//! People with a login: listing, creating and changing them, and switching an account on or
//! off (`User::set_active`). Deactivation with its hand-over of accountability is a workflow
//! above the features it touches: `crate::workflows::deactivation`.
//!
//! Layer: the first feature in the order of `tests/layering.rs`; it may import the kernel
//! (`crate::common`) and web plumbing (`crate::web`), never a feature after it, a workflow or
//! the app.

pub mod handlers;
pub mod model;

/// Mounts the user endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_users)
        .service(handlers::create_user)
        .service(handlers::get_user)
        .service(handlers::user_history)
        .service(handlers::update_user);
}
