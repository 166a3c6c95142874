//! Webhooks (`/api/v1/webhooks`): receivers subscribe to the events of the history and get each
//! one POSTed to them, signed as the Standard Webhooks specification says, with its `data`
//! shaped as the changes feed shows it.
//!
//! - [`model`]: the subscriptions (CRUD, secrets shown once, rotation).
//! - [`outbox`]: one delivery per (event, subscription), written in the event's transaction
//!   through the history's event observer.
//! - [`worker`]: the background task that claims due deliveries (a lease, `FOR UPDATE SKIP
//!   LOCKED` on PostgreSQL), signs and sends them, and retries with backoff.
//! - [`target`]: where a delivery may go (no loopback, private, link-local or metadata
//!   addresses unless allowed), checked at subscription and again after DNS resolution.
//! - [`deliveries`]: the deliveries of a subscription, redelivery and the test ping.
//!
//! Layer: after `changes` in the order of `tests/layering.rs`: a delivery's `data` is a
//! change event of the feed.

pub mod deliveries;
pub mod handlers;
pub mod model;
pub mod outbox;
pub mod settings;
pub mod target;
pub mod worker;

pub use settings::WebhookSettings;

/// Mounts the webhook endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_webhooks)
        .service(handlers::create_webhook)
        .service(handlers::get_webhook)
        .service(handlers::update_webhook)
        .service(handlers::delete_webhook)
        .service(handlers::rotate_secret)
        .service(handlers::test_webhook)
        .service(handlers::list_deliveries)
        .service(handlers::redeliver);
}
