//! Organizations: the stakeholder bodies around the team (ministries, agencies, the IT operator,
//! municipal associations, districts, cities, vendors), addressed by their short name.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::common::actor::Actor;
use crate::common::db::schema::{demand_details, incident_details, organizations, services, users};
use crate::common::db::{DbConnection, lower, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::text::required_text;
use crate::common::version::Precondition;
use crate::users::model::normalize_email;

/// What kind of body an organization is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationKind {
    /// A state ministry.
    Ministry,
    /// A state agency or authority.
    Agency,
    /// An IT operator running services.
    ItOperator,
    /// An association of municipalities or districts.
    MunicipalAssociation,
    /// A district (Landkreis).
    District,
    /// A municipality (in Mecklenburg-Vorpommern's rollout: an amtsfreie Gemeinde, which runs
    /// its own administration).
    Municipality,
    /// An Amt: the shared administration of its member municipalities.
    Amt,
    /// An independent city (kreisfreie Stadt): Rostock, Schwerin.
    City,
    /// A manufacturer or service provider.
    Vendor,
    /// Anything else.
    Other,
}

impl OrganizationKind {
    /// Every kind.
    pub const ALL: [OrganizationKind; 10] = [
        Self::Ministry,
        Self::Agency,
        Self::ItOperator,
        Self::MunicipalAssociation,
        Self::District,
        Self::Municipality,
        Self::Amt,
        Self::City,
        Self::Vendor,
        Self::Other,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ministry => "ministry",
            Self::Agency => "agency",
            Self::ItOperator => "it_operator",
            Self::MunicipalAssociation => "municipal_association",
            Self::District => "district",
            Self::Municipality => "municipality",
            Self::Amt => "amt",
            Self::City => "city",
            Self::Vendor => "vendor",
            Self::Other => "other",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether it is a municipal administration that online services are rolled out to: an
    /// Amt, an amtsfreie Gemeinde or a kreisfreie Stadt.
    pub fn is_administration(self) -> bool {
        matches!(self, Self::Amt | Self::Municipality | Self::City)
    }

    /// The kinds of municipal administrations.
    pub const ADMINISTRATIONS: [OrganizationKind; 3] = [Self::Amt, Self::Municipality, Self::City];
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = organizations)]
struct OrganizationRow {
    id: i64,
    short_name: String,
    name: String,
    kind: String,
    contact_email: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
    parent_id: Option<i64>,
    official_key: Option<String>,
    seat: Option<String>,
    members: String,
}

/// A stakeholder organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "short_name": "DVZ", "name": "DVZ Datenverarbeitungszentrum M-V GmbH",
    "kind": "it_operator", "contact_email": "service@dvz.example.org",
    "parent": null, "official_key": null, "seat": null, "members": [],
    "created_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T08:00:00Z", "version": 1
}))]
pub struct Organization {
    /// Numeric id.
    pub id: i64,
    /// Unique short name (regardless of case), used to address it: `FM`, `ZDMV`, `DVZ`, `LKT`.
    pub short_name: String,
    /// Full name.
    pub name: String,
    /// What kind of body it is.
    pub kind: OrganizationKind,
    /// A contact address, if known.
    pub contact_email: Option<String>,
    /// The short name of the district (`kind` `district`) a municipal administration belongs
    /// to; `null` for a kreisfreie Stadt and for bodies that belong to none.
    pub parent: Option<String>,
    /// The official key: a district's Kreisschlüssel (5 digits), an Amt's Amtsschlüssel (9),
    /// a municipality's Gemeindeschlüssel (8); `null` where none is known.
    pub official_key: Option<String>,
    /// Where its administration sits (an Amt's Amtssitz).
    pub seat: Option<String>,
    /// An Amt's member municipalities, by name; empty for any other kind.
    pub members: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

/// The short names of the parents of `rows`, in one query.
fn parents_of(
    conn: &mut DbConnection,
    rows: &[OrganizationRow],
) -> Result<std::collections::HashMap<i64, String>, ApiError> {
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.parent_id).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(organizations::table
        .filter(organizations::id.eq_any(ids))
        .select((organizations::id, organizations::short_name))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect())
}

/// Rows as the API shows them, with their parents' short names.
fn rows_into_api(
    conn: &mut DbConnection,
    rows: Vec<OrganizationRow>,
) -> Result<Vec<Organization>, ApiError> {
    let parents = parents_of(conn, &rows)?;
    rows.into_iter()
        .map(|row| {
            let parent = row.parent_id.and_then(|id| parents.get(&id).cloned());
            row.into_api(parent)
        })
        .collect()
}

/// The stored form of a list of member municipalities: one name a line.
fn join_members(members: &[String]) -> String {
    members.join("\n")
}

impl OrganizationRow {
    fn into_api(self, parent: Option<String>) -> Result<Organization, ApiError> {
        Ok(Organization {
            parent,
            official_key: self.official_key,
            seat: self.seat,
            members: self
                .members
                .lines()
                .filter(|m| !m.is_empty())
                .map(str::to_string)
                .collect(),
            kind: OrganizationKind::parse(&self.kind).ok_or_else(|| {
                ApiError::internal(format!("unknown organization kind {}", self.kind))
            })?,
            id: self.id,
            short_name: self.short_name,
            name: self.name,
            contact_email: self.contact_email,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            version: self.version,
        })
    }
}

/// The body of `POST /api/v1/organizations`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"short_name": "LKT", "name": "Landkreistag Mecklenburg-Vorpommern", "kind": "municipal_association"}))]
pub struct NewOrganization {
    /// 1–20 letters, digits or hyphens; unique regardless of case; cannot change later.
    #[schema(
        min_length = 1,
        max_length = 20,
        pattern = r"^[A-Za-z0-9][A-Za-z0-9-]*$"
    )]
    pub short_name: String,
    /// Full name, 1–200 characters.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: String,
    /// What kind of body it is.
    pub kind: OrganizationKind,
    /// A contact address.
    #[schema(format = Email, max_length = 254)]
    pub contact_email: Option<String>,
    /// The district (short name or full name of an organization of kind `district`) a
    /// municipal administration belongs to.
    #[serde(default)]
    pub parent: Option<String>,
    /// The official key: 5 (district), 8 (municipality) or 9 (Amt) digits.
    #[serde(default)]
    #[schema(pattern = r"^[0-9]{2,12}$")]
    pub official_key: Option<String>,
    /// Where its administration sits.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub seat: Option<String>,
    /// An Amt's member municipalities, by name (only an Amt has members).
    #[serde(default)]
    #[schema(max_items = 200)]
    pub members: Option<Vec<String>>,
}

/// The body of `PATCH /api/v1/organizations/{short_name}`; the short name cannot change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"contact_email": "geschaeftsstelle@lkt.example.org"}))]
pub struct OrganizationChanges {
    /// New full name.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\s][^\u0000]*$"
    )]
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<OrganizationKind>,
    /// New contact address; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(format = Email, max_length = 254)]
    pub contact_email: Option<Option<String>>,
    /// New district (short or full name of a `district`); `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub parent: Option<Option<String>>,
    /// New official key; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(pattern = r"^[0-9]{2,12}$")]
    pub official_key: Option<Option<String>>,
    /// New seat; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    #[schema(max_length = 200)]
    pub seat: Option<Option<String>>,
    /// New list of member municipalities (only an Amt has members).
    #[schema(max_items = 200)]
    pub members: Option<Vec<String>>,
}

/// Filters of `GET /api/v1/organizations`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrganizationFilter {
    /// Only organizations of this kind.
    pub kind: Option<OrganizationKind>,
    /// Case-insensitive search in short name and name.
    pub q: Option<String>,
    /// Only organizations changed at or after this instant: an RFC 3339 time, or a span back
    /// from now (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub updated_since: Option<crate::common::query::Since>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

fn validate_short_name(short_name: &str, errors: &mut Vec<FieldError>) {
    let valid = !short_name.is_empty()
        && short_name.len() <= 20
        && short_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !short_name.starts_with('-');
    if !valid {
        errors.push(FieldError::new(
            "short_name",
            "must be 1–20 letters, digits or hyphens, not starting with a hyphen",
        ));
    }
}

fn validate_name(name: &str, errors: &mut Vec<FieldError>) -> String {
    required_text(errors, "name", name, 200)
}

fn validate_official_key(key: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let key = key.trim();
    if key.is_empty() {
        return None;
    }
    if !(2..=12).contains(&key.len()) || !key.chars().all(|c| c.is_ascii_digit()) {
        errors.push(FieldError::new("official_key", "must be 2–12 digits"));
    }
    Some(key.to_string())
}

fn validate_seat(seat: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    if seat.trim().is_empty() {
        return None;
    }
    Some(required_text(errors, "seat", seat, 200))
}

fn validate_members(members: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    if members.len() > 200 {
        errors.push(FieldError::new("members", "at most 200 members"));
    }
    let mut out: Vec<String> = Vec::new();
    for member in members {
        let before = errors.len();
        let name = required_text(errors, "members", member, 200);
        if errors.len() == before && name.contains(['\n', '\r']) {
            errors.push(FieldError::new("members", "a name is one line"));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The district named by `name` (its short name, its name, or its name without
/// "Landkreis "), as a field error when there is none.
fn district_id(
    conn: &mut DbConnection,
    field: &str,
    name: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Option<i64>, ApiError> {
    let wanted = name.trim().to_lowercase();
    let districts: Vec<(i64, String, String)> = organizations::table
        .filter(organizations::kind.eq(OrganizationKind::District.as_str()))
        .select((
            organizations::id,
            organizations::short_name,
            organizations::name,
        ))
        .load(conn)?;
    let found = districts.iter().find(|(_, short, full)| {
        let full = full.to_lowercase();
        short.to_lowercase() == wanted
            || full == wanted
            || full.strip_prefix("landkreis ") == Some(wanted.as_str())
    });
    match found {
        Some((id, _, _)) => Ok(Some(*id)),
        None => {
            errors.push(FieldError::new(
                field,
                format!("there is no district `{}`", name.trim()),
            ));
            Ok(None)
        }
    }
}

/// Whether a kind may have members.
fn check_members(kind: OrganizationKind, members: &[String], errors: &mut Vec<FieldError>) {
    if kind != OrganizationKind::Amt && !members.is_empty() {
        errors.push(FieldError::new(
            "members",
            "only an Amt has member municipalities",
        ));
    }
}

impl Organization {
    /// The organization with this short name (any case).
    pub fn find(conn: &mut DbConnection, short_name: &str) -> Result<Organization, ApiError> {
        organizations::table
            .filter(lower(organizations::short_name).eq(short_name.to_lowercase()))
            .select(OrganizationRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("There is no organization `{short_name}`.")))
            .and_then(|row| rows_into_api(conn, vec![row]))?
            .pop()
            .ok_or_else(|| ApiError::internal("an organization vanished"))
    }

    /// The organization with this id.
    pub fn find_by_id(conn: &mut DbConnection, id: i64) -> Result<Organization, ApiError> {
        organizations::table
            .find(id)
            .select(OrganizationRow::as_select())
            .first(conn)
            .map_err(ApiError::from)
            .and_then(|row| rows_into_api(conn, vec![row]))?
            .pop()
            .ok_or_else(|| ApiError::internal("an organization vanished"))
    }

    /// Every organization, for resolving short names in bulk (imports, demo data).
    pub fn all(conn: &mut DbConnection) -> Result<Vec<Organization>, ApiError> {
        let rows = organizations::table
            .order(organizations::id)
            .select(OrganizationRow::as_select())
            .load(conn)?;
        rows_into_api(conn, rows)
    }

    /// Validates and stores a new organization with its `created` event.
    pub fn create(
        conn: &mut DbConnection,
        form: NewOrganization,
        actor: &Actor,
    ) -> Result<Organization, ApiError> {
        let mut errors = Vec::new();
        let short_name = form.short_name.trim().to_string();
        validate_short_name(&short_name, &mut errors);
        let name = validate_name(&form.name, &mut errors);
        let email = form
            .contact_email
            .as_deref()
            .map(|e| normalize_email("contact_email", e, &mut errors));
        let official_key = form
            .official_key
            .as_deref()
            .and_then(|k| validate_official_key(k, &mut errors));
        let seat = form
            .seat
            .as_deref()
            .and_then(|s| validate_seat(s, &mut errors));
        let members = validate_members(form.members.as_deref().unwrap_or_default(), &mut errors);
        check_members(form.kind, &members, &mut errors);
        let parent_id = match form.parent.as_deref().filter(|p| !p.trim().is_empty()) {
            Some(parent) => district_id(conn, "parent", parent, &mut errors)?,
            None => None,
        };
        ApiError::from_fields(errors)?;
        conn.transaction(|conn| {
            let taken = organizations::table
                .filter(lower(organizations::short_name).eq(short_name.to_lowercase()))
                .select(organizations::id)
                .first::<i64>(conn)
                .optional()?;
            if taken.is_some() {
                return Err(ApiError::Conflict(format!(
                    "The short name {short_name} is taken."
                )));
            }
            let stamp = now();
            let id: i64 = diesel::insert_into(organizations::table)
                .values((
                    organizations::short_name.eq(&short_name),
                    organizations::name.eq(&name),
                    organizations::kind.eq(form.kind.as_str()),
                    organizations::contact_email.eq(&email),
                    organizations::created_at.eq(stamp),
                    organizations::updated_at.eq(stamp),
                    organizations::version.eq(1_i64),
                    organizations::parent_id.eq(parent_id),
                    organizations::official_key.eq(&official_key),
                    organizations::seat.eq(&seat),
                    organizations::members.eq(join_members(&members)),
                ))
                .returning(organizations::id)
                .get_result(conn)?;
            history::record(
                conn,
                Subject {
                    entity_type: "organization",
                    entity_id: id,
                },
                "created",
                actor,
                json!({"short_name": short_name, "name": name, "kind": form.kind.as_str(),
                       "parent": form.parent.as_deref().map(str::trim), "official_key": official_key}),
            )?;
            Organization::find_by_id(conn, id)
        })
    }

    /// One page of organizations in id order.
    pub fn list(
        conn: &mut DbConnection,
        filter: &OrganizationFilter,
    ) -> Result<Page<Organization>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let mut query = organizations::table
            .select(OrganizationRow::as_select())
            .order(organizations::id.asc())
            .into_boxed();
        if let Some(after) = paging.after::<i64>()? {
            query = query.filter(organizations::id.gt(after));
        }
        if let Some(kind) = filter.kind {
            query = query.filter(organizations::kind.eq(kind.as_str()));
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(organizations::updated_at.ge(since.0.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            query = query.filter(
                lower(organizations::short_name)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(lower(organizations::name).like(pattern).escape('\\')),
            );
        }
        let rows = query.limit(limit + 1).load(conn)?;
        let items = rows_into_api(conn, rows)?;
        Ok(Page::from_rows(items, limit, |o| o.id))
    }

    /// Applies changes, honouring `If-Match`, with an `updated` event.
    pub fn update(
        conn: &mut DbConnection,
        short_name: &str,
        changes: &OrganizationChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<Organization, ApiError> {
        let mut errors = Vec::new();
        let name = changes
            .name
            .as_deref()
            .map(|n| validate_name(n, &mut errors));
        let email = changes.contact_email.as_ref().map(|e| {
            e.as_deref()
                .map(|e| normalize_email("contact_email", e, &mut errors))
        });
        let official_key = changes.official_key.as_ref().map(|k| {
            k.as_deref()
                .and_then(|k| validate_official_key(k, &mut errors))
        });
        let seat = changes
            .seat
            .as_ref()
            .map(|s| s.as_deref().and_then(|s| validate_seat(s, &mut errors)));
        let members = changes
            .members
            .as_deref()
            .map(|m| validate_members(m, &mut errors));
        let parent_id = match &changes.parent {
            Some(Some(parent)) if !parent.trim().is_empty() => {
                Some(district_id(conn, "parent", parent, &mut errors)?)
            }
            Some(_) => Some(None),
            None => None,
        };
        ApiError::from_fields(errors)?;
        let found = Organization::find(conn, short_name)?;
        let current =
            if crate::common::db::lock(conn, crate::common::db::Lock::Organization(found.id))? {
                // Locked only now: read again what the lock protects.
                Organization::find_by_id(conn, found.id)?
            } else {
                found
            };
        expected.check(current.version)?;
        let mut changed = Diff::new();
        let new_name = name.unwrap_or(current.name.clone());
        changed.field("name", &current.name, &new_name);
        let new_kind = changes.kind.unwrap_or(current.kind);
        changed.field("kind", current.kind, new_kind);
        let new_email = email.unwrap_or(current.contact_email.clone());
        changed.field("contact_email", &current.contact_email, &new_email);
        let current_parent_id: Option<i64> = organizations::table
            .find(current.id)
            .select(organizations::parent_id)
            .first(conn)?;
        let new_parent_id = parent_id.unwrap_or(current_parent_id);
        if new_parent_id != current_parent_id {
            let new_parent = match new_parent_id {
                Some(id) => Some(Organization::find_by_id(conn, id)?.short_name),
                None => None,
            };
            changed.field("parent", &current.parent, &new_parent);
        }
        let new_key = official_key.unwrap_or(current.official_key.clone());
        changed.field("official_key", &current.official_key, &new_key);
        let new_seat = seat.unwrap_or(current.seat.clone());
        changed.field("seat", &current.seat, &new_seat);
        let new_members = members.unwrap_or(current.members.clone());
        changed.field("members", &current.members, &new_members);
        let mut errors = Vec::new();
        check_members(new_kind, &new_members, &mut errors);
        ApiError::from_fields(errors)?;
        if changed.is_empty() {
            return Ok(current);
        }
        crate::versioned_write!(
            conn,
            organizations,
            current.id,
            current.version,
            (
                organizations::name.eq(&new_name),
                organizations::kind.eq(new_kind.as_str()),
                organizations::contact_email.eq(&new_email),
                organizations::parent_id.eq(new_parent_id),
                organizations::official_key.eq(&new_key),
                organizations::seat.eq(&new_seat),
                organizations::members.eq(join_members(&new_members)),
            ),
        )?;
        history::record(
            conn,
            Subject {
                entity_type: "organization",
                entity_id: current.id,
            },
            "updated",
            actor,
            changed.into_data(),
        )?;
        Organization::find_by_id(conn, current.id)
    }

    /// Deletes an organization nobody refers to; 409 otherwise.
    pub fn delete(
        conn: &mut DbConnection,
        short_name: &str,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<(), ApiError> {
        let current = Organization::find(conn, short_name)?;
        expected.check(current.version)?;
        let services_using: i64 = services::table
            .filter(
                services::operator_id
                    .eq(current.id)
                    .or(services::responsible_id.eq(current.id)),
            )
            .count()
            .get_result(conn)?;
        let members: i64 = users::table
            .filter(users::organization_id.eq(current.id))
            .count()
            .get_result(conn)?;
        // Items keep these even when deleted: their tombstones and history still name them.
        let demands: i64 = demand_details::table
            .filter(demand_details::requesting_org_id.eq(current.id))
            .count()
            .get_result(conn)?;
        let incidents: i64 = incident_details::table
            .filter(incident_details::reported_by_org_id.eq(current.id))
            .count()
            .get_result(conn)?;
        let rollout: i64 = crate::common::db::schema::rollout_entries::table
            .filter(crate::common::db::schema::rollout_entries::organization_id.eq(current.id))
            .count()
            .get_result(conn)?;
        let children: i64 = organizations::table
            .filter(organizations::parent_id.eq(current.id))
            .count()
            .get_result(conn)?;
        ApiError::unless_unreferenced(
            &current.short_name,
            &[
                (services_using, "service(s) as operator or responsible"),
                (rollout, "rollout entry(ies)"),
                (children, "administration(s) of this district"),
                (members, "user(s)"),
                (demands, "demand(s) as requesting organization"),
                (incidents, "incident(s) as reporting organization"),
            ],
            "change those first (deleted items count too: they keep their organization).",
        )?;
        crate::versioned_delete!(conn, organizations, current.id, current.version)?;
        history::record(
            conn,
            Subject {
                entity_type: "organization",
                entity_id: current.id,
            },
            "deleted",
            actor,
            json!({"short_name": current.short_name}),
        )
    }
}

/// The id of the organization with this short name (any case); an unknown name is a field
/// error, so that every problem of a form is reported at once.
pub(crate) fn organization_id(
    conn: &mut DbConnection,
    field: &str,
    short_name: &str,
    errors: &mut Vec<crate::common::error::FieldError>,
) -> Result<Option<i64>, ApiError> {
    let id = organizations::table
        .filter(
            crate::common::db::lower(organizations::short_name)
                .eq(short_name.trim().to_lowercase()),
        )
        .select(organizations::id)
        .first::<i64>(conn)
        .optional()?;
    if id.is_none() {
        errors.push(crate::common::error::FieldError::new(
            field,
            format!("there is no organization `{}`", short_name.trim()),
        ));
    }
    Ok(id)
}
