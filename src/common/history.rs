//! The append-only history: every mutation writes one event in the same transaction, so that
//! nothing changes without a trace and the flow metrics have a single source.

use diesel::prelude::*;
use serde_json::Value;

use crate::common::actor::Actor;
use crate::common::db::schema::events;
use crate::common::db::{DbConnection, Wrote, now};
use crate::common::error::ApiError;

/// What an event is about.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// The kind of entity, `user`, `item`, …
    pub entity_type: &'a str,
    /// Its id.
    pub entity_id: i64,
}

/// Appends one event by `actor`, with its token and origin. Call it inside the transaction of
/// the change it describes; an item event gets the item as it stands at the end of that
/// transaction ([`finish_transaction`]), which the changes feed shows beside it.
pub fn record(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    kind: &str,
    actor: &Actor,
    data: Value,
) -> Result<(), ApiError> {
    record_at(conn, subject, kind, actor, data, now())
}

/// Like [`record`], for a change that happened at `at`: what an import of another system's
/// history writes (a JIRA status change keeps its time). The feed still shows it at its own
/// position: `seq` is the order in which opsboard learnt of it.
pub fn record_at(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    kind: &str,
    actor: &Actor,
    data: Value,
    at: chrono::NaiveDateTime,
) -> Result<(), ApiError> {
    write_event(conn, subject, kind, actor, data, at, Told::default())
}

/// Like [`record`], for an item event after which the writer holds the item's state as the
/// API shows it (its last event in this transaction): the snapshot is written with the event
/// rather than added at commit, one statement fewer. An event of the item recorded later in
/// the transaction brings every one of its events to the final state as usual.
pub fn record_item_in_state(
    conn: &mut DbConnection,
    item_id: i64,
    kind: &str,
    actor: &Actor,
    data: Value,
    state: Value,
) -> Result<(), ApiError> {
    let told = Told {
        state: Some(state),
        arrival: None,
    };
    write_item_event(conn, item_id, kind, actor, data, told)
}

/// Like [`record_item_in_state`], for the `created` event of a new item whose creator knows
/// where it stands: the data derived from the history takes the item's board, column and
/// creation time from `arrival` rather than reading them back inside the transaction.
pub fn record_item_created(
    conn: &mut DbConnection,
    item_id: i64,
    actor: &Actor,
    data: Value,
    state: Value,
    arrival: Arrival,
) -> Result<(), ApiError> {
    let told = Told {
        state: Some(state),
        arrival: Some(arrival),
    };
    write_item_event(conn, item_id, "created", actor, data, told)
}

/// An event of item `item_id`, now, with what its writer told of the item.
fn write_item_event(
    conn: &mut DbConnection,
    item_id: i64,
    kind: &str,
    actor: &Actor,
    data: Value,
    told: Told,
) -> Result<(), ApiError> {
    let subject = Subject {
        entity_type: ITEM,
        entity_id: item_id,
    };
    write_event(conn, subject, kind, actor, data, now(), told)
}

/// What the writer of an item event holds of the item after it.
#[derive(Default)]
struct Told {
    /// The item as the API shows it.
    state: Option<Value>,
    /// Where a new item stands.
    arrival: Option<Arrival>,
}

fn write_event(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    kind: &str,
    actor: &Actor,
    data: Value,
    at: chrono::NaiveDateTime,
    told: Told,
) -> Result<(), ApiError> {
    let Told { state, arrival } = told;
    let event = NewEvent {
        entity_type: subject.entity_type,
        entity_id: subject.entity_id,
        kind,
        actor_id: actor.user_id,
        data: data.to_string(),
        created_at: at,
        origin: actor.origin.as_deref(),
        token_id: actor.token_id,
        item_snapshot: state.as_ref().map(Value::to_string),
    };
    // A new item's first stay and flow are written in the event's statement where the
    // reports' writer can (one round trip fewer under the board's lock); else at commit.
    let written_with = match (arrival, ARRIVAL_WRITER.get(), &mut *conn) {
        (Some(arrival), Some(writer), DbConnection::Postgresql(pg)) => {
            Some(writer(pg, &event, &arrival)?)
        }
        _ => None,
    };
    let id: i64 = match written_with {
        Some(id) => id,
        None => event.get_result(conn)?,
    };
    if let Some(observer) = observer_wants(conn)? {
        (observer.observe)(
            conn,
            &WrittenEvent {
                id,
                entity_type: subject.entity_type,
                entity_id: subject.entity_id,
                kind,
            },
        )?;
    }
    PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.written += 1;
        if subject.entity_type == ITEM {
            pending.items.push((id, subject.entity_id));
            // A state told before this event is no longer the item's last.
            pending.known.retain(|(item, _)| *item != subject.entity_id);
            pending
                .stored
                .retain(|(_, item)| *item != subject.entity_id);
            if let Some(state) = state {
                pending.known.push((subject.entity_id, state));
                pending.stored.push((id, subject.entity_id));
            }
            match (written_with, arrival) {
                // Its derived data went with the event.
                (Some(_), _) => {}
                (None, Some(arrival)) => pending.flow_events.push(FlowEvent {
                    item_id: subject.entity_id,
                    change: FlowChange::Arrived(arrival),
                    at,
                }),
                (None, None) if FLOW_KINDS.contains(&kind) => pending
                    .flow_events
                    .push(FlowEvent::of(subject.entity_id, kind, &data, at)),
                (None, None) => {}
            }
        }
    });
    Ok(())
}

/// A history event as it is inserted, `RETURNING` its id: the statement every event is
/// written with, and the part of the reports' statement that writes a new item's first stay
/// and flow beside its `created` event ([`ArrivalWriter`]). Prepared once per connection
/// ([`crate::prepared_statement`]).
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    entity_type: &'a str,
    entity_id: i64,
    kind: &'a str,
    actor_id: Option<i64>,
    data: String,
    created_at: chrono::NaiveDateTime,
    origin: Option<&'a str>,
    token_id: Option<i64>,
    item_snapshot: Option<String>,
}

impl NewEvent<'_> {
    /// The id of the entity it is about (an item event's item).
    pub fn entity_id(&self) -> i64 {
        self.entity_id
    }

    /// When the event happened.
    pub fn at(&self) -> chrono::NaiveDateTime {
        self.created_at
    }
}

impl<DB> diesel::query_builder::QueryFragment<DB> for NewEvent<'_>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Timestamp>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
    str: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    chrono::NaiveDateTime: diesel::serialize::ToSql<diesel::sql_types::Timestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Nullable, Text, Timestamp};
        out.push_sql(
            "INSERT INTO events (entity_type, entity_id, kind, actor_id, data, created_at, \
             origin, token_id, item_snapshot) VALUES (",
        );
        out.push_bind_param::<Text, _>(self.entity_type)?;
        out.push_sql(", ");
        out.push_bind_param::<BigInt, _>(&self.entity_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(self.kind)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.actor_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.data)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamp, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.origin)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<BigInt>, _>(&self.token_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.item_snapshot)?;
        out.push_sql(") RETURNING id");
        Ok(())
    }
}

crate::prepared_statement!(NewEvent<'_>, returns diesel::sql_types::BigInt);

/// Writes a new item's `created` event together with the data its arrival derives, in one
/// PostgreSQL statement (the event's insert inside a data-modifying `WITH`), and returns the
/// event's id. The reports feature provides it (see [`register_arrival_writer`]): the kernel
/// cannot know the derived tables, and they are written at commit otherwise.
pub type ArrivalWriter =
    fn(&mut diesel::pg::PgConnection, &NewEvent<'_>, &Arrival) -> Result<i64, ApiError>;

static ARRIVAL_WRITER: std::sync::OnceLock<ArrivalWriter> = std::sync::OnceLock::new();

/// Registers the writer of a new item's derived data beside its event; the app does it once,
/// before the first write.
pub fn register_arrival_writer(write: ArrivalWriter) {
    let _ = ARRIVAL_WRITER.set(write);
}

/// An event just written, as its observer sees it.
#[derive(Debug, Clone, Copy)]
pub struct WrittenEvent<'a> {
    /// The event's id.
    pub id: i64,
    /// The kind of entity it is about.
    pub entity_type: &'a str,
    /// The entity's id.
    pub entity_id: i64,
    /// What happened.
    pub kind: &'a str,
}

/// What runs beside every event as it is written, inside its transaction: the webhooks'
/// outbox (one delivery per matching subscription, committed with the event or not at all).
/// A feature provides it (see [`register_event_observer`]).
#[derive(Debug, Clone, Copy)]
pub struct EventObserver {
    /// Whether the observer has anything to do with the events written now (one cheap read;
    /// the outbox asks whether any subscription is active). Asked once per transaction, at
    /// its first event or earlier through [`look_ahead`].
    pub wants: fn(&mut DbConnection) -> Result<bool, ApiError>,
    /// Its work for one event, when it [`wants`](Self::wants) events.
    pub observe: fn(&mut DbConnection, &WrittenEvent<'_>) -> Result<(), ApiError>,
}

static EVENT_OBSERVER: std::sync::OnceLock<EventObserver> = std::sync::OnceLock::new();

/// Registers the observer of written events; the app does it once, before the first write.
pub fn register_event_observer(observer: EventObserver) {
    // The same functions every time: a second registration changes nothing.
    let _ = EVENT_OBSERVER.set(observer);
}

/// Asks the event observer now whether it wants this transaction's events, rather than at
/// the first event: for a writer about to take a lock that other writers queue behind, so
/// that the question is not one more round trip while they wait (an item's creation asks
/// before it claims its board's next number). The answer holds for the rest of the
/// transaction, as it would from its first event.
pub fn look_ahead(conn: &mut DbConnection) -> Result<(), ApiError> {
    observer_wants(conn).map(|_| ())
}

/// The observer's answer for this transaction, asked once ([`EventObserver::wants`]).
fn observer_wants(conn: &mut DbConnection) -> Result<Option<EventObserver>, ApiError> {
    let Some(observer) = EVENT_OBSERVER.get() else {
        return Ok(None);
    };
    if let Some(wants) = PENDING.with(|pending| pending.borrow().observer_wants) {
        return Ok(wants.then_some(*observer));
    }
    let wants = (observer.wants)(conn)?;
    PENDING.with(|pending| pending.borrow_mut().observer_wants = Some(wants));
    Ok(wants.then_some(*observer))
}

/// The entity type of items' events.
pub const ITEM: &str = "item";

/// Builds what the changes feed shows of items after a change: for each id, the item as the
/// API shows it (a deleted item's tombstone included), as JSON. The items feature provides it
/// (see [`register_item_snapshots`]); the kernel cannot know the item's shape.
pub type ItemSnapshots = fn(&mut DbConnection, &[i64]) -> Result<Vec<(i64, Value)>, ApiError>;

static ITEM_SNAPSHOTS: std::sync::OnceLock<ItemSnapshots> = std::sync::OnceLock::new();

/// The kinds of item events that change where an item stands, and with it the data the
/// reports derive from the history (each item's column intervals, start and finish).
pub const FLOW_KINDS: &[&str] = &["created", "moved", "deleted"];

/// What an item's event of [`FLOW_KINDS`] says about where the item stands: what the data
/// derived from the history needs of it, so that it need not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowEvent {
    /// The item.
    pub item_id: i64,
    /// What happened.
    pub change: FlowChange,
    /// When (the event's time; an import's may lie in the past).
    pub at: chrono::NaiveDateTime,
}

/// Where a new item stands and since when, as its creator knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Its board.
    pub board_id: i64,
    /// Its first column.
    pub column_id: i64,
    /// The column's category, as stored (`todo`, `in_progress`, `done`).
    pub category: &'static str,
    /// The item's `created_at`.
    pub created_at: chrono::NaiveDateTime,
}

/// The change of a [`FlowEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowChange {
    /// Created, in this column (`None`: the event does not say).
    Created(Option<i64>),
    /// Created where its creator knew it to stand ([`record_item_created`]).
    Arrived(Arrival),
    /// Moved to this column.
    Moved(Option<i64>),
    /// Deleted.
    Deleted,
    /// The item's earlier events were rewritten in place (an import dating its creation back,
    /// [`events_rewritten`]): its derived data is to be recomputed from the history.
    Rewritten,
}

impl FlowEvent {
    /// The flow event of an item event of kind `kind` (one of [`FLOW_KINDS`]) with `data`.
    fn of(item_id: i64, kind: &str, data: &Value, at: chrono::NaiveDateTime) -> FlowEvent {
        let change = match kind {
            "created" => FlowChange::Created(data["column"].as_i64()),
            "moved" => FlowChange::Moved(data["to_column"].as_i64()),
            _ => FlowChange::Deleted,
        };
        FlowEvent {
            item_id,
            change,
            at,
        }
    }
}

/// Tells the history that an item's events of [`FLOW_KINDS`] were changed in place in this
/// transaction (not appended): the derived data of the item is recomputed from what is stored
/// rather than brought up to date from the events written.
pub fn events_rewritten(item_id: i64) {
    PENDING.with(|pending| {
        pending.borrow_mut().flow_events.push(FlowEvent {
            item_id,
            change: FlowChange::Rewritten,
            at: now(),
        });
    });
}

/// Brings the data derived from items' history up to date after the given events (in the
/// order written), inside the transaction that wrote them. The reports feature provides it
/// (see [`register_item_derived`]).
pub type ItemDerived = fn(&mut DbConnection, &[FlowEvent]) -> Result<(), ApiError>;

static ITEM_DERIVED: std::sync::OnceLock<ItemDerived> = std::sync::OnceLock::new();

/// Registers the updater of derived item data; the app does it once, before the first write.
pub fn register_item_derived(update: ItemDerived) {
    let _ = ITEM_DERIVED.set(update);
}

/// Registers the builder of item snapshots; the app does it once, before the first write.
pub fn register_item_snapshots(build: ItemSnapshots) {
    // The same function every time: a second registration changes nothing.
    let _ = ITEM_SNAPSHOTS.set(build);
}

/// What the transaction running on this thread has recorded so far.
#[derive(Default)]
struct Pending {
    /// Events written.
    written: usize,
    /// Item events, as (event id, item id), whose snapshot is still to be taken.
    items: Vec<(i64, i64)>,
    /// Items whose state after their last event the writer already holds (see
    /// [`record_item_in_state`]): their snapshot needs no rebuilding.
    known: Vec<(i64, Value)>,
    /// Item events written with the item's known state as their snapshot, as (event id, item
    /// id): while that state is the item's last, they need no update.
    stored: Vec<(i64, i64)>,
    /// The item events of [`FLOW_KINDS`], in the order written: the derived data is to be
    /// brought up to date after them.
    flow_events: Vec<FlowEvent>,
    /// Whether the event observer wants this transaction's events, once asked.
    observer_wants: Option<bool>,
}

thread_local! {
    static PENDING: std::cell::RefCell<Pending> = std::cell::RefCell::default();
}

/// The history's part in every write transaction: [`begin_transaction`] and
/// [`finish_transaction`], for [`crate::common::db::Db::with_hooks`].
pub const TRANSACTION_HOOKS: crate::common::db::TransactionHooks =
    crate::common::db::TransactionHooks {
        begin: begin_transaction,
        before_commit: finish_transaction,
    };

/// Runs `work` in a transaction on a connection already held (start-up, the command line, the
/// demo loader), with the history's bookkeeping as in [`crate::common::db::Db::transaction`].
/// Not for use inside another transaction.
pub fn in_transaction<T, E>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<ApiError> + From<diesel::result::Error>,
{
    use diesel::Connection;
    conn.transaction(|conn| {
        begin_transaction();
        let value = work(conn)?;
        finish_transaction(conn)?;
        Ok(value)
    })
}

/// Forgets what an earlier, abandoned transaction on this thread recorded. Called when a write
/// transaction begins ([`crate::common::db::Db::transaction`]).
pub fn begin_transaction() {
    PENDING.with(|pending| *pending.borrow_mut() = Pending::default());
}

/// Completes the events of the transaction about to commit: stores, for each item event, the
/// item as it now stands (the same state for every event of one item in one transaction: no
/// reader can see anything in between). Tells how many events the transaction wrote, and
/// whether the event observer took them. Call it last inside the transaction;
/// [`crate::common::db::Db::transaction`] does (through [`TRANSACTION_HOOKS`]).
pub fn finish_transaction(conn: &mut DbConnection) -> Result<Wrote, ApiError> {
    let pending = PENDING.with(|pending| std::mem::take(&mut *pending.borrow_mut()));
    let wrote = Wrote {
        events: pending.written,
        observed: pending.written > 0 && pending.observer_wants == Some(true),
    };
    if let Some(update) = ITEM_DERIVED.get()
        && !pending.flow_events.is_empty()
    {
        update(conn, &pending.flow_events)?;
    }
    let Some(build) = ITEM_SNAPSHOTS.get() else {
        return Ok(wrote);
    };
    if pending.items.is_empty() {
        return Ok(wrote);
    }
    let mut item_ids: Vec<i64> = pending
        .items
        .iter()
        .map(|(_, item)| *item)
        .filter(|item| !pending.known.iter().any(|(known, _)| known == item))
        .collect();
    item_ids.sort_unstable();
    item_ids.dedup();
    let mut snapshots = if item_ids.is_empty() {
        Vec::new()
    } else {
        build(conn, &item_ids)?
    };
    let items = &pending.items;
    snapshots.extend(
        pending
            .known
            .into_iter()
            .filter(|(known, _)| items.iter().any(|(_, item)| item == known)),
    );
    for (item_id, snapshot) in snapshots {
        let event_ids: Vec<i64> = pending
            .items
            .iter()
            .filter(|(_, item)| *item == item_id)
            .map(|(event, _)| *event)
            .filter(|event| !pending.stored.iter().any(|(stored, _)| stored == event))
            .collect();
        if event_ids.is_empty() {
            continue;
        }
        diesel::update(events::table.filter(events::id.eq_any(&event_ids)))
            .set(events::item_snapshot.eq(snapshot.to_string()))
            .execute(conn)?;
    }
    Ok(wrote)
}

/// What a change did to an entity's fields, as the `data` of an `updated` event:
/// `{field: {"old": …, "new": …}}` for each field whose value differs, in the order noted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff(serde_json::Map<String, Value>);

impl Diff {
    /// No change yet.
    pub fn new() -> Diff {
        Diff::default()
    }

    /// Notes `field` when `old` and `new` differ (as JSON); an equal pair is no change.
    pub fn field(&mut self, field: &str, old: impl serde::Serialize, new: impl serde::Serialize) {
        let (old, new) = (json(old), json(new));
        if old != new {
            self.0.insert(
                field.to_string(),
                serde_json::json!({"old": old, "new": new}),
            );
        }
    }

    /// Notes every top-level field in which the JSON objects `old` and `new` differ, named
    /// `<prefix>.<field>` when a prefix is given (`demand.value`).
    pub fn fields_of(&mut self, prefix: Option<&str>, old: &Value, new: &Value) {
        if let Some(new) = new.as_object() {
            for (field, value) in new {
                let name = match prefix {
                    Some(prefix) => format!("{prefix}.{field}"),
                    None => field.clone(),
                };
                self.field(&name, old.get(field), value);
            }
        }
    }

    /// Adds the changes of `other` (the fields stored beside the entity).
    pub fn extend(&mut self, other: Diff) {
        self.0.extend(other.0);
    }

    /// Notes a fact about the change that is not an old/new pair, such as
    /// `password: {"changed": true}` where the values must not be written down.
    pub fn note(&mut self, field: &str, value: Value) {
        self.0.insert(field.to_string(), value);
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `field` changed.
    pub fn touches(&self, field: &str) -> bool {
        self.0.contains_key(field)
    }

    /// The event's `data`.
    pub fn into_data(self) -> Value {
        Value::Object(self.0)
    }
}

fn json(value: impl serde::Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// The field of an event's `data` that names another item (its key), as `linked` and
/// `unlinked` do. Reads confine it: a requester sees it only for items visible to them.
pub const OTHER_ITEM: &str = "item";

/// One entry of an entity's history.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Increasing id; the order of events.
    pub id: i64,
    /// What happened: `created`, `updated`, `moved`, `raci_changed`, `accountable_changed`,
    /// `deleted`, …
    pub kind: String,
    /// Who did it (`null` for the system).
    pub actor_id: Option<i64>,
    /// Who did it, as a person reads it: the actor's display name, `System` for the system.
    pub actor_name: String,
    /// Where the write came from, such as `jira-sync`: the origin of the API token it was made
    /// with, or the `X-Opsboard-Origin` header of the request; `null` when none was named.
    pub origin: Option<String>,
    /// The details: for changes `{field: {old, new}}`; for moves the columns; for links the
    /// other item's key in `item`, which a requester sees only when that item is visible to
    /// them (a demand of their own organization).
    pub data: Value,
    /// The names of the people and columns that `data` names by id, for reading:
    /// `{"users": {"3": "Anna Berg"}, "columns": {"1": "Backlog", "2": "In Arbeit"}}`.
    #[schema(value_type = Object)]
    pub names: EventNames,
    /// When it happened.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// The names of the ids an event's `data` holds, keyed by the id as text.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EventNames {
    /// Users by id: RACI roles, the accountable person's change, a hand-over's replacement.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub users: std::collections::BTreeMap<String, String>,
    /// Columns by id: a move's `from_column` and `to_column`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub columns: std::collections::BTreeMap<String, String>,
}

/// The name the history shows for the system's own writes.
pub const SYSTEM_NAME: &str = "System";

/// The user and column ids that an event's `data` names, by the conventions its writers
/// follow: columns in `from_column`/`to_column`; people in `accountable`, `responsible`,
/// `consulted`, `informed` and `replacement`, also inside `old`/`new`, and the `old`/`new` of
/// the kind that is about one person (`accountable_changed`).
fn named_ids(kind: &str, data: &Value, users: &mut Vec<i64>, columns: &mut Vec<i64>) {
    const PEOPLE: [&str; 5] = [
        "accountable",
        "responsible",
        "consulted",
        "informed",
        "replacement",
    ];
    fn ids(value: &Value, into: &mut Vec<i64>) {
        match value {
            Value::Number(n) => into.extend(n.as_i64()),
            Value::Array(list) => into.extend(list.iter().filter_map(Value::as_i64)),
            Value::Object(pair) => {
                for side in ["old", "new"] {
                    if let Some(v) = pair.get(side) {
                        ids(v, into);
                    }
                }
            }
            _ => {}
        }
    }
    for field in ["from_column", "to_column"] {
        columns.extend(data.get(field).and_then(Value::as_i64));
    }
    for field in PEOPLE {
        if let Some(value) = data.get(field) {
            ids(value, users);
        }
        for side in ["old", "new"] {
            if let Some(value) = data.get(side).and_then(|v| v.get(field)) {
                ids(value, users);
            }
        }
    }
    if kind == "accountable_changed" {
        for side in ["old", "new"] {
            users.extend(data.get(side).and_then(Value::as_i64));
        }
    }
}

/// Fills in `actor_name` and `names` of `events` in two queries whatever their number: the
/// people, then the columns they name.
pub fn resolve_names(conn: &mut DbConnection, events: &mut [Event]) -> Result<(), ApiError> {
    use crate::common::db::schema::{board_columns, users};
    let (mut user_ids, mut column_ids) = (Vec::new(), Vec::new());
    for event in events.iter() {
        user_ids.extend(event.actor_id);
        named_ids(&event.kind, &event.data, &mut user_ids, &mut column_ids);
    }
    user_ids.sort_unstable();
    user_ids.dedup();
    column_ids.sort_unstable();
    column_ids.dedup();
    let people: std::collections::HashMap<i64, String> = if user_ids.is_empty() {
        Default::default()
    } else {
        users::table
            .filter(users::id.eq_any(&user_ids))
            .select((users::id, users::display_name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect()
    };
    let columns: std::collections::HashMap<i64, String> = if column_ids.is_empty() {
        Default::default()
    } else {
        board_columns::table
            .filter(board_columns::id.eq_any(&column_ids))
            .select((board_columns::id, board_columns::name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect()
    };
    for event in events.iter_mut() {
        event.actor_name = match event.actor_id {
            Some(id) => people
                .get(&id)
                .cloned()
                .unwrap_or_else(|| format!("user {id}")),
            None => SYSTEM_NAME.to_string(),
        };
        let (mut users_named, mut columns_named) = (Vec::new(), Vec::new());
        named_ids(
            &event.kind,
            &event.data,
            &mut users_named,
            &mut columns_named,
        );
        let mut names = EventNames::default();
        for id in users_named {
            if let Some(name) = people.get(&id) {
                names.users.insert(id.to_string(), name.clone());
            }
        }
        for id in columns_named {
            if let Some(name) = columns.get(&id) {
                names.columns.insert(id.to_string(), name.clone());
            }
        }
        event.names = names;
    }
    Ok(())
}

/// An event as stored: id, kind, actor, data, time, origin.
pub type EventRow = (
    i64,
    String,
    Option<i64>,
    String,
    chrono::NaiveDateTime,
    Option<String>,
);

/// The columns an [`EventRow`] is selected from, in its order: every reader of events
/// (an entity's history, the activity stream) selects these.
pub const EVENT_COLUMNS: (
    events::id,
    events::kind,
    events::actor_id,
    events::data,
    events::created_at,
    events::origin,
) = (
    events::id,
    events::kind,
    events::actor_id,
    events::data,
    events::created_at,
    events::origin,
);

impl Event {
    /// The event of a stored row, its names not yet resolved (see [`resolve_names`]).
    pub fn from_row((id, kind, actor_id, data, created_at, origin): EventRow) -> Event {
        Event {
            id,
            kind,
            actor_id,
            actor_name: String::new(),
            origin,
            data: serde_json::from_str(&data).unwrap_or(Value::Null),
            names: EventNames::default(),
            created_at: created_at.and_utc(),
        }
    }
}

/// The paging and origin filter of an entity's history (`GET /items/{key}/history`).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// Events per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, example = 50)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
    /// Leave out the events written with these origins (comma-separated, such as
    /// `jira-sync`): a sync script skips its own writes.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20, example = "jira-sync")]
    pub exclude_origin: Option<Vec<String>>,
}

impl HistoryParams {
    /// The paging part.
    pub fn paging(&self) -> crate::common::pagination::PageParams {
        crate::common::pagination::PageParams {
            limit: self.limit,
            cursor: self.cursor.clone(),
        }
    }
}

/// One page of an entity's events, oldest first, with the names of whom and what they name;
/// without the events of the origins in `exclude_origin`.
pub fn events_of(
    conn: &mut DbConnection,
    subject: Subject<'_>,
    paging: &crate::common::pagination::PageParams,
    exclude_origin: &[String],
) -> Result<crate::common::pagination::Page<Event>, ApiError> {
    let limit = paging.limit()?;
    let mut query = events::table
        .filter(
            events::entity_type
                .eq(subject.entity_type)
                .and(events::entity_id.eq(subject.entity_id)),
        )
        .order(events::id.asc())
        .select(EVENT_COLUMNS)
        .into_boxed();
    if let Some(after) = paging.after::<i64>()? {
        query = query.filter(events::id.gt(after));
    }
    if !exclude_origin.is_empty() {
        query = query.filter(
            events::origin
                .is_null()
                .or(events::origin.ne_all(exclude_origin.to_vec())),
        );
    }
    let rows: Vec<EventRow> = query.limit(limit + 1).load(conn)?;
    let mut events: Vec<Event> = rows.into_iter().map(Event::from_row).collect();
    resolve_names(conn, &mut events)?;
    Ok(crate::common::pagination::Page::from_rows(
        events,
        limit,
        |e| e.id,
    ))
}
