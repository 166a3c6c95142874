//! The JIRA import: issues exported from JIRA's REST API (`expand=changelog`) become items of
//! a board, through the same upsert by reference that sync scripts use, so that importing
//! again updates instead of duplicating. The mapping file says which board, which columns the
//! statuses go to, and how types, priorities, services and people translate.
//!
//! Reading ([`source`]) and the rich text ([`text`]) know JIRA; the [`mapping`] file and the
//! [`plan`] resolve an export against the database without writing; [`import`] runs it and
//! reports what a run did or, for a dry run, would do.

pub mod handlers;
pub mod import;
pub mod mapping;
pub mod plan;
pub mod source;
pub mod text;
