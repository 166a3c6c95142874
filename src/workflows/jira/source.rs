//! JIRA issues as its REST API returns them with `expand=changelog`: from JIRA Cloud (API v3,
//! descriptions and comments in the Atlassian Document Format) or Data Center (API v2, wiki
//! text). Only the fields the import reads are declared; JIRA's many others are ignored, and
//! custom fields are kept by name for a mapping that reads one (`customfield_10042`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::Value;

/// One JIRA issue.
#[derive(Debug, Clone, Deserialize)]
pub struct Issue {
    /// The stable numeric id (`"10042"`): it survives a move to another project.
    pub id: String,
    /// The human key (`OZG-123`), which changes when the issue moves.
    pub key: String,
    /// Its REST address (`https://jira.example.org/rest/api/2/issue/10042`), which tells where
    /// JIRA is.
    #[serde(rename = "self")]
    pub self_url: Option<String>,
    /// Its fields.
    #[serde(default)]
    pub fields: Fields,
    /// Its history, with `expand=changelog`.
    #[serde(default)]
    pub changelog: Option<Changelog>,
}

/// The fields of an issue that the import reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fields {
    /// The title.
    pub summary: Option<String>,
    /// Wiki text (v2) or an ADF document (v3).
    pub description: Option<Value>,
    /// Bug, Task, Story, …
    pub issuetype: Option<Named>,
    /// The workflow status, with its category.
    pub status: Option<Status>,
    /// Highest … Lowest.
    pub priority: Option<Named>,
    /// Labels.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: Vec<String>,
    /// `YYYY-MM-DD`.
    pub duedate: Option<String>,
    /// `2026-02-02T09:00:00.000+0100`.
    pub created: Option<String>,
    /// Last change, same format.
    pub updated: Option<String>,
    /// When it was resolved.
    pub resolutiondate: Option<String>,
    /// Who works on it.
    pub assignee: Option<Person>,
    /// Who reported it.
    pub reporter: Option<Person>,
    /// A sub-task's parent, or an issue's epic.
    pub parent: Option<IssueRef>,
    /// Components (one way to name the online service).
    #[serde(default, deserialize_with = "null_as_default")]
    pub components: Vec<Named>,
    /// Links to other issues.
    #[serde(default, deserialize_with = "null_as_default")]
    pub issuelinks: Vec<IssueLink>,
    /// The comments.
    pub comment: Option<Comments>,
    /// Attachments: counted, not imported.
    #[serde(default, deserialize_with = "null_as_default")]
    pub attachment: Vec<Value>,
    /// Everything else, custom fields among it.
    #[serde(flatten)]
    pub other: HashMap<String, Value>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Anything JIRA names: an issue type, a priority, a component.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Named {
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// A workflow status.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Status {
    /// Its name (`In Progress`).
    #[serde(default)]
    pub name: String,
    /// Its category.
    #[serde(rename = "statusCategory")]
    pub category: Option<StatusCategory>,
}

/// A status category: `new`, `indeterminate` or `done`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StatusCategory {
    /// The category's key.
    #[serde(default)]
    pub key: String,
}

/// A JIRA user: Cloud names them by `accountId` (e-mail often hidden), Data Center by `name`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Person {
    /// Cloud's id.
    #[serde(rename = "accountId")]
    pub account_id: Option<String>,
    /// The e-mail, where the user's privacy settings show it.
    #[serde(rename = "emailAddress")]
    pub email: Option<String>,
    /// For messages.
    #[serde(rename = "displayName")]
    pub display_name: Option<String>,
    /// Data Center's user name.
    pub name: Option<String>,
}

impl Person {
    /// How the person is named in the mapping and in reports: account id, else user name,
    /// else e-mail.
    pub fn handle(&self) -> String {
        self.account_id
            .clone()
            .or_else(|| self.name.clone())
            .or_else(|| self.email.clone())
            .unwrap_or_else(|| "(unknown)".into())
    }
}

/// Another issue, named by a link or as a parent.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IssueRef {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// Its key.
    #[serde(default)]
    pub key: String,
}

/// A link between two issues, seen from this one.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IssueLink {
    /// The link type (`Blocks`, `Relates`, `Duplicate`, `Cloners`).
    #[serde(rename = "type", default)]
    pub link_type: LinkType,
    /// Set when this issue is the link's outward end's target (`is blocked by` this one).
    #[serde(rename = "inwardIssue")]
    pub inward: Option<IssueRef>,
    /// Set when this issue points at the other (`blocks` it).
    #[serde(rename = "outwardIssue")]
    pub outward: Option<IssueRef>,
}

/// A link type.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct LinkType {
    /// Its name.
    #[serde(default)]
    pub name: String,
}

/// The comments of an issue.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Comments {
    /// The comments, oldest first.
    #[serde(default)]
    pub comments: Vec<Comment>,
}

/// One comment.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Comment {
    /// Its stable id.
    #[serde(default)]
    pub id: String,
    /// Who wrote it.
    pub author: Option<Person>,
    /// Wiki text or ADF.
    pub body: Option<Value>,
    /// When.
    pub created: Option<String>,
    /// Last edit.
    pub updated: Option<String>,
}

/// An issue's history.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Changelog {
    /// The change sets, in any order.
    #[serde(default)]
    pub histories: Vec<History>,
}

/// One change set: who changed what when.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct History {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// When.
    pub created: Option<String>,
    /// Who.
    pub author: Option<Person>,
    /// The field changes.
    #[serde(default)]
    pub items: Vec<HistoryItem>,
}

/// One field change.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HistoryItem {
    /// `status`, `assignee`, `summary`, …
    #[serde(default)]
    pub field: String,
    /// The old value as text.
    #[serde(rename = "fromString")]
    pub from_string: Option<String>,
    /// The new value as text.
    #[serde(rename = "toString")]
    pub to_string: Option<String>,
}

/// A JIRA timestamp: `2026-02-02T09:00:00.000+0100` (REST API), or RFC 3339.
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// A JIRA date: `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// The issues of an export: one or more JSON values one after the other (pages of a search
/// concatenated), each a search response `{"issues": [...]}`, an array of issues, or one
/// issue. An issue that appears twice (overlapping pages) is kept once, its latest version.
pub fn read_issues(bytes: &[u8]) -> Result<Vec<Issue>, String> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut issues: Vec<Issue> = Vec::new();
    let stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    for (n, value) in stream.enumerate() {
        let value = value.map_err(|e| format!("JSON value {} is malformed: {e}", n + 1))?;
        let list = match value {
            Value::Object(mut object) if object.contains_key("issues") => {
                object.remove("issues").unwrap_or(Value::Null)
            }
            Value::Array(list) => Value::Array(list),
            Value::Object(object) if object.contains_key("key") => {
                Value::Array(vec![Value::Object(object)])
            }
            _ => {
                return Err(format!(
                    "JSON value {} is neither a search response ({{\"issues\": [...]}}), an \
                     array of issues nor an issue",
                    n + 1
                ));
            }
        };
        let Value::Array(list) = list else {
            return Err(format!("JSON value {}: `issues` is not an array", n + 1));
        };
        for (i, issue) in list.into_iter().enumerate() {
            let issue: Issue = serde_json::from_value(issue)
                .map_err(|e| format!("JSON value {}, issue {}: {e}", n + 1, i + 1))?;
            issues.push(issue);
        }
    }
    if issues.is_empty() {
        return Err("the file holds no issues".into());
    }
    // Latest version of each issue (by `updated`), in the order first seen.
    let mut order: Vec<String> = Vec::new();
    let mut latest: HashMap<String, Issue> = HashMap::new();
    for issue in issues {
        let updated = |i: &Issue| i.fields.updated.as_deref().and_then(parse_time);
        match latest.get(&issue.id) {
            Some(seen) if updated(seen) >= updated(&issue) => {}
            Some(_) => {
                latest.insert(issue.id.clone(), issue);
            }
            None => {
                order.push(issue.id.clone());
                latest.insert(issue.id.clone(), issue);
            }
        }
    }
    Ok(order
        .into_iter()
        .filter_map(|id| latest.remove(&id))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jira_timestamps_with_offsets_become_utc() {
        let t = parse_time("2026-02-02T09:00:00.000+0100").expect("parses");
        assert_eq!(t.to_rfc3339(), "2026-02-02T08:00:00+00:00");
        assert!(parse_time("2026-02-02T09:00:00Z").is_some());
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn pages_concatenated_arrays_and_duplicates_are_read_once() {
        let page = |id: &str, updated: &str| {
            format!(
                r#"{{"startAt":0,"issues":[{{"id":"{id}","key":"OZG-{id}","fields":{{"summary":"S","updated":"{updated}","labels":null}}}}]}}"#
            )
        };
        let text = format!(
            "{}\n{}\n[{{\"id\":\"3\",\"key\":\"OZG-3\",\"fields\":{{}}}}]",
            page("1", "2026-02-02T09:00:00.000+0100"),
            page("1", "2026-02-03T09:00:00.000+0100")
        );
        let issues = read_issues(text.as_bytes()).expect("reads");
        assert_eq!(issues.len(), 2);
        assert_eq!(
            issues[0].fields.updated.as_deref(),
            Some("2026-02-03T09:00:00.000+0100")
        );
        assert_eq!(issues[1].key, "OZG-3");
        assert!(read_issues(b"{\"total\": 0}").is_err());
        assert!(read_issues(b"[]").is_err());
    }
}
