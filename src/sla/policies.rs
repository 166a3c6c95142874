//! SLA policies: the response and resolution targets of incidents, per severity, either for
//! every online service or for one service in particular.
//!
//! Which policy applies to an incident is decided by [`policy_for`]: the policy of the
//! incident's service for its severity if there is one, else the policy for every service. The
//! database holds at most one of each (two partial unique indexes); the code checks first so
//! that a duplicate is a readable 409.
//!
//! A policy's severity and service are its identity and cannot change: to move a target, create
//! the new policy and delete the old one. Only the minutes and the clock can be changed.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::catalog::services::Service;
use crate::common::actor::Actor;
use crate::common::db::schema::{events, services, sla_policies};
use crate::common::db::{DbConnection, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Event, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::text::check_text;
use crate::common::version::Precondition;

/// The `entity_type` of the history events of policies.
pub const ENTITY_TYPE: &str = "sla_policy";

/// The longest target a policy may set: one year, in minutes.
pub const MAX_MINUTES: i32 = 525_600;

pub use crate::common::calendar::ClockKind;
pub use crate::sla::severity::Severity;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sla_policies)]
struct SlaPolicyRow {
    id: i64,
    severity: String,
    service_id: Option<i64>,
    response_minutes: i32,
    resolution_minutes: i32,
    clock: String,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    version: i64,
}

/// The response and resolution targets for incidents of one severity, for one online service or
/// for every service that has no policy of its own for that severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 4, "severity": "s1", "service": "wohngeld", "response_minutes": 30,
    "resolution_minutes": 240, "clock": "calendar",
    "created_at": "2026-11-29T08:00:00Z", "updated_at": "2026-11-29T08:00:00Z", "version": 1
}))]
pub struct SlaPolicy {
    /// Numeric id.
    pub id: i64,
    /// The severity it applies to.
    pub severity: Severity,
    /// Key of the online service it applies to; `null`: every service without a policy of its
    /// own for this severity.
    pub service: Option<String>,
    /// The id of that service (not serialized), for matching incidents in code.
    #[serde(skip)]
    pub service_id: Option<i64>,
    /// Minutes until the first response is due.
    #[schema(minimum = 1, maximum = 525600, example = 30)]
    pub response_minutes: i32,
    /// Minutes until the resolution is due; at least `response_minutes`.
    #[schema(minimum = 1, maximum = 525600, example = 240)]
    pub resolution_minutes: i32,
    /// Whether the minutes are business minutes or wall-clock minutes.
    pub clock: ClockKind,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; send it back in `If-Match`.
    pub version: i64,
}

impl SlaPolicyRow {
    fn into_api(self, service: Option<String>) -> Result<SlaPolicy, ApiError> {
        Ok(SlaPolicy {
            severity: Severity::parse(&self.severity)
                .ok_or_else(|| ApiError::internal(format!("unknown severity {}", self.severity)))?,
            clock: ClockKind::parse(&self.clock)
                .ok_or_else(|| ApiError::internal(format!("unknown SLA clock {}", self.clock)))?,
            id: self.id,
            service,
            service_id: self.service_id,
            response_minutes: self.response_minutes,
            resolution_minutes: self.resolution_minutes,
            created_at: self.created_at.and_utc(),
            updated_at: self.updated_at.and_utc(),
            version: self.version,
        })
    }
}

/// The body of `POST /api/v1/sla-policies`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "severity": "s1", "service": "wohngeld", "response_minutes": 30,
    "resolution_minutes": 240, "clock": "calendar"
}))]
pub struct NewSlaPolicy {
    /// The severity it applies to. Cannot change later.
    pub severity: Severity,
    /// Key of the online service it applies to; omit or `null` for every service without a
    /// policy of its own. Cannot change later.
    #[schema(min_length = 1, max_length = 64, pattern = "^[a-z0-9]+(-[a-z0-9]+)*$")]
    pub service: Option<String>,
    /// Minutes until the first response is due, 1–525600.
    #[schema(minimum = 1, maximum = 525600, example = 30)]
    pub response_minutes: i32,
    /// Minutes until the resolution is due, 1–525600 and at least `response_minutes`.
    #[schema(minimum = 1, maximum = 525600, example = 240)]
    pub resolution_minutes: i32,
    /// Business or wall-clock minutes; `business` when omitted.
    #[serde(default)]
    pub clock: ClockKind,
}

/// The body of `PATCH /api/v1/sla-policies/{id}`: only the fields present change. Severity and
/// service cannot change (naming them is a 422); create a new policy instead.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"resolution_minutes": 480, "clock": "business"}))]
pub struct SlaPolicyChanges {
    /// New response target, 1–525600 and at most the resolution target.
    #[schema(minimum = 1, maximum = 525600, example = 60)]
    pub response_minutes: Option<i32>,
    /// New resolution target, 1–525600 and at least the response target.
    #[schema(minimum = 1, maximum = 525600, example = 480)]
    pub resolution_minutes: Option<i32>,
    /// New clock.
    pub clock: Option<ClockKind>,
}

/// Filters of `GET /api/v1/sla-policies`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SlaPolicyFilter {
    /// Only policies for this severity.
    pub severity: Option<Severity>,
    /// Only the policies of this service (key); the policies for every service are not
    /// included.
    #[param(max_length = 64)]
    pub service: Option<String>,
    /// Items per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The sort key of the list, and its cursor: severity, then service key, the policy for every
/// service (`None`) first. Unique, as the database allows one policy per pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
struct PolicyKey {
    severity: Severity,
    service: Option<String>,
}

impl PolicyKey {
    fn of(policy: &SlaPolicy) -> Self {
        PolicyKey {
            severity: policy.severity,
            service: policy.service.clone(),
        }
    }
}

/// The policy that applies to an incident of `severity` (`"s1"`…`"s4"`) on the service
/// `service_id`: that service's own policy for the severity if it has one, else the policy for
/// every service; `None` when neither exists (or the severity is unknown).
pub fn policy_for<'a>(
    policies: &'a [SlaPolicy],
    severity: &str,
    service_id: Option<i64>,
) -> Option<&'a SlaPolicy> {
    let severity = Severity::parse(severity)?;
    let of_severity = || policies.iter().filter(move |p| p.severity == severity);
    service_id
        .and_then(|id| of_severity().find(|p| p.service_id == Some(id)))
        .or_else(|| of_severity().find(|p| p.service_id.is_none()))
}

/// Every policy, ordered by severity, then service key (the policies for every service first);
/// load them once and pick with [`policy_for`].
pub fn all(conn: &mut DbConnection) -> Result<Vec<SlaPolicy>, ApiError> {
    // Every incident's read asks for them: a fixed query, prepared once per connection, on
    // the engine's own connection (the filtered list below is boxed, built anew each time).
    let rows: Vec<(SlaPolicyRow, Option<String>)> = crate::common::db::load_on_engine(
        sla_policies::table.left_join(services::table).select((
            <SlaPolicyRow as Selectable<diesel::pg::Pg>>::construct_selection(),
            services::key.nullable(),
        )),
        conn,
    )?;
    in_list_order(rows)
}

/// The policies matching the filter's severity and service, in list order.
fn load(conn: &mut DbConnection, filter: &SlaPolicyFilter) -> Result<Vec<SlaPolicy>, ApiError> {
    let mut query = sla_policies::table
        .left_join(services::table)
        .select((SlaPolicyRow::as_select(), services::key.nullable()))
        .into_boxed();
    if let Some(severity) = filter.severity {
        query = query.filter(sla_policies::severity.eq(severity.as_str()));
    }
    if let Some(service) = &filter.service {
        let key = service.trim();
        let mut errors = Vec::new();
        check_text(&mut errors, "service", key, 64);
        if let Some(e) = errors.pop() {
            return Err(ApiError::bad_field(e.field, e.message));
        }
        query = query.filter(services::key.eq(key.to_string()));
    }
    let rows: Vec<(SlaPolicyRow, Option<String>)> = query.load(conn)?;
    in_list_order(rows)
}

/// Policies from their rows, in list order.
fn in_list_order(rows: Vec<(SlaPolicyRow, Option<String>)>) -> Result<Vec<SlaPolicy>, ApiError> {
    let mut policies = rows
        .into_iter()
        .map(|(row, key)| row.into_api(key))
        .collect::<Result<Vec<_>, _>>()?;
    // Sorted here rather than in SQL: both engines then agree on the order of keys (PostgreSQL
    // would use its collation) and on where `null` goes.
    policies.sort_by_key(PolicyKey::of);
    Ok(policies)
}

fn check_minutes(errors: &mut Vec<FieldError>, field: &str, minutes: i32) -> bool {
    let valid = (1..=MAX_MINUTES).contains(&minutes);
    if !valid {
        errors.push(FieldError::new(
            field,
            format!("must be between 1 and {MAX_MINUTES} (a year)"),
        ));
    }
    valid
}

/// The id of the service with this key; an unknown key is an error of the field `service`.
fn service_id(
    conn: &mut DbConnection,
    key: &str,
    errors: &mut Vec<FieldError>,
) -> Result<Option<i64>, ApiError> {
    let key = key.trim();
    let before = errors.len();
    if key.is_empty() {
        errors.push(FieldError::new(
            "service",
            "must be a service key, or null for every service",
        ));
    } else {
        check_text(errors, "service", key, 64);
    }
    if errors.len() > before {
        return Ok(None);
    }
    Service::id_for_field(conn, key, "service", errors)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("There is no SLA policy {id}."))
}

fn subject(id: i64) -> Subject<'static> {
    Subject {
        entity_type: ENTITY_TYPE,
        entity_id: id,
    }
}

impl SlaPolicy {
    /// The policy with this id, or 404.
    pub fn find(conn: &mut DbConnection, id: i64) -> Result<SlaPolicy, ApiError> {
        let (row, key) = sla_policies::table
            .left_join(services::table)
            .filter(sla_policies::id.eq(id))
            .select((SlaPolicyRow::as_select(), services::key.nullable()))
            .first::<(SlaPolicyRow, Option<String>)>(conn)
            .optional()?
            .ok_or_else(|| not_found(id))?;
        row.into_api(key)
    }

    /// Validates and stores a new policy with its `created` event; 409 when its severity and
    /// service already have one. Run it inside a transaction.
    pub fn create(
        conn: &mut DbConnection,
        form: &NewSlaPolicy,
        actor: &Actor,
    ) -> Result<SlaPolicy, ApiError> {
        let mut errors = Vec::new();
        let response_ok = check_minutes(&mut errors, "response_minutes", form.response_minutes);
        let resolution_ok =
            check_minutes(&mut errors, "resolution_minutes", form.resolution_minutes);
        if response_ok && resolution_ok && form.resolution_minutes < form.response_minutes {
            errors.push(FieldError::new(
                "resolution_minutes",
                format!(
                    "must be at least response_minutes ({})",
                    form.response_minutes
                ),
            ));
        }
        let service_id = match form.service.as_deref() {
            Some(key) => service_id(conn, key, &mut errors)?,
            None => None,
        };
        ApiError::from_fields(errors)?;
        let severity = form.severity.as_str();
        let mut existing = sla_policies::table
            .filter(sla_policies::severity.eq(severity))
            .select(sla_policies::id)
            .into_boxed();
        existing = match service_id {
            Some(id) => existing.filter(sla_policies::service_id.eq(id)),
            None => existing.filter(sla_policies::service_id.is_null()),
        };
        if let Some(other) = existing.first::<i64>(conn).optional()? {
            let scope = match form.service.as_deref() {
                Some(key) => format!("the service `{}`", key.trim()),
                None => "every service".to_string(),
            };
            return Err(ApiError::Conflict(format!(
                "There is already a policy for {severity} on {scope} (SLA policy {other}); \
                 change that one instead."
            )));
        }
        let stamp = now();
        // The partial unique indexes back the check above against a concurrent insert; that
        // one's unique violation is a 409 as well.
        let id: i64 = diesel::insert_into(sla_policies::table)
            .values((
                sla_policies::severity.eq(severity),
                sla_policies::service_id.eq(service_id),
                sla_policies::response_minutes.eq(form.response_minutes),
                sla_policies::resolution_minutes.eq(form.resolution_minutes),
                sla_policies::clock.eq(form.clock.as_str()),
                sla_policies::created_at.eq(stamp),
                sla_policies::updated_at.eq(stamp),
                sla_policies::version.eq(1_i64),
            ))
            .returning(sla_policies::id)
            .get_result(conn)?;
        let policy = SlaPolicy::find(conn, id)?;
        history::record(
            conn,
            subject(id),
            "created",
            actor,
            json!({
                "severity": policy.severity,
                "service": policy.service,
                "response_minutes": policy.response_minutes,
                "resolution_minutes": policy.resolution_minutes,
                "clock": policy.clock,
            }),
        )?;
        Ok(policy)
    }

    /// One page of policies: by severity, then service key, the policy for every service
    /// first.
    pub fn list(
        conn: &mut DbConnection,
        filter: &SlaPolicyFilter,
    ) -> Result<Page<SlaPolicy>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let after = paging.after::<PolicyKey>()?;
        // A few policies per severity: sorting them all and skipping to the cursor is cheap.
        let rows: Vec<SlaPolicy> = load(conn, filter)?
            .into_iter()
            .filter(|p| after.as_ref().is_none_or(|after| PolicyKey::of(p) > *after))
            .take(usize::try_from(limit + 1).unwrap_or(usize::MAX))
            .collect();
        Ok(Page::from_rows(rows, limit, PolicyKey::of))
    }

    /// Applies changes, honouring `If-Match`, with an `updated` event. Run it inside a
    /// transaction.
    pub fn update(
        conn: &mut DbConnection,
        id: i64,
        changes: &SlaPolicyChanges,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<SlaPolicy, ApiError> {
        let mut errors = Vec::new();
        if let Some(minutes) = changes.response_minutes {
            check_minutes(&mut errors, "response_minutes", minutes);
        }
        if let Some(minutes) = changes.resolution_minutes {
            check_minutes(&mut errors, "resolution_minutes", minutes);
        }
        ApiError::from_fields(errors)?;
        // Read under the row's lock, so that the version is the one other writers see.
        crate::common::db::lock(conn, crate::common::db::Lock::SlaPolicy(id))?;
        let current = SlaPolicy::find(conn, id)?;
        expected.check(current.version)?;
        let response = changes.response_minutes.unwrap_or(current.response_minutes);
        let resolution = changes
            .resolution_minutes
            .unwrap_or(current.resolution_minutes);
        if resolution < response {
            // Name the field that was sent; when both were, the resolution target.
            return Err(if changes.resolution_minutes.is_some() {
                ApiError::invalid(
                    "resolution_minutes",
                    format!("must be at least response_minutes ({response})"),
                )
            } else {
                ApiError::invalid(
                    "response_minutes",
                    format!("must be at most resolution_minutes ({resolution})"),
                )
            });
        }
        let clock = changes.clock.unwrap_or(current.clock);
        let mut changed = Diff::new();
        changed.field("response_minutes", current.response_minutes, response);
        changed.field("resolution_minutes", current.resolution_minutes, resolution);
        changed.field("clock", current.clock, clock);
        if changed.is_empty() {
            return Ok(current);
        }
        crate::versioned_write!(
            conn,
            sla_policies,
            current.id,
            current.version,
            (
                sla_policies::response_minutes.eq(response),
                sla_policies::resolution_minutes.eq(resolution),
                sla_policies::clock.eq(clock.as_str()),
            ),
        )?;
        history::record(
            conn,
            subject(current.id),
            "updated",
            actor,
            changed.into_data(),
        )?;
        SlaPolicy::find(conn, current.id)
    }

    /// Deletes a policy, honouring `If-Match`, with a `deleted` event. Incidents of its
    /// severity and service fall back to the policy for every service, if there is one. Run it
    /// inside a transaction.
    pub fn delete(
        conn: &mut DbConnection,
        id: i64,
        actor: &Actor,
        expected: Precondition,
    ) -> Result<(), ApiError> {
        // Read under the row's lock, so that the version is the one other writers see.
        crate::common::db::lock(conn, crate::common::db::Lock::SlaPolicy(id))?;
        let current = SlaPolicy::find(conn, id)?;
        expected.check(current.version)?;
        crate::versioned_delete!(conn, sla_policies, current.id, current.version)?;
        history::record(
            conn,
            subject(current.id),
            "deleted",
            actor,
            json!({"severity": current.severity, "service": current.service}),
        )
    }

    /// One page of a policy's history, oldest first; readable after the policy was deleted.
    pub fn history(
        conn: &mut DbConnection,
        id: i64,
        paging: &PageParams,
    ) -> Result<Page<Event>, ApiError> {
        let exists = sla_policies::table
            .find(id)
            .select(sla_policies::id)
            .first::<i64>(conn)
            .optional()?
            .is_some();
        let recorded = exists
            || events::table
                .filter(
                    events::entity_type
                        .eq(ENTITY_TYPE)
                        .and(events::entity_id.eq(id)),
                )
                .select(events::id)
                .first::<i64>(conn)
                .optional()?
                .is_some();
        if !recorded {
            return Err(not_found(id));
        }
        history::events_of(conn, subject(id), paging, &[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(id: i64, severity: Severity, service_id: Option<i64>) -> SlaPolicy {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        SlaPolicy {
            id,
            severity,
            service: service_id.map(|s| format!("service-{s}")),
            service_id,
            response_minutes: 30,
            resolution_minutes: 240,
            clock: ClockKind::Business,
            created_at: at,
            updated_at: at,
            version: 1,
        }
    }

    #[test]
    fn a_service_policy_wins_over_the_policy_for_every_service() {
        let policies = [
            policy(1, Severity::S1, None),
            policy(2, Severity::S1, Some(7)),
            policy(3, Severity::S2, Some(7)),
        ];
        let id = |p: Option<&SlaPolicy>| p.map(|p| p.id);
        assert_eq!(id(policy_for(&policies, "s1", Some(7))), Some(2));
        assert_eq!(id(policy_for(&policies, "s1", Some(8))), Some(1));
        assert_eq!(id(policy_for(&policies, "s1", None)), Some(1));
        assert_eq!(id(policy_for(&policies, "s2", Some(7))), Some(3));
        assert_eq!(id(policy_for(&policies, "s2", Some(8))), None);
        assert_eq!(id(policy_for(&policies, "s3", Some(7))), None);
        assert_eq!(id(policy_for(&policies, "S1", Some(7))), None);
    }

    #[test]
    fn the_list_order_puts_the_policy_for_every_service_first() {
        let mut keys = [
            PolicyKey {
                severity: Severity::S2,
                service: None,
            },
            PolicyKey {
                severity: Severity::S1,
                service: Some("kfz".into()),
            },
            PolicyKey {
                severity: Severity::S1,
                service: None,
            },
        ];
        keys.sort();
        assert_eq!(keys[0].service, None);
        assert_eq!(keys[0].severity, Severity::S1);
        assert_eq!(keys[1].service.as_deref(), Some("kfz"));
        assert_eq!(keys[2].severity, Severity::S2);
    }
}
