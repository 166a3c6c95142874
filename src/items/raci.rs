//! The RACI roles of an item: storing them, the roles of a new item (from its input, the
//! service's template or the board lead), replacing them, and handing a deactivated person's
//! items over.

use diesel::prelude::*;
use serde_json::{Value, json};

use crate::catalog::raci::{self, PersonRef, RaciInput, RaciRole};
use crate::common::actor::Actor;
use crate::common::db::schema::{item_raci, items, service_raci, users};
use crate::common::db::{DbConnection, Lock};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Subject};
use crate::common::version::Precondition;
use crate::items::queries::raci_of;
use crate::items::types::{Item, ItemRaci};

pub(super) fn write_raci(
    conn: &mut DbConnection,
    id: i64,
    rows: &[(i64, RaciRole)],
) -> Result<(), ApiError> {
    diesel::delete(item_raci::table.filter(item_raci::item_id.eq(id))).execute(conn)?;
    insert_raci(conn, id, rows)
}

/// The RACI rows of an item that has none yet (a new one).
pub(super) fn insert_raci(
    conn: &mut DbConnection,
    id: i64,
    rows: &[(i64, RaciRole)],
) -> Result<(), ApiError> {
    // One statement: one person's is prepared once per connection, several go as one
    // multi-row insert.
    let row = |(user_id, role): &(i64, RaciRole)| {
        (
            item_raci::item_id.eq(id),
            item_raci::user_id.eq(*user_id),
            item_raci::role.eq(role.as_str()),
        )
    };
    match rows {
        [] => {}
        [one] => {
            diesel::insert_into(item_raci::table)
                .values(row(one))
                .execute(conn)?;
        }
        many => {
            let rows: Vec<_> = many.iter().map(row).collect();
            crate::common::db::execute_on_engine(
                diesel::insert_into(item_raci::table).values(&rows),
                conn,
            )?;
        }
    }
    Ok(())
}

pub(super) fn raci_summary(raci: &ItemRaci) -> Value {
    let ids = |people: &[PersonRef]| people.iter().map(|p| p.id).collect::<Vec<_>>();
    json!({
        "accountable": raci.accountable.as_ref().map(|p| p.id),
        "responsible": ids(&raci.responsible), "consulted": ids(&raci.consulted), "informed": ids(&raci.informed),
    })
}

impl Item {
    /// Replaces the item's RACI roles (exactly one accountable), honouring `If-Match`.
    /// Who is accountable changes only by the hand of the present accountable person or of a
    /// manager (`actor_manages`): a member cannot make themself accountable and then decide.
    pub fn replace_raci(
        conn: &mut DbConnection,
        key_or_id: &str,
        input: &RaciInput,
        actor: &Actor,
        actor_manages: bool,
        expected: Precondition,
    ) -> Result<Item, ApiError> {
        let row = Item::row_for_update(conn, key_or_id)?;
        expected.check(row.version)?;
        let rows = raci::validate(conn, input, "")?;
        let Some(accountable) = rows
            .iter()
            .find(|(_, r)| *r == RaciRole::Accountable)
            .map(|(user, _)| *user)
        else {
            return Err(ApiError::invalid(
                "accountable",
                "is required: every item has one accountable person",
            ));
        };
        let before = raci_of(conn, &[row.id])?
            .remove(&row.id)
            .unwrap_or_default();
        let held = [
            (RaciRole::Accountable, before.accountable.as_slice()),
            (RaciRole::Responsible, before.responsible.as_slice()),
            (RaciRole::Consulted, before.consulted.as_slice()),
            (RaciRole::Informed, before.informed.as_slice()),
        ];
        if raci::same_roles(&held, &rows) {
            // The same roles again (a sync script re-applying what it read): no change, no
            // event, the same version.
            return Item::find(conn, &row.key);
        }
        let present = before.accountable.as_ref().map(|p| p.id);
        if present != Some(accountable) && !actor_manages && present != actor.user_id {
            return Err(ApiError::Forbidden(format!(
                "Only the accountable person of {}, managers and admins may change who is \
                 accountable for it.",
                row.key
            )));
        }
        Item::touch(conn, &row)?;
        write_raci(conn, row.id, &rows)?;
        let item = Item::find(conn, &row.key)?;
        // The events carry the item as it now stands, so the history need not read it again.
        let state = item.as_state()?;
        history::record_item_in_state(
            conn,
            row.id,
            "raci_changed",
            actor,
            json!({"old": raci_summary(&before), "new": raci_summary(&item.raci)}),
            state.clone(),
        )?;
        let (old, new) = (
            before.accountable.map(|p| p.id),
            item.raci.accountable.as_ref().map(|p| p.id),
        );
        if old != new {
            history::record_item_in_state(
                conn,
                row.id,
                "accountable_changed",
                actor,
                json!({"old": old, "new": new}),
                state,
            )?;
        }
        Ok(item)
    }
}

/// The RACI roles of a new item: those of `input`, and when it names no accountable person,
/// the service's template, else the board lead as accountable; without either, a field error
/// in `errors`. With `lead_first` (demands: the demand board's lead is the demand manager) an
/// active board lead is accountable before the template, whose accountable person (the
/// service's case worker) becomes responsible. Validation errors of `input` are added to
/// `errors` too.
pub(crate) fn new_item_raci(
    conn: &mut DbConnection,
    input: Option<&RaciInput>,
    service_id: Option<i64>,
    lead: Option<i64>,
    lead_first: bool,
    errors: &mut Vec<FieldError>,
) -> Result<Vec<(i64, RaciRole)>, ApiError> {
    let mut raci_rows = match input {
        Some(input) => match raci::validate(conn, input, "raci.") {
            Ok(rows) => rows,
            Err(ApiError::Validation(e)) => {
                errors.extend(e);
                Vec::new()
            }
            Err(other) => return Err(other),
        },
        None => Vec::new(),
    };
    if errors.is_empty() && !raci_rows.iter().any(|(_, r)| *r == RaciRole::Accountable) {
        // No accountable named: take the service's template, if it has one.
        let template: Vec<(i64, String, bool)> = match service_id {
            Some(sid) => service_raci::table
                .inner_join(users::table)
                .filter(service_raci::service_id.eq(sid))
                .select((service_raci::user_id, service_raci::role, users::active))
                .load(conn)?,
            None => Vec::new(),
        };
        let lead_first = match lead {
            Some(lead) if lead_first => users::table
                .find(lead)
                .select(users::active)
                .first::<bool>(conn)
                .optional()?
                .unwrap_or(false)
                .then_some(lead),
            _ => None,
        };
        if let Some(lead) = lead_first {
            raci_rows.push((lead, RaciRole::Accountable));
        }
        if template.iter().any(|(_, r, _)| r == "accountable") {
            for (user, role, active) in template {
                let role = match role.as_str() {
                    "accountable" if lead_first.is_some() => RaciRole::Responsible,
                    "accountable" => RaciRole::Accountable,
                    "responsible" => RaciRole::Responsible,
                    "consulted" => RaciRole::Consulted,
                    _ => RaciRole::Informed,
                };
                // Deactivated people in an old template are skipped, except the accountable
                // one, whom the template rules keep active.
                let held = raci_rows
                    .iter()
                    .any(|(u, r)| *u == user && (*r == role || *r == RaciRole::Accountable));
                if (active || role == RaciRole::Accountable) && !held {
                    raci_rows.push((user, role));
                }
            }
        } else if lead_first.is_some() {
            // The board lead is accountable already.
        } else if let Some(lead) = lead {
            // No template either: the board lead is accountable, as in Jira.
            raci_rows.push((lead, RaciRole::Accountable));
        } else {
            errors.push(FieldError::new(
                "raci.accountable",
                "an accountable person is required: name one, give the service a RACI \
                 template, or give the board a lead",
            ));
        }
    }
    Ok(raci_rows)
}

/// Gives a deactivated person's open items (not done, not deleted) to `replacement` as their
/// accountable person: each item's version moves on and its history gets an
/// `accountable_changed` event, as with a RACI change by hand.
pub(crate) fn hand_over_items(
    conn: &mut DbConnection,
    user_id: i64,
    replacement: i64,
    actor: &Actor,
) -> Result<usize, ApiError> {
    let held: Vec<i64> = items::table
        .inner_join(item_raci::table)
        .filter(
            item_raci::user_id
                .eq(user_id)
                .and(item_raci::role.eq(RaciRole::Accountable.as_str()))
                .and(items::deleted_at.is_null())
                .and(items::done_at.is_null()),
        )
        .order(items::id)
        .select(items::id)
        .load(conn)?;
    if held.is_empty() {
        return Ok(0);
    }
    raci::check_replacement(conn, user_id, replacement)?;
    for item_id in &held {
        crate::common::db::lock(conn, Lock::Item(*item_id))?;
    }
    // Read under the locks, in one query: the versions other writers see until this ends.
    let versions: Vec<(i64, i64)> = items::table
        .filter(items::id.eq_any(&held))
        .select((items::id, items::version))
        .load(conn)?;
    for (item_id, version) in &versions {
        let version = *version;
        diesel::update(
            item_raci::table.filter(
                item_raci::item_id
                    .eq(item_id)
                    .and(item_raci::role.eq(RaciRole::Accountable.as_str())),
            ),
        )
        .set(item_raci::user_id.eq(replacement))
        .execute(conn)?;
        crate::versioned_write!(conn, items, *item_id, version)?;
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: *item_id,
            },
            "accountable_changed",
            actor,
            json!({"old": user_id, "new": replacement, "reason": "deactivated"}),
        )?;
    }
    Ok(held.len())
}
