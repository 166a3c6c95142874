//! The mapping file of a JIRA import (TOML): the target board, and how JIRA's statuses, issue
//! types, priorities, components and people translate into opsboard's columns, item types,
//! priorities, online services and users. See `docs/jira-mapping.sample.toml`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The key of the board the issues go to.
    pub board: String,
    /// JIRA status name → column name of the board.
    #[serde(default)]
    pub statuses: BTreeMap<String, String>,
    /// JIRA status category (`new`, `indeterminate`, `done`) → column name: the fallback for
    /// statuses not named in `statuses`.
    #[serde(default)]
    pub status_categories: BTreeMap<String, String>,
    /// JIRA issue type → `demand`, `task` or `incident`.
    #[serde(default)]
    pub types: BTreeMap<String, String>,
    /// The item type of issue types not named in `types`.
    pub default_type: Option<String>,
    /// JIRA priority → `critical`, `high`, `medium` or `low`.
    #[serde(default)]
    pub priorities: BTreeMap<String, String>,
    /// The priority of JIRA priorities not named (and of issues without one).
    pub default_priority: Option<String>,
    /// Where the online service comes from.
    #[serde(default)]
    pub services: ServiceMapping,
    /// Who is who.
    #[serde(default)]
    pub people: PeopleMapping,
}

/// How an issue's online service is found.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceMapping {
    /// `components` (the first component that maps to a service; the default) or
    /// `field:<custom field id>` such as `field:customfield_10042` (its value or option).
    pub from: Option<String>,
    /// Component or field value → service key.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// The service of issues whose components or field map to none.
    pub default: Option<String>,
}

/// How JIRA users become opsboard users.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeopleMapping {
    /// JIRA user (Cloud `accountId`, Data Center user name, or e-mail) → e-mail of an opsboard
    /// user. A JIRA user whose e-mail is an opsboard user's needs no line.
    #[serde(default)]
    pub map: BTreeMap<String, String>,
    /// The opsboard user (e-mail) who stands in for JIRA users that map to nobody: as author of
    /// items, comments and status changes, and as the responsible person of an issue whose
    /// assignee maps to nobody.
    pub default: Option<String>,
    /// The opsboard user (e-mail) accountable for an issue whose online service names no
    /// accountable person in its RACI template.
    pub default_accountable: Option<String>,
}

/// Where an issue's service is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceSource {
    /// The components.
    Components,
    /// A custom field.
    Field(String),
}

impl Mapping {
    /// Reads a mapping file, naming what is wrong with it.
    pub fn parse(text: &str) -> Result<Mapping, String> {
        let mapping: Mapping =
            toml::from_str(text).map_err(|e| format!("the mapping file is invalid: {e}"))?;
        mapping.service_source()?;
        for (name, category) in &mapping.status_categories {
            if !["new", "indeterminate", "done"].contains(&name.as_str()) {
                return Err(format!(
                    "status_categories: `{name}` (→ {category}) is no JIRA status category; \
                     they are new, indeterminate and done"
                ));
            }
        }
        Ok(mapping)
    }

    /// Where the service comes from.
    pub fn service_source(&self) -> Result<ServiceSource, String> {
        match self.services.from.as_deref() {
            None | Some("components") => Ok(ServiceSource::Components),
            Some(other) => match other.strip_prefix("field:") {
                Some(field) if !field.trim().is_empty() => {
                    Ok(ServiceSource::Field(field.trim().to_string()))
                }
                _ => Err(format!(
                    "services.from must be `components` or `field:<custom field id>`, got `{other}`"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_mapping_parses() {
        let text = include_str!("../../../docs/jira-mapping.sample.toml");
        let mapping = Mapping::parse(text).expect("the sample is valid");
        assert_eq!(mapping.board, "OPS");
        assert_eq!(mapping.service_source(), Ok(ServiceSource::Components));
        assert!(mapping.statuses.contains_key("In Progress"));
    }

    #[test]
    fn mistakes_are_named() {
        let error = Mapping::parse("board = \"OPS\"\nstatus = {}").expect_err("unknown key");
        assert!(error.contains("status"), "{error}");
        let error = Mapping::parse("board = \"OPS\"\n[status_categories]\nopen = \"Backlog\"")
            .expect_err("no such category");
        assert!(error.contains("open"), "{error}");
        let error = Mapping::parse("board = \"OPS\"\n[services]\nfrom = \"labels\"")
            .expect_err("no such source");
        assert!(error.contains("services.from"), "{error}");
    }
}
