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
    /// A city or municipality.
    Municipality,
    /// A manufacturer or service provider.
    Vendor,
    /// Anything else.
    Other,
}

impl OrganizationKind {
    /// Every kind.
    pub const ALL: [OrganizationKind; 8] = [
        Self::Ministry,
        Self::Agency,
        Self::ItOperator,
        Self::MunicipalAssociation,
        Self::District,
        Self::Municipality,
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
            Self::Vendor => "vendor",
            Self::Other => "other",
        }
    }

    /// Parses a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
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
}

/// A stakeholder organization.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "short_name": "DVZ", "name": "DVZ Datenverarbeitungszentrum M-V GmbH",
    "kind": "it_operator", "contact_email": "service@dvz.example.org",
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
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

impl OrganizationRow {
    fn into_api(self) -> Result<Organization, ApiError> {
        Ok(Organization {
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

impl Organization {
    /// The organization with this short name (any case).
    pub fn find(conn: &mut DbConnection, short_name: &str) -> Result<Organization, ApiError> {
        organizations::table
            .filter(lower(organizations::short_name).eq(short_name.to_lowercase()))
            .select(OrganizationRow::as_select())
            .first(conn)
            .optional()?
            .ok_or_else(|| ApiError::NotFound(format!("There is no organization `{short_name}`.")))?
            .into_api()
    }

    /// The organization with this id.
    pub fn find_by_id(conn: &mut DbConnection, id: i64) -> Result<Organization, ApiError> {
        organizations::table
            .find(id)
            .select(OrganizationRow::as_select())
            .first(conn)?
            .into_api()
    }

    /// Every organization, for resolving short names in bulk (imports, demo data).
    pub fn all(conn: &mut DbConnection) -> Result<Vec<Organization>, ApiError> {
        organizations::table
            .order(organizations::id)
            .select(OrganizationRow::as_select())
            .load(conn)?
            .into_iter()
            .map(OrganizationRow::into_api)
            .collect()
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
                json!({"short_name": short_name, "name": name, "kind": form.kind.as_str()}),
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
        let items = rows
            .into_iter()
            .map(OrganizationRow::into_api)
            .collect::<Result<Vec<_>, _>>()?;
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
        ApiError::unless_unreferenced(
            &current.short_name,
            &[
                (services_using, "service(s) as operator or responsible"),
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
