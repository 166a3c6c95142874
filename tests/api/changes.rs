//! The changes feed: every event once, in commit order, with its entity's key and the item as
//! it was after the change; cursors that never skip a late commit; long polls; origins.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use diesel::prelude::*;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{Engine, TestApp};

both_engines!(
    the_feed_carries_every_change_with_its_key_and_the_item_after_it,
    paging_with_the_cursor_sees_every_event_once_and_the_head_resumes,
    filters_narrow_the_feed_and_the_cursor_moves_past_what_they_leave_out,
    a_long_poll_answers_when_an_event_commits_and_otherwise_when_the_wait_is_over,
    cursors_that_cannot_be_resumed_are_410_and_garbage_is_400,
    only_the_team_reads_the_feed,
    a_script_skips_its_own_origin_in_the_feed_and_in_the_history,
);

both_engines!(
    no_event_becomes_visible_behind_a_returned_cursor => super::late_commits,
);

/// Every write transaction sleeps up to 40 ms before it commits.
fn late_commits(settings: &mut opsboard::config::Settings) {
    settings.database.test_commit_delay_max_ms = 40;
    settings.database.pool_size = 12;
}

/// Every event of the feed after `after`, paging `limit` at a time until an empty page:
/// the events and the last cursor.
async fn drain(
    app: &TestApp,
    token: &str,
    query: &str,
    after: Option<&str>,
) -> (Vec<Value>, String) {
    let mut events = Vec::new();
    let mut cursor = after.map(str::to_string);
    loop {
        let mut path = format!("/api/v1/changes?limit=7{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&after={c}"));
        }
        let page = app.get(&path, token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        let next = page["next_cursor"]
            .as_str()
            .unwrap_or_else(|| panic!("next_cursor is always set: {page}"))
            .to_string();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let done = items.is_empty();
        events.extend(items);
        cursor = Some(next);
        if done {
            break;
        }
    }
    (events, cursor.unwrap_or_default())
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().filter_map(|e| e["seq"].as_i64()).collect()
}

fn assert_strictly_increasing(seqs: &[i64]) {
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seq must strictly increase: {seqs:?}"
    );
}

async fn the_feed_carries_every_change_with_its_key_and_the_item_after_it(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    let board = app.board("OPS").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    app.item("OPS").task().title("Erster Titel").create().await;
    let path = "/api/v1/items/OPS-1";
    for title in ["Zweiter Titel", "Dritter Titel"] {
        let changed = app
            .patch(path, &app.admin_token, &json!({"title": title}))
            .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
    }
    let moved = app
        .move_item(
            "OPS-1",
            &app.admin_token,
            &json!({"column": board.column_id("Ready")}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let commented = app
        .post(
            "/api/v1/items/OPS-1/comments",
            &app.admin_token,
            &json!({"body": "Zertifikat liegt vor."}),
        )
        .await;
    assert_eq!(commented.status, 201, "{}", commented.text);
    let deleted = app.delete(path, &app.admin_token).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);

    let (events, _) = drain(&app, &app.admin_token, "", None).await;
    assert_strictly_increasing(&seqs(&events));
    // Everything the history holds, and nothing else.
    let stored: i64 = {
        use opsboard::db::schema::events;
        events::table
            .count()
            .get_result(&mut *app.conn())
            .expect("count")
    };
    assert_eq!(events.len() as i64, stored, "{events:#?}");
    let kinds: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["entity_type"].as_str().unwrap_or_default().to_string(),
                e["kind"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for wanted in [
        ("user", "created"),
        ("board", "created"),
        ("service", "created"),
    ] {
        assert!(
            kinds.contains(&(wanted.0.to_string(), wanted.1.to_string())),
            "{wanted:?} in {kinds:?}"
        );
    }
    let item_events: Vec<&Value> = events
        .iter()
        .filter(|e| e["entity_type"] == "item")
        .collect();
    let item_kinds: Vec<&str> = item_events
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(
        item_kinds,
        [
            "created",
            "updated",
            "updated",
            "moved",
            "commented",
            "deleted"
        ]
    );
    for event in &item_events {
        assert_eq!(event["entity_key"], "OPS-1");
        assert_eq!(event["actor"]["name"], "Administrator", "{event}");
        assert!(event["actor"]["id"].is_i64());
    }
    // Each event carries the item as it was right after that change.
    let titles: Vec<&str> = item_events
        .iter()
        .filter_map(|e| e["item"]["title"].as_str())
        .collect();
    assert_eq!(
        titles,
        [
            "Erster Titel",
            "Zweiter Titel",
            "Dritter Titel",
            "Dritter Titel",
            "Dritter Titel",
            "Dritter Titel"
        ]
    );
    let versions: Vec<i64> = item_events
        .iter()
        .filter_map(|e| e["item"]["version"].as_i64())
        .collect();
    assert!(versions.windows(2).all(|w| w[0] <= w[1]), "{versions:?}");
    assert_eq!(item_events[3]["item"]["column"]["name"], "Ready");
    assert_eq!(
        item_events[3]["names"]["columns"]
            .as_object()
            .map(|c| c.len()),
        Some(2)
    );
    assert!(item_events[4]["item"]["deleted_at"].is_null());
    assert!(
        item_events[5]["item"]["deleted_at"].is_string(),
        "the deletion carries the tombstone: {}",
        item_events[5]
    );
    // Other entities carry their keys and no item.
    let board_event = events
        .iter()
        .find(|e| e["entity_type"] == "board")
        .expect("a board event");
    assert_eq!(board_event["entity_key"], "OPS");
    assert!(board_event.get("item").is_none(), "{board_event}");
    let service_event = events
        .iter()
        .find(|e| e["entity_type"] == "service")
        .expect("a service event");
    assert_eq!(service_event["entity_key"], "wohngeld");
    let user_event = events
        .iter()
        .find(|e| e["entity_type"] == "user" && e["entity_id"] == lead["id"])
        .expect("the lead's event");
    assert_eq!(user_event["entity_key"], lead["email"]);
}

async fn paging_with_the_cursor_sees_every_event_once_and_the_head_resumes(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    for n in 0..9 {
        app.item("OPS")
            .task()
            .title(&format!("Aufgabe {n}"))
            .create()
            .await;
    }
    let first = app.get("/api/v1/changes?limit=4", &app.admin_token).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let link = first
        .header("link")
        .expect("a full page links the next one");
    assert!(
        link.contains("rel=\"next\"") && link.contains("after="),
        "{link}"
    );
    assert_eq!(first.json()["has_more"], true);
    let (all, end) = drain(&app, &app.admin_token, "", None).await;
    let seen: Vec<i64> = all.iter().filter_map(|e| e["id"].as_i64()).collect();
    let unique: BTreeSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "no event twice: {seen:?}");
    assert_strictly_increasing(&seqs(&all));

    // The head is where the feed stands; following from it shows only what comes after.
    let head = app.get("/api/v1/changes/head", &app.admin_token).await;
    assert_eq!(head.status, 200, "{}", head.text);
    let head = head.json();
    assert_eq!(head["seq"], *seqs(&all).last().expect("events"));
    let empty = app
        .get(
            &format!(
                "/api/v1/changes?after={}",
                head["cursor"].as_str().unwrap_or_default()
            ),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(empty["items"], json!([]));
    assert_eq!(empty["has_more"], false);
    assert!(empty["next_cursor"].is_string(), "{empty}");
    app.item("OPS").task().title("Danach").create().await;
    let (after_head, _) = drain(&app, &app.admin_token, "", head["cursor"].as_str()).await;
    assert_eq!(after_head.len(), 1, "{after_head:#?}");
    assert_eq!(after_head[0]["item"]["title"], "Danach");
    let (after_end, _) = drain(&app, &app.admin_token, "", Some(end.as_str())).await;
    assert_eq!(
        after_end.len(),
        1,
        "the last cursor of the drain resumes too"
    );
}

async fn filters_narrow_the_feed_and_the_cursor_moves_past_what_they_leave_out(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    app.board("DEM").lead(&lead).create().await;
    app.item("OPS").task().create().await;
    app.item("DEM").task().create().await;
    let (ops, cursor) = drain(&app, &app.admin_token, "&board=ops", None).await;
    assert!(!ops.is_empty());
    for event in &ops {
        let on_ops = (event["entity_type"] == "item" && event["entity_key"] == "OPS-1")
            || (event["entity_type"] == "board" && event["entity_key"] == "OPS");
        assert!(on_ops, "only OPS: {event}");
    }
    let (users, _) = drain(&app, &app.admin_token, "&entity_type=user,board", None).await;
    assert!(
        users
            .iter()
            .all(|e| e["entity_type"] == "user" || e["entity_type"] == "board")
    );
    assert!(users.iter().any(|e| e["entity_type"] == "user"));
    // DEM's events came after the cursor of the OPS drain, and the cursor passed them.
    app.item("DEM").task().create().await;
    let page = app
        .get(
            &format!("/api/v1/changes?board=OPS&after={cursor}"),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(page["items"], json!([]), "{page}");
    let unknown = app
        .get("/api/v1/changes?board=NOPE", &app.admin_token)
        .await;
    unknown.names_field(400, "board");
    let bad_type = app
        .get("/api/v1/changes?entity_type=comment", &app.admin_token)
        .await;
    bad_type.names_field(400, "entity_type");
    let too_long = app.get("/api/v1/changes?wait=31", &app.admin_token).await;
    too_long.names_field(400, "wait");
}

async fn a_long_poll_answers_when_an_event_commits_and_otherwise_when_the_wait_is_over(
    app: TestApp,
) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let head = app
        .get("/api/v1/changes/head", &app.admin_token)
        .await
        .json();
    let cursor = head["cursor"].as_str().unwrap_or_default().to_string();

    let started = Instant::now();
    let quiet = app
        .get(
            &format!("/api/v1/changes?after={cursor}&wait=1"),
            &app.admin_token,
        )
        .await;
    assert_eq!(quiet.status, 200, "{}", quiet.text);
    assert_eq!(quiet.json()["items"], json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900), "it waited");

    let started = Instant::now();
    let poll_path = format!("/api/v1/changes?after={cursor}&wait=20");
    let poll = app.get(&poll_path, &app.admin_token);
    let write = async {
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        app.item("OPS").task().title("Neu").create().await
    };
    let (poll, _) = futures_util::join!(poll, write);
    assert_eq!(poll.status, 200, "{}", poll.text);
    let page = poll.json();
    assert_eq!(page["items"][0]["item"]["title"], "Neu", "{page}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered when the event committed, not at the end of the wait"
    );
}

async fn cursors_that_cannot_be_resumed_are_410_and_garbage_is_400(app: TestApp) {
    let head = app
        .get("/api/v1/changes/head", &app.admin_token)
        .await
        .json();
    let cursor = head["cursor"].as_str().unwrap_or_default().to_string();
    // A cursor of another database: another app's head.
    let Some(other) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let foreign = other
        .get("/api/v1/changes/head", &other.admin_token)
        .await
        .json();
    let foreign = foreign["cursor"].as_str().unwrap_or_default();
    let gone = app
        .get(
            &format!("/api/v1/changes?after={foreign}"),
            &app.admin_token,
        )
        .await;
    let problem = gone.problem(410);
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("cursor-expired"),
        "{problem}"
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("changes/head")
    );
    // A cursor beyond this database's history, as after a restore.
    use base64::Engine as _;
    let decoded: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&cursor)
            .expect("base64"),
    )
    .expect("json");
    let ahead = json!({"i": decoded["i"], "s": decoded["s"].as_i64().unwrap_or(0) + 1000});
    let ahead = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&ahead).expect("json"));
    app.get(&format!("/api/v1/changes?after={ahead}"), &app.admin_token)
        .await
        .problem(410);
    app.get("/api/v1/changes?after=not-a-cursor", &app.admin_token)
        .await
        .names_field(400, "after");
}

async fn only_the_team_reads_the_feed(app: TestApp) {
    let stranger = app.get("/api/v1/changes", "").await;
    stranger.problem(401);
    app.get("/api/v1/changes/head", "").await.problem(401);
    let org = app.organization("LK-A").create().await;
    let (_, requester) = app.user("requester").organization(&org).create().await;
    app.get("/api/v1/changes", &requester).await.problem(403);
    let (_, viewer) = app.user("viewer").create().await;
    assert_eq!(app.get("/api/v1/changes", &viewer).await.status, 200);
    assert_eq!(app.get("/api/v1/changes/head", &viewer).await.status, 200);
}

async fn a_script_skips_its_own_origin_in_the_feed_and_in_the_history(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let head = app
        .get("/api/v1/changes/head", &app.admin_token)
        .await
        .json();
    let cursor = head["cursor"].as_str().unwrap_or_default().to_string();
    let created = app
        .request(Method::POST, "/api/v1/items")
        .token(&app.admin_token)
        .header("X-Opsboard-Origin", "jira-sync")
        .json(&json!({"board": "OPS", "type": "task", "title": "Aus JIRA"}))
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let edited = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"title": "In opsboard geändert"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);

    let (all, _) = drain(&app, &app.admin_token, "", Some(&cursor)).await;
    let origins: Vec<&Value> = all.iter().map(|e| &e["origin"]).collect();
    assert_eq!(origins, [&json!("jira-sync"), &Value::Null]);
    let (theirs, _) = drain(
        &app,
        &app.admin_token,
        "&exclude_origin=jira-sync",
        Some(&cursor),
    )
    .await;
    let kinds: Vec<&str> = theirs.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds, ["updated"], "{theirs:#?}");

    let history = app
        .get(
            "/api/v1/items/OPS-1/history?exclude_origin=jira-sync,other",
            &app.admin_token,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let history = history.json();
    let kinds: Vec<&str> = history["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|e| e["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["updated"], "{history}");
    let full = app
        .get("/api/v1/items/OPS-1/history", &app.admin_token)
        .await
        .json();
    assert_eq!(full["items"][0]["origin"], "jira-sync");
}

/// Eight writers whose transactions sleep a random time before they commit (so that they
/// commit in another order than they wrote), and a reader that follows the feed throughout:
/// it sees every event exactly once, in strictly increasing `seq`, and no event ever shows
/// up behind a cursor it was already given.
async fn no_event_becomes_visible_behind_a_returned_cursor(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    // One item per writer: writers of different items do not wait for each other's locks.
    for n in 0..8 {
        app.item("OPS")
            .task()
            .title(&format!("Writer {n}"))
            .create()
            .await;
    }
    let head = app
        .get("/api/v1/changes/head", &app.admin_token)
        .await
        .json();
    let start = head["cursor"].as_str().unwrap_or_default().to_string();
    let writing = std::sync::atomic::AtomicBool::new(true);

    let writers = join_all((1..=8).map(|n| {
        let app = &app;
        async move {
            for round in 0..12 {
                let changed = app
                    .patch(
                        &format!("/api/v1/items/OPS-{n}"),
                        &app.admin_token,
                        &json!({"title": format!("Writer {n}, round {round}")}),
                    )
                    .await;
                assert_eq!(changed.status, 200, "{}", changed.text);
            }
        }
    }));
    let reader = async {
        let mut cursor = start.clone();
        let mut seen: Vec<Value> = Vec::new();
        let mut polls = 0;
        loop {
            let still_writing = writing.load(std::sync::atomic::Ordering::SeqCst);
            let page = app
                .get(
                    &format!("/api/v1/changes?after={cursor}&limit=5"),
                    &app.admin_token,
                )
                .await;
            assert_eq!(page.status, 200, "{}", page.text);
            let page = page.json();
            polls += 1;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let empty = items.is_empty();
            seen.extend(items);
            cursor = page["next_cursor"].as_str().unwrap_or_default().to_string();
            if empty && !still_writing {
                return (seen, polls);
            }
        }
    };
    let writers = async {
        writers.await;
        writing.store(false, std::sync::atomic::Ordering::SeqCst);
    };
    let (_, (seen, polls)) = futures_util::join!(writers, reader);

    assert_strictly_increasing(&seqs(&seen));
    let ids: Vec<i64> = seen.iter().filter_map(|e| e["id"].as_i64()).collect();
    let unique: BTreeSet<i64> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "no event twice");
    // Every event the writers committed, and no other.
    let stored: BTreeSet<i64> = {
        use opsboard::db::schema::events;
        // The items were only created before the start: every `updated` event is a writer's.
        events::table
            .filter(events::kind.eq("updated"))
            .select(events::id)
            .load::<i64>(&mut *app.conn())
            .expect("events")
            .into_iter()
            .collect()
    };
    assert_eq!(stored.len(), 96, "8 writers × 12 rounds");
    assert_eq!(
        unique, stored,
        "the reader saw exactly the committed events"
    );
    // Each writer's own events arrive in its order, with the item as that change left it.
    let mut last_round: HashMap<String, i64> = HashMap::new();
    for event in &seen {
        let title = event["item"]["title"].as_str().unwrap_or_default();
        let key = event["entity_key"].as_str().unwrap_or_default().to_string();
        let round: i64 = title
            .rsplit(' ')
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        let before = last_round.insert(key.clone(), round).unwrap_or(-1);
        assert!(round > before, "{key}: round {round} after {before}");
    }
    assert!(polls > 3, "the reader polled throughout ({polls} polls)");
}
