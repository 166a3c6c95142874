//! Demand management: intake by requesters, their organization-only view on every read path,
//! decisions and the roadmap.

use actix_web::http::Method;
use diesel::prelude::*;
use opsboard::db::schema::demand_details;
use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::{keys, kinds};
use crate::helpers::TestApp;

both_engines!(
    a_raised_demand_lands_in_intake_with_the_services_raci,
    another_organizations_demand_does_not_exist_for_a_requester,
    lists_and_the_board_view_show_a_requester_their_own_demands_only,
    a_requester_reads_and_comments_on_their_own_demand_and_writes_nothing_else,
    the_activity_stream_shows_a_requester_their_own_demands_only,
    bad_intake_input_names_the_field_and_stores_nothing,
    the_team_sees_every_demand_and_a_requester_without_an_organization_none,
    only_the_accountable_person_and_managers_decide_and_never_without_a_reason,
    an_accepted_demand_moves_to_ready_and_shows_on_the_roadmap,
    a_deferral_stays_in_intake_and_only_demands_are_decided,
);

/// What the demand tests share: requesters of the organizations LK-A and LK-B, a demand
/// board DEM whose lead is the demand manager (accountable for every demand), and the service
/// wohngeld whose RACI names an accountable member, its case worker (responsible for the
/// service's demands).
struct Desk {
    requester_a: String,
    requester_b: String,
    manager: (Value, String),
    case_worker: (Value, String),
}

async fn demand_desk(app: &TestApp) -> Desk {
    let lk_a = app.organization("LK-A").create().await;
    let lk_b = app.organization("LK-B").create().await;
    let (_, requester_a) = app.user("requester").organization(&lk_a).create().await;
    let (_, requester_b) = app.user("requester").organization(&lk_b).create().await;
    let manager = app.user("manager").create().await;
    let case_worker = app.user("member").create().await;
    app.board("DEM")
        .name("Bedarfe")
        .lead(&manager.0)
        .create()
        .await;
    app.service("wohngeld")
        .name("Wohngeld")
        .accountable(&case_worker.0)
        .create()
        .await;
    Desk {
        requester_a,
        requester_b,
        manager,
        case_worker,
    }
}

/// The desk with DEM-1, LK-A's demand for wohngeld; DEM-2, LK-B's demand for a new service;
/// and DEM-3, a team task: `(desk, own, other)`, "own" being LK-A's.
async fn desk_with_demands(app: &TestApp) -> (Desk, Value, Value) {
    let s = demand_desk(app).await;
    let own = app
        .demand()
        .by(&s.requester_a)
        .title("Nachweise nachreichen")
        .service("wohngeld")
        .justification("Die Hälfte der Anträge ist unvollständig.")
        .with(json!({"desired_date": "2027-06-30"}))
        .create()
        .await;
    let other = app
        .demand()
        .by(&s.requester_b)
        .title("Hundesteuer online")
        .justification("Viele Anfragen in den Bürgerbüros.")
        .with(json!({"proposed_service": "Hundesteuer-Anmeldung"}))
        .create()
        .await;
    // A task on the same board: not a demand, so no requester sees it.
    app.item("DEM")
        .task()
        .title("Intern")
        .service("wohngeld")
        .create()
        .await;
    (s, own, other)
}

async fn a_raised_demand_lands_in_intake_with_the_services_raci(app: TestApp) {
    let (s, own, other) = desk_with_demands(&app).await;
    assert_eq!(own["type"], "demand");
    assert_eq!(own["board"], "DEM");
    assert_eq!(
        own["column"]["name"], "Backlog",
        "lands in the intake column"
    );
    assert_eq!(own["demand"]["decision"], "pending");
    assert_eq!(own["demand"]["requesting_organization"], "LK-A");
    assert_eq!(own["demand"]["desired_date"], "2027-06-30");
    assert_eq!(
        own["raci"]["accountable"]["id"], s.manager.0["id"],
        "the demand board's lead, the demand manager, is accountable: {own}"
    );
    assert_eq!(
        own["raci"]["responsible"][0]["id"], s.case_worker.0["id"],
        "the service's case worker (its template's accountable) is responsible: {own}"
    );
    // A demand for a new service has no service; the board lead is accountable for it.
    assert!(other["service"].is_null());
    assert_eq!(other["demand"]["proposed_service"], "Hundesteuer-Anmeldung");
    assert_eq!(other["raci"]["accountable"]["id"], s.manager.0["id"]);
}

async fn another_organizations_demand_does_not_exist_for_a_requester(app: TestApp) {
    let (s, _, other) = desk_with_demands(&app).await;
    let other_key = other["key"].as_str().unwrap_or_default().to_string();
    let other_id = other["id"].clone();
    let a = &s.requester_a;
    // By key, by id, history and comments: the other organization's demand does not exist.
    for path in [
        format!("/api/v1/items/{other_key}"),
        format!("/api/v1/items/{other_id}"),
        format!("/api/v1/items/{other_key}/history"),
        format!("/api/v1/items/{other_key}/comments"),
        "/api/v1/items/DEM-3".to_string(),
    ] {
        app.get(&path, a).await.problem(404);
    }
    app.post(
        &format!("/api/v1/items/{other_key}/comments"),
        a,
        &json!({"body": "Wir auch!"}),
    )
    .await
    .problem(404);
}

async fn lists_and_the_board_view_show_a_requester_their_own_demands_only(app: TestApp) {
    let (s, own, _) = desk_with_demands(&app).await;
    let a = &s.requester_a;
    // Lists, filters and the board view show their own demand only.
    let own_key = own["key"].as_str().unwrap_or_default().to_string();
    for path in [
        "/api/v1/items",
        "/api/v1/items?board=DEM",
        "/api/v1/items?type=demand",
        "/api/v1/demands",
    ] {
        let list = app.get(path, a).await;
        assert_eq!(list.status, 200, "{path}: {}", list.text);
        assert_eq!(keys(&list.json()), std::slice::from_ref(&own_key), "{path}");
    }
    let filtered = app
        .get("/api/v1/items?requesting_organization=LK-B", a)
        .await
        .json();
    assert_eq!(keys(&filtered), Vec::<String>::new());
    let view = app.get("/api/v1/boards/DEM/view", a).await.json();
    let cards: Vec<&str> = view["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["cards"].as_array().into_iter().flatten())
        .filter_map(|c| c["key"].as_str())
        .collect();
    assert_eq!(cards, [own_key.as_str()]);
}

async fn a_requester_reads_and_comments_on_their_own_demand_and_writes_nothing_else(app: TestApp) {
    let (s, own, _) = desk_with_demands(&app).await;
    let a = &s.requester_a;
    let own_key = own["key"].as_str().unwrap_or_default().to_string();
    // Their own demand: readable, with history, and open to their comments.
    assert_eq!(
        app.get(&format!("/api/v1/items/{own_key}"), a).await.status,
        200
    );
    let history = app
        .get(&format!("/api/v1/items/{own_key}/history"), a)
        .await
        .json();
    assert_eq!(history["items"][0]["kind"], "created");
    let comment = app
        .post(
            &format!("/api/v1/items/{own_key}/comments"),
            a,
            &json!({"body": "Gern bis Juni."}),
        )
        .await;
    assert_eq!(comment.status, 201, "{}", comment.text);
    let edited = app
        .patch(
            &format!("/api/v1/items/{own_key}/comments/{}", comment.json()["id"]),
            a,
            &json!({"body": "Gern bis Ende Juni."}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    // Nothing else: no other organization's name on a demand, no writes on items, no catalogue.
    app.post(
        "/api/v1/demands",
        a,
        &json!({"title": "x", "service": "wohngeld", "justification": "y", "requesting_organization": "LK-B"}),
    )
    .await
    .names_field(422, "requesting_organization");
    app.patch(
        &format!("/api/v1/items/{own_key}"),
        a,
        &json!({"title": "Neu"}),
    )
    .await
    .problem(403);
    app.get("/api/v1/services", a).await.problem(403);
    app.get("/api/v1/items/DEM-1/links", a).await.problem(403);
}

async fn bad_intake_input_names_the_field_and_stores_nothing(app: TestApp) {
    let (s, _, _) = desk_with_demands(&app).await;
    let a = &s.requester_a;
    // Bad intake input names the field and stores nothing.
    app.post(
        "/api/v1/demands",
        a,
        &json!({"title": "x", "justification": "y"}),
    )
    .await
    .names_field(422, "service");
    app.post(
        "/api/v1/demands",
        a,
        &json!({"title": "x", "service": "wohngeld", "justification": "  "}),
    )
    .await
    .names_field(422, "justification");
    let stored: i64 = demand_details::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(stored, 2);
}

async fn the_team_sees_every_demand_and_a_requester_without_an_organization_none(app: TestApp) {
    desk_with_demands(&app).await;
    // The team sees every demand; a viewer reads but raises none.
    let (_, viewer) = app.user("viewer").create().await;
    assert_eq!(
        keys(&app.get("/api/v1/demands", &viewer).await.json()).len(),
        2
    );
    app.post(
        "/api/v1/demands",
        &viewer,
        &json!({"title": "x", "service": "wohngeld", "justification": "y"}),
    )
    .await
    .problem(403);
    // A requester without an organization sees nothing and raises nothing.
    let (_, stray) = app.user("requester").create().await;
    assert_eq!(
        keys(&app.get("/api/v1/items", &stray).await.json()).len(),
        0
    );
    app.post(
        "/api/v1/demands",
        &stray,
        &json!({"title": "x", "service": "wohngeld", "justification": "y"}),
    )
    .await
    .problem(403);
    app.get("/api/v1/demands", "not-a-token").await.problem(401);
}

/// The desk and LK-A's demand "Statusabfrage" for wohngeld, pending: `(desk, demand)`.
async fn a_pending_demand(app: &TestApp) -> (Desk, Value) {
    let s = demand_desk(app).await;
    let demand = app
        .demand()
        .by(&s.requester_a)
        .title("Statusabfrage")
        .service("wohngeld")
        .justification("Nachfragen sparen.")
        .create()
        .await;
    (s, demand)
}

async fn only_the_accountable_person_and_managers_decide_and_never_without_a_reason(app: TestApp) {
    let (s, demand) = a_pending_demand(&app).await;
    let key = demand["key"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/items/{key}/decision");
    // Only the accountable person, managers and admins decide.
    let (_, bystander) = app.user("member").create().await;
    app.post(&path, &bystander, &json!({"decision": "accepted"}))
        .await
        .problem(403);
    // Responsible is not accountable: the case worker prepares, the demand manager decides.
    app.post(&path, &s.case_worker.1, &json!({"decision": "accepted"}))
        .await
        .problem(403);
    app.post(&path, &s.requester_a, &json!({"decision": "accepted"}))
        .await
        .problem(403);
    // Rejecting or deferring needs a reason; nothing changes without one.
    for decision in ["rejected", "deferred"] {
        app.post(&path, &s.manager.1, &json!({"decision": decision}))
            .await
            .names_field(422, "reason");
    }
    app.post(
        &path,
        &s.manager.1,
        &json!({"decision": "accepted", "target_quarter": "2027-Q5"}),
    )
    .await
    .names_field(422, "target_quarter");
    let unchanged = app
        .get(&format!("/api/v1/items/{key}"), &app.admin_token)
        .await
        .json();
    assert_eq!(unchanged["demand"]["decision"], "pending");
    assert_eq!(unchanged["version"], demand["version"]);
    // A stale If-Match is refused.
    app.request(Method::POST, &path)
        .token(&s.manager.1)
        .header("If-Match", "\"99\"")
        .json(&json!({"decision": "accepted"}))
        .send()
        .await
        .problem(412);
}

async fn an_accepted_demand_moves_to_ready_and_shows_on_the_roadmap(app: TestApp) {
    let (s, demand) = a_pending_demand(&app).await;
    let key = demand["key"].as_str().unwrap_or_default().to_string();
    let path = format!("/api/v1/items/{key}/decision");
    // The demand manager hands the demand to the case worker, who, now accountable, accepts:
    // decided_by/at set, moved from intake to Ready.
    let handed = app
        .put(
            &format!("/api/v1/items/{key}/raci"),
            &s.manager.1,
            &json!({"accountable": s.case_worker.0["id"], "informed": [s.manager.0["id"]]}),
        )
        .await;
    assert_eq!(handed.status, 200, "{}", handed.text);
    let demand = app
        .get(&format!("/api/v1/items/{key}"), &s.case_worker.1)
        .await
        .json();
    let accepted = app
        .request(Method::POST, &path)
        .token(&s.case_worker.1)
        .header("If-Match", &format!("\"{}\"", demand["version"]))
        .json(&json!({"decision": "accepted", "target_quarter": "2027-Q2", "value": 4, "effort": "m"}))
        .send()
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    let accepted = accepted.json();
    assert_eq!(accepted["demand"]["decision"], "accepted");
    assert_eq!(accepted["demand"]["decided_by"], s.case_worker.0["id"]);
    assert!(accepted["demand"]["decided_at"].is_string());
    assert_eq!(accepted["demand"]["target_quarter"], "2027-Q2");
    assert_eq!(accepted["demand"]["value"], 4);
    assert_eq!(accepted["demand"]["effort"], "m");
    assert_eq!(accepted["column"]["name"], "Ready");
    let history = app
        .get(&format!("/api/v1/items/{key}/history"), &app.admin_token)
        .await
        .json();
    assert_eq!(
        kinds(&history),
        [
            "created",
            "raci_changed",
            "accountable_changed",
            "demand_decided",
            "moved"
        ]
    );
    assert_eq!(history["items"][3]["data"]["new"], "accepted");
    assert_eq!(history["items"][3]["actor_id"], s.case_worker.0["id"]);
    // The roadmap shows it under its quarter and service, to the team and to its requester.
    for token in [&app.admin_token, &s.requester_a] {
        let roadmap = app.get("/api/v1/demands/roadmap", token).await;
        assert_eq!(roadmap.status, 200, "{}", roadmap.text);
        let roadmap = roadmap.json();
        assert_eq!(roadmap[0]["quarter"], "2027-Q2");
        assert_eq!(roadmap[0]["services"][0]["service"], "wohngeld");
        assert_eq!(roadmap[0]["services"][0]["demands"][0]["key"], key.as_str());
    }
    let others = app
        .get("/api/v1/demands/roadmap", &s.requester_b)
        .await
        .json();
    assert_eq!(others, json!([]), "another organization's roadmap is empty");
    app.get("/api/v1/demands/roadmap?from=2027", &app.admin_token)
        .await
        .names_field(400, "from");
}

async fn a_deferral_stays_in_intake_and_only_demands_are_decided(app: TestApp) {
    let (s, demand) = a_pending_demand(&app).await;
    // The first demand is accepted, so that the decision filter below has one to leave out.
    let key = demand["key"].as_str().unwrap_or_default();
    let accepted = app
        .post(
            &format!("/api/v1/items/{key}/decision"),
            &s.manager.1,
            &json!({"decision": "accepted", "target_quarter": "2027-Q2"}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    // A deferral with a reason; the decision list filter finds it.
    let later = app
        .demand()
        .by(&s.requester_b)
        .title("Englische Oberfläche")
        .service("wohngeld")
        .justification("Zuzug.")
        .create()
        .await;
    let later_key = later["key"].as_str().unwrap_or_default().to_string();
    let deferred = app
        .post(
            &format!("/api/v1/items/{later_key}/decision"),
            &s.manager.1,
            &json!({"decision": "deferred", "reason": "Nach dem Plattformwechsel."}),
        )
        .await;
    assert_eq!(deferred.status, 200, "{}", deferred.text);
    assert_eq!(
        deferred.json()["column"]["name"],
        "Backlog",
        "only acceptance moves"
    );
    let listed = app
        .get("/api/v1/demands?decision=deferred", &app.admin_token)
        .await
        .json();
    assert_eq!(keys(&listed), [later_key]);
    // Only demands are decided.
    let task = app
        .item("DEM")
        .task()
        .title("Intern")
        .accountable(&s.manager.0)
        .create()
        .await;
    app.post(
        &format!(
            "/api/v1/items/{}/decision",
            task["key"].as_str().unwrap_or_default()
        ),
        &s.manager.1,
        &json!({"decision": "accepted"}),
    )
    .await
    .problem(409);
}

both_engines!(the_demo_tells_the_whole_story);

/// With the demo data: a requester raises a demand and sees only their organization's; the
/// demand manager accepts it and it is on the roadmap; incidents of every severity, and the
/// breached list holds exactly the breached ones.
async fn the_demo_tells_the_whole_story(app: TestApp) {
    app.state
        .db
        .run(opsboard::workflows::demo::seed)
        .await
        .expect("demo data loads");
    let password = opsboard::workflows::demo::DEMO_PASSWORD;
    let requester = app.login("martin.hoffmann@example.org", password).await;
    let raised = app
        .demand()
        .by(&requester)
        .title("Online-Terminvergabe im Bürgerbüro")
        .justification("Lange Warteschlangen.")
        .with(json!({"proposed_service": "Terminvergabe"}))
        .create()
        .await;
    assert_eq!(raised["board"], "DEM");
    assert_eq!(raised["demand"]["requesting_organization"], "LUP");
    let mut seen = 0;
    let mut cursor = String::new();
    loop {
        let page = app
            .get(
                &format!("/api/v1/demands?limit=100&cursor={cursor}"),
                &requester,
            )
            .await
            .json();
        for item in page["items"].as_array().into_iter().flatten() {
            assert_eq!(item["demand"]["requesting_organization"], "LUP", "{item}");
            seen += 1;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert!(seen > 1, "the demo's LUP demands and the new one: {seen}");
    let manager = app.login("thomas.weiss@example.org", password).await;
    let key = raised["key"].as_str().unwrap_or_default();
    let accepted = app
        .post(
            &format!("/api/v1/items/{key}/decision"),
            &manager,
            &json!({"decision": "accepted", "target_quarter": "2028-Q1"}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    let roadmap = app
        .get("/api/v1/demands/roadmap?from=2028-Q1", &requester)
        .await
        .json();
    assert_eq!(roadmap[0]["quarter"], "2028-Q1");
    assert_eq!(roadmap[0]["services"][0]["name"], "Terminvergabe");
    assert_eq!(roadmap[0]["services"][0]["demands"][0]["key"], key);

    let incidents = |query: &'static str| {
        let app = &app;
        async move {
            let mut all = Vec::new();
            let mut cursor = String::new();
            loop {
                let page = app
                    .get(
                        &format!("/api/v1/incidents?{query}&limit=500&cursor={cursor}"),
                        &app.admin_token,
                    )
                    .await
                    .json();
                all.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = next.to_string(),
                    None => return all,
                }
            }
        }
    };
    let every = incidents("open=true").await;
    let mut severities: Vec<&str> = every
        .iter()
        .filter_map(|i| i["incident"]["severity"].as_str())
        .collect();
    severities.sort_unstable();
    severities.dedup();
    assert_eq!(severities, ["s1", "s2", "s3", "s4"]);
    let is_breached = |i: &Value| {
        i["sla"]["response_breached"] == true || i["sla"]["resolution_breached"] == true
    };
    let breached = incidents("breached=true").await;
    assert!(!breached.is_empty());
    assert!(breached.iter().all(is_breached));
    let within = incidents("breached=false").await;
    assert!(!within.is_empty(), "some incidents are within their times");
    assert!(within.iter().all(|i| !is_breached(i)));
    assert_eq!(
        breached.len() + within.len(),
        incidents("").await.len(),
        "every incident is in exactly one of the two lists"
    );
}

both_engines!(
    on_a_fresh_install_the_first_demand_creates_the_demand_board,
    concurrent_first_demands_create_one_board,
);

/// The names of a board's columns, in order.
async fn column_names(app: &TestApp, board: &str) -> Vec<String> {
    let response = app
        .get(&format!("/api/v1/boards/{board}"), &app.admin_token)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    response.json()["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// No board DEM yet: the first demand creates it with the default workflow (the one
/// `POST /boards` gives without columns) and lands in its first column; accepting moves it to
/// the next `todo` column, as the intake workflow expects.
async fn on_a_fresh_install_the_first_demand_creates_the_demand_board(app: TestApp) {
    let lk_a = app.organization("LK-A").create().await;
    let (_, requester) = app.user("requester").organization(&lk_a).create().await;
    let (accountable, _) = app.user("member").create().await;
    app.service("wohngeld")
        .accountable(&accountable)
        .create()
        .await;
    app.get("/api/v1/boards/DEM", &app.admin_token)
        .await
        .problem(404);
    let raised = app
        .demand()
        .by(&requester)
        .service("wohngeld")
        .create()
        .await;
    assert_eq!(raised["board"], "DEM");
    assert_eq!(raised["column"]["name"], "Backlog", "{raised}");
    assert_eq!(
        column_names(&app, "DEM").await,
        ["Backlog", "Ready", "In progress", "Review", "Done"]
    );
    // A second demand uses the same board.
    app.demand()
        .by(&requester)
        .service("wohngeld")
        .create()
        .await;
    let boards = app.get("/api/v1/boards", &app.admin_token).await.json();
    let dem = boards["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|b| b["key"] == "DEM")
        .count();
    assert_eq!(dem, 1, "{boards}");
    // The first admin leads it, so a demand for a service that does not exist yet has an
    // accountable person from the start.
    let admin = app.get("/api/v1/me", &app.admin_token).await.json();
    let board = app.get("/api/v1/boards/DEM", &app.admin_token).await.json();
    assert_eq!(board["lead"], admin["id"], "{board}");
    let new_service = app
        .demand()
        .by(&requester)
        .with(json!({"proposed_service": "Hundesteuer-Anmeldung"}))
        .create()
        .await;
    assert_eq!(
        new_service["raci"]["accountable"]["id"], admin["id"],
        "{new_service}"
    );
    let key = raised["key"].as_str().unwrap_or_default();
    let accepted = app
        .post(
            &format!("/api/v1/items/{key}/decision"),
            &app.admin_token,
            &json!({"decision": "accepted"}),
        )
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.text);
    assert_eq!(accepted.json()["column"]["name"], "Ready");
}

/// Eight first demands at the same moment against the bound server: all are taken, and there
/// is one board DEM with one set of columns (on PostgreSQL the losers of the race for the
/// board's key use the winner's board).
async fn concurrent_first_demands_create_one_board(app: TestApp) {
    let (accountable, _) = app.user("member").create().await;
    app.service("wohngeld")
        .accountable(&accountable)
        .create()
        .await;
    let body = json!({"title": "Gleichzeitig", "justification": "Test.", "service": "wohngeld"});
    let responses = futures_util::future::join_all(
        (0..8).map(|_| app.post("/api/v1/demands", &app.admin_token, &body)),
    )
    .await;
    for response in &responses {
        assert_eq!(response.status, 201, "{}", response.text);
    }
    let mut conn = app.conn();
    let boards: i64 = opsboard::db::schema::boards::table
        .filter(opsboard::db::schema::boards::key.eq("DEM"))
        .count()
        .get_result(&mut conn)
        .expect("boards counted");
    assert_eq!(boards, 1);
    drop(conn);
    assert_eq!(column_names(&app, "DEM").await.len(), 5);
    let mut numbers: Vec<String> = responses
        .iter()
        .map(|r| r.json()["key"].as_str().unwrap_or_default().to_string())
        .collect();
    numbers.sort();
    numbers.dedup();
    assert_eq!(numbers.len(), 8, "{numbers:?}");
}

async fn the_activity_stream_shows_a_requester_their_own_demands_only(app: TestApp) {
    let (s, own, other) = desk_with_demands(&app).await;
    let items_in = |page: &Value| {
        let mut keys: Vec<String> = page["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["item"]["key"].as_str().map(str::to_string))
            .collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let (own_key, other_key) = (
        own["key"].as_str().unwrap_or_default().to_string(),
        other["key"].as_str().unwrap_or_default().to_string(),
    );
    let mine = app.get("/api/v1/activity", &s.requester_a).await.json();
    assert_eq!(items_in(&mine), vec![own_key.as_str()], "{mine}");
    let theirs = app
        .get("/api/v1/activity?board=DEM&since=P1D", &s.requester_b)
        .await
        .json();
    assert_eq!(items_in(&theirs), vec![other_key.as_str()], "{theirs}");
    // The team sees every item, the internal task included.
    let team = app.get("/api/v1/activity", &s.manager.1).await.json();
    assert_eq!(items_in(&team).len(), 3, "{team}");
    assert!(items_in(&team).contains(&own_key) && items_in(&team).contains(&other_key));
}
