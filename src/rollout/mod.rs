//! The rollout of online services to the municipal administrations ("Rollout in die Fläche"):
//! waves per service, one entry per (service, administration) with its status, checklist and
//! blockers, the plan of a wave, the matrix (JSON, CSV, SVG, CSV upload) and the progress.
//!
//! Layer: feature 10 in the order of `tests/layering.rs`, after `incidents` and before
//! `changes` (whose feed carries the rollout's events); it may import the kernel, web
//! plumbing and the features before it.

pub mod entries;
pub mod handlers;
pub mod matrix;
pub mod model;
pub mod waves;

pub use model::RolloutSettings;

/// Mounts the rollout endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_waves)
        .service(handlers::create_wave)
        .service(handlers::get_wave)
        .service(handlers::update_wave)
        .service(handlers::plan)
        .service(handlers::get_matrix)
        .service(handlers::upload_matrix)
        .service(handlers::get_progress)
        .service(handlers::list_entries)
        .service(handlers::get_entry)
        .service(handlers::put_entry)
        .service(handlers::update_entry)
        .service(handlers::item_blocks);
}
