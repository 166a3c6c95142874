//! API tokens for scripts (`/api/v1/tokens`): a user's identity narrowed by scopes, with an
//! expiry, an optional origin that every write through the token records, and a secret shown
//! once. A sync user such as `sync-jira@…` gets its token from an admin; anyone may make
//! tokens for themself. The secret's form, its hash and the check of every request live in the
//! kernel ([`crate::common::token`]) and the caller extractor ([`crate::web::auth`]).
//!
//! Layer: feature 2 in the order of `tests/layering.rs`, after `users`; it may import the
//! kernel, web plumbing and `users`.

pub mod handlers;
pub mod model;

/// Mounts the token endpoints under the API scope.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(handlers::list_tokens)
        .service(handlers::create_token)
        .service(handlers::get_token)
        .service(handlers::revoke_token);
}
