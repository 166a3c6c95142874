//! Incident handling: severity, reporter, affected services, first response and resolution,
//! and the SLA clocks that tell whether a service is within its agreed times.
//!
//! Layer: feature 8, the last in the order of `tests/layering.rs`; it may import the kernel,
//! web plumbing and the features before it (`users` … `demands`), never a feature after it, a
//! workflow or the app.

pub mod handlers;
pub mod model;

/// Mounts the incident endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_incidents);
}
