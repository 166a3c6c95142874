//! Service-level agreements for incidents: business-hours calendar, policies and clocks.

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
