//! The demo data (`data/demo/`): as rich as it was when it was Rust code, and its catalogue
//! files import through `opsboard import` like any user's file.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::both_engines;
use crate::cli::{opsboard, run};
use crate::helpers::TestApp;

both_engines!(the_demo_has_its_counts_and_its_files_reimport_unchanged);

/// Every entry of a list endpoint (`limit=500`, following `next_cursor`).
async fn all(app: &TestApp, path: &str) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor = String::new();
    loop {
        let response = app
            .get(
                &format!("{path}{separator}limit=500&cursor={cursor}"),
                &app.admin_token,
            )
            .await;
        assert_eq!(response.status, 200, "{path}: {}", response.text);
        let page = response.json();
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => return items,
        }
    }
}

/// How many entries have each value of `field`.
fn by(entries: &[Value], field: impl Fn(&Value) -> String) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in entries {
        *counts.entry(field(entry)).or_default() += 1;
    }
    counts
}

fn counts<const N: usize>(pairs: [(&str, usize); N]) -> BTreeMap<String, usize> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

async fn the_demo_has_its_counts_and_its_files_reimport_unchanged(app: TestApp) {
    let summary = app
        .state
        .db
        .run(opsboard::workflows::demo::seed)
        .await
        .expect("demo data loads");
    assert_eq!(
        (summary.organizations, summary.services, summary.items),
        (143, 292, 320),
        "the 29 stakeholders, the 6 districts and 116 municipal administrations of M-V \
         (8 of them the same bodies)"
    );

    let organizations = all(&app, "/api/v1/organizations").await;
    assert_eq!(organizations.len(), 143);
    let kinds = by(&organizations, |o| o["kind"].to_string());
    assert_eq!(
        (
            kinds["\"amt\""],
            kinds["\"municipality\""],
            kinds["\"city\""]
        ),
        (76, 38, 2)
    );
    assert_eq!(
        by(&organizations, |o| o["kind"].to_string())["\"district\""],
        6
    );
    let fm = organizations.iter().find(|o| o["short_name"] == "FM");
    assert_eq!(
        fm.map(|o| o["name"].clone()),
        Some(json!(
            "Ministerium für Finanzen und Digitalisierung Mecklenburg-Vorpommern"
        ))
    );

    let services = all(&app, "/api/v1/services").await;
    assert_eq!(services.len(), 292);
    assert_eq!(
        by(&services, |s| s["kind"].as_str().unwrap_or_default().into()),
        counts([("efa", 104), ("own", 117), ("reuse", 71)])
    );
    let bau = services.iter().find(|s| s["key"] == "bauantrag-online");
    assert_eq!(
        bau.cloned().unwrap_or_default(),
        json!({
            "id": 1, "key": "bauantrag-online", "name": "Bauantrag online",
            "description": "Digitale Einreichung von Bauanträgen bei der unteren Bauaufsichtsbehörde. Bauvorlagen werden elektronisch übermittelt, der Bearbeitungsstand ist jederzeit einsehbar.",
            "lifecycle": "productive", "kind": "efa", "maturity_level": 3, "ozg_id": "10519",
            "leika_keys": ["99100000001000"], "topic": "Bauen & Wohnen", "operator": "NLS",
            "responsible": "IM", "url": "https://kommunal.example.org/bauantrag-online",
            "go_live_date": "2018-01-01", "tags": ["efa", "kommunal"],
            "created_at": bau.map(|s| s["created_at"].clone()), "updated_at": bau.map(|s| s["updated_at"].clone()),
            "version": 1,
            "accountable": {"id": bau.map(|s| s["accountable"]["id"].clone()), "display_name": "Katrin Möller",
                            "email": "katrin.moeller@example.org", "active": true},
        }),
        "every field of a service survives"
    );

    let with_accountable = services
        .iter()
        .filter(|s| s["accountable"]["id"].is_i64())
        .count();
    assert_eq!(
        with_accountable, 292,
        "every service has its accountable person"
    );

    let people = all(&app, "/api/v1/users").await;
    assert_eq!(
        by(&people, |p| p["role"].as_str().unwrap_or_default().into()),
        counts([
            ("admin", 1),
            ("manager", 2),
            ("member", 3),
            ("requester", 5),
            ("viewer", 1)
        ]),
        "the test's admin and the demo's eleven people"
    );
    assert!(
        people.iter().any(|p| p["display_name"] == "Katrin Möller"),
        "UTF-8 survives"
    );
    // The workloads differ as in life: each case worker holds the services of their kind, the
    // lead every seventh.
    let mut accountable = BTreeMap::new();
    for person in &people {
        let raci = app
            .get(
                &format!("/api/v1/users/{}/raci", person["id"]),
                &app.admin_token,
            )
            .await
            .json();
        let count = raci["accountable"].as_array().map(Vec::len).unwrap_or(0);
        if count > 0 {
            accountable.insert(
                person["email"].as_str().unwrap_or_default().to_string(),
                count,
            );
        }
    }
    assert_eq!(
        accountable,
        counts([
            ("anja.krueger@example.org", 87),
            ("jan.schroeder@example.org", 98),
            ("katrin.moeller@example.org", 42),
            ("sabine.luedtke@example.org", 65),
        ])
    );
    assert_eq!(
        accountable.values().sum::<usize>(),
        292,
        "services with an accountable person"
    );

    let boards = all(&app, "/api/v1/boards").await;
    let shape: Vec<Value> = boards
        .iter()
        .map(|b| {
            let lead = people.iter().find(|p| p["id"] == b["lead"]);
            let columns: Vec<Value> = b["columns"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| json!([c["name"], c["category"], c["wip_limit"], c["pauses_sla"]]))
                .collect();
            json!({"key": b["key"], "lead": lead.map(|p| p["email"].clone()), "columns": columns})
        })
        .collect();
    assert_eq!(
        shape,
        [
            json!({"key": "OPS", "lead": "katrin.moeller@example.org", "columns": [
                ["Backlog", "todo", null, false], ["Bereit", "todo", null, false],
                ["In Arbeit", "in_progress", 5, false], ["Wartet auf Meldende", "in_progress", null, true],
                ["Review", "in_progress", 3, false], ["Erledigt", "done", null, false]]}),
            json!({"key": "DEM", "lead": "thomas.weiss@example.org", "columns": [
                ["Eingang", "todo", null, false], ["Angenommen", "todo", null, false],
                ["In Umsetzung", "in_progress", 5, false], ["Abnahme", "in_progress", 3, false],
                ["Umgesetzt", "done", null, false]]}),
        ]
    );

    let policies: Vec<Value> = all(&app, "/api/v1/sla-policies")
        .await
        .iter()
        .map(|p| {
            json!([
                p["severity"],
                p["service"],
                p["response_minutes"],
                p["resolution_minutes"],
                p["clock"]
            ])
        })
        .collect();
    assert_eq!(
        policies,
        [
            json!(["s1", null, 30, 240, "calendar"]),
            json!(["s2", null, 60, 480, "business"]),
            json!(["s3", null, 240, 2400, "business"]),
            json!(["s4", null, 480, 4800, "business"]),
        ]
    );

    let items = all(&app, "/api/v1/items").await;
    assert_eq!(
        by(&items, |i| format!(
            "{} {}",
            i["board"].as_str().unwrap_or_default(),
            i["type"].as_str().unwrap_or_default()
        )),
        counts([("DEM demand", 80), ("OPS incident", 160), ("OPS task", 80)])
    );
    let incidents: Vec<Value> = items
        .iter()
        .filter(|i| i["type"] == "incident")
        .cloned()
        .collect();
    assert_eq!(
        by(&incidents, |i| i["incident"]["severity"]
            .as_str()
            .unwrap_or_default()
            .into()),
        counts([("s1", 40), ("s2", 40), ("s3", 40), ("s4", 40)])
    );
    let demands: Vec<Value> = items
        .iter()
        .filter(|i| i["type"] == "demand")
        .cloned()
        .collect();
    assert_eq!(
        by(&demands, |i| i["demand"]["decision"]
            .as_str()
            .unwrap_or_default()
            .into()),
        counts([
            ("accepted", 32),
            ("deferred", 16),
            ("pending", 16),
            ("rejected", 16)
        ])
    );
    for (board, spread) in [
        (
            "OPS",
            json!([
                ["Backlog", 87],
                ["Bereit", 22],
                ["In Arbeit", 5],
                ["Wartet auf Meldende", 9],
                ["Review", 3],
                ["Erledigt", 114]
            ]),
        ),
        (
            "DEM",
            json!([
                ["Eingang", 48],
                ["Angenommen", 14],
                ["In Umsetzung", 5],
                ["Abnahme", 3],
                ["Umgesetzt", 10]
            ]),
        ),
    ] {
        let view = app
            .get(&format!("/api/v1/boards/{board}/view"), &app.admin_token)
            .await
            .json();
        let columns: Vec<Value> = view["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| json!([c["name"], c["count"]]))
            .collect();
        assert_eq!(
            json!(columns),
            spread,
            "items spread over the workflow of {board}"
        );
    }

    // The catalogue files are import files: on the demo database every row is unchanged.
    let url = app.state.settings.database.url.clone();
    let dir = tempfile::tempdir().expect("dir");
    for (what, rows) in [("organizations", 29), ("services", 292)] {
        let (output, text) = run(opsboard(&dir, &[("DATABASE_URL", &url)]).args([
            "import",
            what,
            &format!("data/demo/{what}.csv"),
        ]));
        assert!(output.status.success(), "{text}");
        assert!(
            text.contains(&format!(
                "{rows} rows: 0 created, 0 updated, {rows} unchanged"
            )),
            "{text}"
        );
    }
}

/// The demo's catalogue goes into any database: organizations first, then the services that
/// name them.
#[test]
fn the_demo_catalogue_imports_into_another_database() {
    let dir = tempfile::tempdir().expect("dir");
    let (output, text) =
        run(opsboard(&dir, &[]).args(["import", "services", "data/demo/services.csv"]));
    assert!(
        !output.status.success()
            && text.contains("there is no organization")
            && text.contains("nothing was imported"),
        "{text}"
    );
    for (what, rows) in [("organizations", 29), ("services", 292)] {
        let file = format!("data/demo/{what}.csv");
        let (output, text) = run(opsboard(&dir, &[]).args(["import", what, &file]));
        assert!(
            output.status.success() && text.contains(&format!("{rows} rows: {rows} created")),
            "{text}"
        );
    }
}

both_engines!(the_demo_looks_like_a_real_teams_board);

/// The demo is a day of a real team: no column over its WIP limit, a few breached incidents
/// rather than most, due dates on some items (some overdue, some in the coming weeks), and
/// demands accountable to the demand manager who leads the demand board.
async fn the_demo_looks_like_a_real_teams_board(app: TestApp) {
    app.state
        .db
        .run(opsboard::workflows::demo::seed)
        .await
        .expect("demo data loads");

    // Every column within its WIP limit; most cards wait or are done.
    for board in ["OPS", "DEM"] {
        let view = app
            .get(&format!("/api/v1/boards/{board}/view"), &app.admin_token)
            .await
            .json();
        let columns = view["columns"].as_array().cloned().unwrap_or_default();
        assert!(!columns.is_empty(), "{view}");
        let mut in_progress = 0;
        let mut total = 0;
        for column in &columns {
            let count = column["count"].as_i64().unwrap_or(-1);
            total += count;
            if column["category"] == "in_progress" {
                in_progress += count;
            }
            if let Some(limit) = column["wip_limit"].as_i64() {
                assert!(
                    count <= limit,
                    "{board} {}: {count} cards over the WIP limit {limit}",
                    column["name"]
                );
            }
        }
        assert!(
            in_progress * 5 < total,
            "{board}: {in_progress} of {total} cards in progress"
        );
    }

    // A few breached incidents, not most.
    let items = all(&app, "/api/v1/items").await;
    let incidents = items.iter().filter(|i| i["type"] == "incident").count();
    let breached = all(&app, "/api/v1/incidents?breached=true").await.len();
    assert!(incidents > 0);
    let share = breached as f64 / incidents as f64;
    assert!(
        (0.05..=0.15).contains(&share),
        "{breached} of {incidents} incidents breached ({:.0} %), expected 5 to 15 %",
        share * 100.0
    );

    // Due dates on some items, relative to the day the demo was loaded.
    let today = chrono::Utc::now().date_naive();
    let due: Vec<(chrono::NaiveDate, &Value)> = items
        .iter()
        .filter_map(|i| {
            let date = i["due_date"].as_str()?.parse().ok()?;
            Some((date, i))
        })
        .collect();
    assert!(
        (items.len() / 10..=items.len() / 3).contains(&due.len()),
        "{} of {} items have a due date",
        due.len(),
        items.len()
    );
    let open = |i: &Value| i["column"]["category"] != "done";
    let overdue = due.iter().filter(|(d, i)| *d < today && open(i)).count();
    let coming = due
        .iter()
        .filter(|(d, i)| *d >= today && *d <= today + chrono::Duration::days(42) && open(i))
        .count();
    assert!(
        overdue >= 3 && coming >= 5,
        "{overdue} open items overdue, {coming} due in the next six weeks"
    );

    // Demands answer to the demand manager, who leads DEM; the case worker is responsible.
    let boards = all(&app, "/api/v1/boards").await;
    let dem_lead = boards
        .iter()
        .find(|b| b["key"] == "DEM")
        .map(|b| b["lead"].clone())
        .unwrap_or_default();
    let people = all(&app, "/api/v1/users").await;
    let weiss = people
        .iter()
        .find(|p| p["email"] == "thomas.weiss@example.org")
        .map(|p| p["id"].clone())
        .unwrap_or_default();
    assert_eq!(dem_lead, weiss, "the demand manager leads DEM");
    let demands: Vec<&Value> = items.iter().filter(|i| i["type"] == "demand").collect();
    assert_eq!(demands.len(), 80);
    for demand in &demands {
        assert_eq!(
            demand["raci"]["accountable"]["id"], weiss,
            "{} is accountable to the demand manager",
            demand["key"]
        );
    }
    let with_case_worker = demands
        .iter()
        .filter(|d| {
            d["raci"]["responsible"]
                .as_array()
                .is_some_and(|r| !r.is_empty())
        })
        .count();
    assert!(
        with_case_worker > demands.len() / 2,
        "{with_case_worker} demands name their service's case worker as responsible"
    );
}
