//! Workflows that combine several features; they sit above the features and below the app.
//!
//! A feature (`catalog`, `board`, `items`, …) knows only itself and what lies below it; what
//! needs several of them at once lives here, so that no feature has to import the others.

pub mod demo;
