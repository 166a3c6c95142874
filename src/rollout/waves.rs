//! Rollout waves of a service (`/api/v1/services/{key}/waves`): a name, a planned start and
//! go-live; entries belong to a wave and take its go-live unless they have their own.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use crate::common::actor::Actor;
use crate::common::db::schema::{rollout_entries, rollout_waves, services};
use crate::common::db::{DbConnection, Lock, lock, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::text::required_text;
use crate::common::version::Precondition;
use crate::rollout::model::{NewWave, Wave, WaveChanges};

/// The entity type of waves' events.
pub const WAVE_EVENTS: &str = "rollout_wave";

type WaveRow = (
    i64,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    NaiveDateTime,
    NaiveDateTime,
    i64,
);

/// The id of the service with this key; 404 otherwise.
pub fn service_id(conn: &mut DbConnection, key: &str) -> Result<i64, ApiError> {
    services::table
        .filter(services::key.eq(key.trim()))
        .select(services::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("There is no service `{}`.", key.trim())))
}

fn load(
    conn: &mut DbConnection,
    service_id: i64,
    service_key: &str,
    only: Option<i64>,
) -> Result<Vec<Wave>, ApiError> {
    let mut query = rollout_waves::table
        .filter(rollout_waves::service_id.eq(service_id))
        .select((
            rollout_waves::id,
            rollout_waves::name,
            rollout_waves::planned_start,
            rollout_waves::planned_go_live,
            rollout_waves::created_at,
            rollout_waves::updated_at,
            rollout_waves::version,
        ))
        .order((
            rollout_waves::planned_go_live.asc(),
            rollout_waves::id.asc(),
        ))
        .into_boxed();
    if let Some(id) = only {
        query = query.filter(rollout_waves::id.eq(id));
    }
    let rows: Vec<WaveRow> = query.load(conn)?;
    let wave_ids: Vec<Option<i64>> = rollout_entries::table
        .filter(rollout_entries::service_id.eq(service_id))
        .filter(rollout_entries::wave_id.is_not_null())
        .select(rollout_entries::wave_id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, planned_start, planned_go_live, created_at, updated_at, version)| Wave {
                id,
                service: service_key.to_string(),
                name,
                planned_start,
                planned_go_live,
                entries: wave_ids.iter().filter(|w| **w == Some(id)).count() as i64,
                created_at: created_at.and_utc(),
                updated_at: updated_at.and_utc(),
                version,
            },
        )
        .collect())
}

/// The waves of a service, by planned go-live.
pub fn list(conn: &mut DbConnection, service_key: &str) -> Result<Vec<Wave>, ApiError> {
    let id = service_id(conn, service_key)?;
    load(conn, id, service_key.trim(), None)
}

/// The wave `name` of a service; 404 otherwise.
pub fn find(conn: &mut DbConnection, service_key: &str, name: &str) -> Result<Wave, ApiError> {
    let service = service_id(conn, service_key)?;
    let id = wave_id(conn, service, name)?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "The service `{}` has no wave `{}`.",
            service_key.trim(),
            name.trim()
        ))
    })?;
    load(conn, service, service_key.trim(), Some(id))?
        .pop()
        .ok_or_else(|| ApiError::internal("a wave vanished"))
}

/// The id of wave `name` of a service, if there is one.
pub fn wave_id(
    conn: &mut DbConnection,
    service_id: i64,
    name: &str,
) -> Result<Option<i64>, ApiError> {
    Ok(rollout_waves::table
        .filter(rollout_waves::service_id.eq(service_id))
        .filter(rollout_waves::name.eq(name.trim()))
        .select(rollout_waves::id)
        .first(conn)
        .optional()?)
}

fn check_dates(start: Option<NaiveDate>, go_live: Option<NaiveDate>, errors: &mut Vec<FieldError>) {
    if let (Some(start), Some(go_live)) = (start, go_live)
        && go_live < start
    {
        errors.push(FieldError::new(
            "planned_go_live",
            "must not be before planned_start",
        ));
    }
}

/// Creates a wave with its `created` event; 409 when the service has one of that name.
pub fn create(
    conn: &mut DbConnection,
    service_key: &str,
    form: &NewWave,
    actor: &Actor,
) -> Result<Wave, ApiError> {
    let mut errors = Vec::new();
    let name = required_text(&mut errors, "name", &form.name, 80);
    check_dates(form.planned_start, form.planned_go_live, &mut errors);
    ApiError::from_fields(errors)?;
    let service = service_id(conn, service_key)?;
    lock(conn, Lock::Service(service))?;
    if wave_id(conn, service, &name)?.is_some() {
        return Err(ApiError::Conflict(format!(
            "The service `{}` has a wave `{name}` already.",
            service_key.trim()
        )));
    }
    let stamp = now();
    let id: i64 = diesel::insert_into(rollout_waves::table)
        .values((
            rollout_waves::service_id.eq(service),
            rollout_waves::name.eq(&name),
            rollout_waves::planned_start.eq(form.planned_start),
            rollout_waves::planned_go_live.eq(form.planned_go_live),
            rollout_waves::created_at.eq(stamp),
            rollout_waves::updated_at.eq(stamp),
            rollout_waves::version.eq(1_i64),
        ))
        .returning(rollout_waves::id)
        .get_result(conn)?;
    history::record(
        conn,
        Subject {
            entity_type: WAVE_EVENTS,
            entity_id: id,
        },
        "created",
        actor,
        json!({"service": service_key.trim(), "name": name,
               "planned_start": form.planned_start, "planned_go_live": form.planned_go_live}),
    )?;
    find(conn, service_key, &name)
}

/// Changes a wave, honouring `If-Match`, with an `updated` event.
pub fn update(
    conn: &mut DbConnection,
    service_key: &str,
    name: &str,
    changes: &WaveChanges,
    actor: &Actor,
    expected: Precondition,
) -> Result<Wave, ApiError> {
    let mut errors = Vec::new();
    let new_name = changes
        .name
        .as_deref()
        .map(|n| required_text(&mut errors, "name", n, 80));
    ApiError::from_fields(errors)?;
    let service = service_id(conn, service_key)?;
    lock(conn, Lock::Service(service))?;
    let current = find(conn, service_key, name)?;
    expected.check(current.version)?;
    let new_name = new_name.unwrap_or(current.name.clone());
    let start = changes.planned_start.unwrap_or(current.planned_start);
    let go_live = changes.planned_go_live.unwrap_or(current.planned_go_live);
    let mut errors = Vec::new();
    check_dates(start, go_live, &mut errors);
    ApiError::from_fields(errors)?;
    if new_name != current.name && wave_id(conn, service, &new_name)?.is_some() {
        return Err(ApiError::Conflict(format!(
            "The service `{}` has a wave `{new_name}` already.",
            service_key.trim()
        )));
    }
    let mut diff = Diff::new();
    diff.field("name", &current.name, &new_name);
    diff.field("planned_start", current.planned_start, start);
    diff.field("planned_go_live", current.planned_go_live, go_live);
    if diff.is_empty() {
        return Ok(current);
    }
    crate::versioned_write!(
        conn,
        rollout_waves,
        current.id,
        current.version,
        (
            rollout_waves::name.eq(&new_name),
            rollout_waves::planned_start.eq(start),
            rollout_waves::planned_go_live.eq(go_live),
        ),
    )?;
    history::record(
        conn,
        Subject {
            entity_type: WAVE_EVENTS,
            entity_id: current.id,
        },
        "updated",
        actor,
        diff.into_data(),
    )?;
    find(conn, service_key, &new_name)
}
