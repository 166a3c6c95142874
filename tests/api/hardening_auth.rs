//! Hardening of authentication (issue 9): login throttling per account and per address, the
//! cap on concurrent password hashing, and revocation of earlier tokens when a password, a
//! role or the active state changes.

use std::time::Duration;

use actix_web::http::Method;
use diesel::prelude::*;
use futures_util::future::join_all;
use opsboard::config::Settings;
use opsboard::db::schema::users;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, Response, TestApp, USER_PASSWORD};

/// Strict per-account limits: 5 attempts, then one an hour, so that nothing refills while a
/// test runs. Addresses come from `X-Forwarded-For`, so that a test can speak from several.
fn strict_accounts(settings: &mut Settings) {
    settings.auth.login_account_burst = 5;
    settings.auth.login_account_refill_secs = 3600;
    settings.auth.trust_forwarded_for = true;
}

/// Strict per-address limits: 10 attempts, then one an hour; accounts are generous.
fn strict_addresses(settings: &mut Settings) {
    settings.auth.login_address_burst = 10;
    settings.auth.login_address_refill_secs = 3600;
    settings.auth.trust_forwarded_for = true;
}

/// Like [`strict_addresses`], but the forwarded headers are not trusted (the default).
fn strict_addresses_untrusted(settings: &mut Settings) {
    strict_addresses(settings);
    settings.auth.trust_forwarded_for = false;
}

/// One login attempt per account, refilled after 2 s.
fn one_attempt_then_two_seconds(settings: &mut Settings) {
    settings.auth.login_account_burst = 1;
    settings.auth.login_account_refill_secs = 2;
}

/// One password hash at a time, a 1 s wait for a turn.
fn one_hash_at_a_time(settings: &mut Settings) {
    settings.auth.password_hash_concurrency = 1;
    settings.auth.password_hash_wait_secs = 1;
}

/// One password hash at a time, and logins wait up to 30 s for it.
fn one_hash_long_wait(settings: &mut Settings) {
    settings.auth.password_hash_concurrency = 1;
    settings.auth.password_hash_wait_secs = 30;
}

both_engines!(
    two_hundred_wrong_logins_are_throttled_and_then_the_right_password_waits => super::strict_accounts,
    the_per_address_limit_trips_for_many_accounts_from_one_address => super::strict_addresses,
    forwarded_headers_name_no_address_unless_trusted => super::strict_addresses_untrusted,
    after_retry_after_the_right_password_logs_in => super::one_attempt_then_two_seconds,
    a_login_that_cannot_get_a_turn_to_hash_gets_503 => super::one_hash_at_a_time,
    waiting_logins_hold_no_connection_and_no_thread => super::one_hash_long_wait,
    guessing_the_current_password_is_throttled_like_a_login => super::strict_accounts,
);

both_engines!(
    a_password_change_revokes_every_earlier_token,
    an_admin_password_reset_revokes_every_earlier_token,
    a_role_change_revokes_every_earlier_token,
    a_deactivation_revokes_every_earlier_token,
    other_changes_keep_tokens_valid,
    the_token_revocation_migration_reverts_and_reapplies,
);

/// A login attempt, optionally from a forwarded address.
async fn attempt(app: &TestApp, email: &str, password: &str, from: Option<&str>) -> Response {
    let mut request = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": email, "password": password}));
    if let Some(address) = from {
        request = request.header("X-Forwarded-For", address);
    }
    request.send().await
}

/// Asserts a 429 `too-many-requests` problem with a whole number of seconds in `Retry-After`;
/// returns them.
fn assert_throttled(response: &Response) -> u64 {
    let problem = response.problem(429);
    assert_eq!(
        problem["type"], "https://opsboard.dev/problems/too-many-requests",
        "{problem}"
    );
    let retry_after = response
        .header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {:?}", response.headers));
    assert!(retry_after >= 1, "{retry_after}");
    retry_after
}

/// `n` attempts sent concurrently in batches of 25; the statuses in sending order.
async fn flood(
    app: &TestApp,
    n: usize,
    attempt_for: impl Fn(usize) -> (String, String, Option<String>),
) -> Vec<Response> {
    let mut responses = Vec::with_capacity(n);
    for batch in (0..n).collect::<Vec<_>>().chunks(25) {
        let attempts = batch.iter().map(|&i| {
            let (email, password, from) = attempt_for(i);
            async move { attempt(app, &email, &password, from.as_deref()).await }
        });
        responses.extend(join_all(attempts).await);
    }
    responses
}

async fn two_hundred_wrong_logins_are_throttled_and_then_the_right_password_waits(app: TestApp) {
    let (victim, _) = app.user("member").create().await;
    let (bystander, _) = app.user("member").create().await;
    let victim = victim["email"].as_str().unwrap_or_default().to_string();
    let bystander = bystander["email"].as_str().unwrap_or_default().to_string();
    // The helper's own login took one of the victim's five attempts.
    let responses = flood(&app, 200, |_| {
        (
            victim.clone(),
            "wrong-password-123".to_string(),
            Some("198.51.100.1".to_string()),
        )
    })
    .await;
    let wrong = responses.iter().filter(|r| r.status == 401).count();
    let throttled: Vec<&Response> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(wrong, 4, "the burst minus the helper's login got a 401");
    assert_eq!(throttled.len(), 196, "every later attempt got 429");
    for response in &throttled {
        let retry_after = assert_throttled(response);
        assert!(retry_after <= 3600, "{retry_after}");
    }
    // The right password is refused too, from the same address and from another.
    for from in ["198.51.100.1", "203.0.113.77"] {
        assert_throttled(&attempt(&app, &victim, USER_PASSWORD, Some(from)).await);
    }
    // Whatever the case of the e-mail: the throttle counts the account, not the spelling.
    assert_throttled(&attempt(&app, &victim.to_uppercase(), USER_PASSWORD, None).await);
    // Another account, from another address and from the flooding one, is not affected.
    for from in ["203.0.113.77", "198.51.100.1"] {
        let response = attempt(&app, &bystander, USER_PASSWORD, Some(from)).await;
        assert_eq!(response.status, 200, "{}", response.text);
    }
    // Probing an account that does not exist is throttled the same way.
    let probes = flood(&app, 10, |_| {
        (
            "nobody@opsboard.test".to_string(),
            "guess-guess-guess".to_string(),
            Some("192.0.2.5".to_string()),
        )
    })
    .await;
    let statuses: Vec<u16> = probes.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 429).count(),
        5,
        "{statuses:?}"
    );
    // Nothing about the victim changed in storage: throttling is in memory only.
    let mut conn = app.conn();
    let active: bool = users::table
        .filter(users::email.eq(&victim))
        .select(users::active)
        .first(&mut conn)
        .expect("victim");
    assert!(active);
}

async fn the_per_address_limit_trips_for_many_accounts_from_one_address(app: TestApp) {
    // The admin's login in the helper came from 127.0.0.1, not from the address below.
    let responses = flood(&app, 30, |i| {
        (
            format!("sprayed{i}@opsboard.test"),
            "Winter2026!Winter".to_string(),
            Some("198.51.100.9".to_string()),
        )
    })
    .await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        10,
        "{statuses:?}"
    );
    let throttled: Vec<&Response> = responses.iter().filter(|r| r.status == 429).collect();
    assert_eq!(throttled.len(), 20, "{statuses:?}");
    for response in throttled {
        assert_throttled(response);
    }
    // A real user from that address waits too; from another address they log in.
    assert_throttled(&attempt(&app, ADMIN_EMAIL, ADMIN_PASSWORD, Some("198.51.100.9")).await);
    let elsewhere = attempt(&app, ADMIN_EMAIL, ADMIN_PASSWORD, Some("198.51.100.10")).await;
    assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
    // IPv6 counts per /64: another host in the same /64 shares the bucket.
    for n in 0..10 {
        let from = format!("2001:db8:1:2::{n:x}");
        assert_eq!(
            attempt(&app, "v6@opsboard.test", "wrong-wrong-wrong", Some(&from))
                .await
                .status,
            401
        );
    }
    assert_throttled(
        &attempt(
            &app,
            ADMIN_EMAIL,
            ADMIN_PASSWORD,
            Some("2001:db8:1:2:ffff::1"),
        )
        .await,
    );
    let other_block = attempt(&app, ADMIN_EMAIL, ADMIN_PASSWORD, Some("2001:db8:1:3::1")).await;
    assert_eq!(other_block.status, 200, "{}", other_block.text);
}

async fn forwarded_headers_name_no_address_unless_trusted(app: TestApp) {
    // The helper's admin login took one of 127.0.0.1's ten attempts; nine forwarded
    // "addresses" all count as 127.0.0.1, the peer.
    for n in 0..9 {
        let from = format!("203.0.113.{n}");
        let response = attempt(
            &app,
            "someone@opsboard.test",
            "wrong-wrong-wrong",
            Some(&from),
        )
        .await;
        assert_eq!(response.status, 401, "{}", response.text);
    }
    assert_throttled(&attempt(&app, ADMIN_EMAIL, ADMIN_PASSWORD, Some("203.0.113.200")).await);
    let forwarded = app
        .request(Method::POST, "/api/v1/auth/login")
        .header("Forwarded", "for=192.0.2.44")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await;
    assert_throttled(&forwarded);
}

async fn after_retry_after_the_right_password_logs_in(app: TestApp) {
    let (member, _) = app.user("member").create().await;
    let email = member["email"].as_str().unwrap_or_default();
    // The helper's login used the one attempt; the next one waits, even with the right password.
    let retry_after = assert_throttled(&attempt(&app, email, USER_PASSWORD, None).await);
    assert!(retry_after <= 2, "{retry_after}");
    actix_web::rt::time::sleep(Duration::from_secs(retry_after)).await;
    let response = attempt(&app, email, USER_PASSWORD, None).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

async fn a_login_that_cannot_get_a_turn_to_hash_gets_503(app: TestApp) {
    let (member, member_token) = app.user("member").create().await;
    let email = member["email"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/users/{}", member["id"]);
    // Someone else is hashing: the one permit is taken.
    let permit = app.state.passwords.permit().await.expect("the permit");
    let assert_overloaded = |response: &Response| {
        let problem = response.problem(503);
        assert_eq!(problem["type"], "https://opsboard.dev/problems/overloaded");
        assert_eq!(response.header("retry-after").as_deref(), Some("1"));
    };
    assert_overloaded(&attempt(&app, &email, USER_PASSWORD, None).await);
    // Every request that hashes or verifies a password waits for the same cap.
    assert_overloaded(
        &app.patch(
            &path,
            &member_token,
            &json!({"password": "a-new-password-1", "current_password": USER_PASSWORD}),
        )
        .await,
    );
    assert_overloaded(
        &app.post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "late@opsboard.test", "display_name": "Late", "role": "member",
                    "password": USER_PASSWORD}),
        )
        .await,
    );
    // Nothing was written while refused.
    let mut conn = app.conn();
    let late: i64 = users::table
        .filter(users::email.eq("late@opsboard.test"))
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(late, 0);
    // Requests that hash nothing go on.
    let renamed = app
        .patch(&path, &member_token, &json!({"display_name": "Still Here"}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(app.get("/api/v1/me", &member_token).await.status, 200);
    // With the permit back, the same login works, and the password is unchanged.
    drop(permit);
    let response = attempt(&app, &email, USER_PASSWORD, None).await;
    assert_eq!(response.status, 200, "{}", response.text);
}

async fn waiting_logins_hold_no_connection_and_no_thread(app: TestApp) {
    // The test app has a pool of 4 connections. 24 logins wait for the one permit; if they
    // held a connection while waiting, the reads below would find the pool empty.
    let permit = app.state.passwords.permit().await.expect("the permit");
    let logins = join_all((0..24).map(|i| {
        let password = if i % 2 == 0 {
            ADMIN_PASSWORD
        } else {
            "wrong-wrong-wrong"
        };
        attempt(&app, ADMIN_EMAIL, password, None)
    }));
    let meanwhile = async {
        actix_web::rt::time::sleep(Duration::from_millis(500)).await;
        for _ in 0..8 {
            let me = app.get("/api/v1/me", &app.admin_token).await;
            assert_eq!(me.status, 200, "{}", me.text);
            let users = app.get("/api/v1/users?limit=5", &app.admin_token).await;
            assert_eq!(users.status, 200, "{}", users.text);
        }
        drop(permit);
    };
    let (responses, ()) = futures_util::join!(logins, meanwhile);
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        12,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        12,
        "{statuses:?}"
    );
}

/// Logs `email` in `n` times: `n` tokens that all work.
async fn sessions(app: &TestApp, email: &str, password: &str, n: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for _ in 0..n {
        let token = app.login(email, password).await;
        assert_eq!(app.get("/api/v1/me", &token).await.status, 200);
        tokens.push(token);
    }
    tokens
}

/// Asserts that every one of `tokens` gets 401 saying it was revoked, and that a fresh login
/// with `password` gives a token that works.
async fn assert_revoked(app: &TestApp, tokens: &[String], email: &str, password: &str) {
    for token in tokens {
        let problem = app.get("/api/v1/me", token).await.problem(401);
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("revoked") || detail.contains("deactivated"),
            "{problem}"
        );
    }
    let fresh = app.login(email, password).await;
    let me = app.get("/api/v1/me", &fresh).await;
    assert_eq!(me.status, 200, "{}", me.text);
}

fn stored_epoch(app: &TestApp, id: &Value) -> i64 {
    let mut conn = app.conn();
    users::table
        .find(id.as_i64().expect("id"))
        .select(users::auth_epoch)
        .first(&mut conn)
        .expect("auth_epoch")
}

async fn a_password_change_revokes_every_earlier_token(app: TestApp) {
    let (member, first) = app.user("member").create().await;
    let email = member["email"].as_str().unwrap_or_default();
    let mut tokens = sessions(&app, email, USER_PASSWORD, 2).await;
    tokens.push(first);
    let before = stored_epoch(&app, &member["id"]);
    let changed = app
        .patch(
            &format!("/api/v1/users/{}", member["id"]),
            &tokens[0],
            &json!({"password": "a-brand-new-password", "current_password": USER_PASSWORD}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(stored_epoch(&app, &member["id"]), before + 1);
    assert_revoked(&app, &tokens, email, "a-brand-new-password").await;
}

async fn an_admin_password_reset_revokes_every_earlier_token(app: TestApp) {
    let (member, first) = app.user("member").create().await;
    let email = member["email"].as_str().unwrap_or_default();
    let mut tokens = sessions(&app, email, USER_PASSWORD, 1).await;
    tokens.push(first);
    let reset = app
        .patch(
            &format!("/api/v1/users/{}", member["id"]),
            &app.admin_token,
            &json!({"password": "reset-by-the-admin"}),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    assert_revoked(&app, &tokens, email, "reset-by-the-admin").await;
    // The admin's own session is untouched by resetting someone else.
    assert_eq!(app.get("/api/v1/me", &app.admin_token).await.status, 200);
}

async fn a_role_change_revokes_every_earlier_token(app: TestApp) {
    let (member, first) = app.user("manager").create().await;
    let email = member["email"].as_str().unwrap_or_default();
    let mut tokens = sessions(&app, email, USER_PASSWORD, 1).await;
    tokens.push(first);
    let demoted = app
        .patch(
            &format!("/api/v1/users/{}", member["id"]),
            &app.admin_token,
            &json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.text);
    assert_revoked(&app, &tokens, email, USER_PASSWORD).await;
    let fresh = app.login(email, USER_PASSWORD).await;
    assert_eq!(app.get("/api/v1/me", &fresh).await.json()["role"], "viewer");
}

async fn a_deactivation_revokes_every_earlier_token(app: TestApp) {
    let (member, first) = app.user("member").create().await;
    let email = member["email"].as_str().unwrap_or_default();
    let mut tokens = sessions(&app, email, USER_PASSWORD, 1).await;
    tokens.push(first);
    let path = format!("/api/v1/users/{}", member["id"]);
    let before = stored_epoch(&app, &member["id"]);
    let deactivated = app
        .post(&format!("{path}/deactivate"), &app.admin_token, &json!({}))
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    let reactivated = app
        .post(&format!("{path}/reactivate"), &app.admin_token, &json!({}))
        .await;
    assert_eq!(reactivated.status, 200, "{}", reactivated.text);
    assert_eq!(
        stored_epoch(&app, &member["id"]),
        before + 1,
        "deactivation counts, reactivation does not"
    );
    assert_revoked(&app, &tokens, email, USER_PASSWORD).await;
}

async fn other_changes_keep_tokens_valid(app: TestApp) {
    let (member, token) = app.user("member").create().await;
    let path = format!("/api/v1/users/{}", member["id"]);
    let before = stored_epoch(&app, &member["id"]);
    for change in [
        json!({"display_name": "New Name"}),
        json!({"role": "member"}),
        json!({"email": "renamed.member@opsboard.test"}),
    ] {
        let response = app.patch(&path, &app.admin_token, &change).await;
        assert_eq!(response.status, 200, "{change}: {}", response.text);
        let me = app.get("/api/v1/me", &token).await;
        assert_eq!(me.status, 200, "{change}: {}", me.text);
    }
    assert_eq!(stored_epoch(&app, &member["id"]), before);
    // A token issued right after a revoking change (within the same second) works.
    let reset = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"password": "reset-by-the-admin"}),
        )
        .await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let fresh = app
        .login("renamed.member@opsboard.test", "reset-by-the-admin")
        .await;
    assert_eq!(app.get("/api/v1/me", &fresh).await.status, 200);
    app.get("/api/v1/me", &token).await.problem(401);
}

async fn the_token_revocation_migration_reverts_and_reapplies(app: TestApp) {
    use diesel::migration::MigrationSource;
    use diesel_migrations::MigrationHarness;
    const NAME: &str = "2026-11-29-000009_token_revocation";
    let (member, _) = app.user("member").create().await;
    let mut conn = app.conn();
    let user_count = |conn: &mut opsboard::db::DbConnection| -> i64 {
        users::table.count().get_result(conn).expect("users")
    };
    let users_before = user_count(&mut conn);
    match &mut *conn {
        opsboard::db::DbConnection::Sqlite(sqlite) => {
            let migrations = MigrationSource::<diesel::sqlite::Sqlite>::migrations(
                &opsboard::db::SQLITE_MIGRATIONS,
            )
            .expect("migrations");
            let ours = migrations
                .iter()
                .find(|m| m.name().to_string() == NAME)
                .expect("the migration");
            sqlite.revert_migration(ours.as_ref()).expect("down");
        }
        opsboard::db::DbConnection::Postgresql(pg) => {
            let migrations =
                MigrationSource::<diesel::pg::Pg>::migrations(&opsboard::db::POSTGRES_MIGRATIONS)
                    .expect("migrations");
            let ours = migrations
                .iter()
                .find(|m| m.name().to_string() == NAME)
                .expect("the migration");
            pg.revert_migration(ours.as_ref()).expect("down");
        }
    }
    // Down removed the column and kept every user.
    let epoch: QueryResult<i64> = users::table.select(users::auth_epoch).first(&mut conn);
    assert!(epoch.is_err(), "auth_epoch is gone after down");
    assert_eq!(user_count(&mut conn), users_before);
    assert_eq!(opsboard::db::run_migrations(&mut conn), Ok(1));
    assert_eq!(stored_epoch(&app, &member["id"]), 0);
    drop(conn);
    let fresh = app
        .login(member["email"].as_str().unwrap_or_default(), USER_PASSWORD)
        .await;
    assert_eq!(app.get("/api/v1/me", &fresh).await.status, 200);
}

/// A stolen token must not open a side door for guessing the password: wrong
/// `current_password`s in `PATCH /users/{id}` spend the account's login budget, and once it is
/// spent even the right one waits. Nothing changes meanwhile.
async fn guessing_the_current_password_is_throttled_like_a_login(app: TestApp) {
    let (user, token) = app.user("member").create().await; // one attempt of five: the login
    let path = format!("/api/v1/users/{}", user["id"]);
    for _ in 0..4 {
        app.patch(
            &path,
            &token,
            &json!({"password": "a brand new password", "current_password": "a wrong guess!"}),
        )
        .await
        .names_field(422, "current_password");
    }
    let throttled = app
        .patch(
            &path,
            &token,
            &json!({"password": "a brand new password", "current_password": USER_PASSWORD}),
        )
        .await;
    throttled.problem(429);
    assert!(throttled.header("retry-after").is_some());
    let me = app.get("/api/v1/me", &token).await;
    assert_eq!(
        me.status, 200,
        "the session is still the old one: {}",
        me.text
    );
    assert_eq!(me.json()["version"], user["version"], "nothing changed");
}
