//! Links between items (blocks, relates, duplicates): stored once, shown from either end.
//! Making or removing a link writes an event into both items' histories.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::common::actor::Actor;
use crate::common::db::schema::{item_links, items};
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;
use crate::common::history::{self, Subject};
use crate::items::types::Item;

/// How two items are linked, as seen from one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// This item blocks the other.
    Blocks,
    /// The other item blocks this one.
    BlockedBy,
    /// The two are related.
    Relates,
    /// This item duplicates the other.
    Duplicates,
    /// The other item duplicates this one.
    DuplicatedBy,
}

impl LinkKind {
    /// The stored kind and whether this item is the stored source.
    fn stored(self) -> (&'static str, bool) {
        match self {
            Self::Blocks => ("blocks", true),
            Self::BlockedBy => ("blocks", false),
            Self::Relates => ("relates", true),
            Self::Duplicates => ("duplicates", true),
            Self::DuplicatedBy => ("duplicates", false),
        }
    }

    fn seen_from(kind: &str, is_source: bool) -> Self {
        match (kind, is_source) {
            ("blocks", true) => Self::Blocks,
            ("blocks", false) => Self::BlockedBy,
            ("duplicates", true) => Self::Duplicates,
            ("duplicates", false) => Self::DuplicatedBy,
            _ => Self::Relates,
        }
    }
}

/// A link as seen from one item.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Link {
    /// The link's id (the same from both ends).
    pub id: i64,
    /// How this item relates to the other.
    pub kind: LinkKind,
    /// The other item's key.
    pub item: String,
    /// The other item's title.
    pub title: String,
    /// When the link was made.
    pub created_at: DateTime<Utc>,
}

/// The body of `POST /api/v1/items/{key}/links`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"kind": "blocks", "item": "OPS-7"}))]
pub struct NewLink {
    /// How this item relates to the other.
    pub kind: LinkKind,
    /// The other item's key or id.
    pub item: String,
}

fn links_of(conn: &mut DbConnection, item_id: i64) -> Result<Vec<Link>, ApiError> {
    let rows: Vec<(i64, i64, i64, String, NaiveDateTime)> = item_links::table
        .filter(
            item_links::source_id
                .eq(item_id)
                .or(item_links::target_id.eq(item_id)),
        )
        .order(item_links::id)
        .select((
            item_links::id,
            item_links::source_id,
            item_links::target_id,
            item_links::kind,
            item_links::created_at,
        ))
        .load(conn)?;
    let others: Vec<i64> = rows
        .iter()
        .map(|r| if r.1 == item_id { r.2 } else { r.1 })
        .collect();
    let names: std::collections::HashMap<i64, (String, String)> = items::table
        .filter(items::id.eq_any(&others).and(items::deleted_at.is_null()))
        .select((items::id, items::key, items::title))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, key, title)| (id, (key, title)))
        .collect();
    Ok(rows
        .into_iter()
        .filter_map(|(id, source, target, kind, created_at)| {
            let is_source = source == item_id;
            let other = if is_source { target } else { source };
            names.get(&other).map(|(key, title)| Link {
                id,
                kind: LinkKind::seen_from(&kind, is_source),
                item: key.clone(),
                title: title.clone(),
                created_at: created_at.and_utc(),
            })
        })
        .collect())
}

/// An item's links, each from its side; links to deleted items are left out.
pub fn list(conn: &mut DbConnection, key_or_id: &str) -> Result<Vec<Link>, ApiError> {
    let item = Item::row(conn, key_or_id)?;
    links_of(conn, item.id)
}

/// Links an item to another, once (a link that exists from either end is a 409), with a
/// `linked` event in both histories; returns the link from this item's side.
pub fn add(
    conn: &mut DbConnection,
    key_or_id: &str,
    input: &NewLink,
    actor: &Actor,
) -> Result<Link, ApiError> {
    let this = Item::row(conn, key_or_id)?;
    let other = Item::row(conn, &input.item)
        .map_err(|_| ApiError::invalid("item", format!("there is no item `{}`", input.item)))?;
    if other.id == this.id {
        return Err(ApiError::invalid(
            "item",
            "an item cannot be linked to itself",
        ));
    }
    let (kind, this_is_source) = input.kind.stored();
    let (source, target) = if this_is_source {
        (this.id, other.id)
    } else {
        (other.id, this.id)
    };
    let mut existing = item_links::table
        .filter(item_links::kind.eq(kind))
        .filter(
            item_links::source_id
                .eq(source)
                .and(item_links::target_id.eq(target)),
        )
        .select(item_links::id)
        .into_boxed();
    if kind == "relates" {
        existing = existing.or_filter(
            item_links::kind
                .eq(kind)
                .and(item_links::source_id.eq(target))
                .and(item_links::target_id.eq(source)),
        );
    }
    if existing.first::<i64>(conn).optional()?.is_some() {
        return Err(ApiError::Conflict(format!(
            "{} and {} are linked this way already.",
            this.key, other.key
        )));
    }
    let id: i64 = diesel::insert_into(item_links::table)
        .values((
            item_links::source_id.eq(source),
            item_links::target_id.eq(target),
            item_links::kind.eq(kind),
            item_links::created_by.eq(actor.user_id),
            item_links::created_at.eq(now()),
        ))
        .returning(item_links::id)
        .get_result(conn)?;
    for (subject, seen) in [
        (this.id, input.kind),
        (other.id, LinkKind::seen_from(kind, !this_is_source)),
    ] {
        let with = if subject == this.id {
            &other.key
        } else {
            &this.key
        };
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: subject,
            },
            "linked",
            actor,
            json!({"link": id, "kind": seen, "item": with}),
        )?;
    }
    links_of(conn, this.id)?
        .into_iter()
        .find(|l| l.id == id)
        .ok_or_else(|| ApiError::internal("link vanished"))
}

/// Removes a link of an item (from either end), with an `unlinked` event in both histories.
pub fn delete(
    conn: &mut DbConnection,
    key_or_id: &str,
    id: i64,
    actor: &Actor,
) -> Result<(), ApiError> {
    let item = Item::row(conn, key_or_id)?;
    let link: Option<(i64, i64, String)> = item_links::table
        .filter(item_links::id.eq(id))
        .filter(
            item_links::source_id
                .eq(item.id)
                .or(item_links::target_id.eq(item.id)),
        )
        .select((
            item_links::source_id,
            item_links::target_id,
            item_links::kind,
        ))
        .first(conn)
        .optional()?;
    let Some((source, target, kind)) = link else {
        return Err(ApiError::NotFound(format!(
            "Item {} has no link {id}.",
            item.key
        )));
    };
    diesel::delete(item_links::table.find(id)).execute(conn)?;
    // Each side's event names the other end, as `linked` does.
    let keys: std::collections::HashMap<i64, String> = items::table
        .filter(items::id.eq_any([source, target]))
        .select((items::id, items::key))
        .load::<(i64, String)>(conn)?
        .into_iter()
        .collect();
    for (subject, other) in [(source, target), (target, source)] {
        history::record(
            conn,
            Subject {
                entity_type: "item",
                entity_id: subject,
            },
            "unlinked",
            actor,
            json!({"link": id, "kind": kind, "item": keys.get(&other)}),
        )?;
    }
    Ok(())
}
