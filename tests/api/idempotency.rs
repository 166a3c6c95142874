//! `Idempotency-Key`: a retried POST or PATCH gets the first response again and writes
//! nothing; a key is one request's, per caller, for a day.

use actix_web::http::Method;
use diesel::prelude::*;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{Response, TestApp};

both_engines!(
    a_retried_item_creation_makes_one_item,
    comments_moves_demands_and_patches_replay_too,
    a_key_belongs_to_one_request_and_one_caller,
    answers_that_are_no_outcome_give_the_key_back,
    concurrent_requests_with_one_key_write_once,
    a_key_expires_after_a_day,
);

/// `method` on `path` as `token` with `body` and the key.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    key: &str,
    body: &Value,
) -> Response {
    app.request(method, path)
        .token(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
}

fn count(app: &TestApp, table: &str) -> i64 {
    use diesel::sql_types::BigInt;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<N>(&mut *app.conn())
        .map(|r| r.n)
        .expect("count")
}

fn events_of_kind(app: &TestApp, kind: &str) -> i64 {
    use opsboard::db::schema::events;
    events::table
        .filter(events::kind.eq(kind))
        .count()
        .get_result(&mut *app.conn())
        .expect("events")
}

fn assert_replayed(first: &Response, again: &Response) {
    assert_eq!(again.status, first.status, "{}", again.text);
    assert_eq!(again.text, first.text, "the same body");
    for header in ["etag", "location", "content-type"] {
        assert_eq!(again.header(header), first.header(header), "{header}");
    }
    assert_eq!(first.header("idempotency-replayed"), None);
    assert_eq!(
        again.header("idempotency-replayed").as_deref(),
        Some("true")
    );
}

async fn a_retried_item_creation_makes_one_item(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let body = json!({"board": "OPS", "type": "task", "title": "Genau einmal"});
    let key = "8e03978e-40d5-43e8-bc93-6894a57f9324";
    let first = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        key,
        &body,
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        key,
        &body,
    )
    .await;
    assert_replayed(&first, &again);
    // A structured-field string is the same key.
    let quoted = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        &format!("\"{key}\""),
        &body,
    )
    .await;
    assert_replayed(&first, &quoted);
    assert_eq!(count(&app, "items"), 1);
    assert_eq!(
        events_of_kind(&app, "created") - count(&app, "users") - count(&app, "boards"),
        1
    );
    // Without a key, the same body is a new item, as always.
    let fresh = app.post("/api/v1/items", &app.admin_token, &body).await;
    assert_eq!(fresh.json()["key"], "OPS-2");
    for bad in ["", "x".repeat(256).as_str(), "mit leerzeichen", "ümlaut"] {
        let refused = app
            .request(Method::POST, "/api/v1/items")
            .token(&app.admin_token)
            .header("Idempotency-Key", bad)
            .json(&body)
            .send()
            .await;
        if refused.status == 400 {
            refused.names_field(400, "Idempotency-Key");
        } else {
            panic!("`{bad}` was taken: {}", refused.text);
        }
    }
    assert_eq!(count(&app, "items"), 2);
}

async fn comments_moves_demands_and_patches_replay_too(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    let board = app.board("OPS").lead(&lead).create().await;
    app.board("DEM").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    app.item("OPS").task().create().await;
    let token = app.admin_token.clone();

    let comment = json!({"body": "Nur einmal"});
    let first = send(
        &app,
        Method::POST,
        "/api/v1/items/OPS-1/comments",
        &token,
        "c-1",
        &comment,
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = send(
        &app,
        Method::POST,
        "/api/v1/items/OPS-1/comments",
        &token,
        "c-1",
        &comment,
    )
    .await;
    assert_replayed(&first, &again);
    assert_eq!(count(&app, "item_comments"), 1);

    let to_ready = json!({"column": board.column_id("Ready")});
    let first = send(
        &app,
        Method::POST,
        "/api/v1/items/OPS-1/move",
        &token,
        "m-1",
        &to_ready,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    // Meanwhile someone moves it on; the retry must not move it back.
    let on = app
        .move_item(
            "OPS-1",
            &token,
            &json!({"column": board.column_id("Review")}),
        )
        .await;
    assert_eq!(on.status, 200);
    let again = send(
        &app,
        Method::POST,
        "/api/v1/items/OPS-1/move",
        &token,
        "m-1",
        &to_ready,
    )
    .await;
    assert_replayed(&first, &again);
    assert_eq!(events_of_kind(&app, "moved"), 2);
    let now = app.get("/api/v1/items/OPS-1", &token).await.json();
    assert_eq!(now["column"]["name"], "Review");

    let demand =
        json!({"title": "Ein Bedarf", "justification": "Gebraucht.", "service": "wohngeld"});
    let first = send(
        &app,
        Method::POST,
        "/api/v1/demands",
        &token,
        "d-1",
        &demand,
    )
    .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = send(
        &app,
        Method::POST,
        "/api/v1/demands",
        &token,
        "d-1",
        &demand,
    )
    .await;
    assert_replayed(&first, &again);
    use opsboard::db::schema::items;
    let demands: i64 = items::table
        .filter(items::item_type.eq("demand"))
        .count()
        .get_result(&mut *app.conn())
        .expect("demands");
    assert_eq!(demands, 1);

    let patch = json!({"title": "Neuer Titel"});
    let first = send(
        &app,
        Method::PATCH,
        "/api/v1/items/OPS-1",
        &token,
        "p-1",
        &patch,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let again = send(
        &app,
        Method::PATCH,
        "/api/v1/items/OPS-1",
        &token,
        "p-1",
        &patch,
    )
    .await;
    assert_replayed(&first, &again);
    // A failed validation is the request's outcome too: replayed as it was.
    let bad = json!({"board": "OPS", "type": "task", "title": ""});
    let first = send(&app, Method::POST, "/api/v1/items", &token, "v-1", &bad).await;
    assert_eq!(first.status, 422, "{}", first.text);
    let again = send(&app, Method::POST, "/api/v1/items", &token, "v-1", &bad).await;
    assert_replayed(&first, &again);
}

async fn a_key_belongs_to_one_request_and_one_caller(app: TestApp) {
    let (lead, lead_token) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let body = json!({"board": "OPS", "type": "task", "title": "Eins"});
    let first = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        "k",
        &body,
    )
    .await;
    assert_eq!(first.status, 201);
    let other_body = json!({"board": "OPS", "type": "task", "title": "Zwei"});
    let reused = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        "k",
        &other_body,
    )
    .await;
    let problem = reused.names_field(422, "Idempotency-Key");
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("idempotency-key-reused")
    );
    let elsewhere = send(
        &app,
        Method::POST,
        "/api/v1/items/OPS-1/comments",
        &app.admin_token,
        "k",
        &json!({"body": "x"}),
    )
    .await;
    elsewhere.problem(422);
    assert_eq!(count(&app, "items"), 1);
    assert_eq!(count(&app, "item_comments"), 0);
    // Another caller's key is another key; a new login of the same person is the same caller.
    let theirs = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &lead_token,
        "k",
        &other_body,
    )
    .await;
    assert_eq!(theirs.status, 201, "{}", theirs.text);
    assert_eq!(theirs.header("idempotency-replayed"), None);
    let relogged = app
        .login(crate::helpers::ADMIN_EMAIL, crate::helpers::ADMIN_PASSWORD)
        .await;
    let again = send(&app, Method::POST, "/api/v1/items", &relogged, "k", &body).await;
    assert_replayed(&first, &again);
    assert_eq!(count(&app, "items"), 2);
}

async fn answers_that_are_no_outcome_give_the_key_back(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let (member, member_token) = app.user("member").create().await;
    let body = json!({"board": "OPS", "type": "task", "title": "Nach der Sperre"});
    // The member's token is valid, the account is not: a 401 is no outcome of the request.
    let deactivated = app
        .post(
            &format!("/api/v1/users/{}/deactivate", member["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    let refused = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &member_token,
        "r-1",
        &body,
    )
    .await;
    refused.problem(401);
    assert_eq!(count(&app, "idempotency_keys"), 0, "the key was given back");
    let reactivated = app
        .post(
            &format!("/api/v1/users/{}/reactivate", member["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(reactivated.status, 200);
    let token = app
        .login(
            member["email"].as_str().unwrap_or_default(),
            crate::helpers::USER_PASSWORD,
        )
        .await;
    let ran = send(&app, Method::POST, "/api/v1/items", &token, "r-1", &body).await;
    assert_eq!(ran.status, 201, "{}", ran.text);
    assert_eq!(ran.header("idempotency-replayed"), None);
    // Requests without credentials pass untouched to their 401.
    let stranger = app
        .request(Method::POST, "/api/v1/items")
        .header("Idempotency-Key", "s-1")
        .json(&body)
        .send()
        .await;
    stranger.problem(401);
    assert_eq!(count(&app, "idempotency_keys"), 1);
}

async fn concurrent_requests_with_one_key_write_once(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let body = json!({"board": "OPS", "type": "task", "title": "Achtmal gesendet"});
    let answers = join_all((0..8).map(|_| {
        let (app, body) = (&app, body.clone());
        async move {
            send(
                app,
                Method::POST,
                "/api/v1/items",
                &app.admin_token,
                "same",
                &body,
            )
            .await
        }
    }))
    .await;
    let created: Vec<&Response> = answers
        .iter()
        .filter(|r| r.status == 201 && r.header("idempotency-replayed").is_none())
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    for answer in &answers {
        match answer.status {
            201 => assert_eq!(answer.text, created[0].text),
            409 => {
                let problem = answer.problem(409);
                assert!(
                    problem["type"]
                        .as_str()
                        .unwrap_or_default()
                        .ends_with("idempotency-key-in-use")
                );
                assert_eq!(answer.header("retry-after").as_deref(), Some("1"));
            }
            other => panic!("unexpected {other}: {}", answer.text),
        }
    }
    assert_eq!(count(&app, "items"), 1);
}

async fn a_key_expires_after_a_day(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let body = json!({"board": "OPS", "type": "task", "title": "Gestern"});
    assert_eq!(
        send(
            &app,
            Method::POST,
            "/api/v1/items",
            &app.admin_token,
            "old",
            &body
        )
        .await
        .status,
        201
    );
    let fresh = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        "new",
        &body,
    )
    .await;
    assert_eq!(fresh.status, 201);
    use opsboard::db::schema::idempotency_keys;
    let yesterday = chrono::Utc::now().naive_utc() - chrono::Duration::hours(25);
    diesel::update(idempotency_keys::table.filter(idempotency_keys::idempotency_key.eq("old")))
        .set((
            idempotency_keys::created_at.eq(yesterday),
            idempotency_keys::expires_at.eq(yesterday + chrono::Duration::hours(24)),
        ))
        .execute(&mut *app.conn())
        .expect("age the key");
    let cleaned = opsboard::common::idempotency::clean_up(&mut app.conn()).expect("clean up");
    assert_eq!(cleaned, 1);
    assert_eq!(
        count(&app, "idempotency_keys"),
        1,
        "the day-old key is gone, the new one kept"
    );
    let again = send(
        &app,
        Method::POST,
        "/api/v1/items",
        &app.admin_token,
        "old",
        &body,
    )
    .await;
    assert_eq!(again.status, 201);
    assert_eq!(
        again.header("idempotency-replayed"),
        None,
        "an expired key is new again"
    );
    assert_eq!(count(&app, "items"), 3);
}
