//! The caches that spare a read its trips to storage (the callers and the items recently
//! answered): what they answer is what the database says after the last commit, whoever made
//! it, this instance or another process on the same database.

use std::time::Duration;

use actix_web::http::Method;
use chrono::{DateTime, SubsecRound, Utc};
use opsboard::common::actor::Visibility;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{TestApp, USER_PASSWORD};

both_engines!(
    a_kept_item_is_read_afresh_after_every_kind_of_change,
    a_requester_is_never_answered_what_the_team_was,
    a_kept_incidents_clocks_run_with_the_time,
    a_deactivation_by_another_instance_ends_a_kept_login,
    a_board_views_tag_follows_another_instances_change,
);
both_engines!(nothing_is_kept_without_the_commit_watch => |s| s.database.watch_ms = 0);

/// Longer than the commit watch needs to see another process's commit (`watch_ms` 2, and
/// an entry served only while the watch looked within 25 ms).
const ANOTHER_PROCESS: Duration = Duration::from_millis(150);

/// Reads `key` until the item cache keeps it for the team (the watch starts idle and is
/// live from the request after the first), at most for a second; whether it was kept.
async fn kept_after_reads(app: &TestApp, key: &str) -> bool {
    for _ in 0..50 {
        let read = app
            .get(&format!("/api/v1/items/{key}"), &app.admin_token)
            .await;
        assert_eq!(read.status, 200, "{}", read.text);
        if app.state.items.get(key, Visibility::All).is_some() {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// The OPS board, the wohngeld service and its accountable lead and responsible worker.
async fn ops_board_and_people(app: &TestApp) -> (Value, Value) {
    let (_, lead, worker) = crate::items::ops_and_wohngeld(app).await;
    (lead, worker)
}

/// A task read twice is kept; a change through this instance is answered by the next read,
/// as is a change of what the item shows but is stored elsewhere (its accountable's name),
/// and a change and a deletion by another instance on the same database within the watch's
/// time.
async fn a_kept_item_is_read_afresh_after_every_kind_of_change(app: TestApp) {
    let (lead, _) = ops_board_and_people(&app).await;
    let task = app
        .item("OPS")
        .task()
        .title("Vorher")
        .accountable(&lead)
        .create()
        .await;
    let key = task["key"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/items/{key}");
    assert!(kept_after_reads(&app, &key).await, "a read task is kept");
    let hit = app.get(&path, &app.admin_token).await;
    assert_eq!(hit.json(), task, "what is kept is what was read");
    assert_eq!(hit.header("etag"), Some(format!("\"{}\"", task["version"])));
    assert_eq!(
        hit.header("content-type").as_deref(),
        Some("application/json")
    );
    // Any case of the key and the cache's key are one item.
    let lower = app.get(&path.to_ascii_lowercase(), &app.admin_token).await;
    assert_eq!(lower.json(), task);

    let changed = app
        .patch(&path, &app.admin_token, &json!({"title": "Nachher"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.json(), changed.json(), "a change here is read at once");
    assert_eq!(read.header("etag"), changed.header("etag"));

    assert!(kept_after_reads(&app, &key).await);
    let renamed = app
        .patch(
            &format!("/api/v1/users/{}", lead["id"]),
            &app.admin_token,
            &json!({"display_name": "Lea Leitung"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let read = app.get(&path, &app.admin_token).await.json();
    assert_eq!(
        read["raci"]["accountable"]["display_name"], "Lea Leitung",
        "a renamed accountable shows at once: {read}"
    );

    let other = app.beside().await;
    assert!(kept_after_reads(&app, &key).await);
    let elsewhere = other
        .patch(&path, &app.admin_token, &json!({"priority": "critical"}))
        .await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
    actix_web::rt::time::sleep(ANOTHER_PROCESS).await;
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(
        read.json(),
        elsewhere.json(),
        "another instance's change is read here"
    );

    assert!(kept_after_reads(&app, &key).await);
    let deleted = other.delete(&path, &app.admin_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    actix_web::rt::time::sleep(ANOTHER_PROCESS).await;
    let read = app.get(&path, &app.admin_token).await;
    read.problem(404);
    assert!(app.state.items.get(&key, Visibility::All).is_none());
}

/// A demand kept for the team is still refused to a requester of another organization and
/// answered to one of its own: entries are per visibility.
async fn a_requester_is_never_answered_what_the_team_was(app: TestApp) {
    let lk_a = app.organization("LK-A").create().await;
    let lk_b = app.organization("LK-B").create().await;
    let (_, requester_a) = app.user("requester").organization(&lk_a).create().await;
    let (_, requester_b) = app.user("requester").organization(&lk_b).create().await;
    ops_board_and_people(&app).await;
    let demand = app
        .demand()
        .by(&requester_a)
        .title("Formular")
        .service("wohngeld")
        .create()
        .await;
    let key = demand["key"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/items/{key}");
    assert!(kept_after_reads(&app, &key).await, "a read demand is kept");
    for _ in 0..3 {
        app.get(&path, &requester_b).await.problem(404);
        let own = app.get(&path, &requester_a).await;
        assert_eq!(own.status, 200, "{}", own.text);
        assert_eq!(own.json()["key"], key.as_str());
    }
}

/// The team's kept answer for `key`, as JSON (none when it is not kept).
fn kept_answer(app: &TestApp, key: &str) -> Option<Value> {
    let kept = app.state.items.get(key, Visibility::All)?;
    serde_json::from_slice(&kept.body).ok()
}

/// A field of the SLA state as an instant.
fn sla_instant(item: &Value, field: &str) -> DateTime<Utc> {
    item["sla"][field]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("no sla.{field} in {item}"))
}

/// An incident is kept, but its SLA clocks run on: while it waits in a pausing column, the
/// resolution's due time moves with every answer, as a read would compute it. A move here, and
/// a changed policy by another instance, are in the next answer.
async fn a_kept_incidents_clocks_run_with_the_time(app: TestApp) {
    let board = crate::incidents::ops_with_a_waiting_column(&app).await;
    crate::incidents::s3_business_and_s1_calendar(&app).await;
    // Reported two hours ago on a calendar clock of 30 and 240 minutes, waiting from now on:
    // the response was due long ago, the resolution is due 120 minutes after the wait ends.
    let reported = Utc::now().trunc_subsecs(0) - chrono::Duration::minutes(120);
    let created = crate::incidents::incident(&app, "s1", &reported.to_rfc3339())
        .create()
        .await;
    let key = created["key"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/items/{key}");
    let moved = app
        .move_item(
            &key,
            &app.admin_token,
            &json!({"column": board.column_id("Wartet auf Meldende")}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert!(
        kept_after_reads(&app, &key).await,
        "a read incident is kept"
    );
    let first = kept_answer(&app, &key).expect("kept");
    assert_eq!(first["sla"]["paused"], true, "{first}");
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let read = app.get(&path, &app.admin_token).await;
    assert_eq!(read.status, 200, "{}", read.text);
    let second = kept_answer(&app, &key).expect("still kept: nothing committed");
    let waited =
        sla_instant(&second, "resolution_due_at") - sla_instant(&first, "resolution_due_at");
    assert!(
        waited >= chrono::Duration::milliseconds(200),
        "the paused clock's due time moves on with the time: {waited}"
    );
    let fixed = |item: &Value| {
        let mut item = item.clone();
        item["sla"]["resolution_due_at"] = Value::Null;
        item
    };
    let answered = read.json();
    assert_eq!(fixed(&first), fixed(&second), "nothing else moves");
    assert_eq!(
        fixed(&answered),
        fixed(&second),
        "the answer is what is kept"
    );
    assert_eq!(first["sla"]["remaining_business_minutes"], 120, "{first}");
    assert_eq!(
        sla_instant(&first, "response_due_at"),
        reported + chrono::Duration::minutes(30)
    );

    // A move out of the waiting column is a commit: the clock runs again.
    let resumed = app
        .move_item(
            &key,
            &app.admin_token,
            &json!({"column": board.column_id("In Arbeit")}),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    assert!(kept_after_reads(&app, &key).await);
    let running = kept_answer(&app, &key).expect("kept");
    assert_eq!(running["sla"]["paused"], false, "{running}");
    assert_eq!(running, app.get(&path, &app.admin_token).await.json());

    // Another instance lengthens the s1 policy: the kept clock follows within the watch's time.
    let policies = app
        .get("/api/v1/sla-policies?severity=s1", &app.admin_token)
        .await;
    let policy = policies.json()["items"][0]["id"].clone();
    let other = app.beside().await;
    let changed = other
        .patch(
            &format!("/api/v1/sla-policies/{policy}"),
            &app.admin_token,
            &json!({"resolution_minutes": 480}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    actix_web::rt::time::sleep(ANOTHER_PROCESS).await;
    let lengthened = app.get(&path, &app.admin_token).await.json();
    assert_eq!(
        sla_instant(&lengthened, "resolution_due_at") - sla_instant(&running, "resolution_due_at"),
        chrono::Duration::minutes(240),
        "{lengthened}"
    );
}

/// A login kept by the principal cache stops working when another instance deactivates the
/// person, within the watch's time.
async fn a_deactivation_by_another_instance_ends_a_kept_login(app: TestApp) {
    let (lead, _) = ops_board_and_people(&app).await;
    let (member, token) = app.user("member").create().await;
    let task = app
        .item("OPS")
        .task()
        .title("Lesen")
        .accountable(&lead)
        .create()
        .await;
    let path = format!("/api/v1/items/{}", task["key"].as_str().unwrap_or_default());
    for _ in 0..5 {
        let read = app.get(&path, &token).await;
        assert_eq!(read.status, 200, "{}", read.text);
    }
    let other = app.beside().await;
    let deactivated = other
        .post(
            &format!("/api/v1/users/{}/deactivate", member["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    actix_web::rt::time::sleep(ANOTHER_PROCESS).await;
    app.get(&path, &token).await.problem(401);
    let again = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": member["email"], "password": USER_PASSWORD}))
        .send()
        .await;
    again.problem(401);
}

/// With `database.watch_ms = 0` another process's commits cannot be seen, so nothing is kept
/// and every read goes to the database.
async fn nothing_is_kept_without_the_commit_watch(app: TestApp) {
    let (lead, _) = ops_board_and_people(&app).await;
    let task = app
        .item("OPS")
        .task()
        .title("Ohne Wache")
        .accountable(&lead)
        .create()
        .await;
    let key = task["key"].as_str().unwrap_or_default().to_string();
    assert!(!kept_after_reads(&app, &key).await);
}

/// A poller's view tag, known without a trip while nothing commits, changes when another
/// instance changes the board, within the watch's time: the next poll gets the new view.
async fn a_board_views_tag_follows_another_instances_change(app: TestApp) {
    let (lead, _) = ops_board_and_people(&app).await;
    app.item("OPS")
        .task()
        .title("Erste Karte")
        .accountable(&lead)
        .create()
        .await;
    let view = "/api/v1/boards/OPS/view";
    let first = app.get(view, &app.admin_token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let etag = first.header("etag").unwrap_or_default();
    let poll = |etag: String| {
        let app = &app;
        async move {
            app.request(Method::GET, view)
                .token(&app.admin_token)
                .header("If-None-Match", &etag)
                .send()
                .await
        }
    };
    for _ in 0..20 {
        let polled = poll(etag.clone()).await;
        // The minute may turn (the SLA clocks are in the tag): then the view is sent anew.
        assert!(
            [200, 304].contains(&polled.status),
            "{} {}",
            polled.status,
            polled.text
        );
    }
    let other = app.beside().await;
    let created = other
        .post(
            "/api/v1/items",
            &app.admin_token,
            &json!({"board": "OPS", "type": "task", "title": "Zweite Karte",
                    "raci": {"accountable": lead["id"]}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    actix_web::rt::time::sleep(ANOTHER_PROCESS).await;
    let polled = poll(etag.clone()).await;
    assert_eq!(polled.status, 200, "the change shows: {}", polled.text);
    assert_ne!(polled.header("etag"), Some(etag));
    let titles: Vec<Value> = polled.json()["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["cards"].as_array().cloned().unwrap_or_default())
        .map(|card| card["title"].clone())
        .collect();
    assert!(titles.contains(&json!("Zweite Karte")), "{titles:?}");
}
