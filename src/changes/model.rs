//! Reading the changes feed: a page of events after a cursor, with each event's entity key,
//! the names of the people and columns it names, and for item events the item after the change.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::common::db::DbConnection;
use crate::common::db::schema::{
    boards, events, items, organizations, rollout_entries, rollout_waves, services, sla_policies,
    users, webhook_subscriptions,
};
use crate::common::error::ApiError;
use crate::common::feed;
use crate::common::history::{self, Event, EventNames};
use crate::common::pagination::page_size;
use crate::items::types::Item;

/// The kinds of entity whose history the feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EntityType {
    /// Items (demands, tasks, incidents) with their comments, links, RACI, moves, decisions.
    Item,
    /// Online services of the catalogue, with their RACI templates.
    Service,
    /// Boards and their columns.
    Board,
    /// Users, with their API tokens.
    User,
    /// Stakeholder organizations.
    Organization,
    /// SLA policies.
    SlaPolicy,
    /// Webhook subscriptions (never their secrets).
    Webhook,
    /// Rollout entries (key `service/ADMINISTRATION`).
    Rollout,
    /// Rollout waves (key `service/wave`).
    RolloutWave,
}
text_enum!(EntityType {
    Item => "item",
    Service => "service",
    Board => "board",
    User => "user",
    Organization => "organization",
    SlaPolicy => "sla_policy",
    Webhook => "webhook",
    Rollout => "rollout",
    RolloutWave => "rollout_wave",
});

/// The longest `wait` of a long poll, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;

/// The query of `GET /api/v1/changes`. Filters combine with AND.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChangeFilter {
    /// The `next_cursor` of the previous page (or the `cursor` of `GET /changes/head`); omit
    /// to start at the beginning of the history.
    pub after: Option<String>,
    /// Events per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, example = 100)]
    pub limit: Option<i64>,
    /// Only events of these kinds of entity (comma-separated).
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20, example = "item")]
    pub entity_type: Option<Vec<EntityType>>,
    /// Only the events of this board (key): its items' events and the board's own.
    #[param(example = "OPS")]
    pub board: Option<String>,
    /// Leave out the events written with these origins (comma-separated): a sync script that
    /// writes with the origin `jira-sync` passes `exclude_origin=jira-sync` and never sees its
    /// own writes come back.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20, example = "jira-sync")]
    pub exclude_origin: Option<Vec<String>>,
    /// Long poll: when no event follows the cursor yet, wait up to this many seconds (0–30)
    /// for one to commit before answering with an empty page. No database connection is held
    /// while waiting.
    #[param(minimum = 0, maximum = 30, example = 25)]
    pub wait: Option<u64>,
}

impl ChangeFilter {
    /// The page size, validated.
    pub fn limit(&self) -> Result<i64, ApiError> {
        page_size(self.limit)
    }

    /// The long poll's wait, validated.
    pub fn wait(&self) -> Result<std::time::Duration, ApiError> {
        match self.wait {
            None => Ok(std::time::Duration::ZERO),
            Some(n) if n <= MAX_WAIT_SECS => Ok(std::time::Duration::from_secs(n)),
            Some(_) => Err(ApiError::bad_field(
                "wait",
                format!("must be between 0 and {MAX_WAIT_SECS} seconds"),
            )),
        }
    }
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeActor {
    /// The user's id; `null` for the system (the SLA breach check, the first start).
    pub id: Option<i64>,
    /// Their display name; `System` for the system.
    pub name: String,
}

/// One event of the feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "seq": 1042, "id": 1042, "at": "2026-12-04T09:15:02.114Z", "kind": "moved",
    "entity_type": "item", "entity_id": 42, "entity_key": "OPS-42",
    "actor": {"id": 3, "name": "Anna Berg"}, "origin": "jira-sync",
    "data": {"from_column": 1, "to_column": 2},
    "names": {"columns": {"1": "Backlog", "2": "In Arbeit"}},
    "item": {"id": 42, "key": "OPS-42", "type": "task", "title": "Zertifikat erneuern", "version": 4}
}))]
pub struct Change {
    /// The event's position in the feed: strictly increasing in commit order. Resume after it
    /// with the page's `next_cursor`, not with this number.
    pub seq: i64,
    /// The event's id (as in the entity's own history).
    pub id: i64,
    /// When the change was made.
    pub at: DateTime<Utc>,
    /// What happened: `created`, `updated`, `deleted`, `moved`, `commented`, `linked`,
    /// `raci_changed`, `accountable_changed`, `demand_decided`, `sla_breached`,
    /// `token_created`, … (the kinds of the entities' histories).
    pub kind: String,
    /// The kind of entity.
    pub entity_type: EntityType,
    /// The entity's id.
    pub entity_id: i64,
    /// The entity's key as people and other systems name it: `OPS-42` for an item, the key of a
    /// service or board, a user's e-mail, an organization's short name, an SLA policy's
    /// severity (with `/service` when it is a service's own). `null` once the entity is gone.
    pub entity_key: Option<String>,
    /// Who made the change.
    pub actor: ChangeActor,
    /// The origin of the write (a token's origin or the request's `X-Opsboard-Origin`), or
    /// `null`.
    pub origin: Option<String>,
    /// The event's fields, as in the entity's history: `{field: {old, new}}` for changes, the
    /// columns of a move, the comment of `commented`, …
    pub data: Value,
    /// The names of the people and columns that `data` names by id.
    #[schema(value_type = Object)]
    pub names: EventNames,
    /// For item events: the item as it was right after this change (a deleted item's
    /// tombstone for `deleted`), shaped as `GET /items/{key}` answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Item>)]
    pub item: Option<Value>,
}

/// A page of the feed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangePage {
    /// The events after the cursor, oldest first.
    pub items: Vec<Change>,
    /// Where to resume: pass it as `after`. Always set, also on an empty page (then it is the
    /// position the feed had reached, past any events the filters left out).
    pub next_cursor: String,
    /// Whether more events follow right away (the page is full); otherwise poll again later,
    /// or long-poll with `wait`.
    pub has_more: bool,
}

/// The feed's current position.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"cursor": "eyJpIjoiM2Y5YzAwIiwicyI6MTA0Mn0", "seq": 1042}))]
pub struct FeedHead {
    /// Pass as `after` to receive only the events that follow now.
    pub cursor: String,
    /// The position of the latest event (0 before the first).
    pub seq: i64,
}

/// What a cursor holds: the database it belongs to and a position in its feed.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    /// The installation id.
    i: String,
    /// The position.
    s: i64,
}

fn encode(installation: &str, seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(
        serde_json::to_vec(&Cursor {
            i: installation.to_string(),
            s: seq,
        })
        .unwrap_or_default(),
    )
}

/// The position of `after` in this database's feed: 400 naming `after` when it is no cursor,
/// 410 when it cannot be resumed here (another database's, or ahead of this one's history).
fn position(after: Option<&str>, installation: &str, head: i64) -> Result<i64, ApiError> {
    let Some(after) = after.filter(|a| !a.is_empty()) else {
        return Ok(0);
    };
    let cursor: Cursor = URL_SAFE_NO_PAD
        .decode(after)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| ApiError::bad_field("after", "is not a cursor of the changes feed"))?;
    if cursor.i != installation {
        return Err(ApiError::CursorExpired(
            "The cursor belongs to another database; start again from \
             GET /api/v1/changes/head (after taking a snapshot with GET /api/v1/items)."
                .into(),
        ));
    }
    if cursor.s < 0 || cursor.s > head {
        return Err(ApiError::CursorExpired(format!(
            "The cursor points at position {}, beyond this database's history (it ends at {head}), \
             as after a restore from a backup; start again from GET /api/v1/changes/head.",
            cursor.s
        )));
    }
    Ok(cursor.s)
}

/// The feed's current position, after numbering what has committed.
pub fn head(conn: &mut DbConnection) -> Result<FeedHead, ApiError> {
    let seq = feed::numbered_head(conn)?;
    let installation = feed::installation_id(conn)?;
    Ok(FeedHead {
        cursor: encode(&installation, seq),
        seq,
    })
}

/// An event as the feed selects it.
type ChangeRow = (history::EventRow, Option<i64>, String, i64, Option<String>);

/// One page of the feed after the filter's cursor.
pub fn page(conn: &mut DbConnection, filter: &ChangeFilter) -> Result<ChangePage, ApiError> {
    let limit = filter.limit()?;
    filter.wait()?;
    // The head first: the page covers (after, head], so that events numbered while it is read
    // come on the next page, never behind its cursor.
    let head = feed::numbered_head(conn)?;
    let installation = feed::installation_id(conn)?;
    let after = position(filter.after.as_deref(), &installation, head)?;
    let board_id = match filter.board.as_deref() {
        None => None,
        Some(key) => Some(
            boards::table
                .filter(boards::key.eq(key.trim().to_uppercase()))
                .select(boards::id)
                .first::<i64>(conn)
                .optional()?
                .ok_or_else(|| {
                    ApiError::bad_field("board", format!("there is no board `{}`", key.trim()))
                })?,
        ),
    };
    let mut query = events::table
        .filter(events::seq.gt(after).and(events::seq.le(head)))
        .order(events::seq.asc())
        .select((
            history::EVENT_COLUMNS,
            events::seq,
            events::entity_type,
            events::entity_id,
            events::item_snapshot,
        ))
        .into_boxed();
    if let Some(types) = &filter.entity_type {
        query = query.filter(events::entity_type.eq_any(types.iter().map(|t| t.as_str())));
    }
    if let Some(board) = board_id {
        let board_items = items::table
            .filter(items::board_id.eq(board))
            .select(items::id);
        query = query.filter(
            events::entity_type
                .eq(EntityType::Item.as_str())
                .and(events::entity_id.eq_any(board_items))
                .or(events::entity_type
                    .eq(EntityType::Board.as_str())
                    .and(events::entity_id.eq(board))),
        );
    }
    if let Some(origins) = filter.exclude_origin.clone().filter(|o| !o.is_empty()) {
        query = query.filter(events::origin.is_null().or(events::origin.ne_all(origins)));
    }
    let mut rows: Vec<ChangeRow> = query.limit(limit + 1).load(conn)?;
    let has_more = rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    let next = match (has_more, rows.last()) {
        (true, Some(last)) => last.1.unwrap_or(head),
        _ => head,
    };
    let changes = assemble(conn, rows)?;
    Ok(ChangePage {
        items: changes,
        next_cursor: encode(&installation, next),
        has_more,
    })
}

/// The events with these ids as the feed shows them (in id order), for the webhooks, which
/// send an event as its `data` once it has its position. Events without a position yet are
/// left out.
pub fn by_ids(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<Change>, ApiError> {
    let rows: Vec<ChangeRow> = events::table
        .filter(events::id.eq_any(ids).and(events::seq.is_not_null()))
        .order(events::id.asc())
        .select((
            history::EVENT_COLUMNS,
            events::seq,
            events::entity_type,
            events::entity_id,
            events::item_snapshot,
        ))
        .load(conn)?;
    assemble(conn, rows)
}

/// The changes of stored rows: names resolved, keys looked up and item snapshots filled in, in
/// a fixed number of queries whatever the number of events.
fn assemble(conn: &mut DbConnection, rows: Vec<ChangeRow>) -> Result<Vec<Change>, ApiError> {
    let mut events: Vec<Event> = Vec::with_capacity(rows.len());
    let mut rest = Vec::with_capacity(rows.len());
    for (event, seq, entity_type, entity_id, snapshot) in rows {
        events.push(Event::from_row(event));
        rest.push((seq, entity_type, entity_id, snapshot));
    }
    history::resolve_names(conn, &mut events)?;
    let keys = entity_keys(conn, &rest)?;
    // Events written before items kept their snapshot show the item as it is now.
    let missing: Vec<i64> = rest
        .iter()
        .filter(|(_, t, _, snapshot)| t == EntityType::Item.as_str() && snapshot.is_none())
        .map(|(_, _, id, _)| *id)
        .collect();
    let current: HashMap<i64, Value> = if missing.is_empty() {
        HashMap::new()
    } else {
        Item::snapshots(conn, &missing)?.into_iter().collect()
    };
    events
        .into_iter()
        .zip(rest)
        .map(|(event, (seq, entity_type, entity_id, snapshot))| {
            let kind = EntityType::parse(&entity_type).ok_or_else(|| {
                ApiError::internal(format!("event {} has entity type {entity_type}", event.id))
            })?;
            let item = match kind {
                EntityType::Item => match snapshot {
                    Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                        ApiError::internal(format!("snapshot of event {}: {e}", event.id))
                    })?),
                    None => current.get(&entity_id).cloned(),
                },
                _ => None,
            };
            Ok(Change {
                seq: seq.unwrap_or(event.id),
                id: event.id,
                at: event.created_at,
                kind: event.kind,
                entity_type: kind,
                entity_id,
                entity_key: keys.get(&(kind, entity_id)).cloned(),
                actor: ChangeActor {
                    id: event.actor_id,
                    name: event.actor_name,
                },
                origin: event.origin,
                data: event.data,
                names: event.names,
                item,
            })
        })
        .collect()
}

/// The keys of the entities the events are about, one query per kind of entity present.
fn entity_keys(
    conn: &mut DbConnection,
    rows: &[(Option<i64>, String, i64, Option<String>)],
) -> Result<HashMap<(EntityType, i64), String>, ApiError> {
    let mut ids: HashMap<EntityType, Vec<i64>> = HashMap::new();
    for (_, entity_type, entity_id, _) in rows {
        if let Some(kind) = EntityType::parse(entity_type) {
            ids.entry(kind).or_default().push(*entity_id);
        }
    }
    let mut keys = HashMap::new();
    for (kind, mut ids) in ids {
        ids.sort_unstable();
        ids.dedup();
        let found: Vec<(i64, String)> = match kind {
            EntityType::Item => items::table
                .filter(items::id.eq_any(&ids))
                .select((items::id, items::key))
                .load(conn)?,
            EntityType::Service => services::table
                .filter(services::id.eq_any(&ids))
                .select((services::id, services::key))
                .load(conn)?,
            EntityType::Board => boards::table
                .filter(boards::id.eq_any(&ids))
                .select((boards::id, boards::key))
                .load(conn)?,
            EntityType::User => users::table
                .filter(users::id.eq_any(&ids))
                .select((users::id, users::email))
                .load(conn)?,
            EntityType::Organization => organizations::table
                .filter(organizations::id.eq_any(&ids))
                .select((organizations::id, organizations::short_name))
                .load(conn)?,
            EntityType::SlaPolicy => sla_policies::table
                .left_join(services::table)
                .filter(sla_policies::id.eq_any(&ids))
                .select((
                    sla_policies::id,
                    sla_policies::severity,
                    services::key.nullable(),
                ))
                .load::<(i64, String, Option<String>)>(conn)?
                .into_iter()
                .map(|(id, severity, service)| match service {
                    Some(service) => (id, format!("{severity}/{service}")),
                    None => (id, severity),
                })
                .collect(),
            EntityType::Webhook => webhook_subscriptions::table
                .filter(webhook_subscriptions::id.eq_any(&ids))
                .select(webhook_subscriptions::id)
                .load::<i64>(conn)?
                .into_iter()
                .map(|id| (id, id.to_string()))
                .collect(),
            EntityType::Rollout => rollout_entries::table
                .inner_join(services::table)
                .inner_join(organizations::table)
                .filter(rollout_entries::id.eq_any(&ids))
                .select((
                    rollout_entries::id,
                    services::key,
                    organizations::short_name,
                ))
                .load::<(i64, String, String)>(conn)?
                .into_iter()
                .map(|(id, service, administration)| (id, format!("{service}/{administration}")))
                .collect(),
            EntityType::RolloutWave => rollout_waves::table
                .inner_join(services::table)
                .filter(rollout_waves::id.eq_any(&ids))
                .select((rollout_waves::id, services::key, rollout_waves::name))
                .load::<(i64, String, String)>(conn)?
                .into_iter()
                .map(|(id, service, wave)| (id, format!("{service}/{wave}")))
                .collect(),
        };
        keys.extend(found.into_iter().map(|(id, key)| ((kind, id), key)));
    }
    Ok(keys)
}
