//! The JIRA import: an export becomes a board whose history, `started_at` and `done_at` match
//! JIRA's changelog; a dry run and a refused run write nothing; running it again changes
//! nothing; a later export updates.

use actix_web::http::Method;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{ADMIN_EMAIL, TestApp};

both_engines!(
    a_dry_run_reports_and_an_unmapped_run_is_refused,
    an_export_becomes_items_with_jiras_history,
    importing_again_changes_nothing_and_a_later_export_updates,
    only_managers_and_import_tokens_import,
);

const EXPORT: &str = include_str!("../data/jira/export.json");

fn mapping(with_fallbacks: bool) -> String {
    let mut text = String::from(
        r#"board = "OPS"
[statuses]
"To Do" = "Backlog"
"In Progress" = "In progress"
"Done" = "Done"
[status_categories]
indeterminate = "Review"
[types]
Bug = "incident"
Task = "task"
[priorities]
High = "high"
Medium = "medium"
[services]
default = "wohngeld"
[services.map]
Wohngeld = "wohngeld"
[people.map]
"acc-anna" = "anna@example.test"
"#,
    );
    if with_fallbacks {
        text = text.replace("Task = \"task\"\n", "Task = \"task\"\nStory = \"demand\"\n");
        text = text.replace(
            "[people.map]",
            &format!("[people]\ndefault = \"{ADMIN_EMAIL}\"\n[people.map]"),
        );
    }
    text
}

/// The export's pages as one JSON array of issues (the HTTP body's `issues`).
fn issues() -> Value {
    let pages: Vec<Value> = serde_json::Deserializer::from_str(EXPORT)
        .into_iter::<Value>()
        .map(|p| p.expect("valid JSON"))
        .collect();
    Value::Array(pages)
}

async fn setup(app: &TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    for (email, name) in [
        ("anna@example.test", "Anna Berg"),
        ("worker@example.test", "Bernd Kurz"),
    ] {
        let made = app
            .post(
                "/api/v1/users",
                &app.admin_token,
                &json!({"email": email, "display_name": name, "role": "member", "password": "a long password 123"}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
    }
}

async fn import(app: &TestApp, token: &str, body: Value) -> crate::helpers::Response {
    app.request(Method::POST, "/api/v1/imports/jira")
        .token(token)
        .json(&body)
        .send()
        .await
}

fn count(app: &TestApp, table: &str) -> i64 {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"))
        .get_result::<N>(&mut *app.conn())
        .map(|r| r.n)
        .expect("count")
}

async fn a_dry_run_reports_and_an_unmapped_run_is_refused(app: TestApp) {
    setup(&app).await;
    let events = count(&app, "events");
    let dry = import(
        &app,
        &app.admin_token,
        json!({"mapping": mapping(false), "issues": issues(), "dry_run": true}),
    )
    .await;
    assert_eq!(dry.status, 200, "{}", dry.text);
    let report = dry.json();
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["issues"], 3);
    assert_eq!(report["moves"], 3);
    assert_eq!(report["comments"], 1);
    assert_eq!(report["links"], 2);
    assert_eq!(report["attachments_skipped"], 1);
    assert_eq!(report["unmapped"]["types"], json!({"Story": 1}));
    assert_eq!(
        report["unmapped"]["people"],
        json!({"someone (Unbekannt)": 1})
    );
    assert_eq!(
        report["by_column"],
        json!({"Backlog": 1, "Done": 1, "Review": 1})
    );
    assert_eq!(
        (count(&app, "items"), count(&app, "events")),
        (0, events),
        "a dry run writes nothing"
    );
    // A real run with something unmapped and no fallback: refused, every value named.
    let refused = import(
        &app,
        &app.admin_token,
        json!({"mapping": mapping(false), "issues": issues()}),
    )
    .await;
    let problem = refused.problem(422);
    let messages: Vec<&str> = problem["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["message"].as_str()).collect())
        .unwrap_or_default();
    assert!(messages.iter().any(|m| m.contains("`Story`")), "{problem}");
    assert!(messages.iter().any(|m| m.contains("someone")), "{problem}");
    assert_eq!((count(&app, "items"), count(&app, "events")), (0, events));
    // A mapping naming a column the board lacks.
    let wrong = mapping(true).replace("\"Review\"", "\"Prüfung\"");
    import(
        &app,
        &app.admin_token,
        json!({"mapping": wrong, "issues": issues(), "dry_run": true}),
    )
    .await
    .names_field(422, "mapping.status_categories.indeterminate");
}

async fn an_export_becomes_items_with_jiras_history(app: TestApp) {
    setup(&app).await;
    let done = import(
        &app,
        &app.admin_token,
        json!({"mapping": mapping(true), "issues": issues()}),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.text);
    let report = done.json();
    assert_eq!(
        (report["created"].clone(), report["dry_run"].clone()),
        (json!(3), json!(false))
    );

    let bug = app
        .get("/api/v1/items/OPS-1", &app.admin_token)
        .await
        .json();
    assert_eq!(bug["type"], "incident");
    assert_eq!(bug["title"], "Upload bricht ab");
    assert_eq!(bug["priority"], "high");
    assert_eq!(bug["incident"]["severity"], "s2");
    assert_eq!(bug["labels"], json!(["upload"]));
    assert_eq!(bug["description"], "Der Upload bricht ab, **wichtig**");
    assert_eq!(bug["column"]["name"], "Done");
    assert_eq!(
        bug["external_refs"],
        json!([{"system": "jira", "key": "10001", "alias": "OZG-1",
                "url": "https://jira.example.org/browse/OZG-1"}])
    );
    // JIRA's times: created, started by the first move into progress, done by the last.
    assert_eq!(bug["created_at"], "2026-02-02T08:00:00Z");
    assert_eq!(bug["started_at"], "2026-02-03T09:00:00Z");
    assert_eq!(bug["done_at"], "2026-02-05T15:00:00Z");
    assert_eq!(
        bug["raci"]["responsible"][0]["email"],
        "worker@example.test"
    );
    let history = app
        .get("/api/v1/items/OPS-1/history?limit=100", &app.admin_token)
        .await
        .json();
    let steps: Vec<(String, String, String, String)> = history["items"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter(|e| e["kind"] == "created" || e["kind"] == "moved")
                .map(|e| {
                    (
                        e["kind"].as_str().unwrap_or_default().to_string(),
                        e["created_at"].as_str().unwrap_or_default().to_string(),
                        e["actor_name"].as_str().unwrap_or_default().to_string(),
                        e["origin"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let step = |kind: &str, at: &str, who: &str| {
        (
            kind.to_string(),
            at.to_string(),
            who.to_string(),
            "jira-import".to_string(),
        )
    };
    assert_eq!(
        steps,
        [
            step("created", "2026-02-02T08:00:00Z", "Anna Berg"),
            step("moved", "2026-02-03T09:00:00Z", "Anna Berg"),
            step("moved", "2026-02-05T15:00:00Z", "Bernd Kurz"),
        ]
    );
    let comments = app
        .get("/api/v1/items/OPS-1/comments", &app.admin_token)
        .await
        .json();
    assert_eq!(comments["items"][0]["author_name"], "Anna Berg");
    assert_eq!(comments["items"][0]["created_at"], "2026-02-03T10:00:00Z");
    assert_eq!(comments["items"][0]["external_refs"][0]["key"], "20001");

    let task = app
        .get("/api/v1/items/OPS-2", &app.admin_token)
        .await
        .json();
    assert_eq!(task["column"]["name"], "Review", "by the status category");
    assert_eq!(
        task["description"],
        "## Vorgehen\n- **neues** Zertifikat\n- einspielen"
    );
    assert_eq!(task["started_at"], "2026-02-06T08:30:00Z");
    assert!(task["done_at"].is_null());
    let links = app
        .get("/api/v1/items/OPS-2/links", &app.admin_token)
        .await
        .json();
    let kinds: Vec<(String, String)> = links
        .as_array()
        .map(|l| {
            l.iter()
                .map(|l| {
                    (
                        l["kind"].as_str().unwrap_or_default().to_string(),
                        l["item"]["key"]
                            .as_str()
                            .or(l["item"].as_str())
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(kinds.len(), 2, "{links}");
    assert!(kinds.iter().any(|(k, _)| k == "blocked_by"), "{links}");
    assert!(kinds.iter().any(|(k, _)| k == "relates"), "{links}");

    let demand = app
        .get("/api/v1/items/OPS-3", &app.admin_token)
        .await
        .json();
    assert_eq!(
        (demand["type"].clone(), demand["service"].clone()),
        (json!("demand"), json!("wohngeld"))
    );
    assert_eq!(demand["column"]["name"], "Backlog");
    // The import is in the changes feed with its origin, like any write.
    let feed = app
        .get(
            "/api/v1/changes?entity_type=item&limit=500",
            &app.admin_token,
        )
        .await
        .json();
    assert!(
        feed["items"]
            .as_array()
            .is_some_and(|e| !e.is_empty() && e.iter().all(|e| e["origin"] == "jira-import")),
        "{feed}"
    );
}

async fn importing_again_changes_nothing_and_a_later_export_updates(app: TestApp) {
    setup(&app).await;
    let body = json!({"mapping": mapping(true), "issues": issues()});
    assert_eq!(
        import(&app, &app.admin_token, body.clone()).await.status,
        200
    );
    let events = count(&app, "events");
    let again = import(&app, &app.admin_token, body).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let report = again.json();
    assert_eq!(
        (
            report["created"].clone(),
            report["updated"].clone(),
            report["unchanged"].clone()
        ),
        (json!(0), json!(0), json!(3))
    );
    assert_eq!(count(&app, "events"), events, "nothing written");
    assert_eq!(count(&app, "items"), 3);
    // JIRA moved on: OZG-2 is done now and renamed.
    let mut later = issues();
    let task = &mut later[0]["issues"][1];
    task["fields"]["summary"] = json!("Zertifikat erneuert");
    task["fields"]["status"] = json!({"name": "Done", "statusCategory": {"key": "done"}});
    task["fields"]["updated"] = json!("2026-02-08T14:00:00.000+0100");
    task["changelog"]["histories"]
        .as_array_mut()
        .expect("histories")
        .push(json!({"id": "40004", "created": "2026-02-08T14:00:00.000+0100",
                     "author": {"accountId": "acc-anna"},
                     "items": [{"field": "status", "fromString": "In Review", "toString": "Done"}]}));
    // No issue is in review now, so the export no longer tells that status's category: the
    // mapping names it (a dry run would say so).
    let named = mapping(true).replace(
        "\"Done\" = \"Done\"\n",
        "\"Done\" = \"Done\"\n\"In Review\" = \"Review\"\n",
    );
    let updated = import(
        &app,
        &app.admin_token,
        json!({"mapping": named, "issues": later}),
    )
    .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    let report = updated.json();
    assert_eq!(
        (report["updated"].clone(), report["unchanged"].clone()),
        (json!(1), json!(2))
    );
    let task = app
        .get("/api/v1/items/OPS-2", &app.admin_token)
        .await
        .json();
    assert_eq!(task["title"], "Zertifikat erneuert");
    assert_eq!(task["done_at"], "2026-02-08T13:00:00Z");
    assert_eq!(task["column"]["name"], "Done");
}

async fn only_managers_and_import_tokens_import(app: TestApp) {
    setup(&app).await;
    let body = json!({"mapping": mapping(true), "issues": issues(), "dry_run": true});
    let (_, member) = app.user("member").create().await;
    import(&app, &member, body.clone()).await.problem(403);
    let token = |scopes: Value| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/tokens",
                &app.admin_token,
                &json!({"name": "import", "scopes": scopes}),
            )
            .await
            .json()["secret"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    let write = token(json!(["read", "write"])).await;
    assert_eq!(
        import(&app, &write, body.clone()).await.problem(403)["required_scope"],
        "import"
    );
    let importer = token(json!(["import"])).await;
    assert_eq!(import(&app, &importer, body.clone()).await.status, 200);
    import(&app, "", body).await.problem(401);
}
