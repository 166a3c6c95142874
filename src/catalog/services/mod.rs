//! Online services: the catalogue entries every demand, task and incident hangs on. Addressed by
//! an immutable lower-case `key`. This file holds the types, the forms and their validation;
//! the reads are in `queries`, the writes (upsert, update, delete) in `writes`.

mod queries;
mod writes;

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::catalog::organizations::Organization;
use crate::common::db::DbConnection;
use crate::common::db::schema::services;
use crate::common::error::{ApiError, FieldError};
use crate::common::person::PersonRef;
use crate::common::text::{
    TagRule, check_text, http_url, optional_text, required_text, tag_list, trimmed,
};

/// Where a service is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum Lifecycle {
    /// Not yet built or not yet live.
    #[default]
    Planned,
    /// Live for a few municipalities or users.
    Pilot,
    /// Live.
    Productive,
    /// Switched off; kept for history.
    Retired,
}

/// How the state came to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// "Einer für Alle": built and run by another state, joined by this one.
    Efa,
    /// An own development.
    Own,
    /// Taken over from elsewhere.
    Reuse,
}

text_enum!(Lifecycle { Planned => "planned", Pilot => "pilot", Productive => "productive", Retired => "retired" });
text_enum!(ServiceKind { Efa => "efa", Own => "own", Reuse => "reuse" });

/// An online service of the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 12, "key": "baugenehmigung", "name": "Bauvorbescheid und Baugenehmigung",
    "description": "Bauantrag und Bauvoranfrage online stellen.", "lifecycle": "productive",
    "kind": "efa", "maturity_level": 3, "ozg_id": "10519", "leika_keys": ["99010003001000"],
    "topic": "Bauen & Wohnen", "operator": "DVZ", "responsible": "FM",
    "url": "https://bauportal.example.org", "go_live_date": "2023-05-02", "tags": ["efa", "bauen"],
    "accountable": {"id": 2, "display_name": "Katrin Vogel", "email": "katrin.vogel@example.org", "active": true},
    "created_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T08:00:00Z", "version": 1
}))]
pub struct Service {
    /// Numeric id.
    pub id: i64,
    /// Lower-case slug, unique and immutable; used in URLs.
    pub key: String,
    /// Name of the service.
    pub name: String,
    /// What the service does (Markdown).
    pub description: String,
    /// Where the service is in its life.
    pub lifecycle: Lifecycle,
    /// EfA, own development or reuse.
    pub kind: ServiceKind,
    /// OZG maturity level 0–4 (model 1.1).
    pub maturity_level: i16,
    /// The 5-digit OZG service id, if any.
    pub ozg_id: Option<String>,
    /// LeiKa service keys (14 digits, starting with 99).
    pub leika_keys: Vec<String>,
    /// The OZG topic field.
    pub topic: Option<String>,
    /// Short name of the organization that runs it.
    pub operator: Option<String>,
    /// Short name of the organization responsible for the content.
    pub responsible: Option<String>,
    /// Where citizens find it.
    pub url: Option<String>,
    /// When it went live.
    pub go_live_date: Option<NaiveDate>,
    /// Free lower-case tags.
    pub tags: Vec<String>,
    /// The accountable person of its RACI template (read-only here; see
    /// `/services/{key}/raci`).
    pub accountable: Option<PersonRef>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// The writable fields of a service: the body of `POST /api/v1/services`, one row of an import.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "key": "baugenehmigung", "name": "Bauvorbescheid und Baugenehmigung", "kind": "efa",
    "lifecycle": "productive", "maturity_level": 3, "ozg_id": "10519",
    "leika_keys": ["99010003001000"], "topic": "Bauen & Wohnen", "operator": "DVZ",
    "responsible": "FM", "tags": ["efa", "bauen"]
}))]
pub struct ServiceInput {
    /// Lower-case slug: letters, digits and single hyphens, 1–64 characters. Immutable.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub key: String,
    /// Name, 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: String,
    /// Description (Markdown), up to 20,000 characters.
    #[serde(default)]
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub description: String,
    /// Lifecycle; `planned` when omitted.
    #[serde(default)]
    pub lifecycle: Lifecycle,
    /// EfA, own development or reuse.
    pub kind: Option<ServiceKind>,
    /// OZG maturity level 0–4; 0 when omitted.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4)]
    pub maturity_level: i16,
    /// 5-digit OZG id.
    #[schema(pattern = r"^[0-9]{5}$")]
    pub ozg_id: Option<String>,
    /// LeiKa keys: 14 digits each, starting with 99; at most 50.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<50, _, _>"
    )]
    #[schema(max_items = 50)]
    pub leika_keys: Vec<String>,
    /// OZG topic field.
    #[schema(max_length = 100, pattern = r"^[^\u0000]*$")]
    pub topic: Option<String>,
    /// Short name of the operating organization.
    pub operator: Option<String>,
    /// Short name of the responsible organization.
    pub responsible: Option<String>,
    /// `http(s)://` address of the service.
    #[schema(max_length = 2000, pattern = "^https?://[^\\s]+$")]
    pub url: Option<String>,
    /// Go-live date.
    pub go_live_date: Option<NaiveDate>,
    /// Tags: lower-case letters, digits, `-`, `_`, `.`; at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub tags: Vec<String>,
}

/// The body of `PATCH /api/v1/services/{key}`: fields present change, `null` clears an optional
/// one. The key cannot change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lifecycle": "retired"}))]
pub struct ServiceChanges {
    /// New name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: Option<String>,
    /// New description.
    #[schema(max_length = 20000, pattern = r"^[^\u0000]*$")]
    pub description: Option<String>,
    /// New lifecycle; `retired` rather than deleting a service that items refer to.
    pub lifecycle: Option<Lifecycle>,
    /// New kind.
    pub kind: Option<ServiceKind>,
    /// New maturity level.
    #[schema(minimum = 0, maximum = 4)]
    pub maturity_level: Option<i16>,
    /// New OZG id; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(pattern = r"^[0-9]{5}$")]
    pub ozg_id: Option<Option<String>>,
    /// New LeiKa keys (replaces the list); at most 50.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<50, _, _>"
    )]
    #[schema(max_items = 50)]
    pub leika_keys: Option<Vec<String>>,
    /// New topic; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 100, pattern = r"^[^\u0000]*$")]
    pub topic: Option<Option<String>>,
    /// New operator; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub operator: Option<Option<String>>,
    /// New responsible organization; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub responsible: Option<Option<String>>,
    /// New address; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 2000, pattern = "^https?://[^\\s]+$")]
    pub url: Option<Option<String>>,
    /// New go-live date; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub go_live_date: Option<Option<NaiveDate>>,
    /// New tags (replaces the list); at most 20.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most_or_null::<20, _, _>"
    )]
    #[schema(max_items = 20)]
    pub tags: Option<Vec<String>>,
}

/// How a service list is sorted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
pub enum ServiceSort {
    /// By key, A–Z (default).
    #[default]
    #[serde(rename = "key")]
    Key,
    /// By key, Z–A.
    #[serde(rename = "-key")]
    KeyDesc,
    /// By name, A–Z.
    #[serde(rename = "name")]
    Name,
    /// By name, Z–A.
    #[serde(rename = "-name")]
    NameDesc,
    /// Least recently changed first (what a sync script wants).
    #[serde(rename = "updated_at")]
    UpdatedAt,
    /// Most recently changed first.
    #[serde(rename = "-updated_at")]
    UpdatedAtDesc,
}

/// Filters and order of `GET /api/v1/services`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ServiceFilter {
    /// Only services in this lifecycle.
    pub lifecycle: Option<Lifecycle>,
    /// Only services of this kind.
    pub kind: Option<ServiceKind>,
    /// Only services run by this organization (short name).
    pub operator: Option<String>,
    /// Only services this organization is responsible for (short name).
    pub responsible: Option<String>,
    /// Only services with this tag.
    pub tag: Option<String>,
    /// Case-insensitive search in key, name and LeiKa keys.
    pub q: Option<String>,
    /// Only services changed at or after this instant: an RFC 3339 time, or a span back
    /// from now (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub updated_since: Option<crate::common::query::Since>,
    /// Order: `key` (default), `name`, `updated_at`; prefix `-` for descending.
    #[param(inline)]
    pub sort: Option<ServiceSort>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = services)]
pub(crate) struct ServiceRow {
    pub(crate) id: i64,
    key: String,
    name: String,
    description: String,
    lifecycle: String,
    kind: String,
    maturity_level: i16,
    ozg_id: Option<String>,
    topic: Option<String>,
    operator_id: Option<i64>,
    responsible_id: Option<i64>,
    url: Option<String>,
    go_live_date: Option<NaiveDate>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    pub(crate) version: i64,
    pub(crate) raci_version: i64,
}

/// A validated input with organizations resolved to ids.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedService {
    key: String,
    name: String,
    description: String,
    lifecycle: Lifecycle,
    kind: ServiceKind,
    maturity_level: i16,
    ozg_id: Option<String>,
    leika_keys: Vec<String>,
    topic: Option<String>,
    operator_id: Option<i64>,
    responsible_id: Option<i64>,
    url: Option<String>,
    go_live_date: Option<NaiveDate>,
    tags: Vec<String>,
}

/// Organizations by lower-case short name, for resolving references.
pub struct OrganizationIndex(HashMap<String, (i64, String)>);

impl OrganizationIndex {
    /// Loads every organization (one query).
    pub fn load(conn: &mut DbConnection) -> Result<Self, ApiError> {
        Ok(OrganizationIndex(
            Organization::all(conn)?
                .into_iter()
                .map(|o| (o.short_name.to_lowercase(), (o.id, o.short_name)))
                .collect(),
        ))
    }

    fn resolve(
        &self,
        field: &str,
        short_name: Option<&str>,
        errors: &mut Vec<FieldError>,
    ) -> Option<i64> {
        let name = short_name.map(str::trim).filter(|s| !s.is_empty())?;
        match self.0.get(&name.to_lowercase()) {
            Some((id, _)) => Some(*id),
            None => {
                errors.push(FieldError::new(
                    field,
                    format!("there is no organization `{name}`"),
                ));
                None
            }
        }
    }

    fn short_name(&self, id: Option<i64>) -> Option<String> {
        let id = id?;
        self.0
            .values()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s.clone())
    }
}

/// Whether `key` is a valid service key.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.split('-').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

impl ServiceInput {
    /// Checks every field and resolves the organizations; every problem is reported, each
    /// under its field's name.
    pub fn validate(&self, orgs: &OrganizationIndex) -> Result<ResolvedService, Vec<FieldError>> {
        let mut errors = Vec::new();
        let key = self.key.trim().to_string();
        if !is_valid_key(&key) {
            errors.push(FieldError::new(
                "key",
                "must be 1–64 lower-case letters, digits and single hyphens, such as `wohngeld-antrag`",
            ));
        }
        let name = required_text(&mut errors, "name", &self.name, 200);
        check_text(&mut errors, "description", &self.description, 20_000);
        let kind = match self.kind {
            Some(kind) => kind,
            None => {
                errors.push(FieldError::new("kind", "is required: efa, own or reuse"));
                ServiceKind::Own
            }
        };
        if !(0..=4).contains(&self.maturity_level) {
            errors.push(FieldError::new("maturity_level", "must be between 0 and 4"));
        }
        let ozg_id = trimmed(self.ozg_id.as_deref());
        if let Some(id) = &ozg_id
            && !(id.len() == 5 && id.chars().all(|c| c.is_ascii_digit()))
        {
            errors.push(FieldError::new(
                "ozg_id",
                "must be a 5-digit OZG id such as 10519",
            ));
        }
        let mut leika_keys: Vec<String> = Vec::new();
        for (i, raw) in self.leika_keys.iter().enumerate() {
            let leika = raw.trim().to_string();
            if !(leika.len() == 14
                && leika.starts_with("99")
                && leika.chars().all(|c| c.is_ascii_digit()))
            {
                errors.push(FieldError::new(
                    format!("leika_keys[{i}]"),
                    "must be a LeiKa key: 14 digits starting with 99",
                ));
            } else if !leika_keys.contains(&leika) {
                leika_keys.push(leika);
            }
        }
        if leika_keys.len() > 50 {
            errors.push(FieldError::new("leika_keys", "must hold at most 50 keys"));
        }
        let topic = optional_text(&mut errors, "topic", self.topic.as_deref(), 100);
        let operator_id = orgs.resolve("operator", self.operator.as_deref(), &mut errors);
        let responsible_id = orgs.resolve("responsible", self.responsible.as_deref(), &mut errors);
        let url = http_url(&mut errors, "url", self.url.as_deref());
        let tag_rule = TagRule {
            noun: "tags",
            max_chars: 40,
            max_entries: 20,
        };
        let tags = tag_list(&mut errors, "tags", &self.tags, tag_rule);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ResolvedService {
            key,
            name,
            description: self.description.clone(),
            lifecycle: self.lifecycle,
            kind,
            maturity_level: self.maturity_level,
            ozg_id,
            leika_keys,
            topic,
            operator_id,
            responsible_id,
            url,
            go_live_date: self.go_live_date,
            tags,
        })
    }
}

/// What an upsert did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UpsertOutcome {
    /// A new service was stored.
    Created,
    /// An existing service changed.
    Updated,
    /// The stored service already matched.
    Unchanged,
}
