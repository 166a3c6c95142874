//! Every error the server gives is a problem document with the right status.

use actix_web::http::Method;
use serde_json::json;

use crate::both_engines;
use crate::helpers::{Engine, TestApp};

both_engines!(
    malformed_json_is_400,
    wrong_field_type_is_422_naming_the_field,
    unknown_field_is_422_naming_it,
    missing_field_is_422_naming_it,
    wrong_content_type_is_415,
    unknown_route_is_404,
    wrong_method_is_405_with_allow,
    missing_token_is_401_with_www_authenticate,
    viewer_is_forbidden_to_write,
    unknown_user_is_404,
    duplicate_email_is_409_and_changes_nothing,
    stale_if_match_is_412_with_current_version,
    bad_path_and_query_parameters_are_400_naming_them,
    nul_bytes_are_refused_before_storage,
    a_check_constraint_the_validation_misses_is_422_without_names,
);

async fn malformed_json_is_400(app: TestApp) {
    let response = app
        .request(Method::POST, "/api/v1/users")
        .token(&app.admin_token)
        .raw("application/json", b"{\"email\": ".to_vec())
        .send()
        .await;
    let problem = response.problem(400);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("not valid JSON"),
        "{problem}"
    );
}

async fn wrong_field_type_is_422_naming_the_field(app: TestApp) {
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "a@example.org", "display_name": 42, "role": "member", "password": "long-enough-pass"}),
        )
        .await;
    response.names_field(422, "display_name");
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "a@example.org", "display_name": "A", "role": "boss", "password": "long-enough-pass"}),
        )
        .await;
    response.names_field(422, "role");
}

async fn unknown_field_is_422_naming_it(app: TestApp) {
    let me = app.get("/api/v1/me", &app.admin_token).await.json();
    let path = format!("/api/v1/users/{}", me["id"]);
    let response = app
        .patch(&path, &app.admin_token, &json!({"version": 9}))
        .await;
    response.names_field(422, "version");
    let after = app.get(&path, &app.admin_token).await.json();
    assert_eq!(
        after["version"], me["version"],
        "a refused request changes nothing"
    );
}

async fn missing_field_is_422_naming_it(app: TestApp) {
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "b@example.org", "role": "member", "password": "long-enough-pass"}),
        )
        .await;
    response.names_field(422, "display_name");
}

async fn wrong_content_type_is_415(app: TestApp) {
    let response = app
        .request(Method::POST, "/api/v1/users")
        .token(&app.admin_token)
        .raw("text/plain", b"hello".to_vec())
        .send()
        .await;
    response.problem(415);
}

async fn unknown_route_is_404(app: TestApp) {
    app.get("/api/v1/no-such-thing", &app.admin_token)
        .await
        .problem(404);
    app.get("/nothing/here", "").await.problem(404);
}

async fn wrong_method_is_405_with_allow(app: TestApp) {
    let response = app.delete("/api/v1/users", &app.admin_token).await;
    response.problem(405);
    assert_eq!(response.header("allow").as_deref(), Some("GET, HEAD, POST"));
    let response = app.request(Method::PUT, "/api/v1/users/1").send().await;
    response.problem(405);
    assert_eq!(
        response.header("allow").as_deref(),
        Some("GET, HEAD, PATCH")
    );
}

async fn missing_token_is_401_with_www_authenticate(app: TestApp) {
    let response = app.request(Method::GET, "/api/v1/me").send().await;
    response.problem(401);
    let challenge = response.header("www-authenticate").unwrap_or_default();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let response = app
        .request(Method::GET, "/api/v1/users")
        .header("Authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await;
    response.problem(401);
    let response = app.get("/api/v1/users", "not-a-jwt").await;
    response.problem(401);
    assert!(response.header("www-authenticate").is_some());
}

async fn viewer_is_forbidden_to_write(app: TestApp) {
    let (viewer, token) = app.user("viewer").create().await;
    // A viewer may read…
    assert_eq!(app.get("/api/v1/users", &token).await.status, 200);
    // …but not create…
    let response = app
        .post("/api/v1/users", &token, &json!({"email": "x@example.org", "display_name": "X", "role": "admin", "password": "long-enough-pass"}))
        .await;
    response.problem(403);
    // …nor change others, nor promote themself, nor deactivate anyone.
    let admin = app.get("/api/v1/me", &app.admin_token).await.json();
    app.patch(
        &format!("/api/v1/users/{}", admin["id"]),
        &token,
        &json!({"display_name": "pwned"}),
    )
    .await
    .problem(403);
    app.patch(
        &format!("/api/v1/users/{}", viewer["id"]),
        &token,
        &json!({"role": "admin"}),
    )
    .await
    .problem(403);
    app.post(
        &format!("/api/v1/users/{}/deactivate", admin["id"]),
        &token,
        &json!({}),
    )
    .await
    .problem(403);
    let users = app
        .get("/api/v1/users?limit=500", &app.admin_token)
        .await
        .json();
    assert_eq!(
        users["items"].as_array().map(Vec::len),
        Some(2),
        "nothing was created"
    );
    assert_eq!(app.get("/api/v1/me", &token).await.json()["role"], "viewer");
}

async fn unknown_user_is_404(app: TestApp) {
    app.get("/api/v1/users/999999", &app.admin_token)
        .await
        .problem(404);
    app.patch(
        "/api/v1/users/999999",
        &app.admin_token,
        &json!({"display_name": "Y"}),
    )
    .await
    .problem(404);
}

async fn duplicate_email_is_409_and_changes_nothing(app: TestApp) {
    let body = json!({"email": "Dup@Example.org", "display_name": "D", "role": "member", "password": "long-enough-pass"});
    assert_eq!(
        app.post("/api/v1/users", &app.admin_token, &body)
            .await
            .status,
        201
    );
    let mut again = body.clone();
    again["email"] = json!("dup@example.ORG");
    app.post("/api/v1/users", &app.admin_token, &again)
        .await
        .problem(409);
    let found = app
        .get("/api/v1/users?q=dup@", &app.admin_token)
        .await
        .json();
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1));
}

async fn stale_if_match_is_412_with_current_version(app: TestApp) {
    let (user, _) = app.user("member").create().await;
    let path = format!("/api/v1/users/{}", user["id"]);
    let first = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"display_name": "First"}))
        .send()
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.header("etag").as_deref(), Some("\"2\""));
    let stale = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"display_name": "Second"}))
        .send()
        .await;
    let problem = stale.problem(412);
    assert_eq!(problem["current_version"], 2);
    assert_eq!(
        app.get(&path, &app.admin_token).await.json()["display_name"],
        "First"
    );
}

async fn bad_path_and_query_parameters_are_400_naming_them(app: TestApp) {
    app.get("/api/v1/users/abc", &app.admin_token)
        .await
        .names_field(400, "id");
    app.get("/api/v1/users?limit=0", &app.admin_token)
        .await
        .names_field(400, "limit");
    app.get("/api/v1/users?limit=many", &app.admin_token)
        .await
        .names_field(400, "limit");
    app.get("/api/v1/users?cursor=%%%", &app.admin_token)
        .await
        .problem(400);
    app.get("/api/v1/users?cursor=bm9wZQ", &app.admin_token)
        .await
        .names_field(400, "cursor");
    app.get("/api/v1/users?updated_since=yesterday", &app.admin_token)
        .await
        .names_field(400, "updated_since");
    app.get("/api/v1/users?role=boss", &app.admin_token)
        .await
        .names_field(400, "role");
    let response = app
        .request(Method::PATCH, "/api/v1/users/1")
        .token(&app.admin_token)
        .header("If-Match", "nonsense")
        .json(&json!({}))
        .send()
        .await;
    response.names_field(400, "If-Match");
    // An entity tag is quoted, and a version fits in 64 bits.
    for bad in ["1", "\"99999999999999999999\""] {
        let response = app
            .request(Method::PATCH, "/api/v1/users/1")
            .token(&app.admin_token)
            .header("If-Match", bad)
            .json(&json!({}))
            .send()
            .await;
        response.names_field(400, "If-Match");
    }
}

async fn nul_bytes_are_refused_before_storage(app: TestApp) {
    let response = app
        .post("/api/v1/users", &app.admin_token, &json!({"email": "nul@example.org", "display_name": "a\u{0000}b", "role": "member", "password": "long-enough-pass"}))
        .await;
    response.names_field(422, "display_name");
    app.get("/api/v1/users?q=a%00b", &app.admin_token)
        .await
        .names_field(400, "q");
}

#[actix_web::test]
async fn body_over_the_limit_is_413() {
    let Some(app) = TestApp::spawn_with(Engine::Sqlite, |s| s.server.body_limit = 512).await else {
        return;
    };
    let big = json!({"email": "big@example.org", "display_name": "x".repeat(2000), "role": "member", "password": "long-enough-pass"});
    let response = app.post("/api/v1/users", &app.admin_token, &big).await;
    let problem = response.problem(413);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("512"),
        "{problem}"
    );
}

/// A rule that only the database keeps (planted here: no column may have a WIP limit of 100 or
/// more, a CHECK constraint on PostgreSQL, a trigger raising SQLite's CHECK error) is a 422
/// that names no constraint and shows no SQL, never a 500; nothing is changed.
async fn a_check_constraint_the_validation_misses_is_422_without_names(app: TestApp) {
    use diesel::connection::SimpleConnection;
    let board = app.board("CHK").create().await;
    let column = board.column_id("Backlog");
    {
        let mut conn = app.conn();
        let plant = match &*conn {
            opsboard::db::DbConnection::Postgresql(_) => {
                "ALTER TABLE board_columns ADD CONSTRAINT planted_wip_small \
                 CHECK (wip_limit IS NULL OR wip_limit < 100)"
            }
            opsboard::db::DbConnection::Sqlite(_) => {
                "CREATE TRIGGER planted_wip_small BEFORE UPDATE ON board_columns \
                 WHEN NEW.wip_limit >= 100 \
                 BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: planted_wip_small'); END"
            }
        };
        conn.batch_execute(plant).expect("planted the rule");
    }
    let path = format!("/api/v1/boards/CHK/columns/{column}");
    let response = app
        .patch(&path, &app.admin_token, &json!({"wip_limit": 500}))
        .await;
    let problem = response.problem(422);
    for leak in ["planted", "CHECK", "check", "wip_limit <", "board_columns"] {
        assert!(!response.text.contains(leak), "leaks `{leak}`: {problem}");
    }
    let columns = app
        .get("/api/v1/boards/CHK/columns", &app.admin_token)
        .await
        .json();
    let backlog = columns
        .as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == column))
        .cloned()
        .unwrap_or_default();
    assert_eq!(backlog["wip_limit"], json!(null), "{columns}");
}
