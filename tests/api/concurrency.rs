//! Rules that read and then write, under real concurrency: parallel requests against a bound
//! server, on SQLite (which serializes writers) and on PostgreSQL (which does not, and where
//! these rules rest on row locks). Plus the outages: an unreachable PostgreSQL and a locked
//! SQLite file answer 503 quickly.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::join_all;
use opsboard::db::schema::{items, users};
use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::Board;
use crate::helpers::{Engine, Response, TestApp, test_settings};

both_engines!(
    fifty_concurrent_moves_keep_ranks_unique_and_never_412,
    a_move_between_equal_ranks_re_ranks_the_column,
    a_wip_limit_holds_under_eight_concurrent_moves,
    a_first_columns_wip_limit_holds_under_ten_concurrent_creations,
    creations_stay_below_items_moved_to_the_bottom_of_the_first_column,
    creation_honours_the_wip_limit_of_the_first_column,
    acceptance_honours_the_wip_limit_of_the_next_column,
    only_the_accountable_person_and_managers_change_who_is_accountable,
    two_admins_demoting_each_other_leave_an_admin,
);

both_engines!(
    concurrent_writes_without_if_match_never_get_412 => super::patient,
);

/// Eighty writes of one item queue on its lock; on a loaded machine the last of them wait for a
/// pooled connection longer than the default three seconds, which would be a 503, not the 412
/// this test is about.
fn patient(settings: &mut opsboard::config::Settings) {
    settings.database.pool_timeout_ms = 30_000;
    settings.database.write_retry_ms = 10_000;
}

/// A board `key` with `columns`, led by a new manager (who is accountable for the tasks that
/// name no one): `(board, (manager, token))`.
async fn led_board(app: &TestApp, key: &str, columns: Value) -> (Board, (Value, String)) {
    let manager = app.user("manager").create().await;
    let board = app
        .board(key)
        .columns(columns)
        .lead(&manager.0)
        .create()
        .await;
    (board, manager)
}

/// The keys of a column in board-view order and in `GET /items?sort=rank` order.
async fn orders(app: &TestApp, board: &str, column: i64) -> (Vec<String>, Vec<String>) {
    let view = app
        .get(&format!("/api/v1/boards/{board}/view"), &app.admin_token)
        .await
        .json();
    let in_view: Vec<String> = view["columns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == column))
        .and_then(|c| c["cards"].as_array())
        .map(|cards| {
            cards
                .iter()
                .filter_map(|c| c["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let list = app
        .get(
            &format!("/api/v1/items?column={column}&sort=rank&limit=500"),
            &app.admin_token,
        )
        .await
        .json();
    let in_list = list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    (in_view, in_list)
}

/// The ranks of a column's live items, in key order of storage's rank order.
fn stored_ranks(app: &TestApp, column: i64) -> Vec<(String, String)> {
    items::table
        .filter(items::column_id.eq(column).and(items::deleted_at.is_null()))
        .order((items::rank, items::id))
        .select((items::key, items::rank))
        .load(&mut *app.conn())
        .expect("ranks")
}

async fn fifty_concurrent_moves_keep_ranks_unique_and_never_412(app: TestApp) {
    let (board, _) = led_board(
        &app,
        "RACE",
        json!([{"name": "Backlog", "category": "todo"}, {"name": "Ready", "category": "todo"}]),
    )
    .await;
    let ready = board.column_id("Ready");
    let first = app.item("RACE").title("first").create().await;
    let last = app.item("RACE").title("last").create().await;
    for key in [&first["key"], &last["key"]] {
        let key = key.as_str().unwrap_or_default();
        let moved = app
            .move_item(key, &app.admin_token, &json!({"column": ready}))
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let mut keys = Vec::new();
    for n in 0..50 {
        keys.push(app.item("RACE").title(&format!("card {n}")).create().await["key"].clone());
    }
    // Half squeeze in right after `first` (the place where racing midpoints collide), half
    // go to the bottom; none sends If-Match, so none may get 412.
    let moves = keys.iter().enumerate().map(|(n, key)| {
        let body = if n % 2 == 0 {
            json!({"column": ready, "after": first["key"]})
        } else {
            json!({"column": ready})
        };
        let key = key.as_str().unwrap_or_default().to_string();
        let app = &app;
        async move { app.move_item(&key, &app.admin_token, &body).await }
    });
    let answers = join_all(moves).await;
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let ranks = stored_ranks(&app, ready);
    assert_eq!(ranks.len(), 52);
    let distinct: HashSet<&String> = ranks.iter().map(|(_, r)| r).collect();
    assert_eq!(distinct.len(), 52, "every rank is unique: {ranks:?}");
    assert!(ranks.iter().all(|(_, r)| r.len() <= 48), "{ranks:?}");
    assert_eq!(ranks[0].0, first["key"].as_str().unwrap_or_default());
    let (in_view, in_list) = orders(&app, "RACE", ready).await;
    assert_eq!(in_view, in_list, "the board view and the list agree");
    assert_eq!(
        in_view,
        ranks.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
}

async fn a_move_between_equal_ranks_re_ranks_the_column(app: TestApp) {
    let (board, _) = led_board(
        &app,
        "EQ",
        json!([{"name": "Backlog", "category": "todo"}, {"name": "Doing", "category": "in_progress"}]),
    )
    .await;
    let backlog = board.column_id("Backlog");
    let a = app.item("EQ").title("a").create().await;
    let b = app.item("EQ").title("b").create().await;
    let c = app.item("EQ").title("c").create().await;
    // What a race or a copied database can leave behind: two neighbours with one rank.
    diesel::update(items::table.filter(items::key.eq_any(["EQ-1", "EQ-2"])))
        .set(items::rank.eq("zq"))
        .execute(&mut *app.conn())
        .expect("plant equal ranks");
    let started = Instant::now();
    let moved = app
        .move_item(
            "EQ-3",
            &app.admin_token,
            &json!({"column": backlog, "before": b["key"]}),
        )
        .await;
    // The old between() looped for ever here, growing without bound; any answer proves it
    // ends, and it comes at once (a generous bound, so that a loaded CI cannot flake it).
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(moved.status, 200, "{}", moved.text);
    let ranks = stored_ranks(&app, backlog);
    assert_eq!(
        ranks.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        [a["key"].as_str(), c["key"].as_str(), b["key"].as_str()]
            .map(|k| k.unwrap_or_default())
            .to_vec()
    );
    assert!(
        ranks.windows(2).all(|w| w[0].1 < w[1].1),
        "strictly increasing: {ranks:?}"
    );
    // A malformed rank (not base 62) is repaired the same way.
    diesel::update(items::table.filter(items::key.eq("EQ-1")))
        .set(items::rank.eq("ä!"))
        .execute(&mut *app.conn())
        .expect("plant a malformed rank");
    let moved = app
        .move_item(
            "EQ-2",
            &app.admin_token,
            &json!({"column": backlog, "after": a["key"]}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let ranks = stored_ranks(&app, backlog);
    assert!(ranks.windows(2).all(|w| w[0].1 < w[1].1), "{ranks:?}");
    // Creation at the bottom of a column whose bottom rank is broken re-ranks it too.
    diesel::update(items::table.filter(items::key.eq("EQ-2")))
        .set(items::rank.eq("V0"))
        .execute(&mut *app.conn())
        .expect("plant a rank ending in 0");
    let d = app.item("EQ").title("d").create().await;
    let ranks = stored_ranks(&app, backlog);
    assert_eq!(ranks.last().map(|(k, _)| k.as_str()), d["key"].as_str());
    assert!(ranks.windows(2).all(|w| w[0].1 < w[1].1), "{ranks:?}");
}

async fn a_wip_limit_holds_under_eight_concurrent_moves(app: TestApp) {
    let (board, _) = led_board(
        &app,
        "WIP",
        json!([{"name": "Backlog", "category": "todo"},
               {"name": "Doing", "category": "in_progress", "wip_limit": 5}]),
    )
    .await;
    let doing = board.column_id("Doing");
    let mut keys = Vec::new();
    for n in 0..12 {
        keys.push(
            app.item("WIP").title(&format!("t{n}")).create().await["key"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    for key in &keys[..4] {
        let moved = app
            .move_item(key, &app.admin_token, &json!({"column": doing}))
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let (_, member) = app.user("member").create().await;
    let answers = join_all(keys[4..].iter().map(|key| {
        let (app, member) = (&app, &member);
        async move { app.move_item(key, member, &json!({"column": doing})).await }
    }))
    .await;
    let succeeded = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(succeeded, 1, "exactly one fits: {answers:?}");
    for refused in answers.iter().filter(|a| a.status != 200) {
        let problem = refused.problem(409);
        assert_eq!(
            problem["type"],
            "https://opsboard.dev/problems/wip-limit-exceeded"
        );
        assert_eq!(problem["wip_limit"], 5);
    }
    assert_eq!(stored_ranks(&app, doing).len(), 5);
}

async fn creation_honours_the_wip_limit_of_the_first_column(app: TestApp) {
    let (board, manager) = intake_next_done(&app).await;
    let intake = board.column_id("Intake");
    let (_, member) = app.user("member").create().await;
    let create = |token: String, extra: Value| {
        let app = &app;
        async move {
            let mut body = json!({"board": "INT", "type": "task", "title": "t"});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            app.post("/api/v1/items", &token, &body).await
        }
    };
    for _ in 0..2 {
        assert_eq!(create(member.clone(), json!({})).await.status, 201);
    }
    let full = create(member.clone(), json!({})).await;
    let problem = full.problem(409);
    assert_eq!(problem["items"], json!(["INT-1", "INT-2"]));
    create(member.clone(), json!({"override_wip": true}))
        .await
        .problem(403);
    let overridden = create(manager.1.clone(), json!({"override_wip": true})).await;
    assert_eq!(overridden.status, 201, "{}", overridden.text);
    assert_eq!(
        overridden.json()["key"],
        "INT-3",
        "a refused creation uses no number"
    );
    let history = app
        .get("/api/v1/items/INT-3/history", &app.admin_token)
        .await
        .json();
    assert_eq!(history["items"][0]["data"]["override_wip"], true);
    assert_eq!(stored_ranks(&app, intake).len(), 3);
}

/// `count` creations of tasks on `board` by the holder of `token`, to be sent at once.
fn creations<'a>(
    app: &'a TestApp,
    token: &'a str,
    board: &'a str,
    count: usize,
) -> impl Iterator<Item = impl std::future::Future<Output = Response> + 'a> + 'a {
    (0..count).map(move |n| async move {
        app.post(
            "/api/v1/items",
            token,
            &json!({"board": board, "type": "task", "title": format!("t{n}")}),
        )
        .await
    })
}

/// Board INT: Intake (WIP limit 2), Next (WIP limit 1) and Done, led by a manager.
/// A creation reads its first column's WIP limit and bottom rank and then writes on them,
/// under the board's and the column's locks (taken with the read on PostgreSQL).
async fn a_first_columns_wip_limit_holds_under_ten_concurrent_creations(app: TestApp) {
    let (board, _) = intake_next_done(&app).await;
    let intake = board.column_id("Intake");
    let (_, member) = app.user("member").create().await;
    let answers = join_all(creations(&app, &member, "INT", 10)).await;
    let mut created: Vec<String> = answers
        .iter()
        .filter(|a| a.status == 201)
        .map(|a| a.json()["key"].as_str().unwrap_or_default().to_string())
        .collect();
    created.sort();
    assert_eq!(created, ["INT-1", "INT-2"], "exactly two fit: {answers:?}");
    for refused in answers.iter().filter(|a| a.status != 201) {
        let problem = refused.problem(409);
        assert_eq!(
            problem["type"],
            "https://opsboard.dev/problems/wip-limit-exceeded"
        );
    }
    let ranks = stored_ranks(&app, intake);
    let distinct: HashSet<&String> = ranks.iter().map(|(_, rank)| rank).collect();
    assert_eq!((ranks.len(), distinct.len()), (2, 2), "{ranks:?}");
}

/// A creation on PostgreSQL appends after the rank the last creation gave (the column's
/// hint, read with its lock) rather than reading the column; a move to the bottom in between
/// takes that very rank. The creation must see it and go below it, alone and with creations
/// and moves racing, and every rank stays unique.
async fn creations_stay_below_items_moved_to_the_bottom_of_the_first_column(app: TestApp) {
    let (board, _) = led_board(
        &app,
        "HINT",
        json!([{"name": "Backlog", "category": "todo"}, {"name": "Ready", "category": "todo"}]),
    )
    .await;
    let (backlog, ready) = (board.column_id("Backlog"), board.column_id("Ready"));
    let key = |item: &Value| item["key"].as_str().unwrap_or_default().to_string();
    let moved = key(&app.item("HINT").title("moved").create().await);
    let mut expected = Vec::new();
    for n in 0..3 {
        let item = app.item("HINT").title(&format!("a{n}")).create().await;
        expected.push(key(&item));
    }
    // Out to Ready and back to the bottom of the backlog: the rank after the last creation's,
    // the one the next creation would take from the hint.
    for column in [ready, backlog] {
        let answer = app
            .move_item(&moved, &app.admin_token, &json!({"column": column}))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    expected.push(moved);
    let last = key(&app.item("HINT").title("after the move").create().await);
    expected.push(last);
    let ranks = stored_ranks(&app, backlog);
    let distinct: HashSet<&String> = ranks.iter().map(|(_, rank)| rank).collect();
    assert_eq!(
        distinct.len(),
        ranks.len(),
        "every rank is unique: {ranks:?}"
    );
    let (in_view, in_list) = orders(&app, "HINT", backlog).await;
    assert_eq!(
        in_view, expected,
        "the new item is below the moved one: {ranks:?}"
    );
    assert_eq!(in_list, expected);

    // Ten items wait in Ready; they go to the bottom of the backlog while twenty creations
    // run, all at once.
    let mut waiting = Vec::new();
    for n in 0..10 {
        let item = key(&app.item("HINT").title(&format!("r{n}")).create().await);
        let answer = app
            .move_item(&item, &app.admin_token, &json!({"column": ready}))
            .await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        waiting.push(item);
    }
    let (_, member) = app.user("member").create().await;
    let creating = creations(&app, &member, "HINT", 20);
    let moves = waiting.iter().map(|item| {
        let app = &app;
        async move {
            app.move_item(item, &app.admin_token, &json!({"column": backlog}))
                .await
        }
    });
    let (created, moved) = futures_util::join!(join_all(creating), join_all(moves));
    for answer in created.iter().chain(&moved) {
        assert!(
            answer.status == 200 || answer.status == 201,
            "{}",
            answer.text
        );
    }
    let ranks = stored_ranks(&app, backlog);
    assert_eq!(ranks.len(), 5 + 20 + 10, "{ranks:?}");
    let distinct: HashSet<&String> = ranks.iter().map(|(_, rank)| rank).collect();
    assert_eq!(
        distinct.len(),
        ranks.len(),
        "every rank is unique: {ranks:?}"
    );
    // Each creation went to the bottom as it stood: the created items keep the order of
    // their numbers, below the five from before.
    let numbers: Vec<i64> = ranks
        .iter()
        .filter_map(|(key, _)| key.strip_prefix("HINT-")?.parse().ok())
        .filter(|number| *number > 15)
        .collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!((numbers.len(), &numbers), (20, &sorted), "{ranks:?}");
    assert_eq!(
        ranks[..5]
            .iter()
            .map(|(key, _)| key.clone())
            .collect::<Vec<_>>(),
        expected
    );
    let (in_view, in_list) = orders(&app, "HINT", backlog).await;
    assert_eq!(in_view, in_list, "the board view and the list agree");
    assert_eq!(
        in_view,
        ranks.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>()
    );
}

async fn intake_next_done(app: &TestApp) -> (Board, (Value, String)) {
    led_board(
        app,
        "INT",
        json!([{"name": "Intake", "category": "todo", "wip_limit": 2},
               {"name": "Next", "category": "todo", "wip_limit": 1},
               {"name": "Done", "category": "done"}]),
    )
    .await
}

async fn acceptance_honours_the_wip_limit_of_the_next_column(app: TestApp) {
    let (board, manager) = intake_next_done(&app).await;
    let intake = board.column_id("Intake");
    let (_, member) = app.user("member").create().await;
    app.item("INT").title("t").create().await;
    // Acceptance: the demand goes to `Next`, which holds one item already (its limit).
    let next = board.column_id("Next");
    let moved = app
        .move_item(
            "INT-1",
            &manager.1,
            &json!({"column": next, "override_wip": true}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    app.service("svc").name("Service").create().await;
    let demand = app
        .item("INT")
        .demand()
        .title("Statusabfrage")
        .service("svc")
        .accountable(&manager.0)
        .by(&member)
        .create()
        .await;
    let key = demand["key"].as_str().unwrap_or_default().to_string();
    let accept = json!({"decision": "accepted"});
    let refused = app
        .post(
            &format!("/api/v1/items/{key}/decision"),
            &manager.1,
            &accept,
        )
        .await;
    refused.problem(409);
    let still = app
        .get(&format!("/api/v1/items/{key}"), &app.admin_token)
        .await
        .json();
    assert_eq!(still["column"]["id"], intake, "it stays in intake");
    assert_eq!(still["demand"]["decision"], "pending", "and undecided");
    let accepted = app
        .post(
            &format!("/api/v1/items/{key}/decision"),
            &manager.1,
            &json!({"decision": "accepted", "override_wip": true}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json()["column"]["id"], next);
    let history = app
        .get(&format!("/api/v1/items/{key}/history"), &app.admin_token)
        .await
        .json();
    let moved = history["items"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["kind"] == "moved"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(moved["data"]["override_wip"], true, "{history}");
}

async fn only_the_accountable_person_and_managers_change_who_is_accountable(app: TestApp) {
    let (_, manager) = led_board(
        &app,
        "RACI",
        json!([{"name": "Backlog", "category": "todo"}]),
    )
    .await;
    let (owner, owner_token) = app.user("member").create().await;
    let (other, other_token) = app.user("member").create().await;
    app.item("RACI")
        .task()
        .title("t")
        .accountable(&owner)
        .by(&owner_token)
        .create()
        .await;
    let put = |token: String, body: Value| {
        let app = &app;
        async move { app.put("/api/v1/items/RACI-1/raci", &token, &body).await }
    };
    // Another member makes themself accountable: refused, and nothing changes.
    put(
        other_token.clone(),
        json!({"accountable": other["id"], "responsible": [owner["id"]]}),
    )
    .await
    .problem(403);
    let item = app
        .get("/api/v1/items/RACI-1", &app.admin_token)
        .await
        .json();
    assert_eq!(item["raci"]["accountable"]["id"], owner["id"]);
    assert_eq!(item["version"], 1);
    // The same member may change the other roles.
    let changed = put(
        other_token.clone(),
        json!({"accountable": owner["id"], "responsible": [other["id"]]}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    // The accountable person hands over; a manager hands back.
    let handed = put(owner_token.clone(), json!({"accountable": other["id"]})).await;
    assert_eq!(handed.status, 200, "{}", handed.text);
    let back = put(manager.1.clone(), json!({"accountable": owner["id"]})).await;
    assert_eq!(back.status, 200, "{}", back.text);
    // A member who is not accountable cannot decide on a demand either.
    let history = app
        .get("/api/v1/items/RACI-1/history", &app.admin_token)
        .await
        .json();
    let changes = history["items"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["kind"] == "accountable_changed")
                .count()
        })
        .unwrap_or_default();
    assert_eq!(changes, 2, "{history}");
}

async fn concurrent_writes_without_if_match_never_get_412(app: TestApp) {
    let (board, manager) = led_board(
        &app,
        "LWW",
        json!([{"name": "Backlog", "category": "todo"}, {"name": "Doing", "category": "in_progress"}]),
    )
    .await;
    let item = app.item("LWW").title("t").create().await;
    let (worker, _) = app.user("member").create().await;
    let patches = (0..40).map(|n| {
        app.request(Method::PATCH, "/api/v1/items/LWW-1")
            .token(&app.admin_token)
            .json(&json!({"title": format!("title {n}")}))
            .send()
    });
    let racis = (0..20).map(|n| {
        let accountable = if n % 2 == 0 {
            &manager.0["id"]
        } else {
            &worker["id"]
        };
        app.request(Method::PUT, "/api/v1/items/LWW-1/raci")
            .token(&manager.1)
            .json(&json!({"accountable": accountable}))
            .send()
    });
    let columns = [board.column_id("Backlog"), board.column_id("Doing")];
    let moves = (0..20).map(|n| {
        let body = json!({"column": columns[n % 2]});
        let app = &app;
        async move { app.move_item("LWW-1", &app.admin_token, &body).await }
    });
    let (patched, raci, moved) =
        futures_util::join!(join_all(patches), join_all(racis), join_all(moves));
    for answer in patched.iter().chain(&raci).chain(&moved) {
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let after = app
        .get("/api/v1/items/LWW-1", &app.admin_token)
        .await
        .json();
    let history = app
        .get("/api/v1/items/LWW-1/history?limit=500", &app.admin_token)
        .await
        .json();
    let events = history["items"].as_array().map(Vec::len).unwrap_or(0);
    // Each write that changed something moved the version on by one and wrote its event: none
    // was lost. A write that found the item as it wanted it (the same RACI or column as the
    // write before it) changed nothing and wrote nothing; the 40 titles all differ.
    let writes = events as i64 - 1 - accountable_events(&history);
    assert_eq!(
        after["version"].as_i64(),
        item["version"].as_i64().map(|v| v + writes),
        "{after}"
    );
    assert!((40..=80).contains(&writes), "{writes} writes: {history}");
    let titles = history["items"]
        .as_array()
        .map(|e| e.iter().filter(|e| e["data"]["title"].is_object()).count())
        .unwrap_or_default();
    assert_eq!(titles, 40, "{history}");
    // A stale If-Match is still a 412, naming the current version.
    let stale = app
        .request(Method::PATCH, "/api/v1/items/LWW-1")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"title": "stale"}))
        .send()
        .await;
    assert_eq!(stale.problem(412)["current_version"], after["version"]);
}

fn accountable_events(history: &Value) -> i64 {
    history["items"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["kind"] == "accountable_changed")
                .count() as i64
        })
        .unwrap_or(0)
}

async fn two_admins_demoting_each_other_leave_an_admin(app: TestApp) {
    // Several rounds, each with two admins who demote (or deactivate) each other at once.
    for round in 0..6 {
        let (a, a_token) = app.user("member").create().await;
        let (b, b_token) = app.user("member").create().await;
        let pair = [a["id"].as_i64(), b["id"].as_i64()].map(Option::unwrap_or_default);
        // Make these two the only active admins (set up in storage, the test's own business).
        let [a_id, b_id] = pair;
        sql(
            &app,
            &format!(
                "UPDATE users SET role = CASE WHEN id IN ({a_id}, {b_id}) THEN 'admin' \
                 ELSE 'manager' END WHERE id IN ({a_id}, {b_id}) OR role = 'admin'"
            ),
        );
        let (method, suffix) = if round % 2 == 0 {
            (Method::PATCH, "")
        } else {
            (Method::POST, "/deactivate")
        };
        let path = |id: &Value| format!("/api/v1/users/{id}{suffix}");
        let body = if round % 2 == 0 {
            json!({"role": "member"})
        } else {
            json!({})
        };
        let request = |id: &Value, token: &str| {
            app.request(method.clone(), &path(id))
                .token(token)
                .json(&body)
                .send()
        };
        let (first, second) =
            futures_util::join!(request(&b["id"], &a_token), request(&a["id"], &b_token),);
        let active_admins: i64 = users::table
            .filter(users::role.eq("admin").and(users::active.eq(true)))
            .count()
            .get_result(&mut *app.conn())
            .expect("count");
        assert_eq!(
            active_admins, 1,
            "round {round}: {} {} / {} {}",
            first.status, first.text, second.status, second.text
        );
        // One wins; the other is refused: the last-admin rule (409), or, when it arrived after
        // the first had committed, because its caller is no longer an admin (401/403).
        let statuses = [first.status, second.status];
        assert!(statuses.contains(&200), "round {round}: {statuses:?}");
        assert!(
            statuses.iter().any(|s| [401, 403, 409].contains(s)),
            "round {round}: {statuses:?}"
        );
        // The first admin takes over again, so that the next round can create users.
        sql(
            &app,
            &format!(
                "UPDATE users SET role = 'admin' WHERE email = '{}'",
                crate::helpers::ADMIN_EMAIL
            ),
        );
    }
}

/// Runs SQL on the app's database (the same text on both engines).
fn sql(app: &TestApp, statement: &str) {
    app.conn().batch_execute(statement).expect(statement);
}

/// PostgreSQL down: `/ready` answers 503 within a second, and an API call 503 (with
/// `Retry-After`) within the configured timeouts, instead of hanging for ten seconds or more.
#[actix_web::test]
async fn an_unreachable_postgresql_fails_fast() {
    // Port 1 on loopback: nothing listens, every connection is refused.
    let mut settings = test_settings("postgres://postgres@127.0.0.1:1/opsboard");
    settings.database.pool_timeout_ms = 1_500;
    let db = opsboard::db::Db::from_settings(
        opsboard::db::build_pool_lazily(&settings.database),
        &settings.database,
    );
    let state = opsboard::startup::state_over(settings, db).expect("state");
    let token = state.jwt.issue(1, "admin", 0).expect("token");
    let (address, server) = crate::helpers::serve(state);
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let started = Instant::now();
    let ready = client
        .get(format!("{address}/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status().as_u16(), 503);
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "/ready took {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let me = client
        .get(format!("{address}/api/v1/me"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .expect("me");
    assert_eq!(me.status().as_u16(), 503);
    assert!(me.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "an API call took {:?}",
        started.elapsed()
    );
    server.stop(false).await;
}

/// SQLite held by another writer (a backup tool, a stuck process): a write answers 503 with
/// `Retry-After` within a few seconds instead of half a minute, while reads and `/ready` go on.
#[actix_web::test]
async fn a_locked_sqlite_database_answers_within_seconds() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    app.board("LCK").name("Locked").create().await;
    let mut holder = app.conn();
    holder
        .batch_execute("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let started = Instant::now();
    let write = app
        .patch(
            "/api/v1/boards/LCK",
            &app.admin_token,
            &json!({"name": "renamed"}),
        )
        .await;
    let took = started.elapsed();
    write.problem(503);
    assert!(write.header("retry-after").is_some());
    assert!(took < Duration::from_secs(6), "the write took {took:?}");
    let read = app.get("/api/v1/boards/LCK", &app.admin_token).await;
    assert_eq!(read.status, 200, "reads go on: {}", read.text);
    let started = Instant::now();
    let ready = app.request(Method::GET, "/ready").send().await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert!(started.elapsed() < Duration::from_secs(1));
    holder.batch_execute("ROLLBACK").expect("release");
}

/// PostgreSQL drops every pooled connection (a restart, a failover): without a `SELECT 1` on
/// each checkout, a dead connection answers its request with a 503 and `Retry-After` (never a
/// 500), is discarded when it comes back, and requests succeed again on fresh connections.
#[actix_web::test]
async fn dropped_postgresql_connections_are_replaced() {
    let name = format!("opsboard_drop_{}", std::process::id());
    let tagged = name.clone();
    let Some(app) = TestApp::spawn_with(crate::helpers::Engine::Postgres, move |settings| {
        settings
            .database
            .url
            .push_str(&format!("&application_name={tagged}"));
    })
    .await
    else {
        return;
    };
    // Warm every pooled connection, then end them all from the server's side.
    let warm = (0..8).map(|_| app.get("/api/v1/items", &app.admin_token));
    futures_util::future::join_all(warm).await;
    let url = crate::helpers::postgres_url().expect("postgres");
    let mut admin =
        <diesel::pg::PgConnection as diesel::Connection>::establish(&url).expect("connect");
    diesel::connection::SimpleConnection::batch_execute(
        &mut admin,
        &format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
        ),
    )
    .expect("terminate");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let answer = app.get("/api/v1/items", &app.admin_token).await;
        if answer.status == 503 {
            assert!(answer.header("retry-after").is_some(), "{}", answer.text);
        }
        statuses.push(answer.status);
    }
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 503),
        "{statuses:?}"
    );
    let failed = statuses.iter().filter(|s| **s == 503).count();
    assert!(
        failed <= 4,
        "at most one failure per pooled connection: {statuses:?}"
    );
    assert!(
        statuses[statuses.len() - 6..].iter().all(|s| *s == 200),
        "{statuses:?}"
    );
}
