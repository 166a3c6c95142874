//! RACI templates of services: who is responsible, accountable (exactly one), consulted and
//! informed for a service's items. The one-accountable rule lives in the schema (a partial
//! unique index) as well as here.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::catalog::services::Service;
use crate::common::actor::Actor;
use crate::common::db::schema::{service_raci, services, users};
use crate::common::db::{self, DbConnection, Lock};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Subject};
use crate::common::person::PERSON_COLUMNS;
pub use crate::common::person::{PersonId, PersonRef};
use crate::common::version::Precondition;

/// A RACI role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RaciRole {
    /// Does the work.
    Responsible,
    /// Answers for the outcome; exactly one person.
    Accountable,
    /// Asked before decisions.
    Consulted,
    /// Told about decisions.
    Informed,
}

impl RaciRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Responsible => "responsible",
            Self::Accountable => "accountable",
            Self::Consulted => "consulted",
            Self::Informed => "informed",
        }
    }
}

/// The RACI template of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "service": "baugenehmigung",
    "accountable": {"id": 2, "display_name": "Katrin Vogel", "email": "katrin.vogel@example.org", "active": true},
    "responsible": [{"id": 3, "display_name": "Jonas Krüger", "email": "jonas.krueger@example.org", "active": true}],
    "consulted": [], "informed": [], "version": 2
}))]
pub struct RaciTemplate {
    /// The service's key.
    pub service: String,
    /// The one accountable person; `null` while no RACI is set.
    pub accountable: Option<PersonRef>,
    /// Responsible people.
    pub responsible: Vec<PersonRef>,
    /// Consulted people.
    pub consulted: Vec<PersonRef>,
    /// Informed people.
    pub informed: Vec<PersonRef>,
    /// Version of the template, sent as `ETag`; independent of the service's own version.
    pub version: i64,
}

/// The accountable person: one user (id or e-mail). A list is accepted so that a client may
/// send what it has, but it must hold exactly one person.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Accountable {
    /// One user.
    One(PersonId),
    /// A list that must hold exactly one user.
    Many(Vec<PersonId>),
}

// Written by hand because the derive cannot put `minItems`/`maxItems` on a variant's list:
// the spec says "exactly one", as `validate` enforces.
impl utoipa::PartialSchema for Accountable {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        let id = || {
            OneOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .description(Some("The user's id.")),
                )
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email)))
                        .description(Some("The user's login e-mail, any case.")),
                )
        };
        OneOfBuilder::new()
            .item(id().description(Some("One user: id or e-mail.")))
            .item(
                ArrayBuilder::new()
                    .items(id())
                    .min_items(Some(1))
                    .max_items(Some(1))
                    .description(Some("A list that must hold exactly one user.")),
            )
            .description(Some(
                "The accountable person: one user, by id or e-mail. A list is accepted so that \
                 a client may send what it has, but it must hold exactly one person.",
            ))
            .into()
    }
}

impl ToSchema for Accountable {}

/// The body of `PUT /api/v1/services/{key}/raci`: the whole template, replacing the old one.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"accountable": 2, "responsible": [3, "jan.schroeder@example.org"], "consulted": [], "informed": [5]}))]
pub struct RaciInput {
    /// The accountable user (id or e-mail); required whenever any other role is set. Omit
    /// everything (or send all lists empty and no accountable) to clear the template.
    pub accountable: Option<Accountable>,
    /// Responsible users, by id or e-mail (a sync script maps people by e-mail); at most 50.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<50, _, _>"
    )]
    #[schema(max_items = 50)]
    pub responsible: Vec<PersonId>,
    /// Consulted users, by id or e-mail; at most 50.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<50, _, _>"
    )]
    #[schema(max_items = 50)]
    pub consulted: Vec<PersonId>,
    /// Informed users, by id or e-mail; at most 50.
    #[serde(
        default,
        deserialize_with = "crate::common::parse::at_most::<50, _, _>"
    )]
    #[schema(max_items = 50)]
    pub informed: Vec<PersonId>,
}

/// The services where one person holds each role.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PersonRaci {
    /// The user's id.
    pub user: i64,
    /// Services the person is accountable for.
    pub accountable: Vec<ServiceRef>,
    /// Services the person is responsible for.
    pub responsible: Vec<ServiceRef>,
    /// Services where the person is consulted.
    pub consulted: Vec<ServiceRef>,
    /// Services where the person is informed.
    pub informed: Vec<ServiceRef>,
}

/// A service as shown in someone's RACI list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ServiceRef {
    /// The service's key.
    pub key: String,
    /// Its name.
    pub name: String,
}

/// Loads the template of a service (two queries).
pub fn template(conn: &mut DbConnection, key: &str) -> Result<RaciTemplate, ApiError> {
    let row = Service::row(conn, key)?;
    let entries: Vec<(String, PersonRef)> = service_raci::table
        .inner_join(users::table)
        .filter(service_raci::service_id.eq(row.id))
        .order((service_raci::role, users::display_name, users::id))
        .select((service_raci::role, PERSON_COLUMNS))
        .load(conn)?;
    let mut template = RaciTemplate {
        service: key.to_string(),
        accountable: None,
        responsible: Vec::new(),
        consulted: Vec::new(),
        informed: Vec::new(),
        version: row.raci_version,
    };
    for (role, person) in entries {
        match role.as_str() {
            "accountable" => template.accountable = Some(person),
            "responsible" => template.responsible.push(person),
            "consulted" => template.consulted.push(person),
            _ => template.informed.push(person),
        }
    }
    Ok(template)
}

/// Checks a RACI input: exactly one accountable person whenever any role is set, every person
/// an existing, active user. Returns the `(user, role)` rows to store, without duplicates.
/// `prefix` goes before field names (`raci.` when the input is part of a larger body).
pub fn validate(
    conn: &mut DbConnection,
    input: &RaciInput,
    prefix: &str,
) -> Result<Vec<(i64, RaciRole)>, ApiError> {
    let mut errors = Vec::new();
    let accountable = match &input.accountable {
        Some(Accountable::One(person)) => Some(person),
        Some(Accountable::Many(people)) if people.len() == 1 => people.first(),
        Some(Accountable::Many(people)) => {
            errors.push(FieldError::new(
                format!("{prefix}accountable"),
                format!("must name exactly one person, not {}", people.len()),
            ));
            None
        }
        None => None,
    };
    let others = [
        (RaciRole::Responsible, &input.responsible),
        (RaciRole::Consulted, &input.consulted),
        (RaciRole::Informed, &input.informed),
    ];
    if accountable.is_none()
        && errors.is_empty()
        && others.iter().any(|(_, people)| !people.is_empty())
    {
        errors.push(FieldError::new(
            format!("{prefix}accountable"),
            "is required: every RACI has one accountable person",
        ));
    }
    // Every person named, by id or e-mail, looked up in one query each.
    let all: Vec<&PersonId> = others
        .iter()
        .flat_map(|(_, people)| people.iter())
        .chain(accountable)
        .collect();
    let people = PersonId::lookup(conn, &all)?;
    let mut check = |field: String, person: &PersonId| -> Option<i64> {
        match people.get(person) {
            None => {
                errors.push(FieldError::new(field, person.unknown()));
                None
            }
            Some((id, false)) => {
                errors.push(FieldError::new(
                    field,
                    format!("user {id} is deactivated and cannot hold a role"),
                ));
                None
            }
            Some((id, true)) => Some(*id),
        }
    };
    let accountable = accountable.and_then(|p| check(format!("{prefix}accountable"), p));
    let mut rows: Vec<(i64, RaciRole)> = Vec::new();
    rows.extend(accountable.map(|id| (id, RaciRole::Accountable)));
    for (role, people) in &others {
        for (i, person) in people.iter().enumerate() {
            if let Some(id) = check(format!("{prefix}{}[{i}]", role.as_str()), person)
                && !rows.contains(&(id, *role))
            {
                rows.push((id, *role));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(rows)
}

/// Whether the people holding each role (`held`, as stored) are exactly `rows` (as
/// [`validate`] returns them): then a replace would change nothing, and writes nothing — no
/// event, no new version — so a sync script that re-applies what it read makes no echo.
pub fn same_roles(held: &[(RaciRole, &[PersonRef])], rows: &[(i64, RaciRole)]) -> bool {
    let mut held: Vec<(i64, &str)> = held
        .iter()
        .flat_map(|(role, people)| people.iter().map(|p| (p.id, role.as_str())))
        .collect();
    let mut wanted: Vec<(i64, &str)> = rows.iter().map(|(id, r)| (*id, r.as_str())).collect();
    held.sort_unstable();
    wanted.sort_unstable();
    wanted.dedup();
    held == wanted
}

/// Replaces the template of a service in the caller's transaction, honouring `If-Match`.
pub fn replace(
    conn: &mut DbConnection,
    key: &str,
    input: &RaciInput,
    actor: &Actor,
    expected: Precondition,
) -> Result<RaciTemplate, ApiError> {
    let row = Service::row_for_update(conn, key)?;
    expected.check(row.raci_version)?;
    let rows = validate(conn, input, "")?;
    let before = template(conn, key)?;
    let held = [
        (RaciRole::Accountable, before.accountable.as_slice()),
        (RaciRole::Responsible, before.responsible.as_slice()),
        (RaciRole::Consulted, before.consulted.as_slice()),
        (RaciRole::Informed, before.informed.as_slice()),
    ];
    if same_roles(&held, &rows) {
        return Ok(before);
    }
    // updated_at moves too, so that `updated_since` shows the change to sync scripts.
    crate::versioned_write!(conn, services.raci_version, row.id, row.raci_version)?;
    diesel::delete(service_raci::table.filter(service_raci::service_id.eq(row.id)))
        .execute(conn)?;
    for (user_id, role) in &rows {
        diesel::insert_into(service_raci::table)
            .values((
                service_raci::service_id.eq(row.id),
                service_raci::user_id.eq(user_id),
                service_raci::role.eq(role.as_str()),
            ))
            .execute(conn)?;
    }
    let after = template(conn, key)?;
    let ids = |people: &[PersonRef]| people.iter().map(|p| p.id).collect::<Vec<_>>();
    let summary = |t: &RaciTemplate| {
        json!({
            "accountable": t.accountable.as_ref().map(|p| p.id),
            "responsible": ids(&t.responsible), "consulted": ids(&t.consulted), "informed": ids(&t.informed),
        })
    };
    history::record(
        conn,
        Subject {
            entity_type: "service",
            entity_id: row.id,
        },
        "raci_changed",
        actor,
        json!({"old": summary(&before), "new": summary(&after)}),
    )?;
    if before.accountable.as_ref().map(|p| p.id) != after.accountable.as_ref().map(|p| p.id) {
        // A kind of its own, so that a later notification feature can deliver it.
        history::record(
            conn,
            Subject {
                entity_type: "service",
                entity_id: row.id,
            },
            "accountable_changed",
            actor,
            json!({
                "old": before.accountable.as_ref().map(|p| p.id),
                "new": after.accountable.as_ref().map(|p| p.id),
            }),
        )?;
    }
    Ok(after)
}

/// The services where a person holds each role (one query).
pub fn of_person(conn: &mut DbConnection, user_id: i64) -> Result<PersonRaci, ApiError> {
    users::table
        .find(user_id)
        .select(users::id)
        .first::<i64>(conn)?;
    let rows: Vec<(String, String, String)> = service_raci::table
        .inner_join(services::table)
        .filter(service_raci::user_id.eq(user_id))
        .order((service_raci::role, services::key))
        .select((service_raci::role, services::key, services::name))
        .load(conn)?;
    let mut result = PersonRaci {
        user: user_id,
        accountable: Vec::new(),
        responsible: Vec::new(),
        consulted: Vec::new(),
        informed: Vec::new(),
    };
    for (role, key, name) in rows {
        let entry = ServiceRef { key, name };
        match role.as_str() {
            "accountable" => result.accountable.push(entry),
            "responsible" => result.responsible.push(entry),
            "consulted" => result.consulted.push(entry),
            _ => result.informed.push(entry),
        }
    }
    Ok(result)
}

/// Someone who takes over a deactivated person's accountability: another, active user.
pub(crate) fn check_replacement(
    conn: &mut DbConnection,
    user_id: i64,
    replacement: i64,
) -> Result<(), ApiError> {
    let active: Option<bool> = users::table
        .find(replacement)
        .select(users::active)
        .first(conn)
        .optional()?;
    if replacement == user_id || active != Some(true) {
        return Err(ApiError::invalid(
            "replacement",
            "must be another active user",
        ));
    }
    Ok(())
}

/// Before a user is deactivated: hands their accountable roles to `replacement`, or refuses
/// with 409 listing the services when no replacement is given.
pub fn hand_over_accountability(
    conn: &mut DbConnection,
    user_id: i64,
    replacement: Option<i64>,
    actor: &Actor,
) -> Result<(), ApiError> {
    let held: Vec<(i64, String)> = service_raci::table
        .inner_join(services::table)
        .filter(
            service_raci::user_id
                .eq(user_id)
                .and(service_raci::role.eq("accountable")),
        )
        .order(services::key)
        .select((services::id, services::key))
        .load(conn)?;
    if held.is_empty() {
        return Ok(());
    }
    let Some(replacement) = replacement else {
        let keys: Vec<&str> = held.iter().map(|(_, k)| k.as_str()).collect();
        return Err(ApiError::Conflict(format!(
            "This person is accountable for {} service(s): {}. Pass `replacement` with the id of \
             the person who takes them over.",
            keys.len(),
            keys.join(", ")
        )));
    };
    check_replacement(conn, user_id, replacement)?;
    for (service_id, _) in &held {
        db::lock(conn, Lock::Service(*service_id))?;
        let raci_version: i64 = services::table
            .find(service_id)
            .select(services::raci_version)
            .first(conn)?;
        diesel::update(
            service_raci::table.filter(
                service_raci::service_id
                    .eq(service_id)
                    .and(service_raci::user_id.eq(user_id))
                    .and(service_raci::role.eq("accountable")),
            ),
        )
        .set(service_raci::user_id.eq(replacement))
        .execute(conn)?;
        crate::versioned_write!(conn, services.raci_version, *service_id, raci_version)?;
        history::record(
            conn,
            Subject {
                entity_type: "service",
                entity_id: *service_id,
            },
            "accountable_changed",
            actor,
            json!({"old": user_id, "new": replacement, "reason": "deactivated"}),
        )?;
    }
    Ok(())
}
