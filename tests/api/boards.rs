//! Boards and their columns.

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    a_new_board_gets_the_default_workflow,
    board_keys_are_unique_and_bad_boards_name_the_field,
    members_read_and_find_boards_but_create_none,
    a_board_is_renamed_under_if_match_but_keeps_its_key,
    columns_are_added_at_a_position_and_unique_by_name,
    a_column_moves_and_changes_under_if_match,
    columns_are_deleted_by_admins_and_a_board_keeps_its_last,
);

fn names(columns: &Value) -> Vec<String> {
    columns
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn a_new_board_gets_the_default_workflow(app: TestApp) {
    let created = app
        .post(
            "/api/v1/boards",
            &app.admin_token,
            &json!({"key": "OPS", "name": "Operations"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.header("location").as_deref(),
        Some("/api/v1/boards/OPS")
    );
    let board = created.json();
    assert_eq!(
        names(&board["columns"]),
        ["Backlog", "Ready", "In progress", "Review", "Done"]
    );
    let limits: Vec<Value> = board["columns"]
        .as_array()
        .map(|a| a.iter().map(|c| c["wip_limit"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        limits,
        [Value::Null, Value::Null, json!(5), json!(3), Value::Null]
    );
    assert_eq!(board["columns"][2]["category"], "in_progress");
    assert_eq!(board["columns"][4]["category"], "done");
}

async fn board_keys_are_unique_and_bad_boards_name_the_field(app: TestApp) {
    app.board("OPS").name("Operations").create().await;
    app.post(
        "/api/v1/boards",
        &app.admin_token,
        &json!({"key": "OPS", "name": "Again"}),
    )
    .await
    .problem(409);
    app.post(
        "/api/v1/boards",
        &app.admin_token,
        &json!({"key": "ops-1", "name": "X"}),
    )
    .await
    .names_field(422, "key");
    app.post(
        "/api/v1/boards",
        &app.admin_token,
        &json!({"key": "DEM", "name": "D", "columns": []}),
    )
    .await
    .names_field(422, "columns");
    let custom = app
        .post("/api/v1/boards", &app.admin_token, &json!({"key": "DEM", "name": "Demands", "columns": [
            {"name": "Intake", "category": "todo"}, {"name": "Decided", "category": "done", "wip_limit": 0}]}))
        .await;
    custom.names_field(422, "columns[1].wip_limit");
}

async fn members_read_and_find_boards_but_create_none(app: TestApp) {
    app.board("OPS").name("Operations").create().await;
    let (_, member) = app.user("member").create().await;
    app.post(
        "/api/v1/boards",
        &member,
        &json!({"key": "MEM", "name": "Mine"}),
    )
    .await
    .problem(403);
    assert_eq!(
        app.get("/api/v1/boards/ops", &member).await.json()["key"],
        "OPS"
    );
    let list = app.get("/api/v1/boards?q=oper", &member).await.json();
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

async fn a_board_is_renamed_under_if_match_but_keeps_its_key(app: TestApp) {
    app.board("OPS").name("Operations").create().await;
    let renamed = app
        .request(Method::PATCH, "/api/v1/boards/OPS")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Betrieb"}))
        .send()
        .await;
    assert_eq!(renamed.json()["name"], "Betrieb");
    app.patch(
        "/api/v1/boards/OPS",
        &app.admin_token,
        &json!({"key": "NEW"}),
    )
    .await
    .names_field(422, "key");
}

async fn columns_are_added_at_a_position_and_unique_by_name(app: TestApp) {
    app.board("OPS").name("Operations").create().await;
    let added = app
        .post(
            "/api/v1/boards/OPS/columns",
            &app.admin_token,
            &json!({"name": "Waiting for reporter", "category": "in_progress", "position": 3}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    let columns = app
        .get("/api/v1/boards/OPS/columns", &app.admin_token)
        .await
        .json();
    assert_eq!(
        names(&columns),
        [
            "Backlog",
            "Ready",
            "In progress",
            "Waiting for reporter",
            "Review",
            "Done"
        ]
    );
    app.post(
        "/api/v1/boards/OPS/columns",
        &app.admin_token,
        &json!({"name": "done", "category": "done"}),
    )
    .await
    .problem(409);
}

async fn a_column_moves_and_changes_under_if_match(app: TestApp) {
    app.board("OPS").name("Operations").create().await;
    let waiting = app
        .column("OPS", "Waiting for reporter")
        .category("in_progress")
        .position(3)
        .create()
        .await;
    let path = format!("/api/v1/boards/OPS/columns/{}", waiting["id"]);
    let moved = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"position": 0, "wip_limit": 2, "name": "Waiting"}))
        .send()
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json()["position"], 0);
    assert_eq!(moved.json()["wip_limit"], 2);
    let columns = app
        .get("/api/v1/boards/OPS/columns", &app.admin_token)
        .await
        .json();
    assert_eq!(
        names(&columns),
        [
            "Waiting",
            "Backlog",
            "Ready",
            "In progress",
            "Review",
            "Done"
        ]
    );
    let positions: Vec<i64> = columns
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["position"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(positions, [0, 1, 2, 3, 4, 5]);
    app.request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .problem(412);
    let cleared = app
        .patch(&path, &app.admin_token, &json!({"wip_limit": null}))
        .await;
    assert!(cleared.json()["wip_limit"].is_null());
    app.patch(&path, &app.admin_token, &json!({"wip_limit": -1}))
        .await
        .names_field(422, "wip_limit");
    app.patch(
        "/api/v1/boards/OPS/columns/abc",
        &app.admin_token,
        &json!({}),
    )
    .await
    .names_field(400, "id");
    app.patch(
        "/api/v1/boards/OPS/columns/999999",
        &app.admin_token,
        &json!({}),
    )
    .await
    .problem(404);
}

async fn columns_are_deleted_by_admins_and_a_board_keeps_its_last(app: TestApp) {
    app.board("OPS").name("Operations").create().await;
    // A column in front of the others, so that deleting it renumbers them.
    let waiting = app
        .column("OPS", "Waiting")
        .category("in_progress")
        .position(0)
        .create()
        .await;
    let path = format!("/api/v1/boards/OPS/columns/{}", waiting["id"]);
    let (_, viewer) = app.user("viewer").create().await;
    app.delete(&path, &viewer).await.problem(403);
    assert_eq!(app.delete(&path, &app.admin_token).await.status, 204);
    let columns = app
        .get("/api/v1/boards/OPS/columns", &app.admin_token)
        .await
        .json();
    assert_eq!(
        names(&columns),
        ["Backlog", "Ready", "In progress", "Review", "Done"]
    );
    assert_eq!(columns[0]["position"], 0);
    // A board keeps its last column.
    let single = app
        .board("ONE")
        .name("One")
        .columns(json!([{"name": "Only", "category": "todo"}]))
        .create()
        .await;
    let only = format!("/api/v1/boards/ONE/columns/{}", single.column_id("Only"));
    app.delete(&only, &app.admin_token).await.problem(409);
}
