//! The board view: columns in order, each with its WIP limit, count and compact cards in rank
//! order. A fixed number of queries whatever the number of cards: board, columns, cards,
//! labels, people, services, and for incident cards their fields, policies and pauses.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::{HttpResponse, get, web};
use chrono::NaiveDate;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::board::model::{Board, ColumnCategory};
use crate::common::actor::{Role, Visibility};
use crate::common::db::Db;
use crate::common::db::DbConnection;
use crate::common::db::schema::{item_labels, item_raci, items, services, users};
use crate::common::db::watch::Freshness;
use crate::common::error::ApiError;
use crate::common::fresh_cache::FreshCache;
use crate::common::query::PersonParam;
use crate::items::incident as incidents;
use crate::items::queries::{ANY_ROLE, demands_of, held_by, today};
use crate::items::types::{ItemType, Priority};
use crate::sla::severity::Severity;
use crate::web::auth::{Credential, CurrentUser};
use crate::web::extract::Query;
use crate::web::params::BoardKeyPath;

/// Filters of the board view; they combine with AND, and a list parameter takes several
/// values, comma-separated or repeated. Each column keeps its total `count` and its
/// `wip_limit`; with any filter it also says how many of its cards are `shown`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewFilter {
    /// Only cards of this service (key).
    pub service: Option<String>,
    /// Only cards of these types (`demand`, `task`, `incident`).
    #[serde(
        rename = "type",
        default,
        deserialize_with = "crate::common::parse::comma_list"
    )]
    #[param(rename = "type", style = Form, explode = false, max_items = 20)]
    pub item_type: Option<Vec<ItemType>>,
    /// Only cards of these priorities.
    #[serde(default, deserialize_with = "crate::common::parse::comma_list")]
    #[param(style = Form, explode = false, max_items = 20)]
    pub priority: Option<Vec<Priority>>,
    /// Only cards where this user holds any RACI role: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub person: Option<PersonParam>,
    /// Only cards this user is accountable for: a user id, or `me`.
    #[param(value_type = Option<String>, pattern = "^(me|[0-9]+)$", example = "me")]
    pub accountable: Option<PersonParam>,
    /// Only cards with this label.
    pub label: Option<String>,
    /// Only cards due on or before this date.
    pub due_before: Option<NaiveDate>,
    /// Only cards due on or after this date.
    pub due_after: Option<NaiveDate>,
    /// `true`: only cards past their due date and not in a `done` column; `false`: only cards
    /// that are not.
    pub overdue: Option<bool>,
    /// Case-insensitive search in key and title.
    pub q: Option<String>,
    /// `done` columns show the cards finished on or after this date (default: those of the
    /// last days the setting `boards.done_days` gives, 14 unless configured, like Jira's kanban
    /// boards); each such column says how many it `hidden`.
    pub done_since: Option<NaiveDate>,
    /// `all`: `done` columns show every card they hold.
    #[param(value_type = Option<String>, pattern = "^all$", example = "all")]
    pub done: Option<DoneAll>,
}

/// `done=all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DoneAll {
    /// Every card of the `done` columns.
    All,
}

/// The board view's settings (`[boards]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardSettings {
    /// How many days back the `done` columns of a board view show finished cards by default.
    pub done_days: u32,
    /// How many board views are built at once; more wait their turn, so that many large views
    /// at the same moment do not each hold their whole body in memory.
    pub concurrent_views: usize,
    /// Megabytes of built views kept by their `ETag`, so that a view is built once per change
    /// (or minute) however many clients poll it; 0 keeps none.
    pub view_cache_mb: usize,
}

impl Default for BoardSettings {
    fn default() -> Self {
        BoardSettings {
            done_days: 14,
            concurrent_views: 4,
            view_cache_mb: 16,
        }
    }
}

/// The turns of view building, a semaphore of `concurrent_views` permits, and the views last
/// built (app data).
pub struct ViewTurns {
    permits: tokio::sync::Semaphore,
    built: std::sync::Mutex<BuiltViews>,
    /// The `ETag` of each view asked for (by its scope) since the last commit, so that a
    /// poller whose view has not changed is answered without a turn or a trip to storage.
    tags: FreshCache<String, String>,
}

/// Scopes whose `ETag` is kept at most.
const KEPT_TAGS: usize = 10_000;

/// Serialized views by their `ETag`, newest first, at most `limit` bytes in all. The `ETag`
/// stands for everything a view shows (the history's head, the board, the caller's scope, the
/// query, the minute of the SLA clocks), which is what lets `If-None-Match` answer 304 without
/// building the view; for the same reason a view built for one tag can be sent again to
/// anyone who asks with that tag.
struct BuiltViews {
    views: std::collections::VecDeque<(String, actix_web::web::Bytes)>,
    bytes: usize,
    limit: usize,
}

impl ViewTurns {
    /// `concurrent` builds at once (at least one), keeping up to `cache_mb` megabytes of
    /// built views, and their tags while `freshness` says nothing committed.
    pub fn new(concurrent: usize, cache_mb: usize, freshness: Freshness) -> Self {
        ViewTurns {
            tags: FreshCache::new(Duration::from_secs(60), KEPT_TAGS, freshness),
            permits: tokio::sync::Semaphore::new(concurrent.max(1)),
            built: std::sync::Mutex::new(BuiltViews {
                views: std::collections::VecDeque::new(),
                bytes: 0,
                limit: cache_mb.saturating_mul(1024 * 1024),
            }),
        }
    }

    /// The view built for `etag`, if it is still kept.
    fn built(&self, etag: &str) -> Option<actix_web::web::Bytes> {
        let built = self.built.lock().ok()?;
        built
            .views
            .iter()
            .find(|(tag, _)| tag == etag)
            .map(|(_, body)| body.clone())
    }

    /// Keeps `body` as the view of `etag`, dropping the oldest views beyond the limit.
    fn keep(&self, etag: &str, body: &actix_web::web::Bytes) {
        let Ok(mut built) = self.built.lock() else {
            return;
        };
        if body.len() > built.limit || built.views.iter().any(|(tag, _)| tag == etag) {
            return;
        }
        built.bytes += body.len();
        built.views.push_front((etag.to_string(), body.clone()));
        while built.bytes > built.limit {
            let Some((_, old)) = built.views.pop_back() else {
                break;
            };
            built.bytes -= old.len();
        }
    }
}

impl ViewFilter {
    /// Whether any filter is set, so that some cards may be hidden.
    fn filters(&self) -> bool {
        self.service.is_some()
            || self.item_type.is_some()
            || self.priority.is_some()
            || self.person.is_some()
            || self.accountable.is_some()
            || self.label.is_some()
            || self.due_before.is_some()
            || self.due_after.is_some()
            || self.overdue.is_some()
            || self.q.as_deref().is_some_and(|q| !q.trim().is_empty())
    }
}

/// A service as shown on a card.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardService {
    /// Its key.
    pub key: String,
    /// Its name.
    pub name: String,
}

/// A compact item on the board.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Card {
    /// The item's key.
    pub key: String,
    /// Demand, task or incident.
    #[serde(rename = "type")]
    pub item_type: ItemType,
    /// Title.
    pub title: String,
    /// Priority.
    pub priority: Priority,
    /// The service, if any.
    pub service: Option<CardService>,
    /// Name of the accountable person.
    pub accountable: Option<String>,
    /// Names of the responsible people.
    pub responsible: Vec<String>,
    /// Labels.
    pub labels: Vec<String>,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// Rank inside the column.
    pub rank: String,
    /// Severity, for incidents (absent on other cards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// SLA state, for incidents under a policy (absent on other cards).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla: Option<CardSla>,
}

/// The SLA state shown on a card.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CardSla {
    /// `breached`, `paused`, `running`, or `met` once resolved in time.
    pub state: String,
    /// When the resolution is due.
    pub resolution_due_at: chrono::DateTime<chrono::Utc>,
    /// Minutes left on the policy's clock; negative when overdue.
    pub remaining_business_minutes: Option<i64>,
}

/// A column of the board view.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ViewColumn {
    /// The column's id (the `column` of a move).
    pub id: i64,
    /// Name.
    pub name: String,
    /// Category.
    pub category: ColumnCategory,
    /// WIP limit, if any.
    pub wip_limit: Option<i32>,
    /// Number of cards in the column, whatever the filters (what the WIP limit counts).
    pub count: usize,
    /// With a filter: how many of the column's cards it shows (those in `cards`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown: Option<usize>,
    /// On a `done` column: how many cards it holds that were finished before the window
    /// (`done_since`, or the last days of the setting) and are not shown; `done=all` shows them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<usize>,
    /// Cards in rank order.
    pub cards: Vec<Card>,
}

/// A board as a kanban view.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BoardView {
    /// The board's key.
    pub board: String,
    /// Its name.
    pub name: String,
    /// Its columns in order.
    pub columns: Vec<ViewColumn>,
}

type CardRow = (
    i64,
    i64,
    String,
    String,
    String,
    String,
    Option<i64>,
    Option<NaiveDate>,
    String,
);

/// The live items of a board, as a subquery.
#[diesel::dsl::auto_type]
fn live_items(board_id: i64) -> _ {
    items::table
        .filter(
            items::board_id
                .eq(board_id)
                .and(items::deleted_at.is_null()),
        )
        .select(items::id)
}

/// Builds the view of a board.
pub fn build(
    conn: &mut DbConnection,
    key: &str,
    filter: &ViewFilter,
    visibility: Visibility,
    me: i64,
    done_days: u32,
) -> Result<BoardView, ApiError> {
    let board = Board::find(conn, key)?;
    let done_columns: Vec<i64> = board
        .columns
        .iter()
        .filter(|c| c.category == ColumnCategory::Done)
        .map(|c| c.id)
        .collect();
    // The start of the done window (a moment in UTC), unless every done card is wanted.
    let done_cutoff: Option<chrono::NaiveDateTime> = match (filter.done, filter.done_since) {
        (Some(DoneAll::All), _) => None,
        (None, Some(since)) => Some(local_midnight(since)),
        (None, None) => Some(local_midnight(
            today() - chrono::Duration::days(i64::from(done_days)),
        )),
    };
    // Per done column, the cards finished before the window that the caller may see.
    let mut hidden: HashMap<i64, i64> = HashMap::new();
    if let Some(cutoff) = done_cutoff
        && !done_columns.is_empty()
    {
        let mut older = items::table
            .filter(
                items::column_id
                    .eq_any(&done_columns)
                    .and(items::deleted_at.is_null())
                    .and(items::done_at.lt(cutoff)),
            )
            .group_by(items::column_id)
            .select((items::column_id, diesel::dsl::count_star()))
            .into_boxed();
        if let Visibility::Organization(org) = visibility {
            older = older.filter(
                items::item_type
                    .eq(ItemType::Demand.as_str())
                    .and(items::id.eq_any(demands_of(org.unwrap_or(-1)))),
            );
        }
        hidden = older.load::<(i64, i64)>(conn)?.into_iter().collect();
    }
    // Every card the caller may see, per column: the count that the WIP limit is about.
    let mut totals = items::table
        .filter(
            items::board_id
                .eq(board.id)
                .and(items::deleted_at.is_null()),
        )
        .group_by(items::column_id)
        .select((items::column_id, diesel::dsl::count_star()))
        .into_boxed();
    if let Visibility::Organization(org) = visibility {
        totals = totals.filter(
            items::item_type
                .eq(ItemType::Demand.as_str())
                .and(items::id.eq_any(demands_of(org.unwrap_or(-1)))),
        );
    }
    let totals: HashMap<i64, i64> = totals.load::<(i64, i64)>(conn)?.into_iter().collect();
    let mut query = items::table
        .filter(
            items::board_id
                .eq(board.id)
                .and(items::deleted_at.is_null()),
        )
        // Not ordered here: sorted below, which costs a third of what SQLite's temporary
        // B-tree for the ORDER BY did.
        .select((
            items::id,
            items::column_id,
            items::key,
            items::item_type,
            items::title,
            items::priority,
            items::service_id,
            items::due_date,
            items::rank,
        ))
        .into_boxed();
    if let Visibility::Organization(org) = visibility {
        query = query.filter(
            items::item_type
                .eq(ItemType::Demand.as_str())
                .and(items::id.eq_any(demands_of(org.unwrap_or(-1)))),
        );
    }
    if let Some(cutoff) = done_cutoff
        && !done_columns.is_empty()
    {
        query = query.filter(
            items::column_id
                .ne_all(done_columns.clone())
                .or(items::done_at.is_null())
                .or(items::done_at.ge(cutoff)),
        );
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
    if let Some(priorities) = &filter.priority {
        query = query.filter(items::priority.eq_any(priorities.iter().map(|p| p.as_str())));
    }
    for (person, roles) in [
        (filter.person, ANY_ROLE.to_vec()),
        (filter.accountable, vec!["accountable"]),
    ] {
        if let Some(person) = person {
            query = query.filter(items::id.eq_any(held_by(person.id(me), roles)));
        }
    }
    if let Some(date) = filter.due_before {
        query = query.filter(items::due_date.le(date));
    }
    if let Some(date) = filter.due_after {
        query = query.filter(items::due_date.ge(date));
    }
    if let Some(overdue) = filter.overdue {
        let done: Vec<i64> = board
            .columns
            .iter()
            .filter(|c| c.category == ColumnCategory::Done)
            .map(|c| c.id)
            .collect();
        let today = today();
        query = if overdue {
            query.filter(items::due_date.lt(today).and(items::column_id.ne_all(done)))
        } else {
            query.filter(
                items::due_date
                    .is_null()
                    .or(items::due_date.ge(today))
                    .or(items::column_id.eq_any(done)),
            )
        };
    }
    if let Some(label) = &filter.label {
        let ids = item_labels::table
            .filter(item_labels::label.eq(label.trim().to_lowercase()))
            .select(item_labels::item_id);
        query = query.filter(items::id.eq_any(ids));
    }
    if let Some(pattern) = crate::common::text::search_pattern(filter.q.as_deref())? {
        query = query.filter(
            crate::common::db::lower(items::key)
                .like(pattern.clone())
                .escape('\\')
                .or(crate::common::db::lower(items::title)
                    .like(pattern)
                    .escape('\\')),
        );
    }
    let mut rows: Vec<CardRow> = query.load(conn)?;
    // By column and rank (byte order, as the rank algorithm and the column's collation
    // assume); ties (equal ranks) fall back to id, as in `GET /items?sort=rank`.
    rows.sort_unstable_by(|a, b| (a.1, &a.8, a.0).cmp(&(b.1, &b.8, b.0)));
    // Labels and people of the whole board, selected by board rather than by a list of
    // thousands of ids: one bound parameter instead of one per card.
    let mut labels: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, label) in item_labels::table
        .filter(item_labels::item_id.eq_any(live_items(board.id)))
        .order((item_labels::item_id, item_labels::label))
        .select((item_labels::item_id, item_labels::label))
        .load::<(i64, String)>(conn)?
    {
        labels.entry(id).or_default().push(label);
    }
    // Who is accountable and responsible, driven from the board's items (an index walk)
    // and unordered: the few responsible people of a card are sorted here, which spares
    // SQLite a temporary B-tree per card.
    let mut people: HashMap<i64, CardPeople> = HashMap::new();
    for (id, role, name, user) in items::table
        .inner_join(item_raci::table.inner_join(users::table))
        .filter(
            items::board_id
                .eq(board.id)
                .and(items::deleted_at.is_null())
                // Not `IN (?, ?)`: SQLite would parse and plan it again on every view.
                .and(
                    item_raci::role
                        .eq("accountable")
                        .or(item_raci::role.eq("responsible")),
                ),
        )
        .select((
            item_raci::item_id,
            item_raci::role,
            users::display_name,
            users::id,
        ))
        .load::<(i64, String, String, i64)>(conn)?
    {
        let entry = people.entry(id).or_default();
        if role == "accountable" {
            entry.0 = Some(name);
        } else {
            entry.1.push((name, user));
        }
    }
    let incident_items: Vec<(i64, Option<i64>)> = rows
        .iter()
        .filter(|r| r.3 == ItemType::Incident.as_str())
        .map(|r| (r.0, r.6))
        .collect();
    let incident_ids: Vec<i64> = incident_items.iter().map(|(id, _)| *id).collect();
    let affected = incidents::affected_of(conn, &incident_ids)?;
    let (incident_fields, clocks) = incidents::load(conn, &incident_items, affected)?;
    let mut sla_states = clocks.states(chrono::Utc::now());
    let mut service_ids: Vec<i64> = rows.iter().filter_map(|r| r.6).collect();
    service_ids.sort_unstable();
    service_ids.dedup();
    let service_names: HashMap<i64, (String, String)> = services::table
        .filter(services::id.eq_any(&service_ids))
        .select((services::id, services::key, services::name))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, key, name)| (id, (key, name)))
        .collect();
    let mut by_column: HashMap<i64, Vec<Card>> = HashMap::new();
    for (id, column, key, item_type, title, priority, service_id, due_date, rank) in rows {
        let (accountable, mut responsible) = people.remove(&id).unwrap_or_default();
        responsible.sort_unstable();
        let responsible = responsible.into_iter().map(|(name, _)| name).collect();
        by_column.entry(column).or_default().push(Card {
            key,
            item_type: ItemType::parse(&item_type)
                .ok_or_else(|| ApiError::internal("unknown item type"))?,
            title,
            priority: Priority::parse(&priority)
                .ok_or_else(|| ApiError::internal("unknown priority"))?,
            service: service_id
                .and_then(|sid| service_names.get(&sid).cloned())
                .map(|(key, name)| CardService { key, name }),
            accountable,
            responsible,
            labels: labels.remove(&id).unwrap_or_default(),
            due_date,
            rank,
            severity: incident_fields.get(&id).map(|f| f.severity),
            sla: sla_states.remove(&id).map(|s| CardSla {
                state: if s.response_breached || s.resolution_breached {
                    "breached"
                } else if s.paused {
                    "paused"
                } else if s.remaining_business_minutes.is_none() {
                    "met"
                } else {
                    "running"
                }
                .into(),
                resolution_due_at: s.resolution_due_at,
                remaining_business_minutes: s.remaining_business_minutes,
            }),
        });
    }
    let filtered = filter.filters();
    let columns = board
        .columns
        .into_iter()
        .map(|c| {
            let cards = by_column.remove(&c.id).unwrap_or_default();
            let count = totals
                .get(&c.id)
                .and_then(|n| usize::try_from(*n).ok())
                .unwrap_or(0);
            let hidden = (c.category == ColumnCategory::Done && done_cutoff.is_some()).then(|| {
                hidden
                    .get(&c.id)
                    .and_then(|n| usize::try_from(*n).ok())
                    .unwrap_or(0)
            });
            ViewColumn {
                id: c.id,
                name: c.name,
                category: c.category,
                wip_limit: c.wip_limit,
                count: count.max(cards.len()),
                shown: filtered.then_some(cards.len()),
                hidden,
                cards,
            }
        })
        .collect();
    Ok(BoardView {
        board: board.key,
        name: board.name,
        columns,
    })
}

/// A card's accountable person's name, and its responsible people's names with their ids.
type CardPeople = (Option<String>, Vec<(String, i64)>);

/// Midnight at the start of `day` in the app's time zone, in UTC as stored.
fn local_midnight(day: NaiveDate) -> chrono::NaiveDateTime {
    use chrono::TimeZone;
    let tz = crate::common::calendar::current().tz;
    let midnight = day.and_time(chrono::NaiveTime::MIN);
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.naive_utc())
        .unwrap_or(midnight)
}

/// Mounts the board view under the API scope, after the board endpoints.
pub fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(board_view);
}

/// The board view.
///
/// The board's columns in order, each with its WIP limit, count and cards in rank order. A card
/// is compact: key, type, title, priority, service, accountable and responsible names, labels,
/// due date, and for incidents severity and SLA state. Filters: `service`, `type`, `priority`,
/// `person` and `accountable` (a user id or `me`), `label`, `due_before`, `due_after`,
/// `overdue`, `q`; a filtered column keeps its total `count` and adds how many cards are
/// `shown`. A `done` column shows the cards finished in the last 14 days (the setting
/// `boards.done_days`) and says how many it has `hidden`; `done_since=` moves the window,
/// `done=all` shows every card. Loads in a fixed number of queries whatever the number of
/// cards.
///
/// For frontends that poll: the answer carries an `ETag` that changes with every change of
/// anything the view shows (and every minute, for the SLA clocks); `If-None-Match` with it
/// answers 304 without building the view. Large answers are compressed when the request
/// accepts it (`Accept-Encoding: br`, `gzip`). Viewer and up; a requester sees only the cards
/// of their own organization's demands.
#[utoipa::path(
    tag = "boards",
    params(BoardKeyPath, ViewFilter, IfNoneMatchView),
    responses(
        (status = 200, description = "The board view", body = BoardView,
            headers(("ETag" = String, description = "Changes when the view would"))),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`"),
    )
)]
#[get("/boards/{key}/view")]
pub async fn board_view(
    db: web::Data<Db>,
    settings: web::Data<BoardSettings>,
    turns: web::Data<ViewTurns>,
    credential: Credential,
    key: web::Path<String>,
    filter: Query<ViewFilter>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let filter = filter.0;
    let done_days = settings.done_days;
    // Which board, filtered how, as of which minute: with the caller's scope, everything the
    // ETag stands for but the data.
    let view_of = format!(
        "{}|{}|{done_days}|{}",
        key.to_uppercase(),
        req.query_string(),
        chrono::Utc::now().format("%Y-%m-%dT%H:%M")
    );
    let sent = req
        .headers()
        .get(actix_web::http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A caller and a tag both known since the last commit: a poller's 304, or a view kept,
    // without a turn or a trip to storage.
    if let Some(caller) = credential.known() {
        caller.require(Role::Requester)?;
        if let Some(etag) = turns.tags.get(&scope_of(&caller, &view_of)) {
            if sent.as_deref().is_some_and(|s| etag_matches(s, &etag)) {
                return Ok(answer(etag, None));
            }
            if let Some(body) = turns.built(&etag) {
                return Ok(answer(etag, Some(body)));
            }
        }
    }
    let _turn = turns
        .permits
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the view turns are closed"))?;
    let views = turns.clone();
    // Serialized on the blocking thread into a buffer sized for the cards: a view of 5,000
    // cards is megabytes, and growing a string by doubling copied it several times over
    // (a card takes about 200 bytes).
    // The caller is checked in the same trip to the blocking pool as the view.
    let (etag, body) = credential
        .run(&db, move |conn, caller| {
            caller.require(Role::Requester)?;
            let (visibility, me) = (caller.visibility(), caller.id());
            let scope = scope_of(caller, &view_of);
            // Read before the head: a commit meanwhile outdates the tag kept.
            let generation = views.tags.generation();
            let etag = view_etag(conn, &scope)?;
            views.tags.put(scope, generation, etag.clone(), 1);
            if sent.as_deref().is_some_and(|s| etag_matches(s, &etag)) {
                return Ok((etag, None));
            }
            if let Some(body) = views.built(&etag) {
                return Ok((etag, Some(body)));
            }
            let view = build(conn, &key, &filter, visibility, me, done_days)?;
            let cards: usize = view.columns.iter().map(|c| c.cards.len()).sum();
            let mut body = Vec::with_capacity(1024 + cards * 256);
            serde_json::to_writer(&mut body, &view).map_err(|e| ApiError::internal_error(&e))?;
            // The buffer lives until the client has read the answer: with many slow readers
            // the spare capacity, not the bytes, was most of the server's memory.
            body.shrink_to_fit();
            let body = actix_web::web::Bytes::from(body);
            views.keep(&etag, &body);
            Ok((etag, Some(body)))
        })
        .await?;
    Ok(answer(etag, body))
}

/// Everything a view's `ETag` stands for but the data: the caller's scope, and the board,
/// query and minute of `view_of`.
fn scope_of(caller: &CurrentUser, view_of: &str) -> String {
    format!("{:?}|{}|{view_of}", caller.visibility(), caller.id())
}

/// The view's answer: 304 without a body, else 200 with it.
fn answer(etag: String, body: Option<actix_web::web::Bytes>) -> HttpResponse {
    match body {
        None => HttpResponse::NotModified()
            .insert_header((actix_web::http::header::ETAG, etag))
            .finish(),
        Some(body) => crate::web::respond::ok_json_with_etag(body, etag),
    }
}

/// `If-None-Match` of the board view.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatchView {
    /// The `ETag` of the view you hold
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

/// The view's entity tag: the position of the latest change in the history (every change of
/// anything shown writes an event) and the scope of the view, hashed. A weak tag: two equal
/// tags mean an equal view, not equal bytes.
fn view_etag(conn: &mut DbConnection, scope: &str) -> Result<String, ApiError> {
    use sha2::{Digest, Sha256};
    let head = crate::common::feed::numbered_head(conn)?;
    let digest = Sha256::digest(format!("{head}|{scope}").as_bytes());
    let short: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    Ok(format!("W/\"{short}\""))
}

/// Whether an `If-None-Match` value names `etag` (or is `*`).
fn etag_matches(sent: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    sent.split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}
