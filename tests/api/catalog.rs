//! The catalogue: organizations, online services with filters, RACI templates.

use actix_web::http::Method;
use diesel::prelude::*;
use opsboard::db::schema::{service_raci, services};
use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::{keys, last_event};
use crate::helpers::TestApp;

both_engines!(
    organizations_are_unique_by_short_name_and_bad_ones_name_the_field,
    organizations_change_under_if_match_filter_by_kind_and_are_made_by_admins,
    a_referenced_organization_goes_only_once_nothing_refers_to_it,
    a_service_is_created_with_every_field_and_bad_ones_are_all_named,
    a_service_changes_under_if_match_but_never_its_key,
    viewers_read_services_but_change_none,
    services_filter_and_search,
    services_sort_and_page_with_a_cursor,
    a_raci_template_needs_exactly_one_active_accountable,
    a_raci_template_shows_on_the_service_and_in_the_persons_roles,
    the_database_refuses_a_second_accountable_for_a_service,
    concurrent_raci_puts_with_the_same_if_match,
    deactivating_an_accountable_person_needs_a_replacement,
    a_replacement_takes_over_templates_and_open_items_but_not_done_ones,
);

async fn organizations_are_unique_by_short_name_and_bad_ones_name_the_field(app: TestApp) {
    let dvz = app.organization("DVZ").kind("it_operator").create().await;
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
}

async fn organizations_change_under_if_match_filter_by_kind_and_are_made_by_admins(app: TestApp) {
    app.organization("DVZ").kind("it_operator").create().await;
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
    app.organization("FM").kind("ministry").create().await;
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
}

async fn a_referenced_organization_goes_only_once_nothing_refers_to_it(app: TestApp) {
    app.organization("DVZ").kind("it_operator").create().await;
    // Referenced by a service: 409; once the service is gone, the delete works.
    app.service("wohngeld")
        .name("Wohngeld")
        .with(json!({"operator": "dvz"}))
        .create()
        .await;
    app.delete("/api/v1/organizations/DVZ", &app.admin_token)
        .await
        .problem(409);
    let deleted = app
        .delete("/api/v1/services/wohngeld", &app.admin_token)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.delete("/api/v1/organizations/DVZ", &app.admin_token)
            .await
            .status,
        204
    );
    app.get("/api/v1/organizations/DVZ", &app.admin_token)
        .await
        .problem(404);
}

/// Operator DVZ, ministry FM, and the service baugenehmigung with every field set; returns it.
async fn baugenehmigung(app: &TestApp) -> Value {
    app.organization("DVZ").kind("it_operator").create().await;
    app.organization("FM").kind("ministry").create().await;
    app.service("baugenehmigung")
        .name("Bauvorbescheid und Baugenehmigung")
        .with(
            json!({"kind": "efa", "lifecycle": "productive", "maturity_level": 3,
                     "ozg_id": "10519", "leika_keys": ["99010003001000"], "topic": "Bauen & Wohnen",
                     "operator": "dvz", "responsible": "FM", "tags": ["Bauen", "efa"],
                     "go_live_date": "2023-05-02"}),
        )
        .create()
        .await
}

async fn a_service_is_created_with_every_field_and_bad_ones_are_all_named(app: TestApp) {
    let created = baugenehmigung(&app).await;
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
}

async fn a_service_changes_under_if_match_but_never_its_key(app: TestApp) {
    baugenehmigung(&app).await;
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
}

async fn viewers_read_services_but_change_none(app: TestApp) {
    baugenehmigung(&app).await;
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
    app.delete("/api/v1/services/baugenehmigung", &viewer)
        .await
        .problem(403);
    app.get("/api/v1/services/nope", &viewer).await.problem(404);
}

/// Operators DVZ and eGo-MV, ministry FM, and five services for them.
async fn five_services(app: &TestApp) {
    app.organization("DVZ").kind("it_operator").create().await;
    app.organization("eGo-MV")
        .kind("it_operator")
        .create()
        .await;
    app.organization("FM").kind("ministry").create().await;
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
        app.service(key)
            .name(name)
            .with(
                json!({"kind": kind, "lifecycle": lifecycle, "operator": operator,
                         "responsible": "FM", "tags": [tag], "leika_keys": [leika]}),
            )
            .create()
            .await;
    }
}

async fn services_filter_and_search(app: TestApp) {
    five_services(&app).await;
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
}

async fn services_sort_and_page_with_a_cursor(app: TestApp) {
    five_services(&app).await;
    let get = |q: &str| {
        let path = format!("/api/v1/services?{q}");
        let app = &app;
        async move { keys(&app.get(&path, &app.admin_token).await.json()) }
    };
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
    // A cursor goes on with its own sort only: a key cursor would also read as a name one.
    let page = app
        .get("/api/v1/services?sort=key&limit=2", &app.admin_token)
        .await
        .json();
    let cursor = page["next_cursor"].as_str().unwrap_or_default();
    app.get(
        &format!("/api/v1/services?sort=-key&limit=2&cursor={cursor}"),
        &app.admin_token,
    )
    .await
    .names_field(400, "cursor");
    app.get("/api/v1/services?sort=size", &app.admin_token)
        .await
        .names_field(400, "sort");
    app.get("/api/v1/services?lifecycle=dead", &app.admin_token)
        .await
        .names_field(400, "lifecycle");
}

async fn a_raci_template_needs_exactly_one_active_accountable(app: TestApp) {
    app.service("wohngeld").name("Wohngeld").create().await;
    let (lead, _) = app.user("manager").create().await;
    let (worker, worker_token) = app.user("member").create().await;
    let (gone, _) = app.user("member").create().await;
    let deactivated = app
        .post(
            &format!("/api/v1/users/{}/deactivate", gone["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
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
}

async fn a_raci_template_shows_on_the_service_and_in_the_persons_roles(app: TestApp) {
    app.service("wohngeld").name("Wohngeld").create().await;
    let (lead, _) = app.user("manager").create().await;
    let (worker, worker_token) = app.user("member").create().await;
    let path = "/api/v1/services/wohngeld/raci";
    let put = |body: Value| {
        app.request(Method::PUT, path)
            .token(&app.admin_token)
            .json(&body)
            .send()
    };
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
    app.put(path, &worker_token, &json!({"accountable": worker["id"]}))
        .await
        .problem(403);
    let roles = app
        .get(&format!("/api/v1/users/{}/raci", lead["id"]), &worker_token)
        .await
        .json();
    assert_eq!(roles["accountable"][0]["key"], "wohngeld");
    assert_eq!(roles["responsible"][0]["key"], "wohngeld");
}

async fn the_database_refuses_a_second_accountable_for_a_service(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    let (worker, _) = app.user("member").create().await;
    app.service("wohngeld")
        .name("Wohngeld")
        .accountable(&lead)
        .create()
        .await;
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
    app.service("kfz")
        .name("Kfz-Zulassung")
        .with(json!({"kind": "efa"}))
        .create()
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

/// A manager accountable for the templates of wohngeld and elterngeld, and for two wohngeld
/// tasks on OPS: OPS-1 open, OPS-2 done. Returns the manager and a deputy.
async fn a_lead_with_templates_and_items(app: &TestApp) -> (Value, Value) {
    let (lead, _) = app.user("manager").create().await;
    let (deputy, _) = app.user("manager").create().await;
    for key in ["wohngeld", "elterngeld"] {
        app.service(key).accountable(&lead).create().await;
    }
    let board = app.board("OPS").name("Betrieb").create().await;
    for title in ["offen", "erledigt"] {
        app.item("OPS")
            .task()
            .title(title)
            .service("wohngeld")
            .create()
            .await;
    }
    let moved = app
        .move_item(
            "OPS-2",
            &app.admin_token,
            &json!({"column": board.column_id("Done")}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    (lead, deputy)
}

async fn deactivating_an_accountable_person_needs_a_replacement(app: TestApp) {
    let (lead, _) = a_lead_with_templates_and_items(&app).await;
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
}

async fn a_replacement_takes_over_templates_and_open_items_but_not_done_ones(app: TestApp) {
    let (lead, deputy) = a_lead_with_templates_and_items(&app).await;
    let path = format!("/api/v1/users/{}/deactivate", lead["id"]);
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
    let last = last_event(&history);
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
