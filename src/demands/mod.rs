//! Demand management: stakeholders raise demands, the team triages and decides, the roadmap
//! shows what was accepted. A demand is an item of type `demand` with the fields here.
//!
//! Layer: feature 7 in the order of `tests/layering.rs`; it may import the kernel, web plumbing
//! and the features before it (`users` … `items`), never a feature after it, a workflow or the
//! app.

pub mod handlers;
pub mod model;

/// Mounts the demand endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::raise_demand)
        .service(handlers::list_demands)
        .service(handlers::roadmap)
        .service(handlers::decide);
}

/// Demand intake settings.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemandSettings {
    /// Key of the board where `POST /demands` puts new demands, in its first column.
    pub board: String,
}
