//! Hardening of authentication (issue 9): revocation of earlier tokens when a password, a role
//! or the active state changes.

use diesel::prelude::*;
use opsboard::db::schema::users;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{TestApp, USER_PASSWORD};

both_engines!(
    a_password_change_revokes_every_earlier_token,
    an_admin_password_reset_revokes_every_earlier_token,
    a_role_change_revokes_every_earlier_token,
    a_deactivation_revokes_every_earlier_token,
    other_changes_keep_tokens_valid,
    the_token_revocation_migration_reverts_and_reapplies,
);

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
    let (member, first) = app.user("member").await;
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
    let (member, first) = app.user("member").await;
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
    let (member, first) = app.user("manager").await;
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
    let (member, first) = app.user("member").await;
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
    let (member, token) = app.user("member").await;
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
    let (member, _) = app.user("member").await;
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
