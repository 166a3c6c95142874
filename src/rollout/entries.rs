//! Rollout entries: one per (online service, municipal administration). Reading them as the
//! API shows them, and the one write path that every change takes (PUT, PATCH, the plan, the
//! matrix upload, the demo): validation, the transition rules, the row, its blocking items and
//! its history event, in the caller's transaction.

use std::collections::{BTreeMap, HashMap};

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use crate::catalog::organizations::OrganizationKind;
use crate::common::actor::{Actor, Role};
use crate::common::db::schema::{
    items, organizations, rollout_blockers, rollout_entries, rollout_waves, service_raci, services,
    users,
};
use crate::common::db::{DbConnection, Lock, lock, lower, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::text::{check_text, optional_text};
use crate::common::version::Precondition;
use crate::rollout::model::{
    BlockedEntry, ChecklistState, DoneStep, EntryChanges, RolloutEntry, RolloutSettings,
    RolloutStatus, StoredChecklist,
};
use crate::rollout::waves::{service_id, wave_id};

/// The entity type of entries' events (and of the changes feed).
pub const ENTRY_EVENTS: &str = "rollout";

/// A municipal administration: id, short name, name.
#[derive(Debug, Clone)]
pub struct Administration {
    /// Its id.
    pub id: i64,
    /// Its short name.
    pub short_name: String,
}

/// The administration with this short name (any case); 404 when there is none or it is no
/// municipal administration.
pub fn administration(
    conn: &mut DbConnection,
    short_name: &str,
) -> Result<Administration, ApiError> {
    let found: Option<(i64, String, String)> = organizations::table
        .filter(lower(organizations::short_name).eq(short_name.trim().to_lowercase()))
        .select((
            organizations::id,
            organizations::short_name,
            organizations::kind,
        ))
        .first(conn)
        .optional()?;
    match found {
        Some((id, short_name, kind))
            if OrganizationKind::parse(&kind).is_some_and(OrganizationKind::is_administration) =>
        {
            Ok(Administration { id, short_name })
        }
        _ => Err(ApiError::NotFound(format!(
            "There is no municipal administration `{}` (an Amt, amtsfreie Gemeinde or kreisfreie Stadt).",
            short_name.trim()
        ))),
    }
}

type EntryRow = (
    (i64, i64, i64, String, Option<NaiveDate>, Option<NaiveDate>),
    (Option<i64>, Option<String>, String, String),
    (NaiveDateTime, NaiveDateTime, i64),
    (String, String, String, Option<i64>),
    (Option<String>, Option<NaiveDate>),
);

/// The entries with these ids, as the API shows them, in id order; a fixed number of queries.
pub fn load(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    ids: &[i64],
) -> Result<Vec<RolloutEntry>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<EntryRow> = rollout_entries::table
        .inner_join(services::table)
        .inner_join(organizations::table)
        .left_join(rollout_waves::table)
        .filter(rollout_entries::id.eq_any(ids))
        .order(rollout_entries::id)
        .select((
            (
                rollout_entries::id,
                rollout_entries::service_id,
                rollout_entries::organization_id,
                rollout_entries::status,
                rollout_entries::planned_go_live,
                rollout_entries::actual_go_live,
            ),
            (
                rollout_entries::owner_id,
                rollout_entries::blocker,
                rollout_entries::checklist,
                rollout_entries::notes,
            ),
            (
                rollout_entries::created_at,
                rollout_entries::updated_at,
                rollout_entries::version,
            ),
            (
                services::key,
                organizations::short_name,
                organizations::name,
                organizations::parent_id,
            ),
            (
                rollout_waves::name.nullable(),
                rollout_waves::planned_go_live.nullable(),
            ),
        ))
        .load(conn)?;
    let parent_ids: Vec<i64> = rows.iter().filter_map(|r| r.3.3).collect();
    let parents: HashMap<i64, String> = if parent_ids.is_empty() {
        HashMap::new()
    } else {
        organizations::table
            .filter(organizations::id.eq_any(parent_ids))
            .select((organizations::id, organizations::short_name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect()
    };
    let mut blockers: HashMap<i64, Vec<String>> = HashMap::new();
    for (entry, key) in rollout_blockers::table
        .inner_join(items::table)
        .filter(rollout_blockers::entry_id.eq_any(ids))
        .order((rollout_blockers::entry_id, items::id))
        .select((rollout_blockers::entry_id, items::key))
        .load::<(i64, String)>(conn)?
    {
        blockers.entry(entry).or_default().push(key);
    }
    let service_ids: Vec<i64> = rows.iter().map(|r| r.0.1).collect();
    let accountable: HashMap<i64, i64> = service_raci::table
        .filter(service_raci::service_id.eq_any(service_ids))
        .filter(service_raci::role.eq("accountable"))
        .select((service_raci::service_id, service_raci::user_id))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let today = crate::items::queries::today();
    rows.into_iter()
        .map(|row| {
            let service_id = row.0.1;
            let (
                (id, _, _, status, planned, actual),
                (owner_id, blocker, checklist, notes),
                times,
                names,
                wave,
            ) = row;
            let status = RolloutStatus::parse(&status)
                .ok_or_else(|| ApiError::internal(format!("unknown rollout status {status}")))?;
            let planned_go_live = planned.or(wave.1);
            let blocked_by = blockers.remove(&id).unwrap_or_default();
            let stored = parse_checklist(&checklist)?;
            Ok(RolloutEntry {
                id,
                service: names.0,
                administration: names.1,
                administration_name: names.2,
                district: names.3.and_then(|p| parents.get(&p).cloned()),
                status,
                wave: wave.0,
                planned_go_live,
                actual_go_live: actual,
                owner_id,
                effective_owner_id: owner_id.or_else(|| accountable.get(&service_id).copied()),
                blocked: blocker.is_some() || !blocked_by.is_empty(),
                overdue: is_overdue(status, planned_go_live, today),
                blocker,
                blocked_by,
                checklist: checklist_view(settings, &stored),
                notes,
                created_at: times.0.and_utc(),
                updated_at: times.1.and_utc(),
                version: times.2,
            })
        })
        .collect()
}

/// One page of entries in id order; `only` confines it to one administration (a requester's).
pub fn list(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    filter: &crate::rollout::model::EntryFilter,
    only: Option<Option<i64>>,
) -> Result<crate::common::pagination::Page<RolloutEntry>, ApiError> {
    let paging = crate::common::pagination::PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    };
    let limit = paging.limit()?;
    let mut query = rollout_entries::table
        .select(rollout_entries::id)
        .order(rollout_entries::id.asc())
        .into_boxed();
    if let Some(after) = paging.after::<i64>()? {
        query = query.filter(rollout_entries::id.gt(after));
    }
    if let Some(key) = &filter.service {
        query = query.filter(rollout_entries::service_id.eq(service_id(conn, key)?));
    }
    if let Some(short) = &filter.administration {
        query = query.filter(rollout_entries::organization_id.eq(administration(conn, short)?.id));
    }
    if let Some(only) = only {
        query = query.filter(rollout_entries::organization_id.nullable().eq(only));
    }
    if let Some(status) = filter.status {
        query = query.filter(rollout_entries::status.eq(status.as_str()));
    }
    if let Some(blocked) = filter.blocked {
        let blocked_ids = blocked_entry_ids(conn)?;
        query = if blocked {
            query.filter(
                rollout_entries::blocker
                    .is_not_null()
                    .or(rollout_entries::id.eq_any(blocked_ids)),
            )
        } else {
            query.filter(
                rollout_entries::blocker
                    .is_null()
                    .and(rollout_entries::id.ne_all(blocked_ids)),
            )
        };
    }
    if let Some(overdue) = filter.overdue {
        let overdue_ids = overdue_entry_ids(conn)?;
        query = if overdue {
            query.filter(rollout_entries::id.eq_any(overdue_ids))
        } else {
            query.filter(rollout_entries::id.ne_all(overdue_ids))
        };
    }
    if let Some(since) = filter.updated_since {
        query = query.filter(rollout_entries::updated_at.ge(since.0.naive_utc()));
    }
    let ids: Vec<i64> = query.limit(limit + 1).load(conn)?;
    let entries = load(conn, settings, &ids)?;
    Ok(crate::common::pagination::Page::from_rows(
        entries,
        limit,
        |e| e.id,
    ))
}

/// The ids of the entries that blocking items hold up (a `blocker` text is on the row).
fn blocked_entry_ids(conn: &mut DbConnection) -> Result<Vec<i64>, ApiError> {
    Ok(rollout_blockers::table
        .select(rollout_blockers::entry_id)
        .distinct()
        .load(conn)?)
}

/// The ids of the overdue entries: not live nor out of scope, and the planned go-live (the
/// entry's own, else its wave's) before today, the rule of [`is_overdue`].
fn overdue_entry_ids(conn: &mut DbConnection) -> Result<Vec<i64>, ApiError> {
    let today = crate::items::queries::today();
    let open = [
        RolloutStatus::Live.as_str(),
        RolloutStatus::NotApplicable.as_str(),
    ];
    Ok(rollout_entries::table
        .left_join(rollout_waves::table)
        .filter(rollout_entries::status.ne_all(open))
        .filter(
            rollout_entries::planned_go_live
                .lt(today)
                .or(rollout_entries::planned_go_live
                    .is_null()
                    .and(rollout_waves::planned_go_live.nullable().lt(today))),
        )
        .select(rollout_entries::id)
        .order(rollout_entries::id)
        .load(conn)?)
}

/// The entries a governance round looks at: every blocked or overdue entry, by service and
/// administration, in a fixed number of queries.
pub fn needing_attention(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
) -> Result<Vec<RolloutEntry>, ApiError> {
    let mut ids: Vec<i64> = rollout_entries::table
        .filter(rollout_entries::blocker.is_not_null())
        .select(rollout_entries::id)
        .load(conn)?;
    ids.extend(blocked_entry_ids(conn)?);
    ids.extend(overdue_entry_ids(conn)?);
    ids.sort_unstable();
    ids.dedup();
    let mut entries = Vec::new();
    for chunk in ids.chunks(5000) {
        entries.extend(load(conn, settings, chunk)?);
    }
    entries.sort_by(|a, b| {
        (&a.service, &a.administration_name).cmp(&(&b.service, &b.administration_name))
    });
    Ok(entries)
}

/// Whether an entry in `status` planned for `planned` is overdue on `today`.
pub fn is_overdue(status: RolloutStatus, planned: Option<NaiveDate>, today: NaiveDate) -> bool {
    !matches!(status, RolloutStatus::Live | RolloutStatus::NotApplicable)
        && planned.is_some_and(|p| p < today)
}

fn parse_checklist(text: &str) -> Result<StoredChecklist, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::internal(format!("stored checklist: {e}")))
}

fn checklist_view(settings: &RolloutSettings, stored: &StoredChecklist) -> Vec<ChecklistState> {
    settings
        .checklist
        .iter()
        .map(|step| {
            let done = stored.get(&step.key);
            ChecklistState {
                key: step.key.clone(),
                label: step.label.clone(),
                mandatory: step.mandatory,
                done: done.is_some(),
                done_by: done.and_then(|d| d.by),
                done_at: done.map(|d| d.at),
            }
        })
        .collect()
}

/// The id of the entry of a service in an administration, if there is one.
fn entry_id(
    conn: &mut DbConnection,
    service_id: i64,
    organization_id: i64,
) -> Result<Option<i64>, ApiError> {
    Ok(rollout_entries::table
        .filter(rollout_entries::service_id.eq(service_id))
        .filter(rollout_entries::organization_id.eq(organization_id))
        .select(rollout_entries::id)
        .first(conn)
        .optional()?)
}

/// The entry of `service` in `administration`; 404 when there is none.
pub fn find(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    service: &str,
    administration_name: &str,
) -> Result<RolloutEntry, ApiError> {
    let service_id = service_id(conn, service)?;
    let admin = administration(conn, administration_name)?;
    let id = entry_id(conn, service_id, admin.id)?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "The service `{}` has no rollout entry for `{}`.",
            service.trim(),
            admin.short_name
        ))
    })?;
    load(conn, settings, &[id])?
        .pop()
        .ok_or_else(|| ApiError::internal("an entry vanished"))
}

/// The entries an item blocks.
pub fn blocked_by_item(
    conn: &mut DbConnection,
    item_key: &str,
) -> Result<Vec<BlockedEntry>, ApiError> {
    let item: i64 = items::table
        .filter(items::key.eq(item_key.trim().to_uppercase()))
        .filter(items::deleted_at.is_null())
        .select(items::id)
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::NotFound(format!("There is no item `{}`.", item_key.trim())))?;
    rollout_blockers::table
        .inner_join(
            rollout_entries::table
                .inner_join(services::table)
                .inner_join(organizations::table),
        )
        .filter(rollout_blockers::item_id.eq(item))
        .order((services::key, organizations::short_name))
        .select((
            services::key,
            organizations::short_name,
            rollout_entries::status,
        ))
        .load::<(String, String, String)>(conn)?
        .into_iter()
        .map(|(service, administration, status)| {
            Ok(BlockedEntry {
                service,
                administration,
                status: RolloutStatus::parse(&status)
                    .ok_or_else(|| ApiError::internal("unknown rollout status"))?,
            })
        })
        .collect()
}

/// What is stored of an entry, for a write.
struct Stored {
    id: i64,
    wave_id: Option<i64>,
    status: RolloutStatus,
    planned_go_live: Option<NaiveDate>,
    actual_go_live: Option<NaiveDate>,
    owner_id: Option<i64>,
    blocker: Option<String>,
    checklist: StoredChecklist,
    notes: String,
    version: i64,
    blocked_by: Vec<(i64, String)>,
}

type StoredRow = (
    i64,
    Option<i64>,
    String,
    Option<NaiveDate>,
    Option<NaiveDate>,
    Option<i64>,
    Option<String>,
    String,
    String,
    i64,
);

fn stored(conn: &mut DbConnection, id: i64) -> Result<Stored, ApiError> {
    let row: StoredRow = rollout_entries::table
        .find(id)
        .select((
            rollout_entries::id,
            rollout_entries::wave_id,
            rollout_entries::status,
            rollout_entries::planned_go_live,
            rollout_entries::actual_go_live,
            rollout_entries::owner_id,
            rollout_entries::blocker,
            rollout_entries::checklist,
            rollout_entries::notes,
            rollout_entries::version,
        ))
        .first(conn)?;
    let blocked_by = rollout_blockers::table
        .inner_join(items::table)
        .filter(rollout_blockers::entry_id.eq(id))
        .order(items::id)
        .select((items::id, items::key))
        .load(conn)?;
    Ok(Stored {
        id: row.0,
        wave_id: row.1,
        status: RolloutStatus::parse(&row.2)
            .ok_or_else(|| ApiError::internal("unknown rollout status"))?,
        planned_go_live: row.3,
        actual_go_live: row.4,
        owner_id: row.5,
        blocker: row.6,
        checklist: parse_checklist(&row.7)?,
        notes: row.8,
        version: row.9,
        blocked_by,
    })
}

fn wave_name(conn: &mut DbConnection, id: Option<i64>) -> Result<Option<String>, ApiError> {
    match id {
        Some(id) => Ok(Some(
            rollout_waves::table
                .find(id)
                .select(rollout_waves::name)
                .first(conn)?,
        )),
        None => Ok(None),
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new entry.
    Created,
    /// The entry changed.
    Updated,
    /// Nothing differed.
    Unchanged,
}

/// Creates (when `create` allows and there is none) or changes the entry of a service in an
/// administration, in the caller's transaction: every rule, the row, its blocking items, one
/// history event. Answers the entry's id and what happened. Field problems come back as
/// [`ApiError::Validation`] before anything is written, so that a caller collecting problems
/// (the matrix upload) may go on.
#[allow(clippy::too_many_arguments)]
pub fn write(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    service_key: &str,
    administration_name: &str,
    changes: &EntryChanges,
    actor: &Actor,
    expected: Precondition,
    create: bool,
) -> Result<(i64, Outcome), ApiError> {
    let mut errors = Vec::new();
    let blocker = changes
        .blocker
        .as_ref()
        .map(|b| optional_text(&mut errors, "blocker", b.as_deref(), 2000));
    if let Some(notes) = &changes.notes {
        check_text(&mut errors, "notes", notes, 10_000);
    }
    let reason = optional_text(&mut errors, "reason", changes.reason.as_deref(), 2000);
    let override_reason = optional_text(
        &mut errors,
        "override",
        changes.override_reason.as_deref(),
        2000,
    );
    ApiError::from_fields(errors)?;
    let service = service_id(conn, service_key)?;
    let admin = administration(conn, administration_name)?;
    lock(conn, Lock::Service(service))?;
    let current = match entry_id(conn, service, admin.id)? {
        Some(id) => {
            let current = stored(conn, id)?;
            expected.check(current.version)?;
            Some(current)
        }
        None if create => None,
        None => {
            return Err(ApiError::NotFound(format!(
                "The service `{}` has no rollout entry for `{}`; PUT creates one.",
                service_key.trim(),
                admin.short_name
            )));
        }
    };
    let old_status = current.as_ref().map(|c| c.status);
    let base = current.unwrap_or(Stored {
        id: 0,
        wave_id: None,
        status: RolloutStatus::Planned,
        planned_go_live: None,
        actual_go_live: None,
        owner_id: None,
        blocker: None,
        checklist: StoredChecklist::new(),
        notes: String::new(),
        version: 0,
        blocked_by: Vec::new(),
    });
    let mut errors = Vec::new();
    let new_wave = match &changes.wave {
        Some(Some(name)) => match wave_id(conn, service, name)? {
            Some(id) => Some(id),
            None => {
                errors.push(FieldError::new(
                    "wave",
                    format!(
                        "the service `{}` has no wave `{}`",
                        service_key.trim(),
                        name.trim()
                    ),
                ));
                None
            }
        },
        Some(None) => None,
        None => base.wave_id,
    };
    let new_owner = match changes.owner_id {
        Some(Some(id)) => {
            let exists = users::table
                .find(id)
                .select(users::id)
                .first::<i64>(conn)
                .optional()?
                .is_some();
            if !exists {
                errors.push(FieldError::new(
                    "owner_id",
                    format!("there is no user {id}"),
                ));
            }
            Some(id)
        }
        Some(None) => None,
        None => base.owner_id,
    };
    let new_blocked_by: Vec<(i64, String)> = match &changes.blocked_by {
        Some(keys) => {
            let wanted: Vec<String> = keys.iter().map(|k| k.trim().to_uppercase()).collect();
            if wanted.len() > 50 {
                errors.push(FieldError::new("blocked_by", "at most 50 items"));
            }
            let found: Vec<(i64, String)> = items::table
                .filter(items::key.eq_any(&wanted))
                .filter(items::deleted_at.is_null())
                .order(items::id)
                .select((items::id, items::key))
                .load(conn)?;
            let missing: Vec<&String> = wanted
                .iter()
                .filter(|k| !found.iter().any(|(_, f)| f == *k))
                .collect();
            if !missing.is_empty() {
                errors.push(FieldError::new(
                    "blocked_by",
                    format!(
                        "no such item: {}",
                        missing
                            .iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            found
        }
        None => base.blocked_by.clone(),
    };
    let mut checklist = base.checklist.clone();
    if let Some(ticks) = &changes.checklist {
        for (key, done) in ticks {
            if !settings.checklist.iter().any(|s| &s.key == key) {
                errors.push(FieldError::new(
                    format!("checklist.{key}"),
                    format!(
                        "is no checklist step; the steps are {}",
                        settings
                            .checklist
                            .iter()
                            .map(|s| s.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            } else if *done {
                checklist.entry(key.clone()).or_insert(DoneStep {
                    by: actor.user_id,
                    at: now().and_utc(),
                });
            } else {
                checklist.remove(key);
            }
        }
    }
    let new_status = changes.status.unwrap_or(base.status);
    let was_live = old_status == Some(RolloutStatus::Live);
    let going_live = new_status == RolloutStatus::Live && !was_live;
    let leaving_live = was_live && new_status != RolloutStatus::Live;
    let mut override_note = None;
    if going_live {
        let missing: Vec<&str> = settings
            .checklist
            .iter()
            .filter(|s| s.mandatory && !checklist.contains_key(&s.key))
            .map(|s| s.key.as_str())
            .collect();
        if !missing.is_empty() {
            match &override_reason {
                Some(why) if actor.role.at_least(Role::Manager) => {
                    override_note = Some(json!({"reason": why, "open_steps": missing}));
                }
                Some(_) => {
                    return Err(ApiError::Forbidden(
                        "Only a manager or admin may take an entry live with open checklist steps."
                            .into(),
                    ));
                }
                None => errors.push(FieldError::new(
                    "status",
                    format!(
                        "`live` needs every mandatory checklist step done; open: {} \
                         (or a manager's `override` with a reason)",
                        missing.join(", ")
                    ),
                )),
            }
        }
    } else if override_reason.is_some() {
        errors.push(FieldError::new(
            "override",
            "only when the status becomes `live` with open mandatory steps",
        ));
    }
    if leaving_live && reason.is_none() {
        errors.push(FieldError::new(
            "reason",
            "leaving `live` (a withdrawal) needs a reason",
        ));
    }
    let new_actual = if going_live {
        Some(
            changes
                .actual_go_live
                .unwrap_or_else(crate::items::queries::today),
        )
    } else if leaving_live {
        None
    } else if let Some(date) = changes.actual_go_live {
        if new_status != RolloutStatus::Live {
            errors.push(FieldError::new(
                "actual_go_live",
                "only an entry that is or becomes `live` has one",
            ));
        }
        Some(date)
    } else {
        base.actual_go_live
    };
    ApiError::from_fields(errors)?;
    let new_planned = changes.planned_go_live.unwrap_or(base.planned_go_live);
    let new_blocker = blocker.unwrap_or(base.blocker.clone());
    let new_notes = changes.notes.clone().unwrap_or(base.notes.clone());

    let mut diff = Diff::new();
    let is_new = old_status.is_none();
    diff.field("status", old_status, new_status);
    if new_wave != base.wave_id || is_new {
        let (old, new) = (wave_name(conn, base.wave_id)?, wave_name(conn, new_wave)?);
        if is_new {
            diff.field("wave", None::<String>, new);
        } else {
            diff.field("wave", old, new);
        }
    }
    diff.field("planned_go_live", base.planned_go_live, new_planned);
    diff.field("actual_go_live", base.actual_go_live, new_actual);
    diff.field("owner_id", base.owner_id, new_owner);
    diff.field("blocker", &base.blocker, &new_blocker);
    let keys = |list: &[(i64, String)]| list.iter().map(|(_, k)| k.clone()).collect::<Vec<_>>();
    let blockers_changed = keys(&base.blocked_by) != keys(&new_blocked_by);
    diff.field("blocked_by", keys(&base.blocked_by), keys(&new_blocked_by));
    let done = |c: &StoredChecklist| c.keys().cloned().collect::<Vec<_>>();
    diff.field("checklist", done(&base.checklist), done(&checklist));
    diff.field("notes", &base.notes, &new_notes);
    if !is_new && diff.is_empty() {
        return Ok((base.id, Outcome::Unchanged));
    }
    if let Some(note) = override_note {
        diff.note("override", note);
    }
    if let Some(reason) = &reason
        && leaving_live
    {
        diff.note("reason", json!(reason));
    }
    let checklist_text = serde_json::to_string(&checklist)
        .map_err(|e| ApiError::internal(format!("checklist: {e}")))?;
    let id = if is_new {
        let stamp = now();
        diesel::insert_into(rollout_entries::table)
            .values((
                rollout_entries::service_id.eq(service),
                rollout_entries::organization_id.eq(admin.id),
                rollout_entries::wave_id.eq(new_wave),
                rollout_entries::status.eq(new_status.as_str()),
                rollout_entries::planned_go_live.eq(new_planned),
                rollout_entries::actual_go_live.eq(new_actual),
                rollout_entries::owner_id.eq(new_owner),
                rollout_entries::blocker.eq(&new_blocker),
                rollout_entries::checklist.eq(&checklist_text),
                rollout_entries::notes.eq(&new_notes),
                rollout_entries::created_at.eq(stamp),
                rollout_entries::updated_at.eq(stamp),
                rollout_entries::version.eq(1_i64),
            ))
            .returning(rollout_entries::id)
            .get_result::<i64>(conn)?
    } else {
        crate::versioned_write!(
            conn,
            rollout_entries,
            base.id,
            base.version,
            (
                rollout_entries::wave_id.eq(new_wave),
                rollout_entries::status.eq(new_status.as_str()),
                rollout_entries::planned_go_live.eq(new_planned),
                rollout_entries::actual_go_live.eq(new_actual),
                rollout_entries::owner_id.eq(new_owner),
                rollout_entries::blocker.eq(&new_blocker),
                rollout_entries::checklist.eq(&checklist_text),
                rollout_entries::notes.eq(&new_notes),
            ),
        )?;
        base.id
    };
    if blockers_changed {
        diesel::delete(rollout_blockers::table.filter(rollout_blockers::entry_id.eq(id)))
            .execute(conn)?;
        for (item, _) in &new_blocked_by {
            diesel::insert_into(rollout_blockers::table)
                .values((
                    rollout_blockers::entry_id.eq(id),
                    rollout_blockers::item_id.eq(item),
                ))
                .execute(conn)?;
        }
    }
    let mut data = diff.into_data();
    if let Some(object) = data.as_object_mut() {
        object.insert("service".into(), json!(service_key.trim()));
        object.insert("administration".into(), json!(admin.short_name));
    }
    history::record(
        conn,
        Subject {
            entity_type: ENTRY_EVENTS,
            entity_id: id,
        },
        if is_new { "created" } else { "updated" },
        actor,
        data,
    )?;
    Ok((
        id,
        if is_new {
            Outcome::Created
        } else {
            Outcome::Updated
        },
    ))
}

/// The administrations of a plan, by short name, in short-name order: those named, those of a
/// district, or all.
pub fn administrations_of(
    conn: &mut DbConnection,
    district: Option<i64>,
) -> Result<Vec<(i64, String)>, ApiError> {
    let kinds = OrganizationKind::ADMINISTRATIONS.map(OrganizationKind::as_str);
    let mut query = organizations::table
        .filter(organizations::kind.eq_any(kinds))
        .order(organizations::short_name)
        .select((organizations::id, organizations::short_name))
        .into_boxed();
    if let Some(district) = district {
        query = query.filter(organizations::parent_id.eq(district));
    }
    Ok(query.load(conn)?)
}

/// The district named by its short name or name (with or without "Landkreis ").
pub fn district(conn: &mut DbConnection, name: &str) -> Result<Option<(i64, String)>, ApiError> {
    let wanted = name.trim().to_lowercase();
    let districts: Vec<(i64, String, String)> = organizations::table
        .filter(organizations::kind.eq(OrganizationKind::District.as_str()))
        .select((
            organizations::id,
            organizations::short_name,
            organizations::name,
        ))
        .load(conn)?;
    Ok(districts
        .into_iter()
        .find(|(_, short, full)| {
            let full = full.to_lowercase();
            short.to_lowercase() == wanted
                || full == wanted
                || full.strip_prefix("landkreis ") == Some(wanted.as_str())
        })
        .map(|(id, short, _)| (id, short)))
}

/// Counts of entries per status of a map, every status present.
pub fn zero_counts() -> BTreeMap<String, i64> {
    RolloutStatus::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect()
}
