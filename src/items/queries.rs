//! Reading items: the API item assembled from its row and what lives beside it (labels, RACI,
//! references, place, demand and incident fields) in a fixed number of queries, whatever the
//! number of items.

use std::collections::HashMap;

use diesel::prelude::*;

use crate::board::model::ColumnCategory;
use crate::catalog::raci::PersonRef;
use crate::common::actor::Visibility;
use crate::common::db::DbConnection;
use crate::common::db::schema::{
    board_columns, boards, demand_details, item_external_refs, item_labels, item_raci, items,
    services, users,
};
use crate::common::error::ApiError;
use crate::items::demand as demands;
use crate::items::incident as incidents;
use crate::items::rows::{ItemRow, Place};
use crate::items::types::{ColumnRef, ExternalRef, Item, ItemRaci, ItemType, Priority};

/// The ids of the items where `user` holds one of `roles`, as a subquery for
/// `items::id.eq_any(…)`: the person filters of every item list.
#[diesel::dsl::auto_type]
pub fn held_by(user: i64, roles: Vec<&'static str>) -> _ {
    item_raci::table
        .filter(
            item_raci::user_id
                .eq(user)
                .and(item_raci::role.eq_any(roles)),
        )
        .select(item_raci::item_id)
}

/// Today in the app's time zone, the day that due dates are compared with (`overdue`).
pub fn today() -> chrono::NaiveDate {
    chrono::Utc::now()
        .with_timezone(&crate::common::calendar::current().tz)
        .date_naive()
}

/// The RACI roles, for [`held_by`] "any role".
pub const ANY_ROLE: [&str; 4] = ["accountable", "responsible", "consulted", "informed"];

/// Labels of items by id (one query).
pub(crate) fn labels_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, ApiError> {
    let mut labels: HashMap<i64, Vec<String>> = HashMap::new();
    let query = item_labels::table
        .order((item_labels::item_id, item_labels::label))
        .select((item_labels::item_id, item_labels::label));
    let rows: Vec<(i64, String)> = crate::load_for_ids!(query, item_labels::item_id, ids, conn)?;
    for (id, label) in rows {
        labels.entry(id).or_default().push(label);
    }
    Ok(labels)
}

/// RACI roles of items by id (one query).
pub(crate) fn raci_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, ItemRaci>, ApiError> {
    let mut result: HashMap<i64, ItemRaci> = HashMap::new();
    let query = item_raci::table
        .inner_join(users::table)
        .order((
            item_raci::item_id,
            item_raci::role,
            users::display_name,
            users::id,
        ))
        .select((
            item_raci::item_id,
            item_raci::role,
            users::id,
            users::display_name,
            users::email,
            users::active,
        ));
    let rows: Vec<(i64, String, i64, String, String, bool)> =
        crate::load_for_ids!(query, item_raci::item_id, ids, conn)?;
    for (item, role, id, display_name, email, active) in rows {
        let person = PersonRef {
            id,
            display_name,
            email,
            active,
        };
        let entry = result.entry(item).or_default();
        match role.as_str() {
            "accountable" => entry.accountable = Some(person),
            "responsible" => entry.responsible.push(person),
            "consulted" => entry.consulted.push(person),
            _ => entry.informed.push(person),
        }
    }
    Ok(result)
}

/// External references of items by id (one query).
fn refs_of(
    conn: &mut DbConnection,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<ExternalRef>>, ApiError> {
    let mut refs: HashMap<i64, Vec<ExternalRef>> = HashMap::new();
    let query = item_external_refs::table
        .order((item_external_refs::item_id, item_external_refs::system))
        .select((
            item_external_refs::item_id,
            item_external_refs::system,
            item_external_refs::ext_key,
            item_external_refs::url,
            item_external_refs::alias,
        ));
    type RefRow = (i64, String, String, Option<String>, Option<String>);
    let rows: Vec<RefRow> = crate::load_for_ids!(query, item_external_refs::item_id, ids, conn)?;
    for (id, system, key, url, alias) in rows {
        refs.entry(id).or_default().push(ExternalRef {
            system,
            key,
            url,
            alias,
        });
    }
    Ok(refs)
}

/// Turns rows into API items in a fixed number of queries: labels, RACI, references, and
/// column, board and service together; demand fields when there are demands; incident fields and SLA
/// clocks when there are incidents.
pub(super) fn assemble(conn: &mut DbConnection, rows: Vec<ItemRow>) -> Result<Vec<Item>, ApiError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    // Column, board and service of every item in one joined query.
    let mut places: HashMap<i64, Place> = HashMap::new();
    for (id, column_name, category, board_key, service_key) in items::table
        .inner_join(board_columns::table)
        .inner_join(boards::table)
        .left_join(services::table)
        .filter(items::id.eq_any(&ids))
        .select((
            items::id,
            board_columns::name,
            board_columns::category,
            boards::key,
            services::key.nullable(),
        ))
        .load::<(i64, String, String, String, Option<String>)>(conn)?
    {
        places.insert(id, (column_name, category, board_key, service_key));
    }
    let placed = rows
        .into_iter()
        .map(|row| {
            let place = places.remove(&row.id).unwrap_or_default();
            (row, place)
        })
        .collect();
    assemble_placed(conn, placed)
}

/// [`assemble`] for rows read together with their place (one query less: a single item's
/// GET reads a task in four statements).
pub(super) fn assemble_placed(
    conn: &mut DbConnection,
    placed: Vec<(ItemRow, Place)>,
) -> Result<Vec<Item>, ApiError> {
    let ids: Vec<i64> = placed.iter().map(|(r, _)| r.id).collect();
    let mut labels = labels_of(conn, &ids)?;
    let mut racis = raci_of(conn, &ids)?;
    let mut refs = refs_of(conn, &ids)?;
    let (rows, places): (Vec<ItemRow>, Vec<Place>) = placed.into_iter().unzip();
    let mut places: HashMap<i64, Place> = rows.iter().map(|r| r.id).zip(places).collect();
    let demand_ids: Vec<i64> = rows
        .iter()
        .filter(|r| r.item_type == ItemType::Demand.as_str())
        .map(|r| r.id)
        .collect();
    let mut demand_fields = if demand_ids.is_empty() {
        HashMap::new()
    } else {
        demands::load(conn, &demand_ids)?
    };
    let incident_items: Vec<(i64, Option<i64>)> = rows
        .iter()
        .filter(|r| r.item_type == ItemType::Incident.as_str())
        .map(|r| (r.id, r.service_id))
        .collect();
    let (mut incident_fields, mut sla_states) = incidents::load(conn, &incident_items)?;
    rows.into_iter()
        .map(|row| {
            let (column_name, category, board_key, service_key) =
                places.remove(&row.id).unwrap_or_default();
            Ok(Item {
                item_type: ItemType::parse(&row.item_type).ok_or_else(|| {
                    ApiError::internal(format!("unknown item type {}", row.item_type))
                })?,
                priority: Priority::parse(&row.priority).ok_or_else(|| {
                    ApiError::internal(format!("unknown priority {}", row.priority))
                })?,
                column: ColumnRef {
                    id: row.column_id,
                    name: column_name,
                    category: ColumnCategory::parse(&category).ok_or_else(|| {
                        ApiError::internal(format!("unknown category {category}"))
                    })?,
                },
                service: service_key,
                board: board_key,
                labels: labels.remove(&row.id).unwrap_or_default(),
                raci: racis.remove(&row.id).unwrap_or_default(),
                external_refs: refs.remove(&row.id).unwrap_or_default(),
                demand: demand_fields.remove(&row.id),
                incident: incident_fields.remove(&row.id),
                sla: sla_states.remove(&row.id),
                id: row.id,
                key: row.key,
                title: row.title,
                description: row.description,
                rank: row.rank,
                due_date: row.due_date,
                created_by: row.created_by,
                created_at: row.created_at.and_utc(),
                updated_at: row.updated_at.and_utc(),
                started_at: row.started_at.map(|t| t.and_utc()),
                done_at: row.done_at.map(|t| t.and_utc()),
                deleted_at: row.deleted_at.map(|t| t.and_utc()),
                version: row.version,
            })
        })
        .collect()
}

impl Item {
    /// The live item by key or id, if the caller may see it (404 otherwise).
    pub fn find_visible(
        conn: &mut DbConnection,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<Item, ApiError> {
        let placed = Item::placed_row(conn, key_or_id)?;
        Item::check_visible(conn, &placed.0, key_or_id, visibility)?;
        assemble_placed(conn, vec![placed])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }

    /// Items by id, in id order (deleted ones included), in a fixed number of queries.
    pub fn by_ids(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<Item>, ApiError> {
        let rows = items::table
            .filter(items::id.eq_any(ids))
            .order(items::id.asc())
            .select(ItemRow::as_select())
            .load(conn)?;
        assemble(conn, rows)
    }

    /// What the changes feed shows of items after a change: each item as the API shows it
    /// (a deleted one as its tombstone), as JSON, by id. The app registers this as the
    /// history's [`crate::common::history::ItemSnapshots`].
    pub fn snapshots(
        conn: &mut DbConnection,
        ids: &[i64],
    ) -> Result<Vec<(i64, serde_json::Value)>, ApiError> {
        Item::by_ids(conn, ids)?
            .into_iter()
            .map(|item| {
                let json = serde_json::to_value(&item)
                    .map_err(|e| ApiError::internal(format!("item {} as JSON: {e}", item.id)))?;
                Ok((item.id, json))
            })
            .collect()
    }

    /// The live item by key or id.
    pub fn find(conn: &mut DbConnection, key_or_id: &str) -> Result<Item, ApiError> {
        let placed = Item::placed_row(conn, key_or_id)?;
        assemble_placed(conn, vec![placed])?
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }
}

/// The ids of the demands an organization raised, as a subquery: what a requester may see.
#[diesel::dsl::auto_type]
pub(crate) fn demands_of(org: i64) -> _ {
    demand_details::table
        .filter(demand_details::requesting_org_id.eq(org))
        .select(demand_details::item_id)
}
