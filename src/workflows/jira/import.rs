//! Running an import: the report of what it did or, for a dry run, would do.

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

use crate::common::db::DbConnection;
use crate::common::error::ApiError;
use crate::workflows::jira::mapping::Mapping;
use crate::workflows::jira::plan::{self, Plan, Unmapped};
use crate::workflows::jira::source;

/// What an import did, or for a dry run would do.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct ImportReport {
    /// Whether this was a dry run (nothing written).
    pub dry_run: bool,
    /// The board the issues went to.
    pub board: String,
    /// Issues in the export.
    pub issues: usize,
    /// Items created.
    pub created: usize,
    /// Items updated.
    pub updated: usize,
    /// Items already equal to their issue.
    pub unchanged: usize,
    /// Issues not imported (their status maps to no column).
    pub skipped: usize,
    /// Issues per item type.
    pub by_type: BTreeMap<String, usize>,
    /// Issues per column (the column they are in now).
    pub by_column: BTreeMap<String, usize>,
    /// Status changes of the changelogs, as `moved` events.
    pub moves: usize,
    /// Comments.
    pub comments: usize,
    /// Links between imported issues (parents included).
    pub links: usize,
    /// Attachments, which the import does not bring over.
    pub attachments_skipped: usize,
    /// What the mapping leaves unmapped.
    pub unmapped: Unmapped,
}

impl ImportReport {
    /// The report of a plan, before anything is written.
    pub fn of_plan(plan: &Plan, issues_in_export: usize) -> ImportReport {
        let mut report = ImportReport {
            dry_run: true,
            board: plan.board.clone(),
            issues: issues_in_export,
            skipped: issues_in_export - plan.issues.len(),
            unmapped: plan.unmapped.clone(),
            ..ImportReport::default()
        };
        for issue in &plan.issues {
            *report
                .by_type
                .entry(issue.item_type.as_str().to_string())
                .or_default() += 1;
            let column = plan
                .column_names
                .get(&issue.column)
                .cloned()
                .unwrap_or_else(|| issue.column.to_string());
            *report.by_column.entry(column).or_default() += 1;
            report.moves += issue.moves.len();
            report.comments += issue.comments.len();
            report.links += issue.links.len();
            report.attachments_skipped += issue.attachments;
        }
        report
    }
}

/// Reads an export and a mapping file and resolves them: the plan, or a 422 naming what is
/// wrong with the file or the mapping.
pub fn prepare(
    conn: &mut DbConnection,
    export: &[u8],
    mapping: &str,
) -> Result<(Plan, usize), ApiError> {
    let mapping = Mapping::parse(mapping).map_err(|e| ApiError::invalid("mapping", e))?;
    let issues = source::read_issues(export).map_err(|e| ApiError::invalid("issues", e))?;
    let count = issues.len();
    Ok((plan::plan(conn, &issues, mapping)?, count))
}

/// A dry run: what an import of `export` through `mapping` would do, writing nothing.
pub fn dry_run(
    conn: &mut DbConnection,
    export: &[u8],
    mapping: &str,
) -> Result<ImportReport, ApiError> {
    let (plan, count) = prepare(conn, export, mapping)?;
    Ok(ImportReport::of_plan(&plan, count))
}
