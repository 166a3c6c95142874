//! Webhooks: subscriptions, signed deliveries that a Standard Webhooks library verifies,
//! retries with the same `webhook-id`, deactivation, rotation, SSRF refusals, restarts and two
//! instances on one database delivering each event once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use opsboard::config::Settings;
use opsboard::webhooks::worker::{self, WorkerHandle};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    subscriptions_are_managed_with_versions_and_the_secret_is_shown_once => super::fast,
    deliveries_are_signed_and_carry_the_event_as_the_feed_shows_it => super::fast,
    a_failing_receiver_gets_the_same_message_again_and_events_of_an_item_stay_in_order => super::fast,
    gone_deactivates_and_turning_it_on_again_resumes => super::fast,
    failing_for_too_long_deactivates_with_a_reason => super::give_up_soon,
    a_rotated_secret_signs_beside_the_new_one => super::fast,
    a_receivers_answer_is_kept_to_a_kib_whatever_it_holds => super::fast,
    a_slow_receiver_does_not_hold_up_the_others => super::patient,
    redelivery_and_the_test_ping_reach_the_receiver => super::fast,
    each_delivery_wakes_a_worker_that_polls_once_a_minute => super::slow_poll,
    private_targets_are_refused_when_not_allowed => super::private_refused,
    only_admins_and_webhook_tokens_manage_webhooks => super::fast,
    a_restart_loses_and_duplicates_nothing => super::fast,
    a_dead_workers_claims_are_taken_over_after_the_lease => super::fast,
    two_instances_on_one_database_deliver_each_event_once => super::fast,
    concurrent_rotations_without_if_match_all_apply => super::fast,
);

/// Short retries, a quick worker, receivers on 127.0.0.1 allowed.
fn fast(settings: &mut Settings) {
    let hooks = &mut settings.webhooks;
    hooks.allow_private_targets = true;
    hooks.retry_delays_secs = vec![0.2, 0.2, 0.2, 0.2];
    hooks.poll_interval_ms = 50;
    hooks.timeout_secs = 2.0;
    hooks.lease_secs = 3.0;
    hooks.worker = false;
    settings.database.pool_size = 8;
}

/// A worker that looks on its own once a minute: within a test, only a wake reaches it.
fn slow_poll(settings: &mut Settings) {
    fast(settings);
    settings.webhooks.poll_interval_ms = 60_000;
}

fn give_up_soon(settings: &mut Settings) {
    fast(settings);
    settings.webhooks.retry_delays_secs = vec![0.2; 50];
    settings.webhooks.deactivate_after_failing_secs = 0.8;
}

fn patient(settings: &mut Settings) {
    fast(settings);
    settings.webhooks.timeout_secs = 10.0;
    settings.webhooks.lease_secs = 15.0;
}

fn private_refused(settings: &mut Settings) {
    fast(settings);
    settings.webhooks.allow_private_targets = false;
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    id: String,
    timestamp: String,
    signature: String,
    body: Vec<u8>,
    /// What the receiver answered.
    answered: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Verifies the request with the reference implementation of Standard Webhooks.
    fn verify(&self, secret: &str) -> Result<(), String> {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("webhook-id", &self.id),
            ("webhook-timestamp", &self.timestamp),
            ("webhook-signature", &self.signature),
        ] {
            headers.insert(
                name,
                http::HeaderValue::from_str(value).map_err(|e| e.to_string())?,
            );
        }
        let hook = standardwebhooks::Webhook::new(secret).map_err(|e| format!("{e:?}"))?;
        hook.verify(&self.body, &headers)
            .map_err(|e| format!("{e:?}"))
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers to give, in turn; then 200.
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    /// Answer every request with this status (when set), after the script.
    always: Mutex<Option<u16>>,
    /// The body of every answer, when set.
    body: Mutex<Option<Vec<u8>>>,
    /// How long to take before answering.
    delay: Mutex<Option<Duration>>,
}

/// A small server on a free port that records every request and answers as scripted.
struct Receiver {
    url: String,
    state: Arc<ReceiverState>,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<ReceiverState>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let delay = *state.delay.lock().expect("lock");
    if let Some(delay) = delay {
        actix_web::rt::time::sleep(delay).await;
    }
    let scripted = state.script.lock().expect("lock").pop_front();
    let always = *state.always.lock().expect("lock");
    let (status, retry_after) = scripted.unwrap_or((always.unwrap_or(200), None));
    state.received.lock().expect("lock").push(Received {
        path: req.path().to_string(),
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body: body.to_vec(),
        answered: status,
    });
    let mut response =
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a status"));
    if let Some(wait) = retry_after {
        response.insert_header(("Retry-After", wait));
    }
    match state.body.lock().expect("lock").clone() {
        Some(body) => response.body(body),
        None => response.body(format!("answer {status}")),
    }
}

impl Receiver {
    fn start() -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(ReceiverState::default());
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Receiver {
            url: format!("http://127.0.0.1:{port}/hook"),
            state,
            handle,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("lock").clone()
    }

    fn script(&self, answers: &[(u16, Option<&'static str>)]) {
        self.state
            .script
            .lock()
            .expect("lock")
            .extend(answers.iter().copied());
    }

    fn always(&self, status: Option<u16>) {
        *self.state.always.lock().expect("lock") = status;
    }

    /// Waits until `done` holds for what was received (at most 15 s).
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received: {:#?}",
                received
                    .iter()
                    .map(|r| (&r.id, r.answered))
                    .collect::<Vec<_>>()
            );
            actix_web::rt::time::sleep(Duration::from_millis(30)).await;
        }
    }
}

/// A board with a lead, so that items need no accountable person of their own.
async fn board(app: &TestApp, key: &str) {
    let (lead, _) = app.user("manager").create().await;
    app.board(key).lead(&lead).create().await;
}

fn start_worker(app: &TestApp) -> WorkerHandle {
    worker::spawn(app.state.db.clone(), app.state.settings.webhooks.clone())
}

/// Subscribes `url` to `body`'s events (all when not given); the answer with its secret.
async fn subscribe(app: &TestApp, url: &str, extra: Value) -> Value {
    let mut body = json!({"url": url, "events": ["*"]});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let made = app.post("/api/v1/webhooks", &app.admin_token, &body).await;
    assert_eq!(made.status, 201, "{}", made.text);
    made.json()
}

async fn webhook(app: &TestApp, id: &Value) -> Value {
    let got = app
        .get(&format!("/api/v1/webhooks/{id}"), &app.admin_token)
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    got.json()
}

async fn deliveries(app: &TestApp, id: &Value) -> Vec<Value> {
    let got = app
        .get(
            &format!("/api/v1/webhooks/{id}/deliveries?limit=500"),
            &app.admin_token,
        )
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    got.json()["items"].as_array().cloned().unwrap_or_default()
}

/// The subscription's deliveries once none is pending (the receiver may have a delivery a
/// moment before its outcome is recorded); at most 15 s.
async fn settled(app: &TestApp, id: &Value) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let listed = deliveries(app, id).await;
        if listed.iter().all(|d| d["status"] != "pending") {
            return listed;
        }
        assert!(Instant::now() < deadline, "still pending: {listed:#?}");
        actix_web::rt::time::sleep(Duration::from_millis(30)).await;
    }
}

/// Waits until `done` holds for the subscription (at most 15 s).
async fn wait_for_webhook(
    app: &TestApp,
    id: &Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let hook = webhook(app, id).await;
        if done(&hook) {
            return hook;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {hook}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn subscriptions_are_managed_with_versions_and_the_secret_is_shown_once(app: TestApp) {
    board(&app, "OPS").await;
    let made = subscribe(
        &app,
        "http://127.0.0.1:9/hook?token=geheim",
        json!({"events": ["moved", "created", "moved"], "entity_type": "item", "board": "ops",
               "description": "Leitstand"}),
    )
    .await;
    let secret = made["secret"].as_str().expect("a secret");
    let key = secret.strip_prefix("whsec_").expect("whsec_ prefix");
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(key)
        .expect("base64");
    assert_eq!(bytes.len(), 32);
    let id = made["webhook"]["id"].clone();
    assert_eq!(made["webhook"]["events"], json!(["created", "moved"]));
    assert_eq!(made["webhook"]["board"], "OPS");
    assert_eq!(made["webhook"]["entity_type"], "item");
    assert_eq!(made["webhook"]["active"], true);
    assert_eq!(made["webhook"]["version"], 1);

    let got = app
        .get(&format!("/api/v1/webhooks/{id}"), &app.admin_token)
        .await;
    assert_eq!(got.header("etag").as_deref(), Some("\"1\""));
    assert!(
        !got.text.contains(key),
        "the secret is shown once: {}",
        got.text
    );
    let listed = app.get("/api/v1/webhooks", &app.admin_token).await;
    assert!(!listed.text.contains(key));
    assert_eq!(listed.json()["items"].as_array().map(Vec::len), Some(1));

    // Bad input names the field and changes nothing.
    let path = format!("/api/v1/webhooks/{id}");
    app.patch(&path, &app.admin_token, &json!({"events": []}))
        .await
        .names_field(422, "events");
    app.patch(&path, &app.admin_token, &json!({"events": ["Not a kind"]}))
        .await
        .names_field(422, "events");
    app.patch(&path, &app.admin_token, &json!({"board": "NOPE"}))
        .await
        .names_field(422, "board");
    app.patch(
        &path,
        &app.admin_token,
        &json!({"url": "ftp://example.org"}),
    )
    .await
    .names_field(422, "url");
    app.post(
        "/api/v1/webhooks",
        &app.admin_token,
        &json!({"url": "http://127.0.0.1:9/", "events": ["*"], "secret": "x"}),
    )
    .await
    .names_field(422, "secret");

    // If-Match: a stale version is 412; the right one moves it on.
    let stale = app
        .request(actix_web::http::Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"7\"")
        .json(&json!({"description": "x"}))
        .send()
        .await;
    stale.problem(412);
    let changed = app
        .request(actix_web::http::Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"events": ["*"], "board": null, "active": false}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let changed = changed.json();
    assert_eq!(changed["version"], 2);
    assert_eq!(changed["events"], json!(["*"]));
    assert_eq!(changed["board"], Value::Null);
    assert_eq!(changed["active"], false);

    // The history has the changes, never the secret nor the URL's path and query.
    let feed = app
        .get("/api/v1/changes?entity_type=webhook", &app.admin_token)
        .await;
    assert_eq!(feed.status, 200, "{}", feed.text);
    let kinds: Vec<String> = feed.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, ["created", "updated"]);
    assert!(!feed.text.contains(key));
    assert!(!feed.text.contains("geheim"), "{}", feed.text);

    let deleted = app.delete(&path, &app.admin_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    app.get(&path, &app.admin_token).await.problem(404);
}

async fn deliveries_are_signed_and_carry_the_event_as_the_feed_shows_it(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    board(&app, "DEV").await;
    let made = subscribe(
        &app,
        &receiver.url,
        json!({"events": ["created", "updated"], "entity_type": "item", "board": "OPS"}),
    )
    .await;
    let secret = made["secret"].as_str().expect("secret").to_string();
    let _worker = start_worker(&app);
    app.item("DEV").create().await;
    app.item("OPS").title("Zertifikat erneuern").create().await;
    let changed = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"title": "Zertifikat erneuert"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);

    let received = receiver.wait_for("two deliveries", |r| r.len() >= 2).await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let received_now = receiver.received();
    assert_eq!(
        received_now.len(),
        2,
        "only the OPS item's events: {received_now:#?}"
    );
    let feed = app
        .get(
            "/api/v1/changes?entity_type=item&board=OPS",
            &app.admin_token,
        )
        .await
        .json();
    let feed_events = feed["items"].as_array().cloned().unwrap_or_default();
    for (delivery, event) in received.iter().zip(&feed_events) {
        delivery
            .verify(&secret)
            .expect("a valid Standard Webhooks signature");
        assert!(
            delivery
                .verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3wqpbvkYhXk=")
                .is_err(),
            "another secret does not verify"
        );
        let body = delivery.json();
        assert_eq!(delivery.id, format!("evt_{}", event["id"]));
        assert_eq!(
            body["type"],
            format!("item.{}", event["kind"].as_str().unwrap_or_default())
        );
        assert_eq!(
            body["data"], *event,
            "data is the change as the feed shows it"
        );
        assert!(body["data"]["seq"].is_i64());
        assert!(body["timestamp"].is_string());
    }
    assert_eq!(
        received[1].json()["data"]["item"]["title"],
        "Zertifikat erneuert"
    );

    let listed = settled(&app, &made["webhook"]["id"]).await;
    assert_eq!(listed.len(), 2);
    for delivery in &listed {
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(delivery["attempts"], 1);
        assert_eq!(delivery["last_status"], 200);
        assert_eq!(delivery["last_response"], "answer 200");
    }
}

async fn a_failing_receiver_gets_the_same_message_again_and_events_of_an_item_stay_in_order(
    app: TestApp,
) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    let made = subscribe(&app, &receiver.url, json!({"entity_type": "item"})).await;
    let secret = made["secret"].as_str().expect("secret").to_string();
    // The first attempt fails with 500, the second with 503 and Retry-After: 1.
    receiver.script(&[(500, None), (503, Some("1"))]);
    app.item("OPS").create().await;
    for title in ["zwei", "drei"] {
        let changed = app
            .patch(
                "/api/v1/items/OPS-1",
                &app.admin_token,
                &json!({"title": title}),
            )
            .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
    }
    let started = Instant::now();
    let _worker = start_worker(&app);
    let received = receiver
        .wait_for("three events delivered", |r| {
            r.iter().filter(|r| r.answered == 200).count() >= 3
        })
        .await;
    // The 503 asked for a second: the retry after it honoured that, not the 0.2 s schedule.
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        received[0].id, received[1].id,
        "a retry has the same webhook-id"
    );
    assert_eq!(received[1].id, received[2].id);
    assert_eq!(received[0].body, received[2].body, "and the same body");
    let delivered: Vec<&Received> = received.iter().filter(|r| r.answered == 200).collect();
    let seqs: Vec<i64> = delivered
        .iter()
        .map(|r| r.json()["data"]["seq"].as_i64().unwrap_or_default())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "in seq order: {seqs:?}"
    );
    for r in &received {
        r.verify(&secret).expect("signed");
    }
    let listed = deliveries(&app, &made["webhook"]["id"]).await;
    let first = listed.last().expect("the first delivery");
    assert_eq!(first["status"], "delivered");
    assert_eq!(first["attempts"], 3);
    assert_eq!(first["last_status"], 200);
    assert_eq!(webhook(&app, &made["webhook"]["id"]).await["active"], true);
}

async fn gone_deactivates_and_turning_it_on_again_resumes(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    let made = subscribe(&app, &receiver.url, json!({})).await;
    let id = made["webhook"]["id"].clone();
    receiver.script(&[(410, None)]);
    let _worker = start_worker(&app);
    app.item("OPS").create().await;
    let hook = wait_for_webhook(&app, &id, "deactivation", |h| h["active"] == false).await;
    assert!(
        hook["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("410")),
        "{hook}"
    );
    let listed = deliveries(&app, &id).await;
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(listed[0]["last_status"], 410);
    // Events while inactive are not queued for it.
    app.item("OPS").create().await;
    assert_eq!(deliveries(&app, &id).await.len(), 1);
    let before = receiver.received().len();
    // Turned on again: the reason goes, new events go out.
    let on = app
        .patch(
            &format!("/api/v1/webhooks/{id}"),
            &app.admin_token,
            &json!({"active": true}),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.json()["disabled_reason"], Value::Null);
    app.item("OPS").create().await;
    receiver
        .wait_for("a delivery after reactivation", |r| r.len() > before)
        .await;
}

async fn failing_for_too_long_deactivates_with_a_reason(app: TestApp) {
    let receiver = Receiver::start();
    receiver.always(Some(500));
    board(&app, "OPS").await;
    let made = subscribe(&app, &receiver.url, json!({})).await;
    let id = made["webhook"]["id"].clone();
    let _worker = start_worker(&app);
    app.item("OPS").create().await;
    let hook = wait_for_webhook(&app, &id, "deactivation", |h| h["active"] == false).await;
    let reason = hook["disabled_reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("failed since") && reason.contains("500"),
        "{hook}"
    );
    let events = app
        .get("/api/v1/changes?entity_type=webhook", &app.admin_token)
        .await
        .json();
    let last = events["items"].as_array().and_then(|e| e.last().cloned());
    assert_eq!(
        last.as_ref().map(|e| e["kind"].clone()),
        Some(json!("deactivated"))
    );
    assert_eq!(
        last.map(|e| e["actor"]["name"].clone()),
        Some(json!("System"))
    );
}

async fn a_rotated_secret_signs_beside_the_new_one(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    let made = subscribe(&app, &receiver.url, json!({})).await;
    let id = made["webhook"]["id"].clone();
    let old = made["secret"].as_str().expect("secret").to_string();
    let rotated = app
        .request(
            actix_web::http::Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
        )
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let rotated = rotated.json();
    let new = rotated["secret"].as_str().expect("secret").to_string();
    assert_ne!(new, old);
    assert!(rotated["webhook"]["previous_secret_expires_at"].is_string());
    assert_eq!(rotated["webhook"]["version"], 2);
    let _worker = start_worker(&app);
    app.item("OPS").create().await;
    let received = receiver.wait_for("a delivery", |r| !r.is_empty()).await;
    assert_eq!(
        received[0].signature.split(' ').count(),
        2,
        "{}",
        received[0].signature
    );
    received[0].verify(&new).expect("the new secret verifies");
    received[0]
        .verify(&old)
        .expect("the old secret still verifies");
}

async fn a_receivers_answer_is_kept_to_a_kib_whatever_it_holds(app: TestApp) {
    let receiver = Receiver::start();
    // NUL (which PostgreSQL's TEXT refuses), invalid UTF-8, and far more than a KiB.
    let mut body = b"ok\0\xff".to_vec();
    body.extend("ä".repeat(5000).as_bytes());
    *receiver.state.body.lock().expect("lock") = Some(body);
    let made = subscribe(&app, &receiver.url, json!({})).await;
    let id = made["webhook"]["id"].clone();
    let _worker = start_worker(&app);
    let ping = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(ping.status, 202, "{}", ping.text);
    receiver.wait_for("the ping", |r| !r.is_empty()).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let delivery = loop {
        let listed = deliveries(&app, &id).await;
        if listed.first().is_some_and(|d| d["status"] != "pending") {
            break listed[0].clone();
        }
        assert!(Instant::now() < deadline, "{listed:?}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    let kept = delivery["last_response"].as_str().unwrap_or_default();
    assert!(kept.starts_with("ok\u{fffd}\u{fffd}ä"), "{kept:?}");
    assert!(!kept.contains('\0'));
    assert!(kept.chars().count() <= 1024, "{}", kept.chars().count());
}

async fn a_slow_receiver_does_not_hold_up_the_others(app: TestApp) {
    let slow = Receiver::start();
    *slow.state.delay.lock().expect("lock") = Some(Duration::from_secs(4));
    let quick = Receiver::start();
    board(&app, "OPS").await;
    subscribe(&app, &slow.url, json!({"entity_type": "item"})).await;
    subscribe(&app, &quick.url, json!({"entity_type": "item"})).await;
    let _worker = start_worker(&app);
    app.item("OPS").create().await;
    quick.wait_for("the first item", |r| r.len() == 1).await;
    // The slow receiver still has its delivery (it records a request when it answers); the
    // quick one gets the next item meanwhile.
    app.item("OPS").create().await;
    quick.wait_for("the second item", |r| r.len() == 2).await;
    assert!(
        slow.received().is_empty(),
        "the quick receiver waited for the slow one"
    );
    slow.wait_for("both items, in the end", |r| r.len() == 2)
        .await;
}

/// The worker sleeps between its looks until a commit that wrote deliveries wakes it (not
/// every commit: the others would each cost it a look at the database). The test ping, the
/// event's delivery and the redelivery each reach the receiver well within the minute the
/// worker would otherwise sleep.
async fn each_delivery_wakes_a_worker_that_polls_once_a_minute(app: TestApp) {
    redelivery_and_the_test_ping_reach_the_receiver(app).await;
}

async fn redelivery_and_the_test_ping_reach_the_receiver(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    let made = subscribe(&app, &receiver.url, json!({"events": ["created"]})).await;
    let id = made["webhook"]["id"].clone();
    let secret = made["secret"].as_str().expect("secret").to_string();
    let _worker = start_worker(&app);
    let ping = app
        .post(
            &format!("/api/v1/webhooks/{id}/test"),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(ping.status, 202, "{}", ping.text);
    let received = receiver.wait_for("the ping", |r| !r.is_empty()).await;
    assert_eq!(received[0].json()["type"], "ping");
    assert_eq!(received[0].json()["data"]["webhook_id"], id);
    received[0].verify(&secret).expect("signed");

    app.item("OPS").create().await;
    let received = receiver.wait_for("the event", |r| r.len() >= 2).await;
    let listed = settled(&app, &id).await;
    let event_delivery = &listed[0];
    assert_eq!(event_delivery["type"], "item.created");
    let again = app
        .post(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                event_delivery["id"]
            ),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(again.status, 202, "{}", again.text);
    let all = receiver.wait_for("the redelivery", |r| r.len() >= 3).await;
    assert_eq!(
        all[2].id, received[1].id,
        "a redelivery keeps the webhook-id"
    );
    assert_eq!(all[2].body, received[1].body);
    app.post(
        &format!("/api/v1/webhooks/{id}/deliveries/999999/redeliver"),
        &app.admin_token,
        &json!({}),
    )
    .await
    .problem(404);
    app.get("/api/v1/webhooks/999999/deliveries", &app.admin_token)
        .await
        .problem(404);
    // Old finished deliveries are deleted (here everything finished before now).
    settled(&app, &id).await;
    let deleted = app
        .state
        .db
        .run(|conn| worker::clean_up(conn, 0))
        .await
        .expect("clean-up");
    assert_eq!(deleted, 3);
    assert!(deliveries(&app, &id).await.is_empty());
}

async fn private_targets_are_refused_when_not_allowed(app: TestApp) {
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.7/hook",
        "http://[::1]/hook",
        "http://[fd00:ec2::254]/",
        "ftp://example.org/hook",
        "http://user:pw@example.org/hook",
    ] {
        let refused = app
            .post(
                "/api/v1/webhooks",
                &app.admin_token,
                &json!({"url": url, "events": ["*"]}),
            )
            .await;
        refused.names_field(422, "url");
    }
    let listed = app.get("/api/v1/webhooks", &app.admin_token).await.json();
    assert_eq!(listed["items"], json!([]));

    // Checked again at delivery: subscriptions made where private targets were allowed are
    // not delivered by a worker that does not allow them, whether the URL names the address
    // or a name that resolves to it (checked by the client's resolver as it connects).
    let receiver = Receiver::start();
    let by_name = receiver.url.replace("127.0.0.1", "localhost");
    for url in [&receiver.url, &by_name] {
        use opsboard::db::schema::webhook_subscriptions as s;
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(s::table)
            .values((
                s::url.eq(url),
                s::events.eq("*"),
                s::description.eq(""),
                s::active.eq(true),
                s::secret.eq("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw3wqpbvkYhXk="),
                s::created_at.eq(now),
                s::updated_at.eq(now),
                s::version.eq(1),
            ))
            .execute(&mut *app.conn())
            .expect("a subscription to a private address");
    }
    let _worker = start_worker(&app);
    board(&app, "OPS").await;
    let listed = app.get("/api/v1/webhooks", &app.admin_token).await.json();
    for (n, hook) in listed["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listed = deliveries(&app, &hook["id"]).await;
            if let Some(error) = listed.first().and_then(|d| d["last_error"].as_str()) {
                assert!(
                    error.contains("127.0.0.1") || error.contains("::1"),
                    "{error}"
                );
                if n == 1 {
                    assert!(error.contains("localhost"), "{error}");
                }
                break;
            }
            assert!(Instant::now() < deadline, "no attempt: {listed:?}");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
}

async fn only_admins_and_webhook_tokens_manage_webhooks(app: TestApp) {
    let receiver = Receiver::start();
    let made = subscribe(&app, &receiver.url, json!({})).await;
    let id = made["webhook"]["id"].clone();
    let (_, viewer) = app.user("viewer").create().await;
    let (_, manager) = app.user("manager").create().await;
    for token in [&viewer, &manager] {
        app.get("/api/v1/webhooks", token).await.problem(403);
        app.post(
            "/api/v1/webhooks",
            token,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await
        .problem(403);
        app.patch(
            &format!("/api/v1/webhooks/{id}"),
            token,
            &json!({"active": false}),
        )
        .await
        .problem(403);
        app.post(&format!("/api/v1/webhooks/{id}/test"), token, &json!({}))
            .await
            .problem(403);
    }
    let stranger = app
        .request(actix_web::http::Method::GET, "/api/v1/webhooks")
        .send()
        .await;
    stranger.problem(401);
    let stranger = app
        .request(
            actix_web::http::Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
        )
        .send()
        .await;
    stranger.problem(401);
    // An admin's API token needs the `webhooks` scope.
    let token = |scopes: Value| {
        let app = &app;
        async move {
            let made = app
                .post(
                    "/api/v1/tokens",
                    &app.admin_token,
                    &json!({"name": "hooks", "scopes": scopes}),
                )
                .await;
            assert_eq!(made.status, 201, "{}", made.text);
            made.json()["secret"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let read_write = token(json!(["read", "write"])).await;
    app.get("/api/v1/webhooks", &read_write).await.problem(403);
    let hooks = token(json!(["webhooks"])).await;
    let listed = app.get("/api/v1/webhooks", &hooks).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let made = app
        .post(
            "/api/v1/webhooks",
            &hooks,
            &json!({"url": receiver.url, "events": ["*"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
}

/// Every webhook-id the receiver accepted, with how often.
fn accepted(received: &[Received]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for r in received.iter().filter(|r| r.answered == 200) {
        *counts.entry(r.id.clone()).or_insert(0) += 1;
    }
    counts
}

/// A second app state over the same database, as a second instance (or a restart) has.
async fn second_instance(app: &TestApp) -> opsboard::AppState {
    let settings = (*app.state.settings).clone();
    web::block(move || opsboard::startup::prepare(settings))
        .await
        .expect("blocking pool")
        .expect("a second instance starts")
}

fn item_events(app: &TestApp) -> i64 {
    use opsboard::db::schema::events;
    events::table
        .filter(events::entity_type.eq("item"))
        .count()
        .get_result(&mut *app.conn())
        .expect("count")
}

async fn a_restart_loses_and_duplicates_nothing(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    subscribe(&app, &receiver.url, json!({"entity_type": "item"})).await;
    let first = start_worker(&app);
    for _ in 0..5 {
        app.item("OPS").create().await;
    }
    receiver
        .wait_for("the first five", |r| accepted(r).len() >= 5)
        .await;
    // The instance goes away; events keep coming (written by another instance, say).
    drop(first);
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..5 {
        app.item("OPS").create().await;
    }
    let restarted = second_instance(&app).await;
    let _second = worker::spawn(restarted.db.clone(), restarted.settings.webhooks.clone());
    let events = usize::try_from(item_events(&app)).unwrap_or_default();
    let received = receiver
        .wait_for("every event", |r| accepted(r).len() >= events)
        .await;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let counts = accepted(&receiver.received());
    assert_eq!(counts.len(), events, "{received:#?}");
    assert!(
        counts.values().all(|n| *n == 1),
        "no duplicates: {counts:?}"
    );
}

async fn a_dead_workers_claims_are_taken_over_after_the_lease(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    subscribe(&app, &receiver.url, json!({"entity_type": "item"})).await;
    for _ in 0..3 {
        app.item("OPS").create().await;
    }
    // A worker claims them and dies before sending.
    let claimed = app
        .state
        .db
        .run(|conn| worker::claim(conn, "dead-instance", Duration::from_millis(800), 10))
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 3);
    let started = Instant::now();
    let _worker = start_worker(&app);
    receiver
        .wait_for("the taken-over deliveries", |r| accepted(r).len() >= 3)
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "not before the lease ends"
    );
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    assert!(accepted(&receiver.received()).values().all(|n| *n == 1));
}

async fn two_instances_on_one_database_deliver_each_event_once(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    let url = |name: &str| format!("{}/{name}", receiver.url);
    subscribe(&app, &url("items"), json!({"entity_type": "item"})).await;
    subscribe(&app, &url("created"), json!({"events": ["created"]})).await;
    let other = second_instance(&app).await;
    let _one = start_worker(&app);
    let _two = worker::spawn(other.db.clone(), other.settings.webhooks.clone());
    // The second instance serves HTTP too: half the items are written through it.
    let (other_address, _other_server) = crate::helpers::serve(other.clone());
    let client = awc::Client::default();
    let mut writes = Vec::new();
    for _ in 0..12 {
        writes.push(app.item("OPS").create());
    }
    let through_other = async {
        for n in 0..12 {
            let made = client
                .post(format!("{other_address}/api/v1/items"))
                .bearer_auth(&app.admin_token)
                .send_json(&json!({"board": "OPS", "type": "task", "title": format!("Über B {n}")}))
                .await
                .expect("the second instance answers");
            assert_eq!(made.status().as_u16(), 201);
        }
    };
    futures_util::future::join(futures_util::future::join_all(writes), through_other).await;
    let item_events = item_events(&app);
    // One delivery per (event, subscription): every item event to the first, the 24 created to
    // the second.
    let expected = usize::try_from(item_events).unwrap_or_default() + 24;
    let stored: i64 = {
        use opsboard::db::schema::webhook_deliveries as d;
        d::table
            .count()
            .get_result(&mut *app.conn())
            .expect("count")
    };
    assert_eq!(stored as usize, expected);
    receiver
        .wait_for("every delivery", |r| {
            r.iter().filter(|r| r.answered == 200).count() >= expected
        })
        .await;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    let mut pairs: HashMap<(String, String), usize> = HashMap::new();
    for r in &received {
        // The same event goes to both subscriptions under one webhook-id; the path tells the
        // subscriptions apart.
        *pairs.entry((r.id.clone(), r.path.clone())).or_insert(0) += 1;
    }
    assert_eq!(received.len(), expected, "each (event, subscription) once");
    assert!(pairs.values().all(|n| *n == 1), "{pairs:?}");
}

/// Parallel requests at the bound server: eight rotations of one secret without `If-Match`
/// take turns on the subscription's row (PostgreSQL would otherwise fail all but the first
/// with 412, which a write without a precondition must never get), each hands out its own
/// secret, and every one is a version and an event.
async fn concurrent_rotations_without_if_match_all_apply(app: TestApp) {
    let receiver = Receiver::start();
    board(&app, "OPS").await;
    let made = subscribe(&app, &receiver.url, json!({})).await;
    let id = made["webhook"]["id"].clone();
    let path = format!("/api/v1/webhooks/{id}/rotate-secret");
    let answers = futures_util::future::join_all((0..8).map(|_| {
        let (app, path) = (&app, &path);
        async move {
            app.request(actix_web::http::Method::POST, path)
                .token(&app.admin_token)
                .send()
                .await
        }
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let mut secrets: Vec<String> = answers
        .iter()
        .filter_map(|a| a.json()["secret"].as_str().map(str::to_string))
        .collect();
    let mut versions: Vec<i64> = answers
        .iter()
        .filter_map(|a| a.json()["webhook"]["version"].as_i64())
        .collect();
    secrets.sort();
    secrets.dedup();
    versions.sort_unstable();
    assert_eq!(secrets.len(), 8, "each rotation its own secret");
    assert_eq!(versions, (2..=9).collect::<Vec<i64>>());
    let shown = app
        .get(&format!("/api/v1/webhooks/{id}"), &app.admin_token)
        .await
        .json();
    assert_eq!(shown["version"], 9, "{shown}");
    let events = app
        .get("/api/v1/changes?entity_type=webhook", &app.admin_token)
        .await
        .json();
    let rotations = events["items"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["kind"] == "secret_rotated").count());
    assert_eq!(rotations, Some(8));
}
