//! The catalogue: organizations, online services with filters, RACI templates.

use actix_web::http::Method;
use diesel::prelude::*;
use opsboard::db::schema::{service_raci, services};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    organizations_are_unique_by_short_name_and_guarded_on_delete,
    services_crud_with_validation_naming_fields,
    services_filter_search_and_sort_with_cursor,
    raci_template_has_exactly_one_accountable,
    concurrent_raci_puts_with_the_same_if_match,
    deactivating_an_accountable_person_needs_a_replacement,
);

async fn org(app: &TestApp, short_name: &str, kind: &str) -> Value {
    let response = app
        .post(
            "/api/v1/organizations",
            &app.admin_token,
            &json!({"short_name": short_name, "name": format!("Org {short_name}"), "kind": kind}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    response.json()
}

async fn service(app: &TestApp, body: Value) -> Value {
    let response = app.post("/api/v1/services", &app.admin_token, &body).await;
    assert_eq!(response.status, 201, "{}", response.text);
    response.json()
}

fn keys(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["key"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn organizations_are_unique_by_short_name_and_guarded_on_delete(app: TestApp) {
    let dvz = org(&app, "DVZ", "it_operator").await;
    assert_eq!(dvz["kind"], "it_operator");
    app.post(
        "/api/v1/organizations",
        &app.admin_token,
        &json!({"short_name": "dvz", "name": "Twin", "kind": "vendor"}),
    )
    .await
    .problem(409);
    app.post(
        "/api/v1/organizations",
        &app.admin_token,
        &json!({"short_name": "a b", "name": "X", "kind": "ministry"}),
    )
    .await
    .names_field(422, "short_name");
    app.post(
        "/api/v1/organizations",
        &app.admin_token,
        &json!({"short_name": "X", "name": "X", "kind": "club"}),
    )
    .await
    .names_field(422, "kind");
    let fetched = app.get("/api/v1/organizations/dvz", &app.admin_token).await;
    assert_eq!(fetched.json()["short_name"], "DVZ");
    let changed = app
        .request(Method::PATCH, "/api/v1/organizations/DVZ")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"contact_email": "Service@DVZ.example.org"}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.json()["contact_email"], "service@dvz.example.org");
    assert_eq!(changed.json()["version"], 2);
    org(&app, "FM", "ministry").await;
    let ministries = app
        .get("/api/v1/organizations?kind=ministry", &app.admin_token)
        .await
        .json();
    assert_eq!(ministries["items"].as_array().map(Vec::len), Some(1));
    let (_, viewer) = app.user("viewer").create().await;
    app.post(
        "/api/v1/organizations",
        &viewer,
        &json!({"short_name": "V", "name": "V", "kind": "other"}),
    )
    .await
    .problem(403);
    // Referenced by a service: 409; once the service is gone, the delete works.
    service(
        &app,
        json!({"key": "wohngeld", "name": "Wohngeld", "kind": "own", "operator": "dvz"}),
    )
    .await;
    app.request(Method::DELETE, "/api/v1/organizations/DVZ")
        .token(&app.admin_token)
        .send()
        .await
        .problem(409);
    let deleted = app
        .request(Method::DELETE, "/api/v1/services/wohngeld")
        .token(&app.admin_token)
        .send()
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.request(Method::DELETE, "/api/v1/organizations/DVZ")
            .token(&app.admin_token)
            .send()
            .await
            .status,
        204
    );
    app.get("/api/v1/organizations/DVZ", &app.admin_token)
        .await
        .problem(404);
}

async fn services_crud_with_validation_naming_fields(app: TestApp) {
    org(&app, "DVZ", "it_operator").await;
    org(&app, "FM", "ministry").await;
    let created = service(
        &app,
        json!({"key": "baugenehmigung", "name": "Bauvorbescheid und Baugenehmigung", "kind": "efa", "lifecycle": "productive",
               "maturity_level": 3, "ozg_id": "10519", "leika_keys": ["99010003001000"], "topic": "Bauen & Wohnen",
               "operator": "dvz", "responsible": "FM", "tags": ["Bauen", "efa"], "go_live_date": "2023-05-02"}),
    )
    .await;
    assert_eq!(created["operator"], "DVZ");
    assert_eq!(created["tags"], json!(["bauen", "efa"]));
    assert_eq!(created["version"], 1);
    let bad = app
        .post("/api/v1/services", &app.admin_token, &json!({"key": "Bad Key", "name": "", "kind": "efa", "maturity_level": 7,
               "ozg_id": "123", "leika_keys": ["12345678901234"], "operator": "NOPE", "url": "ftp://x", "tags": ["ok", "not ok"]}))
        .await;
    let problem = bad.problem(422);
    let mut fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    fields.sort();
    assert_eq!(
        fields,
        [
            "key",
            "leika_keys[0]",
            "maturity_level",
            "name",
            "operator",
            "ozg_id",
            "tags[1]",
            "url"
        ]
    );
    app.post(
        "/api/v1/services",
        &app.admin_token,
        &json!({"key": "baugenehmigung", "name": "Dup", "kind": "own"}),
    )
    .await
    .problem(409);
    // The key cannot be changed: a PATCH naming it is refused, naming the field.
    app.patch(
        "/api/v1/services/baugenehmigung",
        &app.admin_token,
        &json!({"key": "other"}),
    )
    .await
    .names_field(422, "key");
    let retired = app
        .request(Method::PATCH, "/api/v1/services/baugenehmigung")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"lifecycle": "retired", "operator": null, "tags": ["archiv"]}))
        .send()
        .await;
    assert_eq!(retired.status, 200, "{}", retired.text);
    let retired = retired.json();
    assert_eq!(retired["lifecycle"], "retired");
    assert!(retired["operator"].is_null());
    assert_eq!(retired["tags"], json!(["archiv"]));
    assert_eq!(
        retired["leika_keys"],
        json!(["99010003001000"]),
        "untouched fields stay"
    );
    assert_eq!(retired["version"], 2);
    // The same PATCH again changes nothing and keeps the version.
    let again = app
        .patch(
            "/api/v1/services/baugenehmigung",
            &app.admin_token,
            &json!({"lifecycle": "retired"}),
        )
        .await;
    assert_eq!(again.json()["version"], 2);
    app.request(Method::PATCH, "/api/v1/services/baugenehmigung")
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"name": "X"}))
        .send()
        .await
        .problem(412);
    let (_, viewer) = app.user("viewer").create().await;
    assert_eq!(
        app.get("/api/v1/services/baugenehmigung", &viewer)
            .await
            .status,
        200
    );
    app.patch(
        "/api/v1/services/baugenehmigung",
        &viewer,
        &json!({"name": "X"}),
    )
    .await
    .problem(403);
    app.request(Method::DELETE, "/api/v1/services/baugenehmigung")
        .token(&viewer)
        .send()
        .await
        .problem(403);
    app.get("/api/v1/services/nope", &viewer).await.problem(404);
}

async fn services_filter_search_and_sort_with_cursor(app: TestApp) {
    org(&app, "DVZ", "it_operator").await;
    org(&app, "eGo-MV", "it_operator").await;
    org(&app, "FM", "ministry").await;
    let rows = [
        (
            "wohngeld",
            "Wohngeld",
            "own",
            "productive",
            "DVZ",
            "soziales",
            "99107001000000",
        ),
        (
            "elterngeld",
            "Elterngeld Digital",
            "efa",
            "productive",
            "eGo-MV",
            "familie",
            "99031001000000",
        ),
        (
            "kita-platz",
            "Kita-Platz finden",
            "own",
            "pilot",
            "eGo-MV",
            "familie",
            "99056005000000",
        ),
        (
            "hundesteuer",
            "Hundesteuer anmelden",
            "reuse",
            "planned",
            "DVZ",
            "steuern",
            "99017005000000",
        ),
        (
            "bafoeg",
            "BAföG beantragen",
            "efa",
            "productive",
            "DVZ",
            "bildung",
            "99004001000000",
        ),
    ];
    for (key, name, kind, lifecycle, operator, tag, leika) in rows {
        service(&app, json!({"key": key, "name": name, "kind": kind, "lifecycle": lifecycle, "operator": operator,
                             "responsible": "FM", "tags": [tag], "leika_keys": [leika]})).await;
    }
    let get = |q: &str| {
        let path = format!("/api/v1/services?{q}");
        let app = &app;
        async move { keys(&app.get(&path, &app.admin_token).await.json()) }
    };
    assert_eq!(
        get("").await,
        [
            "bafoeg",
            "elterngeld",
            "hundesteuer",
            "kita-platz",
            "wohngeld"
        ]
    );
    assert_eq!(
        get("lifecycle=productive").await,
        ["bafoeg", "elterngeld", "wohngeld"]
    );
    assert_eq!(get("kind=efa").await, ["bafoeg", "elterngeld"]);
    assert_eq!(get("operator=ego-mv").await, ["elterngeld", "kita-platz"]);
    assert_eq!(
        get("responsible=FM&tag=familie").await,
        ["elterngeld", "kita-platz"]
    );
    assert_eq!(get("q=GELD").await, ["elterngeld", "wohngeld"]);
    assert_eq!(get("q=99017005").await, ["hundesteuer"]);
    assert_eq!(get("operator=NOBODY").await, Vec::<String>::new());
    assert_eq!(
        get("sort=-key").await,
        [
            "wohngeld",
            "kita-platz",
            "hundesteuer",
            "elterngeld",
            "bafoeg"
        ]
    );
    // Sorted by name, descending, two per page, following the cursor.
    let mut seen = Vec::new();
    let mut path = "/api/v1/services?sort=-name&limit=2".to_string();
    loop {
        let response = app.get(&path, &app.admin_token).await;
        assert_eq!(response.status, 200, "{}", response.text);
        let page = response.json();
        seen.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/services?sort=-name&limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        [
            "wohngeld",
            "kita-platz",
            "hundesteuer",
            "elterngeld",
            "bafoeg"
        ]
    );
    let mut seen = Vec::new();
    let mut path = "/api/v1/services?sort=updated_at&limit=3".to_string();
    loop {
        let page = app.get(&path, &app.admin_token).await.json();
        seen.extend(keys(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                path = format!("/api/v1/services?sort=updated_at&limit=3&cursor={cursor}")
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    app.get("/api/v1/services?sort=size", &app.admin_token)
        .await
        .names_field(400, "sort");
    app.get("/api/v1/services?lifecycle=dead", &app.admin_token)
        .await
        .names_field(400, "lifecycle");
}

async fn raci_template_has_exactly_one_accountable(app: TestApp) {
    service(
        &app,
        json!({"key": "wohngeld", "name": "Wohngeld", "kind": "own"}),
    )
    .await;
    let (lead, _) = app.user("manager").create().await;
    let (worker, worker_token) = app.user("member").create().await;
    let (gone, _) = app.user("member").create().await;
    app.post(
        &format!("/api/v1/users/{}/deactivate", gone["id"]),
        &app.admin_token,
        &json!({}),
    )
    .await;
    let empty = app
        .get("/api/v1/services/wohngeld/raci", &worker_token)
        .await;
    assert!(empty.json()["accountable"].is_null());
    let path = "/api/v1/services/wohngeld/raci";
    let put = |body: Value| {
        app.request(Method::PUT, path)
            .token(&app.admin_token)
            .json(&body)
            .send()
    };
    put(json!({"accountable": [lead["id"], worker["id"]]}))
        .await
        .names_field(422, "accountable");
    put(json!({"responsible": [worker["id"]]}))
        .await
        .names_field(422, "accountable");
    put(json!({"accountable": lead["id"], "informed": [gone["id"]]}))
        .await
        .names_field(422, "informed[0]");
    put(json!({"accountable": 999999}))
        .await
        .names_field(422, "accountable");
    let ok = put(json!({"accountable": lead["id"], "responsible": [worker["id"], lead["id"]], "informed": [worker["id"]]})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.header("etag").as_deref(), Some("\"2\""));
    let template = app.get(path, &worker_token).await.json();
    assert_eq!(template["accountable"]["id"], lead["id"]);
    // The service itself shows its accountable person, in the list too.
    let listed = app
        .get("/api/v1/services?q=wohngeld", &worker_token)
        .await
        .json();
    assert_eq!(listed["items"][0]["accountable"]["id"], lead["id"]);
    assert_eq!(template["responsible"].as_array().map(Vec::len), Some(2));
    assert_eq!(template["informed"][0]["id"], worker["id"]);
    app.request(Method::PUT, path)
        .token(&worker_token)
        .json(&json!({"accountable": worker["id"]}))
        .send()
        .await
        .problem(403);
    let roles = app
        .get(&format!("/api/v1/users/{}/raci", lead["id"]), &worker_token)
        .await
        .json();
    assert_eq!(roles["accountable"][0]["key"], "wohngeld");
    assert_eq!(roles["responsible"][0]["key"], "wohngeld");
    // The database itself refuses a second accountable row.
    let service_id: i64 = services::table
        .filter(services::key.eq("wohngeld"))
        .select(services::id)
        .first(&mut app.conn())
        .expect("service");
    let second = diesel::insert_into(service_raci::table)
        .values((
            service_raci::service_id.eq(service_id),
            service_raci::user_id.eq(worker["id"].as_i64().unwrap_or_default()),
            service_raci::role.eq("accountable"),
        ))
        .execute(&mut app.conn());
    assert!(
        second.is_err(),
        "the partial unique index must refuse a second accountable"
    );
}

async fn concurrent_raci_puts_with_the_same_if_match(app: TestApp) {
    service(
        &app,
        json!({"key": "kfz", "name": "Kfz-Zulassung", "kind": "efa"}),
    )
    .await;
    let (a, _) = app.user("member").create().await;
    let (b, _) = app.user("member").create().await;
    let path = "/api/v1/services/kfz/raci";
    let put = |who: &Value, other: &Value| {
        app.request(Method::PUT, path).token(&app.admin_token).header("If-Match", "\"1\"")
            .json(&json!({"accountable": who["id"], "responsible": [who["id"], other["id"]], "consulted": [other["id"]]})).send()
    };
    let (first, second) = futures_util::join!(put(&a, &b), put(&b, &a));
    let mut statuses = [first.status, second.status];
    statuses.sort();
    assert_eq!(statuses, [200, 412], "{} / {}", first.text, second.text);
    let winner = if first.status == 200 { &a } else { &b };
    let stored = app.get(path, &app.admin_token).await.json();
    assert_eq!(stored["accountable"]["id"], winner["id"]);
    assert_eq!(
        stored["responsible"].as_array().map(Vec::len),
        Some(2),
        "the stored set is whole: {stored}"
    );
    assert_eq!(stored["consulted"].as_array().map(Vec::len), Some(1));
    assert_eq!(stored["version"], 2);
}

async fn deactivating_an_accountable_person_needs_a_replacement(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    let (deputy, _) = app.user("manager").create().await;
    for key in ["wohngeld", "elterngeld"] {
        service(&app, json!({"key": key, "name": key, "kind": "own"})).await;
        let response = app
            .request(Method::PUT, &format!("/api/v1/services/{key}/raci"))
            .token(&app.admin_token)
            .json(&json!({"accountable": lead["id"]}))
            .send()
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
    }
    // An open item of the lead's goes to the deputy too, with an event; a done one stays.
    app.post(
        "/api/v1/boards",
        &app.admin_token,
        &json!({"key": "OPS", "name": "Betrieb"}),
    )
    .await;
    for title in ["offen", "erledigt"] {
        let created = app
            .post(
                "/api/v1/items",
                &app.admin_token,
                &json!({"board": "OPS", "type": "task", "title": title, "service": "wohngeld"}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let board = app.get("/api/v1/boards/OPS", &app.admin_token).await.json();
    let moved = app
        .post(
            "/api/v1/items/OPS-2/move",
            &app.admin_token,
            &json!({"column": board["columns"][4]["id"]}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let path = format!("/api/v1/users/{}/deactivate", lead["id"]);
    let refused = app
        .post(&path, &app.admin_token, &json!({}))
        .await
        .problem(409);
    let detail = refused["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("elterngeld") && detail.contains("wohngeld"),
        "{detail}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/users/{}", lead["id"]), &app.admin_token)
            .await
            .json()["active"],
        true
    );
    app.post(&path, &app.admin_token, &json!({"replacement": lead["id"]}))
        .await
        .names_field(422, "replacement");
    let done = app
        .post(
            &path,
            &app.admin_token,
            &json!({"replacement": deputy["id"]}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json()["active"], false);
    for key in ["wohngeld", "elterngeld"] {
        let template = app
            .get(&format!("/api/v1/services/{key}/raci"), &app.admin_token)
            .await
            .json();
        assert_eq!(template["accountable"]["id"], deputy["id"]);
        assert_eq!(template["version"], 3);
    }
    let open = app
        .get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .json();
    assert_eq!(open["raci"]["accountable"]["id"], deputy["id"]);
    let history = app
        .get("/api/v1/items/OPS-1/history", &app.admin_token)
        .await
        .json();
    let last = history["items"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["kind"], "accountable_changed");
    assert_eq!(last["data"]["new"], deputy["id"]);
    let finished = app
        .get("/api/v1/items/OPS-2", &app.admin_token)
        .await
        .json();
    assert_eq!(
        finished["raci"]["accountable"]["id"], lead["id"],
        "done work keeps its history"
    );
}
