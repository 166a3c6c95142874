//! Incidents: their fields, the resolution rule, SLA clocks on business hours (weekends,
//! Easter, Reformation Day), calendar-minute policies, pauses, and the attention lists.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use diesel::prelude::*;
use opsboard::db::schema::events;
use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::{Board, ItemBuilder, last_event};
use crate::helpers::TestApp;

both_engines!(
    business_hours_skip_weekends_easter_and_reformation_day,
    a_calendar_policy_counts_new_years_night_like_any_other,
    a_pause_in_the_waiting_column_stops_the_clock,
    done_needs_a_resolution_and_stops_the_resolution_clock,
    a_patch_changes_incident_fields_and_the_policy_that_applies,
    bad_incident_input_names_the_field,
    the_attention_lists_hold_breached_and_due_soon_incidents,
    the_board_card_shows_severity_and_sla_state,
    each_breach_becomes_one_event_once,
    a_changed_policy_recomputes_every_clock,
);

/// A board OPS with a waiting column that pauses the SLA, and the services wohngeld and bafoeg
/// with an accountable member. Returns the board.
pub(crate) async fn ops_with_a_waiting_column(app: &TestApp) -> Board {
    let board = app
        .board("OPS")
        .name("Betrieb")
        .columns(json!([
            {"name": "Eingang", "category": "todo"},
            {"name": "In Arbeit", "category": "in_progress"},
            {"name": "Wartet auf Meldende", "category": "in_progress", "pauses_sla": true},
            {"name": "Erledigt", "category": "done"},
        ]))
        .create()
        .await;
    let (worker, _) = app.user("member").create().await;
    for key in ["wohngeld", "bafoeg"] {
        app.service(key).accountable(&worker).create().await;
    }
    board
}

/// The business-hours policy for s3 (60 and 480 minutes) and the calendar one for s1 (30 and
/// 240).
pub(crate) async fn s3_business_and_s1_calendar(app: &TestApp) {
    app.sla_policy("s3")
        .minutes(60, 480)
        .clock("business")
        .create()
        .await;
    app.sla_policy("s1")
        .minutes(30, 240)
        .clock("calendar")
        .create()
        .await;
}

/// An incident "Upload bricht ab" on OPS for wohngeld, of `severity`, reported at `reported_at`.
pub(crate) fn incident<'a>(app: &'a TestApp, severity: &str, reported_at: &str) -> ItemBuilder<'a> {
    app.item("OPS")
        .incident()
        .title("Upload bricht ab")
        .service("wohngeld")
        .severity(severity)
        .reported_at(reported_at)
}

/// The item `key` as the admin reads it.
async fn get(app: &TestApp, key: &str) -> Value {
    app.get(&format!("/api/v1/items/{key}"), &app.admin_token)
        .await
        .json()
}

/// The item's key.
fn key(item: &Value) -> &str {
    item["key"].as_str().unwrap_or_default()
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

async fn business_hours_skip_weekends_easter_and_reformation_day(app: TestApp) {
    ops_with_a_waiting_column(&app).await;
    s3_business_and_s1_calendar(&app).await;
    // Friday 15:00 in Berlin: one business hour left that day, the rest on Monday.
    let weekend = incident(&app, "s3", "2026-11-27T14:00:00Z")
        .with(json!({"incident": {"impact": "Kein Upload"}}))
        .create()
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
    let easter = incident(&app, "s3", "2027-03-25T14:00:00Z").create().await;
    assert_eq!(due(&easter, "response"), at("2027-03-25T15:00:00Z"));
    assert_eq!(due(&easter, "resolution"), at("2027-03-30T13:00:00Z"));
    assert_eq!(easter["sla"]["response_breached"], false);
    // Thursday 30 October 2025, 15:00: Reformation Day (Friday 31 October) is off in
    // Mecklenburg-Vorpommern. Long past and never answered: both targets are breached.
    let reformation = incident(&app, "s3", "2025-10-30T14:00:00Z")
        .with(json!({"incident": {"affected_services": ["bafoeg"]}}))
        .create()
        .await;
    assert_eq!(due(&reformation, "resolution"), at("2025-11-03T14:00:00Z"));
    assert_eq!(reformation["sla"]["response_breached"], true);
    assert_eq!(reformation["sla"]["resolution_breached"], true);
    assert!(reformation["sla"]["remaining_business_minutes"].as_i64() < Some(0));
    assert_eq!(
        reformation["incident"]["affected_services"],
        json!(["bafoeg", "wohngeld"])
    );
}

async fn a_calendar_policy_counts_new_years_night_like_any_other(app: TestApp) {
    ops_with_a_waiting_column(&app).await;
    s3_business_and_s1_calendar(&app).await;
    let outage = incident(&app, "s1", "2027-01-01T00:00:00Z").create().await;
    assert_eq!(outage["sla"]["clock"], "calendar");
    assert_eq!(due(&outage, "response"), at("2027-01-01T00:30:00Z"));
    assert_eq!(due(&outage, "resolution"), at("2027-01-01T04:00:00Z"));
}

async fn a_pause_in_the_waiting_column_stops_the_clock(app: TestApp) {
    let board = ops_with_a_waiting_column(&app).await;
    s3_business_and_s1_calendar(&app).await;
    // A pause in the waiting column: reported two hours ago, waiting from minute 30 to 90.
    let reported = Utc::now().trunc_subsecs(0) - Duration::minutes(120);
    let paused = incident(&app, "s1", &reported.to_rfc3339()).create().await;
    let id = paused["id"].as_i64().unwrap_or_default();
    let key = key(&paused);
    let moved = app
        .move_item(
            key,
            &app.admin_token,
            &json!({"column": board.column_id("Wartet auf Meldende")}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    backdate_last_move(&app, id, reported + Duration::minutes(30));
    let waiting = get(&app, key).await;
    assert_eq!(waiting["sla"]["paused"], true, "{waiting}");
    assert_eq!(waiting["sla"]["remaining_business_minutes"], 210);
    assert!(
        waiting["incident"]["first_response_at"].is_string(),
        "the team's first move into work answers the incident"
    );
    let resumed = app
        .move_item(
            key,
            &app.admin_token,
            &json!({"column": board.column_id("In Arbeit")}),
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.text);
    backdate_last_move(&app, id, reported + Duration::minutes(90));
    let running = get(&app, key).await;
    assert_eq!(running["sla"]["paused"], false);
    assert_eq!(
        due(&running, "resolution"),
        reported + Duration::minutes(240 + 60),
        "the hour in the waiting column does not count"
    );
    assert_eq!(running["sla"]["remaining_business_minutes"], 180);
}

async fn done_needs_a_resolution_and_stops_the_resolution_clock(app: TestApp) {
    let board = ops_with_a_waiting_column(&app).await;
    s3_business_and_s1_calendar(&app).await;
    let reported = Utc::now().trunc_subsecs(0) - Duration::minutes(120);
    let item = incident(&app, "s1", &reported.to_rfc3339()).create().await;
    let key = key(&item);
    let started = app
        .move_item(
            key,
            &app.admin_token,
            &json!({"column": board.column_id("In Arbeit")}),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    // Done needs a resolution; with one, the resolution clock stops.
    let done = board.column_id("Erledigt");
    let refused = app
        .move_item(key, &app.admin_token, &json!({"column": done}))
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(refused.text.contains("resolution"), "{}", refused.text);
    let done = app
        .move_item(
            key,
            &app.admin_token,
            &json!({"column": done, "resolution": "Zertifikat erneuert"}),
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let done = done.json();
    assert!(done["incident"]["resolved_at"].is_string());
    assert!(done["sla"]["remaining_business_minutes"].is_null());
}

async fn a_patch_changes_incident_fields_and_the_policy_that_applies(app: TestApp) {
    ops_with_a_waiting_column(&app).await;
    s3_business_and_s1_calendar(&app).await;
    let weekend = incident(&app, "s3", "2026-11-27T14:00:00Z")
        .with(json!({"incident": {"impact": "Kein Upload"}}))
        .create()
        .await;
    // PATCH changes incident fields and records them in the history.
    let patched = app
        .patch(
            &format!("/api/v1/items/{}", key(&weekend)),
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
            &format!("/api/v1/items/{}/history", key(&weekend)),
            &app.admin_token,
        )
        .await
        .json();
    let last = last_event(&history);
    assert_eq!(last["data"]["incident.severity"]["new"], "s1");
}

async fn bad_incident_input_names_the_field(app: TestApp) {
    ops_with_a_waiting_column(&app).await;
    s3_business_and_s1_calendar(&app).await;
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

/// Three incidents and a task on OPS, under a calendar policy for s1 (30 and 240 minutes) and
/// a business one for s4: one breached long ago, one due within two hours, one calm for
/// bafoeg.
struct Attention {
    breached: Value,
    soon: Value,
    calm: Value,
    s1_policy: Value,
    viewer: String,
}

async fn attention(app: &TestApp) -> Attention {
    ops_with_a_waiting_column(app).await;
    let s1_policy = app
        .sla_policy("s1")
        .minutes(30, 240)
        .clock("calendar")
        .create()
        .await;
    app.sla_policy("s4")
        .minutes(480, 4800)
        .clock("business")
        .create()
        .await;
    let now = Utc::now().trunc_subsecs(0);
    let breached = incident(app, "s1", "2025-10-30T14:00:00Z").create().await;
    let soon = incident(app, "s1", &(now - Duration::minutes(200)).to_rfc3339())
        .with(
            json!({"incident": {"first_response_at": (now - Duration::minutes(190)).to_rfc3339()}}),
        )
        .create()
        .await;
    let calm = incident(app, "s4", &now.to_rfc3339())
        .with(json!({"incident": {"affected_services": ["bafoeg"]}}))
        .create()
        .await;
    app.item("OPS")
        .task()
        .title("Aufräumen")
        .service("wohngeld")
        .create()
        .await;
    let (_, viewer) = app.user("viewer").create().await;
    Attention {
        breached,
        soon,
        calm,
        s1_policy,
        viewer,
    }
}

/// The keys of `GET /incidents?{query}` as the holder of `token` reads them.
async fn listed(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/api/v1/incidents?{query}"), token).await;
    assert_eq!(response.status, 200, "{query}: {}", response.text);
    response.json()["items"]
        .as_array()
        .map(|items| items.iter().map(|i| i["key"].clone()).collect::<Vec<_>>())
        .unwrap_or_default()
}

async fn the_attention_lists_hold_breached_and_due_soon_incidents(app: TestApp) {
    let Attention {
        breached,
        soon,
        calm,
        viewer,
        ..
    } = attention(&app).await;
    let list = |query: &'static str| listed(&app, &viewer, query);
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
}

async fn the_board_card_shows_severity_and_sla_state(app: TestApp) {
    let Attention {
        breached, viewer, ..
    } = attention(&app).await;
    // The board shows severity and SLA state on the card.
    let view = app.get("/api/v1/boards/OPS/view", &viewer).await.json();
    let card = view["columns"][0]["cards"][0].clone();
    assert_eq!(card["key"], breached["key"]);
    assert_eq!(card["severity"], "s1");
    assert_eq!(card["sla"]["state"], "breached");
}

async fn each_breach_becomes_one_event_once(app: TestApp) {
    let Attention {
        breached, viewer, ..
    } = attention(&app).await;
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
}

async fn a_changed_policy_recomputes_every_clock(app: TestApp) {
    let Attention {
        breached,
        soon,
        s1_policy,
        viewer,
        ..
    } = attention(&app).await;
    let list = |query: &'static str| listed(&app, &viewer, query);
    assert_eq!(list("breached=true").await, [breached["key"].clone()]);
    // A changed policy recomputes every clock: 200 minutes now exceed the resolution target.
    let changed = app
        .patch(
            &format!("/api/v1/sla-policies/{}", s1_policy["id"]),
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

both_engines!(two_apps_in_one_process_count_in_their_own_working_hours => super::work_until_six);

/// Working hours 08:00 to 18:00 instead of the default 16:00.
fn work_until_six(settings: &mut opsboard::config::Settings) {
    settings.sla.day_end = "18:00".into();
}

/// The business calendar is app state: an app working until 18:00 and one with the default
/// hours (until 16:00), alive side by side in this process on the same engine, give the same
/// incident different due times, each its own, whichever answered last.
async fn two_apps_in_one_process_count_in_their_own_working_hours(late: TestApp) {
    let engine = if late.state.settings.database.url.starts_with("postgres") {
        crate::helpers::Engine::Postgres
    } else {
        crate::helpers::Engine::Sqlite
    };
    let Some(early) = TestApp::spawn(engine).await else {
        return;
    };
    // Friday 15:30 in Berlin, a response due in 60 business minutes.
    let mut keys = Vec::new();
    for app in [&early, &late] {
        ops_with_a_waiting_column(app).await;
        s3_business_and_s1_calendar(app).await;
        let created = incident(app, "s3", "2026-11-27T14:30:00Z").create().await;
        keys.push(key(&created).to_string());
    }
    // Read them interleaved, twice: each app keeps to its calendar.
    for _ in 0..2 {
        let early_item = get(&early, &keys[0]).await;
        let late_item = get(&late, &keys[1]).await;
        // Until 16:00: 30 minutes on Friday, 30 on Monday from 08:00 (CET, UTC+1).
        assert_eq!(due(&early_item, "response"), at("2026-11-30T07:30:00Z"));
        // Until 18:00: Friday 16:30.
        assert_eq!(due(&late_item, "response"), at("2026-11-27T15:30:00Z"));
    }
    // Work on the app's own thread (start-up, the demo loader, the command line) counts in
    // the app's calendar too.
    let from = at("2026-11-27T14:30:00Z");
    let on_thread = |app: &TestApp| {
        app.state
            .db
            .run_here(|_| Ok(opsboard::common::calendar::current().add_business_minutes(from, 60)))
            .expect("a due time")
    };
    assert_eq!(on_thread(&early), at("2026-11-30T07:30:00Z"));
    assert_eq!(on_thread(&late), at("2026-11-27T15:30:00Z"));
}
