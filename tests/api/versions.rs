//! The one versioned write: every write of a versioned row moves its version on, a stale
//! `If-Match` gets 412 naming the version the row has *now*, and writes racing on the same
//! version never leave two states behind one ETag.

use actix_web::http::Method;
use futures_util::future::join_all;
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    a_stale_decision_names_the_current_version,
    a_stale_comment_edit_names_the_current_version,
    deleting_a_comment_honours_if_match_and_moves_the_version,
    a_delete_racing_a_patch_of_the_same_version_lets_one_win,
    moving_a_column_moves_the_version_of_the_columns_it_shifts,
    concurrent_column_moves_keep_positions_a_permutation,
);

async fn a_stale_decision_names_the_current_version(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("DEM").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    let demand = app.demand().service("wohngeld").create().await;
    let key = demand["key"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/items/{key}");
    let edited = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"title": "Edited demand"}))
        .send()
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let stale = app
        .request(Method::POST, &format!("{path}/decision"))
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"decision": "deferred", "reason": "Later."}))
        .send()
        .await;
    assert_eq!(stale.problem(412)["current_version"], 2);
    let now = app.get(&path, &app.admin_token).await.json();
    assert_eq!(
        now["demand"]["decision"], "pending",
        "nothing changed: {now}"
    );
    assert_eq!(now["version"], 2);
}

/// A comment posted by the admin on OPS-1, at version 1: the path of the comment.
async fn commented(app: &TestApp) -> String {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    app.item("OPS").create().await;
    let posted = app
        .post(
            "/api/v1/items/OPS-1/comments",
            &app.admin_token,
            &json!({"body": "Erster Stand."}),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    format!("/api/v1/items/OPS-1/comments/{}", posted.json()["id"])
}

async fn a_stale_comment_edit_names_the_current_version(app: TestApp) {
    let path = commented(&app).await;
    for (expected, body) in [("\"1\"", "Zweiter Stand."), ("\"2\"", "Dritter Stand.")] {
        let edited = app
            .request(Method::PATCH, &path)
            .token(&app.admin_token)
            .header("If-Match", expected)
            .json(&json!({"body": body}))
            .send()
            .await;
        assert_eq!(edited.status, 200, "{}", edited.text);
    }
    let stale = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"body": "Veraltet."}))
        .send()
        .await;
    // Not a guess such as the stale version plus one: the version the comment has.
    assert_eq!(stale.problem(412)["current_version"], 3);
    let thread = app
        .get("/api/v1/items/OPS-1/comments", &app.admin_token)
        .await
        .json();
    assert_eq!(thread["items"][0]["body"], "Dritter Stand.");
}

async fn deleting_a_comment_honours_if_match_and_moves_the_version(app: TestApp) {
    let path = commented(&app).await;
    let edited = app
        .patch(&path, &app.admin_token, &json!({"body": "Zweiter Stand."}))
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let stale = app
        .request(Method::DELETE, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    assert_eq!(stale.problem(412)["current_version"], 2);
    let deleted = app
        .request(Method::DELETE, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"2\"")
        .send()
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let thread = app
        .get("/api/v1/items/OPS-1/comments", &app.admin_token)
        .await
        .json();
    let tombstone = &thread["items"][0];
    assert!(tombstone["deleted_at"].is_string(), "{thread}");
    assert_eq!(
        tombstone["version"], 3,
        "the delete is a state of its own: {thread}"
    );
}

async fn a_delete_racing_a_patch_of_the_same_version_lets_one_win(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("RACE").lead(&lead).create().await;
    const ITEMS: usize = 12;
    for _ in 0..ITEMS {
        app.item("RACE").create().await;
    }
    let races = (1..=ITEMS).map(|n| {
        let app = &app;
        async move {
            let path = format!("/api/v1/items/RACE-{n}");
            let patch = app
                .request(Method::PATCH, &path)
                .token(&app.admin_token)
                .header("If-Match", "\"1\"")
                .json(&json!({"title": format!("patched {n}")}))
                .send();
            let delete = app
                .request(Method::DELETE, &path)
                .token(&app.admin_token)
                .header("If-Match", "\"1\"")
                .send();
            let (patched, deleted) = futures_util::join!(patch, delete);
            (n, patched, deleted)
        }
    });
    let mut deletes_won = 0;
    for (n, patched, deleted) in join_all(races).await {
        let wins = [patched.status == 200, deleted.status == 204];
        assert_eq!(
            wins.iter().filter(|w| **w).count(),
            1,
            "RACE-{n}: exactly one write of version 1 wins; patch {} {}, delete {} {}",
            patched.status,
            patched.text,
            deleted.status,
            deleted.text
        );
        // The loser learns why: the version moved (412) or the item is gone (404).
        let loser = if wins[0] { &deleted } else { &patched };
        assert!(
            [404, 412].contains(&loser.status),
            "RACE-{n}: {} {}",
            loser.status,
            loser.text
        );
        let history = app
            .get(&format!("/api/v1/items/RACE-{n}/history"), &app.admin_token)
            .await;
        if wins[1] {
            deletes_won += 1;
            assert_eq!(history.status, 404, "RACE-{n} is deleted: {}", history.text);
        } else {
            let kinds = crate::fixtures::kinds(&history.json());
            assert_eq!(kinds, ["created", "updated"], "RACE-{n}");
        }
    }
    // Whoever won, the items that were deleted are gone and the others carry the patch.
    let listed = app
        .get("/api/v1/items?board=RACE&limit=100", &app.admin_token)
        .await
        .json();
    let live = listed["items"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(live, ITEMS - deletes_won, "{listed}");
    for item in listed["items"].as_array().into_iter().flatten() {
        assert_eq!(item["version"], 2, "{item}");
        assert!(
            item["title"]
                .as_str()
                .is_some_and(|t| t.starts_with("patched")),
            "{item}"
        );
    }
}

async fn moving_a_column_moves_the_version_of_the_columns_it_shifts(app: TestApp) {
    let board = app
        .board("COL")
        .columns(json!([
            {"name": "A", "category": "todo"},
            {"name": "B", "category": "in_progress"},
            {"name": "C", "category": "done"}
        ]))
        .create()
        .await;
    let path = |name: &str| format!("/api/v1/boards/COL/columns/{}", board.column_id(name));
    let moved = app
        .request(Method::PATCH, &path("C"))
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"position": 0}))
        .send()
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json()["version"], 2);
    let view = app.get("/api/v1/boards/COL", &app.admin_token).await.json();
    let columns: Vec<(String, i64, i64)> = view["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["position"].as_i64().unwrap_or(-1),
                c["version"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    // A and B shifted one place down: each is a new state with a new version.
    assert_eq!(
        columns,
        [
            ("C".to_string(), 0, 2),
            ("A".to_string(), 1, 2),
            ("B".to_string(), 2, 2)
        ],
        "{view}"
    );
    // A stale If-Match on a shifted column is refused with its current version.
    let stale = app
        .request(Method::PATCH, &path("A"))
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "AA"}))
        .send()
        .await;
    assert_eq!(stale.problem(412)["current_version"], 2);
}

async fn concurrent_column_moves_keep_positions_a_permutation(app: TestApp) {
    let board = app
        .board("PERM")
        .columns(json!([
            {"name": "A", "category": "todo"},
            {"name": "B", "category": "todo"},
            {"name": "C", "category": "in_progress"},
            {"name": "D", "category": "in_progress"},
            {"name": "E", "category": "done"}
        ]))
        .create()
        .await;
    let names = ["A", "B", "C", "D", "E"];
    let moves = (0..10).map(|n| {
        let path = format!(
            "/api/v1/boards/PERM/columns/{}",
            board.column_id(names[n % names.len()])
        );
        let app = &app;
        async move {
            app.patch(&path, &app.admin_token, &json!({"position": (n * 3) % 5}))
                .await
        }
    });
    for answer in join_all(moves).await {
        // No If-Match: last writer wins, never a 412.
        assert_eq!(answer.status, 200, "{}", answer.text);
    }
    let view = app
        .get("/api/v1/boards/PERM", &app.admin_token)
        .await
        .json();
    let mut positions: Vec<i64> = view["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| c["position"].as_i64().unwrap_or(-1))
        .collect();
    positions.sort_unstable();
    assert_eq!(positions, [0, 1, 2, 3, 4], "{view}");
}
