//! Statistics without spreadsheets: flow metrics (cycle and lead time, throughput, WIP,
//! cumulative flow, aging), their CSV tables, and the data they are derived from.
//!
//! Layer: the feature after `changes` in the order of `tests/layering.rs`: it reads boards,
//! items and incidents' SLA clocks, and nothing below it uses it except through the kernel's
//! history hook, which the app registers.

pub mod charts;
pub mod derive;
pub mod flow;
pub mod forecast;
pub mod governance;
pub mod handlers;
pub mod sla;

/// Mounts the report endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::flow_report)
        .service(handlers::flow_cfd_svg)
        .service(handlers::flow_cycle_time_svg)
        .service(handlers::flow_throughput_svg)
        .service(handlers::flow_aging_svg)
        .service(handlers::create_forecast)
        .service(handlers::sla_report)
        .service(handlers::sla_svg)
        .service(handlers::governance_report);
}
