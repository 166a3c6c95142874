//! Issue 9, the edges: security headers, errors that actix itself would give, trailing
//! slashes, unique and foreign keys, CSV, requester confinement in history, list limits.

use actix_web::http::Method;
use base64::Engine as _;
use serde_json::json;
use sha2::Digest;

use crate::both_engines;
use crate::helpers::{Engine, TestApp};

both_engines!(api_responses_are_never_cached);

/// Authenticated JSON, the login's token and every error under `/api/v1` carry
/// `Cache-Control: no-store`.
async fn api_responses_are_never_cached(app: TestApp) {
    let ok = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(ok.status, 200);
    let login = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": "nobody@opsboard.test", "password": "wrong-password-1"}))
        .send()
        .await;
    let unauthenticated = app.request(Method::GET, "/api/v1/users").send().await;
    let missing = app.get("/api/v1/no-such-thing", &app.admin_token).await;
    let invalid = app
        .post("/api/v1/users", &app.admin_token, &json!({"email": 1}))
        .await;
    let wrong_method = app.delete("/api/v1/users", &app.admin_token).await;
    for (what, response) in [
        ("200", &ok),
        ("failed login", &login),
        ("401", &unauthenticated),
        ("404", &missing),
        ("422", &invalid),
        ("405", &wrong_method),
    ] {
        assert_eq!(
            response.header("cache-control").as_deref(),
            Some("no-store"),
            "{what}: {:?}",
            response.headers
        );
    }
    assert_eq!(login.status, 401);
    assert_eq!(invalid.status, 422);
    // Swagger UI's assets are no API: they may be cached.
    let asset = app
        .request(Method::GET, "/swagger-ui/swagger-ui.css")
        .send()
        .await;
    assert_eq!(asset.status, 200);
    assert_ne!(asset.header("cache-control").as_deref(), Some("no-store"));
}

/// The directive `name` of a Content-Security-Policy, as its list of sources.
fn directive<'a>(csp: &'a str, name: &str) -> Option<Vec<&'a str>> {
    csp.split(';').map(str::trim).find_map(|d| {
        let mut words = d.split_whitespace();
        (words.next() == Some(name)).then(|| words.collect())
    })
}

/// Swagger UI's page, its redirect and its assets carry a CSP that allows only this server,
/// `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`; the one inline style the UI
/// renders is allowed by its hash, recomputed here from the served preset. (Checked in headless
/// Chromium when written: every operation renders, "Try it out" works, no CSP violation.)
#[actix_web::test]
async fn swagger_ui_gets_a_csp_of_its_own_assets_and_no_framing() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let mut csp = String::new();
    for path in [
        "/swagger-ui",
        "/swagger-ui/",
        "/swagger-ui/swagger-ui-bundle.js",
        "/swagger-ui/swagger-initializer.js",
        "/swagger-ui/no-such-file",
    ] {
        let response = app.request(Method::GET, path).send().await;
        csp = response
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no CSP"));
        assert_eq!(
            response.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            response.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
    }
    assert_eq!(directive(&csp, "default-src"), Some(vec!["'none'"]));
    assert_eq!(directive(&csp, "script-src"), Some(vec!["'self'"]));
    assert_eq!(directive(&csp, "connect-src"), Some(vec!["'self'"]));
    assert_eq!(directive(&csp, "img-src"), Some(vec!["'self'", "data:"]));
    assert_eq!(directive(&csp, "frame-ancestors"), Some(vec!["'none'"]));
    assert!(!csp.contains("unsafe"), "{csp}");

    // The only inline <style> of Swagger UI is the logo's, created by the standalone preset.
    let preset = app
        .request(Method::GET, "/swagger-ui/swagger-ui-standalone-preset.js")
        .send()
        .await;
    let bundle = app
        .request(Method::GET, "/swagger-ui/swagger-ui-bundle.js")
        .send()
        .await;
    let marker = "createElement(\"style\",null,\"";
    assert_eq!(bundle.text.matches("createElement(\"style\"").count(), 0);
    assert_eq!(preset.text.matches("createElement(\"style\"").count(), 1);
    let style = preset
        .text
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the logo's style");
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
    let style_src = directive(&csp, "style-src").unwrap_or_default();
    assert_eq!(
        style_src,
        vec!["'self'", &format!("'sha256-{hash}'")],
        "Swagger UI's inline style changed; put its hash into SWAGGER_UI_CSP: {style}"
    );

    // Nothing outside Swagger UI gets its policy.
    let health = app.request(Method::GET, "/health").send().await;
    assert!(health.header("content-security-policy").is_none());
}

/// A path and query over 8 KiB is a 414 problem; one just under it is served.
#[actix_web::test]
async fn an_over_long_uri_is_a_414_problem() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let under = format!("/api/v1/items?q={}", "a".repeat(190));
    assert_eq!(app.get(&under, &app.admin_token).await.status, 200);
    // Just under the limit the request is read (and its unknown parameter named), not a 414.
    let padding = format!("/health?pad={}", "a".repeat(8 * 1024 - 20));
    app.request(Method::GET, &padding)
        .send()
        .await
        .names_field(400, "pad");
    let over = format!("/api/v1/items?q={}", "a".repeat(9 * 1024));
    let response = app.get(&over, &app.admin_token).await;
    let problem = response.problem(414);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("8192"),
        "{problem}"
    );
    assert_eq!(
        response.header("cache-control").as_deref(),
        Some("no-store")
    );
    // Before authentication: the same answer without a token.
    app.request(Method::GET, &over).send().await.problem(414);
}

/// A header section over 32 KiB (but under actix-http's own 128 KiB and 96 fields) is a 431
/// problem; under it, the request is served.
#[actix_web::test]
async fn over_large_headers_are_a_431_problem() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let value = "v".repeat(1000);
    let mut fine = app
        .request(Method::GET, "/api/v1/me")
        .token(&app.admin_token);
    for i in 0..25 {
        fine = fine.header(&format!("x-pad-{i}"), &value);
    }
    assert_eq!(fine.send().await.status, 200);
    let mut large = app
        .request(Method::GET, "/api/v1/me")
        .token(&app.admin_token);
    for i in 0..40 {
        large = large.header(&format!("x-pad-{i}"), &value);
    }
    let response = large.send().await;
    let problem = response.problem(431);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("32768"),
        "{problem}"
    );
}

/// Sends a raw request head and returns the status line and the body of the answer.
fn raw_exchange(address: &str, head: String) -> (String, String) {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.lines().next().unwrap_or_default().to_string();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// What the README says of actix-http's own limit: a head over 128 KiB, or more than 96
/// header fields, gets an empty 431 from actix-http, which opsboard cannot change.
#[actix_web::test]
async fn the_hard_limit_of_actix_http_is_an_empty_431() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let address = app.address.clone();
    let (status, body) = actix_web::web::block(move || {
        let huge = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "v".repeat(130 * 1024)
        );
        raw_exchange(&address, huge)
    })
    .await
    .expect("blocking pool");
    assert!(status.contains(" 431"), "{status}");
    assert_eq!(body, "");
    let address = app.address.clone();
    let (status, _) = actix_web::web::block(move || {
        let mut head = "GET /health HTTP/1.1\r\nHost: x\r\n".to_string();
        for i in 0..100 {
            head.push_str(&format!("X-Pad-{i}: v\r\n"));
        }
        head.push_str("\r\n");
        raw_exchange(&address, head)
    })
    .await
    .expect("blocking pool");
    assert!(status.contains(" 431"), "{status}");
}

/// A trailing slash is another path: 404 naming the path without it, never a 405 whose
/// `Allow` lists the method that was used.
#[actix_web::test]
async fn trailing_slash_paths_are_404_not_405() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    for (method, path, suggestion) in [
        (Method::GET, "/health/", Some("/health")),
        (Method::HEAD, "/health/", None),
        (Method::GET, "/ready/", Some("/ready")),
        (Method::GET, "/api/v1/items/", Some("/api/v1/items")),
        (Method::POST, "/api/v1/users/", Some("/api/v1/users")),
        (
            Method::GET,
            "/api/v1/boards/OPS/view/",
            Some("/api/v1/boards/OPS/view"),
        ),
        (Method::GET, "/api/v1/", None),
        (Method::GET, "//health", None),
    ] {
        let response = app
            .request(method.clone(), path)
            .token(&app.admin_token)
            .send()
            .await;
        assert_eq!(response.status, 404, "{method} {path}: {}", response.text);
        assert!(response.header("allow").is_none(), "{method} {path}");
        if method == Method::HEAD {
            continue;
        }
        let problem = response.problem(404);
        let detail = problem["detail"].as_str().unwrap_or_default();
        match suggestion {
            Some(p) => assert!(detail.contains(&format!("did you mean {p} ")), "{detail}"),
            None => assert!(!detail.contains("did you mean"), "{detail}"),
        }
    }
    // The paths themselves still answer, and a wrong method on them is still a 405.
    assert_eq!(app.request(Method::GET, "/health").send().await.status, 200);
    let response = app.delete("/health", &app.admin_token).await;
    response.problem(405);
    assert_eq!(response.header("allow").as_deref(), Some("GET, HEAD"));
}

/// A board OPS with the default workflow and `services` with an accountable member.
async fn ops_and_services(app: &TestApp, services: &[&str]) {
    app.board("OPS").name("Betrieb").create().await;
    let (worker, _) = app.user("member").create().await;
    for key in services {
        app.service(key).accountable(&worker).create().await;
    }
}

/// Asserts a 409 whose detail names `what` and nothing of the database's.
fn refused_naming(response: &crate::helpers::Response, what: &str) {
    let problem = response.problem(409);
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(what), "expected `{what}` in: {detail}");
    for leak in ["constraint", "fkey", "FOREIGN", "violates"] {
        assert!(!response.text.contains(leak), "{}", response.text);
    }
}

both_engines!(
    deleting_a_referenced_organization_is_a_409_naming_the_reference,
    deleting_a_referenced_service_is_a_409_naming_the_reference,
    a_unique_key_race_is_a_409_naming_the_field_without_internals,
    deleting_a_column_that_items_refer_to_is_a_409_or_moves_tombstones,
    a_duplicate_csv_header_column_is_a_422_naming_it,
    formula_cells_are_imported_as_given,
    a_requester_sees_linked_keys_only_of_items_visible_to_them,
    every_list_limit_in_the_spec_is_the_servers,
    an_import_over_its_row_limit_is_refused,
);

/// An organization that a demand asks for, that reported an incident, or that a user belongs
/// to stays, with a 409 naming that reference (deleted items count too); one that nothing
/// refers to goes.
async fn deleting_a_referenced_organization_is_a_409_naming_the_reference(app: TestApp) {
    ops_and_services(&app, &["wohngeld"]).await;
    let mut organizations = Vec::new();
    for short in ["LK-DEM", "LK-INC", "LK-USR", "LK-NONE"] {
        organizations.push(app.organization(short).create().await);
    }
    let demand = app
        .item("OPS")
        .demand()
        .title("Statusabfrage")
        .service("wohngeld")
        .with(json!({"demand": {"requesting_organization": "LK-DEM"}}))
        .create()
        .await;
    app.item("OPS")
        .incident()
        .title("Upload bricht ab")
        .service("wohngeld")
        .severity("s2")
        .with(json!({"incident": {"reported_by_org": "LK-INC"}}))
        .create()
        .await;
    app.user("requester")
        .organization(&organizations[2])
        .create()
        .await;

    for (short, what) in [
        ("LK-DEM", "1 demand(s) as requesting organization"),
        ("LK-INC", "1 incident(s) as reporting organization"),
        ("LK-USR", "1 user(s)"),
    ] {
        let response = app
            .delete(&format!("/api/v1/organizations/{short}"), &app.admin_token)
            .await;
        refused_naming(&response, what);
        let still = app
            .get(&format!("/api/v1/organizations/{short}"), &app.admin_token)
            .await;
        assert_eq!(still.status, 200, "{short} is still there");
    }
    // A deleted demand keeps its organization: its tombstone still names it.
    let key = demand["key"].as_str().unwrap_or_default();
    assert_eq!(
        app.delete(&format!("/api/v1/items/{key}"), &app.admin_token)
            .await
            .status,
        204
    );
    let response = app
        .delete("/api/v1/organizations/LK-DEM", &app.admin_token)
        .await;
    refused_naming(&response, "1 demand(s) as requesting organization");

    assert_eq!(
        app.delete("/api/v1/organizations/LK-NONE", &app.admin_token)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get("/api/v1/organizations/LK-NONE", &app.admin_token)
            .await
            .status,
        404
    );
}

/// A service that an incident lists as affected, that items belong to, or that has SLA
/// policies of its own stays, with a 409 naming that reference; once free, it goes.
async fn deleting_a_referenced_service_is_a_409_naming_the_reference(app: TestApp) {
    ops_and_services(&app, &["wohngeld", "portal", "bafoeg", "elster"]).await;
    app.item("OPS")
        .incident()
        .title("Portal down")
        .service("wohngeld")
        .severity("s1")
        .with(json!({"incident": {"affected_services": ["portal"]}}))
        .create()
        .await;
    app.item("OPS")
        .task()
        .title("Formular prüfen")
        .service("bafoeg")
        .create()
        .await;
    let policy = app
        .sla_policy("s1")
        .service("elster")
        .minutes(30, 240)
        .clock("calendar")
        .create()
        .await;

    for (key, what) in [
        ("portal", "1 incident(s) as an affected service"),
        ("bafoeg", "1 item(s)"),
        ("wohngeld", "1 item(s)"),
        ("elster", "1 SLA policy(ies)"),
    ] {
        let response = app
            .delete(&format!("/api/v1/services/{key}"), &app.admin_token)
            .await;
        refused_naming(&response, what);
        let still = app
            .get(&format!("/api/v1/services/{key}"), &app.admin_token)
            .await;
        assert_eq!(still.status, 200, "{key} is still there");
    }
    // The incident's own service is named once, as its item's service, not as affected too.
    let response = app
        .delete("/api/v1/services/wohngeld", &app.admin_token)
        .await;
    assert!(!response.text.contains("affected"), "{}", response.text);

    let policy_id = policy["id"].clone();
    assert_eq!(
        app.delete(
            &format!("/api/v1/sla-policies/{policy_id}"),
            &app.admin_token
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.delete("/api/v1/services/elster", &app.admin_token)
            .await
            .status,
        204
    );
}

/// Another writer holds a row with the same unique key in an open transaction while the API
/// creates a service with it: the feature's own check cannot see the row, so on PostgreSQL
/// the database refuses the insert; on SQLite the writer lock serializes the two and the
/// feature's check answers. Either way a 409 that names `key` and no constraint.
async fn a_unique_key_race_is_a_409_naming_the_field_without_internals(app: TestApp) {
    use diesel::connection::SimpleConnection;
    let mut held = app.conn();
    let postgres = matches!(*held, opsboard::db::DbConnection::Postgresql(_));
    held.batch_execute(if postgres { "BEGIN" } else { "BEGIN IMMEDIATE" })
        .expect("begin");
    held.batch_execute(
        "INSERT INTO services (key, name, lifecycle, kind, maturity_level, created_at, updated_at) \
         VALUES ('race', 'Race', 'planned', 'own', 0, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
    )
    .expect("insert");
    let holder = std::thread::spawn(move || {
        // On PostgreSQL, wait until the API's insert waits for this transaction's row lock.
        if postgres && let Some(url) = crate::helpers::postgres_url() {
            use diesel::{Connection, RunQueryDsl};
            let mut watcher = diesel::pg::PgConnection::establish(&url).expect("connect");
            for _ in 0..200 {
                let waiting: Vec<Count> = diesel::sql_query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                     AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"services\"%'",
                )
                .load(&mut watcher)
                .expect("pg_stat_activity");
                if waiting.first().is_some_and(|c| c.n > 0) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
        } else {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        held.batch_execute("COMMIT").expect("commit");
    });
    let body = json!({"key": "race", "name": "Race", "kind": "own"});
    let response = app.post("/api/v1/services", &app.admin_token, &body).await;
    holder.join().expect("holder");
    let problem = response.problem(409);
    for leak in [
        "constraint",
        "duplicate",
        "UNIQUE",
        "services_key",
        "services.key",
    ] {
        assert!(!response.text.contains(leak), "{}", response.text);
    }
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("key"),
        "{problem}"
    );
    if postgres {
        // The database's refusal, mapped: the field is named in `errors`.
        assert_eq!(
            problem["errors"],
            json!([{"field": "key", "message": "is already taken"}])
        );
    }
    // Exactly the one row, and the API's attempt left nothing behind.
    let services = app.get("/api/v1/services?q=race", &app.admin_token).await;
    assert_eq!(services.json()["items"].as_array().map(Vec::len), Some(1));
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Boards and users have no delete (users are deactivated); a column's delete is the one that
/// references can block: a live item is a 409 naming it, a deleted item's tombstone moves to
/// the first column instead of breaking the foreign key.
async fn deleting_a_column_that_items_refer_to_is_a_409_or_moves_tombstones(app: TestApp) {
    ops_and_services(&app, &["wohngeld"]).await;
    let board = app.get("/api/v1/boards/OPS", &app.admin_token).await.json();
    let ready = board["columns"][1]["id"].clone();
    let live = app
        .item("OPS")
        .task()
        .title("Live")
        .service("wohngeld")
        .create()
        .await;
    let gone = app
        .item("OPS")
        .task()
        .title("Gone")
        .service("wohngeld")
        .create()
        .await;
    for task in [&live, &gone] {
        let moved = app
            .post(
                &format!(
                    "/api/v1/items/{}/move",
                    task["key"].as_str().unwrap_or_default()
                ),
                &app.admin_token,
                &json!({"column": ready}),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let column = format!("/api/v1/boards/OPS/columns/{ready}");
    let response = app.delete(&column, &app.admin_token).await;
    refused_naming(&response, live["key"].as_str().unwrap_or_default());
    assert_eq!(
        app.delete(
            &format!("/api/v1/items/{}", live["key"].as_str().unwrap_or_default()),
            &app.admin_token
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.delete(
            &format!("/api/v1/items/{}", gone["key"].as_str().unwrap_or_default()),
            &app.admin_token
        )
        .await
        .status,
        204
    );
    assert_eq!(app.delete(&column, &app.admin_token).await.status, 204);
    let columns = app
        .get("/api/v1/boards/OPS/columns", &app.admin_token)
        .await
        .json();
    assert_eq!(columns.as_array().map(Vec::len), Some(4));
}

/// A header that names a column twice is refused as a whole (the later cell would otherwise
/// silently win), naming the column; nothing is imported.
async fn a_duplicate_csv_header_column_is_a_422_naming_it(app: TestApp) {
    let response = app
        .import_services(
            "text/csv",
            "key;name;kind;Name\nwohngeld;Wohngeld;own;Wohngeld-Antrag\n",
        )
        .await;
    let problem = response.names_field(422, "line 1: name");
    assert!(
        response.text.contains("column 4 repeats column 2"),
        "{problem}"
    );
    let services = app.get("/api/v1/services", &app.admin_token).await.json();
    assert_eq!(services["items"], json!([]));
    // The same file without the repeat imports.
    let response = app
        .import_services("text/csv", "key;name;kind\nwohngeld;Wohngeld;own\n")
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
}

/// Cells that a spreadsheet would run as formulas are data here: stored and served as given
/// (every CSV the service writes neutralizes them, see `csv_out`).
async fn formula_cells_are_imported_as_given(app: TestApp) {
    let csv = concat!(
        "key,kind,name,description,topic\n",
        "formel,own,\"=cmd|' /C calc'!A0\",@SUM(A1:A9),\"+HYPERLINK(\"\"https://evil.example\"\")\"\n",
    );
    let response = app.import_services("text/csv", csv).await;
    assert_eq!(response.status, 200, "{}", response.text);
    let service = app
        .get("/api/v1/services/formel", &app.admin_token)
        .await
        .json();
    assert_eq!(service["name"], "=cmd|' /C calc'!A0");
    assert_eq!(service["description"], "@SUM(A1:A9)");
    assert_eq!(service["topic"], "+HYPERLINK(\"https://evil.example\")");
}

/// The `(kind, item)` of every link event in an item's history, as `token` reads it.
async fn link_events(
    app: &TestApp,
    key: &str,
    token: &str,
) -> (Vec<(String, Option<String>)>, String) {
    let response = app
        .get(&format!("/api/v1/items/{key}/history?limit=500"), token)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let events = response.json()["items"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["kind"] == "linked" || e["kind"] == "unlinked")
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap_or_default().to_string(),
                        e["data"]["item"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (events, response.text)
}

/// A requester's demand linked to another demand of their organization, to another
/// organization's demand and to a team task: in its history the requester sees every link
/// event, but the key only of the demand of their own organization; the team sees all keys.
async fn a_requester_sees_linked_keys_only_of_items_visible_to_them(app: TestApp) {
    ops_and_services(&app, &["wohngeld"]).await;
    app.board("DEM").name("Bedarfe").create().await;
    let lk_a = app.organization("LK-A").create().await;
    let lk_b = app.organization("LK-B").create().await;
    let (_, requester_a) = app.user("requester").organization(&lk_a).create().await;
    let (_, requester_b) = app.user("requester").organization(&lk_b).create().await;
    let raise = |token: String, title: &'static str| {
        let app = &app;
        async move {
            let demand = app
                .demand()
                .by(&token)
                .title(title)
                .service("wohngeld")
                .justification("Weniger Nachfragen")
                .create()
                .await;
            demand["key"].as_str().unwrap_or_default().to_string()
        }
    };
    let own = raise(requester_a.clone(), "Statusabfrage").await;
    let sibling = raise(requester_a.clone(), "Online-Bezahlung").await;
    let foreign = raise(requester_b.clone(), "Fremder Bedarf").await;
    let task = app
        .item("OPS")
        .task()
        .title("Intern")
        .service("wohngeld")
        .create()
        .await;
    let task = task["key"].as_str().unwrap_or_default().to_string();

    let mut foreign_link = json!(null);
    for (kind, other) in [
        ("relates", &sibling),
        ("blocks", &foreign),
        ("relates", &task),
    ] {
        let linked = app
            .post(
                &format!("/api/v1/items/{own}/links"),
                &app.admin_token,
                &json!({"kind": kind, "item": other}),
            )
            .await;
        assert_eq!(linked.status, 201, "{}", linked.text);
        if other == &foreign {
            foreign_link = linked.json()["id"].clone();
        }
    }
    let removed = app
        .delete(
            &format!("/api/v1/items/{own}/links/{foreign_link}"),
            &app.admin_token,
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.text);

    let (seen, text) = link_events(&app, &own, &requester_a).await;
    assert_eq!(
        seen,
        vec![
            ("linked".to_string(), Some(sibling.clone())),
            ("linked".to_string(), None),
            ("linked".to_string(), None),
            ("unlinked".to_string(), None),
        ]
    );
    assert!(!text.contains(&foreign) && !text.contains(&task), "{text}");

    let (team, _) = link_events(&app, &own, &app.admin_token).await;
    assert_eq!(
        team,
        vec![
            ("linked".to_string(), Some(sibling.clone())),
            ("linked".to_string(), Some(foreign.clone())),
            ("linked".to_string(), Some(task.clone())),
            ("unlinked".to_string(), Some(foreign.clone())),
        ]
    );
    // The other end's history names this demand: for requester B it is another
    // organization's, so B sees the link without its key.
    let (seen_by_b, text) = link_events(&app, &foreign, &requester_b).await;
    assert_eq!(
        seen_by_b,
        vec![("linked".to_string(), None), ("unlinked".to_string(), None)]
    );
    assert!(!text.contains(&own), "{text}");
}

/// The `maxItems` of property `property` of schema `schema` in the served spec.
fn max_items(spec: &serde_json::Value, schema: &str, property: &str) -> usize {
    let list = &spec["components"]["schemas"][schema]["properties"][property];
    list["maxItems"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_else(|| panic!("{schema}.{property} has no maxItems: {list}"))
}

/// For every list of a request body, the server accepts as many entries as the spec's
/// `maxItems` and refuses one more with a 422 naming the list, before anything is stored.
async fn every_list_limit_in_the_spec_is_the_servers(app: TestApp) {
    ops_and_services(&app, &["wohngeld"]).await;
    let spec = app
        .request(Method::GET, "/api-docs/openapi.json")
        .send()
        .await
        .json();
    let me = app.get("/api/v1/me", &app.admin_token).await.json()["id"].clone();
    let task = app
        .item("OPS")
        .task()
        .title("Ziel")
        .service("wohngeld")
        .create()
        .await;
    let task = task["key"].as_str().unwrap_or_default().to_string();
    let incident = app
        .item("OPS")
        .incident()
        .title("Ziel")
        .service("wohngeld")
        .severity("s3")
        .create()
        .await;
    let incident = incident["key"].as_str().unwrap_or_default().to_string();

    // (schema, property, method, path, field named in the 422, body with a list of n entries)
    type Body = Box<dyn Fn(usize) -> serde_json::Value>;
    let same = |value: serde_json::Value| move |n: usize| json!(vec![value.clone(); n]);
    let labels = |n: usize| json!((0..n).map(|i| format!("l{i}")).collect::<Vec<_>>());
    // Keys are unique per system across items: each body gets keys of its own.
    let refs = |prefix: &str, n: usize| {
        json!(
            (0..n)
                .map(|i| json!({"system": format!("s{i}"), "key": format!("{prefix}-{n}-{i}")}))
                .collect::<Vec<_>>()
        )
    };
    let leika = |n: usize| json!((0..n).map(|i| format!("99{i:012}")).collect::<Vec<_>>());
    let ids = same(me.clone());
    let cases: Vec<(&str, &str, Method, String, &str, Body)> = vec![
        (
            "NewItem",
            "labels",
            Method::POST,
            "/api/v1/items".into(),
            "labels",
            Box::new(
                move |n| json!({"board": "OPS", "type": "task", "title": "t", "service": "wohngeld", "labels": labels(n)}),
            ),
        ),
        (
            "NewItem",
            "external_refs",
            Method::POST,
            "/api/v1/items".into(),
            "external_refs",
            Box::new(
                move |n| json!({"board": "OPS", "type": "task", "title": "t", "service": "wohngeld", "external_refs": refs("POST", n)}),
            ),
        ),
        (
            "ItemChanges",
            "labels",
            Method::PATCH,
            format!("/api/v1/items/{task}"),
            "labels",
            Box::new(move |n| json!({"labels": labels(n)})),
        ),
        (
            "ItemChanges",
            "external_refs",
            Method::PATCH,
            format!("/api/v1/items/{task}"),
            "external_refs",
            Box::new(move |n| json!({"external_refs": refs("PATCH", n)})),
        ),
        (
            "IncidentInput",
            "affected_services",
            Method::PATCH,
            format!("/api/v1/items/{incident}"),
            "incident.affected_services",
            Box::new(move |n| json!({"incident": {"affected_services": vec!["wohngeld"; n]}})),
        ),
        (
            "RaciInput",
            "responsible",
            Method::PUT,
            format!("/api/v1/items/{task}/raci"),
            "responsible",
            Box::new({
                let ids = ids.clone();
                let me = me.clone();
                move |n| json!({"accountable": me, "responsible": ids(n)})
            }),
        ),
        (
            "RaciInput",
            "consulted",
            Method::PUT,
            "/api/v1/services/wohngeld/raci".into(),
            "consulted",
            Box::new({
                let ids = ids.clone();
                let me = me.clone();
                move |n| json!({"accountable": me, "consulted": ids(n)})
            }),
        ),
        (
            "RaciInput",
            "informed",
            Method::POST,
            "/api/v1/items".into(),
            "raci.informed",
            Box::new({
                let ids = ids.clone();
                let me = me.clone();
                move |n| json!({"board": "OPS", "type": "task", "title": "t", "raci": {"accountable": me, "informed": ids(n)}})
            }),
        ),
        (
            "ServiceInput",
            "leika_keys",
            Method::POST,
            "/api/v1/services".into(),
            "leika_keys",
            Box::new(
                move |n| json!({"key": format!("leika-{n}"), "name": "L", "kind": "own", "leika_keys": leika(n)}),
            ),
        ),
        (
            "ServiceInput",
            "tags",
            Method::POST,
            "/api/v1/services".into(),
            "tags",
            Box::new(
                move |n| json!({"key": format!("tags-{n}"), "name": "T", "kind": "own", "tags": labels(n)}),
            ),
        ),
        (
            "ServiceChanges",
            "leika_keys",
            Method::PATCH,
            "/api/v1/services/wohngeld".into(),
            "leika_keys",
            Box::new(move |n| json!({"leika_keys": leika(n)})),
        ),
        (
            "ServiceChanges",
            "tags",
            Method::PATCH,
            "/api/v1/services/wohngeld".into(),
            "tags",
            Box::new(move |n| json!({"tags": labels(n)})),
        ),
        (
            "NewBoard",
            "columns",
            Method::POST,
            "/api/v1/boards".into(),
            "columns",
            Box::new(
                move |n| json!({"key": format!("B{n}"), "name": "B", "columns": (0..n).map(|i| json!({"name": format!("c{i}"), "category": "todo"})).collect::<Vec<_>>()}),
            ),
        ),
    ];
    for (schema, property, method, path, field, body) in &cases {
        let limit = max_items(&spec, schema, property);
        let over = app
            .request(method.clone(), path)
            .token(&app.admin_token)
            .json(&body(limit + 1))
            .send()
            .await;
        let problem = over.names_field(422, field);
        assert!(
            over.text.contains(&format!("at most {limit}")),
            "{schema}.{property}: {problem}"
        );
        let at_limit = app
            .request(method.clone(), path)
            .token(&app.admin_token)
            .json(&body(limit))
            .send()
            .await;
        assert!(
            (200..300).contains(&at_limit.status),
            "{schema}.{property} with {limit} entries: {}",
            at_limit.text
        );
    }
    // The accountable person, when sent as a list, is a list of exactly one.
    let accountable = &spec["components"]["schemas"]["Accountable"]["oneOf"][1];
    assert_eq!(
        (
            accountable["minItems"].as_u64(),
            accountable["maxItems"].as_u64()
        ),
        (Some(1), Some(1))
    );
    for list in [json!([]), json!([me, me])] {
        app.put(
            &format!("/api/v1/items/{task}/raci"),
            &app.admin_token,
            &json!({"accountable": list}),
        )
        .await
        .names_field(422, "accountable");
    }
    // Nothing of the refused requests was stored: one board more per accepted POST only.
    let boards = app.get("/api/v1/boards", &app.admin_token).await.json();
    assert_eq!(boards["items"].as_array().map(Vec::len), Some(2));
}

/// An import holds at most `maxItems` services, as a JSON array or as CSV rows.
async fn an_import_over_its_row_limit_is_refused(app: TestApp) {
    let spec = app
        .request(Method::GET, "/api-docs/openapi.json")
        .send()
        .await
        .json();
    let limit = spec["components"]["schemas"]["ServiceImport"]["maxItems"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .expect("ServiceImport.maxItems");
    let rows: Vec<serde_json::Value> = (0..=limit)
        .map(|i| json!({"key": format!("s{i}"), "name": "n", "kind": "own"}))
        .collect();
    let response = app
        .request(Method::POST, "/api/v1/services/import")
        .token(&app.admin_token)
        .json(&json!(rows))
        .send()
        .await;
    response.names_field(422, "line 0: file");
    assert!(
        response.text.contains(&format!("at most {limit}")),
        "{}",
        response.text
    );
    let mut csv = String::from("key;name;kind\n");
    for i in 0..=limit {
        csv.push_str(&format!("s{i};n;own\n"));
    }
    let response = app.import_services("text/csv", &csv).await;
    response.names_field(422, "line 0: file");
    assert!(
        response.text.contains(&format!("more than {limit} rows")),
        "{}",
        response.text
    );
    let services = app.get("/api/v1/services", &app.admin_token).await.json();
    assert_eq!(services["items"], json!([]));
}
