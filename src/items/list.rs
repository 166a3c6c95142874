//! The item list: filters, keyset-paged orders and the cursor of `GET /api/v1/items`.

use diesel::prelude::*;

use crate::board::model::ColumnCategory;
use crate::common::actor::Visibility;
use crate::common::db::DbConnection;
use crate::common::db::schema::{
    board_columns, boards, demand_details, incident_details, item_external_refs, item_labels,
    items, organizations, services,
};
use crate::common::error::ApiError;
use crate::common::pagination::{
    Page, PageParams, SortCursor, encode_cursor, format_cursor_time, parse_cursor_time,
};
use crate::items::queries::{ANY_ROLE, assemble, demands_of, held_by, today};
use crate::items::rows::ItemRow;
use crate::items::types::{Item, ItemFilter, ItemSort, ItemType};
use chrono::NaiveDate;

impl Item {
    /// One page of items in the requested order (`me` is the caller, whom `accountable=me`
    /// and the like name), in a fixed number of queries whatever the
    /// page size: the page, then labels, RACI, references, places, and demand and incident
    /// fields when the page holds such items.
    pub fn list(
        conn: &mut DbConnection,
        filter: &ItemFilter,
        visibility: Visibility,
        me: i64,
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
        if let Some(decisions) = &filter.decision {
            let ids = demand_details::table
                .filter(demand_details::decision.eq_any(decisions.iter().map(|d| d.as_str())))
                .select(demand_details::item_id);
            query = query.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(ids)),
            );
        }
        if let Some(severities) = &filter.severity {
            let ids = incident_details::table
                .filter(incident_details::severity.eq_any(severities.iter().map(|s| s.as_str())))
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
        if let Some(types) = &filter.item_type {
            query = query.filter(items::item_type.eq_any(types.iter().map(|t| t.as_str())));
        }
        if let Some(column) = filter.column {
            query = query.filter(items::column_id.eq(column));
        }
        if let Some(categories) = &filter.category {
            let ids = board_columns::table
                .filter(board_columns::category.eq_any(categories.iter().map(|c| c.as_str())))
                .select(board_columns::id);
            query = query.filter(items::column_id.eq_any(ids));
        }
        let done_columns = || {
            board_columns::table
                .filter(board_columns::category.eq(ColumnCategory::Done.as_str()))
                .select(board_columns::id)
        };
        match filter.open {
            Some(true) => query = query.filter(items::column_id.ne_all(done_columns())),
            Some(false) => query = query.filter(items::column_id.eq_any(done_columns())),
            None => {}
        }
        if let Some(priorities) = &filter.priority {
            query = query.filter(items::priority.eq_any(priorities.iter().map(|p| p.as_str())));
        }
        if let Some(date) = filter.due_before {
            query = query.filter(items::due_date.le(date));
        }
        if let Some(date) = filter.due_after {
            query = query.filter(items::due_date.ge(date));
        }
        if let Some(overdue) = filter.overdue {
            let today = today();
            query = if overdue {
                query.filter(
                    items::due_date
                        .lt(today)
                        .and(items::column_id.ne_all(done_columns())),
                )
            } else {
                query.filter(
                    items::due_date
                        .is_null()
                        .or(items::due_date.ge(today))
                        .or(items::column_id.eq_any(done_columns())),
                )
            };
        }
        let (accountable, responsible, involved) = (
            filter.accountable.map(|p| p.id(me)),
            filter.responsible.map(|p| p.id(me)),
            filter.involved.map(|p| p.id(me)),
        );
        for (user, role) in [
            (accountable, vec!["accountable"]),
            (responsible, vec!["responsible"]),
            (involved, ANY_ROLE.to_vec()),
        ] {
            if let Some(user) = user {
                query = query.filter(items::id.eq_any(held_by(user, role)));
            }
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
            query = query.filter(items::updated_at.ge(since.0.naive_utc()));
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
            S::CreatedAtDesc | S::UpdatedAtDesc | S::RankDesc | S::PriorityDesc | S::DueDateDesc
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
            S::DueDate | S::DueDateDesc => {
                let after = match after {
                    Some(c) => Some((
                        NaiveDate::parse_from_str(&c.v, "%Y-%m-%d").map_err(|_| bad_cursor())?,
                        c.id,
                    )),
                    None => None,
                };
                crate::keyset_order!(query, due_order(), items::id, desc, after)
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
                S::DueDate | S::DueDateDesc => last
                    .due_date
                    .unwrap_or(no_due_date())
                    .format("%Y-%m-%d")
                    .to_string(),
            };
            page.next_cursor = Some(encode_cursor(&SortCursor::new(sort, v, last.id)));
        }
        Ok(page)
    }
}

/// Where an item without a due date sorts: after every real one. (Not `NaiveDate::MAX`:
/// SQLite compares dates as text, and that one is written `+262142-12-31`.)
fn no_due_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).unwrap_or(NaiveDate::MAX)
}

/// The due date, [`no_due_date`] for none, so that keyset paging has no NULL to step over.
#[diesel::dsl::auto_type]
fn due_order() -> _ {
    let none: NaiveDate = no_due_date();
    crate::common::db::coalesce_date(items::due_date, none)
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
