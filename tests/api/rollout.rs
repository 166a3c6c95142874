//! The rollout of online services to the municipal administrations: waves, the plan of a
//! district, status changes with their events in the matrix and the progress, the checklist
//! rule and a manager's override, the live share, the matrix as CSV both ways, who may read
//! which rows, and the import of the state's administrations.

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{Response, TestApp};

both_engines!(
    planning_a_district_creates_one_entry_per_administration,
    a_status_change_is_an_event_and_shows_in_matrix_and_progress,
    live_needs_the_checklist_or_a_managers_recorded_override,
    the_live_share_leaves_out_what_does_not_apply,
    the_matrix_csv_round_trips_and_changes_exactly_the_edited_cells,
    a_bad_cell_names_row_and_column_and_writes_nothing,
    a_requester_reads_only_their_own_administrations_row,
    the_import_of_the_states_administrations_is_idempotent,
    an_item_blocks_entries_seen_from_both_ends,
    concurrent_writes_of_one_entry_create_it_once_and_lose_nothing,
);

/// Two districts, four administrations in the first (one with a name a spreadsheet would
/// run), one in the second, and a kreisfreie Stadt.
const ADMINISTRATIONS: &str = "short_name;name;kind;district;official_key;members\n\
    LKA;Landkreis Alpha;district;;13071;\n\
    LKB;Landkreis Beta;district;;13072;\n\
    A-EINS;Amt Eins;amt;LKA;130715001;Dorf Eins|Dorf Zwei\n\
    GEM-ZWEI;Gemeinde Zwei;amtsfreie_gemeinde;LKA;13071002;\n\
    A-DREI;Amt Drei;amt;Alpha;;\n\
    A-FORMEL;=Amt Formel;amt;Landkreis Alpha;;\n\
    A-VIER;Amt Vier;amt;LKB;;\n\
    STADT;Freie Stadt;kreisfreie_stadt;;13003000;\n";

/// The administrations of district LKA.
const ALPHA: [&str; 4] = ["A-DREI", "A-EINS", "A-FORMEL", "GEM-ZWEI"];

/// Every mandatory checklist step ticked.
fn checklist_done() -> Value {
    json!({"dpa": true, "responsibility_data": true, "transport": true, "dvdv": true,
           "mailbox": true, "case_management": true, "production_test": true})
}

async fn import_administrations(app: &TestApp) {
    let response = app
        .request(Method::POST, "/api/v1/organizations/import")
        .token(&app.admin_token)
        .raw("text/csv", ADMINISTRATIONS.as_bytes().to_vec())
        .send()
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

/// The administrations, a service `wohngeld` with a wave `Welle 1`.
async fn setup(app: &TestApp) {
    import_administrations(app).await;
    app.service("wohngeld").name("Wohngeld").create().await;
    let wave = app
        .post(
            "/api/v1/services/wohngeld/waves",
            &app.admin_token,
            &json!({"name": "Welle 1", "planned_start": "2027-01-04", "planned_go_live": "2027-03-01"}),
        )
        .await;
    assert_eq!(wave.status, 201, "{}", wave.text);
}

async fn plan(app: &TestApp, token: &str, body: Value) -> Response {
    app.post("/api/v1/rollout/plan", token, &body).await
}

async fn patch(app: &TestApp, token: &str, admin: &str, body: Value) -> Response {
    app.patch(&format!("/api/v1/rollout/wohngeld/{admin}"), token, &body)
        .await
}

/// The rollout events of the changes feed.
async fn rollout_events(app: &TestApp) -> Vec<Value> {
    let feed = app
        .get(
            "/api/v1/changes?entity_type=rollout&limit=500",
            &app.admin_token,
        )
        .await;
    assert_eq!(feed.status, 200, "{}", feed.text);
    feed.json()["items"].as_array().cloned().unwrap_or_default()
}

async fn matrix(app: &TestApp, query: &str) -> Value {
    let response = app
        .get(&format!("/api/v1/rollout/matrix{query}"), &app.admin_token)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()
}

fn cell(matrix: &Value, admin: &str, service: &str) -> Value {
    matrix["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["administration"] == admin))
        .map(|r| r["cells"][service].clone())
        .unwrap_or(Value::Null)
}

async fn progress(app: &TestApp, by: &str) -> Value {
    let response = app
        .get(
            &format!("/api/v1/rollout/progress?by={by}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()
}

async fn planning_a_district_creates_one_entry_per_administration(app: TestApp) {
    import_administrations(&app).await;
    let (accountable, _) = app.user("member").create().await;
    app.service("wohngeld")
        .name("Wohngeld")
        .accountable(&accountable)
        .create()
        .await;
    app.post(
        "/api/v1/services/wohngeld/waves",
        &app.admin_token,
        &json!({"name": "Welle 1", "planned_start": "2027-01-04", "planned_go_live": "2027-03-01"}),
    )
    .await;
    let (_, member) = app.user("member").create().await;
    let planned = plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKA"}),
    )
    .await;
    assert_eq!(planned.status, 200, "{}", planned.text);
    assert_eq!(planned.json()["created"], json!(ALPHA), "{}", planned.text);
    let events = rollout_events(&app).await;
    assert_eq!(events.len(), 4, "one event per entry");
    assert!(events.iter().all(|e| e["kind"] == "created"));
    let keys: Vec<&str> = events
        .iter()
        .filter_map(|e| e["entity_key"].as_str())
        .collect();
    assert!(keys.contains(&"wohngeld/A-EINS"), "{keys:?}");

    let entry = app
        .get("/api/v1/rollout/wohngeld/a-eins", &app.admin_token)
        .await;
    assert_eq!(entry.status, 200, "{}", entry.text);
    assert_eq!(entry.header("etag").as_deref(), Some("\"1\""));
    let entry = entry.json();
    assert_eq!(
        (
            entry["status"].clone(),
            entry["wave"].clone(),
            entry["planned_go_live"].clone(),
            entry["district"].clone(),
        ),
        (
            json!("planned"),
            json!("Welle 1"),
            json!("2027-03-01"),
            json!("LKA")
        ),
        "the wave's go-live applies: {entry}"
    );
    assert_eq!(entry["checklist"].as_array().map(Vec::len), Some(9));
    assert_eq!(
        (
            entry["owner_id"].clone(),
            entry["effective_owner_id"].clone()
        ),
        (Value::Null, accountable["id"].clone()),
        "the service's accountable answers for an entry without an owner"
    );

    // Planning again (or all) leaves existing entries alone, in one transaction.
    let again = plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "all": true}),
    )
    .await
    .json();
    assert_eq!(again["existing"], json!(ALPHA), "{again}");
    assert_eq!(
        again["created"].as_array().map(Vec::len),
        Some(2),
        "{again}"
    );
    let wave = app
        .get("/api/v1/services/wohngeld/waves", &app.admin_token)
        .await
        .json();
    assert_eq!(wave[0]["entries"], 6, "{wave}");
    let moved = app
        .request(Method::PATCH, "/api/v1/services/wohngeld/waves/Welle%201")
        .token(&member)
        .header("If-Match", "\"1\"")
        .json(&json!({"planned_go_live": "2027-04-01"}))
        .send()
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    assert_eq!(moved.header("etag").as_deref(), Some("\"2\""));
    let entry = app
        .get("/api/v1/rollout/wohngeld/A-EINS", &app.admin_token)
        .await
        .json();
    assert_eq!(
        entry["planned_go_live"], "2027-04-01",
        "the wave's date moves its entries"
    );
    app.post(
        "/api/v1/services/wohngeld/waves",
        &member,
        &json!({"name": "Welle 1"}),
    )
    .await
    .problem(409);
    app.post(
        "/api/v1/services/wohngeld/waves",
        &member,
        &json!({"name": "Welle 2", "planned_start": "2027-05-01", "planned_go_live": "2027-04-01"}),
    )
    .await
    .names_field(422, "planned_go_live");

    // Bad plans name their field and write nothing.
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 9", "district": "LKB"}),
    )
    .await
    .names_field(422, "wave");
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKB", "all": true}),
    )
    .await
    .names_field(422, "administrations");
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "administrations": ["A-VIER", "NOPE"]}),
    )
    .await
    .names_field(422, "administrations[1]");
    assert_eq!(rollout_events(&app).await.len(), 6);
    let (_, viewer) = app.user("viewer").create().await;
    plan(
        &app,
        &viewer,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKB"}),
    )
    .await
    .problem(403);
    let anonymous = app
        .request(Method::POST, "/api/v1/rollout/plan")
        .json(&json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKB"}))
        .send()
        .await;
    assert_eq!(anonymous.status, 401);
}

async fn a_status_change_is_an_event_and_shows_in_matrix_and_progress(app: TestApp) {
    setup(&app).await;
    let (_, member) = app.user("member").create().await;
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKA"}),
    )
    .await;
    let stale = app
        .request(Method::PATCH, "/api/v1/rollout/wohngeld/A-EINS")
        .token(&member)
        .header("If-Match", "\"7\"")
        .json(&json!({"status": "preparing"}))
        .send()
        .await;
    assert_eq!(stale.problem(412)["current_version"], 1);
    let changed = app
        .request(Method::PATCH, "/api/v1/rollout/wohngeld/A-EINS")
        .token(&member)
        .header("If-Match", "\"1\"")
        .json(
            &json!({"status": "preparing", "blocker": "AVV liegt beim Amtsausschuss",
                      "checklist": {"dpa": true}}),
        )
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.header("etag").as_deref(), Some("\"2\""));
    let entry = changed.json();
    assert_eq!(entry["blocked"], true);
    assert_eq!(entry["checklist"][0]["done"], true);
    assert!(entry["checklist"][0]["done_by"].is_i64(), "{entry}");

    let events = rollout_events(&app).await;
    let last = events.last().cloned().unwrap_or_default();
    assert_eq!(
        (last["kind"].clone(), last["entity_key"].clone()),
        (json!("updated"), json!("wohngeld/A-EINS"))
    );
    assert_eq!(
        last["data"]["status"],
        json!({"old": "planned", "new": "preparing"})
    );

    let m = matrix(&app, "").await;
    assert_eq!(cell(&m, "A-EINS", "wohngeld")["status"], "preparing");
    assert_eq!(cell(&m, "A-EINS", "wohngeld")["blocked"], true);
    assert_eq!(cell(&m, "A-DREI", "wohngeld")["status"], "planned");
    assert_eq!(cell(&m, "A-VIER", "wohngeld"), Value::Null);
    assert_eq!(
        m["services"],
        json!([{"key": "wohngeld", "name": "Wohngeld"}])
    );
    let districts: Vec<Value> = m["rows"]
        .as_array()
        .map(|rows| rows.iter().map(|r| r["district"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(
        districts,
        [
            json!(null),
            json!("LKA"),
            json!("LKA"),
            json!("LKA"),
            json!("LKA"),
            json!("LKB")
        ],
        "the kreisfreie Städte first, then by district"
    );
    let filtered = matrix(&app, "?status=preparing").await;
    assert_eq!(filtered["rows"].as_array().map(Vec::len), Some(1));
    let by_district = matrix(&app, "?district=LKB&kind=amt").await;
    assert_eq!(by_district["rows"][0]["administration"], "A-VIER");

    let p = progress(&app, "service").await;
    let group = &p["groups"][0];
    assert_eq!(group["key"], "wohngeld");
    assert_eq!(
        (
            group["counts"]["planned"].clone(),
            group["counts"]["preparing"].clone(),
            group["blocked"].clone(),
            group["total"].clone(),
        ),
        (json!(3), json!(1), json!(1), json!(4)),
        "{p}"
    );
    let p = progress(&app, "district").await;
    assert_eq!(p["groups"][0]["key"], "LKA", "{p}");
    let p = progress(&app, "wave").await;
    assert_eq!(p["groups"][0]["key"], "wohngeld/Welle 1", "{p}");
    app.get("/api/v1/rollout/progress?by=colour", &app.admin_token)
        .await
        .names_field(400, "by");

    // The service's page sums it up, the administration's lists it.
    let service = app
        .get("/api/v1/services/wohngeld", &app.admin_token)
        .await
        .json();
    assert_eq!(service["rollout"]["total"], 4, "{service}");
    assert_eq!(service["rollout"]["waves"], json!(["Welle 1"]));
    let amt = app
        .get("/api/v1/organizations/A-EINS", &app.admin_token)
        .await
        .json();
    assert_eq!(
        amt["rollout"]["in_progress"][0]["status"], "preparing",
        "{amt}"
    );
    assert_eq!(amt["kind"], "amt");
    assert_eq!(amt["parent"], "LKA");
    assert_eq!(amt["members"], json!(["Dorf Eins", "Dorf Zwei"]));

    // A viewer reads but does not write.
    let (_, viewer) = app.user("viewer").create().await;
    patch(&app, &viewer, "A-EINS", json!({"status": "testing"}))
        .await
        .problem(403);
    assert_eq!(app.get("/api/v1/rollout/matrix", &viewer).await.status, 200);
    patch(&app, &member, "A-EINS", json!({"status": "bogus"}))
        .await
        .names_field(422, "status");
}

async fn live_needs_the_checklist_or_a_managers_recorded_override(app: TestApp) {
    setup(&app).await;
    let (_, member) = app.user("member").create().await;
    let (_, manager) = app.user("manager").create().await;
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "administrations": ["A-EINS", "A-DREI"]}),
    )
    .await;
    let refused = patch(&app, &member, "A-EINS", json!({"status": "live"})).await;
    let problem = refused.names_field(422, "status");
    assert!(problem.to_string().contains("dvdv"), "{problem}");
    patch(
        &app,
        &member,
        "A-EINS",
        json!({"status": "live", "override": "Landrat wünscht Start"}),
    )
    .await
    .problem(403);
    let before = rollout_events(&app).await.len();
    let overridden = patch(
        &app,
        &manager,
        "A-EINS",
        json!({"status": "live", "override": "Pilot: Produktionstest folgt", "checklist": {"dpa": true}}),
    )
    .await;
    assert_eq!(overridden.status, 200, "{}", overridden.text);
    let entry = overridden.json();
    assert_eq!(entry["status"], "live");
    assert!(entry["actual_go_live"].is_string(), "{entry}");
    let events = rollout_events(&app).await;
    assert_eq!(events.len(), before + 1);
    let recorded = &events[before]["data"]["override"];
    assert_eq!(
        recorded["reason"], "Pilot: Produktionstest folgt",
        "{recorded}"
    );
    assert!(
        recorded["open_steps"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("dvdv")) && !s.contains(&json!("dpa"))),
        "{recorded}"
    );

    // Done properly: every mandatory step ticked, no override needed.
    let ticked = patch(
        &app,
        &member,
        "A-DREI",
        json!({"checklist": checklist_done(), "status": "live", "actual_go_live": "2027-02-15"}),
    )
    .await;
    assert_eq!(ticked.status, 200, "{}", ticked.text);
    assert_eq!(ticked.json()["actual_go_live"], "2027-02-15");

    // A withdrawal needs a reason, which the history keeps.
    patch(&app, &member, "A-DREI", json!({"status": "paused"}))
        .await
        .names_field(422, "reason");
    let paused = patch(
        &app,
        &member,
        "A-DREI",
        json!({"status": "paused", "reason": "Fachverfahren gestört"}),
    )
    .await;
    assert_eq!(paused.status, 200, "{}", paused.text);
    assert_eq!(paused.json()["actual_go_live"], Value::Null);
    let events = rollout_events(&app).await;
    assert_eq!(
        events.last().map(|e| e["data"]["reason"].clone()),
        Some(json!("Fachverfahren gestört"))
    );
}

async fn the_live_share_leaves_out_what_does_not_apply(app: TestApp) {
    setup(&app).await;
    let (_, member) = app.user("member").create().await;
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKA"}),
    )
    .await;
    for (admin, body) in [
        (
            "A-EINS",
            json!({"checklist": checklist_done(), "status": "live"}),
        ),
        (
            "A-DREI",
            json!({"checklist": checklist_done(), "status": "live"}),
        ),
        (
            "GEM-ZWEI",
            json!({"status": "testing", "planned_go_live": "2020-01-01"}),
        ),
        ("A-FORMEL", json!({"status": "not_applicable"})),
    ] {
        let response = patch(&app, &member, admin, body).await;
        assert_eq!(response.status, 200, "{admin}: {}", response.text);
    }
    let p = progress(&app, "service").await;
    let group = &p["groups"][0];
    let share = group["live_share"].as_f64().unwrap_or_default();
    assert!((share - 2.0 / 3.0).abs() < 1e-9, "{group}");
    assert_eq!(
        (
            group["total"].clone(),
            group["applicable"].clone(),
            group["live"].clone(),
            group["overdue"].clone(),
            group["live_everywhere"].clone(),
        ),
        (json!(4), json!(3), json!(2), json!(1), json!(false)),
        "{group}"
    );
    assert_eq!(p["services_live_everywhere"], json!([]));
    let response = patch(
        &app,
        &member,
        "GEM-ZWEI",
        json!({"checklist": checklist_done(), "status": "live"}),
    )
    .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let p = progress(&app, "service").await;
    assert_eq!(p["groups"][0]["live_everywhere"], true, "{p}");
    assert_eq!(p["services_live_everywhere"], json!(["wohngeld"]));
    let service = app
        .get("/api/v1/services/wohngeld", &app.admin_token)
        .await
        .json();
    assert_eq!(service["rollout"]["live_everywhere"], true, "{service}");
}

async fn download_csv(app: &TestApp) -> String {
    let response = app
        .request(Method::GET, "/api/v1/rollout/matrix")
        .token(&app.admin_token)
        .header("Accept", "text/csv")
        .send()
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/csv")),
        "{:?}",
        response.headers
    );
    response.text
}

async fn upload_csv(app: &TestApp, token: &str, body: &str) -> Response {
    app.request(Method::POST, "/api/v1/rollout/matrix")
        .token(token)
        .raw("text/csv", body.as_bytes().to_vec())
        .send()
        .await
}

async fn versions(app: &TestApp) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for admin in ALPHA {
        let entry = app
            .get(
                &format!("/api/v1/rollout/wohngeld/{admin}"),
                &app.admin_token,
            )
            .await
            .json();
        out.push((admin.to_string(), entry["version"].as_i64().unwrap_or(-1)));
    }
    out
}

async fn the_matrix_csv_round_trips_and_changes_exactly_the_edited_cells(app: TestApp) {
    setup(&app).await;
    let (_, member) = app.user("member").create().await;
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKA"}),
    )
    .await;
    let csv = download_csv(&app).await;
    assert!(csv.starts_with('\u{feff}'), "UTF-8 BOM");
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], "administration;name;district;wohngeld");
    assert!(
        lines.contains(&"A-FORMEL;'=Amt Formel;LKA;planned"),
        "a formula is neutralized: {lines:?}"
    );
    assert!(lines.contains(&"A-VIER;Amt Vier;LKB;"), "{lines:?}");

    // Unchanged, the file changes nothing.
    let same = upload_csv(&app, &member, &csv).await;
    assert_eq!(same.status, 200, "{}", same.text);
    assert_eq!(same.json()["updated"], 0, "{}", same.text);
    let before_versions = versions(&app).await;
    let before = rollout_events(&app).await.len();

    let edited = csv
        .replace(
            "A-EINS;Amt Eins;LKA;planned",
            "A-EINS;Amt Eins;LKA;preparing",
        )
        .replace(
            "GEM-ZWEI;Gemeinde Zwei;LKA;planned",
            "GEM-ZWEI;Gemeinde Zwei;LKA;testing",
        );
    let uploaded = upload_csv(&app, &member, &edited).await;
    assert_eq!(uploaded.status, 200, "{}", uploaded.text);
    let report = uploaded.json();
    assert_eq!(
        (report["updated"].clone(), report["created"].clone()),
        (json!(2), json!(0)),
        "{report}"
    );
    let events = rollout_events(&app).await;
    assert_eq!(events.len(), before + 2, "one event per changed entry");
    let keys: Vec<Value> = events[before..]
        .iter()
        .map(|e| e["entity_key"].clone())
        .collect();
    assert_eq!(keys, [json!("wohngeld/A-EINS"), json!("wohngeld/GEM-ZWEI")]);
    let after_versions = versions(&app).await;
    for (before, after) in before_versions.iter().zip(&after_versions) {
        let edited = before.0 == "A-EINS" || before.0 == "GEM-ZWEI";
        assert_eq!(after.1, before.1 + i64::from(edited), "{after:?}");
    }
    let m = matrix(&app, "").await;
    assert_eq!(cell(&m, "GEM-ZWEI", "wohngeld")["status"], "testing");
    let (_, viewer) = app.user("viewer").create().await;
    upload_csv(&app, &viewer, &edited).await.problem(403);
}

async fn a_bad_cell_names_row_and_column_and_writes_nothing(app: TestApp) {
    setup(&app).await;
    app.service("bauantrag").name("Bauantrag").create().await;
    let (_, member) = app.user("member").create().await;
    plan(
        &app,
        &member,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKA"}),
    )
    .await;
    let before = rollout_events(&app).await.len();
    let body = "administration;name;district;wohngeld;bauantrag\r\n\
        A-DREI;Amt Drei;LKA;preparing;\r\n\
        A-EINS;Amt Eins;LKA;fertig;\r\n\
        NIRGENDS;Nirgends;LKA;planned;\r\n\
        GEM-ZWEI;Gemeinde Zwei;LKA;live;planned\r\n";
    let problem = upload_csv(&app, &member, body).await.problem(422);
    let fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        fields,
        [
            "row 3: wohngeld",
            "row 4: administration",
            "row 5: wohngeld"
        ],
        "{problem}"
    );
    assert!(problem.to_string().contains("fertig"), "{problem}");
    assert_eq!(
        rollout_events(&app).await.len(),
        before,
        "the good cells of the file were not written either"
    );
    let m = matrix(&app, "").await;
    assert_eq!(cell(&m, "A-DREI", "wohngeld")["status"], "planned");
    assert_eq!(cell(&m, "GEM-ZWEI", "bauantrag"), Value::Null);
    let header = upload_csv(
        &app,
        &member,
        "administration;gibtsnicht\r\nA-DREI;planned\r\n",
    )
    .await
    .problem(422);
    assert_eq!(
        header["errors"][0]["field"], "row 1: gibtsnicht",
        "{header}"
    );
    app.request(Method::POST, "/api/v1/rollout/matrix")
        .token(&member)
        .raw("application/json", b"[]".to_vec())
        .send()
        .await
        .problem(415);
}

async fn a_requester_reads_only_their_own_administrations_row(app: TestApp) {
    setup(&app).await;
    plan(
        &app,
        &app.admin_token,
        json!({"service": "wohngeld", "wave": "Welle 1", "district": "LKA"}),
    )
    .await;
    let amt = app
        .get("/api/v1/organizations/A-EINS", &app.admin_token)
        .await
        .json();
    let (_, requester) = app.user("requester").organization(&amt).create().await;
    let m = app.get("/api/v1/rollout/matrix", &requester).await;
    assert_eq!(m.status, 200, "{}", m.text);
    let m = m.json();
    let rows: Vec<Value> = m["rows"]
        .as_array()
        .map(|r| r.iter().map(|r| r["administration"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(rows, [json!("A-EINS")]);
    let csv = app
        .request(Method::GET, "/api/v1/rollout/matrix?format=csv")
        .token(&requester)
        .send()
        .await;
    assert_eq!(csv.text.matches("\r\n").count(), 2, "{}", csv.text);
    assert_eq!(
        app.get("/api/v1/rollout/wohngeld/A-EINS", &requester)
            .await
            .status,
        200
    );
    app.get("/api/v1/rollout/wohngeld/A-DREI", &requester)
        .await
        .problem(404);
    app.get("/api/v1/rollout/progress", &requester)
        .await
        .problem(403);
    patch(&app, &requester, "A-EINS", json!({"status": "preparing"}))
        .await
        .problem(403);
    let listed = app.get("/api/v1/rollout?limit=2", &requester).await.json();
    assert_eq!(
        listed["items"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert_eq!(listed["items"][0]["administration"], "A-EINS");
    let page = app
        .get("/api/v1/rollout?limit=2&service=wohngeld", &app.admin_token)
        .await;
    assert!(page.header("link").is_some(), "four entries, pages of two");
    assert_eq!(page.json()["items"].as_array().map(Vec::len), Some(2));
    // Without an organization, no row at all.
    let (_, stranger) = app.user("requester").create().await;
    let m = app.get("/api/v1/rollout/matrix", &stranger).await.json();
    assert_eq!(m["rows"], json!([]));
    let anonymous = app
        .request(Method::GET, "/api/v1/rollout/matrix")
        .send()
        .await;
    assert_eq!(anonymous.status, 401);
}

async fn import_file(app: &TestApp, path: &str) -> Value {
    let body = std::fs::read(path).expect("reference file");
    let response = app
        .request(Method::POST, "/api/v1/organizations/import")
        .token(&app.admin_token)
        .raw("text/csv", body)
        .send()
        .await;
    assert_eq!(response.status, 200, "{path}: {}", response.text);
    response.json()
}

async fn the_import_of_the_states_administrations_is_idempotent(app: TestApp) {
    let districts = import_file(&app, "data/reference/mv-districts.csv").await;
    assert_eq!(districts["created"], 6, "{districts}");
    let administrations =
        import_file(&app, "data/reference/mv-municipal-administrations.csv").await;
    assert_eq!(administrations["created"], 116);
    for path in [
        "data/reference/mv-districts.csv",
        "data/reference/mv-municipal-administrations.csv",
    ] {
        let again = import_file(&app, path).await;
        assert_eq!(
            (again["created"].clone(), again["updated"].clone()),
            (json!(0), json!(0)),
            "{path}: {again}"
        );
    }
    let crivitz = app
        .get("/api/v1/organizations/A-CRIVITZ", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (
            crivitz["kind"].clone(),
            crivitz["parent"].clone(),
            crivitz["official_key"].clone(),
            crivitz["seat"].clone(),
        ),
        (
            json!("amt"),
            json!("LUP"),
            json!("130765668"),
            json!("Stadt Crivitz")
        ),
        "{crivitz}"
    );
    assert_eq!(crivitz["members"].as_array().map(Vec::len), Some(17));
    let rostock = app
        .get("/api/v1/organizations/HRO", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (rostock["kind"].clone(), rostock["parent"].clone()),
        (json!("city"), json!(null))
    );
    let lup = app
        .get("/api/v1/organizations/LUP", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (lup["kind"].clone(), lup["official_key"].clone()),
        (json!("district"), json!("13076"))
    );
    let amts = app
        .get("/api/v1/organizations?kind=amt&limit=500", &app.admin_token)
        .await
        .json();
    assert_eq!(amts["items"].as_array().map(Vec::len), Some(76));
    // A wrong district is a problem of its row; nothing is written.
    let bad = "short_name,name,kind,district\nX-1,Amt X,amt,Atlantis\n";
    let problem = app
        .request(Method::POST, "/api/v1/organizations/import")
        .token(&app.admin_token)
        .raw("text/csv", bad.as_bytes().to_vec())
        .send()
        .await
        .names_field(422, "line 2: parent");
    assert!(problem.to_string().contains("Atlantis"), "{problem}");
    app.get("/api/v1/organizations/X-1", &app.admin_token)
        .await
        .problem(404);
}

async fn an_item_blocks_entries_seen_from_both_ends(app: TestApp) {
    setup(&app).await;
    let lead = app.user("manager").create().await.0;
    app.board("OPS").lead(&lead).create().await;
    let item = app
        .item("OPS")
        .task()
        .title("DVDV-Eintrag fehlt")
        .create()
        .await;
    let key = item["key"].as_str().unwrap_or_default().to_string();
    let created = app
        .put(
            "/api/v1/rollout/wohngeld/A-VIER",
            &app.admin_token,
            &json!({"status": "preparing", "blocked_by": [key], "wave": "Welle 1"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(
        created.header("location").as_deref(),
        Some("/api/v1/rollout/wohngeld/A-VIER")
    );
    assert_eq!(created.json()["blocked_by"], json!([key]));
    let blocks = app
        .get(&format!("/api/v1/items/{key}/rollout"), &app.admin_token)
        .await;
    assert_eq!(blocks.status, 200, "{}", blocks.text);
    assert_eq!(
        blocks.json(),
        json!([{"service": "wohngeld", "administration": "A-VIER", "status": "preparing"}])
    );
    // PUT again changes like PATCH; an unknown item is a field error.
    let again = app
        .put(
            "/api/v1/rollout/wohngeld/A-VIER",
            &app.admin_token,
            &json!({"blocked_by": []}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.json()["blocked"], false);
    app.put(
        "/api/v1/rollout/wohngeld/A-VIER",
        &app.admin_token,
        &json!({"blocked_by": ["OPS-999"]}),
    )
    .await
    .names_field(422, "blocked_by");
    app.put("/api/v1/rollout/wohngeld/LKA", &app.admin_token, &json!({}))
        .await
        .problem(404);
    app.patch(
        "/api/v1/rollout/wohngeld/A-EINS",
        &app.admin_token,
        &json!({"status": "testing"}),
    )
    .await
    .problem(404);
    // What the rollout refers to is not deleted under it.
    let amt = app
        .delete("/api/v1/organizations/A-VIER", &app.admin_token)
        .await;
    assert!(
        amt.problem(409).to_string().contains("rollout"),
        "{}",
        amt.text
    );
    let district = app
        .delete("/api/v1/organizations/LKB", &app.admin_token)
        .await;
    assert!(
        district.problem(409).to_string().contains("district"),
        "{}",
        district.text
    );
    let service = app
        .delete("/api/v1/services/wohngeld", &app.admin_token)
        .await;
    assert!(
        service.problem(409).to_string().contains("rollout"),
        "{}",
        service.text
    );
}

both_engines!(the_demo_matrix_shows_the_state_at_a_glance);

/// With the demo data: every municipal administration a row, six services, a spread of
/// statuses, some blocked by demo items; CSV and SVG render; a stakeholder sees their row.
async fn the_demo_matrix_shows_the_state_at_a_glance(app: TestApp) {
    let summary = app
        .state
        .db
        .run(opsboard::workflows::demo::seed)
        .await
        .expect("demo data loads");
    assert!(summary.rollout_entries > 300, "{}", summary.rollout_entries);
    let m = matrix(&app, "").await;
    assert_eq!(m["rows"].as_array().map(Vec::len), Some(116));
    assert_eq!(m["services"].as_array().map(Vec::len), Some(6));
    let p = progress(&app, "service").await;
    let total = &p["total"];
    for status in [
        "planned",
        "preparing",
        "technical_ready",
        "testing",
        "live",
        "paused",
        "not_applicable",
    ] {
        assert!(
            total["counts"][status].as_i64().unwrap_or(0) > 0,
            "{status}: {total}"
        );
    }
    assert!(total["blocked"].as_i64().unwrap_or(0) >= 6, "{total}");
    assert!(total["overdue"].as_i64().unwrap_or(0) > 0, "{total}");
    let blocks = app
        .get("/api/v1/items/OPS-3/rollout", &app.admin_token)
        .await
        .json();
    assert_eq!(blocks.as_array().map(Vec::len), Some(2), "{blocks}");
    let svg = app
        .request(Method::GET, "/api/v1/rollout/matrix")
        .token(&app.admin_token)
        .header("Accept", "image/svg+xml")
        .send()
        .await;
    assert_eq!(svg.status, 200);
    assert!(svg.text.starts_with("<svg") && svg.text.contains("Landkreis Ludwigslust-Parchim"));
    assert!(!svg.text.contains("<script"), "static");
    let csv = download_csv(&app).await;
    assert_eq!(csv.matches("\r\n").count(), 117, "header and 116 rows");
    assert!(csv.contains("Mecklenburgische Seenplatte") || csv.contains(";MSE;"));
    let claudia = app
        .login(
            "claudia.behrens@example.org",
            opsboard::workflows::demo::DEMO_PASSWORD,
        )
        .await;
    let own = app.get("/api/v1/rollout/matrix", &claudia).await.json();
    assert_eq!(own["rows"].as_array().map(Vec::len), Some(1), "{own}");
    assert_eq!(own["rows"][0]["administration"], "HRO");
}

/// Parallel requests at the bound server: eight PUTs of one entry that does not exist yet are
/// serialized by the service's lock (on PostgreSQL a row lock), so the entry is created once
/// and changed seven times, nobody gets an error; eight PATCHes sent with the same `If-Match`
/// change it once, the others get 412 and change nothing.
async fn concurrent_writes_of_one_entry_create_it_once_and_lose_nothing(app: TestApp) {
    setup(&app).await;
    let path = "/api/v1/rollout/wohngeld/A-EINS";
    let answers = futures_util::future::join_all((0..8).map(|n| {
        let app = &app;
        async move {
            app.put(
                path,
                &app.admin_token,
                &json!({"notes": format!("Notiz {n}")}),
            )
            .await
        }
    }))
    .await;
    let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 200, 200, 201],
        "{answers:?}"
    );
    let entry = app.get(path, &app.admin_token).await;
    assert_eq!(entry.status, 200, "{}", entry.text);
    let entry = entry.json();
    assert_eq!(entry["version"], 8, "{entry}");
    let events: Vec<Value> = rollout_events(&app)
        .await
        .into_iter()
        .filter(|e| e["entity_key"] == "wohngeld/A-EINS")
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["kind"].as_str()).collect();
    assert_eq!(kinds.len(), 8, "{kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "created").count(),
        1,
        "{kinds:?}"
    );

    let answers = futures_util::future::join_all((0..8).map(|n| {
        let app = &app;
        async move {
            app.request(Method::PATCH, path)
                .token(&app.admin_token)
                .header("If-Match", "\"8\"")
                .json(&json!({"status": "preparing", "notes": format!("Gleichzeitig {n}")}))
                .send()
                .await
        }
    }))
    .await;
    let won: Vec<&Response> = answers.iter().filter(|a| a.status == 200).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for lost in answers.iter().filter(|a| a.status != 200) {
        lost.problem(412);
    }
    let entry = app.get(path, &app.admin_token).await.json();
    assert_eq!(entry["version"], 9, "{entry}");
    assert_eq!(entry["notes"], won[0].json()["notes"], "{entry}");
    assert_eq!(entry["status"], "preparing");
}
