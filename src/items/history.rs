//! An item's history as the caller may see it: a requester sees the events of their own
//! organization's demands, and the key of another item named in an event only when that item
//! is visible to them too.

use diesel::prelude::*;

use crate::common::actor::Visibility;
use crate::common::db::DbConnection;
use crate::common::db::schema::items;
use crate::common::error::ApiError;
use crate::common::history::{self, Event, HistoryParams, Subject};
use crate::common::pagination::Page;
use crate::items::queries::demands_of;
use crate::items::types::{Item, ItemType};

/// One page of the history of an item the caller may see, oldest first, confined to what the
/// caller may see (see [`confine_history`]), without the events of the excluded origins.
pub fn page(
    conn: &mut DbConnection,
    key_or_id: &str,
    visibility: Visibility,
    params: &HistoryParams,
) -> Result<Page<Event>, ApiError> {
    let item = Item::row_visible(conn, key_or_id, visibility)?;
    let mut page = history::events_of(
        conn,
        Subject {
            entity_type: "item",
            entity_id: item.id,
        },
        &params.paging(),
        params.exclude_origin.as_deref().unwrap_or_default(),
    )?;
    confine_history(conn, &mut page.items, visibility)?;
    Ok(page)
}

/// Confines a page of an item's history to what the caller may see: an event that names
/// another item (by convention in `data.item`, as `linked` and `unlinked` do) keeps that key
/// for a requester only when the other item is visible to them too, a demand of their own
/// organization. Otherwise the key is left out and the event stays, so the requester still
/// sees that their demand was linked, not to what. The team sees everything.
pub(crate) fn confine_history(
    conn: &mut DbConnection,
    events: &mut [history::Event],
    visibility: Visibility,
) -> Result<(), ApiError> {
    let Visibility::Organization(org) = visibility else {
        return Ok(());
    };
    let named: Vec<String> = events
        .iter()
        .filter_map(|e| {
            e.data
                .get(history::OTHER_ITEM)?
                .as_str()
                .map(str::to_string)
        })
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    // The same rule as every other read of a requester: demands their organization raised.
    let visible: std::collections::HashSet<String> = items::table
        .filter(items::key.eq_any(&named))
        .filter(items::item_type.eq(ItemType::Demand.as_str()))
        .filter(items::id.eq_any(demands_of(org.unwrap_or(-1))))
        .select(items::key)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    for event in events.iter_mut() {
        let hidden = event
            .data
            .get(history::OTHER_ITEM)
            .is_some_and(|key| key.as_str().is_none_or(|key| !visible.contains(key)));
        if hidden && let Some(data) = event.data.as_object_mut() {
            data.remove(history::OTHER_ITEM);
        }
    }
    Ok(())
}
