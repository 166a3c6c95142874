//! Bulk import of services and organizations, and the demo data.

use actix_web::http::Method;
use diesel::prelude::*;
use opsboard::db::schema::{events, organizations as organizations_table, services};
use serde_json::json;

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    csv_import_is_idempotent_and_updates_changed_rows,
    an_invalid_row_fails_the_whole_import,
    json_import_and_permissions,
    demo_data_fills_an_empty_database_once,
    organization_import_is_idempotent_and_updates_changed_rows,
    an_invalid_organization_row_fails_the_whole_import,
    organization_json_import_and_permissions,
);

const SAMPLE: &str = include_str!("../../docs/import-services.sample.csv");

/// The operators DVZ and eGo-MV and the ministries SM and WM that the sample names.
async fn organizations(app: &TestApp) {
    for (short_name, kind) in [
        ("DVZ", "it_operator"),
        ("eGo-MV", "it_operator"),
        ("SM", "ministry"),
        ("WM", "ministry"),
    ] {
        app.organization(short_name).kind(kind).create().await;
    }
}

fn count(app: &TestApp) -> i64 {
    services::table
        .count()
        .get_result(&mut app.conn())
        .expect("count")
}

async fn csv_import_is_idempotent_and_updates_changed_rows(app: TestApp) {
    organizations(&app).await;
    let first = app.import_services("text/csv", SAMPLE).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let report = first.json();
    assert_eq!(
        (report["total"].clone(), report["created"].clone()),
        (json!(4), json!(4))
    );
    let stored = app
        .get("/api/v1/services/wohngeld-antrag", &app.admin_token)
        .await
        .json();
    assert_eq!(
        stored["leika_keys"],
        json!(["99107001000000", "99107002000000"])
    );
    assert_eq!(stored["operator"], "DVZ");
    let kita = app
        .get("/api/v1/services/kita-platz-suche", &app.admin_token)
        .await
        .json();
    assert_eq!(
        kita["go_live_date"], "2025-09-01",
        "German dates are read too"
    );
    let second = app.import_services("text/csv", SAMPLE).await.json();
    assert_eq!(second["unchanged"], 4, "{second}");
    assert_eq!(
        app.get("/api/v1/services/wohngeld-antrag", &app.admin_token)
            .await
            .json()["version"],
        1
    );
    // One changed row updates that service only; a comma-separated export works as well.
    let changed = SAMPLE
        .replace(";", ",")
        .replace("Wohngeld beantragen", "Wohngeld online beantragen")
        .replace(
            "99107001000000|99107002000000",
            "\"99107001000000,99107002000000\"",
        );
    let third = app.import_services("text/csv", &changed).await;
    assert_eq!(third.status, 200, "{}", third.text);
    let third = third.json();
    assert_eq!(
        (third["updated"].clone(), third["unchanged"].clone()),
        (json!(1), json!(3)),
        "{third}"
    );
    let updated = app
        .get("/api/v1/services/wohngeld-antrag", &app.admin_token)
        .await
        .json();
    assert_eq!(updated["name"], "Wohngeld online beantragen");
    assert_eq!(updated["version"], 2);
}

async fn an_invalid_row_fails_the_whole_import(app: TestApp) {
    organizations(&app).await;
    let mut body = SAMPLE.to_string();
    body.push_str("neu-dienst;Neuer Dienst;;productive;own;9;;123;;NOPE;;;;\n");
    body.push_str("wohngeld-antrag;Doppelt;;planned;own;0;;;;;;;;\n");
    let problem = app.import_services("text/csv", &body).await.problem(422);
    let fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for expected in [
        "line 6: maturity_level",
        "line 6: leika_keys[0]",
        "line 6: operator",
        "line 7: key",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing in {fields:?}"
        );
    }
    assert_eq!(count(&app), 0, "nothing was written");
    let header = app
        .import_services("text/csv", "key;name;colour\nx;X;red\n")
        .await
        .problem(422);
    assert!(header["errors"].to_string().contains("colour"), "{header}");
}

async fn json_import_and_permissions(app: TestApp) {
    organizations(&app).await;
    let body = json!([
        {"key": "fischereischein", "name": "Fischereischein", "kind": "own", "operator": "DVZ"},
        {"key": "jagdschein", "name": "Jagdschein", "kind": "reuse", "tags": ["jagd"]}
    ]);
    let response = app
        .import_services("application/json", &body.to_string())
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json()["created"], 2);
    let bad = json!([{"key": "x", "name": "X", "kind": "own", "colour": "red"}]);
    app.import_services("application/json", &bad.to_string())
        .await
        .names_field(422, "line 1: colour");
    app.import_services("text/plain", "key\n")
        .await
        .problem(415);
    let (_, viewer) = app.user("viewer").create().await;
    let refused = app
        .request(Method::POST, "/api/v1/services/import")
        .token(&viewer)
        .raw("text/csv", SAMPLE.as_bytes().to_vec())
        .send()
        .await;
    refused.problem(403);
    assert_eq!(count(&app), 2);
}

async fn demo_data_fills_an_empty_database_once(app: TestApp) {
    // Seeded on the blocking pool: blocking the test's runtime thread for the seconds this takes
    // made the next request fail now and then (awc: "connector has been disconnected").
    let summary = app
        .state
        .db
        .run(opsboard::workflows::demo::seed)
        .await
        .expect("demo data loads");
    assert!(summary.services >= 230, "{}", summary.services);
    assert_eq!(
        summary
            .logins
            .iter()
            .filter(|l| !l.2.starts_with("stakeholder at ") && !l.2.starts_with("observer at "))
            .count(),
        5,
        "the team's five, then stakeholders and an observer by organization: {:?}",
        summary.logins
    );
    assert!(
        summary
            .logins
            .iter()
            .any(|l| l.1 == "viewer" && l.2 == "observer at DVZ"),
        "the viewer is an observer, not a stakeholder: {:?}",
        summary.logins
    );
    let productive = app
        .get(
            "/api/v1/services?lifecycle=productive&limit=500",
            &app.admin_token,
        )
        .await
        .json();
    let productive = productive["items"].as_array().map(Vec::len).unwrap_or(0);
    assert!(productive > 150, "{productive}");
    let first = app
        .get("/api/v1/services?limit=1", &app.admin_token)
        .await
        .json();
    let key = first["items"][0]["key"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let raci = app
        .get(&format!("/api/v1/services/{key}/raci"), &app.admin_token)
        .await
        .json();
    assert!(raci["accountable"]["id"].is_i64(), "{raci}");
    let boards = app.get("/api/v1/boards", &app.admin_token).await.json();
    let keys: Vec<&str> = boards["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|b| b["key"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(keys, ["OPS", "DEM"]);
    let login = &summary.logins[0].0;
    app.login(login, opsboard::workflows::demo::DEMO_PASSWORD)
        .await;
    assert!(
        opsboard::workflows::demo::seed(&mut app.conn()).is_err(),
        "a second run is refused"
    );
}

async fn import_organizations(
    app: &TestApp,
    content_type: &str,
    body: &str,
) -> crate::helpers::Response {
    app.request(Method::POST, "/api/v1/organizations/import")
        .token(&app.admin_token)
        .raw(content_type, body.as_bytes().to_vec())
        .send()
        .await
}

fn organization_count(app: &TestApp) -> i64 {
    organizations_table::table
        .count()
        .get_result(&mut app.conn())
        .expect("count")
}

const ORGANIZATIONS: &str = "short_name;name;kind;contact_email\n\
    LKT;Landkreistag Mecklenburg-Vorpommern;municipal_association;geschaeftsstelle@lkt.example.org\n\
    HRO;Hanse- und Universitätsstadt Rostock;municipality;\n";

async fn organization_import_is_idempotent_and_updates_changed_rows(app: TestApp) {
    let first = import_organizations(&app, "text/csv", ORGANIZATIONS).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let report = first.json();
    assert_eq!(
        (report["total"].clone(), report["created"].clone()),
        (json!(2), json!(2)),
        "{report}"
    );
    assert_eq!(
        report["results"][0],
        json!({"key": "LKT", "outcome": "created"})
    );
    let rostock = app
        .get("/api/v1/organizations/HRO", &app.admin_token)
        .await
        .json();
    assert_eq!(
        rostock["name"], "Hanse- und Universitätsstadt Rostock",
        "UTF-8 survives"
    );
    assert_eq!(rostock["kind"], "municipality");
    let created: i64 = events::table
        .filter(events::entity_type.eq("organization"))
        .filter(events::kind.eq("created"))
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(created, 2, "each row has its history event");

    let second = import_organizations(&app, "text/csv", ORGANIZATIONS)
        .await
        .json();
    assert_eq!(
        (
            second["created"].clone(),
            second["updated"].clone(),
            second["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(2)),
        "{second}"
    );
    let lkt = app
        .get("/api/v1/organizations/LKT", &app.admin_token)
        .await
        .json();
    assert_eq!(lkt["version"], 1, "an unchanged row writes nothing");

    // By short name regardless of case; a row is the whole organization, so an empty contact
    // address removes the stored one. A comma-separated export works as well.
    let changed = "short_name,name,kind,contact_email\n\
        lkt,Landkreistag M-V,municipal_association,\n\
        HRO,Hanse- und Universitätsstadt Rostock,municipality,\n";
    let third = import_organizations(&app, "text/csv", changed).await;
    assert_eq!(third.status, 200, "{}", third.text);
    let third = third.json();
    assert_eq!(
        (third["updated"].clone(), third["unchanged"].clone()),
        (json!(1), json!(1)),
        "{third}"
    );
    let lkt = app
        .get("/api/v1/organizations/LKT", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (
            lkt["short_name"].clone(),
            lkt["name"].clone(),
            lkt["contact_email"].clone(),
            lkt["version"].clone()
        ),
        (
            json!("LKT"),
            json!("Landkreistag M-V"),
            json!(null),
            json!(2)
        ),
        "{lkt}"
    );
    assert_eq!(organization_count(&app), 2);
}

async fn an_invalid_organization_row_fails_the_whole_import(app: TestApp) {
    let mut body = ORGANIZATIONS.to_string();
    body.push_str("X!;;bogus;not-an-email\n");
    body.push_str("lkt;Doppelt;other;\n");
    let problem = import_organizations(&app, "text/csv", &body)
        .await
        .problem(422);
    let fields: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for expected in [
        "line 4: short_name",
        "line 4: name",
        "line 4: kind",
        "line 4: contact_email",
        "line 5: short_name",
    ] {
        assert!(
            fields.iter().any(|f| f == expected),
            "{expected} missing in {fields:?}"
        );
    }
    assert!(
        problem.to_string().contains("appears earlier in the file"),
        "{problem}"
    );
    assert_eq!(organization_count(&app), 0, "nothing was written");
    let header = import_organizations(&app, "text/csv", "short_name;name;colour\nX;X;red\n")
        .await
        .problem(422);
    let errors = header["errors"].to_string();
    assert!(
        errors.contains("line 1: colour") && errors.contains("line 1: kind"),
        "{header}"
    );
}

async fn organization_json_import_and_permissions(app: TestApp) {
    let body = json!([
        {"short_name": "DVZ", "name": "DVZ Datenverarbeitungszentrum M-V GmbH", "kind": "it_operator"},
        {"short_name": "FM", "name": "Finanzministerium", "kind": "ministry", "contact_email": "Poststelle@FM.example.org"}
    ]);
    let response = import_organizations(&app, "application/json", &body.to_string()).await;
    assert_eq!(response.status, 200, "{}", response.text);
    assert_eq!(response.json()["created"], 2);
    let again = import_organizations(&app, "application/json", &body.to_string())
        .await
        .json();
    assert_eq!(again["unchanged"], 2, "{again}");
    let bad = json!([{"short_name": "X", "name": "X", "kind": "ministry", "colour": "red"}]);
    import_organizations(&app, "application/json", &bad.to_string())
        .await
        .names_field(422, "line 1: colour");
    import_organizations(&app, "text/plain", "short_name\n")
        .await
        .problem(415);
    // The services that name them import next.
    let services = app
        .import_services(
            "text/csv",
            "key;name;kind;operator;responsible\nlohnsteuer;Lohnsteuer;own;DVZ;FM\n",
        )
        .await;
    assert_eq!(services.status, 200, "{}", services.text);
    for role in ["viewer", "member"] {
        let (_, token) = app.user(role).create().await;
        app.request(Method::POST, "/api/v1/organizations/import")
            .token(&token)
            .raw("text/csv", ORGANIZATIONS.as_bytes().to_vec())
            .send()
            .await
            .problem(403);
    }
    assert_eq!(organization_count(&app), 2);
}
