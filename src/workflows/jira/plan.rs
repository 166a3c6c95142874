//! The plan of a JIRA import: every issue resolved through the mapping into what the import
//! will write — item type, priority, service, column, people, status changes, comments, links —
//! and a report of everything the mapping leaves unmapped. A dry run shows the plan's report;
//! a real run refuses to start while something is unmapped without a fallback.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use serde::Serialize;
use utoipa::ToSchema;

use crate::board::model::{Board, ColumnCategory};
use crate::common::db::DbConnection;
use crate::common::db::lower;
use crate::common::db::schema::{services, users};
use crate::common::error::ApiError;
use crate::items::types::{ItemType, Priority};
use crate::workflows::jira::mapping::{Mapping, ServiceSource};
use crate::workflows::jira::source::{self, Issue, Person};
use crate::workflows::jira::text::to_markdown;

/// One issue as the import will write it.
#[derive(Debug, Clone)]
pub struct PlannedIssue {
    /// JIRA's stable id: the reference's key.
    pub jira_id: String,
    /// JIRA's key (`OZG-123`): the reference's alias.
    pub jira_key: String,
    /// A link to the issue in JIRA, when the export says where JIRA is.
    pub url: Option<String>,
    /// Title.
    pub title: String,
    /// Description as Markdown.
    pub description: String,
    /// Item type.
    pub item_type: ItemType,
    /// Priority.
    pub priority: Priority,
    /// Service key.
    pub service: Option<String>,
    /// Labels, as opsboard writes them (lower case).
    pub labels: Vec<String>,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// JIRA's `created`.
    pub created: DateTime<Utc>,
    /// JIRA's `updated`: the reference's `source_updated_at`.
    pub updated: DateTime<Utc>,
    /// Who created it (the reporter), if mapped.
    pub reporter: Option<i64>,
    /// Who is responsible (the assignee), if mapped.
    pub responsible: Option<i64>,
    /// The accountable person when the service's template names none.
    pub default_accountable: Option<i64>,
    /// The column it starts in (the first status of its changelog).
    pub first_column: i64,
    /// The column it is in now.
    pub column: i64,
    /// The status changes, oldest first.
    pub moves: Vec<PlannedMove>,
    /// The comments, oldest first.
    pub comments: Vec<PlannedComment>,
    /// Links to other issues of the export: (kind, the other issue's JIRA id), from this end.
    pub links: Vec<(&'static str, String)>,
    /// Attachments, which the import skips.
    pub attachments: usize,
}

/// A status change of the changelog.
#[derive(Debug, Clone)]
pub struct PlannedMove {
    /// The changelog entry's id.
    pub history_id: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (mapped, or the stand-in).
    pub author: Option<i64>,
    /// From which column.
    pub from_column: i64,
    /// To which column.
    pub to_column: i64,
}

/// A comment.
#[derive(Debug, Clone)]
pub struct PlannedComment {
    /// JIRA's comment id: the reference's key.
    pub jira_id: String,
    /// Who (mapped, or the stand-in).
    pub author: Option<i64>,
    /// Markdown.
    pub body: String,
    /// When written.
    pub created: DateTime<Utc>,
    /// When last edited.
    pub updated: DateTime<Utc>,
}

/// What a mapping leaves unmapped, each value with the number of issues (or, for people,
/// mentions) that use it.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct Unmapped {
    /// Statuses that map to no column, not even by their category.
    pub statuses: BTreeMap<String, usize>,
    /// Issue types without an item type (and no `default_type`).
    pub types: BTreeMap<String, usize>,
    /// Priorities without a priority (and no `default_priority`).
    pub priorities: BTreeMap<String, usize>,
    /// Components (or field values) of issues that got no service (and no default service).
    pub components: BTreeMap<String, usize>,
    /// JIRA users that map to no opsboard user (and no `people.default`), as `handle
    /// (display name)`.
    pub people: BTreeMap<String, usize>,
}

impl Unmapped {
    /// Whether everything is mapped.
    pub fn is_empty(&self) -> bool {
        self.statuses.is_empty()
            && self.types.is_empty()
            && self.priorities.is_empty()
            && self.components.is_empty()
            && self.people.is_empty()
    }

    /// One line per unmapped value, for messages.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (what, values) in [
            ("status", &self.statuses),
            ("issue type", &self.types),
            ("priority", &self.priorities),
            ("component", &self.components),
            ("person", &self.people),
        ] {
            for (value, count) in values {
                lines.push(format!("unmapped {what} `{value}` ({count}×)"));
            }
        }
        lines
    }
}

/// A resolved import.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The board's key.
    pub board: String,
    /// The issues, oldest first (so that item numbers follow JIRA's order).
    pub issues: Vec<PlannedIssue>,
    /// What the mapping leaves unmapped.
    pub unmapped: Unmapped,
    /// Column names by id, for the report.
    pub column_names: HashMap<i64, String>,
}

/// Everything a mapping names, looked up once.
struct Resolver {
    mapping: Mapping,
    source: ServiceSource,
    /// Column by lower-case name: (id, category).
    columns: HashMap<String, (i64, ColumnCategory)>,
    /// Column names as the board spells them, by id.
    column_names: HashMap<i64, String>,
    /// Status name → its category, from the issues' current statuses.
    status_categories: HashMap<String, String>,
    services: HashMap<String, String>,
    /// Users by lower-case e-mail: id.
    users_by_email: HashMap<String, i64>,
    default_person: Option<i64>,
    default_accountable: Option<i64>,
    unmapped: Unmapped,
}

fn invalid(field: &str, message: String) -> ApiError {
    ApiError::invalid(format!("mapping.{field}"), message)
}

impl Resolver {
    fn new(conn: &mut DbConnection, mapping: Mapping, issues: &[Issue]) -> Result<Self, ApiError> {
        let source = mapping
            .service_source()
            .map_err(|e| invalid("services.from", e))?;
        let board = Board::find(conn, &mapping.board)
            .map_err(|_| invalid("board", format!("there is no board `{}`", mapping.board)))?;
        let columns: HashMap<String, (i64, ColumnCategory)> = board
            .columns
            .iter()
            .map(|c| (c.name.to_lowercase(), (c.id, c.category)))
            .collect();
        let column_names = board
            .columns
            .iter()
            .map(|c| (c.id, c.name.clone()))
            .collect();
        for (field, names) in [
            ("statuses", &mapping.statuses),
            ("status_categories", &mapping.status_categories),
        ] {
            for (from, column) in names {
                if !columns.contains_key(&column.to_lowercase()) {
                    return Err(invalid(
                        &format!("{field}.{from}"),
                        format!("board {} has no column `{column}`", board.key),
                    ));
                }
            }
        }
        let types = mapping
            .types
            .iter()
            .map(|(from, t)| (format!("types.{from}"), t))
            .chain(
                mapping
                    .default_type
                    .iter()
                    .map(|t| ("default_type".to_string(), t)),
            );
        for (field, item_type) in types {
            if ItemType::parse(item_type).is_none() {
                return Err(invalid(
                    &field,
                    format!(
                        "`{item_type}` is no item type ({})",
                        ItemType::NAMES.join(", ")
                    ),
                ));
            }
        }
        let priorities = mapping
            .priorities
            .iter()
            .map(|(from, p)| (format!("priorities.{from}"), p))
            .chain(
                mapping
                    .default_priority
                    .iter()
                    .map(|p| ("default_priority".to_string(), p)),
            );
        for (field, priority) in priorities {
            if Priority::parse(priority).is_none() {
                return Err(invalid(
                    &field,
                    format!(
                        "`{priority}` is no priority ({})",
                        Priority::NAMES.join(", ")
                    ),
                ));
            }
        }
        let named_services: Vec<String> = mapping
            .services
            .map
            .values()
            .chain(mapping.services.default.iter())
            .cloned()
            .collect();
        let known: Vec<String> = services::table
            .filter(services::key.eq_any(&named_services))
            .select(services::key)
            .load(conn)?;
        for (from, key) in mapping
            .services
            .map
            .iter()
            .map(|(f, k)| (format!("services.map.{f}"), k))
            .chain(
                mapping
                    .services
                    .default
                    .iter()
                    .map(|k| ("services.default".to_string(), k)),
            )
        {
            if !known.contains(key) {
                return Err(invalid(&from, format!("there is no service `{key}`")));
            }
        }
        let services: HashMap<String, String> = mapping.services.map.clone().into_iter().collect();
        let users_by_email: HashMap<String, i64> = users::table
            .filter(users::active.eq(true))
            .select((lower(users::email), users::id))
            .load::<(String, i64)>(conn)?
            .into_iter()
            .collect();
        let user = |field: &str, email: &str| {
            users_by_email
                .get(&email.trim().to_lowercase())
                .copied()
                .ok_or_else(|| invalid(field, format!("there is no active user `{email}`")))
        };
        for (from, email) in &mapping.people.map {
            user(&format!("people.map.{from}"), email)?;
        }
        let default_person = mapping
            .people
            .default
            .as_deref()
            .map(|e| user("people.default", e))
            .transpose()?;
        let default_accountable = mapping
            .people
            .default_accountable
            .as_deref()
            .map(|e| user("people.default_accountable", e))
            .transpose()?;
        let status_categories = issues
            .iter()
            .filter_map(|i| i.fields.status.as_ref())
            .filter_map(|s| Some((s.name.clone(), s.category.as_ref()?.key.clone())))
            .collect();
        Ok(Resolver {
            mapping,
            source,
            columns,
            column_names,
            status_categories,
            services,
            users_by_email,
            default_person,
            default_accountable,
            unmapped: Unmapped::default(),
        })
    }

    fn column_named(&self, name: &str) -> Option<i64> {
        self.columns.get(&name.to_lowercase()).map(|(id, _)| *id)
    }

    /// The column of a status: by name, else by its category; unmapped otherwise.
    fn column(&mut self, status: &str) -> Option<i64> {
        let by_name = self
            .mapping
            .statuses
            .get(status)
            .and_then(|c| self.column_named(c));
        let by_category = || {
            let category = self.status_categories.get(status)?;
            let column = self.mapping.status_categories.get(category)?;
            self.column_named(column)
        };
        let found = by_name.or_else(by_category);
        if found.is_none() {
            *self
                .unmapped
                .statuses
                .entry(status.to_string())
                .or_default() += 1;
        }
        found
    }

    fn item_type(&mut self, name: &str) -> ItemType {
        let mapped = self
            .mapping
            .types
            .get(name)
            .or(self.mapping.default_type.as_ref())
            .and_then(|t| ItemType::parse(t));
        mapped.unwrap_or_else(|| {
            *self.unmapped.types.entry(name.to_string()).or_default() += 1;
            ItemType::Task
        })
    }

    fn priority(&mut self, name: Option<&str>) -> Priority {
        let mapped = name
            .and_then(|n| self.mapping.priorities.get(n))
            .or(self.mapping.default_priority.as_ref())
            .and_then(|p| Priority::parse(p));
        match (mapped, name) {
            (Some(p), _) => p,
            (None, None) => Priority::Medium,
            (None, Some(name)) => {
                *self
                    .unmapped
                    .priorities
                    .entry(name.to_string())
                    .or_default() += 1;
                Priority::Medium
            }
        }
    }

    fn service(&mut self, issue: &Issue) -> Option<String> {
        let values: Vec<String> = match &self.source {
            ServiceSource::Components => issue
                .fields
                .components
                .iter()
                .map(|c| c.name.clone())
                .collect(),
            ServiceSource::Field(field) => match issue.fields.other.get(field) {
                Some(serde_json::Value::String(s)) => vec![s.clone()],
                Some(serde_json::Value::Object(o)) => o
                    .get("value")
                    .or_else(|| o.get("name"))
                    .and_then(|v| v.as_str())
                    .map(|s| vec![s.to_string()])
                    .unwrap_or_default(),
                Some(serde_json::Value::Array(list)) => list
                    .iter()
                    .filter_map(|v| {
                        v.as_str()
                            .or_else(|| v.get("value").and_then(|x| x.as_str()))
                            .map(str::to_string)
                    })
                    .collect(),
                _ => Vec::new(),
            },
        };
        if let Some(key) = values.iter().find_map(|v| self.services.get(v)) {
            return Some(key.clone());
        }
        if let Some(default) = &self.mapping.services.default {
            return Some(default.clone());
        }
        let name = if values.is_empty() {
            "(none)".to_string()
        } else {
            values.join(", ")
        };
        *self.unmapped.components.entry(name).or_default() += 1;
        None
    }

    /// The opsboard user of a JIRA user: named in the mapping, else by e-mail; `stand_in`
    /// allows the default person.
    fn person(&mut self, person: Option<&Person>, stand_in: bool) -> Option<i64> {
        let person = person?;
        let mapped = [&person.account_id, &person.name, &person.email]
            .into_iter()
            .flatten()
            .find_map(|handle| self.mapping.people.map.get(handle))
            .and_then(|email| self.users_by_email.get(&email.to_lowercase()).copied())
            .or_else(|| {
                person
                    .email
                    .as_ref()
                    .and_then(|e| self.users_by_email.get(&e.to_lowercase()).copied())
            });
        if mapped.is_some() {
            return mapped;
        }
        if stand_in && self.default_person.is_some() {
            return self.default_person;
        }
        if !stand_in || self.default_person.is_none() {
            let name = match &person.display_name {
                Some(display) => format!("{} ({display})", person.handle()),
                None => person.handle(),
            };
            *self.unmapped.people.entry(name).or_default() += 1;
        }
        None
    }
}

/// The link kind of a JIRA link type, from its outward end: `blocks`, `duplicates`, else
/// `relates`.
fn link_kind(name: &str) -> &'static str {
    let name = name.to_lowercase();
    if name.contains("block") {
        "blocks"
    } else if name.contains("duplicate") {
        "duplicates"
    } else {
        "relates"
    }
}

/// The browse link of an issue from its API address (`…/rest/api/3/issue/10042`).
fn browse_url(issue: &Issue) -> Option<String> {
    let api = issue.self_url.as_deref()?;
    let base = &api[..api.find("/rest/api/")?];
    Some(format!("{base}/browse/{}", issue.key))
}

/// Resolves an export through a mapping.
pub fn plan(conn: &mut DbConnection, issues: &[Issue], mapping: Mapping) -> Result<Plan, ApiError> {
    let board = mapping.board.trim().to_uppercase();
    let mut resolver = Resolver::new(conn, mapping, issues)?;
    let ids: std::collections::HashSet<&str> = issues.iter().map(|i| i.id.as_str()).collect();
    let mut planned = Vec::with_capacity(issues.len());
    for issue in issues {
        let fields = &issue.fields;
        let now = Utc::now();
        let created = fields
            .created
            .as_deref()
            .and_then(source::parse_time)
            .unwrap_or(now);
        let updated = fields
            .updated
            .as_deref()
            .and_then(source::parse_time)
            .unwrap_or(created);
        let status = fields
            .status
            .as_ref()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        let column = resolver.column(&status);
        let mut histories = issue
            .changelog
            .as_ref()
            .map(|c| c.histories.clone())
            .unwrap_or_default();
        histories.sort_by_key(|h| {
            (
                h.created.as_deref().and_then(source::parse_time),
                h.id.parse::<i64>().unwrap_or(0),
            )
        });
        let mut moves = Vec::new();
        let mut first_status: Option<String> = None;
        for history in &histories {
            for change in history.items.iter().filter(|i| i.field == "status") {
                let from = change.from_string.clone().unwrap_or_default();
                let to = change.to_string.clone().unwrap_or_default();
                first_status.get_or_insert_with(|| from.clone());
                let author = resolver.person(history.author.as_ref(), true);
                let (Some(from_column), Some(to_column)) =
                    (resolver.column(&from), resolver.column(&to))
                else {
                    continue;
                };
                moves.push(PlannedMove {
                    history_id: history.id.clone(),
                    at: history
                        .created
                        .as_deref()
                        .and_then(source::parse_time)
                        .unwrap_or(updated),
                    author,
                    from_column,
                    to_column,
                });
            }
        }
        let first_column = match &first_status {
            Some(status) => resolver.column(status),
            None => column,
        };
        let comments = fields
            .comment
            .as_ref()
            .map(|c| c.comments.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|c| {
                let written = c
                    .created
                    .as_deref()
                    .and_then(source::parse_time)
                    .unwrap_or(created);
                PlannedComment {
                    author: resolver.person(c.author.as_ref(), true),
                    body: to_markdown(c.body.as_ref()),
                    created: written,
                    updated: c
                        .updated
                        .as_deref()
                        .and_then(source::parse_time)
                        .unwrap_or(written),
                    jira_id: c.id,
                }
            })
            .collect();
        let mut links: Vec<(&'static str, String)> = fields
            .issuelinks
            .iter()
            .filter_map(|link| {
                // Stored once: from the end that points outward.
                let other = link.outward.as_ref()?;
                ids.contains(other.id.as_str())
                    .then(|| (link_kind(&link.link_type.name), other.id.clone()))
            })
            .collect();
        if let Some(parent) = &fields.parent
            && ids.contains(parent.id.as_str())
        {
            links.push(("relates", parent.id.clone()));
        }
        let item_type = resolver.item_type(
            fields
                .issuetype
                .as_ref()
                .map(|t| t.name.as_str())
                .unwrap_or(""),
        );
        let priority = resolver.priority(fields.priority.as_ref().map(|p| p.name.as_str()));
        let service = resolver.service(issue);
        let reporter = resolver.person(fields.reporter.as_ref(), true);
        let responsible = resolver.person(fields.assignee.as_ref(), true);
        planned.push((
            column,
            first_column,
            PlannedIssue {
                jira_id: issue.id.clone(),
                jira_key: issue.key.clone(),
                url: browse_url(issue),
                title: fields
                    .summary
                    .clone()
                    .filter(|s| !s.trim().is_empty())
                    .unwrap_or_else(|| issue.key.clone()),
                description: to_markdown(fields.description.as_ref()),
                item_type,
                priority,
                service,
                labels: fields.labels.iter().map(|l| l.to_lowercase()).collect(),
                due_date: fields.duedate.as_deref().and_then(source::parse_date),
                created,
                updated,
                reporter,
                responsible,
                default_accountable: resolver.default_accountable,
                first_column: 0,
                column: 0,
                moves,
                comments,
                links,
                attachments: fields.attachment.len(),
            },
        ));
    }
    let column_names = resolver.column_names.clone();
    let unmapped = resolver.unmapped;
    let mut issues: Vec<PlannedIssue> = planned
        .into_iter()
        .filter_map(|(column, first, mut issue)| {
            issue.column = column?;
            issue.first_column = first.unwrap_or(issue.column);
            Some(issue)
        })
        .collect();
    issues.sort_by(|a, b| {
        (a.created, a.jira_id.parse::<i64>().unwrap_or(0))
            .cmp(&(b.created, b.jira_id.parse::<i64>().unwrap_or(0)))
    });
    Ok(Plan {
        board,
        issues,
        unmapped,
        column_names,
    })
}
