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
    board_columns, boards, demand_details, incident_services, item_external_refs, item_labels,
    item_raci, items, services, users,
};
use crate::common::error::ApiError;
use crate::common::person::PERSON_COLUMNS;
use crate::items::demand as demands;
use crate::items::incident as incidents;
use crate::items::rows::{ItemRow, Place};
use crate::items::types::{ColumnRef, ExternalRef, Item, ItemRaci, ItemType, Priority};
use crate::sla::clock::ClockBasis;

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
        .select((item_raci::item_id, item_raci::role, PERSON_COLUMNS));
    let rows: Vec<(i64, String, PersonRef)> =
        crate::load_for_ids!(query, item_raci::item_id, ids, conn)?;
    for (item, role, person) in rows {
        take_role(result.entry(item).or_default(), &role, person);
    }
    Ok(result)
}

/// The RACI of `rows` (people by id, with their roles) as an item shows it, from the people
/// read in one query: what a new item's roles are before they are stored, so that it need not
/// be read back.
pub(crate) fn raci_of_people(
    conn: &mut DbConnection,
    rows: &[(i64, &str)],
) -> Result<ItemRaci, ApiError> {
    let mut ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let query = users::table.select(PERSON_COLUMNS);
    let mut people: Vec<PersonRef> = if ids.is_empty() {
        Vec::new()
    } else {
        crate::load_for_ids!(query, users::id, &ids, conn)?
    };
    // Each role's people by display name, as [`raci_of`] and [`beside_of`] order them.
    people.sort_unstable_by(|a, b| (&a.display_name, a.id).cmp(&(&b.display_name, b.id)));
    let mut raci = ItemRaci::default();
    for person in people {
        for (_, role) in rows.iter().filter(|(user, _)| *user == person.id) {
            take_role(&mut raci, role, person.clone());
        }
    }
    Ok(raci)
}

/// Puts `person` into the RACI role `role` of `raci`.
fn take_role(raci: &mut ItemRaci, role: &str, person: PersonRef) {
    match role {
        "accountable" => raci.accountable = Some(person),
        "responsible" => raci.responsible.push(person),
        "consulted" => raci.consulted.push(person),
        _ => raci.informed.push(person),
    }
}

/// What lives beside items in rows of their own, by item id: labels, RACI roles, external
/// references and (of incidents) affected services.
#[derive(Default)]
pub(crate) struct Beside {
    /// Labels, in byte order.
    pub(crate) labels: HashMap<i64, Vec<String>>,
    /// RACI roles, each role's people by display name.
    pub(crate) raci: HashMap<i64, ItemRaci>,
    /// External references, by system and key.
    pub(crate) refs: HashMap<i64, Vec<ExternalRef>>,
    /// Keys of the services an incident affects, in byte order.
    pub(crate) affected: HashMap<i64, Vec<String>>,
}

/// One row of [`beside_of`]'s union: the item, the part (`label`, `raci`, `ref`, `service`),
/// then the part's own columns: a label, a RACI role with the person's name, email, id and
/// whether active, a reference's system, key, url and alias, or a service's key.
type BesideRow = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<bool>,
);

/// The union of [`beside_of`], its item ids matched by the macro `$matches` (one id by `=`,
/// several by `IN`, as [`crate::load_for_ids`] does).
macro_rules! beside_union {
    ($matches:ident) => {{
        use diesel::sql_types::{BigInt, Bool, Nullable, Text};
        let none_text = || None::<String>.into_sql::<Nullable<Text>>();
        item_labels::table
            .filter($matches!(item_labels::item_id))
            .select((
                item_labels::item_id,
                "label".into_sql::<Text>(),
                item_labels::label,
                none_text(),
                none_text(),
                none_text(),
                None::<i64>.into_sql::<Nullable<BigInt>>(),
                None::<bool>.into_sql::<Nullable<Bool>>(),
            ))
            .union_all(
                item_raci::table
                    .inner_join(users::table)
                    .filter($matches!(item_raci::item_id))
                    .select((
                        item_raci::item_id,
                        "raci".into_sql::<Text>(),
                        item_raci::role,
                        users::display_name.nullable(),
                        users::email.nullable(),
                        none_text(),
                        users::id.nullable(),
                        users::active.nullable(),
                    )),
            )
            .union_all(
                item_external_refs::table
                    .filter($matches!(item_external_refs::item_id))
                    .select((
                        item_external_refs::item_id,
                        "ref".into_sql::<Text>(),
                        item_external_refs::system,
                        item_external_refs::ext_key.nullable(),
                        item_external_refs::url,
                        item_external_refs::alias,
                        None::<i64>.into_sql::<Nullable<BigInt>>(),
                        None::<bool>.into_sql::<Nullable<Bool>>(),
                    )),
            )
            .union_all(
                incident_services::table
                    .inner_join(services::table)
                    .filter($matches!(incident_services::item_id))
                    .select((
                        incident_services::item_id,
                        "service".into_sql::<Text>(),
                        services::key,
                        none_text(),
                        none_text(),
                        none_text(),
                        None::<i64>.into_sql::<Nullable<BigInt>>(),
                        None::<bool>.into_sql::<Nullable<Bool>>(),
                    )),
            )
    }};
}

/// Labels, RACI roles, references and affected services of items by id, in one statement:
/// a `UNION ALL` of the four tables, sorted here (a member of a union cannot be ordered on
/// SQLite). A single item's GET costs one round trip for all four instead of four.
pub(crate) fn beside_of(conn: &mut DbConnection, ids: &[i64]) -> Result<Beside, ApiError> {
    let mut rows: Vec<BesideRow> = match ids {
        [] => return Ok(Beside::default()),
        [one] => {
            macro_rules! matches {
                ($column:expr) => {
                    $column.eq(*one)
                };
            }
            crate::common::db::load_on_engine(beside_union!(matches), conn)?
        }
        many => {
            macro_rules! matches {
                ($column:expr) => {
                    $column.eq_any(many)
                };
            }
            crate::common::db::load_on_engine(beside_union!(matches), conn)?
        }
    };
    rows.sort_unstable_by(|a, b| (a.0, &a.1, &a.2, &a.3, a.6).cmp(&(b.0, &b.1, &b.2, &b.3, b.6)));
    let mut beside = Beside::default();
    for (item, part, first, second, third, fourth, id, active) in rows {
        match part.as_str() {
            "label" => beside.labels.entry(item).or_default().push(first),
            "raci" => {
                let person = PersonRef {
                    id: id.unwrap_or_default(),
                    display_name: second.unwrap_or_default(),
                    email: third.unwrap_or_default(),
                    active: active.unwrap_or_default(),
                };
                take_role(beside.raci.entry(item).or_default(), &first, person);
            }
            "ref" => beside.refs.entry(item).or_default().push(ExternalRef {
                system: first,
                key: second.unwrap_or_default(),
                url: third,
                alias: fourth,
            }),
            _ => beside.affected.entry(item).or_default().push(first),
        }
    }
    Ok(beside)
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
    Ok(assemble_clocked(conn, placed, None)?.0)
}

/// [`assemble_placed`] for rows whose [`Beside`] is known already (a new item's, as its
/// creator wrote it).
pub(super) fn assemble_beside(
    conn: &mut DbConnection,
    placed: Vec<(ItemRow, Place)>,
    beside: Beside,
) -> Result<Vec<Item>, ApiError> {
    Ok(assemble_clocked(conn, placed, Some(beside))?.0)
}

/// [`assemble_placed`] (reading the [`Beside`] unless it is given), handing back with the
/// items what their SLA clocks were computed from.
fn assemble_clocked(
    conn: &mut DbConnection,
    placed: Vec<(ItemRow, Place)>,
    beside: Option<Beside>,
) -> Result<(Vec<Item>, ClockBasis), ApiError> {
    let beside = match beside {
        Some(beside) => beside,
        None => {
            let ids: Vec<i64> = placed.iter().map(|(r, _)| r.id).collect();
            beside_of(conn, &ids)?
        }
    };
    let Beside {
        mut labels,
        raci: mut racis,
        mut refs,
        affected,
    } = beside;
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
    let (mut incident_fields, clocks) = incidents::load(conn, &incident_items, affected)?;
    let mut sla_states = clocks.states(chrono::Utc::now());
    let items = rows
        .into_iter()
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
        .collect::<Result<Vec<Item>, ApiError>>()?;
    Ok((items, clocks))
}

impl Item {
    /// The live item by key or id, if the caller may see it (404 otherwise).
    pub fn find_visible(
        conn: &mut DbConnection,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<Item, ApiError> {
        Ok(Item::find_visible_clocked(conn, key_or_id, visibility)?.0)
    }

    /// [`Item::find_visible`], with what its SLA clocks were computed from (nothing for a
    /// task or demand): so that the clocks of an incident kept in memory can be computed
    /// afresh without a read.
    pub(crate) fn find_visible_clocked(
        conn: &mut DbConnection,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<(Item, ClockBasis), ApiError> {
        let placed = Item::placed_row(conn, key_or_id)?;
        Item::check_visible(conn, &placed.0, key_or_id, visibility)?;
        let (mut items, clocks) = assemble_clocked(conn, vec![placed], None)?;
        let item = items
            .pop()
            .ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))?;
        Ok((item, clocks))
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
            .map(|item| Ok((item.id, item.as_state()?)))
            .collect()
    }

    /// The item as the API shows it, as JSON: the state its history events carry (see
    /// [`crate::common::history::record_item_in_state`]).
    pub fn as_state(&self) -> Result<serde_json::Value, ApiError> {
        serde_json::to_value(self)
            .map_err(|e| ApiError::internal(format!("item {} as JSON: {e}", self.id)))
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
