//! The delivery worker: claims due deliveries, signs and POSTs them, and records what the
//! receiver said.
//!
//! - Claims: one statement marks up to `batch_size` due deliveries as this worker's until a
//!   lease ends (`claimed_by`, `claimed_until`). On PostgreSQL the rows are picked with
//!   `FOR UPDATE SKIP LOCKED`, so instances on one database never pick the same row; on SQLite
//!   the statement runs under the single writer lock. A worker that dies leaves its claims to
//!   run out; then any instance takes them over. The result of an attempt is written only
//!   while the claim is still this worker's.
//! - Order: a delivery is due only when no earlier delivery (by event) of the same entity to
//!   the same subscription is still pending, so a receiver gets an item's events in `seq`
//!   order; an event is sent once it has its position in the feed (PostgreSQL numbers it
//!   after commit: the worker numbers before it claims).
//! - The body is built from the event at the first attempt (the change as `GET /changes`
//!   shows it) and kept, so that every retry sends the same bytes under the same `webhook-id`.
//! - Failures are retried after the configured delays (±10 % jitter), or after `Retry-After`
//!   on 429 and 503; a `410 Gone` deactivates the subscription, and so do failures without a
//!   success for `deactivate_after_failing_secs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::common::actor::Actor;
use crate::common::db::schema::{webhook_deliveries, webhook_subscriptions};
use crate::common::db::{Db, DbConnection, now};
use crate::common::error::ApiError;
use crate::common::feed;
use crate::common::history::{self, Subject};
use crate::webhooks::model::{SECRET_PREFIX, WEBHOOK};
use crate::webhooks::outbox::{DELIVERED, FAILED, PENDING, sqlite_sql};
use crate::webhooks::settings::{WebhookSettings, secs_duration};
use crate::webhooks::target::{GuardedResolver, check_literal};

/// How much of a receiver's answer is kept.
pub const RESPONSE_KEPT_BYTES: usize = 1024;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// The `webhook-signature` of a message: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` for
/// each secret (`whsec_…`), separated by spaces.
pub fn signature(secrets: &[&str], message_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|secret| {
            let key = STANDARD
                .decode(secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret))
                .ok()?;
            let mut mac = HmacSha256::new_from_slice(&key).ok()?;
            mac.update(message_id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            Some(format!(
                "v1,{}",
                STANDARD.encode(mac.finalize().into_bytes())
            ))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(QueryableByName)]
struct Claimed {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// Picks due deliveries and marks them as `instance`'s until `until`. `$1` instance, `$2`
/// until, `$3` now, `$4` how many.
const CLAIM: &str = "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2 \
    WHERE id IN (SELECT d.id FROM webhook_deliveries d \
        JOIN webhook_subscriptions s ON s.id = d.subscription_id \
        LEFT JOIN events e ON e.id = d.event_id \
        WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
          AND (d.claimed_until IS NULL OR d.claimed_until < $3) \
          AND s.active \
          AND (d.event_id IS NULL OR e.seq IS NOT NULL) \
          AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o \
              WHERE o.subscription_id = d.subscription_id AND o.status = 'pending' \
                AND o.entity_type = d.entity_type AND o.entity_id = d.entity_id \
                AND o.event_id < d.event_id) \
        ORDER BY d.id LIMIT $4 LOCKING) \
    RETURNING id";

/// Claims up to `batch` due deliveries for `instance` for `lease`; returns their ids.
pub fn claim(
    conn: &mut DbConnection,
    instance: &str,
    lease: Duration,
    batch: i64,
) -> Result<Vec<i64>, ApiError> {
    let at = now();
    // An idle look reads one index and writes nothing (no write lock on SQLite, no numbering).
    let due: bool = diesel::select(diesel::dsl::exists(
        webhook_deliveries::table
            .inner_join(webhook_subscriptions::table)
            .filter(
                webhook_deliveries::status
                    .eq(PENDING)
                    .and(webhook_deliveries::next_attempt_at.le(at))
                    .and(webhook_subscriptions::active.eq(true)),
            ),
    ))
    .get_result(conn)?;
    if !due {
        return Ok(Vec::new());
    }
    feed::number_committed(conn)?;
    let until = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
    macro_rules! run {
        ($conn:expr, $sql:expr) => {
            diesel::sql_query($sql)
                .bind::<Text, _>(instance)
                .bind::<Timestamp, _>(until)
                .bind::<Timestamp, _>(at)
                .bind::<BigInt, _>(batch)
                .load::<Claimed>($conn)
        };
    }
    let mut ids: Vec<i64> = match conn {
        DbConnection::Postgresql(pg) => {
            run!(pg, CLAIM.replace("LOCKING", "FOR UPDATE OF d SKIP LOCKED"))
        }
        DbConnection::Sqlite(sqlite) => run!(sqlite, sqlite_sql(&CLAIM.replace("LOCKING", ""))),
    }?
    .into_iter()
    .map(|c| c.id)
    .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// A claimed delivery, ready to send.
#[derive(Debug, Clone)]
pub struct Job {
    id: i64,
    subscription_id: i64,
    message_id: String,
    body: String,
    attempts: i32,
    url: String,
    secrets: Vec<String>,
}

type JobRow = (
    i64,
    i64,
    Option<i64>,
    String,
    Option<String>,
    i32,
    String,
    String,
    Option<String>,
    Option<NaiveDateTime>,
);

/// The claimed delivery `id` with its body (built now from the event if this is its first
/// attempt) and the secrets that sign it; `None` when it is no longer this worker's.
pub fn prepare(conn: &mut DbConnection, id: i64, instance: &str) -> Result<Option<Job>, ApiError> {
    let row: Option<JobRow> = webhook_deliveries::table
        .inner_join(webhook_subscriptions::table)
        .filter(
            webhook_deliveries::id
                .eq(id)
                .and(webhook_deliveries::claimed_by.eq(instance)),
        )
        .select((
            webhook_deliveries::id,
            webhook_deliveries::subscription_id,
            webhook_deliveries::event_id,
            webhook_deliveries::message_id,
            webhook_deliveries::payload,
            webhook_deliveries::attempts,
            webhook_subscriptions::url,
            webhook_subscriptions::secret,
            webhook_subscriptions::previous_secret,
            webhook_subscriptions::previous_secret_expires_at,
        ))
        .first(conn)
        .optional()?;
    let Some((
        id,
        subscription_id,
        event_id,
        message_id,
        payload,
        attempts,
        url,
        secret,
        previous,
        until,
    )) = row
    else {
        return Ok(None);
    };
    let body = match (payload, event_id) {
        (Some(payload), _) => payload,
        (None, Some(event_id)) => {
            let Some(change) = crate::changes::model::by_ids(conn, &[event_id])?
                .into_iter()
                .next()
            else {
                return Err(ApiError::internal(format!(
                    "event {event_id} of delivery {id} has no position yet"
                )));
            };
            let body = json!({
                "type": crate::webhooks::outbox::event_type(change.entity_type.as_str(), &change.kind),
                "timestamp": change.at,
                "data": change,
            })
            .to_string();
            diesel::update(webhook_deliveries::table.find(id))
                .set(webhook_deliveries::payload.eq(&body))
                .execute(conn)?;
            body
        }
        (None, None) => {
            return Err(ApiError::internal(format!("delivery {id} has no body")));
        }
    };
    let mut secrets = vec![secret];
    if let (Some(previous), Some(until)) = (previous, until)
        && until > now()
    {
        secrets.push(previous);
    }
    Ok(Some(Job {
        id,
        subscription_id,
        message_id,
        body,
        attempts,
        url,
        secrets,
    }))
}

/// What an attempt came to.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The receiver's status, when it answered.
    pub status: Option<u16>,
    /// The first KiB of its answer.
    pub response: Option<String>,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// `Retry-After` of a 429 or 503.
    pub retry_after: Option<Duration>,
}

/// The HTTP client of a worker: no redirects followed, the attempt timeout, and the guarded
/// resolver. Not `Send`: made on the worker's own thread.
pub fn client(settings: &WebhookSettings) -> awc::Client {
    let resolver = actix_tls::connect::Resolver::custom(GuardedResolver {
        allow_private: settings.allow_private_targets,
    });
    let connector = awc::Connector::new()
        .connector(actix_tls::connect::Connector::new(resolver).service())
        .timeout(settings.timeout());
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .timeout(settings.timeout())
        .add_default_header((
            actix_web::http::header::USER_AGENT,
            concat!("opsboard-webhooks/", env!("CARGO_PKG_VERSION")),
        ))
        .finish()
}

/// Signs and POSTs the job's body.
pub async fn send(client: &awc::Client, job: &Job, settings: &WebhookSettings) -> Outcome {
    let failed = |error: String| Outcome {
        status: None,
        response: None,
        error: Some(error),
        retry_after: None,
    };
    if let Err(reason) = check_literal(&job.url, settings.allow_private_targets) {
        return failed(reason);
    }
    let timestamp = chrono::Utc::now().timestamp();
    let secrets: Vec<&str> = job.secrets.iter().map(String::as_str).collect();
    let signature = signature(&secrets, &job.message_id, timestamp, job.body.as_bytes());
    let request = client
        .post(job.url.as_str())
        .insert_header(("content-type", "application/json"))
        .insert_header(("webhook-id", job.message_id.as_str()))
        .insert_header(("webhook-timestamp", timestamp.to_string()))
        .insert_header(("webhook-signature", signature));
    let attempt = async {
        let mut response = request
            .send_body(job.body.clone())
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(actix_web::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut kept = Vec::new();
        use futures_util::StreamExt;
        while kept.len() < RESPONSE_KEPT_BYTES {
            match response.next().await {
                Some(Ok(chunk)) => kept.extend_from_slice(&chunk),
                _ => break,
            }
        }
        kept.truncate(RESPONSE_KEPT_BYTES);
        Ok::<_, String>((status, storable(&kept), retry_after))
    };
    match actix_web::rt::time::timeout(settings.timeout(), attempt).await {
        Err(_) => failed(format!(
            "no answer within {} s",
            settings.timeout().as_secs_f64()
        )),
        Ok(Err(error)) => failed(storable(error.as_bytes())),
        Ok(Ok((status, body, retry_after))) => Outcome {
            status: Some(status),
            response: Some(body),
            error: (!(200..300).contains(&status))
                .then(|| format!("the receiver answered {status}")),
            retry_after: if status == 429 || status == 503 {
                retry_after
            } else {
                None
            },
        },
    }
}

/// Text from a receiver as it can be stored on both engines: invalid UTF-8 (also a character
/// cut at the 1 KiB limit) as U+FFFD, and no NUL, which PostgreSQL's TEXT refuses.
fn storable(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).replace('\0', "\u{fffd}")
}

/// `Retry-After` as seconds or as an HTTP date, capped at a day.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            (at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// Writes what the attempt came to, while the claim is still `instance`'s: delivered; or
/// failed for good (410, or the schedule used up); or due again later. Deactivates the
/// subscription on 410 and after failing for too long, with an event in its history.
pub fn record(
    conn: &mut DbConnection,
    job: &Job,
    instance: &str,
    outcome: &Outcome,
    settings: &WebhookSettings,
) -> Result<(), ApiError> {
    let at = now();
    let attempts = job.attempts + 1;
    let mine = webhook_deliveries::table.filter(
        webhook_deliveries::id
            .eq(job.id)
            .and(webhook_deliveries::claimed_by.eq(instance))
            .and(webhook_deliveries::status.eq(PENDING)),
    );
    let common = (
        webhook_deliveries::attempts.eq(attempts),
        webhook_deliveries::last_attempt_at.eq(Some(at)),
        webhook_deliveries::last_status.eq(outcome.status.map(i32::from)),
        webhook_deliveries::last_response.eq(outcome.response.clone()),
        webhook_deliveries::last_error.eq(outcome.error.clone()),
        webhook_deliveries::claimed_by.eq(None::<String>),
        webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
    );
    let subscription = webhook_subscriptions::table.find(job.subscription_id);
    if outcome.error.is_none() {
        let written = diesel::update(mine)
            .set((
                common,
                webhook_deliveries::status.eq(DELIVERED),
                webhook_deliveries::delivered_at.eq(Some(at)),
                webhook_deliveries::next_attempt_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        if written == 1 {
            diesel::update(subscription.filter(webhook_subscriptions::failing_since.is_not_null()))
                .set(webhook_subscriptions::failing_since.eq(None::<NaiveDateTime>))
                .execute(conn)?;
        }
        return Ok(());
    }
    let error = outcome.error.clone().unwrap_or_default();
    if outcome.status == Some(410) {
        let written = diesel::update(mine)
            .set((
                common,
                webhook_deliveries::status.eq(FAILED),
                webhook_deliveries::next_attempt_at.eq(None::<NaiveDateTime>),
            ))
            .execute(conn)?;
        if written == 1 {
            deactivate(
                conn,
                job.subscription_id,
                "the receiver answered 410 Gone: it no longer takes these events",
            )?;
        }
        return Ok(());
    }
    let failed_attempts = usize::try_from(attempts).unwrap_or(usize::MAX);
    let next = settings.retry_delay(failed_attempts).map(|delay| {
        let wait = outcome.retry_after.unwrap_or_else(|| jitter(delay));
        at + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::days(1))
    });
    let written = diesel::update(mine)
        .set((
            common,
            webhook_deliveries::status.eq(if next.is_some() { PENDING } else { FAILED }),
            webhook_deliveries::next_attempt_at.eq(next),
        ))
        .execute(conn)?;
    if written != 1 {
        return Ok(());
    }
    let failing_since: Option<NaiveDateTime> = subscription
        .select(webhook_subscriptions::failing_since)
        .first::<Option<NaiveDateTime>>(conn)
        .optional()?
        .flatten();
    match failing_since {
        None => {
            diesel::update(subscription)
                .set(webhook_subscriptions::failing_since.eq(Some(at)))
                .execute(conn)?;
        }
        Some(since)
            if (at - since).to_std().unwrap_or(Duration::ZERO)
                >= secs_duration(settings.deactivate_after_failing_secs) =>
        {
            deactivate(
                conn,
                job.subscription_id,
                &format!(
                    "every delivery has failed since {} UTC; the last: {error}",
                    since.format("%Y-%m-%d %H:%M:%S")
                ),
            )?;
        }
        Some(_) => {}
    }
    Ok(())
}

/// A wait varied by up to ±10 %, so that many receivers failing at once do not all retry at
/// the same moment.
fn jitter(delay: Duration) -> Duration {
    delay.mul_f64(rand::random_range(0.9..=1.1))
}

/// Turns a subscription off, saying why, as an event of the system in its history.
fn deactivate(conn: &mut DbConnection, id: i64, reason: &str) -> Result<(), ApiError> {
    let written = diesel::update(
        webhook_subscriptions::table.filter(
            webhook_subscriptions::id
                .eq(id)
                .and(webhook_subscriptions::active.eq(true)),
        ),
    )
    .set((
        webhook_subscriptions::active.eq(false),
        webhook_subscriptions::disabled_reason.eq(Some(reason)),
        webhook_subscriptions::version.eq(webhook_subscriptions::version + 1),
        webhook_subscriptions::updated_at.eq(now()),
    ))
    .execute(conn)?;
    if written == 1 {
        log::warn!("webhook {id} deactivated: {reason}");
        history::record(
            conn,
            Subject {
                entity_type: WEBHOOK,
                entity_id: id,
            },
            "deactivated",
            &Actor::SYSTEM,
            json!({"active": {"old": true, "new": false}, "reason": reason}),
        )?;
    }
    Ok(())
}

/// The deliveries a worker has under way, and the signal that one has finished.
#[derive(Clone, Default)]
struct InFlight {
    count: std::rc::Rc<std::cell::Cell<usize>>,
    done: std::rc::Rc<tokio::sync::Notify>,
}

/// Claims as many due deliveries as the worker has free slots (`batch_size` at most under way),
/// prepares them on one connection and starts sending each in a task of its own, which
/// records the outcome and frees its slot. Returns how many it started. So a receiver that
/// takes its full timeout holds one slot, not the whole worker.
async fn run_once(
    db: &Db,
    client: &awc::Client,
    instance: &Arc<str>,
    settings: &Arc<WebhookSettings>,
    in_flight: &InFlight,
) -> Result<usize, ApiError> {
    let slots = usize::try_from(settings.batch_size).unwrap_or(1);
    let free = slots.saturating_sub(in_flight.count.get());
    if free == 0 {
        return Ok(0);
    }
    let (me, lease) = (instance.clone(), settings.lease());
    let jobs = db
        .run(move |conn| {
            let ids = claim(conn, &me, lease, i64::try_from(free).unwrap_or(1))?;
            let mut jobs = Vec::with_capacity(ids.len());
            for id in ids {
                match prepare(conn, id, &me) {
                    Ok(Some(job)) => jobs.push(job),
                    Ok(None) => {}
                    // The claim runs out and the delivery is tried again after the lease.
                    Err(error) => log::warn!("webhook delivery {id}: {error}"),
                }
            }
            Ok(jobs)
        })
        .await?;
    let started = jobs.len();
    for job in jobs {
        in_flight.count.set(in_flight.count.get() + 1);
        let (db, client, instance, settings, in_flight) = (
            db.clone(),
            client.clone(),
            instance.clone(),
            settings.clone(),
            in_flight.clone(),
        );
        actix_web::rt::spawn(async move {
            let id = job.id;
            if let Err(error) = deliver(&db, &client, job, &instance, &settings).await {
                log::warn!("webhook delivery {id}: {error}");
            }
            in_flight.count.set(in_flight.count.get().saturating_sub(1));
            in_flight.done.notify_one();
        });
    }
    Ok(started)
}

/// One attempt of one claimed, prepared delivery: send, then record the outcome.
async fn deliver(
    db: &Db,
    client: &awc::Client,
    job: Job,
    instance: &Arc<str>,
    settings: &Arc<WebhookSettings>,
) -> Result<(), ApiError> {
    let outcome = send(client, &job, settings).await;
    if let Some(error) = &outcome.error {
        log::info!("webhook delivery {} to {} failed: {error}", job.id, job.url);
    }
    let (me, settings) = (instance.clone(), settings.clone());
    db.transaction(move |conn| record(conn, &job, &me, &outcome, &settings))
        .await
}

/// A running worker; dropping it (or [`WorkerHandle::stop`]) stops it from claiming more
/// (within the poll interval when idle); deliveries under way finish and are recorded.
pub struct WorkerHandle {
    stop: Arc<AtomicBool>,
}

impl WorkerHandle {
    /// Stops the worker.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the delivery worker on the current actix runtime (the server's, or a test's).
pub fn spawn(db: Db, settings: WebhookSettings) -> WorkerHandle {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = WorkerHandle { stop: stop.clone() };
    let instance: Arc<str> = Arc::from(format!(
        "{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let settings = Arc::new(settings);
    actix_web::rt::spawn(async move {
        let client = client(&settings);
        // Woken by the commits that wrote deliveries, not by every write.
        let mut commits = db.observed_commits();
        let poll = Duration::from_millis(settings.poll_interval_ms);
        let mut next_clean_up = std::time::Instant::now();
        let in_flight = InFlight::default();
        log::info!("webhook worker {instance} started");
        while !stop.load(Ordering::SeqCst) {
            if std::time::Instant::now() >= next_clean_up {
                next_clean_up += CLEAN_UP_EVERY;
                let keep = settings.keep_deliveries_days;
                match db.run(move |conn| clean_up(conn, keep)).await {
                    Ok(0) => {}
                    Ok(n) => log::debug!("deleted {n} old webhook deliveries"),
                    Err(error) => log::warn!("cleaning up webhook deliveries failed: {error}"),
                }
            }
            commits.borrow_and_update();
            let started = match run_once(&db, &client, &instance, &settings, &in_flight).await {
                Ok(n) => n,
                Err(error) => {
                    log::warn!("webhook worker: {error}");
                    0
                }
            };
            if started > 0 {
                continue;
            }
            // Idle or every slot taken: until a commit of this process that wrote deliveries,
            // a delivery finishing, or the poll interval (another instance's commits, retries
            // falling due).
            let commit = std::pin::pin!(commits.changed());
            let finished = std::pin::pin!(in_flight.done.notified());
            let _ =
                actix_web::rt::time::timeout(poll, futures_util::future::select(commit, finished))
                    .await;
        }
        log::info!("webhook worker {instance} stopped");
    });
    handle
}

/// How often a worker deletes old deliveries.
const CLEAN_UP_EVERY: Duration = Duration::from_secs(600);

/// Deletes the deliveries that were delivered or given up on more than `keep_days` days ago;
/// returns how many.
pub fn clean_up(conn: &mut DbConnection, keep_days: u32) -> Result<usize, ApiError> {
    let before = now() - chrono::Duration::days(i64::from(keep_days));
    Ok(diesel::delete(
        webhook_deliveries::table.filter(
            webhook_deliveries::status
                .ne(PENDING)
                .and(webhook_deliveries::created_at.lt(before)),
        ),
    )
    .execute(conn)?)
}

/// A delivery's body for a test ping of subscription `id`.
pub fn ping_body(id: i64) -> Value {
    json!({
        "type": "ping",
        "timestamp": chrono::Utc::now(),
        "data": {"webhook_id": id, "message": "A test delivery from opsboard."},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_standard_webhooks_one() {
        // Computed apart from this code, with Python's hmac and base64 over
        // "msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{\"test\": 2432232314}" (the tests over
        // HTTP verify deliveries with the reference library, standardwebhooks).
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3wqpbvkYhXk=";
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,5fRi1qlxxpItomjdxIgM+V3DRQI8rzno5n78aPLN+2Q="
        );
        let two = signature(&[secret, secret], "m", 1, b"{}");
        assert_eq!(two.split(' ').count(), 2);
    }

    #[test]
    fn retry_after_is_seconds_or_a_date_and_at_most_a_day() {
        assert_eq!(parse_retry_after("120"), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("9999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let soon = (chrono::Utc::now() + chrono::Duration::seconds(90)).to_rfc2822();
        let wait = parse_retry_after(&soon).expect("a date");
        assert!(wait > Duration::from_secs(80) && wait <= Duration::from_secs(90));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_schedule_ends() {
        let settings = WebhookSettings {
            allow_private_targets: false,
            retry_delays_secs: vec![5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 86400.0],
            deactivate_after_failing_secs: 86400.0,
            timeout_secs: 10.0,
            poll_interval_ms: 1000,
            lease_secs: 60.0,
            batch_size: 20,
            worker: true,
            keep_deliveries_days: 30,
        };
        assert_eq!(settings.validate(), Ok(()));
        assert_eq!(settings.retry_delay(0), None);
        assert_eq!(settings.retry_delay(1), Some(Duration::from_secs(5)));
        assert_eq!(settings.retry_delay(7), Some(Duration::from_secs(86400)));
        assert_eq!(settings.retry_delay(8), None);
        let jittered = jitter(Duration::from_secs(100));
        assert!(jittered >= Duration::from_secs(90) && jittered <= Duration::from_secs(110));
    }
}
