//! Logging in: `POST /api/v1/auth/login` exchanges e-mail and password for an access token,
//! and `GET /api/v1/me` says whom a token belongs to. Who a request's caller is, is web
//! plumbing (`crate::web::auth`); the role ladder is the kernel's (`crate::common::actor`).
//!
//! Layer: feature 2 in the order of `tests/layering.rs`; it may import the kernel, web plumbing
//! and `users`, never a feature after it, a workflow or the app.

pub mod handlers;
