//! Service-level agreements for incidents: business-hours calendar, policies and clocks.

// calendar.rs is owned elsewhere and left untouched here; its private `to_utc(&self)` trips
// clippy's naming lint, which would otherwise fail `clippy -D warnings` for the whole crate.
#[allow(
    clippy::wrong_self_convention,
    reason = "calendar.rs is edited on another branch; fix the name there, then drop this"
)]
pub mod calendar;
pub mod policies;

/// Mounts the SLA endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(policies::list_sla_policies)
        .service(policies::create_sla_policy)
        .service(policies::get_sla_policy)
        .service(policies::update_sla_policy)
        .service(policies::delete_sla_policy)
        .service(policies::sla_policy_history);
}
