//! Online services: the catalogue entries every demand, task and incident hangs on. Addressed by
//! an immutable lower-case `key`. The list loads in five queries whatever the page size: the
//! page, its LeiKa keys, its tags, its accountable people and its organizations.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use crate::catalog::organizations::Organization;
use crate::common::actor::Actor;
use crate::common::db::schema::{
    organizations, service_leika_keys, service_raci, service_tags, services, users,
};
use crate::common::db::{DbConnection, lower, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::pagination::{
    Page, PageParams, SortCursor, encode_cursor, format_cursor_time, parse_cursor_time,
};
use crate::common::person::PersonRef;
use crate::common::text::{
    TagRule, check_text, http_url, optional_text, required_text, tag_list, trimmed,
};
use crate::common::version::Precondition;

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
    /// Only services changed at or after this instant (RFC 3339).
    pub updated_since: Option<DateTime<Utc>>,
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

impl ResolvedService {
    fn as_json(&self, orgs: &OrganizationIndex) -> Value {
        json!({
            "name": self.name, "description": self.description,
            "lifecycle": self.lifecycle.as_str(), "kind": self.kind.as_str(),
            "maturity_level": self.maturity_level, "ozg_id": self.ozg_id,
            "leika_keys": self.leika_keys, "topic": self.topic,
            "operator": orgs.short_name(self.operator_id),
            "responsible": orgs.short_name(self.responsible_id),
            "url": self.url, "go_live_date": self.go_live_date, "tags": self.tags,
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

fn loaded_rows_to_api(
    conn: &mut DbConnection,
    rows: Vec<ServiceRow>,
) -> Result<Vec<Service>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut leika: HashMap<i64, Vec<String>> = HashMap::new();
    for (service_id, key) in service_leika_keys::table
        .filter(service_leika_keys::service_id.eq_any(&ids))
        .order((service_leika_keys::service_id, service_leika_keys::position))
        .select((
            service_leika_keys::service_id,
            service_leika_keys::leika_key,
        ))
        .load::<(i64, String)>(conn)?
    {
        leika.entry(service_id).or_default().push(key);
    }
    let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
    for (service_id, tag) in service_tags::table
        .filter(service_tags::service_id.eq_any(&ids))
        .order((service_tags::service_id, service_tags::tag))
        .select((service_tags::service_id, service_tags::tag))
        .load::<(i64, String)>(conn)?
    {
        tags.entry(service_id).or_default().push(tag);
    }
    let org_ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [r.operator_id, r.responsible_id])
        .flatten()
        .collect();
    let mut accountable: HashMap<i64, PersonRef> = service_raci::table
        .inner_join(users::table)
        .filter(
            service_raci::service_id
                .eq_any(&ids)
                .and(service_raci::role.eq("accountable")),
        )
        .select((
            service_raci::service_id,
            users::id,
            users::display_name,
            users::email,
            users::active,
        ))
        .load::<(i64, i64, String, String, bool)>(conn)?
        .into_iter()
        .map(|(service, id, display_name, email, active)| {
            (
                service,
                PersonRef {
                    id,
                    display_name,
                    email,
                    active,
                },
            )
        })
        .collect();
    let orgs: HashMap<i64, String> = organizations::table
        .filter(organizations::id.eq_any(&org_ids))
        .select((organizations::id, organizations::short_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    rows.into_iter()
        .map(|row| {
            let lifecycle = Lifecycle::parse(&row.lifecycle).ok_or_else(|| {
                ApiError::internal(format!("unknown lifecycle {}", row.lifecycle))
            })?;
            let kind = ServiceKind::parse(&row.kind)
                .ok_or_else(|| ApiError::internal(format!("unknown kind {}", row.kind)))?;
            Ok(Service {
                leika_keys: leika.remove(&row.id).unwrap_or_default(),
                tags: tags.remove(&row.id).unwrap_or_default(),
                accountable: accountable.remove(&row.id),
                operator: row.operator_id.and_then(|id| orgs.get(&id).cloned()),
                responsible: row.responsible_id.and_then(|id| orgs.get(&id).cloned()),
                id: row.id,
                key: row.key,
                name: row.name,
                description: row.description,
                lifecycle,
                kind,
                maturity_level: row.maturity_level,
                ozg_id: row.ozg_id,
                topic: row.topic,
                url: row.url,
                go_live_date: row.go_live_date,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
                version: row.version,
            })
        })
        .collect()
}

impl Service {
    /// The stored row of a service by key, or 404.
    pub(crate) fn row(conn: &mut DbConnection, key: &str) -> Result<ServiceRow, ApiError> {
        services::table
            .filter(services::key.eq(key))
            .select(ServiceRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("There is no service `{key}`.")))
    }

    /// The stored row of a service by key, locked until the end of the transaction (see
    /// [`crate::common::db::lock`]): where every write of a service starts.
    pub(crate) fn row_for_update(
        conn: &mut DbConnection,
        key: &str,
    ) -> Result<ServiceRow, ApiError> {
        let row = Service::row(conn, key)?;
        if crate::common::db::lock(conn, crate::common::db::Lock::Service(row.id))? {
            return Service::row(conn, key);
        }
        Ok(row)
    }

    /// The service with this key.
    pub fn find(conn: &mut DbConnection, key: &str) -> Result<Service, ApiError> {
        let row = Service::row(conn, key)?;
        loaded_rows_to_api(conn, vec![row])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no service `{key}`.")))
    }

    /// Creates the service, or updates it when the key exists; unchanged input writes nothing.
    /// Runs in the caller's transaction; writes one event when something changed.
    pub fn upsert(
        conn: &mut DbConnection,
        service: &ResolvedService,
        orgs: &OrganizationIndex,
        actor: &Actor,
        create_only: bool,
    ) -> Result<(UpsertOutcome, i64), ApiError> {
        let existing = match Service::row_for_update(conn, &service.key) {
            Ok(row) => Some(row),
            Err(ApiError::NotFound(_)) => None,
            Err(other) => return Err(other),
        };
        let stamp = now();
        match existing {
            Some(_) if create_only => Err(ApiError::Conflict(format!(
                "A service with the key `{}` exists already.",
                service.key
            ))),
            None => {
                let id: i64 = diesel::insert_into(services::table)
                    .values((
                        services::key.eq(&service.key),
                        services::name.eq(&service.name),
                        services::description.eq(&service.description),
                        services::lifecycle.eq(service.lifecycle.as_str()),
                        services::kind.eq(service.kind.as_str()),
                        services::maturity_level.eq(service.maturity_level),
                        services::ozg_id.eq(&service.ozg_id),
                        services::topic.eq(&service.topic),
                        services::operator_id.eq(service.operator_id),
                        services::responsible_id.eq(service.responsible_id),
                        services::url.eq(&service.url),
                        services::go_live_date.eq(service.go_live_date),
                        services::created_at.eq(stamp),
                        services::updated_at.eq(stamp),
                        services::version.eq(1_i64),
                        services::raci_version.eq(1_i64),
                    ))
                    .returning(services::id)
                    .get_result(conn)?;
                write_lists(conn, id, service)?;
                let mut data = service.as_json(orgs);
                data["key"] = json!(service.key);
                history::record(
                    conn,
                    Subject {
                        entity_type: "service",
                        entity_id: id,
                    },
                    "created",
                    actor,
                    data,
                )?;
                Ok((UpsertOutcome::Created, id))
            }
            Some(row) => {
                let current = loaded_rows_to_api(conn, vec![row.clone()])?
                    .pop()
                    .ok_or_else(|| ApiError::internal("service vanished"))?;
                let before = current_as_resolved(&current, &row);
                if before == *service {
                    return Ok((UpsertOutcome::Unchanged, row.id));
                }
                let (old, new) = (before.as_json(orgs), service.as_json(orgs));
                let mut changed = Diff::new();
                changed.fields_of(None, &old, &new);
                crate::versioned_write!(
                    conn,
                    services,
                    row.id,
                    row.version,
                    (
                        services::name.eq(&service.name),
                        services::description.eq(&service.description),
                        services::lifecycle.eq(service.lifecycle.as_str()),
                        services::kind.eq(service.kind.as_str()),
                        services::maturity_level.eq(service.maturity_level),
                        services::ozg_id.eq(&service.ozg_id),
                        services::topic.eq(&service.topic),
                        services::operator_id.eq(service.operator_id),
                        services::responsible_id.eq(service.responsible_id),
                        services::url.eq(&service.url),
                        services::go_live_date.eq(service.go_live_date),
                    ),
                )?;
                if before.leika_keys != service.leika_keys || before.tags != service.tags {
                    diesel::delete(
                        service_leika_keys::table.filter(service_leika_keys::service_id.eq(row.id)),
                    )
                    .execute(conn)?;
                    diesel::delete(service_tags::table.filter(service_tags::service_id.eq(row.id)))
                        .execute(conn)?;
                    write_lists(conn, row.id, service)?;
                }
                history::record(
                    conn,
                    Subject {
                        entity_type: "service",
                        entity_id: row.id,
                    },
                    "updated",
                    actor,
                    changed.into_data(),
                )?;
                Ok((UpsertOutcome::Updated, row.id))
            }
        }
    }

    /// Applies a PATCH: merges the changes into the stored service, validates the result as a
    /// whole and writes it, honouring `If-Match`.
    pub fn update(
        conn: &mut DbConnection,
        key: &str,
        changes: &ServiceChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<Service, ApiError> {
        let row = Service::row_for_update(conn, key)?;
        expected.check(row.version)?;
        let current = Service::find(conn, key)?;
        let input = ServiceInput {
            key: current.key.clone(),
            name: changes.name.clone().unwrap_or(current.name),
            description: changes.description.clone().unwrap_or(current.description),
            lifecycle: changes.lifecycle.unwrap_or(current.lifecycle),
            kind: Some(changes.kind.unwrap_or(current.kind)),
            maturity_level: changes.maturity_level.unwrap_or(current.maturity_level),
            ozg_id: changes.ozg_id.clone().unwrap_or(current.ozg_id),
            leika_keys: changes.leika_keys.clone().unwrap_or(current.leika_keys),
            topic: changes.topic.clone().unwrap_or(current.topic),
            operator: changes.operator.clone().unwrap_or(current.operator),
            responsible: changes.responsible.clone().unwrap_or(current.responsible),
            url: changes.url.clone().unwrap_or(current.url),
            go_live_date: changes.go_live_date.unwrap_or(current.go_live_date),
            tags: changes.tags.clone().unwrap_or(current.tags),
        };
        let orgs = OrganizationIndex::load(conn)?;
        let resolved = input.validate(&orgs).map_err(ApiError::Validation)?;
        Service::upsert(conn, &resolved, &orgs, actor, false)?;
        Service::find(conn, key)
    }

    /// Deletes a service with its RACI template. Refused with 409 naming what still refers to
    /// it: items (deleted ones included, whose history refers to it), incidents that list it
    /// as affected, SLA policies for it. Retire a service instead of deleting it.
    pub fn delete(
        conn: &mut DbConnection,
        key: &str,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<(), ApiError> {
        use crate::common::db::schema::{incident_services, items, sla_policies};
        let row = Service::row_for_update(conn, key)?;
        expected.check(row.version)?;
        let referring: i64 = items::table
            .filter(items::service_id.eq(row.id))
            .count()
            .get_result(conn)?;
        // An incident's own service is among its affected ones; count only the others here.
        let affected: i64 = incident_services::table
            .inner_join(items::table)
            .filter(incident_services::service_id.eq(row.id))
            .filter(items::service_id.ne(row.id).or(items::service_id.is_null()))
            .count()
            .get_result(conn)?;
        let policies: i64 = sla_policies::table
            .filter(sla_policies::service_id.eq(row.id))
            .count()
            .get_result(conn)?;
        ApiError::unless_unreferenced(
            &format!("`{key}`"),
            &[
                (referring, "item(s) (deleted ones included)"),
                (affected, "incident(s) as an affected service"),
                (policies, "SLA policy(ies)"),
            ],
            "retire it (lifecycle: retired) instead of deleting it, or delete its SLA policies first.",
        )?;
        crate::versioned_delete!(conn, services, row.id, row.version)?;
        history::record(
            conn,
            Subject {
                entity_type: "service",
                entity_id: row.id,
            },
            "deleted",
            actor,
            json!({"key": key}),
        )
    }

    /// One page of services, filtered and sorted, in five queries.
    pub fn list(
        conn: &mut DbConnection,
        filter: &ServiceFilter,
    ) -> Result<Page<Service>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let sort = filter.sort.unwrap_or_default();
        let after = paging
            .after::<SortCursor>()?
            .map(|c| c.for_sort(sort))
            .transpose()?;
        let mut query = services::table.select(ServiceRow::as_select()).into_boxed();
        if let Some(lifecycle) = filter.lifecycle {
            query = query.filter(services::lifecycle.eq(lifecycle.as_str()));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(services::kind.eq(kind.as_str()));
        }
        if let Some(operator) = &filter.operator {
            let ids = organizations::table
                .filter(lower(organizations::short_name).eq(operator.trim().to_lowercase()))
                .select(organizations::id.nullable());
            query = query.filter(services::operator_id.eq_any(ids));
        }
        if let Some(responsible) = &filter.responsible {
            let ids = organizations::table
                .filter(lower(organizations::short_name).eq(responsible.trim().to_lowercase()))
                .select(organizations::id.nullable());
            query = query.filter(services::responsible_id.eq_any(ids));
        }
        if let Some(tag) = &filter.tag {
            let ids = service_tags::table
                .filter(service_tags::tag.eq(tag.trim().to_lowercase()))
                .select(service_tags::service_id);
            query = query.filter(services::id.eq_any(ids));
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(services::updated_at.ge(since.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            let by_leika = service_leika_keys::table
                .filter(
                    service_leika_keys::leika_key
                        .like(pattern.clone())
                        .escape('\\'),
                )
                .select(service_leika_keys::service_id);
            query = query.filter(
                services::key
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(services::name).like(pattern).escape('\\'))
                    .or(services::id.eq_any(by_leika)),
            );
        }
        let bad_cursor = || ApiError::bad_field("cursor", "is not a cursor returned by this list");
        query = match sort {
            ServiceSort::Key | ServiceSort::KeyDesc => {
                let after = after.map(|c| (c.v, c.id));
                crate::keyset_order!(
                    query,
                    services::key,
                    services::id,
                    sort == ServiceSort::KeyDesc,
                    after
                )
            }
            ServiceSort::Name | ServiceSort::NameDesc => {
                let after = after.map(|c| (c.v, c.id));
                crate::keyset_order!(
                    query,
                    services::name,
                    services::id,
                    sort == ServiceSort::NameDesc,
                    after
                )
            }
            ServiceSort::UpdatedAt | ServiceSort::UpdatedAtDesc => {
                let after = match after {
                    Some(c) => Some((parse_cursor_time(&c.v).ok_or_else(bad_cursor)?, c.id)),
                    None => None,
                };
                crate::keyset_order!(
                    query,
                    services::updated_at,
                    services::id,
                    sort == ServiceSort::UpdatedAtDesc,
                    after
                )
            }
        };
        let rows = query.limit(limit + 1).load::<ServiceRow>(conn)?;
        let items = loaded_rows_to_api(conn, rows)?;
        let mut page = Page::from_rows(items, limit, |_| ());
        if page.next_cursor.is_some()
            && let Some(last) = page.items.last()
        {
            let v = match sort {
                ServiceSort::Key | ServiceSort::KeyDesc => last.key.clone(),
                ServiceSort::Name | ServiceSort::NameDesc => last.name.clone(),
                ServiceSort::UpdatedAt | ServiceSort::UpdatedAtDesc => {
                    format_cursor_time(last.updated_at)
                }
            };
            page.next_cursor = Some(encode_cursor(&SortCursor::new(sort, v, last.id)));
        }
        Ok(page)
    }
}

fn current_as_resolved(current: &Service, row: &ServiceRow) -> ResolvedService {
    ResolvedService {
        key: current.key.clone(),
        name: current.name.clone(),
        description: current.description.clone(),
        lifecycle: current.lifecycle,
        kind: current.kind,
        maturity_level: current.maturity_level,
        ozg_id: current.ozg_id.clone(),
        leika_keys: current.leika_keys.clone(),
        topic: current.topic.clone(),
        operator_id: row.operator_id,
        responsible_id: row.responsible_id,
        url: current.url.clone(),
        go_live_date: current.go_live_date,
        tags: current.tags.clone(),
    }
}

/// Writes the LeiKa keys and tags of a service, row by row (multi-row inserts do not cross the
/// two engines).
fn write_lists(
    conn: &mut DbConnection,
    id: i64,
    service: &ResolvedService,
) -> Result<(), ApiError> {
    for (position, key) in service.leika_keys.iter().enumerate() {
        diesel::insert_into(service_leika_keys::table)
            .values((
                service_leika_keys::service_id.eq(id),
                service_leika_keys::leika_key.eq(key),
                service_leika_keys::position.eq(i32::try_from(position).unwrap_or(i32::MAX)),
            ))
            .execute(conn)?;
    }
    for tag in &service.tags {
        diesel::insert_into(service_tags::table)
            .values((service_tags::service_id.eq(id), service_tags::tag.eq(tag)))
            .execute(conn)?;
    }
    Ok(())
}
