//! SLA policies: response and resolution targets per severity, for every service or for one.

use actix_web::http::Method;
use diesel::prelude::*;
use opsboard::db::schema::{events, sla_policies};
use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::kinds;
use crate::helpers::TestApp;

both_engines!(
    a_policy_is_created_and_stored_and_its_clock_defaults_to_business,
    only_the_minutes_and_the_clock_change_under_if_match,
    a_deleted_policy_is_gone_but_its_history_stays,
    one_policy_per_severity_and_service,
    invalid_targets_and_unknown_services_name_the_field,
    a_patch_is_checked_against_the_stored_other_target,
    a_stale_if_match_is_refused_with_the_current_version,
    only_managers_write_and_only_the_team_reads,
    list_filters_and_pages_in_severity_then_service_order,
    a_service_with_policies_cannot_be_deleted,
    the_schema_refuses_a_second_policy_for_every_service,
);

const PATH: &str = "/api/v1/sla-policies";

fn pairs(page: &Value) -> Vec<(String, Option<String>)> {
    page["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|p| {
                    (
                        p["severity"].as_str().unwrap_or_default().to_string(),
                        p["service"].as_str().map(str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn stored(app: &TestApp, id: i64) -> Option<(String, Option<i64>, i32, i32, String, i64)> {
    sla_policies::table
        .find(id)
        .select((
            sla_policies::severity,
            sla_policies::service_id,
            sla_policies::response_minutes,
            sla_policies::resolution_minutes,
            sla_policies::clock,
            sla_policies::version,
        ))
        .first(&mut app.conn())
        .optional()
        .expect("query")
}

/// A manager's policy for s1 and wohngeld, 30 and 240 calendar minutes:
/// `(id, manager, manager_token)`.
async fn a_managers_policy(app: &TestApp) -> (i64, Value, String) {
    app.service("wohngeld").create().await;
    let (manager, manager_token) = app.user("manager").create().await;
    let policy = app
        .sla_policy("s1")
        .service("wohngeld")
        .minutes(30, 240)
        .clock("calendar")
        .by(&manager_token)
        .create()
        .await;
    (policy["id"].as_i64().expect("id"), manager, manager_token)
}

async fn a_policy_is_created_and_stored_and_its_clock_defaults_to_business(app: TestApp) {
    app.service("wohngeld").create().await;
    let (_, manager_token) = app.user("manager").create().await;
    let (_, viewer) = app.user("viewer").create().await;

    let response = app
        .post(
            PATH,
            &manager_token,
            &json!({"severity": "s1", "service": "wohngeld", "response_minutes": 30, "resolution_minutes": 240, "clock": "calendar"}),
        )
        .await;
    assert_eq!(response.status, 201, "{}", response.text);
    let created = response.json();
    let id = created["id"].as_i64().expect("id");
    assert_eq!(
        response.header("location"),
        Some(format!("/api/v1/sla-policies/{id}"))
    );
    assert_eq!(response.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(created["severity"], "s1");
    assert_eq!(created["service"], "wohngeld");
    assert_eq!(created["clock"], "calendar");
    assert_eq!(created["version"], 1);
    assert!(created.get("service_id").is_none(), "{created}");
    let (severity, service_id, response_minutes, resolution_minutes, clock, version) =
        stored(&app, id).expect("stored");
    assert_eq!(
        (severity.as_str(), response_minutes, resolution_minutes),
        ("s1", 30, 240)
    );
    assert!(service_id.is_some());
    assert_eq!((clock.as_str(), version), ("calendar", 1));

    // The clock defaults to business minutes.
    let global = app.sla_policy("s1").minutes(60, 480).create().await;
    assert!(global["service"].is_null());
    assert_eq!(global["clock"], "business");

    let list = app.get(PATH, &viewer).await;
    assert_eq!(list.status, 200, "{}", list.text);
    let list = list.json();
    assert_eq!(
        pairs(&list),
        [("s1".into(), None), ("s1".into(), Some("wohngeld".into()))]
    );
    assert!(list["next_cursor"].is_null());

    let fetched = app.get(&format!("{PATH}/{id}"), &viewer).await;
    assert_eq!(fetched.status, 200);
    assert_eq!(fetched.header("etag").as_deref(), Some("\"1\""));
    assert_eq!(fetched.json(), created);
}

async fn only_the_minutes_and_the_clock_change_under_if_match(app: TestApp) {
    let (id, _, manager_token) = a_managers_policy(&app).await;
    // Only the minutes and the clock change; severity and service are the policy's identity.
    let changed = app
        .request(Method::PATCH, &format!("{PATH}/{id}"))
        .token(&manager_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"resolution_minutes": 300, "clock": "business"}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    assert_eq!(changed.header("etag").as_deref(), Some("\"2\""));
    let changed = changed.json();
    assert_eq!(changed["resolution_minutes"], 300);
    assert_eq!(changed["response_minutes"], 30);
    assert_eq!(changed["clock"], "business");
    assert_eq!(changed["version"], 2);
    let (_, _, response_minutes, resolution_minutes, clock, version) =
        stored(&app, id).expect("stored");
    assert_eq!(
        (
            response_minutes,
            resolution_minutes,
            clock.as_str(),
            version
        ),
        (30, 300, "business", 2)
    );
    for field in [json!({"severity": "s2"}), json!({"service": null})] {
        let name = field
            .as_object()
            .and_then(|o| o.keys().next().cloned())
            .unwrap_or_default();
        app.patch(&format!("{PATH}/{id}"), &manager_token, &field)
            .await
            .names_field(422, &name);
    }
    // An unchanged PATCH writes nothing.
    let same = app
        .patch(
            &format!("{PATH}/{id}"),
            &manager_token,
            &json!({"clock": "business"}),
        )
        .await;
    assert_eq!(same.json()["version"], 2);
}

async fn a_deleted_policy_is_gone_but_its_history_stays(app: TestApp) {
    let (id, manager, manager_token) = a_managers_policy(&app).await;
    let (_, viewer) = app.user("viewer").create().await;
    // The change of the test above, and a refused and an unchanged PATCH, which write no
    // history.
    let path = format!("{PATH}/{id}");
    let changed = app
        .request(Method::PATCH, &path)
        .token(&manager_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"resolution_minutes": 300, "clock": "business"}))
        .send()
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    app.patch(&path, &manager_token, &json!({"severity": "s2"}))
        .await
        .names_field(422, "severity");
    let same = app
        .patch(&path, &manager_token, &json!({"clock": "business"}))
        .await;
    assert_eq!(same.json()["version"], 2);

    let deleted = app
        .request(Method::DELETE, &format!("{PATH}/{id}"))
        .token(&manager_token)
        .header("If-Match", "\"2\"")
        .send()
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(stored(&app, id).is_none());
    app.get(&format!("{PATH}/{id}"), &viewer).await.problem(404);
    app.delete(&format!("{PATH}/{id}"), &manager_token)
        .await
        .problem(404);

    // Every change is in the history, written by the manager; still readable after the delete.
    let history = app.get(&format!("{PATH}/{id}/history"), &viewer).await;
    assert_eq!(history.status, 200, "{}", history.text);
    let history = history.json();
    assert_eq!(kinds(&history), ["created", "updated", "deleted"]);
    assert_eq!(history["items"][0]["data"]["service"], "wohngeld");
    assert_eq!(
        history["items"][1]["data"]["resolution_minutes"],
        json!({"old": 240, "new": 300})
    );
    assert_eq!(
        history["items"][1]["data"]["clock"],
        json!({"old": "calendar", "new": "business"})
    );
    assert!(
        history["items"][1]["data"]
            .get("response_minutes")
            .is_none()
    );
    assert!(
        history["items"]
            .as_array()
            .is_some_and(|e| e.iter().all(|e| e["actor_id"] == manager["id"])),
        "{history}"
    );
    let stored_events: i64 = events::table
        .filter(
            events::entity_type
                .eq("sla_policy")
                .and(events::entity_id.eq(id)),
        )
        .count()
        .get_result(&mut app.conn())
        .expect("events");
    assert_eq!(stored_events, 3);
    app.get(&format!("{PATH}/999999/history"), &viewer)
        .await
        .problem(404);
    app.get(&format!("{PATH}/abc"), &viewer)
        .await
        .names_field(400, "id");
}

async fn one_policy_per_severity_and_service(app: TestApp) {
    app.service("wohngeld").create().await;
    app.service("kfz").create().await;
    app.sla_policy("s2").minutes(60, 960).create().await;
    app.sla_policy("s2")
        .service("wohngeld")
        .minutes(30, 480)
        .create()
        .await;
    // A second policy for every service, or for the same service, is a conflict.
    let twin = app
        .post(
            PATH,
            &app.admin_token,
            &json!({"severity": "s2", "service": null, "response_minutes": 10, "resolution_minutes": 20}),
        )
        .await
        .problem(409);
    assert!(
        twin["detail"]
            .as_str()
            .is_some_and(|d| d.contains("every service")),
        "{twin}"
    );
    let twin = app
        .post(
            PATH,
            &app.admin_token,
            &json!({"severity": "s2", "service": "wohngeld", "response_minutes": 10, "resolution_minutes": 20}),
        )
        .await
        .problem(409);
    assert!(
        twin["detail"]
            .as_str()
            .is_some_and(|d| d.contains("wohngeld")),
        "{twin}"
    );
    // Other severities and other services are free.
    app.sla_policy("s3").minutes(60, 960).create().await;
    app.sla_policy("s2")
        .service("kfz")
        .minutes(15, 120)
        .create()
        .await;
    let stored: i64 = sla_policies::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(stored, 4, "the refused ones were not stored");
}

async fn invalid_targets_and_unknown_services_name_the_field(app: TestApp) {
    app.service("wohngeld").create().await;
    app.post(
        PATH,
        &app.admin_token,
        &json!({"severity": "s1", "response_minutes": 240, "resolution_minutes": 30}),
    )
    .await
    .names_field(422, "resolution_minutes");
    app.post(
        PATH,
        &app.admin_token,
        &json!({"severity": "s1", "service": "nope", "response_minutes": 30, "resolution_minutes": 240}),
    )
    .await
    .names_field(422, "service");
    app.post(
        PATH,
        &app.admin_token,
        &json!({"severity": "s1", "service": " ", "response_minutes": 30, "resolution_minutes": 240}),
    )
    .await
    .names_field(422, "service");
    let many = app
        .post(
            PATH,
            &app.admin_token,
            &json!({"severity": "s1", "service": "nope", "response_minutes": 0, "resolution_minutes": 525_601}),
        )
        .await;
    for field in ["service", "response_minutes", "resolution_minutes"] {
        many.names_field(422, field);
    }
    for (body, field) in [
        (
            json!({"severity": "s9", "response_minutes": 1, "resolution_minutes": 1}),
            "severity",
        ),
        (
            json!({"severity": "s1", "response_minutes": 1, "resolution_minutes": 1, "clock": "lunar"}),
            "clock",
        ),
        (
            json!({"severity": "s1", "response_minutes": 1.5, "resolution_minutes": 2}),
            "response_minutes",
        ),
        (
            json!({"severity": "s1", "response_minutes": 1, "resolution_minutes": 4_294_967_296_i64}),
            "resolution_minutes",
        ),
        (
            json!({"severity": "s1", "resolution_minutes": 1}),
            "response_minutes",
        ),
        (
            json!({"severity": "s1", "response_minutes": 1, "resolution_minutes": 1, "name": "x"}),
            "name",
        ),
    ] {
        app.post(PATH, &app.admin_token, &body)
            .await
            .names_field(422, field);
    }
}

async fn a_patch_is_checked_against_the_stored_other_target(app: TestApp) {
    // The largest targets are allowed, and equal ones.
    let year = app
        .sla_policy("s4")
        .minutes(525_600, 525_600)
        .create()
        .await;
    let path = format!("{PATH}/{}", year["id"]);
    // A PATCH is checked against the stored value of the other target.
    app.patch(&path, &app.admin_token, &json!({"resolution_minutes": 10}))
        .await
        .names_field(422, "resolution_minutes");
    let lowered = app
        .patch(&path, &app.admin_token, &json!({"response_minutes": 10}))
        .await;
    assert_eq!(lowered.status, 200, "{}", lowered.text);
    app.patch(
        &path,
        &app.admin_token,
        &json!({"response_minutes": 525_600, "resolution_minutes": 20}),
    )
    .await
    .names_field(422, "resolution_minutes");
    app.patch(&path, &app.admin_token, &json!({"resolution_minutes": 5}))
        .await
        .names_field(422, "resolution_minutes");
    let shortened = app
        .patch(&path, &app.admin_token, &json!({"resolution_minutes": 20}))
        .await;
    assert_eq!(shortened.status, 200, "{}", shortened.text);
    app.patch(&path, &app.admin_token, &json!({"response_minutes": 21}))
        .await
        .names_field(422, "response_minutes");
    app.patch(&path, &app.admin_token, &json!({"response_minutes": -1}))
        .await
        .names_field(422, "response_minutes");
    let unchanged = app.get(&path, &app.admin_token).await.json();
    assert_eq!(
        (
            &unchanged["response_minutes"],
            &unchanged["resolution_minutes"]
        ),
        (&json!(10), &json!(20))
    );
    app.patch(
        &format!("{PATH}/999999"),
        &app.admin_token,
        &json!({"response_minutes": 5}),
    )
    .await
    .problem(404);
}

async fn a_stale_if_match_is_refused_with_the_current_version(app: TestApp) {
    let created = app.sla_policy("s1").minutes(30, 240).create().await;
    let path = format!("{PATH}/{}", created["id"]);
    let first = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"response_minutes": 20}))
        .send()
        .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let stale = app
        .request(Method::PATCH, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .json(&json!({"response_minutes": 10}))
        .send()
        .await
        .problem(412);
    assert_eq!(stale["current_version"], 2);
    let stale = app
        .request(Method::DELETE, &path)
        .token(&app.admin_token)
        .header("If-Match", "\"1\"")
        .send()
        .await
        .problem(412);
    assert_eq!(stale["current_version"], 2);
    app.request(Method::DELETE, &path)
        .token(&app.admin_token)
        .header("If-Match", "three")
        .send()
        .await
        .names_field(400, "If-Match");
    let current = app.get(&path, &app.admin_token).await.json();
    assert_eq!(current["response_minutes"], 20);
    assert_eq!(current["version"], 2);
}

async fn only_managers_write_and_only_the_team_reads(app: TestApp) {
    let created = app.sla_policy("s1").minutes(30, 240).create().await;
    let path = format!("{PATH}/{}", created["id"]);
    let body = json!({"severity": "s2", "response_minutes": 30, "resolution_minutes": 240});
    for role in ["viewer", "member"] {
        let (_, token) = app.user(role).create().await;
        assert_eq!(app.get(PATH, &token).await.status, 200);
        assert_eq!(app.get(&path, &token).await.status, 200);
        assert_eq!(
            app.get(&format!("{path}/history"), &token).await.status,
            200
        );
        app.post(PATH, &token, &body).await.problem(403);
        app.patch(&path, &token, &json!({"response_minutes": 1}))
            .await
            .problem(403);
        app.delete(&path, &token).await.problem(403);
    }
    let (_, requester) = app.user("requester").create().await;
    app.get(PATH, &requester).await.problem(403);
    app.get(&path, &requester).await.problem(403);
    app.get(&format!("{path}/history"), &requester)
        .await
        .problem(403);
    app.post(PATH, &requester, &body).await.problem(403);
    app.request(Method::GET, PATH).send().await.problem(401);
    app.request(Method::GET, &path).send().await.problem(401);
    app.request(Method::POST, PATH)
        .json(&body)
        .send()
        .await
        .problem(401);
    app.request(Method::DELETE, &path).send().await.problem(401);
    let (_, manager) = app.user("manager").create().await;
    let ok = app.post(PATH, &manager, &body).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let stored: i64 = sla_policies::table
        .count()
        .get_result(&mut app.conn())
        .expect("count");
    assert_eq!(stored, 2, "nothing refused was stored");
}

async fn list_filters_and_pages_in_severity_then_service_order(app: TestApp) {
    for key in ["wohngeld", "kfz", "kfz-zulassung"] {
        app.service(key).create().await;
    }
    for (severity, service) in [
        ("s2", Some("wohngeld")),
        ("s1", Some("kfz-zulassung")),
        ("s2", None),
        ("s1", Some("wohngeld")),
        ("s1", None),
        ("s1", Some("kfz")),
    ] {
        app.sla_policy(severity)
            .service(service)
            .minutes(30, 60)
            .create()
            .await;
    }
    let expected: Vec<(String, Option<String>)> = [
        ("s1", None),
        ("s1", Some("kfz")),
        ("s1", Some("kfz-zulassung")),
        ("s1", Some("wohngeld")),
        ("s2", None),
        ("s2", Some("wohngeld")),
    ]
    .into_iter()
    .map(|(s, k)| (s.to_string(), k.map(str::to_string)))
    .collect();
    let all = app.get(PATH, &app.admin_token).await.json();
    assert_eq!(pairs(&all), expected);

    // Pages of two, following the cursor, give the same order without repeats.
    let mut seen = Vec::new();
    let mut url = format!("{PATH}?limit=2");
    loop {
        let page = app.get(&url, &app.admin_token).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let body = page.json();
        seen.extend(pairs(&body));
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                assert!(
                    page.header("link")
                        .is_some_and(|l| l.contains("rel=\"next\""))
                );
                url = format!("{PATH}?limit=2&cursor={cursor}");
            }
            None => break,
        }
    }
    assert_eq!(seen, expected);

    let s2 = app
        .get(&format!("{PATH}?severity=s2"), &app.admin_token)
        .await;
    assert_eq!(pairs(&s2.json()), expected[4..]);
    let wohngeld = app
        .get(&format!("{PATH}?service=wohngeld"), &app.admin_token)
        .await;
    assert_eq!(
        pairs(&wohngeld.json()),
        [
            ("s1".into(), Some("wohngeld".into())),
            ("s2".into(), Some("wohngeld".into()))
        ]
    );
    let both = app
        .get(&format!("{PATH}?severity=s1&service=kfz"), &app.admin_token)
        .await;
    assert_eq!(pairs(&both.json()), [("s1".into(), Some("kfz".into()))]);
    let unknown = app
        .get(&format!("{PATH}?service=nope"), &app.admin_token)
        .await;
    assert_eq!(unknown.status, 200);
    assert!(pairs(&unknown.json()).is_empty());

    app.get(&format!("{PATH}?severity=s9"), &app.admin_token)
        .await
        .names_field(400, "severity");
    app.get(&format!("{PATH}?limit=0"), &app.admin_token)
        .await
        .names_field(400, "limit");
    app.get(&format!("{PATH}?cursor=garbage"), &app.admin_token)
        .await
        .names_field(400, "cursor");
    app.get(&format!("{PATH}?service=a%00b"), &app.admin_token)
        .await
        .names_field(400, "service");
}

async fn a_service_with_policies_cannot_be_deleted(app: TestApp) {
    app.service("wohngeld").create().await;
    let own = app
        .sla_policy("s1")
        .service("wohngeld")
        .minutes(30, 240)
        .create()
        .await;
    let refused = app
        .delete("/api/v1/services/wohngeld", &app.admin_token)
        .await
        .problem(409);
    assert!(
        refused["detail"]
            .as_str()
            .is_some_and(|d| d.contains("SLA")),
        "{refused}"
    );
    let deleted = app
        .delete(&format!("{PATH}/{}", own["id"]), &app.admin_token)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let deleted = app
        .delete("/api/v1/services/wohngeld", &app.admin_token)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
}

async fn the_schema_refuses_a_second_policy_for_every_service(app: TestApp) {
    app.service("wohngeld").create().await;
    app.sla_policy("s1").minutes(30, 240).create().await;
    let own = app
        .sla_policy("s1")
        .service("wohngeld")
        .minutes(15, 120)
        .create()
        .await;
    let service_id: i64 = sla_policies::table
        .find(own["id"].as_i64().unwrap_or_default())
        .select(sla_policies::service_id)
        .first::<Option<i64>>(&mut app.conn())
        .expect("stored")
        .expect("a service");
    let now = chrono::Utc::now().naive_utc();
    let insert = |severity: &str, service_id: Option<i64>| {
        diesel::insert_into(sla_policies::table)
            .values((
                sla_policies::severity.eq(severity.to_string()),
                sla_policies::service_id.eq(service_id),
                sla_policies::response_minutes.eq(1),
                sla_policies::resolution_minutes.eq(2),
                sla_policies::clock.eq("calendar"),
                sla_policies::created_at.eq(now),
                sla_policies::updated_at.eq(now),
                sla_policies::version.eq(1_i64),
            ))
            .execute(&mut app.conn())
    };
    assert!(
        insert("s1", None).is_err(),
        "the partial unique index must refuse a second policy for every service"
    );
    assert!(
        insert("s1", Some(service_id)).is_err(),
        "the partial unique index must refuse a second policy for the service"
    );
    // The same rows for another severity are fine: the indexes, not the rows, refused them.
    assert_eq!(insert("s3", None).ok(), Some(1));
    assert_eq!(insert("s3", Some(service_id)).ok(), Some(1));
    let bad_clock = diesel::insert_into(sla_policies::table)
        .values((
            sla_policies::severity.eq("s4"),
            sla_policies::response_minutes.eq(1),
            sla_policies::resolution_minutes.eq(2),
            sla_policies::clock.eq("lunar"),
            sla_policies::created_at.eq(now),
            sla_policies::updated_at.eq(now),
        ))
        .execute(&mut app.conn());
    assert!(bad_clock.is_err(), "the check constraint must refuse it");
}
