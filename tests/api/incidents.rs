//! Incidents: their fields, the resolution rule, SLA clocks on business hours (weekends,
//! Easter, Reformation Day), calendar-minute policies, pauses, and the attention lists.

use actix_web::http::Method;
use chrono::{DateTime, Duration, SubsecRound, Utc};
use diesel::prelude::*;
use opsboard::db::schema::events;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    sla_clocks_follow_business_hours_holidays_and_pauses,
    breached_and_due_soon_lists_and_breach_events,
);

/// A board OPS with a waiting column that pauses the SLA, a service with an accountable
/// member, and the given policies. Returns the board.
async fn setup(app: &TestApp, policies: &[Value]) -> Value {
    let board = app
        .post(
            "/api/v1/boards",
            &app.admin_token,
            &json!({"key": "OPS", "name": "Betrieb", "columns": [
                {"name": "Eingang", "category": "todo"},
                {"name": "In Arbeit", "category": "in_progress"},
                {"name": "Wartet auf Meldende", "category": "in_progress", "pauses_sla": true},
                {"name": "Erledigt", "category": "done"},
            ]}),
        )
        .await;
    assert_eq!(board.status, 201, "{}", board.text);
    let (worker, _) = app.user("member").create().await;
    for key in ["wohngeld", "bafoeg"] {
        app.post(
            "/api/v1/services",
            &app.admin_token,
            &json!({"key": key, "name": key, "kind": "own"}),
        )
        .await;
        let raci = app
            .request(Method::PUT, &format!("/api/v1/services/{key}/raci"))
            .token(&app.admin_token)
            .json(&json!({"accountable": worker["id"]}))
            .send()
            .await;
        assert_eq!(raci.status, 200, "{}", raci.text);
    }
    for policy in policies {
        let created = app
            .post("/api/v1/sla-policies", &app.admin_token, policy)
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    board.json()
}

fn column(board: &Value, name: &str) -> Value {
    board["columns"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .map(|c| c["id"].clone())
        .unwrap_or_default()
}

async fn incident(app: &TestApp, incident: Value) -> Value {
    let response = app
        .post(
            "/api/v1/items",
            &app.admin_token,
            &json!({"board": "OPS", "type": "incident", "title": "Upload bricht ab",
                    "service": "wohngeld", "incident": incident}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    response.json()
}

async fn get(app: &TestApp, key: &Value) -> Value {
    app.get(
        &format!("/api/v1/items/{}", key.as_str().unwrap_or_default()),
        &app.admin_token,
    )
    .await
    .json()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a time")
        .with_timezone(&Utc)
}

fn due(item: &Value, clock: &str) -> DateTime<Utc> {
    at(item["sla"][format!("{clock}_due_at")]
        .as_str()
        .unwrap_or_default())
}

async fn mv(app: &TestApp, key: &Value, body: Value) -> crate::helpers::Response {
    app.post(
        &format!("/api/v1/items/{}/move", key.as_str().unwrap_or_default()),
        &app.admin_token,
        &body,
    )
    .await
}

/// Backdates the item's last move, as if it had happened at `when`.
fn backdate_last_move(app: &TestApp, item_id: i64, when: DateTime<Utc>) {
    let mut conn = app.conn();
    let last: i64 = events::table
        .filter(
            events::entity_id
                .eq(item_id)
                .and(events::entity_type.eq("item"))
                .and(events::kind.eq("moved")),
        )
        .order(events::id.desc())
        .select(events::id)
        .first(&mut conn)
        .expect("a move event");
    diesel::update(events::table.find(last))
        .set(events::created_at.eq(when.naive_utc()))
        .execute(&mut conn)
        .expect("backdated");
}

async fn sla_clocks_follow_business_hours_holidays_and_pauses(app: TestApp) {
    let board = setup(
        &app,
        &[
            json!({"severity": "s3", "response_minutes": 60, "resolution_minutes": 480, "clock": "business"}),
            json!({"severity": "s1", "response_minutes": 30, "resolution_minutes": 240, "clock": "calendar"}),
        ],
    )
    .await;
    // Friday 15:00 in Berlin: one business hour left that day, the rest on Monday.
    let weekend = incident(
        &app,
        json!({"severity": "s3", "reported_at": "2026-11-27T14:00:00Z", "impact": "Kein Upload"}),
    )
    .await;
    assert_eq!(weekend["incident"]["severity"], "s3");
    assert_eq!(
        weekend["incident"]["affected_services"],
        json!(["wohngeld"])
    );
    assert_eq!(weekend["sla"]["clock"], "business");
    assert_eq!(due(&weekend, "response"), at("2026-11-27T15:00:00Z"));
    assert_eq!(due(&weekend, "resolution"), at("2026-11-30T14:00:00Z"));
    // Maundy Thursday 2027, 15:00: Good Friday, the weekend and Easter Monday (29 March) are
    // off; summer time starts on the Sunday, so Tuesday 15:00 is 13:00 UTC.
    let easter = incident(
        &app,
        json!({"severity": "s3", "reported_at": "2027-03-25T14:00:00Z"}),
    )
    .await;
    assert_eq!(due(&easter, "response"), at("2027-03-25T15:00:00Z"));
    assert_eq!(due(&easter, "resolution"), at("2027-03-30T13:00:00Z"));
    assert_eq!(easter["sla"]["response_breached"], false);
    // Thursday 30 October 2025, 15:00: Reformation Day (Friday 31 October) is off in
    // Mecklenburg-Vorpommern. Long past and never answered: both targets are breached.
    let reformation = incident(
        &app,
        json!({"severity": "s3", "reported_at": "2025-10-30T14:00:00Z", "affected_services": ["bafoeg"]}),
    )
    .await;
    assert_eq!(due(&reformation, "resolution"), at("2025-11-03T14:00:00Z"));
    assert_eq!(reformation["sla"]["response_breached"], true);
    assert_eq!(reformation["sla"]["resolution_breached"], true);
    assert!(reformation["sla"]["remaining_business_minutes"].as_i64() < Some(0));
    assert_eq!(
        reformation["incident"]["affected_services"],
        json!(["bafoeg", "wohngeld"])
    );
    // A calendar-minute policy counts New Year's night like any other.
    let outage = incident(
        &app,
        json!({"severity": "s1", "reported_at": "2027-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(outage["sla"]["clock"], "calendar");
    assert_eq!(due(&outage, "response"), at("2027-01-01T00:30:00Z"));
    assert_eq!(due(&outage, "resolution"), at("2027-01-01T04:00:00Z"));

    // A pause in the waiting column: reported two hours ago, waiting from minute 30 to 90.
    let reported = Utc::now().trunc_subsecs(0) - Duration::minutes(120);
    let paused = incident(
        &app,
        json!({"severity": "s1", "reported_at": reported.to_rfc3339()}),
    )
    .await;
    let id = paused["id"].as_i64().unwrap_or_default();
    let key = paused["key"].clone();
    let moved = mv(
        &app,
        &key,
        json!({"column": column(&board, "Wartet auf Meldende")}),
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    backdate_last_move(&app, id, reported + Duration::minutes(30));
    let waiting = get(&app, &key).await;
    assert_eq!(waiting["sla"]["paused"], true, "{waiting}");
    assert_eq!(waiting["sla"]["remaining_business_minutes"], 210);
    assert!(
        waiting["incident"]["first_response_at"].is_string(),
        "the team's first move into work answers the incident"
    );
    let resumed = mv(&app, &key, json!({"column": column(&board, "In Arbeit")})).await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    backdate_last_move(&app, id, reported + Duration::minutes(90));
    let running = get(&app, &key).await;
    assert_eq!(running["sla"]["paused"], false);
    assert_eq!(
        due(&running, "resolution"),
        reported + Duration::minutes(240 + 60),
        "the hour in the waiting column does not count"
    );
    assert_eq!(running["sla"]["remaining_business_minutes"], 180);
    // Done needs a resolution; with one, the resolution clock stops.
    let refused = mv(&app, &key, json!({"column": column(&board, "Erledigt")})).await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("resolution"), "{}", refused.text);
    let done = mv(
        &app,
        &key,
        json!({"column": column(&board, "Erledigt"), "resolution": "Zertifikat erneuert"}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let done = done.json();
    assert!(done["incident"]["resolved_at"].is_string());
    assert!(done["sla"]["remaining_business_minutes"].is_null());
    // PATCH changes incident fields and records them in the history.
    let patched = app
        .patch(
            &format!(
                "/api/v1/items/{}",
                weekend["key"].as_str().unwrap_or_default()
            ),
            &app.admin_token,
            &json!({"incident": {"severity": "s1", "impact": "Totalausfall"}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let patched = patched.json();
    assert_eq!(patched["incident"]["severity"], "s1");
    assert_eq!(
        patched["sla"]["clock"], "calendar",
        "the s1 policy applies now"
    );
    let history = app
        .get(
            &format!(
                "/api/v1/items/{}/history",
                weekend["key"].as_str().unwrap_or_default()
            ),
            &app.admin_token,
        )
        .await
        .json();
    let last = history["items"]
        .as_array()
        .and_then(|e| e.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["data"]["incident.severity"]["new"], "s1");
    // Bad incident input names the field; a task takes no incident fields.
    app.post(
        "/api/v1/items",
        &app.admin_token,
        &json!({"board": "OPS", "type": "incident", "title": "x", "service": "wohngeld",
                "incident": {"severity": "s9"}}),
    )
    .await
    .names_field(422, "incident.severity");
    app.post(
        "/api/v1/items",
        &app.admin_token,
        &json!({"board": "OPS", "type": "incident", "title": "x", "service": "wohngeld",
                "incident": {"reported_at": "2026-01-01T00:00:00Z", "first_response_at": "2025-01-01T00:00:00Z"}}),
    )
    .await
    .names_field(422, "incident.first_response_at");
    app.post(
        "/api/v1/items",
        &app.admin_token,
        &json!({"board": "OPS", "type": "task", "title": "x", "incident": {"severity": "s1"}}),
    )
    .await
    .names_field(422, "incident");
}

async fn breached_and_due_soon_lists_and_breach_events(app: TestApp) {
    setup(
        &app,
        &[
            json!({"severity": "s1", "response_minutes": 30, "resolution_minutes": 240, "clock": "calendar"}),
            json!({"severity": "s4", "response_minutes": 480, "resolution_minutes": 4800, "clock": "business"}),
        ],
    )
    .await;
    let now = Utc::now().trunc_subsecs(0);
    let breached = incident(
        &app,
        json!({"severity": "s1", "reported_at": "2025-10-30T14:00:00Z"}),
    )
    .await;
    let soon = incident(
        &app,
        json!({"severity": "s1", "reported_at": (now - Duration::minutes(200)).to_rfc3339(),
               "first_response_at": (now - Duration::minutes(190)).to_rfc3339()}),
    )
    .await;
    let calm = incident(
        &app,
        json!({"severity": "s4", "reported_at": now.to_rfc3339(), "affected_services": ["bafoeg"]}),
    )
    .await;
    let task = app
        .post(
            "/api/v1/items",
            &app.admin_token,
            &json!({"board": "OPS", "type": "task", "title": "Aufräumen", "service": "wohngeld"}),
        )
        .await;
    assert_eq!(task.status, 201, "{}", task.text);
    let (_, viewer) = app.user("viewer").create().await;
    let list = |query: &'static str| {
        let app = &app;
        let viewer = viewer.clone();
        async move {
            let response = app
                .get(&format!("/api/v1/incidents?{query}"), &viewer)
                .await;
            assert_eq!(response.status, 200, "{query}: {}", response.text);
            response.json()["items"]
                .as_array()
                .map(|items| items.iter().map(|i| i["key"].clone()).collect::<Vec<_>>())
                .unwrap_or_default()
        }
    };
    assert_eq!(list("breached=true").await, [breached["key"].clone()]);
    assert_eq!(
        list("breached=false").await,
        [soon["key"].clone(), calm["key"].clone()]
    );
    assert_eq!(list("due_within=120").await, [soon["key"].clone()]);
    assert_eq!(list("severity=s4").await, [calm["key"].clone()]);
    assert_eq!(list("service=bafoeg").await, [calm["key"].clone()]);
    assert_eq!(list("open=true&limit=1").await.len(), 1);
    app.get("/api/v1/incidents?due_within=-5", &viewer)
        .await
        .names_field(400, "due_within");
    let (_, requester) = app.user("requester").create().await;
    app.get("/api/v1/incidents", &requester).await.problem(403);
    app.get("/api/v1/incidents", "nope").await.problem(401);
    // The board shows severity and SLA state on the card.
    let view = app.get("/api/v1/boards/OPS/view", &viewer).await.json();
    let card = view["columns"][0]["cards"][0].clone();
    assert_eq!(card["key"], breached["key"]);
    assert_eq!(card["severity"], "s1");
    assert_eq!(card["sla"]["state"], "breached");
    // Each breach becomes one event, once.
    let first = opsboard::incidents::model::record_breaches(&mut app.conn(), Utc::now())
        .expect("breach check");
    assert_eq!(first, 2, "response and resolution of the breached incident");
    let again = opsboard::incidents::model::record_breaches(&mut app.conn(), Utc::now())
        .expect("breach check");
    assert_eq!(again, 0);
    let history = app
        .get(
            &format!(
                "/api/v1/items/{}/history",
                breached["key"].as_str().unwrap_or_default()
            ),
            &viewer,
        )
        .await
        .json();
    let breaches: Vec<&str> = history["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "sla_breached")
        .filter_map(|e| e["data"]["clock"].as_str())
        .collect();
    assert_eq!(breaches, ["response", "resolution"]);
    // A changed policy recomputes every clock: 200 minutes now exceed the resolution target.
    let policies = app
        .get("/api/v1/sla-policies?severity=s1", &app.admin_token)
        .await
        .json();
    let policy = policies["items"][0].clone();
    let changed = app
        .patch(
            &format!("/api/v1/sla-policies/{}", policy["id"]),
            &app.admin_token,
            &json!({"resolution_minutes": 100}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(
        list("breached=true").await,
        [breached["key"].clone(), soon["key"].clone()]
    );
}
