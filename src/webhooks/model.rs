//! Webhook subscriptions: create, read, change, delete and rotate the secret; every change is
//! an event in the subscription's own history (entity type `webhook`), never with a secret.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use diesel::prelude::*;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::changes::model::EntityType;
use crate::common::actor::Actor;
use crate::common::db::schema::{boards, webhook_subscriptions};
use crate::common::db::{DbConnection, now};
use crate::common::error::{ApiError, FieldError};
use crate::common::history::{self, Diff, Subject};
use crate::common::pagination::{Page, PageParams};
use crate::common::text::{check_text, is_http_url};
use crate::common::version::Precondition;

/// The entity type of the subscriptions' history events.
pub const WEBHOOK: &str = "webhook";
/// The prefix of a signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// How long the previous secret still signs after a rotation.
pub const ROTATION_OVERLAP_HOURS: i64 = 24;
/// Most event kinds one subscription names.
pub const MAX_EVENTS: usize = 50;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 2000;

/// A webhook subscription as the API shows it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 3, "url": "https://hooks.example.org/opsboard", "events": ["created", "moved"],
    "entity_type": "item", "board": "OPS", "description": "Leitstand",
    "active": true, "disabled_reason": null, "previous_secret_expires_at": null,
    "created_at": "2026-12-04T10:00:00Z", "updated_at": "2026-12-04T10:00:00Z", "version": 1
}))]
pub struct Webhook {
    /// The subscription's id.
    pub id: i64,
    /// Where the events are POSTed.
    pub url: String,
    /// The event kinds sent (`created`, `moved`, …, as in the changes feed), or `["*"]` for all.
    pub events: Vec<String>,
    /// Only events of this kind of entity; `null` for all.
    pub entity_type: Option<EntityType>,
    /// Only the events of this board (key): its items' and its own; `null` for all.
    pub board: Option<String>,
    /// What it is for.
    pub description: String,
    /// Whether events are delivered. Turned off by a `410 Gone` from the receiver or after a
    /// day of failures (see `disabled_reason`); turning it on again resumes delivery.
    pub active: bool,
    /// Why opsboard deactivated it, if it did.
    pub disabled_reason: Option<String>,
    /// Until when the secret before the last rotation still signs (beside the new one).
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Its version, for `If-Match`.
    pub version: i64,
}

/// A subscription with its signing secret: shown only when made and when rotated.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3wqpbvkYhXk=",
    "webhook": {"id": 3, "url": "https://hooks.example.org/opsboard", "events": ["*"],
        "entity_type": null, "board": null, "description": "", "active": true,
        "disabled_reason": null, "previous_secret_expires_at": null,
        "created_at": "2026-12-04T10:00:00Z", "updated_at": "2026-12-04T10:00:00Z", "version": 1}
}))]
pub struct WebhookWithSecret {
    /// The signing secret (`whsec_` and the base64 of 32 random bytes): verify each delivery's
    /// `webhook-signature` with it. Shown only now.
    pub secret: String,
    /// The subscription.
    pub webhook: Webhook,
}

/// The body of `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "url": "https://hooks.example.org/opsboard", "events": ["created", "moved"],
    "entity_type": "item", "board": "OPS", "description": "Leitstand"
}))]
pub struct NewWebhook {
    /// The receiver: an `http://` or `https://` URL whose host resolves to public addresses
    /// only (unless the server allows private targets).
    #[schema(max_length = 2000)]
    pub url: String,
    /// Event kinds to send, or `["*"]` for every kind.
    #[schema(min_items = 1, max_items = 50)]
    pub events: Vec<String>,
    /// Only events of this kind of entity.
    pub entity_type: Option<EntityType>,
    /// Only the events of this board (key).
    pub board: Option<String>,
    /// What it is for, up to 2000 characters.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Whether to deliver (default true).
    pub active: Option<bool>,
}

/// The body of `PATCH /api/v1/webhooks/{id}`: only the fields given change.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"events": ["*"], "active": true}))]
pub struct WebhookPatch {
    /// New receiver URL.
    #[schema(max_length = 2000)]
    pub url: Option<String>,
    /// New event kinds (replaces the list).
    #[schema(min_items = 1, max_items = 50)]
    pub events: Option<Vec<String>>,
    /// New entity filter; `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub entity_type: Option<Option<EntityType>>,
    /// New board filter (key); `null` removes it.
    #[serde(default, deserialize_with = "crate::common::parse::double_option")]
    pub board: Option<Option<String>>,
    /// New description.
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// Turn delivery on or off; turning it on clears `disabled_reason`.
    pub active: Option<bool>,
}

/// Filters of `GET /api/v1/webhooks`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WebhookFilter {
    /// Only active (`true`) or inactive (`false`) subscriptions.
    pub active: Option<bool>,
    /// Subscriptions per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

type Row = (
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    bool,
    Option<String>,
    Option<NaiveDateTime>,
    NaiveDateTime,
    NaiveDateTime,
    i64,
);

#[diesel::dsl::auto_type]
fn columns() -> _ {
    (
        webhook_subscriptions::id,
        webhook_subscriptions::url,
        webhook_subscriptions::events,
        webhook_subscriptions::entity_type,
        boards::key.nullable(),
        webhook_subscriptions::description,
        webhook_subscriptions::active,
        webhook_subscriptions::disabled_reason,
        webhook_subscriptions::previous_secret_expires_at,
        webhook_subscriptions::created_at,
        webhook_subscriptions::updated_at,
        webhook_subscriptions::version,
    )
}

/// The stored form of an event list: `*`, or the kinds between commas (`,created,moved,`).
pub fn store_events(events: &[String]) -> String {
    if events.iter().any(|e| e == "*") {
        "*".to_string()
    } else {
        format!(",{},", events.join(","))
    }
}

fn load_events(stored: &str) -> Vec<String> {
    stored
        .split(',')
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect()
}

/// A fresh signing secret: `whsec_` and the base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The URL as it may appear in the history, which every viewer reads: scheme, host and port
/// only (a receiver's path or query often carries a token of its own).
pub fn url_origin(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => String::new(),
    }
}

/// Checks the form of a receiver URL (not where it points: see [`crate::webhooks::target`]).
pub fn check_url(errors: &mut Vec<FieldError>, url: &str) -> String {
    let url = url.trim().to_string();
    let parsed = url::Url::parse(&url).ok();
    if !is_http_url(&url) || parsed.as_ref().and_then(|u| u.host_str()).is_none() {
        errors.push(FieldError::new(
            "url",
            "must be an http:// or https:// address with a host",
        ));
    } else if parsed.is_some_and(|u| !u.username().is_empty() || u.password().is_some()) {
        errors.push(FieldError::new(
            "url",
            "must not carry a user name or password",
        ));
    }
    url
}

fn check_events(errors: &mut Vec<FieldError>, events: &[String]) -> Vec<String> {
    let mut kinds: Vec<String> = events.iter().map(|e| e.trim().to_lowercase()).collect();
    kinds.sort();
    kinds.dedup();
    let valid = |k: &str| {
        k == "*"
            || (!k.is_empty()
                && k.len() <= 50
                && k.starts_with(|c: char| c.is_ascii_lowercase())
                && k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
    };
    if kinds.is_empty() {
        errors.push(FieldError::new(
            "events",
            "must name at least one event kind, or \"*\" for all",
        ));
    } else if kinds.len() > MAX_EVENTS {
        errors.push(FieldError::new(
            "events",
            format!("must name at most {MAX_EVENTS} kinds"),
        ));
    } else if let Some(bad) = kinds.iter().find(|k| !valid(k)) {
        errors.push(FieldError::new(
            "events",
            format!(
                "`{bad}` is no event kind: use kinds of the changes feed such as `created`, \
                 `updated`, `moved`, `commented`, or \"*\" for all"
            ),
        ));
    }
    if kinds.iter().any(|k| k == "*") {
        vec!["*".to_string()]
    } else {
        kinds
    }
}

fn check_description(errors: &mut Vec<FieldError>, description: Option<&str>) -> String {
    let text = description.unwrap_or("").trim().to_string();
    check_text(errors, "description", &text, MAX_DESCRIPTION);
    text
}

fn board_id(conn: &mut DbConnection, key: &str) -> Result<i64, ApiError> {
    boards::table
        .filter(boards::key.eq(key.trim().to_uppercase()))
        .select(boards::id)
        .first::<i64>(conn)
        .optional()?
        .ok_or_else(|| ApiError::invalid("board", format!("there is no board `{}`", key.trim())))
}

impl Webhook {
    fn from_row(row: Row) -> Webhook {
        let (
            id,
            url,
            events,
            entity_type,
            board,
            description,
            active,
            disabled_reason,
            previous_expires,
            created_at,
            updated_at,
            version,
        ) = row;
        Webhook {
            id,
            url,
            events: load_events(&events),
            entity_type: entity_type.as_deref().and_then(EntityType::parse),
            board,
            description,
            active,
            disabled_reason,
            previous_secret_expires_at: previous_expires
                .filter(|at| *at > now())
                .map(|at| at.and_utc()),
            created_at: created_at.and_utc(),
            updated_at: updated_at.and_utc(),
            version,
        }
    }

    /// The subscription with this id; 404 when there is none.
    pub fn find(conn: &mut DbConnection, id: i64) -> Result<Webhook, ApiError> {
        webhook_subscriptions::table
            .left_join(boards::table)
            .filter(webhook_subscriptions::id.eq(id))
            .select(columns())
            .first::<Row>(conn)
            .optional()?
            .map(Webhook::from_row)
            .ok_or_else(|| ApiError::NotFound(format!("There is no webhook {id}.")))
    }

    /// A page of subscriptions, by id.
    pub fn list(
        conn: &mut DbConnection,
        filter: &WebhookFilter,
    ) -> Result<Page<Webhook>, ApiError> {
        let params = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = params.limit()?;
        let after: Option<i64> = params.after()?;
        let mut query = webhook_subscriptions::table
            .left_join(boards::table)
            .select(columns())
            .order(webhook_subscriptions::id.asc())
            .limit(limit + 1)
            .into_boxed();
        if let Some(after) = after {
            query = query.filter(webhook_subscriptions::id.gt(after));
        }
        if let Some(active) = filter.active {
            query = query.filter(webhook_subscriptions::active.eq(active));
        }
        let rows: Vec<Row> = query.load(conn)?;
        Ok(Page::from_rows(
            rows.into_iter().map(Webhook::from_row).collect(),
            limit,
            |w| w.id,
        ))
    }

    /// Makes a subscription with a fresh secret, shown in the answer only. The URL's target
    /// has been checked by the caller ([`crate::webhooks::target::check`]).
    pub fn create(
        conn: &mut DbConnection,
        form: &NewWebhook,
        actor: &Actor,
    ) -> Result<WebhookWithSecret, ApiError> {
        let mut errors = Vec::new();
        let url = check_url(&mut errors, &form.url);
        let events = check_events(&mut errors, &form.events);
        let description = check_description(&mut errors, form.description.as_deref());
        ApiError::from_fields(errors)?;
        let board = form
            .board
            .as_deref()
            .map(|key| board_id(conn, key))
            .transpose()?;
        let secret = new_secret();
        let at = now();
        let active = form.active.unwrap_or(true);
        // Made inactive and turned on after its own `created` event: a subscription does not
        // receive the news of its own creation.
        let id: i64 = diesel::insert_into(webhook_subscriptions::table)
            .values((
                webhook_subscriptions::url.eq(&url),
                webhook_subscriptions::events.eq(store_events(&events)),
                webhook_subscriptions::entity_type.eq(form.entity_type.map(|t| t.as_str())),
                webhook_subscriptions::board_id.eq(board),
                webhook_subscriptions::description.eq(&description),
                webhook_subscriptions::active.eq(false),
                webhook_subscriptions::secret.eq(&secret),
                webhook_subscriptions::created_by.eq(actor.user_id),
                webhook_subscriptions::created_at.eq(at),
                webhook_subscriptions::updated_at.eq(at),
                webhook_subscriptions::version.eq(1),
            ))
            .returning(webhook_subscriptions::id)
            .get_result(conn)?;
        let webhook = Webhook::find(conn, id)?;
        history::record(
            conn,
            Subject {
                entity_type: WEBHOOK,
                entity_id: id,
            },
            "created",
            actor,
            json!({
                "url": url_origin(&webhook.url),
                "events": webhook.events,
                "entity_type": webhook.entity_type,
                "board": webhook.board,
                "description": webhook.description,
                "active": active,
            }),
        )?;
        if active {
            diesel::update(webhook_subscriptions::table.find(id))
                .set(webhook_subscriptions::active.eq(true))
                .execute(conn)?;
        }
        Ok(WebhookWithSecret {
            secret,
            webhook: Webhook { active, ..webhook },
        })
    }

    /// Changes the fields given, if the version is still `expected`.
    pub fn update(
        conn: &mut DbConnection,
        id: i64,
        patch: &WebhookPatch,
        expected: Precondition,
        actor: &Actor,
    ) -> Result<Webhook, ApiError> {
        // Read under the row's lock: a concurrent write without `If-Match` waits for this one
        // and then applies to what it left, rather than failing the versioned write with 412.
        crate::common::db::lock(conn, crate::common::db::Lock::Webhook(id))?;
        let old = Webhook::find(conn, id)?;
        expected.check(old.version)?;
        let mut errors = Vec::new();
        let url = patch.url.as_deref().map(|u| check_url(&mut errors, u));
        let events = patch
            .events
            .as_deref()
            .map(|e| check_events(&mut errors, e));
        let description = patch
            .description
            .as_deref()
            .map(|d| check_description(&mut errors, Some(d)));
        ApiError::from_fields(errors)?;
        let board = match &patch.board {
            None => None,
            Some(None) => Some(None),
            Some(Some(key)) => Some(Some(board_id(conn, key)?)),
        };
        let mut diff = Diff::new();
        if let Some(url) = &url
            && *url != old.url
        {
            diff.note(
                "url",
                json!({"old": url_origin(&old.url), "new": url_origin(url)}),
            );
        }
        if let Some(events) = &events {
            diff.field("events", &old.events, events);
        }
        if let Some(entity_type) = patch.entity_type {
            diff.field("entity_type", old.entity_type, entity_type);
        }
        if let Some(board) = &patch.board {
            let new = board.as_deref().map(|k| k.trim().to_uppercase());
            diff.field("board", &old.board, new);
        }
        if let Some(description) = &description {
            diff.field("description", &old.description, description);
        }
        if let Some(active) = patch.active {
            diff.field("active", old.active, active);
        }
        if diff.is_empty() {
            return Ok(old);
        }
        let reactivated = patch.active == Some(true) && !old.active;
        let version = crate::versioned_write!(
            conn,
            webhook_subscriptions,
            id,
            old.version,
            (
                url.as_ref()
                    .map(|u| webhook_subscriptions::url.eq(u.clone())),
                events
                    .as_ref()
                    .map(|e| webhook_subscriptions::events.eq(store_events(e))),
                patch.entity_type.map(|t| {
                    webhook_subscriptions::entity_type.eq(t.map(|t| t.as_str().to_string()))
                }),
                board.map(|b| webhook_subscriptions::board_id.eq(b)),
                description
                    .as_ref()
                    .map(|d| webhook_subscriptions::description.eq(d.clone())),
                patch.active.map(|a| webhook_subscriptions::active.eq(a)),
            )
        )?;
        if reactivated {
            diesel::update(webhook_subscriptions::table.find(id))
                .set((
                    webhook_subscriptions::disabled_reason.eq(None::<String>),
                    webhook_subscriptions::failing_since.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        }
        history::record(
            conn,
            Subject {
                entity_type: WEBHOOK,
                entity_id: id,
            },
            "updated",
            actor,
            diff.into_data(),
        )?;
        let webhook = Webhook::find(conn, id)?;
        debug_assert_eq!(webhook.version, version);
        Ok(webhook)
    }

    /// Deletes the subscription with its deliveries, if the version is still `expected`.
    pub fn delete(
        conn: &mut DbConnection,
        id: i64,
        expected: Precondition,
        actor: &Actor,
    ) -> Result<(), ApiError> {
        // Read under the row's lock: a concurrent write without `If-Match` waits for this one
        // and then applies to what it left, rather than failing the versioned write with 412.
        crate::common::db::lock(conn, crate::common::db::Lock::Webhook(id))?;
        let old = Webhook::find(conn, id)?;
        expected.check(old.version)?;
        diesel::delete(
            crate::common::db::schema::webhook_deliveries::table
                .filter(crate::common::db::schema::webhook_deliveries::subscription_id.eq(id)),
        )
        .execute(conn)?;
        diesel::delete(webhook_subscriptions::table.find(id)).execute(conn)?;
        history::record(
            conn,
            Subject {
                entity_type: WEBHOOK,
                entity_id: id,
            },
            "deleted",
            actor,
            json!({"url": url_origin(&old.url), "events": old.events}),
        )?;
        Ok(())
    }

    /// Issues a new secret; the current one keeps signing beside it for
    /// [`ROTATION_OVERLAP_HOURS`], so that receivers can switch without losing a delivery.
    pub fn rotate_secret(
        conn: &mut DbConnection,
        id: i64,
        expected: Precondition,
        actor: &Actor,
    ) -> Result<WebhookWithSecret, ApiError> {
        // Read under the row's lock: a concurrent write without `If-Match` waits for this one
        // and then applies to what it left, rather than failing the versioned write with 412.
        crate::common::db::lock(conn, crate::common::db::Lock::Webhook(id))?;
        let old = Webhook::find(conn, id)?;
        expected.check(old.version)?;
        let current: String = webhook_subscriptions::table
            .find(id)
            .select(webhook_subscriptions::secret)
            .first(conn)?;
        let secret = new_secret();
        let until = now() + Duration::hours(ROTATION_OVERLAP_HOURS);
        crate::versioned_write!(
            conn,
            webhook_subscriptions,
            id,
            old.version,
            (
                webhook_subscriptions::secret.eq(secret.clone()),
                webhook_subscriptions::previous_secret.eq(Some(current)),
                webhook_subscriptions::previous_secret_expires_at.eq(Some(until)),
            )
        )?;
        history::record(
            conn,
            Subject {
                entity_type: WEBHOOK,
                entity_id: id,
            },
            "secret_rotated",
            actor,
            json!({"previous_secret_expires_at": until.and_utc()}),
        )?;
        Ok(WebhookWithSecret {
            secret,
            webhook: Webhook::find(conn, id)?,
        })
    }
}
