//! Running an import: the report of what it did or, for a dry run, would do.

use std::collections::{BTreeMap, HashMap, HashSet};

use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use crate::catalog::raci::{Accountable, PersonId, RaciInput};
use crate::common::actor::{Actor, Role, Visibility};
use crate::common::db::DbConnection;
use crate::common::db::schema::{
    boards, events, item_external_refs, items, service_raci, services,
};
use crate::common::error::{ApiError, FieldError};
use crate::common::version::Precondition;
use crate::items::by_ref::{self, CommentUpsert, ItemUpsert, Upserted};
use crate::items::comments;
use crate::items::incident::IncidentInput;
use crate::items::links::{self, LinkKind, NewLink};
use crate::items::types::{Item, ItemType};
use crate::workflows::jira::mapping::Mapping;
use crate::workflows::jira::plan::PlannedIssue;
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

/// The system name of JIRA's references.
pub const SYSTEM: &str = "jira";

/// The origin every write of an import records.
pub const ORIGIN: &str = "jira-import";

/// Runs an import of `export` through `mapping`, in the caller's transaction: all or nothing.
/// Refused (422, every unmapped value listed) while the mapping leaves something unmapped
/// without a fallback. `importer` is who runs it (recorded on what has no JIRA author);
/// `progress` is told how many issues are done.
pub fn run(
    conn: &mut DbConnection,
    export: &[u8],
    mapping: &str,
    importer: &Actor,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<ImportReport, ApiError> {
    let (plan, count) = prepare(conn, export, mapping)?;
    let mut report = ImportReport::of_plan(&plan, count);
    report.dry_run = false;
    if !plan.unmapped.is_empty() {
        return Err(ApiError::Validation(
            plan.unmapped
                .lines()
                .into_iter()
                .map(|line| FieldError::new("mapping", line))
                .collect(),
        ));
    }
    let total = plan.issues.len();
    let mut items_by_jira_id: HashMap<String, String> = HashMap::new();
    for (done, issue) in plan.issues.iter().enumerate() {
        let (item_key, outcome) = apply_issue(conn, &plan, issue, importer)?;
        match outcome {
            Outcome::Created => report.created += 1,
            Outcome::Updated => report.updated += 1,
            Outcome::Unchanged => report.unchanged += 1,
            Outcome::Skipped => report.skipped += 1,
        }
        if !item_key.is_empty() {
            items_by_jira_id.insert(issue.jira_id.clone(), item_key);
        }
        progress(done + 1, total);
    }
    // Links, once every end exists.
    for issue in &plan.issues {
        let Some(this) = items_by_jira_id.get(&issue.jira_id) else {
            continue;
        };
        for (kind, other) in &issue.links {
            let Some(other) = items_by_jira_id.get(other) else {
                continue;
            };
            let kind = match *kind {
                "blocks" => LinkKind::Blocks,
                "duplicates" => LinkKind::Duplicates,
                _ => LinkKind::Relates,
            };
            let link = NewLink {
                kind,
                item: other.clone(),
            };
            match links::add(conn, this, &link, &actor_of(importer, None)) {
                // Linked already (a second import), an end deleted in opsboard since, or a
                // self-link that JIRA allows and opsboard does not: nothing to add.
                Ok(_)
                | Err(ApiError::Conflict(_))
                | Err(ApiError::NotFound(_))
                | Err(ApiError::Validation(_)) => {}
                Err(other) => return Err(other),
            }
        }
    }
    Ok(report)
}

enum Outcome {
    Created,
    Updated,
    Unchanged,
    /// Its item was deleted in opsboard: an import does not bring it back.
    Skipped,
}

/// Who a change of the import is by: the JIRA author mapped to `user`, else the importer; always
/// with the import's origin and its rights (the import decides what a JIRA change was).
fn actor_of(importer: &Actor, user: Option<i64>) -> Actor {
    Actor {
        user_id: user.or(importer.user_id),
        role: Role::Admin,
        organization_id: None,
        token_id: importer.token_id,
        origin: Some(ORIGIN.to_string()),
    }
}

/// The JIRA changelog entries an item's history already holds.
fn imported_histories(conn: &mut DbConnection, item_id: i64) -> Result<HashSet<String>, ApiError> {
    let data: Vec<String> = events::table
        .filter(
            events::entity_type
                .eq("item")
                .and(events::entity_id.eq(item_id))
                .and(events::kind.eq("moved")),
        )
        .select(events::data)
        .load(conn)?;
    Ok(data
        .iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .filter_map(|d| d.get("jira_history")?.as_str().map(str::to_string))
        .collect())
}

/// The accountable person of a new item that has a responsible one: the service template's,
/// else the board lead, else the mapping's default, else the responsible person (who may be
/// both).
fn accountable_for(
    conn: &mut DbConnection,
    board: &str,
    service: Option<&str>,
    issue: &PlannedIssue,
    responsible: i64,
) -> Result<i64, ApiError> {
    let template: Option<i64> = match service {
        Some(service) => service_raci::table
            .inner_join(services::table)
            .filter(services::key.eq(service))
            .filter(service_raci::role.eq("accountable"))
            .select(service_raci::user_id)
            .first(conn)
            .optional()?,
        None => None,
    };
    let lead: Option<i64> = boards::table
        .filter(boards::key.eq(board))
        .select(boards::lead_id)
        .first::<Option<i64>>(conn)
        .optional()?
        .flatten();
    Ok(template
        .or(lead)
        .or(issue.default_accountable)
        .unwrap_or(responsible))
}

fn apply_issue(
    conn: &mut DbConnection,
    plan: &Plan,
    issue: &PlannedIssue,
    importer: &Actor,
) -> Result<(String, Outcome), ApiError> {
    type Existing = (i64, i64, String, Option<chrono::NaiveDateTime>);
    let found: Option<Existing> = item_external_refs::table
        .inner_join(items::table)
        .filter(
            item_external_refs::system
                .eq(SYSTEM)
                .and(item_external_refs::ext_key.eq(&issue.jira_id)),
        )
        .select((
            items::id,
            items::version,
            items::key,
            item_external_refs::source_updated_at,
        ))
        .first(conn)
        .optional()?;
    // The issue as imported last: nothing to do, and nothing changed in opsboard since is undone.
    if let Some((_, _, key, Some(applied))) = &found
        && *applied >= issue.updated.naive_utc()
    {
        return Ok((key.clone(), Outcome::Unchanged));
    }
    let existing = found.as_ref().map(|(id, version, _, _)| (*id, *version));
    let creating = existing.is_none();
    let raci = match (creating, issue.responsible) {
        (true, Some(responsible)) => Some(RaciInput {
            accountable: Some(Accountable::One(PersonId::Id(accountable_for(
                conn,
                &plan.board,
                issue.service.as_deref(),
                issue,
                responsible,
            )?))),
            responsible: vec![PersonId::Id(responsible)],
            consulted: Vec::new(),
            informed: Vec::new(),
        }),
        (true, None) => issue.default_accountable.map(|a| RaciInput {
            accountable: Some(Accountable::One(PersonId::Id(a))),
            responsible: Vec::new(),
            consulted: Vec::new(),
            informed: Vec::new(),
        }),
        (false, _) => None,
    };
    let body = ItemUpsert {
        board: Some(plan.board.clone()),
        item_type: Some(issue.item_type),
        title: Some(issue.title.chars().take(200).collect()),
        description: Some(issue.description.clone()),
        service: Some(issue.service.clone()),
        priority: Some(issue.priority),
        labels: Some(issue.labels.iter().take(20).cloned().collect()),
        due_date: Some(issue.due_date),
        raci,
        demand: None,
        incident: (issue.item_type == ItemType::Incident).then(|| IncidentInput {
            severity: Some(issue.priority.suggested_severity()),
            ..IncidentInput::default()
        }),
        alias: Some(Some(issue.jira_key.clone())),
        url: issue.url.clone().map(Some),
        source_updated_at: Some(issue.updated),
        column: None,
        override_wip: true,
    };
    let by_reporter = actor_of(importer, issue.reporter);
    let upserted = by_ref::upsert(
        conn,
        SYSTEM,
        &issue.jira_id,
        &body,
        &by_reporter,
        true,
        Precondition::ANY,
        false,
    );
    let (item, how) = match upserted {
        Ok(done) => done,
        // A later state of this issue was imported (or mirrored) already: leave the item.
        Err(ApiError::StaleSource(_)) => {
            let key: String = items::table
                .filter(items::id.eq(existing.map(|e| e.0).unwrap_or(-1)))
                .select(items::key)
                .first(conn)?;
            return Ok((key, Outcome::Unchanged));
        }
        Err(ApiError::Deleted(_)) => return Ok((String::new(), Outcome::Skipped)),
        Err(other) => return Err(with_issue(other, &issue.jira_key)),
    };
    if how == Upserted::Created {
        Item::backdate_creation(
            conn,
            item.id,
            issue.created,
            issue.first_column,
            issue.reporter,
        )?;
    }
    // The changelog's status changes not yet in the history, in order, at their own times.
    let known = imported_histories(conn, item.id)?;
    let mut changed = how == Upserted::Found && existing.is_some_and(|(_, v)| v != item.version);
    for step in issue
        .moves
        .iter()
        .filter(|m| !known.contains(&m.history_id))
    {
        let moved = Item::replay_move(
            conn,
            item.id,
            step.to_column,
            step.at,
            &actor_of(importer, step.author),
            json!({"jira_history": step.history_id}),
        )?;
        changed |= moved;
    }
    // Where JIRA has it now, should the changelog not say how it got there.
    changed |= Item::replay_move(
        conn,
        item.id,
        issue.column,
        issue.updated,
        &actor_of(importer, None),
        json!({"jira_status": true}),
    )?;
    for comment in &issue.comments {
        if comment.body.trim().is_empty() {
            continue;
        }
        let input = CommentUpsert {
            body: comment.body.chars().take(20_000).collect(),
            url: issue
                .url
                .as_ref()
                .map(|u| Some(format!("{u}?focusedCommentId={}", comment.jira_id))),
            source_updated_at: Some(comment.updated),
        };
        let (_, stored, how) = match by_ref::upsert_comment(
            conn,
            &item.key,
            SYSTEM,
            &comment.jira_id,
            &input,
            &actor_of(importer, comment.author),
            Visibility::All,
            Precondition::ANY,
            false,
        ) {
            Ok(done) => done,
            Err(ApiError::StaleSource(_) | ApiError::Deleted(_)) => continue,
            Err(other) => return Err(with_issue(other, &issue.jira_key)),
        };
        if how == Upserted::Created {
            comments::backdate(conn, stored.id, comment.created, comment.updated)?;
            changed = true;
        } else if stored.version > 1 && stored.updated_at.naive_utc() > comment.updated.naive_utc()
        {
            changed = true;
        }
    }
    let outcome = match (how, changed) {
        (Upserted::Created, _) => Outcome::Created,
        (Upserted::Found, true) => Outcome::Updated,
        (Upserted::Found, false) => Outcome::Unchanged,
    };
    Ok((item.key, outcome))
}

/// An error of one issue, saying which.
fn with_issue(error: ApiError, jira_key: &str) -> ApiError {
    match error {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|e| FieldError::new(format!("{jira_key}.{}", e.field), e.message))
                .collect(),
        ),
        ApiError::WipLimitExceeded { column, .. } => {
            ApiError::invalid(jira_key, format!("column {column} is at its WIP limit"))
        }
        other => other,
    }
}
