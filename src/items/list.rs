//! The item list: filters, keyset-paged orders and the cursor of `GET /api/v1/items`.

use diesel::prelude::*;

use crate::common::actor::Visibility;
use crate::common::db::DbConnection;
use crate::common::db::schema::{
    board_columns, boards, demand_details, incident_details, item_external_refs, item_labels,
    item_raci, items, organizations, services,
};
use crate::common::error::ApiError;
use crate::common::pagination::{
    Page, PageParams, SortCursor, encode_cursor, format_cursor_time, parse_cursor_time,
};
use crate::items::queries::{assemble, demands_of};
use crate::items::rows::ItemRow;
use crate::items::types::{Item, ItemFilter, ItemSort, ItemType};

impl Item {
    /// One page of items in the requested order, in a fixed number of queries whatever the
    /// page size: the page, then labels, RACI, references, places, and demand and incident
    /// fields when the page holds such items.
    pub fn list(
        conn: &mut DbConnection,
        filter: &ItemFilter,
        visibility: Visibility,
    ) -> Result<Page<Item>, ApiError> {
        let paging = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = paging.limit()?;
        let sort = filter.sort.unwrap_or_default();
        let after = paging.after_sorted(sort)?;
        let mut query = items::table.select(ItemRow::as_select()).into_boxed();
        if let Visibility::Organization(org) = visibility {
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(demands_of(org.unwrap_or(-1)))),
            );
        }
        if let Some(decision) = filter.decision {
            let ids = demand_details::table
                .filter(demand_details::decision.eq(decision.as_str()))
                .select(demand_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if let Some(severity) = filter.severity {
            let ids = incident_details::table
                .filter(incident_details::severity.eq(severity.as_str()))
                .select(incident_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Incident.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if let Some(org) = &filter.requesting_organization {
            let ids = demand_details::table
                .inner_join(organizations::table)
                .filter(
                    crate::common::db::lower(organizations::short_name)
                        .eq(org.trim().to_lowercase()),
                )
                .select(demand_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if !filter.include_deleted.unwrap_or(false) {
            query = query.filter(items::deleted_at.is_null());
        }
        if let Some(board) = &filter.board {
            let ids = boards::table
                .filter(boards::key.eq(board.trim().to_uppercase()))
                .select(boards::id);
            query = query.filter(items::board_id.eq_any(ids));
        }
        if let Some(service) = &filter.service {
            let ids = services::table
                .filter(services::key.eq(service.trim().to_string()))
                .select(services::id.nullable());
            query = query.filter(items::service_id.eq_any(ids));
        }
        if let Some(item_type) = filter.item_type {
            query = query.filter(items::item_type.eq(item_type.as_str()));
        }
        if let Some(column) = filter.column {
            query = query.filter(items::column_id.eq(column));
        }
        if let Some(category) = filter.category {
            let ids = board_columns::table
                .filter(board_columns::category.eq(category.as_str()))
                .select(board_columns::id);
            query = query.filter(items::column_id.eq_any(ids));
        }
        if let Some(priority) = filter.priority {
            query = query.filter(items::priority.eq(priority.as_str()));
        }
        for (user, role) in [
            (filter.accountable, "accountable"),
            (filter.responsible, "responsible"),
        ] {
            if let Some(user) = user {
                let ids = item_raci::table
                    .filter(item_raci::user_id.eq(user).and(item_raci::role.eq(role)))
                    .select(item_raci::item_id);
                query = query.filter(items::id.eq_any(ids));
            }
        }
        if let Some(user) = filter.involved {
            let ids = item_raci::table
                .filter(item_raci::user_id.eq(user))
                .select(item_raci::item_id);
            query = query.filter(items::id.eq_any(ids));
        }
        if let Some(label) = &filter.label {
            let ids = item_labels::table
                .filter(item_labels::label.eq(label.trim().to_lowercase()))
                .select(item_labels::item_id);
            query = query.filter(items::id.eq_any(ids));
        }
        match (&filter.external_system, &filter.external_key) {
            (Some(system), Some(key)) => {
                let ids = item_external_refs::table
                    .filter(
                        item_external_refs::system
                            .eq(system.trim().to_string())
                            .and(item_external_refs::ext_key.eq(key.trim().to_string())),
                    )
                    .select(item_external_refs::item_id);
                query = query.filter(items::id.eq_any(ids));
            }
            (None, None) => {}
            _ => {
                return Err(ApiError::bad_field(
                    "external_key",
                    "give external_system and external_key together",
                ));
            }
        }
        if let Some(since) = filter.updated_since {
            query = query.filter(items::updated_at.ge(since.naive_utc()));
        }
        if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
            query = query.filter(
                crate::common::db::lower(items::key)
                    .like(pattern.clone())
                    .escape('\\')
                    .or(crate::common::db::lower(items::title)
                        .like(pattern.clone())
                        .escape('\\'))
                    .or(crate::common::db::lower(items::description)
                        .like(pattern)
                        .escape('\\')),
            );
        }
        let bad_cursor = || ApiError::bad_field("cursor", "is not a cursor returned by this list");
        let time_after = |after: Option<SortCursor>| match after {
            Some(c) => parse_cursor_time(&c.v)
                .map(|v| Some((v, c.id)))
                .ok_or_else(bad_cursor),
            None => Ok(None),
        };
        use ItemSort as S;
        let desc = matches!(
            sort,
            S::CreatedAtDesc | S::UpdatedAtDesc | S::RankDesc | S::PriorityDesc
        );
        query = match sort {
            S::CreatedAt | S::CreatedAtDesc => {
                let after = time_after(after)?;
                crate::keyset_order!(query, items::created_at, items::id, desc, after)
            }
            S::UpdatedAt | S::UpdatedAtDesc => {
                let after = time_after(after)?;
                crate::keyset_order!(query, items::updated_at, items::id, desc, after)
            }
            S::Rank | S::RankDesc => {
                let after = after.map(|c| (c.v, c.id));
                crate::keyset_order!(query, items::rank, items::id, desc, after)
            }
            S::Priority | S::PriorityDesc => {
                let after = match after {
                    Some(c) => Some((c.v.parse::<i32>().map_err(|_| bad_cursor())?, c.id)),
                    None => None,
                };
                crate::keyset_order!(query, priority_order(), items::id, desc, after)
            }
        };
        let rows = query.limit(limit + 1).load(conn)?;
        let items = assemble(conn, rows)?;
        let mut page = Page::from_rows(items, limit, |_| ());
        if page.next_cursor.is_some()
            && let Some(last) = page.items.last()
        {
            let v = match sort {
                S::CreatedAt | S::CreatedAtDesc => format_cursor_time(last.created_at),
                S::UpdatedAt | S::UpdatedAtDesc => format_cursor_time(last.updated_at),
                S::Rank | S::RankDesc => last.rank.clone(),
                S::Priority | S::PriorityDesc => last.priority.order().to_string(),
            };
            page.next_cursor = Some(encode_cursor(&SortCursor::new(sort, v, last.id)));
        }
        Ok(page)
    }
}

/// The urgency of an item's priority as a number, 0 for critical: sorting the stored text
/// would put `critical` after `high`.
#[diesel::dsl::auto_type]
fn priority_order() -> _ {
    let critical: &'static str = "critical";
    let high: &'static str = "high";
    let medium: &'static str = "medium";
    diesel::dsl::case_when(
        items::priority.eq(critical),
        0_i32.into_sql::<diesel::sql_types::Integer>(),
    )
    .when(
        items::priority.eq(high),
        1_i32.into_sql::<diesel::sql_types::Integer>(),
    )
    .when(
        items::priority.eq(medium),
        2_i32.into_sql::<diesel::sql_types::Integer>(),
    )
    .otherwise(3_i32.into_sql::<diesel::sql_types::Integer>())
}
