//! Logging in: `POST /api/v1/auth/login` exchanges e-mail and password for an access token,
//! and `GET /api/v1/me` says whom a token belongs to. Who a request's caller is, is web
//! plumbing (`crate::web::auth`); the role ladder is the kernel's (`crate::common::actor`).

pub mod handlers;
