//! The deliveries of a subscription as the API shows them, redelivery, and the test ping.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::common::db::schema::webhook_deliveries;
use crate::common::db::{DbConnection, now};
use crate::common::error::ApiError;
use crate::common::pagination::{Page, PageParams};
use crate::webhooks::model::Webhook;
use crate::webhooks::outbox::PENDING;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// To be sent (again) at `next_attempt_at`.
    Pending,
    /// The receiver accepted it (2xx).
    Delivered,
    /// Given up: the retries are used up, or the receiver answered 410.
    Failed,
}
text_enum!(DeliveryStatus {
    Pending => "pending",
    Delivered => "delivered",
    Failed => "failed",
});

/// One delivery of an event (or a test ping) to a subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "id": 812, "webhook_id": 3, "message_id": "evt_1042", "type": "item.moved",
    "event_id": 1042, "status": "pending", "attempts": 2, "last_status": 503,
    "last_response": "Service Unavailable", "last_error": "the receiver answered 503",
    "last_attempt_at": "2026-12-04T10:00:05Z", "next_attempt_at": "2026-12-04T10:05:05Z",
    "created_at": "2026-12-04T10:00:00Z", "delivered_at": null
}))]
pub struct Delivery {
    /// The delivery's id (for redelivery).
    pub id: i64,
    /// Its subscription.
    pub webhook_id: i64,
    /// The `webhook-id` header it is sent with: the same on every attempt and redelivery.
    pub message_id: String,
    /// The payload's `type`: `<entity_type>.<kind>` such as `item.moved`, or `ping`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The event it carries (`null` for a ping).
    pub event_id: Option<i64>,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    /// The HTTP status of the last answer.
    pub last_status: Option<i32>,
    /// The first KiB of the last answer's body.
    pub last_response: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was last tried.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// When it will be tried next (pending only).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// When the receiver accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// Filters of `GET /api/v1/webhooks/{id}/deliveries`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryFilter {
    /// Only deliveries in this state.
    pub status: Option<DeliveryStatus>,
    /// Deliveries per page, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

type Row = (
    i64,
    i64,
    String,
    String,
    Option<i64>,
    String,
    i32,
    Option<i32>,
    Option<String>,
    Option<String>,
    Option<NaiveDateTime>,
    Option<NaiveDateTime>,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

#[diesel::dsl::auto_type]
fn columns() -> _ {
    (
        webhook_deliveries::id,
        webhook_deliveries::subscription_id,
        webhook_deliveries::message_id,
        webhook_deliveries::event_type,
        webhook_deliveries::event_id,
        webhook_deliveries::status,
        webhook_deliveries::attempts,
        webhook_deliveries::last_status,
        webhook_deliveries::last_response,
        webhook_deliveries::last_error,
        webhook_deliveries::last_attempt_at,
        webhook_deliveries::next_attempt_at,
        webhook_deliveries::created_at,
        webhook_deliveries::delivered_at,
    )
}

impl Delivery {
    fn from_row(row: Row) -> Delivery {
        let (
            id,
            webhook_id,
            message_id,
            event_type,
            event_id,
            status,
            attempts,
            last_status,
            last_response,
            last_error,
            last_attempt_at,
            next_attempt_at,
            created_at,
            delivered_at,
        ) = row;
        Delivery {
            id,
            webhook_id,
            message_id,
            event_type,
            event_id,
            status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Failed),
            attempts,
            last_status,
            last_response,
            last_error,
            last_attempt_at: last_attempt_at.map(|t| t.and_utc()),
            next_attempt_at: next_attempt_at.map(|t| t.and_utc()),
            created_at: created_at.and_utc(),
            delivered_at: delivered_at.map(|t| t.and_utc()),
        }
    }

    /// The delivery `id` of subscription `webhook`; 404 when there is none.
    pub fn find(conn: &mut DbConnection, webhook: i64, id: i64) -> Result<Delivery, ApiError> {
        webhook_deliveries::table
            .filter(
                webhook_deliveries::id
                    .eq(id)
                    .and(webhook_deliveries::subscription_id.eq(webhook)),
            )
            .select(columns())
            .first::<Row>(conn)
            .optional()?
            .map(Delivery::from_row)
            .ok_or_else(|| ApiError::NotFound(format!("Webhook {webhook} has no delivery {id}.")))
    }

    /// A page of the subscription's deliveries, newest first.
    pub fn list(
        conn: &mut DbConnection,
        webhook: i64,
        filter: &DeliveryFilter,
    ) -> Result<Page<Delivery>, ApiError> {
        Webhook::find(conn, webhook)?;
        let params = PageParams {
            limit: filter.limit,
            cursor: filter.cursor.clone(),
        };
        let limit = params.limit()?;
        let before: Option<i64> = params.after()?;
        let mut query = webhook_deliveries::table
            .filter(webhook_deliveries::subscription_id.eq(webhook))
            .select(columns())
            .order(webhook_deliveries::id.desc())
            .limit(limit + 1)
            .into_boxed();
        if let Some(before) = before {
            query = query.filter(webhook_deliveries::id.lt(before));
        }
        if let Some(status) = filter.status {
            query = query.filter(webhook_deliveries::status.eq(status.as_str()));
        }
        let rows: Vec<Row> = query.load(conn)?;
        Ok(Page::from_rows(
            rows.into_iter().map(Delivery::from_row).collect(),
            limit,
            |d| d.id,
        ))
    }

    /// Sends a delivery again: a new delivery with the same `webhook-id` and body, due at
    /// once. A pending one is only made due at once.
    pub fn redeliver(conn: &mut DbConnection, webhook: i64, id: i64) -> Result<Delivery, ApiError> {
        let old = Delivery::find(conn, webhook, id)?;
        let at = now();
        if old.status == DeliveryStatus::Pending {
            diesel::update(webhook_deliveries::table.find(id))
                .set(webhook_deliveries::next_attempt_at.eq(Some(at)))
                .execute(conn)?;
            return Delivery::find(conn, webhook, id);
        }
        let (payload, entity_type, entity_id): (Option<String>, Option<String>, Option<i64>) =
            webhook_deliveries::table
                .find(id)
                .select((
                    webhook_deliveries::payload,
                    webhook_deliveries::entity_type,
                    webhook_deliveries::entity_id,
                ))
                .first(conn)?;
        let new_id: i64 = diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::subscription_id.eq(webhook),
                webhook_deliveries::event_id.eq(old.event_id),
                webhook_deliveries::message_id.eq(&old.message_id),
                webhook_deliveries::event_type.eq(&old.event_type),
                webhook_deliveries::entity_type.eq(entity_type),
                webhook_deliveries::entity_id.eq(entity_id),
                webhook_deliveries::payload.eq(payload),
                webhook_deliveries::status.eq(PENDING),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(Some(at)),
                webhook_deliveries::created_at.eq(at),
            ))
            .returning(webhook_deliveries::id)
            .get_result(conn)?;
        Delivery::find(conn, webhook, new_id)
    }

    /// Queues a `ping` to the subscription, whether or not it is active (an inactive one gets
    /// it once it is turned on).
    pub fn ping(conn: &mut DbConnection, webhook: i64) -> Result<Delivery, ApiError> {
        Webhook::find(conn, webhook)?;
        let at = now();
        let body = crate::webhooks::worker::ping_body(webhook).to_string();
        let message = format!("ping_{webhook}_{}", rand::random::<u32>());
        let id: i64 = diesel::insert_into(webhook_deliveries::table)
            .values((
                webhook_deliveries::subscription_id.eq(webhook),
                webhook_deliveries::message_id.eq(&message),
                webhook_deliveries::event_type.eq("ping"),
                webhook_deliveries::payload.eq(Some(body)),
                webhook_deliveries::status.eq(PENDING),
                webhook_deliveries::attempts.eq(0),
                webhook_deliveries::next_attempt_at.eq(Some(at)),
                webhook_deliveries::created_at.eq(at),
            ))
            .returning(webhook_deliveries::id)
            .get_result(conn)?;
        Delivery::find(conn, webhook, id)
    }
}
