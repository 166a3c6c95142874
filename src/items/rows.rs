//! An item's stored row: reading it by key or id, locking it for a write, moving its version
//! on, and the visibility rule of a requester.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

use crate::common::actor::Visibility;
use crate::common::db::schema::{board_columns, boards, demand_details, items, services};
use crate::common::db::{DbConnection, first_on_engine};
use crate::common::error::ApiError;
use crate::items::types::{Item, ItemType};

/// Where an item stands: its column's name and category, its board's key, its service's key.
pub(crate) type Place = (String, String, String, Option<String>);

/// An item as stored in its own table, without what lives beside it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = items)]
pub(crate) struct ItemRow {
    pub(crate) id: i64,
    pub(crate) board_id: i64,
    pub(crate) key: String,
    pub(crate) item_type: String,
    pub(crate) title: String,
    pub(super) description: String,
    pub(crate) service_id: Option<i64>,
    pub(crate) column_id: i64,
    pub(crate) rank: String,
    pub(crate) priority: String,
    pub(crate) due_date: Option<NaiveDate>,
    pub(super) created_by: Option<i64>,
    pub(super) created_at: NaiveDateTime,
    pub(super) updated_at: NaiveDateTime,
    pub(super) started_at: Option<NaiveDateTime>,
    pub(super) done_at: Option<NaiveDateTime>,
    pub(super) deleted_at: Option<NaiveDateTime>,
    pub(crate) version: i64,
}

impl ItemRow {
    /// Whether the item is a demand.
    pub(crate) fn is_demand(&self) -> bool {
        self.item_type == ItemType::Demand.as_str()
    }
}

impl Item {
    /// The stored row of a live item by key (any case) or numeric id, or 404.
    pub(crate) fn row(conn: &mut DbConnection, key_or_id: &str) -> Result<ItemRow, ApiError> {
        Item::live_row(conn, key_or_id, false)
    }

    /// The stored row of a live item, locked until the end of the transaction: the row every
    /// write of an item starts from, so that a concurrent writer waits and then reads the
    /// version this one leaves (see [`crate::first_locked`]).
    pub(crate) fn row_for_update(
        conn: &mut DbConnection,
        key_or_id: &str,
    ) -> Result<ItemRow, ApiError> {
        Item::live_row(conn, key_or_id, true)
    }

    fn live_row(conn: &mut DbConnection, key_or_id: &str, lock: bool) -> Result<ItemRow, ApiError> {
        // Fixed queries rather than one boxed one: diesel keeps prepared statements only for
        // queries whose SQL never varies, and PostgreSQL then skips planning.
        let live = items::table
            .select(ItemRow::as_select())
            .filter(items::deleted_at.is_null());
        let row = match (key_or_id.parse::<i64>(), lock) {
            (Ok(id), false) => live.filter(items::id.eq(id)).first(conn).optional()?,
            (Err(_), false) => live
                .filter(items::key.eq(key_or_id.to_uppercase()))
                .first(conn)
                .optional()?,
            // Written out again: the selection's type is the engine's, one per arm of the macro.
            (Ok(id), true) => crate::first_locked!(
                items::table
                    .select(ItemRow::as_select())
                    .filter(items::deleted_at.is_null().and(items::id.eq(id))),
                conn
            )
            .optional()?,
            (Err(_), true) => crate::first_locked!(
                items::table.select(ItemRow::as_select()).filter(
                    items::deleted_at
                        .is_null()
                        .and(items::key.eq(key_or_id.to_uppercase()))
                ),
                conn
            )
            .optional()?,
        };
        row.ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }

    /// Moves a locked item's version and `updated_at` on for a change stored beside it (its
    /// RACI roles, a demand's decision), through the one versioned write.
    pub(crate) fn touch(conn: &mut DbConnection, row: &ItemRow) -> Result<(), ApiError> {
        crate::versioned_write!(conn, items, row.id, row.version).map(drop)
    }

    /// The stored row of a live item the caller may see: a requester sees only the demands of
    /// their own organization, and gets the same 404 for any other item as for a missing one.
    pub(crate) fn row_visible(
        conn: &mut DbConnection,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<ItemRow, ApiError> {
        let row = Item::row(conn, key_or_id)?;
        Item::check_visible(conn, &row, key_or_id, visibility)?;
        Ok(row)
    }

    /// 404 (as for a missing item) unless the caller may see `row`.
    pub(crate) fn check_visible(
        conn: &mut DbConnection,
        row: &ItemRow,
        key_or_id: &str,
        visibility: Visibility,
    ) -> Result<(), ApiError> {
        if let Visibility::Organization(org) = visibility {
            let requested_by: Option<i64> = if row.item_type == ItemType::Demand.as_str() {
                demand_details::table
                    .find(row.id)
                    .select(demand_details::requesting_org_id)
                    .first::<Option<i64>>(conn)
                    .optional()?
                    .flatten()
            } else {
                None
            };
            if org.is_none() || requested_by != org {
                return Err(ApiError::NotFound(format!(
                    "There is no item `{key_or_id}`."
                )));
            }
        }
        Ok(())
    }

    /// The stored row of a live item by key or id with its column, board and service, in one
    /// query (two fixed statements, as [`Item::row`]), or 404.
    pub(crate) fn placed_row(
        conn: &mut DbConnection,
        key_or_id: &str,
    ) -> Result<(ItemRow, Place), ApiError> {
        // The row's columns as such: `as_select()` would tie them to one engine, and the read
        // goes to the engine's own connection (see `first_on_engine`).
        let live = items::table
            .inner_join(board_columns::table)
            .inner_join(boards::table)
            .left_join(services::table)
            .select((
                <ItemRow as Selectable<diesel::pg::Pg>>::construct_selection(),
                (
                    board_columns::name,
                    board_columns::category,
                    boards::key,
                    services::key.nullable(),
                ),
            ))
            .filter(items::deleted_at.is_null());
        let row = match key_or_id.parse::<i64>() {
            Ok(id) => first_on_engine(live.filter(items::id.eq(id)), conn).optional()?,
            Err(_) => first_on_engine(live.filter(items::key.eq(key_or_id.to_uppercase())), conn)
                .optional()?,
        };
        row.ok_or_else(|| ApiError::NotFound(format!("There is no item `{key_or_id}`.")))
    }
}
