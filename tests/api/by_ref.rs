//! Upsert by external reference: what a sync script writes instead of keeping its own books.
//! One item per reference whatever the concurrency, no roll-back by a late delivery, no echo
//! of a write that changes nothing; the same for comments; people by e-mail.

use actix_web::http::Method;
use diesel::prelude::*;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    a_reference_creates_once_and_then_updates,
    board_and_type_of_an_existing_item_do_not_change,
    preconditions_hold_for_references,
    twenty_concurrent_upserts_of_one_reference_make_one_item,
    an_older_source_state_changes_nothing,
    an_upsert_places_the_item_within_wip_limits,
    get_and_delete_by_reference,
    comments_by_reference,
    people_are_named_by_e_mail,
    writes_that_change_nothing_write_no_event,
    only_the_team_upserts,
    a_new_alias_or_link_keeps_the_applied_source_time,
    comment_references_keep_their_link_and_honour_preconditions,
    concurrent_deletes_by_reference_all_answer_204,
    people_by_e_mail_in_an_upsert_and_a_service_template,
    every_write_with_the_stored_values_keeps_the_version,
    creations_racing_upserts_of_their_reference_leave_one_item,
);

const PATH: &str = "/api/v1/items/by-ref/jira/10042";

/// The admin's PUT of `body` to `path`, with extra headers.
async fn put(
    app: &TestApp,
    path: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> crate::helpers::Response {
    let mut request = app
        .request(Method::PUT, path)
        .token(&app.admin_token)
        .json(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await
}

/// The kinds of an item's events, oldest first.
async fn kinds(app: &TestApp, key: &str) -> Vec<String> {
    let history = app
        .get(
            &format!("/api/v1/items/{key}/history?limit=500"),
            &app.admin_token,
        )
        .await
        .json();
    history["items"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["kind"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn board_with_service(app: &TestApp) -> crate::fixtures::Board {
    let (lead, _) = app.user("manager").create().await;
    let board = app.board("OPS").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    board
}

fn task(title: &str) -> Value {
    json!({"board": "OPS", "type": "task", "title": title, "alias": "OZG-1",
           "url": "https://jira.example.org/browse/OZG-1"})
}

async fn a_reference_creates_once_and_then_updates(app: TestApp) {
    board_with_service(&app).await;
    let created = put(&app, PATH, &task("Zertifikat erneuern"), &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.header("location").as_deref(),
        Some("/api/v1/items/OPS-1")
    );
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    let item = created.json();
    assert_eq!(
        item["external_refs"],
        json!([{"system": "jira", "key": "10042", "alias": "OZG-1", "url": "https://jira.example.org/browse/OZG-1"}])
    );
    // The same again: nothing changes.
    let again = put(&app, PATH, &task("Zertifikat erneuern"), &[]).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["version"], 1);
    assert_eq!(kinds(&app, "OPS-1").await, ["created"]);
    // A changed title, and the issue moved to another JIRA project (a new alias).
    let mut changed = task("Zertifikat bis Freitag erneuern");
    changed["alias"] = json!("BETRIEB-7");
    let updated = put(&app, PATH, &changed, &[]).await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let updated = updated.json();
    assert_eq!(updated["version"], 2);
    assert_eq!(updated["title"], "Zertifikat bis Freitag erneuern");
    assert_eq!(updated["external_refs"][0]["alias"], "BETRIEB-7");
    assert_eq!(updated["external_refs"][0]["key"], "10042");
    let history = app
        .get("/api/v1/items/OPS-1/history", &app.admin_token)
        .await
        .json();
    let last = &history["items"][1];
    assert_eq!(last["kind"], "updated");
    assert!(
        last["data"]["title"].is_object() && last["data"]["external_refs"].is_object(),
        "{last}"
    );
    // Fields the body leaves out stay; an explicit null clears.
    let labelled = put(
        &app,
        PATH,
        &json!({"labels": ["zertifikat"], "due_date": "2027-01-15"}),
        &[],
    )
    .await;
    assert_eq!(labelled.status, 200, "{}", labelled.text);
    let cleared = put(&app, PATH, &json!({"due_date": null}), &[])
        .await
        .json();
    assert_eq!(cleared["labels"], json!(["zertifikat"]));
    assert!(cleared["due_date"].is_null());
    assert_eq!(cleared["title"], "Zertifikat bis Freitag erneuern");
    // A new reference without what creating needs names each missing field.
    let missing = put(
        &app,
        "/api/v1/items/by-ref/jira/99",
        &json!({"title": "x"}),
        &[],
    )
    .await;
    let problem = missing.problem(422);
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["board", "type"]);
    put(&app, "/api/v1/items/by-ref/JIRA/1", &task("x"), &[])
        .await
        .names_field(422, "system");
}

async fn board_and_type_of_an_existing_item_do_not_change(app: TestApp) {
    board_with_service(&app).await;
    let (lead, _) = app.user("manager").create().await;
    app.board("DEM").lead(&lead).create().await;
    assert_eq!(put(&app, PATH, &task("Aufgabe"), &[]).await.status, 201);
    let mut other_board = task("Aufgabe");
    other_board["board"] = json!("DEM");
    put(&app, PATH, &other_board, &[])
        .await
        .names_field(422, "board");
    let mut other_type = task("Aufgabe");
    other_type["type"] = json!("incident");
    other_type["service"] = json!("wohngeld");
    put(&app, PATH, &other_type, &[])
        .await
        .names_field(422, "type");
    let item = app
        .get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (item["type"].clone(), item["version"].clone()),
        (json!("task"), json!(1))
    );
}

async fn preconditions_hold_for_references(app: TestApp) {
    board_with_service(&app).await;
    let created = put(&app, PATH, &task("Eins"), &[("If-None-Match", "*")]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let exists = put(&app, PATH, &task("Zwei"), &[("If-None-Match", "*")]).await;
    exists.problem(412);
    put(&app, PATH, &task("Zwei"), &[("If-None-Match", "\"1\"")])
        .await
        .names_field(400, "If-None-Match");
    let stale = put(&app, PATH, &task("Zwei"), &[("If-Match", "\"7\"")]).await;
    assert_eq!(stale.problem(412)["current_version"], 1);
    let fresh = put(&app, PATH, &task("Zwei"), &[("If-Match", "\"1\"")]).await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    let nobody = put(
        &app,
        "/api/v1/items/by-ref/jira/777",
        &task("Drei"),
        &[("If-Match", "\"1\"")],
    )
    .await;
    nobody.problem(412);
    let count: i64 = {
        use opsboard::db::schema::items;
        items::table
            .count()
            .get_result(&mut *app.conn())
            .expect("count")
    };
    assert_eq!(count, 1);
}

async fn twenty_concurrent_upserts_of_one_reference_make_one_item(app: TestApp) {
    board_with_service(&app).await;
    let responses = join_all((0..20).map(|n| {
        let app = &app;
        async move {
            let mut body = task("Gleichzeitig");
            body["labels"] = json!([format!("l{}", n % 2)]);
            put(app, PATH, &body, &[]).await
        }
    }))
    .await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses[0], 200, "{responses:?}");
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 201),
        "{statuses:?}"
    );
    use opsboard::db::schema::{events, item_external_refs, items};
    let mut conn = app.conn();
    let item_count: i64 = items::table.count().get_result(&mut *conn).expect("count");
    let refs: i64 = item_external_refs::table
        .count()
        .get_result(&mut *conn)
        .expect("refs");
    let created: i64 = events::table
        .filter(
            events::entity_type
                .eq("item")
                .and(events::kind.eq("created")),
        )
        .count()
        .get_result(&mut *conn)
        .expect("events");
    assert_eq!((item_count, refs, created), (1, 1, 1));
}

async fn an_older_source_state_changes_nothing(app: TestApp) {
    board_with_service(&app).await;
    let mut body = task("Stand von 10 Uhr");
    body["source_updated_at"] = json!("2026-02-02T10:00:00Z");
    assert_eq!(put(&app, PATH, &body, &[]).await.status, 201);
    let mut late = task("Stand von 9 Uhr");
    late["source_updated_at"] = json!("2026-02-02T09:00:00+00:00");
    let refused = put(&app, PATH, &late, &[]).await;
    let problem = refused.problem(409);
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("stale-source"),
        "{problem}"
    );
    let item = app
        .get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (item["title"].clone(), item["version"].clone()),
        (json!("Stand von 10 Uhr"), json!(1))
    );
    // The same time again is fine (a repeat); a newer one applies and is remembered.
    let mut same = task("Stand von 10 Uhr");
    same["source_updated_at"] = json!("2026-02-02T11:00:00+01:00");
    assert_eq!(put(&app, PATH, &same, &[]).await.status, 200);
    let mut newer = task("Stand von 11 Uhr");
    newer["source_updated_at"] = json!("2026-02-02T11:00:00Z");
    assert_eq!(put(&app, PATH, &newer, &[]).await.json()["version"], 2);
    late["source_updated_at"] = json!("2026-02-02T10:30:00Z");
    put(&app, PATH, &late, &[]).await.problem(409);
    // A reference without a time never blocks.
    let untimed = put(&app, PATH, &json!({"priority": "high"}), &[]).await;
    assert_eq!(untimed.status, 200, "{}", untimed.text);
    let version = untimed.json()["version"].clone();
    // A newer state with the same values changes nothing, but its time is remembered.
    let unchanged = put(
        &app,
        PATH,
        &json!({"priority": "high", "source_updated_at": "2026-02-02T12:00:00Z"}),
        &[],
    )
    .await;
    assert_eq!(unchanged.status, 200, "{}", unchanged.text);
    assert_eq!(unchanged.json()["version"], version);
    late["source_updated_at"] = json!("2026-02-02T11:30:00Z");
    put(&app, PATH, &late, &[]).await.problem(409);
}

async fn an_upsert_places_the_item_within_wip_limits(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    let board = app
        .board("OPS")
        .lead(&lead)
        .columns(json!([
            {"name": "Offen", "category": "todo"},
            {"name": "In Arbeit", "category": "in_progress", "wip_limit": 1},
            {"name": "Fertig", "category": "done"}
        ]))
        .create()
        .await;
    let working = board.column_id("In Arbeit");
    let mut first = task("Eins");
    first["column"] = json!(working);
    let created = put(&app, PATH, &first, &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let created = created.json();
    assert_eq!(created["column"]["name"], "In Arbeit");
    assert!(created["started_at"].is_string());
    let mut second = task("Zwei");
    second["column"] = json!(working);
    let full = put(&app, "/api/v1/items/by-ref/jira/10043", &second, &[]).await;
    assert_eq!(full.problem(409)["wip_limit"], 1);
    let count: i64 = {
        use opsboard::db::schema::items;
        items::table
            .count()
            .get_result(&mut *app.conn())
            .expect("count")
    };
    assert_eq!(count, 1, "the refused upsert created nothing");
    // Where it is already: no move.
    assert_eq!(
        put(&app, PATH, &first, &[]).await.json()["version"],
        created["version"]
    );
    assert_eq!(kinds(&app, "OPS-1").await, ["created", "moved"]);
}

async fn get_and_delete_by_reference(app: TestApp) {
    board_with_service(&app).await;
    assert_eq!(put(&app, PATH, &task("Weg damit"), &[]).await.status, 201);
    let found = app.get(PATH, &app.admin_token).await;
    assert_eq!(found.status, 200);
    assert_eq!(found.json()["key"], "OPS-1");
    assert_eq!(found.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(app.delete(PATH, &app.admin_token).await.status, 204);
    let gone = app.get(PATH, &app.admin_token).await;
    assert!(
        gone.problem(404)["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("deleted")
    );
    assert_eq!(
        app.delete(PATH, &app.admin_token).await.status,
        204,
        "deleted already"
    );
    app.delete("/api/v1/items/by-ref/jira/404", &app.admin_token)
        .await
        .problem(404);
    app.get("/api/v1/items/by-ref/jira/404", &app.admin_token)
        .await
        .problem(404);
    let revived = put(&app, PATH, &task("Wieder da?"), &[]).await;
    let problem = revived.problem(409);
    assert!(
        problem["type"]
            .as_str()
            .unwrap_or_default()
            .ends_with("item-deleted"),
        "{problem}"
    );
    // The deleted item's history (its own endpoint answers 404 now): nothing after the deletion.
    use opsboard::db::schema::events;
    let stored: Vec<String> = events::table
        .filter(events::entity_type.eq("item"))
        .order(events::id.asc())
        .select(events::kind)
        .load(&mut *app.conn())
        .expect("events");
    assert_eq!(stored, ["created", "deleted"]);
}

async fn comments_by_reference(app: TestApp) {
    board_with_service(&app).await;
    assert_eq!(
        put(&app, PATH, &task("Mit Kommentaren"), &[]).await.status,
        201
    );
    let path = "/api/v1/items/OPS-1/comments/by-ref/jira/10500";
    let body = json!({"body": "Aus JIRA", "source_updated_at": "2026-02-02T10:00:00Z",
                      "url": "https://jira.example.org/browse/OZG-1?focusedCommentId=10500"});
    let created = put(&app, path, &body, &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert!(
        created
            .header("location")
            .is_some_and(|l| l.starts_with("/api/v1/items/OPS-1/comments/"))
    );
    let comment = created.json();
    assert_eq!(comment["external_refs"][0]["key"], "10500");
    let same = put(&app, path, &body, &[]).await;
    assert_eq!(same.status, 200);
    assert_eq!(same.json()["version"], 1);
    let edited = put(
        &app,
        path,
        &json!({"body": "Aus JIRA, bearbeitet", "source_updated_at": "2026-02-02T11:00:00Z"}),
        &[],
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json()["version"], 2);
    let stale = put(
        &app,
        path,
        &json!({"body": "Alt", "source_updated_at": "2026-02-02T09:00:00Z"}),
        &[],
    )
    .await;
    stale.problem(409);
    let thread = app
        .get("/api/v1/items/OPS-1/comments", &app.admin_token)
        .await
        .json();
    assert_eq!(thread["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(thread["items"][0]["body"], "Aus JIRA, bearbeitet");
    assert_eq!(thread["items"][0]["external_refs"][0]["system"], "jira");
    assert_eq!(app.delete(path, &app.admin_token).await.status, 204);
    assert_eq!(app.delete(path, &app.admin_token).await.status, 204);
    app.delete(
        "/api/v1/items/OPS-1/comments/by-ref/jira/1",
        &app.admin_token,
    )
    .await
    .problem(404);
    put(&app, path, &body, &[]).await.problem(409);
    assert_eq!(
        kinds(&app, "OPS-1").await,
        ["created", "commented", "comment_edited", "comment_deleted"]
    );
    // A reference belongs to one item's comment.
    assert_eq!(
        put(&app, "/api/v1/items/by-ref/jira/2", &task("Zwei"), &[])
            .await
            .status,
        201
    );
    let elsewhere = put(
        &app,
        "/api/v1/items/OPS-2/comments/by-ref/jira/10500",
        &json!({"body": "x"}),
        &[],
    )
    .await;
    elsewhere.problem(409);
}

async fn people_are_named_by_e_mail(app: TestApp) {
    board_with_service(&app).await;
    let (worker, _) = app.user("member").create().await;
    let (other, _) = app.user("member").create().await;
    let email = worker["email"].as_str().unwrap_or_default().to_uppercase();
    let mut body = task("Mit Personen");
    body["raci"] = json!({"accountable": email, "responsible": [other["email"], other["id"]]});
    let created = put(&app, PATH, &body, &[]).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let raci = &created.json()["raci"];
    assert_eq!(raci["accountable"]["id"], worker["id"]);
    assert_eq!(raci["responsible"].as_array().map(Vec::len), Some(1));
    let unknown = app
        .request(Method::PUT, "/api/v1/items/OPS-1/raci")
        .token(&app.admin_token)
        .json(&json!({"accountable": worker["id"], "responsible": [other["id"], "nobody@example.org"]}))
        .send()
        .await;
    let problem = unknown.names_field(422, "responsible[1]");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("nobody@example.org")
    );
    let board = app
        .post(
            "/api/v1/boards",
            &app.admin_token,
            &json!({"key": "EMA", "name": "E-Mail", "lead": worker["email"]}),
        )
        .await;
    assert_eq!(board.status, 201, "{}", board.text);
    assert_eq!(board.json()["lead"], worker["id"]);
    let bad_lead = app
        .post(
            "/api/v1/boards",
            &app.admin_token,
            &json!({"key": "EMB", "name": "E-Mail", "lead": "nobody@example.org"}),
        )
        .await;
    bad_lead.names_field(422, "lead");
}

async fn writes_that_change_nothing_write_no_event(app: TestApp) {
    let board = board_with_service(&app).await;
    let (worker, _) = app.user("member").create().await;
    let item = app.item("OPS").task().accountable(&worker).create().await;
    let key = item["key"].as_str().unwrap_or_default().to_string();
    let raci = json!({"accountable": worker["id"]});
    let path = format!("/api/v1/items/{key}");
    let same_raci = app
        .request(Method::PUT, &format!("{path}/raci"))
        .token(&app.admin_token)
        .json(&raci)
        .send()
        .await;
    assert_eq!(same_raci.status, 200, "{}", same_raci.text);
    assert_eq!(same_raci.header("etag").as_deref(), Some("\"1\""));
    let same_fields = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"title": item["title"], "priority": item["priority"]}),
        )
        .await;
    assert_eq!(same_fields.json()["version"], 1);
    let same_place = app
        .move_item(
            &key,
            &app.admin_token,
            &json!({"column": board.column_id("Backlog")}),
        )
        .await;
    assert_eq!(same_place.status, 200, "{}", same_place.text);
    assert_eq!(same_place.json()["version"], 1);
    let commented = app
        .post(
            &format!("{path}/comments"),
            &app.admin_token,
            &json!({"body": "Eins"}),
        )
        .await
        .json();
    let same_comment = app
        .patch(
            &format!("{path}/comments/{}", commented["id"]),
            &app.admin_token,
            &json!({"body": "Eins"}),
        )
        .await;
    assert_eq!(same_comment.json()["version"], 1);
    let service = app
        .get("/api/v1/services/wohngeld", &app.admin_token)
        .await
        .json();
    let same_service = app
        .patch(
            "/api/v1/services/wohngeld",
            &app.admin_token,
            &json!({"name": service["name"]}),
        )
        .await;
    assert_eq!(same_service.json()["version"], service["version"]);
    assert_eq!(kinds(&app, &key).await, ["created", "commented"]);
}

async fn only_the_team_upserts(app: TestApp) {
    board_with_service(&app).await;
    let (_, viewer) = app.user("viewer").create().await;
    let refused = app
        .request(Method::PUT, PATH)
        .token(&viewer)
        .json(&task("Nein"))
        .send()
        .await;
    refused.problem(403);
    app.request(Method::PUT, PATH)
        .json(&task("Nein"))
        .send()
        .await
        .problem(401);
    let count: i64 = {
        use opsboard::db::schema::items;
        items::table
            .count()
            .get_result(&mut *app.conn())
            .expect("count")
    };
    assert_eq!(count, 0);
    assert_eq!(app.get(PATH, &viewer).await.status, 404);
}

/// How many history events are stored, of every entity.
fn stored_events(app: &TestApp) -> i64 {
    use opsboard::db::schema::events;
    events::table
        .count()
        .get_result(&mut *app.conn())
        .expect("count events")
}

async fn a_new_alias_or_link_keeps_the_applied_source_time(app: TestApp) {
    board_with_service(&app).await;
    let mut body = task("Stand von 10 Uhr");
    body["source_updated_at"] = json!("2026-02-02T10:00:00Z");
    assert_eq!(put(&app, PATH, &body, &[]).await.status, 201);
    // The issue moved to another JIRA project: a new alias, sent without a time.
    let moved = put(&app, PATH, &json!({"alias": "BETRIEB-7"}), &[]).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.json()["external_refs"][0]["alias"], "BETRIEB-7");
    // A PATCH of the item's references that keeps this one (a new link) keeps its time too.
    let patched = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"external_refs": [{"system": "jira", "key": "10042", "alias": "BETRIEB-7",
                                       "url": "https://jira.example.org/browse/BETRIEB-7"}]}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let mut late = task("Stand von 9 Uhr");
    late["source_updated_at"] = json!("2026-02-02T09:00:00Z");
    put(&app, PATH, &late, &[]).await.problem(409);
    let item = app
        .get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .json();
    assert_eq!(item["title"], "Stand von 10 Uhr");
    // An explicit null removes the alias and the link; omitting them keeps them.
    let kept = put(&app, PATH, &json!({"priority": "high"}), &[])
        .await
        .json();
    assert_eq!(kept["external_refs"][0]["alias"], "BETRIEB-7");
    let cleared = put(&app, PATH, &json!({"alias": null, "url": null}), &[])
        .await
        .json();
    assert_eq!(
        cleared["external_refs"],
        json!([{"system": "jira", "key": "10042", "alias": null, "url": null}])
    );
    put(&app, PATH, &json!({"url": "ftp://x"}), &[])
        .await
        .names_field(422, "url");
}

async fn comment_references_keep_their_link_and_honour_preconditions(app: TestApp) {
    board_with_service(&app).await;
    assert_eq!(
        put(&app, PATH, &task("Mit Kommentar"), &[]).await.status,
        201
    );
    let path = "/api/v1/items/OPS-1/comments/by-ref/jira/10500";
    let link = "https://jira.example.org/browse/OZG-1?focusedCommentId=10500";
    // If-Match for a reference no comment has, before the comment exists.
    put(&app, path, &json!({"body": "x"}), &[("If-Match", "\"1\"")])
        .await
        .problem(412);
    let created = put(
        &app,
        path,
        &json!({"body": "Eins", "url": link, "source_updated_at": "2026-02-02T10:00:00Z"}),
        &[("If-None-Match", "*")],
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.header("etag").as_deref(), Some("\"1\""));
    put(
        &app,
        path,
        &json!({"body": "Zwei"}),
        &[("If-None-Match", "*")],
    )
    .await
    .problem(412);
    let stale = put(
        &app,
        path,
        &json!({"body": "Zwei"}),
        &[("If-Match", "\"5\"")],
    )
    .await;
    assert_eq!(stale.problem(412)["current_version"], 1);
    // A newer state without `url`: the link stays.
    let edited = put(
        &app,
        path,
        &json!({"body": "Zwei", "source_updated_at": "2026-02-02T11:00:00Z"}),
        &[("If-Match", "\"1\"")],
    )
    .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    let edited = edited.json();
    assert_eq!(edited["version"], 2);
    assert_eq!(
        edited["external_refs"],
        json!([{"system": "jira", "key": "10500", "url": link}])
    );
    // The time applied last is remembered: 10:30 is older than 11:00.
    put(
        &app,
        path,
        &json!({"body": "Alt", "source_updated_at": "2026-02-02T10:30:00Z"}),
        &[],
    )
    .await
    .problem(409);
    let unlinked = put(&app, path, &json!({"body": "Zwei", "url": null}), &[])
        .await
        .json();
    assert_eq!(unlinked["external_refs"][0]["url"], Value::Null);
    assert_eq!(unlinked["version"], 2, "the same text: no new version");
    let refused = app
        .request(Method::DELETE, path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .send()
        .await;
    assert_eq!(refused.problem(412)["current_version"], 2);
    let deleted = app
        .request(Method::DELETE, path)
        .token(&app.admin_token)
        .header("If-Match", "\"2\"")
        .send()
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert_eq!(
        kinds(&app, "OPS-1").await,
        ["created", "commented", "comment_edited", "comment_deleted"]
    );
}

async fn concurrent_deletes_by_reference_all_answer_204(app: TestApp) {
    board_with_service(&app).await;
    assert_eq!(put(&app, PATH, &task("Weg"), &[]).await.status, 201);
    let responses = join_all((0..10).map(|_| app.delete(PATH, &app.admin_token))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 204), "{responses:?}");
    use opsboard::db::schema::events;
    let deleted: i64 = events::table
        .filter(
            events::entity_type
                .eq("item")
                .and(events::kind.eq("deleted")),
        )
        .count()
        .get_result(&mut *app.conn())
        .expect("events");
    assert_eq!(deleted, 1);
}

async fn people_by_e_mail_in_an_upsert_and_a_service_template(app: TestApp) {
    board_with_service(&app).await;
    let (worker, _) = app.user("member").create().await;
    let (other, _) = app.user("member").create().await;
    // Unknown and deactivated people are named by the field of this body.
    let mut body = task("Mit Personen");
    body["raci"] = json!({"accountable": worker["email"], "responsible": ["nobody@example.org"]});
    let problem = put(&app, PATH, &body, &[])
        .await
        .names_field(422, "raci.responsible[0]");
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("nobody@example.org")
    );
    body["raci"] = json!({"accountable": worker["email"]});
    assert_eq!(put(&app, PATH, &body, &[]).await.status, 201);
    put(&app, PATH, &json!({"raci": {}}), &[])
        .await
        .names_field(422, "raci.accountable");
    // The same people by e-mail as by id: nothing changes.
    let same = put(
        &app,
        PATH,
        &json!({"raci": {"accountable": worker["id"]}}),
        &[],
    )
    .await;
    assert_eq!(same.json()["version"], 1);
    let changed = put(
        &app,
        PATH,
        &json!({"raci": {"accountable": worker["email"], "consulted": [other["email"]]}}),
        &[],
    )
    .await
    .json();
    assert_eq!(changed["raci"]["consulted"][0]["id"], other["id"]);
    assert_eq!(kinds(&app, "OPS-1").await, ["created", "raci_changed"]);

    // A service's template, by e-mail.
    let template = app
        .put(
            "/api/v1/services/wohngeld/raci",
            &app.admin_token,
            &json!({"accountable": worker["email"], "responsible": [other["email"], "x@example.org"]}),
        )
        .await;
    template.names_field(422, "responsible[1]");
    let template = app
        .put(
            "/api/v1/services/wohngeld/raci",
            &app.admin_token,
            &json!({"accountable": worker["email"], "responsible": [other["email"]]}),
        )
        .await;
    assert_eq!(template.status, 200, "{}", template.text);
    let template = template.json();
    assert_eq!(template["accountable"]["id"], worker["id"]);
    assert_eq!(template["responsible"][0]["id"], other["id"]);
    // A deactivated person cannot hold a role.
    let path = format!("/api/v1/users/{}/deactivate", other["id"]);
    let deactivated = app.post(&path, &app.admin_token, &json!({})).await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    app.put(
        "/api/v1/services/wohngeld/raci",
        &app.admin_token,
        &json!({"accountable": other["email"]}),
    )
    .await
    .names_field(422, "accountable");
}

async fn every_write_with_the_stored_values_keeps_the_version(app: TestApp) {
    let board = board_with_service(&app).await;
    let (worker, _) = app.user("member").create().await;
    let organization = app.organization("FM").kind("ministry").create().await;
    let policy = app.sla_policy("s2").create().await;
    let template = app
        .put(
            "/api/v1/services/wohngeld/raci",
            &app.admin_token,
            &json!({"accountable": worker["id"]}),
        )
        .await
        .json();
    let before = stored_events(&app);
    let lead_email = {
        let lead = board.json["lead"].clone();
        app.get(&format!("/api/v1/users/{lead}"), &app.admin_token)
            .await
            .json()["email"]
            .clone()
    };
    let same_board = app
        .patch(
            "/api/v1/boards/OPS",
            &app.admin_token,
            &json!({"name": board.json["name"], "lead": lead_email}),
        )
        .await;
    assert_eq!(same_board.status, 200, "{}", same_board.text);
    assert_eq!(same_board.json()["version"], board.json["version"]);
    let column = &board.json["columns"][0];
    let same_column = app
        .patch(
            &format!("/api/v1/boards/OPS/columns/{}", column["id"]),
            &app.admin_token,
            &json!({"name": column["name"], "wip_limit": column["wip_limit"]}),
        )
        .await;
    assert_eq!(same_column.status, 200, "{}", same_column.text);
    assert_eq!(same_column.json()["version"], column["version"]);
    let same_organization = app
        .patch(
            "/api/v1/organizations/FM",
            &app.admin_token,
            &json!({"name": organization["name"], "kind": "ministry"}),
        )
        .await;
    assert_eq!(same_organization.status, 200, "{}", same_organization.text);
    assert_eq!(same_organization.json()["version"], organization["version"]);
    let same_user = app
        .patch(
            &format!("/api/v1/users/{}", worker["id"]),
            &app.admin_token,
            &json!({"display_name": worker["display_name"], "role": "member"}),
        )
        .await;
    assert_eq!(same_user.status, 200, "{}", same_user.text);
    assert_eq!(same_user.json()["version"], worker["version"]);
    let same_policy = app
        .patch(
            &format!("/api/v1/sla-policies/{}", policy["id"]),
            &app.admin_token,
            &json!({"response_minutes": policy["response_minutes"]}),
        )
        .await;
    assert_eq!(same_policy.status, 200, "{}", same_policy.text);
    assert_eq!(same_policy.json()["version"], policy["version"]);
    let same_template = app
        .put(
            "/api/v1/services/wohngeld/raci",
            &app.admin_token,
            &json!({"accountable": worker["email"]}),
        )
        .await;
    assert_eq!(same_template.status, 200, "{}", same_template.text);
    assert_eq!(same_template.json()["version"], template["version"]);
    assert_eq!(
        same_template.header("etag"),
        Some(format!("\"{}\"", template["version"]))
    );
    assert_eq!(stored_events(&app), before, "no write wrote an event");
}

async fn creations_racing_upserts_of_their_reference_leave_one_item(app: TestApp) {
    board_with_service(&app).await;
    // POST /items naming the reference takes no lock of the reference: the unique index (or
    // the reference's check inside a creation) decides, and an upsert that loses updates.
    let responses = join_all((0..16).map(|n| {
        let app = &app;
        async move {
            if n % 2 == 0 {
                let mut body = task("Per POST");
                body["external_refs"] = json!([{"system": "jira", "key": "10042"}]);
                if let Some(body) = body.as_object_mut() {
                    body.remove("alias");
                    body.remove("url");
                }
                (
                    "post",
                    app.post("/api/v1/items", &app.admin_token, &body).await,
                )
            } else {
                ("put", put(app, PATH, &task("Per PUT"), &[]).await)
            }
        }
    }))
    .await;
    for (how, response) in &responses {
        let fine: &[u16] = if *how == "put" {
            &[200, 201]
        } else {
            &[201, 409]
        };
        assert!(
            fine.contains(&response.status),
            "{how}: {} {}",
            response.status,
            response.text
        );
    }
    let created = responses.iter().filter(|(_, r)| r.status == 201).count();
    assert_eq!(created, 1, "{responses:?}");
    use opsboard::db::schema::{item_external_refs, items};
    let mut conn = app.conn();
    let item_count: i64 = items::table.count().get_result(&mut *conn).expect("count");
    let refs: i64 = item_external_refs::table
        .count()
        .get_result(&mut *conn)
        .expect("refs");
    assert_eq!((item_count, refs), (1, 1));
}
