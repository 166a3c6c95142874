//! Service-level agreements for incidents: severities, policies and clocks. The business
//! calendar they count in is the kernel's (`crate::common::calendar`).
//!
//! Layer: feature 5 in the order of `tests/layering.rs`; it may import the kernel, web plumbing
//! and the features before it (`users` … `board`), never a feature after it, a workflow or the
//! app.

pub mod clock;
pub mod policies;
pub mod severity;

/// Mounts the SLA endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(policies::list_sla_policies)
        .service(policies::create_sla_policy)
        .service(policies::get_sla_policy)
        .service(policies::update_sla_policy)
        .service(policies::delete_sla_policy)
        .service(policies::sla_policy_history);
}
