//! What reaches storage: argon2id hashes, history events written with their change, the
//! readiness probe, and the two migration folders kept in step.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use opsboard::db::schema::{events, users};
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    passwords_are_stored_as_argon2id_hashes,
    every_change_writes_its_history_event,
    ready_reports_pending_migrations_as_503,
    the_schema_refuses_a_second_user_with_the_same_email,
);

async fn passwords_are_stored_as_argon2id_hashes(app: TestApp) {
    let (user, _) = app.user("member").create().await;
    let id = user["id"].as_i64().unwrap_or_default();
    let hash: String = users::table
        .find(id)
        .select(users::password_hash)
        .first(&mut app.conn())
        .expect("stored user");
    // OWASP's minimum for argon2id: 19 MiB, 2 iterations, 1 lane.
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(crate::helpers::USER_PASSWORD));
}

async fn every_change_writes_its_history_event(app: TestApp) {
    let (user, _) = app.user("member").create().await;
    let id = user["id"].as_i64().unwrap_or_default();
    let path = format!("/api/v1/users/{id}");
    app.patch(
        &path,
        &app.admin_token,
        &json!({"display_name": "Changed", "password": "a-new-long-password"}),
    )
    .await;
    app.post(&format!("{path}/deactivate"), &app.admin_token, &json!({}))
        .await;
    // A refused change writes nothing.
    app.patch(&path, &app.admin_token, &json!({"display_name": ""}))
        .await
        .problem(422);
    let rows: Vec<(String, String, Option<i64>)> = events::table
        .filter(events::entity_type.eq("user").and(events::entity_id.eq(id)))
        .order(events::id.asc())
        .select((events::kind, events::data, events::actor_id))
        .load(&mut app.conn())
        .expect("events");
    let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(kinds, ["created", "updated", "deactivated"]);
    let update: serde_json::Value = serde_json::from_str(&rows[1].1).expect("event data is JSON");
    assert_eq!(update["display_name"]["new"], "Changed");
    assert_eq!(
        update["password"],
        json!({"changed": true}),
        "no hash in the history"
    );
    let admin_id = app.get("/api/v1/me", &app.admin_token).await.json()["id"].as_i64();
    assert!(
        rows.iter().all(|r| r.2 == admin_id),
        "the admin is the actor"
    );
}

async fn ready_reports_pending_migrations_as_503(app: TestApp) {
    assert_eq!(app.get("/ready", "").await.status, 200);
    assert_eq!(app.get("/health", "").await.status, 200);
    app.conn()
        .batch_execute("DELETE FROM __diesel_schema_migrations")
        .expect("forget the migrations");
    let problem = app.get("/ready", "").await.problem(503);
    assert!(problem["detail"].is_string());
    assert_eq!(
        app.get("/health", "").await.status,
        200,
        "liveness does not depend on the database"
    );
}

async fn the_schema_refuses_a_second_user_with_the_same_email(app: TestApp) {
    let (user, _) = app.user("member").create().await;
    let now = chrono::Utc::now().naive_utc();
    let duplicate = diesel::insert_into(users::table)
        .values((
            users::email.eq(user["email"].as_str().unwrap_or_default()),
            users::display_name.eq("Twin"),
            users::role.eq("member"),
            users::password_hash.eq("x"),
            users::active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
            users::version.eq(1_i64),
        ))
        .execute(&mut app.conn());
    assert!(duplicate.is_err(), "the unique index must refuse it");
    let bad_role = diesel::insert_into(users::table)
        .values((
            users::email.eq("other@example.org"),
            users::display_name.eq("Other"),
            users::role.eq("emperor"),
            users::password_hash.eq("x"),
            users::active.eq(true),
            users::created_at.eq(now),
            users::updated_at.eq(now),
            users::version.eq(1_i64),
        ))
        .execute(&mut app.conn());
    assert!(
        bad_role.is_err(),
        "the check constraint must refuse an unknown role"
    );
}

#[test]
fn both_engines_have_the_same_migrations() {
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .expect("migration folder")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    };
    let sqlite = names("migrations/sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, names("migrations/postgres"));
    for name in &sqlite {
        for engine in ["sqlite", "postgres"] {
            for file in ["up.sql", "down.sql"] {
                let path = format!("migrations/{engine}/{name}/{file}");
                assert!(std::path::Path::new(&path).is_file(), "{path} is missing");
            }
        }
    }
}

/// SQLite changes a table's CHECK by rebuilding it; the rebuild of `items` must keep every
/// item and every row that refers to one (labels, RACI), down and up again.
#[actix_web::test]
async fn rebuilding_the_items_table_keeps_every_child_row() {
    use diesel_migrations::MigrationHarness;
    use opsboard::db::schema::{item_labels, item_raci, items};
    let Some(app) = TestApp::spawn(crate::helpers::Engine::Sqlite).await else {
        return;
    };
    app.board("OPS").name("Betrieb").create().await;
    let (member, _) = app.user("member").create().await;
    for n in 0..3 {
        app.item("OPS")
            .task()
            .title(&format!("Aufgabe {n}"))
            .labels(&["a", "b"])
            .accountable(&member)
            .create()
            .await;
    }
    let counts = |conn: &mut opsboard::db::DbConnection| -> (i64, i64, i64) {
        (
            items::table.count().get_result(conn).expect("items"),
            item_labels::table.count().get_result(conn).expect("labels"),
            item_raci::table.count().get_result(conn).expect("raci"),
        )
    };
    let mut conn = app.conn();
    assert_eq!(counts(&mut conn), (3, 6, 3));
    let opsboard::db::DbConnection::Sqlite(sqlite) = &mut *conn else {
        panic!("a SQLite connection");
    };
    sqlite
        .batch_execute("PRAGMA foreign_keys = OFF;")
        .expect("pragma");
    // Down to the rebuild of items (000008), through any migration that came after it.
    let mut reverted = Vec::new();
    while reverted.last().map(String::as_str) != Some("20261129000008") {
        let version = sqlite
            .revert_last_migration(opsboard::db::SQLITE_MIGRATIONS)
            .expect("the migrations revert");
        reverted.push(version.to_string());
    }
    sqlite
        .batch_execute("PRAGMA foreign_keys = ON;")
        .expect("pragma");
    assert_eq!(counts(&mut conn), (3, 6, 3), "down keeps every row");
    assert_eq!(opsboard::db::run_migrations(&mut conn), Ok(reverted.len()));
    assert_eq!(counts(&mut conn), (3, 6, 3), "up keeps every row");
    let fk_problems: i64 = diesel::sql_query("SELECT count(*) AS n FROM pragma_foreign_key_check")
        .get_result::<Count>(&mut conn)
        .map(|c| c.n)
        .expect("foreign key check");
    assert_eq!(fk_problems, 0);
    let item = app
        .get("/api/v1/items/OPS-2", &app.admin_token)
        .await
        .json();
    assert_eq!(item["labels"], json!(["a", "b"]));
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}
