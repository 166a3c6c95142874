//! Service-level agreements for incidents: severities, policies and clocks. The business
//! calendar they count in is the kernel's (`crate::common::calendar`).
//!
//! Layer: feature 5 in the order of `tests/layering.rs`; it may import the kernel, web plumbing
//! and the features before it (`users` … `board`), never a feature after it, a workflow or the
//! app.

pub mod clock;
pub mod handlers;
pub mod policies;
pub mod severity;

/// Mounts the SLA endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_sla_policies)
        .service(handlers::create_sla_policy)
        .service(handlers::get_sla_policy)
        .service(handlers::update_sla_policy)
        .service(handlers::delete_sla_policy)
        .service(handlers::sla_policy_history);
}
