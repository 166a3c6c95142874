//! Service-level agreements for incidents: business-hours calendar, policies and clocks.

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
