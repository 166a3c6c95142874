//! API tokens: made once with a secret shown once, stored as a hash, narrowed by scopes,
//! revoked at once, dead when expired or when their user is deactivated; the origin of every
//! write through them is recorded.

use actix_web::http::Method;
use diesel::prelude::*;
use futures_util::future::join_all;
use opsboard::db::schema::api_tokens;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(the_last_use_is_noted_at_most_once_a_minute => super::uncached);

both_engines!(a_cached_caller_is_forgotten_at_each_revocation => super::cached);

/// The cache of callers on, for a minute: long enough that only a revocation can end an entry.
fn cached(settings: &mut opsboard::config::Settings) {
    settings.auth.principal_cache_ms = 60_000;
}

async fn a_cached_caller_is_forgotten_at_each_revocation(app: TestApp) {
    use opsboard::web::principal_cache::CredentialKey;
    let (member, member_jwt) = app.user("member").create().await;
    let (secret, token) =
        make_token(&app, &member_jwt, json!({"name": "a", "scopes": ["read"]})).await;
    let (other_secret, _) =
        make_token(&app, &member_jwt, json!({"name": "b", "scopes": ["read"]})).await;
    // The cache is on: the callers are kept (from the second request on, once the commit
    // watch, idle at the start, is live).
    let kept = |secret: &str| {
        app.state
            .principals
            .get(&CredentialKey::Token(opsboard::common::token::hash(secret)))
            .is_some()
    };
    for _ in 0..50 {
        for bearer in [&secret, &other_secret, &member_jwt] {
            assert_eq!(app.get("/api/v1/me", bearer).await.status, 200);
        }
        if kept(&secret) && kept(&other_secret) {
            break;
        }
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(kept(&secret) && kept(&other_secret), "the callers are kept");
    // A revocation through the app ends it at once, and every other entry with it.
    let revoked = app
        .delete(&format!("/api/v1/tokens/{}", token["id"]), &member_jwt)
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    assert!(!kept(&other_secret));
    app.get("/api/v1/me", &secret).await.problem(401);
    assert_eq!(app.get("/api/v1/me", &other_secret).await.status, 200);
    // So does a role change: the login issued before it is refused at once.
    let path = format!("/api/v1/users/{}", member["id"]);
    let changed = app
        .patch(&path, &app.admin_token, &json!({"role": "requester"}))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    app.get("/api/v1/me", &member_jwt).await.problem(401);
}

/// This test changes a token's row behind the app's back, which the cache of callers cannot
/// see on PostgreSQL (it forgets on commits that record history): read the caller on every
/// request.
fn uncached(settings: &mut opsboard::config::Settings) {
    settings.auth.principal_cache_ms = 0;
}

both_engines!(
    a_token_acts_as_its_user_and_its_secret_is_only_a_hash,
    scopes_narrow_a_token_and_the_403_names_the_missing_one,
    revoked_expired_and_deactivated_tokens_are_401,
    only_admins_touch_other_peoples_tokens,
    writes_record_their_origin_from_the_token_or_the_header,
    bad_token_requests_are_refused_and_change_nothing,
    concurrent_revocations_record_one_event,
    tokens_made_during_a_deactivation_do_not_outlive_it,
    a_token_makes_no_token_that_outlives_it,
    the_spec_names_the_scope_each_operation_needs,
    a_revoked_credential_gets_no_replay_of_an_idempotent_request,
);

/// Makes a token with `body` as `token` (a bearer): its secret and the token.
async fn make_token(app: &TestApp, token: &str, body: Value) -> (String, Value) {
    let created = app.post("/api/v1/tokens", token, &body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let location = created.header("location").expect("Location");
    assert_eq!(created.header("etag"), None, "a token has no version");
    let created = created.json();
    assert_eq!(
        location,
        format!("/api/v1/tokens/{}", created["token"]["id"])
    );
    (
        created["secret"].as_str().unwrap_or_default().to_string(),
        created["token"].clone(),
    )
}

async fn a_token_acts_as_its_user_and_its_secret_is_only_a_hash(app: TestApp) {
    let (member, member_jwt) = app.user("member").create().await;
    let (secret, token) = make_token(
        &app,
        &member_jwt,
        json!({"name": "Mein Skript", "scopes": ["read", "write"]}),
    )
    .await;
    assert!(secret.starts_with("opb_") && secret.len() == 42, "{secret}");
    assert_eq!(token["user_id"], member["id"]);
    assert_eq!(token["scopes"], json!(["read", "write"]));
    assert_eq!(token["active"], true);
    assert!(secret.starts_with(token["prefix"].as_str().unwrap_or("x")));
    // 90 days unless told otherwise.
    let expires: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(token["expires_at"].clone()).expect("a time");
    let days = (expires - chrono::Utc::now()).num_days();
    assert!((89..=90).contains(&days), "{days}");

    // It acts as the member.
    let me = app.get("/api/v1/me", &secret).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["id"], member["id"]);
    // Lists never show the secret, and show when it was used.
    let listed = app.get("/api/v1/tokens", &member_jwt).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains(&secret));
    let listed = listed.json();
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    assert!(listed["items"][0]["last_used_at"].is_string(), "{listed}");
    let single = app
        .get(&format!("/api/v1/tokens/{}", token["id"]), &member_jwt)
        .await;
    assert_eq!(single.status, 200);
    assert!(single.json().get("secret").is_none());

    // Storage holds its SHA-256, never the secret.
    use opsboard::db::schema::api_tokens;
    let stored: Vec<(String, String)> = api_tokens::table
        .select((api_tokens::secret_hash, api_tokens::prefix))
        .load(&mut *app.conn())
        .expect("tokens");
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].0, secret);
    assert_eq!(stored[0].0, opsboard::common::token::hash(&secret));
    assert!(stored[0].0.len() == 64 && !stored[0].0.contains("opb_"));
    // The user's history records it, without the secret.
    let history = app
        .get(
            &format!("/api/v1/users/{}/history", member["id"]),
            &app.admin_token,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    assert!(!history.text.contains(&secret));
    let kinds: Vec<String> = history.json()["items"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(kinds.contains(&"token_created".to_string()), "{kinds:?}");
}

async fn scopes_narrow_a_token_and_the_403_names_the_missing_one(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let (read, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "lesen", "scopes": ["read"]}),
    )
    .await;
    // A read token of an admin reads everything and writes nothing.
    assert_eq!(app.get("/api/v1/items", &read).await.status, 200);
    let refused = app
        .post(
            "/api/v1/items",
            &read,
            &json!({"board": "OPS", "type": "task", "title": "Nein"}),
        )
        .await;
    let problem = refused.problem(403);
    assert_eq!(problem["required_scope"], "write");
    assert_eq!(
        refused.header("www-authenticate").as_deref(),
        Some(r#"Bearer realm="opsboard", error="insufficient_scope", scope="write""#),
        "RFC 6750: the scope the token would need"
    );
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("insufficient-scope")
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("`write`")
    );
    let items: i64 = {
        use opsboard::db::schema::items;
        items::table
            .count()
            .get_result(&mut *app.conn())
            .expect("count")
    };
    assert_eq!(items, 0, "the refused write changed nothing");

    // write does not cover imports or user administration.
    let (write, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "schreiben", "scopes": ["read", "write"]}),
    )
    .await;
    let created = app
        .post(
            "/api/v1/items",
            &write,
            &json!({"board": "OPS", "type": "task", "title": "Ja"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let import = app
        .request(Method::POST, "/api/v1/services/import")
        .token(&write)
        .raw("text/csv", b"key;name;kind\nx;X;own\n".to_vec())
        .send()
        .await;
    assert_eq!(import.problem(403)["required_scope"], "import");
    let user = app
        .post(
            "/api/v1/users",
            &write,
            &json!({"email": "neu@example.org", "display_name": "Neu", "role": "member", "password": "a long password 123"}),
        )
        .await;
    assert_eq!(user.problem(403)["required_scope"], "admin");
    // A token cannot widen itself: it makes tokens only with scopes it holds.
    let wider = app
        .post(
            "/api/v1/tokens",
            &write,
            &json!({"name": "mehr", "scopes": ["admin"]}),
        )
        .await;
    wider.names_field(422, "scopes[0]");
    let (import_token, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "import", "scopes": ["import"]}),
    )
    .await;
    let imported = app
        .request(Method::POST, "/api/v1/services/import")
        .token(&import_token)
        .raw(
            "text/csv",
            b"key;name;kind\nneu-dienst;Neuer Dienst;own\n".to_vec(),
        )
        .send()
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    // The role still bounds a token: a viewer's write token writes nothing.
    let (_, viewer_jwt) = app.user("viewer").create().await;
    let (viewer_write, _) = make_token(
        &app,
        &viewer_jwt,
        json!({"name": "zuschauen", "scopes": ["read", "write"]}),
    )
    .await;
    let refused = app
        .post(
            "/api/v1/items",
            &viewer_write,
            &json!({"board": "OPS", "type": "task", "title": "Nein"}),
        )
        .await;
    refused.problem(403);
}

async fn revoked_expired_and_deactivated_tokens_are_401(app: TestApp) {
    let (member, member_jwt) = app.user("member").create().await;
    let (secret, token) =
        make_token(&app, &member_jwt, json!({"name": "a", "scopes": ["read"]})).await;
    assert_eq!(app.get("/api/v1/me", &secret).await.status, 200);
    let revoked = app
        .delete(&format!("/api/v1/tokens/{}", token["id"]), &member_jwt)
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let refused = app.get("/api/v1/me", &secret).await;
    assert!(
        refused.problem(401)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("revoked")
    );
    let again = app
        .delete(&format!("/api/v1/tokens/{}", token["id"]), &member_jwt)
        .await;
    assert_eq!(again.status, 204, "revoking twice is fine");
    let listed = app.get("/api/v1/tokens", &member_jwt).await.json();
    assert_eq!(listed["items"], json!([]), "only working tokens by default");
    let all = app
        .get("/api/v1/tokens?include_inactive=true", &member_jwt)
        .await
        .json();
    assert!(all["items"][0]["revoked_at"].is_string(), "{all}");

    // Expired.
    let (secret, token) =
        make_token(&app, &member_jwt, json!({"name": "b", "scopes": ["read"]})).await;
    {
        use opsboard::db::schema::api_tokens;
        diesel::update(api_tokens::table.find(token["id"].as_i64().unwrap_or(0)))
            .set(
                api_tokens::expires_at
                    .eq(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1)),
            )
            .execute(&mut *app.conn())
            .expect("expire");
    }
    let expired = app.get("/api/v1/me", &secret).await;
    assert!(
        expired.problem(401)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("expired")
    );
    // Unknown, and malformed.
    let (unknown, _, _) = opsboard::common::token::generate();
    app.get("/api/v1/me", &unknown).await.problem(401);
    app.get("/api/v1/me", "opb_nonsense").await.problem(401);

    // Deactivating the user stops (and revokes) their tokens.
    let (secret, _) = make_token(&app, &member_jwt, json!({"name": "c", "scopes": ["read"]})).await;
    assert_eq!(app.get("/api/v1/me", &secret).await.status, 200);
    let deactivated = app
        .post(
            &format!("/api/v1/users/{}/deactivate", member["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    app.get("/api/v1/me", &secret).await.problem(401);
    let reactivated = app
        .post(
            &format!("/api/v1/users/{}/reactivate", member["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.text);
    app.get("/api/v1/me", &secret).await.problem(401);
    let history = app
        .get(
            &format!("/api/v1/users/{}/history?limit=100", member["id"]),
            &app.admin_token,
        )
        .await
        .json();
    let reasons: Vec<&str> = history["items"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter(|e| e["kind"] == "token_revoked")
                .filter_map(|e| e["data"]["reason"].as_str())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(reasons, ["revoked", "user deactivated"], "{history}");
}

async fn only_admins_touch_other_peoples_tokens(app: TestApp) {
    let (sync_user, _) = app.user("member").create().await;
    let (_, other_jwt) = app.user("member").create().await;
    // An admin makes the sync user's token, naming the user by e-mail.
    let (secret, token) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "JIRA-Brücke", "scopes": ["read", "write"], "origin": "jira-sync",
               "user": sync_user["email"], "expires_at": (chrono::Utc::now() + chrono::Duration::days(300)).to_rfc3339()}),
    )
    .await;
    assert_eq!(token["user_id"], sync_user["id"]);
    assert_eq!(token["created_by"], 1);
    assert_eq!(
        app.get("/api/v1/me", &secret).await.json()["id"],
        sync_user["id"]
    );
    let path = format!("/api/v1/tokens/{}", token["id"]);
    // Another member sees none of it and cannot revoke it.
    app.get(&path, &other_jwt).await.problem(404);
    app.delete(&path, &other_jwt).await.problem(404);
    assert_eq!(
        app.get("/api/v1/tokens", &other_jwt).await.json()["items"],
        json!([])
    );
    app.get(
        &format!("/api/v1/tokens?user={}", sync_user["id"]),
        &other_jwt,
    )
    .await
    .problem(403);
    let for_other = app
        .post(
            "/api/v1/tokens",
            &other_jwt,
            &json!({"name": "fremd", "scopes": ["read"], "user": sync_user["id"]}),
        )
        .await;
    for_other.problem(403);
    // The admin lists everyone's; an admin's token needs `admin` for that.
    let all = app
        .get(
            &format!("/api/v1/tokens?user={}", sync_user["id"]),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(all["items"].as_array().map(Vec::len), Some(1), "{all}");
    let (admin_read, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "r", "scopes": ["read"]}),
    )
    .await;
    app.get(&path, &admin_read).await.problem(404);
    let (admin_admin, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "a", "scopes": ["read", "admin"]}),
    )
    .await;
    assert_eq!(app.get(&path, &admin_admin).await.status, 200);
    // Limits of a new token.
    let too_long = app
        .post(
            "/api/v1/tokens",
            &app.admin_token,
            &json!({"name": "x", "scopes": ["read"], "expires_at": (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339()}),
        )
        .await;
    too_long.names_field(422, "expires_at");
    let past = app
        .post(
            "/api/v1/tokens",
            &app.admin_token,
            &json!({"name": "x", "scopes": ["read"], "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    past.names_field(422, "expires_at");
    for (body, field) in [
        (json!({"name": "", "scopes": ["read"]}), "name"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (
            json!({"name": "x", "scopes": ["read"], "origin": "jira sync"}),
            "origin",
        ),
        (
            json!({"name": "x", "scopes": ["read"], "user": "nobody@example.org"}),
            "user",
        ),
    ] {
        app.post("/api/v1/tokens", &app.admin_token, &body)
            .await
            .names_field(422, field);
    }
    let unknown_scope = app
        .post(
            "/api/v1/tokens",
            &app.admin_token,
            &json!({"name": "x", "scopes": ["everything"]}),
        )
        .await;
    assert_eq!(unknown_scope.status, 422, "{}", unknown_scope.text);
    app.get("/api/v1/tokens", "").await.problem(401);
}

async fn writes_record_their_origin_from_the_token_or_the_header(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let (sync_user, _) = app.user("member").create().await;
    let (with_origin, token) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "jira", "scopes": ["read", "write"], "origin": "jira-sync", "user": sync_user["id"]}),
    )
    .await;
    let (without_origin, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "plain", "scopes": ["read", "write"]}),
    )
    .await;
    let body = json!({"board": "OPS", "type": "task", "title": "Aus JIRA"});
    // The token's origin, even when the header names another.
    let created = app
        .request(Method::POST, "/api/v1/items")
        .token(&with_origin)
        .header("X-Opsboard-Origin", "something-else")
        .json(&body)
        .send()
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    // The header's, for a token without one and for a person.
    let edited = app
        .request(Method::PATCH, "/api/v1/items/OPS-1")
        .token(&without_origin)
        .header("X-Opsboard-Origin", "openproject-sync")
        .json(&json!({"title": "Geändert"}))
        .send()
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let commented = app
        .request(Method::POST, "/api/v1/items/OPS-1/comments")
        .token(&app.admin_token)
        .header("X-Opsboard-Origin", "mail-intake")
        .json(&json!({"body": "Per Mail"}))
        .send()
        .await;
    assert_eq!(commented.status, 201, "{}", commented.text);
    let plain = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"priority": "high"}),
        )
        .await;
    assert_eq!(plain.status, 200);
    let history = app
        .get("/api/v1/items/OPS-1/history", &app.admin_token)
        .await
        .json();
    let origins: Vec<Value> = history["items"]
        .as_array()
        .map(|e| e.iter().map(|e| e["origin"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        origins,
        [
            json!("jira-sync"),
            json!("openproject-sync"),
            json!("mail-intake"),
            Value::Null
        ]
    );
    assert_eq!(history["items"][0]["actor_id"], sync_user["id"]);
    // The token that wrote is on the event (for audits).
    use opsboard::db::schema::events;
    let token_ids: Vec<Option<i64>> = events::table
        .filter(events::entity_type.eq("item"))
        .order(events::id.asc())
        .select(events::token_id)
        .load(&mut *app.conn())
        .expect("events");
    assert_eq!(token_ids[0], token["id"].as_i64());
    assert_eq!(token_ids[3], None);
}

async fn bad_token_requests_are_refused_and_change_nothing(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let bad_origin = app
        .request(Method::POST, "/api/v1/items")
        .token(&app.admin_token)
        .header("X-Opsboard-Origin", "not valid!")
        .json(&json!({"board": "OPS", "type": "task", "title": "Nein"}))
        .send()
        .await;
    bad_origin.names_field(400, "X-Opsboard-Origin");
    use opsboard::db::schema::items;
    let count: i64 = items::table
        .count()
        .get_result(&mut *app.conn())
        .expect("count");
    assert_eq!(count, 0);
    let (_, viewer_jwt) = app.user("viewer").create().await;
    // A viewer may hold a read token.
    let (viewer_read, _) =
        make_token(&app, &viewer_jwt, json!({"name": "v", "scopes": ["read"]})).await;
    assert_eq!(app.get("/api/v1/items", &viewer_read).await.status, 200);
}

/// The kinds of the events of user `id`, oldest first.
async fn user_event_kinds(app: &TestApp, id: &Value) -> Vec<String> {
    let history = app
        .get(
            &format!("/api/v1/users/{id}/history?limit=500"),
            &app.admin_token,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    crate::fixtures::kinds(&history.json())
}

async fn concurrent_revocations_record_one_event(app: TestApp) {
    let (member, member_jwt) = app.user("member").create().await;
    let (secret, token) =
        make_token(&app, &member_jwt, json!({"name": "a", "scopes": ["read"]})).await;
    let path = format!("/api/v1/tokens/{}", token["id"]);
    // The owner and an admin, four times each, at the same moment.
    let answers = join_all((0..8).map(|n| {
        let (app, path) = (&app, &path);
        let by = if n % 2 == 0 {
            member_jwt.clone()
        } else {
            app.admin_token.clone()
        };
        async move { app.delete(path, &by).await.status }
    }))
    .await;
    assert!(answers.iter().all(|status| *status == 204), "{answers:?}");
    app.get("/api/v1/me", &secret).await.problem(401);
    let kinds = user_event_kinds(&app, &member["id"]).await;
    let revoked = kinds.iter().filter(|k| *k == "token_revoked").count();
    assert_eq!(revoked, 1, "{kinds:?}");
}

/// A token made for a user while an admin deactivates them is refused or revoked with the
/// others: none is left working, so reactivating the user brings none back.
async fn tokens_made_during_a_deactivation_do_not_outlive_it(app: TestApp) {
    // A few rounds, each with a user of its own: one round rarely hits the window.
    for _ in 0..4 {
        race_tokens_against_a_deactivation(&app).await;
    }
}

async fn race_tokens_against_a_deactivation(app: &TestApp) {
    let (service_user, _) = app.user("member").create().await;
    let body = json!({"name": "race", "scopes": ["read"], "user": service_user["id"]});
    let makes = join_all((0..8).map(|_| {
        let body = &body;
        async move { app.post("/api/v1/tokens", &app.admin_token, body).await }
    }));
    let path = format!("/api/v1/users/{}/deactivate", service_user["id"]);
    let no_body = json!({});
    let deactivation = app.post(&path, &app.admin_token, &no_body);
    let (made, deactivated) = futures_util::join!(makes, deactivation);
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    for response in &made {
        match response.status {
            201 => {}
            422 => {
                response.names_field(422, "user");
            }
            other => panic!("unexpected {other}: {}", response.text),
        }
    }
    let live: i64 = api_tokens::table
        .filter(
            api_tokens::user_id
                .eq(service_user["id"].as_i64().unwrap_or_default())
                .and(api_tokens::revoked_at.is_null()),
        )
        .count()
        .get_result(&mut *app.conn())
        .expect("count");
    assert_eq!(live, 0, "a token made during the deactivation survived it");
    let reactivated = app
        .post(
            &format!("/api/v1/users/{}/reactivate", service_user["id"]),
            &app.admin_token,
            &no_body,
        )
        .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.text);
    for response in made.iter().filter(|r| r.status == 201) {
        let secret = response.json()["secret"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        app.get("/api/v1/me", &secret).await.problem(401);
    }
}

async fn a_token_makes_no_token_that_outlives_it(app: TestApp) {
    let soon = chrono::Utc::now() + chrono::Duration::days(7);
    let (parent, parent_token) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "short-lived", "scopes": ["read", "write"],
               "expires_at": soon.to_rfc3339()}),
    )
    .await;
    // Asking for more is refused, naming the field.
    let later = chrono::Utc::now() + chrono::Duration::days(30);
    let refused = app
        .post(
            "/api/v1/tokens",
            &parent,
            &json!({"name": "renewal", "scopes": ["read"], "expires_at": later.to_rfc3339()}),
        )
        .await;
    refused.names_field(422, "expires_at");
    // The default lifetime (90 days) is shortened to the parent's.
    let (_, child) = make_token(&app, &parent, json!({"name": "child", "scopes": ["read"]})).await;
    let expiry = |token: &Value| {
        serde_json::from_value::<chrono::DateTime<chrono::Utc>>(token["expires_at"].clone())
            .expect("a time")
    };
    assert_eq!(expiry(&child), expiry(&parent_token), "{child}");
    // Earlier is fine; a person's login is not bound by any token.
    let earlier = chrono::Utc::now() + chrono::Duration::days(1);
    let (_, short) = make_token(
        &app,
        &parent,
        json!({"name": "shorter", "scopes": ["read"], "expires_at": earlier.to_rfc3339()}),
    )
    .await;
    assert!(expiry(&short) < expiry(&parent_token));
    make_token(
        &app,
        &app.admin_token,
        json!({"name": "long", "scopes": ["read"], "expires_at": later.to_rfc3339()}),
    )
    .await;
}

async fn the_spec_names_the_scope_each_operation_needs(app: TestApp) {
    let doc = app
        .request(Method::GET, "/api-docs/openapi.json")
        .send()
        .await;
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    let scope_of = |method: &str, path: &str| {
        let security = &doc["paths"][path][method]["security"];
        let token = security
            .as_array()
            .and_then(|s| s.iter().find(|r| r.get("api_token").is_some()))
            .unwrap_or_else(|| panic!("{method} {path} takes no API token: {security}"));
        token["api_token"].clone()
    };
    for (method, path, scope) in [
        ("get", "/api/v1/items", "read"),
        ("post", "/api/v1/items", "write"),
        ("patch", "/api/v1/items/{key}", "write"),
        ("post", "/api/v1/services/import", "import"),
        ("post", "/api/v1/organizations/import", "import"),
        ("patch", "/api/v1/users/{id}", "admin"),
        ("post", "/api/v1/users/{id}/deactivate", "admin"),
        ("get", "/api/v1/users/{id}/history", "read"),
        ("post", "/api/v1/tokens", "write"),
    ] {
        assert_eq!(scope_of(method, path), json!([scope]), "{method} {path}");
    }
    // The server asks a token for the scope the spec names: one with every other scope is
    // refused, naming it (both come from one rule; the other tests check more requests).
    let (everything_but_write, _) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "all but write", "scopes": ["read", "import", "webhooks", "admin"]}),
    )
    .await;
    let refused = app
        .post(
            "/api/v1/items",
            &everything_but_write,
            &json!({"board": "OPS", "type": "task", "title": "x"}),
        )
        .await;
    assert_eq!(refused.problem(403)["required_scope"], "write");
    // Every operation but the public ones names exactly one scope.
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, item) in paths {
        for (method, operation) in item.as_object().cloned().unwrap_or_default() {
            let Some(security) = operation["security"].as_array() else {
                continue;
            };
            if security.is_empty() {
                continue;
            }
            let scopes = scope_of(&method, &path);
            assert_eq!(scopes.as_array().map(Vec::len), Some(1), "{method} {path}");
        }
    }
}

async fn the_last_use_is_noted_at_most_once_a_minute(app: TestApp) {
    let (secret, token) = make_token(
        &app,
        &app.admin_token,
        json!({"name": "a", "scopes": ["read"]}),
    )
    .await;
    let id = token["id"].as_i64().expect("id");
    let last_use = || -> Option<chrono::NaiveDateTime> {
        api_tokens::table
            .find(id)
            .select(api_tokens::last_used_at)
            .first(&mut *app.conn())
            .expect("the token")
    };
    let set_last_use = |at: chrono::NaiveDateTime| {
        diesel::update(api_tokens::table.find(id))
            .set(api_tokens::last_used_at.eq(Some(at)))
            .execute(&mut *app.conn())
            .expect("set the last use");
    };
    assert_eq!(last_use(), None, "never used yet");
    assert_eq!(app.get("/api/v1/me", &secret).await.status, 200);
    let first = last_use().expect("noted at the first use");
    // Noted half a minute ago: not written again.
    let recent = first - chrono::Duration::seconds(30);
    set_last_use(recent);
    assert_eq!(app.get("/api/v1/me", &secret).await.status, 200);
    assert_eq!(last_use(), Some(recent));
    // Two minutes ago: written.
    let old = first - chrono::Duration::minutes(2);
    set_last_use(old);
    assert_eq!(app.get("/api/v1/me", &secret).await.status, 200);
    assert!(
        last_use().is_some_and(|at| at >= first),
        "{:?} after {first}",
        last_use()
    );
}

/// `POST /items` of a task with `Idempotency-Key: key`, as the holder of `bearer`.
async fn post_task_once(app: &TestApp, bearer: &str, key: &str) -> crate::helpers::Response {
    app.request(Method::POST, "/api/v1/items")
        .token(bearer)
        .header("Idempotency-Key", key)
        .json(&json!({"board": "OPS", "type": "task", "title": "Once"}))
        .send()
        .await
}

/// A stored response is replayed only to a caller who may still call: a revoked token, a
/// deactivated user's login and a login ended by a password change get 401, as without the
/// key, not the stored answer.
async fn a_revoked_credential_gets_no_replay_of_an_idempotent_request(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    let (member, member_jwt) = app.user("member").create().await;
    let (secret, token) = make_token(
        &app,
        &member_jwt,
        json!({"name": "sync", "scopes": ["read", "write"]}),
    )
    .await;
    let first = post_task_once(&app, &secret, "token-key").await;
    assert_eq!(first.status, 201, "{}", first.text);
    let replay = post_task_once(&app, &secret, "token-key").await;
    assert_eq!(replay.status, 201, "{}", replay.text);
    assert_eq!(
        replay.header("idempotency-replayed").as_deref(),
        Some("true")
    );
    let revoked = app
        .delete(&format!("/api/v1/tokens/{}", token["id"]), &member_jwt)
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    post_task_once(&app, &secret, "token-key")
        .await
        .problem(401);

    // A person's login: the same after a password change and after a deactivation.
    let created = post_task_once(&app, &member_jwt, "login-key").await;
    assert_eq!(created.status, 201, "{}", created.text);
    let changed = app
        .patch(
            &format!("/api/v1/users/{}", member["id"]),
            &app.admin_token,
            &json!({"password": "another long password 42"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    post_task_once(&app, &member_jwt, "login-key")
        .await
        .problem(401);
    let (other, other_jwt) = app.user("member").create().await;
    assert_eq!(post_task_once(&app, &other_jwt, "k").await.status, 201);
    let deactivated = app
        .post(
            &format!("/api/v1/users/{}/deactivate", other["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    post_task_once(&app, &other_jwt, "k").await.problem(401);
    // Three tasks, none more.
    let items = app
        .get("/api/v1/items?board=OPS", &app.admin_token)
        .await
        .json();
    assert_eq!(items["items"].as_array().map(Vec::len), Some(3), "{items}");
}
