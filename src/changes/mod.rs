//! The changes feed: every history event of every entity, in commit order, for sync scripts
//! that mirror opsboard to JIRA or OpenProject and for anything else that follows what
//! happens (`GET /api/v1/changes`, `GET /api/v1/changes/head`).
//!
//! The positions (`seq`) come from the kernel's [`crate::common::feed`], which explains why a
//! cursor never skips an event that commits late. This module reads pages of events with their
//! entity's key and, for items, the item as it stood after the change.
//!
//! Layer: feature 9, after `incidents` in the order of `tests/layering.rs`; it may import the
//! kernel, web plumbing and the features before it (it uses the items' shape for events
//! written before items kept their snapshot), never a workflow or the app.

pub mod handlers;
pub mod model;

/// Mounts the feed's endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_changes)
        .service(handlers::changes_head);
}
