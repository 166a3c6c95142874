//! Users: create, read, list with cursor pagination and filters, change, deactivate.

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{TestApp, USER_PASSWORD};

both_engines!(
    admin_creates_a_user_who_can_log_in,
    list_pages_with_cursor_and_link_header,
    list_filters_by_role_active_text_and_updated_since,
    users_change_their_own_name_and_password,
    the_last_active_admin_cannot_be_removed,
    concurrent_edits_with_the_same_if_match_lose_nothing,
    a_requester_sees_only_themself,
    validation_names_every_bad_field,
);

async fn admin_creates_a_user_who_can_log_in(app: TestApp) {
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "  Erika.Muster@Example.org ", "display_name": " Erika Muster ", "role": "member", "password": "a-long-password"}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    let user = response.json();
    assert_eq!(user["email"], "erika.muster@example.org");
    assert_eq!(user["display_name"], "Erika Muster");
    assert_eq!(user["role"], "member");
    assert_eq!(user["active"], true);
    assert_eq!(user["version"], 1);
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    assert!(
        user["created_at"].as_str().unwrap_or("").ends_with('Z'),
        "{user}"
    );
    let location = response.header("location").unwrap_or_default();
    assert_eq!(location, format!("/api/v1/users/{}", user["id"]));
    assert_eq!(response.header("etag").as_deref(), Some("\"1\""));
    let fetched = app.get(&location, &app.admin_token).await;
    assert_eq!(fetched.json(), user);
    let token = app
        .login("ERIKA.MUSTER@example.org", "a-long-password")
        .await;
    assert_eq!(app.get("/api/v1/me", &token).await.json()["id"], user["id"]);
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["id"].as_i64()).collect())
        .unwrap_or_default()
}

async fn list_pages_with_cursor_and_link_header(app: TestApp) {
    for _ in 0..4 {
        app.user("viewer").create().await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/users?limit=2&role=viewer".to_string();
    let mut pages = 0;
    loop {
        let response = app.get(&path, &app.admin_token).await;
        assert_eq!(response.status, 200, "{}", response.text);
        let page = response.json();
        seen.extend(ids(&page));
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let link = response
                    .header("link")
                    .expect("Link header with a next page");
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                assert!(
                    link.contains("role=viewer") && link.contains("limit=2"),
                    "filters are kept: {link}"
                );
                assert!(link.contains(cursor), "{link}");
                path = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap_or_default()
                    .to_string();
            }
            None => {
                assert!(response.header("link").is_none());
                break;
            }
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(seen.len(), 4);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "ids ascend without repeats");
    let default_page = app
        .get("/api/v1/users?cursor=&q=", &app.admin_token)
        .await
        .json();
    assert_eq!(ids(&default_page).len(), 5);
    assert!(default_page["next_cursor"].is_null());
}

async fn list_filters_by_role_active_text_and_updated_since(app: TestApp) {
    let (manager, _) = app.user("manager").create().await;
    let (viewer, _) = app.user("viewer").create().await;
    app.post(
        &format!("/api/v1/users/{}/deactivate", viewer["id"]),
        &app.admin_token,
        &json!({}),
    )
    .await;
    let app = &app;
    let get = |q: &str| {
        let path = format!("/api/v1/users?{q}");
        async move { ids(&app.get(&path, &app.admin_token).await.json()) }
    };
    assert_eq!(
        get("role=manager").await,
        vec![manager["id"].as_i64().unwrap_or(0)]
    );
    assert_eq!(
        get("active=false").await,
        vec![viewer["id"].as_i64().unwrap_or(0)]
    );
    assert_eq!(get("active=true").await.len(), 2);
    // Case-insensitive search over name and e-mail; LIKE wildcards are taken literally.
    let by_name = get(&format!(
        "q={}",
        manager["display_name"]
            .as_str()
            .unwrap_or("")
            .to_uppercase()
            .replace(' ', "%20")
    ))
    .await;
    assert_eq!(by_name, vec![manager["id"].as_i64().unwrap_or(0)]);
    assert_eq!(get("q=%25").await, Vec::<i64>::new());
    assert_eq!(get("q=_").await, Vec::<i64>::new());
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        get(&format!("updated_since={future}")).await,
        Vec::<i64>::new()
    );
    let past = "2000-01-01T00:00:00Z";
    assert_eq!(get(&format!("updated_since={past}")).await.len(), 3);
}

async fn users_change_their_own_name_and_password(app: TestApp) {
    let (member, token) = app.user("member").create().await;
    let path = format!("/api/v1/users/{}", member["id"]);
    let renamed = app
        .patch(&path, &token, &json!({"display_name": "Renamed Person"}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.json()["display_name"], "Renamed Person");
    assert_eq!(renamed.json()["version"], 2);
    // Without the present password a new one is refused, naming the field.
    app.patch(&path, &token, &json!({"password": "brand-new-password"}))
        .await
        .names_field(422, "current_password");
    app.patch(
        &path,
        &token,
        &json!({"password": "short", "current_password": USER_PASSWORD}),
    )
    .await
    .names_field(422, "password");
    let changed = app
        .patch(
            &path,
            &token,
            &json!({"password": "brand-new-password", "current_password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let email = member["email"].as_str().unwrap_or_default();
    // The new password ends the session the change was made in; the new one logs in.
    app.get("/api/v1/me", &token).await.problem(401);
    let token = app.login(email, "brand-new-password").await;
    let old = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": email, "password": USER_PASSWORD}))
        .send()
        .await;
    old.problem(401);
    // Not their role, not their e-mail.
    app.patch(&path, &token, &json!({"role": "admin"}))
        .await
        .problem(403);
    app.patch(&path, &token, &json!({"email": "me@elsewhere.org"}))
        .await
        .problem(403);
    // An admin may change both.
    let promoted = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"role": "manager", "email": "Me@Elsewhere.org"}),
        )
        .await;
    assert_eq!(promoted.json()["role"], "manager");
    assert_eq!(promoted.json()["email"], "me@elsewhere.org");
}

async fn the_last_active_admin_cannot_be_removed(app: TestApp) {
    let me = app.get("/api/v1/me", &app.admin_token).await.json();
    let path = format!("/api/v1/users/{}", me["id"]);
    app.post(&format!("{path}/deactivate"), &app.admin_token, &json!({}))
        .await
        .problem(409);
    app.patch(&path, &app.admin_token, &json!({"role": "member"}))
        .await
        .problem(409);
    // With a second admin, the first may step down.
    let (second, second_token) = app.user("admin").create().await;
    assert_eq!(
        app.patch(&path, &app.admin_token, &json!({"role": "member"}))
            .await
            .status,
        200
    );
    app.post(
        &format!("/api/v1/users/{}/deactivate", second["id"]),
        &second_token,
        &json!({}),
    )
    .await
    .problem(409);
}

async fn concurrent_edits_with_the_same_if_match_lose_nothing(app: TestApp) {
    let (user, _) = app.user("member").create().await;
    let path = format!("/api/v1/users/{}", user["id"]);
    let edit = |name: &'static str| {
        app.request(Method::PATCH, &path)
            .token(&app.admin_token)
            .header("If-Match", "\"1\"")
            .json(&json!({"display_name": name}))
            .send()
    };
    let (a, b) = futures_util::join!(edit("Alpha"), edit("Beta"));
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(
        statuses,
        [200, 412],
        "one wins, one is told: {} / {}",
        a.text,
        b.text
    );
    let winner = if a.status == 200 { "Alpha" } else { "Beta" };
    let stored = app.get(&path, &app.admin_token).await.json();
    assert_eq!(stored["display_name"], winner);
    assert_eq!(stored["version"], 2);
}

async fn a_requester_sees_only_themself(app: TestApp) {
    let (requester, token) = app.user("requester").create().await;
    assert_eq!(
        app.get(&format!("/api/v1/users/{}", requester["id"]), &token)
            .await
            .status,
        200
    );
    app.get("/api/v1/users", &token).await.problem(403);
    let admin = app.get("/api/v1/me", &app.admin_token).await.json();
    app.get(&format!("/api/v1/users/{}", admin["id"]), &token)
        .await
        .problem(403);
}

async fn validation_names_every_bad_field(app: TestApp) {
    let response = app
        .post("/api/v1/users", &app.admin_token, &json!({"email": "not-an-email", "display_name": "  ", "role": "member", "password": "short"}))
        .await;
    let problem = response.problem(422);
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    fields.sort();
    assert_eq!(fields, ["display_name", "email", "password"]);
    let all = app.get("/api/v1/users", &app.admin_token).await.json();
    assert_eq!(ids(&all).len(), 1, "nothing was stored");
}
