//! HTTP handlers of `/api/v1/webhooks`: admins only, and with an API token only one that
//! holds the `webhooks` scope (checked for every request by the caller extractor).

use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, web};

use crate::common::actor::Role;
use crate::common::db::Db;
use crate::common::error::ApiError;
use crate::common::pagination::Page;
use crate::common::version::Precondition;
use crate::web::auth::CurrentUser;
use crate::web::extract::{Json, Query};
use crate::web::precondition::IfMatchHeader;
use crate::web::respond::{PageResponse, created, ok_with_etag};
use crate::webhooks::deliveries::{Delivery, DeliveryFilter};
use crate::webhooks::model::{NewWebhook, Webhook, WebhookFilter, WebhookPatch, WebhookWithSecret};
use crate::webhooks::settings::WebhookSettings;
use crate::webhooks::target;

/// `{id}` of `/webhooks/{id}`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct WebhookIdPath {
    /// The subscription's id
    pub id: i64,
}

/// `{id}` and `{delivery_id}` of `/webhooks/{id}/deliveries/{delivery_id}/redeliver`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    /// The subscription's id
    pub id: i64,
    /// The delivery's id
    pub delivery_id: i64,
}

fn allow_private(settings: &Option<web::Data<WebhookSettings>>) -> bool {
    settings.as_ref().is_some_and(|s| s.allow_private_targets)
}

/// List webhook subscriptions.
///
/// By id; `active=` for only active or inactive ones. Never the secrets. Admins (an API token
/// needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookFilter),
    responses((status = 200, description = "One page of subscriptions", body = Page<Webhook>))
)]
#[get("/webhooks")]
pub async fn list_webhooks(
    db: web::Data<Db>,
    caller: CurrentUser,
    filter: Query<WebhookFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let filter = filter.0;
    let page = db.run(move |conn| Webhook::list(conn, &filter)).await?;
    Ok(page.respond(&req))
}

/// Subscribe a receiver to events.
///
/// Every event of the history whose kind is in `events` (or all with `["*"]`), optionally only
/// of one `entity_type` or one `board`, is POSTed to `url` as the Standard Webhooks
/// specification says: headers `webhook-id` (the same on every retry), `webhook-timestamp` and
/// `webhook-signature` (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">` with the secret), body
/// `{"type": "item.moved", "timestamp": …, "data": <the change as GET /changes shows it>}`.
/// Failed deliveries are retried with backoff for about a day. The `url` must resolve to
/// public addresses (422 naming `url` otherwise). The `secret` is in this answer only.
/// Admins (an API token needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    request_body = NewWebhook,
    responses((status = 201, description = "The subscription and, once, its secret",
        body = WebhookWithSecret,
        headers(("Location" = String, description = "The subscription's URL"),
                ("ETag" = String, description = "Its version"))))
)]
#[post("/webhooks")]
pub async fn create_webhook(
    db: web::Data<Db>,
    caller: CurrentUser,
    settings: Option<web::Data<WebhookSettings>>,
    body: Json<NewWebhook>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let form = body.0;
    let mut errors = Vec::new();
    crate::webhooks::model::check_url(&mut errors, &form.url);
    ApiError::from_fields(errors)?;
    target::check(&form.url, allow_private(&settings)).await?;
    let actor = caller.actor.clone();
    let made = db
        .transaction(move |conn| Webhook::create(conn, &form, &actor))
        .await?;
    let location = format!("/api/v1/webhooks/{}", made.webhook.id);
    let version = made.webhook.version;
    Ok(created(&made, &location, version))
}

/// Get a webhook subscription.
///
/// Never its secret. Admins (an API token needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookIdPath),
    responses((status = 200, description = "The subscription", body = Webhook,
        headers(("ETag" = String, description = "Its version"))))
)]
#[get("/webhooks/{id}")]
pub async fn get_webhook(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let webhook = db.run(move |conn| Webhook::find(conn, id)).await?;
    Ok(ok_with_etag(&webhook, webhook.version))
}

/// Change a webhook subscription.
///
/// Only the fields given change; `If-Match` guards against overwriting a change made since
/// you read it. Setting `active` to true again after opsboard deactivated the subscription
/// clears `disabled_reason` and resumes delivery (pending deliveries go out). A new `url` is
/// checked as on creation. Admins (an API token needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookIdPath, IfMatchHeader),
    request_body = WebhookPatch,
    responses((status = 200, description = "The changed subscription", body = Webhook,
        headers(("ETag" = String, description = "Its new version"))))
)]
#[patch("/webhooks/{id}")]
pub async fn update_webhook(
    db: web::Data<Db>,
    caller: CurrentUser,
    settings: Option<web::Data<WebhookSettings>>,
    id: web::Path<i64>,
    if_match: Precondition,
    body: Json<WebhookPatch>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let (id, patch) = (id.into_inner(), body.0);
    if let Some(url) = &patch.url {
        let mut errors = Vec::new();
        crate::webhooks::model::check_url(&mut errors, url);
        ApiError::from_fields(errors)?;
        target::check(url, allow_private(&settings)).await?;
    }
    let actor = caller.actor.clone();
    let webhook = db
        .transaction(move |conn| Webhook::update(conn, id, &patch, if_match, &actor))
        .await?;
    Ok(ok_with_etag(&webhook, webhook.version))
}

/// Delete a webhook subscription.
///
/// With its deliveries: nothing more is sent. Admins (an API token needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookIdPath, IfMatchHeader),
    responses((status = 204, description = "Deleted"))
)]
#[delete("/webhooks/{id}")]
pub async fn delete_webhook(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let actor = caller.actor.clone();
    db.transaction(move |conn| Webhook::delete(conn, id, if_match, &actor))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotate a webhook's signing secret.
///
/// Issues a new secret, shown in this answer only. For 24 hours deliveries are signed with
/// both, the new and the previous one (two `v1,…` entries in `webhook-signature`), so that the
/// receiver can switch without missing a delivery. Admins (an API token needs the `webhooks`
/// scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookIdPath, IfMatchHeader),
    responses((status = 200, description = "The subscription and, once, its new secret",
        body = WebhookWithSecret,
        headers(("ETag" = String, description = "Its new version"))))
)]
#[post("/webhooks/{id}/rotate-secret")]
pub async fn rotate_secret(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    if_match: Precondition,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let actor = caller.actor.clone();
    let rotated = db
        .transaction(move |conn| Webhook::rotate_secret(conn, id, if_match, &actor))
        .await?;
    let version = rotated.webhook.version;
    Ok(ok_with_etag(&rotated, version))
}

/// Send a test ping.
///
/// Queues a delivery of type `ping` (`data`: the subscription's id and a message), sent and
/// signed like any event; follow it in the deliveries. Admins (an API token needs the
/// `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookIdPath),
    responses((status = 202, description = "The queued ping", body = Delivery))
)]
#[post("/webhooks/{id}/test")]
pub async fn test_webhook(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let delivery = db.transaction(move |conn| Delivery::ping(conn, id)).await?;
    db.note_observed_commit();
    Ok(HttpResponse::Accepted().json(delivery))
}

/// List a webhook's deliveries.
///
/// Newest first: each with its status (`pending`, `delivered`, `failed`), attempts, the last
/// answer's HTTP status and first KiB of body, the last error and the next attempt. Admins
/// (an API token needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(WebhookIdPath, DeliveryFilter),
    responses((status = 200, description = "One page of deliveries", body = Page<Delivery>))
)]
#[get("/webhooks/{id}/deliveries")]
pub async fn list_deliveries(
    db: web::Data<Db>,
    caller: CurrentUser,
    id: web::Path<i64>,
    filter: Query<DeliveryFilter>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let (id, filter) = (id.into_inner(), filter.0);
    let page = db
        .run(move |conn| Delivery::list(conn, id, &filter))
        .await?;
    Ok(page.respond(&req))
}

/// Deliver again.
///
/// A delivered or failed delivery is sent again as a new delivery with the same `webhook-id`
/// and body (receivers that keep the ids they processed recognise it); a pending one is made
/// due at once. Admins (an API token needs the `webhooks` scope).
#[utoipa::path(
    tag = "webhooks",
    params(DeliveryPath),
    responses((status = 202, description = "The delivery that will be sent", body = Delivery))
)]
#[post("/webhooks/{id}/deliveries/{delivery_id}/redeliver")]
pub async fn redeliver(
    db: web::Data<Db>,
    caller: CurrentUser,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Role::Admin)?;
    let (id, delivery_id) = path.into_inner();
    let delivery = db
        .transaction(move |conn| Delivery::redeliver(conn, id, delivery_id))
        .await?;
    db.note_observed_commit();
    Ok(HttpResponse::Accepted().json(delivery))
}
