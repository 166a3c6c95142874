//! Items: creation with RACI, changes, moves with ranks and WIP limits, the board view,
//! soft deletion and history.

use actix_web::http::Method;
use diesel::prelude::*;
use opsboard::db::schema::{item_raci, items};
use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::{Board, kinds, last_event};
use crate::helpers::TestApp;

both_engines!(
    items_get_keys_and_inherit_the_service_raci,
    an_item_lacking_an_accountable_a_service_or_a_board_names_the_field,
    items_are_found_by_key_in_any_case_or_by_id,
    a_patch_refuses_read_only_fields_and_honours_if_match,
    an_items_raci_has_exactly_one_accountable_in_storage_too,
    my_items_is_one_call,
    viewers_neither_create_nor_change_items,
    moves_place_items_before_or_after_others_in_rank_order,
    at_the_wip_limit_a_move_is_refused_unless_a_manager_overrides,
    done_sets_done_at_and_leaving_done_clears_it_but_keeps_started_at,
    bad_moves_name_their_field_and_a_stale_if_match_is_refused,
    the_board_view_shows_cards_in_rank_order_with_filters,
    an_items_history_records_its_creation_and_changes,
    a_column_with_a_live_item_cannot_be_deleted,
    deleted_items_leave_a_tombstone_and_their_key_is_never_reused,
    concurrent_creations_never_share_a_key,
    a_new_item_is_answered_as_it_reads_back,
);

/// Board OPS with the default workflow and the service wohngeld, whose RACI template makes a
/// manager accountable and a member responsible: `(board, lead, worker)`.
pub(crate) async fn ops_and_wohngeld(app: &TestApp) -> (Board, Value, Value) {
    let board = app.board("OPS").name("Operations").create().await;
    let (lead, _) = app.user("manager").create().await;
    let (worker, _) = app.user("member").create().await;
    app.service("wohngeld")
        .name("Wohngeld")
        .accountable(&lead)
        .responsible(&[&worker])
        .create()
        .await;
    (board, lead, worker)
}

/// An incident on OPS for wohngeld, titled `title`.
async fn incident(app: &TestApp, title: &str) -> Value {
    app.item("OPS")
        .incident()
        .title(title)
        .service("wohngeld")
        .create()
        .await
}

async fn items_get_keys_and_inherit_the_service_raci(app: TestApp) {
    let (board, lead, worker) = ops_and_wohngeld(&app).await;
    let first = app
        .item("ops")
        .incident()
        .title(" Upload bricht ab ")
        .service("wohngeld")
        .labels(&["Upload"])
        .create()
        .await;
    assert_eq!(first["key"], "OPS-1");
    assert_eq!(first["title"], "Upload bricht ab");
    assert_eq!(first["column"]["name"], "Backlog");
    assert_eq!(first["column"]["id"], board.column_id("Backlog"));
    assert_eq!(first["priority"], "medium");
    assert_eq!(first["labels"], json!(["upload"]));
    assert_eq!(
        first["raci"]["accountable"]["id"], lead["id"],
        "taken from the service's template"
    );
    assert_eq!(first["raci"]["responsible"][0]["id"], worker["id"]);
    let second = app
        .item("OPS")
        .task()
        .title("Zertifikat erneuern")
        .accountable(&worker)
        .create()
        .await;
    assert_eq!(second["key"], "OPS-2");
    assert!(second["service"].is_null());
    assert!(
        second["rank"].as_str().unwrap_or("") > first["rank"].as_str().unwrap_or(""),
        "new items go to the bottom"
    );
}

async fn an_item_lacking_an_accountable_a_service_or_a_board_names_the_field(app: TestApp) {
    let (_, lead, worker) = ops_and_wohngeld(&app).await;
    // No accountable person anywhere: refused, naming the field.
    app.post(
        "/api/v1/items",
        &app.admin_token,
        &json!({"board": "OPS", "type": "task", "title": "Orphan"}),
    )
    .await
    .names_field(422, "raci.accountable");
    app.post("/api/v1/items", &app.admin_token, &json!({"board": "OPS", "type": "incident", "title": "No service", "raci": {"accountable": worker["id"]}})).await.names_field(422, "service");
    app.post("/api/v1/items", &app.admin_token, &json!({"board": "OPS", "type": "task", "title": "Two", "raci": {"accountable": [lead["id"], worker["id"]]}})).await.names_field(422, "raci.accountable");
    app.post(
        "/api/v1/items",
        &app.admin_token,
        &json!({"board": "NOPE", "type": "task", "title": "X"}),
    )
    .await
    .names_field(422, "board");
}

async fn items_are_found_by_key_in_any_case_or_by_id(app: TestApp) {
    ops_and_wohngeld(&app).await;
    let first = incident(&app, "Upload bricht ab").await;
    assert_eq!(
        app.get("/api/v1/items/ops-1", &app.admin_token)
            .await
            .json()["id"],
        first["id"]
    );
    assert_eq!(
        app.get(&format!("/api/v1/items/{}", first["id"]), &app.admin_token)
            .await
            .json()["key"],
        "OPS-1"
    );
}

async fn a_patch_refuses_read_only_fields_and_honours_if_match(app: TestApp) {
    ops_and_wohngeld(&app).await;
    app.item("OPS")
        .incident()
        .title("Upload bricht ab")
        .service("wohngeld")
        .labels(&["upload"])
        .create()
        .await;
    // Read-only fields are refused by name; a PATCH honours If-Match.
    for field in ["key", "created_at", "version", "done_at"] {
        app.patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({field: "x"}),
        )
        .await
        .names_field(422, field);
    }
    let changed = app.request(Method::PATCH, "/api/v1/items/OPS-1").token(&app.admin_token).header("If-Match", "\"1\"")
        .json(&json!({"priority": "critical", "due_date": "2026-12-24", "labels": ["upload", "bundid"]})).send().await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.header("etag").as_deref(), Some("\"2\""));
    assert_eq!(changed.json()["labels"], json!(["bundid", "upload"]));
    app.request(Method::PATCH, "/api/v1/items/OPS-1")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"title": "Stale"}))
        .send()
        .await
        .problem(412);
    app.patch(
        "/api/v1/items/OPS-1",
        &app.admin_token,
        &json!({"service": null}),
    )
    .await
    .names_field(422, "service");
}

async fn an_items_raci_has_exactly_one_accountable_in_storage_too(app: TestApp) {
    let (_, lead, worker) = ops_and_wohngeld(&app).await;
    let first = incident(&app, "Upload bricht ab").await;
    // RACI of an item: exactly one accountable, enforced by the database as well.
    let put = app
        .put(
            "/api/v1/items/OPS-1/raci",
            &app.admin_token,
            &json!({"accountable": worker["id"], "informed": [lead["id"]]}),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.text);
    assert_eq!(put.json()["accountable"]["id"], worker["id"]);
    app.put(
        "/api/v1/items/OPS-1/raci",
        &app.admin_token,
        &json!({"responsible": [lead["id"]]}),
    )
    .await
    .names_field(422, "accountable");
    let id = first["id"].as_i64().unwrap_or_default();
    let second_accountable = diesel::insert_into(item_raci::table)
        .values((
            item_raci::item_id.eq(id),
            item_raci::user_id.eq(lead["id"].as_i64().unwrap_or_default()),
            item_raci::role.eq("accountable"),
        ))
        .execute(&mut app.conn());
    assert!(second_accountable.is_err());
}

async fn my_items_is_one_call(app: TestApp) {
    let (_, lead, worker) = ops_and_wohngeld(&app).await;
    // The worker is accountable for both items, the lead only informed of the first.
    app.item("OPS")
        .incident()
        .title("Upload bricht ab")
        .service("wohngeld")
        .accountable(&worker)
        .with(json!({"raci": {"informed": [lead["id"]]}}))
        .create()
        .await;
    app.item("OPS")
        .task()
        .title("Zertifikat erneuern")
        .accountable(&worker)
        .create()
        .await;
    let mine = app
        .get(
            &format!("/api/v1/items?involved={}", worker["id"]),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(2));
    let accountable = app
        .get(
            &format!("/api/v1/items?accountable={}", lead["id"]),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(accountable["items"].as_array().map(Vec::len), Some(0));
}

async fn viewers_neither_create_nor_change_items(app: TestApp) {
    ops_and_wohngeld(&app).await;
    incident(&app, "Upload bricht ab").await;
    let (_, viewer) = app.user("viewer").create().await;
    app.post(
        "/api/v1/items",
        &viewer,
        &json!({"board": "OPS", "type": "task", "title": "V"}),
    )
    .await
    .problem(403);
    app.patch("/api/v1/items/OPS-1", &viewer, &json!({"title": "V"}))
        .await
        .problem(403);
}

/// Four incidents on OPS (OPS-1 to OPS-4) and a member to move them: `(board, member)`.
async fn four_incidents(app: &TestApp) -> (Board, String) {
    let (board, _, _) = ops_and_wohngeld(app).await;
    let (_, member) = app.user("member").create().await;
    for n in 1..=4 {
        incident(app, &format!("Item {n}")).await;
    }
    (board, member)
}

/// Moves `key` as the holder of `token`, asserting that it worked; returns the item.
async fn moved(app: &TestApp, key: &str, token: &str, body: Value) -> Value {
    let response = app.move_item(key, token, &body).await;
    assert_eq!(response.status, 200, "moving {key}: {}", response.text);
    response.json()
}

async fn moves_place_items_before_or_after_others_in_rank_order(app: TestApp) {
    let (board, member) = four_incidents(&app).await;
    let progress = board.column_id("In progress");
    let first = app
        .move_item("OPS-1", &member, &json!({"column": progress}))
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let first = first.json();
    assert!(first["started_at"].is_string());
    assert!(first["done_at"].is_null());
    assert_eq!(
        app.move_item(
            "OPS-2",
            &member,
            &json!({"column": progress, "before": "OPS-1"})
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.move_item(
            "OPS-3",
            &member,
            &json!({"column": progress, "after": "OPS-2"})
        )
        .await
        .status,
        200
    );
    let view = app.get("/api/v1/boards/OPS/view", &member).await.json();
    let in_progress = view["columns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "In progress"))
        .cloned()
        .unwrap_or_default();
    let keys: Vec<&str> = in_progress["cards"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["OPS-2", "OPS-3", "OPS-1"]);
    // Reordering inside a column is a move too.
    assert_eq!(
        app.move_item(
            "OPS-1",
            &member,
            &json!({"column": progress, "before": "OPS-2"})
        )
        .await
        .status,
        200
    );
}

async fn at_the_wip_limit_a_move_is_refused_unless_a_manager_overrides(app: TestApp) {
    let (board, member) = four_incidents(&app).await;
    let progress = board.column_id("In progress");
    for key in ["OPS-1", "OPS-2", "OPS-3"] {
        moved(&app, key, &member, json!({"column": progress})).await;
    }
    // At the WIP limit: refused with the limit and the items, unless a manager overrides.
    let limited = app
        .patch(
            &format!("/api/v1/boards/OPS/columns/{progress}"),
            &app.admin_token,
            &json!({"wip_limit": 3}),
        )
        .await;
    assert_eq!(limited.status, 200, "{}", limited.text);
    let refused = app
        .move_item("OPS-4", &member, &json!({"column": progress}))
        .await
        .problem(409);
    assert!(
        refused["type"]
            .as_str()
            .unwrap_or("")
            .ends_with("/wip-limit-exceeded"),
        "{refused}"
    );
    assert_eq!(refused["wip_limit"], 3);
    assert_eq!(refused["items"].as_array().map(Vec::len), Some(3));
    app.move_item(
        "OPS-4",
        &member,
        &json!({"column": progress, "override_wip": true}),
    )
    .await
    .problem(403);
    let overridden = app
        .move_item(
            "OPS-4",
            &app.admin_token,
            &json!({"column": progress, "override_wip": true}),
        )
        .await;
    assert_eq!(overridden.status, 200, "{}", overridden.text);
    let history = app.get("/api/v1/items/OPS-4/history", &member).await.json();
    let last = last_event(&history);
    assert_eq!(last["kind"], "moved");
    assert_eq!(last["data"]["override_wip"], true);
}

async fn done_sets_done_at_and_leaving_done_clears_it_but_keeps_started_at(app: TestApp) {
    let (board, member) = four_incidents(&app).await;
    let progress = board.column_id("In progress");
    let done = board.column_id("Done");
    let started = moved(&app, "OPS-1", &member, json!({"column": progress})).await;
    // Done sets done_at; leaving done clears it; started_at stays.
    let refused = app
        .move_item("OPS-1", &member, &json!({"column": done}))
        .await;
    assert_eq!(
        refused.status, 422,
        "an incident needs a resolution: {}",
        refused.text
    );
    assert!(refused.text.contains("resolution"), "{}", refused.text);
    let finished = app
        .move_item(
            "OPS-1",
            &member,
            &json!({"column": done, "resolution": "Zertifikat getauscht"}),
        )
        .await
        .json();
    assert_eq!(finished["incident"]["resolution"], "Zertifikat getauscht");
    assert!(finished["incident"]["resolved_at"].is_string());
    assert!(finished["done_at"].is_string());
    let reopened = app
        .move_item(
            "OPS-1",
            &app.admin_token,
            &json!({"column": progress, "override_wip": true}),
        )
        .await
        .json();
    assert!(reopened["done_at"].is_null());
    assert_eq!(reopened["started_at"], started["started_at"]);
}

async fn bad_moves_name_their_field_and_a_stale_if_match_is_refused(app: TestApp) {
    let (board, member) = four_incidents(&app).await;
    let progress = board.column_id("In progress");
    let done = board.column_id("Done");
    // One move, so that version 1 is stale.
    moved(&app, "OPS-1", &member, json!({"column": progress})).await;
    // Bad moves name their field.
    app.move_item("OPS-1", &member, &json!({"column": 999999}))
        .await
        .names_field(422, "column");
    app.move_item(
        "OPS-1",
        &member,
        &json!({"column": progress, "before": "OPS-99"}),
    )
    .await
    .names_field(422, "before");
    app.request(Method::POST, "/api/v1/items/OPS-1/move")
        .token(&member)
        .header("If-Match", "\"1\"")
        .json(&json!({"column": done}))
        .send()
        .await
        .problem(412);
}

async fn the_board_view_shows_cards_in_rank_order_with_filters(app: TestApp) {
    let (_, lead, worker) = ops_and_wohngeld(&app).await;
    app.item("OPS")
        .incident()
        .title("Ausfall")
        .service("wohngeld")
        .priority("critical")
        .labels(&["prod"])
        .create()
        .await;
    app.item("OPS")
        .task()
        .title("Aufräumen")
        .accountable(&worker)
        .create()
        .await;
    let view = app
        .get("/api/v1/boards/OPS/view", &app.admin_token)
        .await
        .json();
    let names: Vec<&str> = view["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names, ["Backlog", "Ready", "In progress", "Review", "Done"]);
    let backlog = &view["columns"][0];
    assert_eq!(backlog["count"], 2);
    let card = &backlog["cards"][0];
    assert_eq!(card["key"], "OPS-1");
    assert_eq!(card["service"]["name"], "Wohngeld");
    assert_eq!(card["accountable"], lead["display_name"]);
    assert_eq!(card["responsible"][0], worker["display_name"]);
    assert_eq!(card["labels"], json!(["prod"]));
    assert_eq!(view["columns"][2]["wip_limit"], 5);
    let count = |q: &str| {
        let path = format!("/api/v1/boards/OPS/view?{q}");
        let app = &app;
        async move {
            app.get(&path, &app.admin_token).await.json()["columns"][0]["shown"]
                .as_i64()
                .unwrap_or(-1)
        }
    };
    assert_eq!(count("type=task").await, 1);
    assert_eq!(count("service=wohngeld").await, 1);
    assert_eq!(count(&format!("person={}", lead["id"])).await, 1);
    assert_eq!(count(&format!("person={}", worker["id"])).await, 2);
    assert_eq!(count("label=prod").await, 1);
    assert_eq!(count("q=aufr").await, 1);
    app.get("/api/v1/boards/NOPE/view", &app.admin_token)
        .await
        .problem(404);
}

/// Incident OPS-1 "Weg damit", renamed once to "Gleich weg" (so at version 2).
async fn renamed_incident(app: &TestApp) -> Board {
    let (board, _, _) = ops_and_wohngeld(app).await;
    incident(app, "Weg damit").await;
    let renamed = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"title": "Gleich weg"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    board
}

async fn an_items_history_records_its_creation_and_changes(app: TestApp) {
    renamed_incident(&app).await;
    let history = app
        .get("/api/v1/items/OPS-1/history", &app.admin_token)
        .await
        .json();
    assert_eq!(kinds(&history), ["created", "updated"]);
    assert_eq!(history["items"][1]["data"]["title"]["old"], "Weg damit");
}

async fn a_column_with_a_live_item_cannot_be_deleted(app: TestApp) {
    let board = renamed_incident(&app).await;
    // The column is in use: it cannot go.
    let backlog = board.column_id("Backlog");
    app.delete(
        &format!("/api/v1/boards/OPS/columns/{backlog}"),
        &app.admin_token,
    )
    .await
    .problem(409);
}

async fn deleted_items_leave_a_tombstone_and_their_key_is_never_reused(app: TestApp) {
    renamed_incident(&app).await;
    let since = "2000-01-01T00:00:00Z";
    app.request(Method::DELETE, "/api/v1/items/OPS-1")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .problem(412);
    assert_eq!(
        app.delete("/api/v1/items/OPS-1", &app.admin_token)
            .await
            .status,
        204
    );
    app.get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .problem(404);
    let listed = app.get("/api/v1/items", &app.admin_token).await.json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(0));
    let view = app
        .get("/api/v1/boards/OPS/view", &app.admin_token)
        .await
        .json();
    assert_eq!(view["columns"][0]["count"], 0);
    let tombstones = app
        .get(
            &format!("/api/v1/items?include_deleted=true&updated_since={since}"),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(tombstones["items"][0]["key"], "OPS-1");
    assert!(tombstones["items"][0]["deleted_at"].is_string());
    // The tombstone still holds its service: the service cannot go.
    app.delete("/api/v1/services/wohngeld", &app.admin_token)
        .await
        .problem(409);
    // The key is never reused.
    let next = incident(&app, "Neu").await;
    assert_eq!(next["key"], "OPS-2");
    let stored: i64 = items::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(stored, 2, "the tombstone stays in storage");
}

async fn concurrent_creations_never_share_a_key(app: TestApp) {
    ops_and_wohngeld(&app).await;
    let create = |n: usize| {
        let app = &app;
        async move {
            app.post("/api/v1/items", &app.admin_token, &json!({"board": "OPS", "type": "incident", "title": format!("Parallel {n}"), "service": "wohngeld"})).await
        }
    };
    let responses = futures_util::future::join_all((0..12).map(create)).await;
    let mut keys: Vec<String> = responses
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", r.text);
            r.json()["key"].as_str().unwrap_or_default().to_string()
        })
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 12, "every creation got its own key: {keys:?}");
}

both_engines!(
    comments_are_changed_and_deleted_by_their_author_only,
    links_show_from_both_ends_and_never_twice,
    comments_and_links_are_in_the_items_history,
);

/// Incidents OPS-1 to OPS-3 and two members: `(member, other)`.
async fn three_incidents(app: &TestApp) -> (String, String) {
    ops_and_wohngeld(app).await;
    let (_, member) = app.user("member").create().await;
    let (_, other) = app.user("member").create().await;
    for title in ["Ausfall", "Ursache", "Doppelt"] {
        incident(app, title).await;
    }
    (member, other)
}

/// `POST path` as the holder of `token`, asserting `status`; returns the body.
async fn posted(app: &TestApp, path: &str, token: &str, body: Value, status: u16) -> Value {
    let response = app.post(path, token, &body).await;
    assert_eq!(response.status, status, "POST {path}: {}", response.text);
    response.json()
}

async fn comments_are_changed_and_deleted_by_their_author_only(app: TestApp) {
    let (member, other) = three_incidents(&app).await;
    let posted = app
        .post(
            "/api/v1/items/OPS-1/comments",
            &member,
            &json!({"body": "Tritt nur bei großen Dateien auf."}),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.text);
    let comment = posted.json();
    let path = format!("/api/v1/items/OPS-1/comments/{}", comment["id"]);
    app.patch(&path, &other, &json!({"body": "Nicht meins"}))
        .await
        .problem(403);
    let edited = app
        .request(Method::PATCH, &path)
        .token(&member)
        .header("If-Match", "\"1\"")
        .json(&json!({"body": "Nur bei Dateien über 10 MB."}))
        .send()
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json()["edited"], true);
    app.post(
        "/api/v1/items/OPS-1/comments",
        &member,
        &json!({"body": "  "}),
    )
    .await
    .names_field(422, "body");
    app.delete(&path, &other).await.problem(403);
    assert_eq!(app.delete(&path, &member).await.status, 204);
    let thread = app.get("/api/v1/items/OPS-1/comments", &other).await.json();
    assert!(
        thread["items"][0]["body"].is_null(),
        "a tombstone stays: {thread}"
    );
    assert!(thread["items"][0]["deleted_at"].is_string());
}

async fn links_show_from_both_ends_and_never_twice(app: TestApp) {
    let (member, _) = three_incidents(&app).await;
    let blocks = app
        .post(
            "/api/v1/items/OPS-2/links",
            &member,
            &json!({"kind": "blocks", "item": "ops-1"}),
        )
        .await;
    assert_eq!(blocks.status, 201, "{}", blocks.text);
    assert_eq!(blocks.json()["kind"], "blocks");
    let from_other_end = app.get("/api/v1/items/OPS-1/links", &member).await.json();
    assert_eq!(from_other_end[0]["kind"], "blocked_by");
    assert_eq!(from_other_end[0]["item"], "OPS-2");
    app.post(
        "/api/v1/items/OPS-1/links",
        &member,
        &json!({"kind": "blocked_by", "item": "OPS-2"}),
    )
    .await
    .problem(409);
    posted(
        &app,
        "/api/v1/items/OPS-3/links",
        &member,
        json!({"kind": "duplicates", "item": "OPS-1"}),
        201,
    )
    .await;
    app.post(
        "/api/v1/items/OPS-1/links",
        &member,
        &json!({"kind": "relates", "item": "OPS-1"}),
    )
    .await
    .names_field(422, "item");
    posted(
        &app,
        "/api/v1/items/OPS-1/links",
        &member,
        json!({"kind": "relates", "item": "OPS-3"}),
        201,
    )
    .await;
    app.post(
        "/api/v1/items/OPS-3/links",
        &member,
        &json!({"kind": "relates", "item": "OPS-1"}),
    )
    .await
    .problem(409);
    let links = app.get("/api/v1/items/OPS-1/links", &member).await.json();
    let kinds: Vec<&str> = links
        .as_array()
        .map(|l| l.iter().filter_map(|l| l["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, ["blocked_by", "duplicated_by", "relates"]);
    let link_id = links[0]["id"].clone();
    assert_eq!(
        app.delete(&format!("/api/v1/items/OPS-1/links/{link_id}"), &member)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get("/api/v1/items/OPS-2/links", &member)
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

async fn comments_and_links_are_in_the_items_history(app: TestApp) {
    let (member, _) = three_incidents(&app).await;
    let comment = posted(
        &app,
        "/api/v1/items/OPS-1/comments",
        &member,
        json!({"body": "Tritt nur bei großen Dateien auf."}),
        201,
    )
    .await;
    let path = format!("/api/v1/items/OPS-1/comments/{}", comment["id"]);
    let edited = app
        .patch(
            &path,
            &member,
            &json!({"body": "Nur bei Dateien über 10 MB."}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(app.delete(&path, &member).await.status, 204);
    let blocks = posted(
        &app,
        "/api/v1/items/OPS-2/links",
        &member,
        json!({"kind": "blocks", "item": "OPS-1"}),
        201,
    )
    .await;
    for (from, kind, to) in [
        ("OPS-3", "duplicates", "OPS-1"),
        ("OPS-1", "relates", "OPS-3"),
    ] {
        let path = format!("/api/v1/items/{from}/links");
        posted(&app, &path, &member, json!({"kind": kind, "item": to}), 201).await;
    }
    let unlinked = app
        .delete(
            &format!("/api/v1/items/OPS-1/links/{}", blocks["id"]),
            &member,
        )
        .await;
    assert_eq!(unlinked.status, 204, "{}", unlinked.text);
    let history = app.get("/api/v1/items/OPS-1/history", &member).await.json();
    assert_eq!(
        kinds(&history),
        [
            "created",
            "commented",
            "comment_edited",
            "comment_deleted",
            "linked",
            "linked",
            "linked",
            "unlinked"
        ]
    );
}

both_engines!(external_references_map_items_to_other_systems);

async fn external_references_map_items_to_other_systems(app: TestApp) {
    ops_and_wohngeld(&app).await;
    let first = app
        .item("OPS")
        .incident()
        .title("Aus JIRA")
        .service("wohngeld")
        .with(
            json!({"external_refs": [{"system": "jira", "key": "OZG-123",
                                         "url": "https://jira.example.org/browse/OZG-123"}]}),
        )
        .create()
        .await;
    assert_eq!(first["external_refs"][0]["key"], "OZG-123");
    let found = app
        .get(
            "/api/v1/items?external_system=jira&external_key=OZG-123",
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(found["items"][0]["key"], "OPS-1");
    app.get("/api/v1/items?external_system=jira", &app.admin_token)
        .await
        .names_field(400, "external_key");
    // The same key in the same system cannot belong to a second item; one reference per system.
    let taken = json!({"board": "OPS", "type": "incident", "title": "Doppelt", "service": "wohngeld", "external_refs": [{"system": "jira", "key": "OZG-123"}]});
    app.post("/api/v1/items", &app.admin_token, &taken)
        .await
        .problem(409);
    let twice = json!({"board": "OPS", "type": "incident", "title": "Zweimal", "service": "wohngeld",
        "external_refs": [{"system": "jira", "key": "A-1"}, {"system": "jira", "key": "A-2"}]});
    app.post("/api/v1/items", &app.admin_token, &twice)
        .await
        .names_field(422, "external_refs[1].system");
    let patched = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"external_refs": [{"system": "openproject", "key": "4711"}]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    assert_eq!(
        patched.json()["external_refs"],
        json!([{"system": "openproject", "key": "4711", "url": null, "alias": null}])
    );
    let gone = app
        .get(
            "/api/v1/items?external_system=jira&external_key=OZG-123",
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(gone["items"].as_array().map(Vec::len), Some(0));
}

both_engines!(
    two_hundred_random_moves_keep_the_expected_order,
    concurrent_patches_with_one_if_match,
    requesters_see_no_team_items_and_viewers_only_read,
);

async fn two_hundred_random_moves_keep_the_expected_order(app: TestApp) {
    let (board, _, _) = ops_and_wohngeld(&app).await;
    let columns = [board.column_id("Backlog"), board.column_id("Ready")];
    for n in 1..=8 {
        incident(&app, &format!("Karte {n}")).await;
    }
    // The expected board: item keys per column, in order.
    let mut expected: Vec<Vec<String>> =
        vec![(1..=8).map(|n| format!("OPS-{n}")).collect(), Vec::new()];
    // A small deterministic generator, so that a failure can be replayed.
    let mut seed: u64 = 0x5eed_1234;
    let mut next = |bound: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % bound.max(1)
    };
    for _ in 0..200 {
        let key = format!("OPS-{}", next(8) + 1);
        for column in expected.iter_mut() {
            column.retain(|k| *k != key);
        }
        let target = next(2);
        let len = expected[target].len();
        let mode = next(3);
        let (body, at) = match (mode, len) {
            (_, 0) | (2, _) => (json!({"column": columns[target]}), len),
            (0, _) => {
                let i = next(len);
                (
                    json!({"column": columns[target], "before": expected[target][i]}),
                    i,
                )
            }
            _ => {
                let i = next(len);
                (
                    json!({"column": columns[target], "after": expected[target][i]}),
                    i + 1,
                )
            }
        };
        let response = app.move_item(&key, &app.admin_token, &body).await;
        assert_eq!(response.status, 200, "{}", response.text);
        expected[target].insert(at, key);
    }
    let view = app
        .get("/api/v1/boards/OPS/view", &app.admin_token)
        .await
        .json();
    for (index, column) in expected.iter().enumerate() {
        let shown: Vec<String> = view["columns"][index]["cards"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["key"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(&shown, column, "column {index}");
    }
}

async fn concurrent_patches_with_one_if_match(app: TestApp) {
    ops_and_wohngeld(&app).await;
    incident(&app, "Gleichzeitig").await;
    let patch = |body: Value| {
        app.request(Method::PATCH, "/api/v1/items/OPS-1")
            .token(&app.admin_token)
            .header("If-Match", "\"1\"")
            .json(&body)
            .send()
    };
    let (a, b) = futures_util::join!(
        patch(json!({"priority": "critical"})),
        patch(json!({"labels": ["prod"]}))
    );
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", a.text, b.text);
    let stored = app
        .get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .json();
    assert_eq!(stored["version"], 2);
    if a.status == 200 {
        assert_eq!(
            (stored["priority"].clone(), stored["labels"].clone()),
            (json!("critical"), json!([]))
        );
    } else {
        assert_eq!(
            (stored["priority"].clone(), stored["labels"].clone()),
            (json!("medium"), json!(["prod"]))
        );
    }
}

async fn requesters_see_no_team_items_and_viewers_only_read(app: TestApp) {
    ops_and_wohngeld(&app).await;
    incident(&app, "Gleichzeitig").await;
    // A requester sees only their organization's demands: none of these items; viewers only
    // read.
    let (_, requester) = app.user("requester").create().await;
    let listed = app.get("/api/v1/items", &requester).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["items"], json!([]));
    app.get("/api/v1/items/OPS-1", &requester)
        .await
        .problem(404);
    let view = app.get("/api/v1/boards/OPS/view", &requester).await.json();
    assert!(
        view["columns"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["count"] == 0)),
        "{view}"
    );
    app.post(
        "/api/v1/items",
        &requester,
        &json!({"board": "OPS", "type": "task", "title": "x"}),
    )
    .await
    .problem(403);
    let (_, viewer) = app.user("viewer").create().await;
    app.request(Method::POST, "/api/v1/items/OPS-1/move")
        .token(&viewer)
        .json(&json!({"column": 1}))
        .send()
        .await
        .problem(403);
    app.post(
        "/api/v1/items/OPS-1/comments",
        &viewer,
        &json!({"body": "x"}),
    )
    .await
    .problem(403);
    assert_eq!(
        app.get(
            "/api/v1/items?category=todo&priority=medium&q=gleich",
            &viewer
        )
        .await
        .status,
        200
    );
}

both_engines!(
    item_lists_sort_and_page_in_every_order,
    a_sort_or_a_cursor_of_another_order_is_refused,
    a_cursor_carries_its_sort_even_where_its_value_fits_another,
);

/// Collects every page of a list, following `next_cursor`.
async fn all_pages(app: &TestApp, query: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = String::new();
    for _ in 0..20 {
        let page = app
            .get(
                &format!("/api/v1/items?{query}&limit=2&cursor={cursor}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        for item in page["items"].as_array().into_iter().flatten() {
            keys.push(item["key"].as_str().unwrap_or_default().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return keys,
        }
    }
    panic!("the list never ended: {keys:?}");
}

/// Tasks OPS-1 to OPS-5 for wohngeld, of priority low, critical, medium, high and critical.
async fn five_tasks(app: &TestApp) {
    ops_and_wohngeld(app).await;
    for (title, priority) in [
        ("eins", "low"),
        ("zwei", "critical"),
        ("drei", "medium"),
        ("vier", "high"),
        ("fünf", "critical"),
    ] {
        app.item("OPS")
            .task()
            .title(title)
            .priority(priority)
            .service("wohngeld")
            .create()
            .await;
    }
}

async fn item_lists_sort_and_page_in_every_order(app: TestApp) {
    five_tasks(&app).await;
    let keys = |list: &[&str]| list.iter().map(|k| k.to_string()).collect::<Vec<_>>();
    assert_eq!(
        all_pages(&app, "board=OPS").await,
        keys(&["OPS-1", "OPS-2", "OPS-3", "OPS-4", "OPS-5"]),
        "oldest first by default"
    );
    assert_eq!(
        all_pages(&app, "sort=-created_at").await,
        keys(&["OPS-5", "OPS-4", "OPS-3", "OPS-2", "OPS-1"])
    );
    assert_eq!(
        all_pages(&app, "sort=priority").await,
        keys(&["OPS-2", "OPS-5", "OPS-4", "OPS-3", "OPS-1"]),
        "critical first, ties by creation"
    );
    assert_eq!(
        all_pages(&app, "sort=-priority").await,
        keys(&["OPS-1", "OPS-3", "OPS-4", "OPS-5", "OPS-2"])
    );
    // Move OPS-5 to the top of the backlog: rank order changes, and so does updated_at order.
    let moved = app
        .post(
            "/api/v1/items/OPS-5/move",
            &app.admin_token,
            &json!({"column": app.get("/api/v1/boards/OPS", &app.admin_token).await.json()["columns"][0]["id"], "before": "OPS-1"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(
        all_pages(&app, "sort=rank").await,
        keys(&["OPS-5", "OPS-1", "OPS-2", "OPS-3", "OPS-4"])
    );
    assert_eq!(
        all_pages(&app, "sort=-rank").await,
        keys(&["OPS-4", "OPS-3", "OPS-2", "OPS-1", "OPS-5"])
    );
    assert_eq!(
        all_pages(&app, "sort=-updated_at")
            .await
            .first()
            .map(String::as_str),
        Some("OPS-5")
    );
    assert_eq!(all_pages(&app, "sort=updated_at").await.len(), 5);
}

async fn a_sort_or_a_cursor_of_another_order_is_refused(app: TestApp) {
    five_tasks(&app).await;
    // OPS-5 to the top of the backlog, as in the test above. The rank cursor below then holds
    // a rank that is no number: one of "1" would also parse as a priority cursor.
    let backlog =
        app.get("/api/v1/boards/OPS", &app.admin_token).await.json()["columns"][0]["id"].clone();
    let moved = app
        .move_item(
            "OPS-5",
            &app.admin_token,
            &json!({"column": backlog, "before": "OPS-1"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);

    let bad = app.get("/api/v1/items?sort=title", &app.admin_token).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(bad.text.contains("sort"), "{}", bad.text);
    // A cursor of one order is refused by another instead of returning a wrong page.
    let page = app
        .get("/api/v1/items?sort=rank&limit=1", &app.admin_token)
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap_or_default();
    let mixed = app
        .get(
            &format!("/api/v1/items?sort=priority&cursor={cursor}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(mixed.status, 400, "{}", mixed.text);
    assert!(mixed.text.contains("cursor"), "{}", mixed.text);
}

/// A cursor names the sort it was made for: one whose value would also read in another order
/// (a time of `created_at` as one of `updated_at`, any value in the reverse order, a rank of
/// digits as a priority) is refused with a 400 naming `cursor`, not answered with a wrong page.
async fn a_cursor_carries_its_sort_even_where_its_value_fits_another(app: TestApp) {
    five_tasks(&app).await;
    let cursor_of = |sort: &'static str| {
        let app = &app;
        async move {
            let page = app
                .get(
                    &format!("/api/v1/items?sort={sort}&limit=2"),
                    &app.admin_token,
                )
                .await;
            assert_eq!(page.status, 200, "{}", page.text);
            page.json()["next_cursor"]
                .as_str()
                .unwrap_or_else(|| panic!("a next page for {sort}"))
                .to_string()
        }
    };
    for (made_for, used_with) in [
        ("created_at", "-created_at"),
        ("created_at", "updated_at"),
        ("-updated_at", "created_at"),
        ("rank", "-rank"),
        ("priority", "-priority"),
        ("rank", "priority"),
    ] {
        let cursor = cursor_of(made_for).await;
        let mixed = app
            .get(
                &format!("/api/v1/items?sort={used_with}&limit=2&cursor={cursor}"),
                &app.admin_token,
            )
            .await;
        let problem = mixed.names_field(400, "cursor");
        assert!(
            problem["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("sort"),
            "{made_for} used with {used_with}: {problem}"
        );
        // With its own sort the cursor still gives the next page.
        let next = app
            .get(
                &format!("/api/v1/items?sort={made_for}&limit=2&cursor={cursor}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(next.status, 200, "{made_for}: {}", next.text);
    }
    // No sort at all is the default, `created_at`: its cursors go on with it.
    let cursor = cursor_of("created_at").await;
    let default = app
        .get(
            &format!("/api/v1/items?limit=2&cursor={cursor}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(default.status, 200, "{}", default.text);
}

/// A creation answers with the item it assembled from what it wrote (labels, people,
/// references), not read back: the answer, a GET and the `created` event's snapshot in the
/// changes feed are the same item, with labels in byte order and each RACI role's people by
/// display name, whatever the order of the request and of the people's ids.
async fn a_new_item_is_answered_as_it_reads_back(app: TestApp) {
    let (_, lead, worker) = ops_and_wohngeld(&app).await;
    let (zora, _) = app.user("member").create().await;
    let (anna, _) = app.user("member").create().await;
    for (person, name) in [
        (&zora, "Zora Zeh"),
        (&anna, "Anna Abel"),
        (&worker, "Mia Mitte"),
    ] {
        let path = format!("/api/v1/users/{}", person["id"]);
        let changed = app
            .patch(&path, &app.admin_token, &json!({"display_name": name}))
            .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
    }
    let task = app
        .item("OPS")
        .task()
        .title("Viele Beteiligte")
        .labels(&["zeta", "alpha", "Mitte"])
        .with(json!({
            "raci": {"accountable": lead["id"], "responsible": [zora["id"], anna["id"], worker["id"]],
                     "consulted": [anna["id"]], "informed": [zora["id"], worker["id"]]},
            "external_refs": [{"system": "jira", "key": "OPS-9"},
                              {"system": "github", "key": "org/repo#1", "url": "https://example.org/1"}]
        }))
        .create()
        .await;
    assert_eq!(task["labels"], json!(["alpha", "mitte", "zeta"]));
    let names = |role: &str| -> Vec<String> {
        task["raci"][role]
            .as_array()
            .map(|people| {
                people
                    .iter()
                    .filter_map(|p| p["display_name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(names("responsible"), ["Anna Abel", "Mia Mitte", "Zora Zeh"]);
    assert_eq!(names("informed"), ["Mia Mitte", "Zora Zeh"]);
    assert_eq!(task["raci"]["consulted"][0]["email"], anna["email"]);
    assert_eq!(task["external_refs"][0]["system"], "github");
    // A demand from the service's template, with the board's lead first: the template's
    // accountable becomes responsible.
    let demand = app
        .item("OPS")
        .demand()
        .title("Neues Formular")
        .service("wohngeld")
        .labels(&["b", "a"])
        .create()
        .await;
    let feed = app.get("/api/v1/changes?limit=100", &app.admin_token).await;
    assert_eq!(feed.status, 200, "{}", feed.text);
    let feed = feed.json();
    for created in [&task, &demand] {
        let key = created["key"].as_str().unwrap_or_default();
        let read = app
            .get(&format!("/api/v1/items/{key}"), &app.admin_token)
            .await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(
            read.json(),
            *created,
            "the answer to the creation of {key} is what a GET reads"
        );
        let snapshot = feed["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|e| e["entity_key"] == key && e["kind"] == "created")
            .map(|e| e["item"].clone());
        assert_eq!(
            snapshot.as_ref(),
            Some(created),
            "the feed's snapshot of {key}"
        );
    }
}
