//! Liveness and readiness probes for load balancers, containers and deploy scripts.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::common::db::Db;
use crate::common::error::ApiError;

/// Mounts `/health` and `/ready` at the root.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health).service(ready);
}

/// The state of a probe.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Status {
    /// `ok` for `/health`, `ready` for `/ready`.
    pub status: String,
    /// The running version of opsboard.
    pub version: String,
}

/// Liveness.
///
/// 200 whenever the process serves requests; it does not touch the database.
#[utoipa::path(tag = "health", responses((status = 200, description = "The process is up", body = Status)))]
#[get("/health")]
pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(Status {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

/// How long `/ready` waits for the database before it answers 503.
const READY_DEADLINE: std::time::Duration = std::time::Duration::from_millis(800);

/// Readiness.
///
/// 200 when the database answers and every migration is applied; 503 otherwise, within a
/// second whatever the load (so a load balancer can take an instance out quickly).
#[utoipa::path(
    tag = "health",
    responses(
        (status = 200, description = "Ready to serve", body = Status),
        (status = 503, description = "The database is unreachable or not migrated",
         body = crate::common::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/ready")]
pub async fn ready(db: web::Data<Db>) -> Result<HttpResponse, ApiError> {
    db.probe(READY_DEADLINE).await?;
    Ok(HttpResponse::Ok().json(Status {
        status: "ready".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }))
}
