//! The activity stream: what happened to items across boards, newest first, written for people
//! (who did it by name, the item's key and title, the names of the columns and people an event
//! names). It reads the same history events as each item's own history.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::actor::Visibility;
use crate::common::db::DbConnection;
use crate::common::db::schema::{boards, events, items};
use crate::common::error::ApiError;
use crate::common::history::{self, EVENT_COLUMNS, Event, EventRow};
use crate::common::pagination::{Page, PageParams};
use crate::common::query::{PersonParam, Since};
use crate::items::history::confine_history;
use crate::items::queries::demands_of;
use crate::items::types::ItemType;

/// Filters of `GET /api/v1/activity`; they combine with AND.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityFilter {
    /// Only events of items on these boards (keys), comma-separated or repeated.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub board: Option<Vec<String>>,
    /// Only what this person did: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub person: Option<PersonParam>,
    /// Only events of these kinds (`created`, `updated`, `moved`, `commented`, …).
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub kind: Option<Vec<String>>,
    /// Only events at or after this instant: an RFC 3339 time, or a span back from now
    /// (`P1D`, `PT6H`, `24h`, `7d`).
    #[param(value_type = Option<String>, example = "P1D")]
    pub since: Option<Since>,
    /// Events per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The item an activity entry is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityItem {
    /// Its key (`OPS-42`).
    pub key: String,
    /// Its title.
    pub title: String,
    /// Demand, task or incident.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// The key of its board.
    pub board: String,
    /// Whether it has been deleted since.
    pub deleted: bool,
}

/// One entry of the activity stream: a history event and the item it is about.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Activity {
    /// The item.
    pub item: ActivityItem,
    /// The event, as the item's history shows it.
    #[serde(flatten)]
    pub event: Event,
}

/// One page of the activity stream, newest first, in a fixed number of queries: the events,
/// their items, and the names they mention. A requester sees the events of their own
/// organization's demands only, confined as in an item's history.
pub fn page(
    conn: &mut DbConnection,
    filter: &ActivityFilter,
    visibility: Visibility,
    me: i64,
) -> Result<Page<Activity>, ApiError> {
    let paging = PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    };
    let limit = paging.limit()?;
    let mut query = events::table
        .filter(events::entity_type.eq("item"))
        .order(events::id.desc())
        .select((EVENT_COLUMNS, events::entity_id))
        .into_boxed();
    if let Some(after) = paging.after::<i64>()? {
        query = query.filter(events::id.lt(after));
    }
    if let Visibility::Organization(org) = visibility {
        query = query.filter(events::entity_id.eq_any(demands_of(org.unwrap_or(-1))));
    }
    if let Some(board_keys) = &filter.board {
        let upper: Vec<String> = board_keys.iter().map(|k| k.trim().to_uppercase()).collect();
        let ids = items::table
            .inner_join(boards::table)
            .filter(boards::key.eq_any(upper))
            .select(items::id);
        query = query.filter(events::entity_id.eq_any(ids));
    }
    if let Some(person) = filter.person {
        query = query.filter(events::actor_id.eq(person.id(me)));
    }
    if let Some(kinds) = &filter.kind {
        query = query.filter(events::kind.eq_any(kinds.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(events::created_at.ge(since.0.naive_utc()));
    }
    let rows: Vec<(EventRow, i64)> = query.limit(limit + 1).load(conn)?;
    let mut item_ids: Vec<i64> = rows.iter().map(|(_, id)| *id).collect();
    item_ids.sort_unstable();
    item_ids.dedup();
    let about: HashMap<i64, ActivityItem> = items::table
        .inner_join(boards::table)
        .filter(items::id.eq_any(&item_ids))
        .select((
            items::id,
            items::key,
            items::title,
            items::item_type,
            boards::key,
            items::deleted_at.is_not_null(),
        ))
        .load::<(i64, String, String, String, String, bool)>(conn)?
        .into_iter()
        .filter_map(|(id, key, title, item_type, board, deleted)| {
            Some((
                id,
                ActivityItem {
                    key,
                    title,
                    item_type: ItemType::parse(&item_type)?,
                    board,
                    deleted,
                },
            ))
        })
        .collect();
    let (mut events, owners): (Vec<Event>, Vec<i64>) = rows
        .into_iter()
        .map(|(row, item_id)| (Event::from_row(row), item_id))
        .unzip();
    history::resolve_names(conn, &mut events)?;
    confine_history(conn, &mut events, visibility)?;
    let entries: Vec<Activity> = events
        .into_iter()
        .zip(owners)
        .filter_map(|(event, item_id)| {
            Some(Activity {
                item: about.get(&item_id)?.clone(),
                event,
            })
        })
        .collect();
    Ok(Page::from_rows(entries, limit, |a| a.event.id))
}
