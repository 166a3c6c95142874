//! Reports: a small known history, imported from JIRA with backdated changelogs, gives the flow
//! figures computed by hand below; the derived data is rebuilt to the same; CSV tables come in
//! both dialects.
//!
//! The history (local times, Europe/Berlin, CET = UTC+1 in January 2027). Board OPS, default
//! workflow: Backlog (todo), Ready (todo), In progress, Review (in_progress), Done (done).
//!
//! | item | history                                                                        |
//! |------|--------------------------------------------------------------------------------|
//! | A    | created 01-04 Backlog → In progress 01-05 09:00 → Done 01-07 10:00              |
//! | B    | created 01-04 → In progress 01-05 10:00 → Backlog 01-06 (false start) →        |
//! |      | In progress 01-08 09:00 → Done 01-12 15:00                                      |
//! | C    | created 01-05 → In progress 01-06 → Review 01-07 → In progress 01-08 (back) →   |
//! |      | Review 01-11 → Done 01-13 12:00                                                 |
//! | D    | created 01-04 → In progress 01-07 → Done 01-08 16:00 → In progress 01-11        |
//! |      | (reopened) → Done 01-14 11:00                                                   |
//! | E    | created 01-11 → Done 01-15 10:00 (skips in_progress)                            |
//! | F    | created 01-04 → In progress 01-05 → Done 01-06 → In progress 01-13 (reopened,   |
//! |      | open)                                                                           |
//! | G    | created 01-12 → In progress 01-18 09:00 (open)                                  |
//! | H    | created 01-05, never started                                                    |
//! | I    | created 01-11 08:00 → In progress 01-11 09:00 → Done 01-19 00:30 local          |
//! |      | (= 01-18 23:30 UTC: the local date counts)                                      |
//! | J    | created 2026-12-28 → In progress 12-29 → Done 01-05 (before the range)          |
//!
//! Range 2027-01-06 (Wed) … 2027-01-20 (Wed), asof 2027-01-20 17:00 local.

use actix_web::http::Method;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{ADMIN_EMAIL, TestApp};

both_engines!(
    the_flow_report_follows_the_definitions,
    flow_tables_come_as_csv_in_both_dialects,
    item_lists_come_as_csv_with_every_filter,
    charts_are_well_formed_svg_with_titles_and_axes,
    forecasts_simulate_the_history,
    sla_compliance_counts_by_month,
    the_governance_report_comes_in_three_formats,
    the_governance_report_shows_the_rollout_and_the_catalogues_changes,
    reports_need_a_reader_and_valid_input,
    derived_data_kept_with_each_write_equals_a_rebuild,
);

const MAPPING_STATUSES: &str = r#"
[statuses]
"To Do" = "Backlog"
"In Progress" = "In progress"
"Review" = "Review"
"Done" = "Done"
[types]
Task = "task"
Bug = "incident"
[priorities]
Medium = "medium"
[services]
default = "wohngeld"
"#;

fn mapping() -> String {
    format!("board = \"OPS\"\n{MAPPING_STATUSES}[people]\ndefault = \"{ADMIN_EMAIL}\"\n")
}

fn category(status: &str) -> &'static str {
    match status {
        "To Do" => "new",
        "Done" => "done",
        _ => "indeterminate",
    }
}

/// One issue: `created` and each move `(at, to)` as local CET times `2027-01-05T09:00`.
fn issue(n: usize, title: &str, created: &str, moves: &[(&str, &str)]) -> Value {
    let at = |t: &str| format!("{t}:00.000+0100");
    let mut status = "To Do";
    let mut histories = Vec::new();
    for (i, (when, to)) in moves.iter().enumerate() {
        histories.push(json!({
            "id": format!("{}", 50000 + n * 100 + i),
            "created": at(when),
            "items": [{"field": "status", "fromString": status, "toString": to}],
        }));
        status = to;
    }
    let updated = moves.last().map_or(created, |m| m.0);
    json!({
        "id": format!("{}", 10000 + n),
        "key": format!("OZG-{n}"),
        "fields": {
            "summary": title,
            "issuetype": {"name": "Task"},
            "status": {"name": status, "statusCategory": {"key": category(status)}},
            "priority": {"name": "Medium"},
            "created": at(created),
            "updated": at(updated),
        },
        "changelog": {"histories": histories},
    })
}

fn history() -> Value {
    let ip = "In Progress";
    json!([
        issue(
            1,
            "A",
            "2027-01-04T09:00",
            &[("2027-01-05T09:00", ip), ("2027-01-07T10:00", "Done")]
        ),
        issue(
            2,
            "B",
            "2027-01-04T09:00",
            &[
                ("2027-01-05T10:00", ip),
                ("2027-01-06T10:00", "To Do"),
                ("2027-01-08T09:00", ip),
                ("2027-01-12T15:00", "Done")
            ]
        ),
        issue(
            3,
            "C",
            "2027-01-05T09:00",
            &[
                ("2027-01-06T09:00", ip),
                ("2027-01-07T09:00", "Review"),
                ("2027-01-08T09:00", ip),
                ("2027-01-11T09:00", "Review"),
                ("2027-01-13T12:00", "Done")
            ]
        ),
        issue(
            4,
            "D",
            "2027-01-04T09:00",
            &[
                ("2027-01-07T09:00", ip),
                ("2027-01-08T16:00", "Done"),
                ("2027-01-11T09:00", ip),
                ("2027-01-14T11:00", "Done")
            ]
        ),
        issue(5, "E", "2027-01-11T09:00", &[("2027-01-15T10:00", "Done")]),
        issue(
            6,
            "F",
            "2027-01-04T09:00",
            &[
                ("2027-01-05T09:00", ip),
                ("2027-01-06T12:00", "Done"),
                ("2027-01-13T09:00", ip)
            ]
        ),
        issue(7, "G", "2027-01-12T09:00", &[("2027-01-18T09:00", ip)]),
        issue(8, "H", "2027-01-05T09:00", &[]),
        issue(
            9,
            "I",
            "2027-01-11T08:00",
            &[("2027-01-11T09:00", ip), ("2027-01-19T00:30", "Done")]
        ),
        issue(
            10,
            "=HYPERLINK(J)",
            "2026-12-28T09:00",
            &[("2026-12-29T09:00", ip), ("2027-01-05T10:00", "Done")]
        ),
    ])
}

/// The board OPS with the history above.
/// The board, the service and the imported history; returns the board lead, who is also the
/// service's accountable person.
async fn setup(app: &TestApp) -> Value {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    let done = app
        .request(Method::POST, "/api/v1/imports/jira")
        .token(&app.admin_token)
        .json(&json!({"mapping": mapping(), "issues": history()}))
        .send()
        .await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json()["created"], 10, "{}", done.text);
    lead
}

const RANGE: &str = "board=OPS&from=2027-01-06&to=2027-01-20&asof=2027-01-20T16:00:00Z";

fn by_title(list: &Value, field: &str) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = list
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    (
                        i["title"].as_str().unwrap_or("").to_string(),
                        i[field].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn pairs(expected: &[(&str, Value)]) -> Vec<(String, Value)> {
    expected
        .iter()
        .map(|(t, v)| (t.to_string(), v.clone()))
        .collect()
}

async fn check_report(app: &TestApp) -> Value {
    let response = app
        .get(&format!("/api/v1/reports/flow?{RANGE}"), &app.admin_token)
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let report = response.json();
    let cycle = &report["cycle_time"];
    // Finished in [01-06, 01-20]: A, B, C, D, E, I (J finished 01-05, F's finish withdrawn).
    // Cycle days = date(finish) − date(start) + 1:
    //   A 01-07 − 01-05 + 1 = 3; B (false start: starts again 01-08) 01-12 − 01-08 + 1 = 5;
    //   C (moving back keeps the start) 01-13 − 01-06 + 1 = 8; D (reopened, start kept)
    //   01-14 − 01-07 + 1 = 8; E (skipped) 1; I 01-19 − 01-11 + 1 = 9 (the UTC date would
    //   give 8).
    assert_eq!(
        by_title(&cycle["items"], "days"),
        pairs(&[
            ("A", json!(3)),
            ("B", json!(5)),
            ("C", json!(8)),
            ("D", json!(8)),
            ("E", json!(1)),
            ("I", json!(9))
        ])
    );
    // Sorted 1, 3, 5, 8, 8, 9; n = 6. Nearest rank: p50 = rank ⌈3⌉ = 3 → 5 (interpolation
    // would say 6.5); p85 = rank ⌈5.1⌉ = 6 → 9 (interpolation: 8.25); p95 = rank 6 → 9.
    assert_eq!(cycle["n"], 6);
    assert_eq!(
        (
            cycle["p50"].clone(),
            cycle["p85"].clone(),
            cycle["p95"].clone()
        ),
        (json!(5), json!(9), json!(9))
    );
    assert_ne!(cycle["p50"], json!(6.5), "never interpolated");
    assert_eq!(cycle["note"], Value::Null);
    assert_eq!(
        by_title(&cycle["items"], "reopen_count"),
        pairs(&[
            ("A", json!(0)),
            ("B", json!(0)),
            ("C", json!(0)),
            ("D", json!(1)),
            ("E", json!(0)),
            ("I", json!(0))
        ])
    );
    assert_eq!(
        by_title(&cycle["items"], "skipped_wip"),
        pairs(&[
            ("A", json!(false)),
            ("B", json!(false)),
            ("C", json!(false)),
            ("D", json!(false)),
            ("E", json!(true)),
            ("I", json!(false))
        ])
    );
    // Time in progress of D: 01-07 09:00 → 01-08 16:00 (31 h) and 01-11 09:00 → 01-14 11:00
    // (74 h) = 105 h; of A: 01-05 09:00 → 01-07 10:00 = 49 h.
    let hours = by_title(&cycle["items"], "time_in_progress_hours");
    assert_eq!(hours[0], ("A".to_string(), json!(49.0)));
    assert_eq!(hours[3], ("D".to_string(), json!(105.0)));
    // Lead days = date(finish) − date(created) + 1: A 4, B 9, C 9, D 11, E 5, I 9;
    // sorted 4, 5, 9, 9, 9, 11: p50 rank 3 → 9, p85 rank 6 → 11, p95 → 11.
    let lead = &report["lead_time"];
    assert_eq!(
        by_title(&lead["items"], "days"),
        pairs(&[
            ("A", json!(4)),
            ("B", json!(9)),
            ("C", json!(9)),
            ("D", json!(11)),
            ("E", json!(5)),
            ("I", json!(9))
        ])
    );
    assert_eq!(
        (
            lead["p50"].clone(),
            lead["p85"].clone(),
            lead["p95"].clone()
        ),
        (json!(9), json!(11), json!(11))
    );
    // Throughput per ISO week: W01 (01-04…01-10, cut by the range) A = 1 (D's finish of 01-08
    // and F's of 01-06 were withdrawn by reopening); W02: B, C, D, E = 4; W03 (cut): I = 1.
    assert_eq!(
        report["throughput_weekly"],
        json!([
            {"week": "2027-W01", "start": "2027-01-04", "end": "2027-01-10", "count": 1, "partial": true},
            {"week": "2027-W02", "start": "2027-01-11", "end": "2027-01-17", "count": 4, "partial": false},
            {"week": "2027-W03", "start": "2027-01-18", "end": "2027-01-24", "count": 1, "partial": true},
        ])
    );
    // WIP at the end of each day (In progress + Review):
    //   06: A, C = 2 · 07: C, D = 2 · 08–10: B, C = 2 · 11: B, C, D, I = 4 · 12: C, D, I = 3
    //   13: D, I, F = 3 · 14–17: I, F = 2 · 18: I, F, G = 3 · 19–20: F, G = 2.
    let wip: Vec<i64> = report["wip_daily"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["count"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(wip, vec![2, 2, 2, 2, 2, 4, 3, 3, 2, 2, 2, 2, 3, 2, 2]);
    // Cumulative flow (Backlog, Ready, In progress, Review, Done: items in the column or a
    // later one at the end of the day):
    //   01-07: A Done, B Backlog, C Review, D In progress, F Done, H Backlog, J Done
    //          → 7, 5, 5, 4, 3
    //   01-10: B, C In progress, D Done → 7, 6, 6, 4, 4
    //   01-11: D reopened and C back in Review, E and I created → 9, 7, 7, 4, 3 (the Done
    //          line drops from 4 to 3 on the day of the reopening)
    //   01-20: F, G in progress, H in Backlog, the rest Done → 10, 9, 9, 7, 7
    let columns: Vec<&str> = report["cfd"]["columns"]
        .as_array()
        .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        columns,
        ["Backlog", "Ready", "In progress", "Review", "Done"]
    );
    let day = |date: &str| {
        report["cfd"]["days"]
            .as_array()
            .and_then(|d| d.iter().find(|d| d["date"] == date))
            .map(|d| d["counts"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(day("2027-01-07"), json!([7, 5, 5, 4, 3]));
    assert_eq!(day("2027-01-10"), json!([7, 6, 6, 4, 4]));
    assert_eq!(day("2027-01-11"), json!([9, 7, 7, 4, 3]));
    assert_eq!(day("2027-01-20"), json!([10, 9, 9, 7, 7]));
    // Aging at 01-20: F started 01-05 (reopened, start kept) → 20 − 5 + 1 = 16 days, over the
    // p95 of 9; G started 01-18 → 3 days, under the p50 of 5. H never started: not aging.
    let aging = report["aging"].as_array().cloned().unwrap_or_default();
    let aged: Vec<(String, i64, String)> = aging
        .iter()
        .map(|a| {
            (
                a["title"].as_str().unwrap_or("").to_string(),
                a["age_days"].as_i64().unwrap_or(-1),
                a["band"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        aged,
        vec![
            ("F".to_string(), 16, "over_p95".to_string()),
            ("G".to_string(), 3, "under_p50".to_string())
        ]
    );
    // The SLE is the p85 cycle time, 9 days; F exceeds it.
    assert_eq!(report["sle"]["days"], 9);
    assert_eq!(report["sle"]["open"], 2);
    assert_eq!(report["sle"]["exceeding"], 1);
    assert_eq!(report["sle"]["exceeding_items"], json!([aging[0]["key"]]));
    report
}

async fn the_flow_report_follows_the_definitions(app: TestApp) {
    setup(&app).await;
    let report = check_report(&app).await;
    // Fewer than 5 values: percentiles are null and the report says why.
    let few = app
        .get(
            "/api/v1/reports/flow?board=OPS&from=2027-01-06&to=2027-01-12&asof=2027-01-20T16:00:00Z",
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(few["cycle_time"]["n"], 2);
    assert_eq!(few["cycle_time"]["p50"], Value::Null);
    assert!(
        few["cycle_time"]["note"]
            .as_str()
            .is_some_and(|n| n.contains("at least 5")),
        "{}",
        few["cycle_time"]
    );
    // A filter that matches nothing: empty, not an error.
    let none = app
        .get(
            &format!("/api/v1/reports/flow?{RANGE}&label=nothing"),
            &app.admin_token,
        )
        .await
        .json();
    assert_eq!(none["cycle_time"]["n"], 0);
    assert_eq!(none["wip_daily"][0]["count"], 0);
    // Rebuilding the derived data from the history gives the same report.
    {
        let mut conn = app.conn();
        opsboard::common::history::in_transaction(&mut conn, |conn| {
            opsboard::reports::derive::rebuild(conn)
        })
        .expect("rebuild");
    }
    let again = check_report(&app).await;
    assert_eq!(again, report);
    // Writes through the API keep the derived data in step: an item made and moved today is
    // in today's figures (the imported history lies in 2027, after the default range), and
    // gone once deleted.
    let board = app.get("/api/v1/boards/OPS", &app.admin_token).await.json();
    let column = |name: &str| {
        board["columns"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .map(|c| c["id"].clone())
            .unwrap_or(Value::Null)
    };
    let made = app
        .post(
            "/api/v1/items",
            &app.admin_token,
            &json!({"board": "OPS", "type": "task", "title": "Today", "service": "wohngeld"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let key = made.json()["key"].as_str().unwrap_or_default().to_string();
    for name in ["In progress", "Done"] {
        let moved = app
            .move_item(&key, &app.admin_token, &json!({"column": column(name)}))
            .await;
        assert_eq!(moved.status, 200, "{}", moved.text);
    }
    let today = app
        .get("/api/v1/reports/flow?board=OPS", &app.admin_token)
        .await
        .json();
    assert_eq!(today["cycle_time"]["n"], 1, "{today}");
    assert_eq!(today["cycle_time"]["items"][0]["key"], key.as_str());
    assert_eq!(today["cycle_time"]["items"][0]["days"], 1);
    let deleted = app
        .delete(&format!("/api/v1/items/{key}"), &app.admin_token)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let after = app
        .get("/api/v1/reports/flow?board=OPS", &app.admin_token)
        .await
        .json();
    assert_eq!(after["cycle_time"]["n"], 0);
}

async fn flow_tables_come_as_csv_in_both_dialects(app: TestApp) {
    setup(&app).await;
    let get = |query: String| {
        let app = &app;
        async move {
            app.request(
                Method::GET,
                &format!("/api/v1/reports/flow?{RANGE}&{query}"),
            )
            .token(&app.admin_token)
            .header("Accept", "text/csv")
            .send()
            .await
        }
    };
    let excel = get("section=throughput".into()).await;
    assert_eq!(excel.status, 200, "{}", excel.text);
    assert!(
        excel
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    assert!(excel.text.starts_with('\u{feff}'), "BOM");
    assert_eq!(
        excel.text.trim_start_matches('\u{feff}'),
        "week;start;end;count;partial\r\n2027-W01;04.01.2027;10.01.2027;1;true\r\n\
         2027-W02;11.01.2027;17.01.2027;4;false\r\n2027-W03;18.01.2027;24.01.2027;1;true\r\n"
    );
    let plain = get("section=throughput&dialect=rfc4180".into()).await;
    assert!(!plain.text.starts_with('\u{feff}'));
    assert!(
        plain.text.starts_with(
            "week,start,end,count,partial\r\n2027-W01,2027-01-04,2027-01-10,1,true\r\n"
        ),
        "{}",
        plain.text
    );
    // Decimal comma and local times in excel-de; the item lists carry the titles neutralized.
    let cycle = get("section=cycle_time".into()).await;
    let a_row = cycle
        .text
        .lines()
        .find(|l| l.contains(";A;"))
        .unwrap_or_default()
        .to_string();
    assert!(a_row.contains(";07.01.2027 10:00;3;49;0;false"), "{a_row}");
    let lead = app
        .request(
            Method::GET,
            "/api/v1/reports/flow?board=OPS&from=2027-01-01&to=2027-01-20&section=lead_time",
        )
        .token(&app.admin_token)
        .header("Accept", "text/csv")
        .send()
        .await;
    assert!(lead.text.contains(";'=HYPERLINK(J);"), "{}", lead.text);
    // CSV without a section is a 422 naming it; an unknown section too.
    get(String::new()).await.names_field(422, "section");
    let wrong = get("section=everything".into()).await;
    assert!(matches!(wrong.status, 400 | 422), "{}", wrong.text);
    let cfd = get("section=cfd&dialect=rfc4180".into()).await;
    assert!(
        cfd.text
            .starts_with("date,Backlog,Ready,In progress,Review,Done\r\n"),
        "{}",
        cfd.text
    );
    assert!(
        cfd.text.contains("2027-01-11,9,7,7,4,3\r\n"),
        "{}",
        cfd.text
    );
}

async fn reports_need_a_reader_and_valid_input(app: TestApp) {
    setup(&app).await;
    let stranger = app
        .request(Method::GET, &format!("/api/v1/reports/flow?{RANGE}"))
        .send()
        .await;
    assert_eq!(stranger.status, 401);
    let (_, viewer) = app.user("viewer").create().await;
    let seen = app
        .get(&format!("/api/v1/reports/flow?{RANGE}"), &viewer)
        .await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    let (_, requester) = app.user("requester").create().await;
    assert_eq!(
        app.get(&format!("/api/v1/reports/flow?{RANGE}"), &requester)
            .await
            .status,
        403
    );
    app.get("/api/v1/reports/flow?board=NOPE", &app.admin_token)
        .await
        .names_field(422, "board");
    app.get("/api/v1/reports/flow", &app.admin_token)
        .await
        .names_field(422, "board");
    app.get(
        "/api/v1/reports/flow?board=OPS&from=2027-02-01&to=2027-01-01",
        &app.admin_token,
    )
    .await
    .names_field(422, "from");
    app.get(
        "/api/v1/reports/flow?board=OPS&service=nope",
        &app.admin_token,
    )
    .await
    .names_field(422, "service");
    let bad_date = app
        .get(
            "/api/v1/reports/flow?board=OPS&from=yesterday",
            &app.admin_token,
        )
        .await;
    assert!(matches!(bad_date.status, 400 | 422), "{}", bad_date.text);
}

async fn item_lists_come_as_csv_with_every_filter(app: TestApp) {
    setup(&app).await;
    let csv = |query: &str| {
        let app = &app;
        let path = format!("/api/v1/items?{query}");
        async move {
            app.request(Method::GET, &path)
                .token(&app.admin_token)
                .header("Accept", "text/csv")
                .send()
                .await
        }
    };
    let all = csv("board=OPS").await;
    assert_eq!(all.status, 200, "{}", all.text);
    assert!(
        all.header("content-type")
            .is_some_and(|c| c.starts_with("text/csv"))
    );
    assert!(all.text.starts_with("\u{feff}key;type;title;board;column;category;service;priority;labels;accountable;responsible;due_date;created_at;updated_at;started_at;done_at;severity\r\n"), "{}", all.text);
    // Ten items, no paging (limit and cursor do not apply), CRLF.
    assert_eq!(all.text.matches("\r\n").count(), 11, "{}", all.text);
    // The formula title is neutralized; dates are German, local.
    assert!(
        all.text
            .contains(";'=HYPERLINK(J);OPS;Done;done;wohngeld;medium;"),
        "{}",
        all.text
    );
    assert!(all.text.contains(";28.12.2026 09:00;"), "{}", all.text);
    // Filters apply: the done ones (A, B, C, D, E, I, J).
    let done = csv("board=OPS&category=done&limit=2").await;
    assert_eq!(done.text.matches("\r\n").count(), 8, "{}", done.text);
    // RFC 4180: commas, ISO times, no BOM.
    let plain = csv("board=OPS&dialect=rfc4180&q=HYPERLINK").await;
    assert!(plain.text.starts_with("key,type,title,"), "{}", plain.text);
    assert!(
        plain
            .text
            .contains(",'=HYPERLINK(J),OPS,Done,done,wohngeld,medium,,"),
        "{}",
        plain.text
    );
    assert!(
        plain.text.contains(",2026-12-28T08:00:00Z,"),
        "{}",
        plain.text
    );
    // JSON stays the default.
    let json = app
        .get("/api/v1/items?board=OPS&limit=2", &app.admin_token)
        .await;
    assert_eq!(json.json()["items"].as_array().map(Vec::len), Some(2));
    let wrong = csv("board=OPS&dialect=excel").await;
    assert!(matches!(wrong.status, 400 | 422), "{}", wrong.text);
}

/// Parses an SVG and returns every text in it (titles, labels, legends), failing on XML that
/// is not well-formed, on scripts and on references to anything outside the document.
pub fn svg_texts(svg: &str) -> Vec<String> {
    let doc =
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed ({e}): {svg}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    let first: Vec<&str> = root
        .children()
        .filter(|n| n.is_element())
        .take(2)
        .map(|n| n.tag_name().name())
        .collect();
    assert_eq!(first, ["title", "desc"], "title and desc come first");
    for node in doc.descendants() {
        assert_ne!(node.tag_name().name(), "script", "no scripts");
        for attr in node.attributes() {
            assert!(
                !attr.name().starts_with("on"),
                "no event handlers: {}",
                attr.name()
            );
            assert!(
                !attr.value().contains("http"),
                "no external resources: {}",
                attr.value()
            );
        }
    }
    doc.descendants()
        .filter(|n| n.is_element() && matches!(n.tag_name().name(), "text" | "title" | "desc"))
        .map(|n| {
            n.descendants()
                .filter(|t| t.is_text())
                .filter_map(|t| t.text())
                .collect::<String>()
                .trim()
                .to_string()
        })
        .collect()
}

async fn charts_are_well_formed_svg_with_titles_and_axes(app: TestApp) {
    setup(&app).await;
    let charts = [
        (
            "cfd",
            "Kumulatives Flussdiagramm",
            "Einträge (Anzahl)",
            "Datum (Tag)",
        ),
        (
            "cycle-time",
            "Durchlaufzeit",
            "Durchlaufzeit (Tage)",
            "Fertigstellung (Datum)",
        ),
        (
            "throughput",
            "Durchsatz je Kalenderwoche",
            "Fertigstellungen (Anzahl)",
            "Kalenderwoche (ISO)",
        ),
        ("aging", "Alter offener Einträge", "Alter (Tage)", "Spalte"),
    ];
    let out = std::env::var("OPSBOARD_CHART_DIR").ok();
    for (name, title, y, x) in charts {
        for (lang, query) in [("de", ""), ("en", "&lang=en")] {
            let response = app
                .get(
                    &format!("/api/v1/reports/flow/{name}.svg?{RANGE}{query}"),
                    &app.admin_token,
                )
                .await;
            assert_eq!(response.status, 200, "{name}: {}", response.text);
            assert!(
                response
                    .header("content-type")
                    .is_some_and(|c| c.starts_with("image/svg+xml"))
            );
            if let Some(dir) = &out {
                std::fs::write(format!("{dir}/{name}-{lang}.svg"), &response.text).expect("write");
            }
            let texts = svg_texts(&response.text);
            let all = texts.join("\n");
            if lang == "de" {
                assert!(texts[0].starts_with(title), "{name}: {all}");
                assert!(
                    texts[0].contains("(OPS), 06.01.2027 – 20.01.2027 · Stand: 20.01.2027 17:00"),
                    "{all}"
                );
                assert!(texts.iter().any(|t| t == y), "{name} y axis: {all}");
                assert!(texts.iter().any(|t| t == x), "{name} x axis: {all}");
            } else {
                assert!(all.contains("As of: 2027-01-20 17:00"), "{all}");
            }
        }
    }
    // The percentile lines are labelled; the legend lists the columns in stack order.
    let cycle = app
        .get(
            &format!("/api/v1/reports/flow/cycle-time.svg?{RANGE}"),
            &app.admin_token,
        )
        .await;
    let texts = svg_texts(&cycle.text);
    for label in ["50 % ≤ 5 Tage", "85 % ≤ 9 Tage", "95 % ≤ 9 Tage"] {
        assert!(texts.iter().any(|t| t == label), "{label}: {texts:?}");
    }
    let cfd = app
        .get(
            &format!("/api/v1/reports/flow/cfd.svg?{RANGE}"),
            &app.admin_token,
        )
        .await;
    let texts = svg_texts(&cfd.text);
    let legend: Vec<&String> = texts
        .iter()
        .filter(|t| ["Backlog", "Ready", "In progress", "Review", "Done"].contains(&t.as_str()))
        .collect();
    assert_eq!(
        legend,
        ["Backlog", "Ready", "In progress", "Review", "Done"]
    );
    // An empty range: the empty-state message.
    let none = app
        .get(
            "/api/v1/reports/flow/throughput.svg?board=OPS&from=2026-01-01&to=2026-01-31",
            &app.admin_token,
        )
        .await;
    assert!(
        svg_texts(&none.text)
            .iter()
            .any(|t| t == "Keine Daten in diesem Zeitraum"),
        "{}",
        none.text
    );
    let stranger = app
        .request(
            Method::GET,
            &format!("/api/v1/reports/flow/cfd.svg?{RANGE}"),
        )
        .send()
        .await;
    assert_eq!(stranger.status, 401);
}

/// Two incidents finished on each day of 2027-01-06 … 2027-01-20 (10:00 and 11:00).
fn constant_history() -> Value {
    let mut issues = Vec::new();
    for day in 6..=20 {
        for hour in [10, 11] {
            let n = 100 + day * 2 + (hour - 10);
            let mut issue = issue(
                n,
                &format!("Constant {n}"),
                &format!("2027-01-{day:02}T08:00"),
                &[(&format!("2027-01-{day:02}T{hour}:00"), "Done")],
            );
            issue["fields"]["issuetype"]["name"] = json!("Bug");
            issues.push(issue);
        }
    }
    Value::Array(issues)
}

async fn forecasts_simulate_the_history(app: TestApp) {
    setup(&app).await;
    let imported = app
        .request(Method::POST, "/api/v1/imports/jira")
        .token(&app.admin_token)
        .json(&json!({"mapping": mapping(), "issues": constant_history()}))
        .send()
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    let history = json!({"board": "OPS", "type": "incident", "history_from": "2027-01-06", "history_to": "2027-01-20"});
    let ask = |extra: Value| {
        let mut body = history.clone();
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let app = &app;
        async move { app.post("/api/v1/forecasts", &app.admin_token, &body).await }
    };
    // 2 finishes every day: 10 items from Monday 2027-02-01 take Mon … Fri (2, 4, 6, 8, 10).
    let when = ask(
        json!({"mode": "when", "items": 10, "start_date": "2027-02-01", "trials": 1000, "seed": 1}),
    )
    .await;
    assert_eq!(when.status, 200, "{}", when.text);
    let when = when.json();
    for p in when["percentiles"].as_array().cloned().unwrap_or_default() {
        assert_eq!(p["date"], "2027-02-05", "{when}");
    }
    assert_eq!(
        when["histogram"],
        json!([{"date": "2027-02-05", "items": null, "trials": 1000}])
    );
    assert_eq!(when["inputs"]["history_days"], 15);
    assert_eq!(when["inputs"]["history_finishes"], 30);
    // 15 days of history: a warning; none for zeros.
    let warnings = when["warnings"].as_array().cloned().unwrap_or_default();
    assert_eq!(warnings.len(), 1, "{when}");
    assert!(
        warnings[0]
            .as_str()
            .is_some_and(|w| w.contains("at least 30"))
    );
    // Workdays only: from Friday 2027-02-05, Fri, Mon, Tue, Wed, Thu → 2027-02-11.
    let workdays = ask(json!({"mode": "when", "items": 10, "start_date": "2027-02-05", "days": "workdays", "trials": 1000})).await.json();
    assert_eq!(
        workdays["percentiles"][2]["date"], "2027-02-11",
        "{workdays}"
    );
    // How many by Friday from Monday: 5 days × 2 = at least 10 at every probability.
    let how_many =
        ask(json!({"mode": "how_many", "until": "2027-02-05", "start_date": "2027-02-01"}))
            .await
            .json();
    let counts: Vec<Value> = how_many["percentiles"]
        .as_array()
        .map(|p| p.iter().map(|p| p["items"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(counts, vec![json!(10); 4]);
    assert_eq!(how_many["inputs"]["trials"], 10000);
    // A varied history (the tasks): the same seed gives the same answer, another seed runs too.
    let varied = json!({"type": "task", "mode": "when", "items": 20, "start_date": "2027-02-01", "seed": 42});
    let first = ask(varied.clone()).await.json();
    let second = ask(varied).await.json();
    assert_eq!(first, second);
    assert_eq!(first["inputs"]["seed"], 42);
    // The tasks' history has mostly days without finishes: a warning.
    assert!(
        first["warnings"].as_array().is_some_and(|w| w
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("had no finishes")))),
        "{first}"
    );
    // A history without finishes is a 422; bad input names its field.
    ask(json!({"mode": "when", "items": 5, "history_from": "2026-01-01", "history_to": "2026-01-31"}))
        .await
        .names_field(422, "history_from");
    ask(json!({"mode": "when", "items": 5, "trials": 10}))
        .await
        .names_field(422, "trials");
    ask(json!({"mode": "when"})).await.names_field(422, "items");
    ask(json!({"mode": "how_many", "start_date": "2027-02-05", "until": "2027-02-01"}))
        .await
        .names_field(422, "until");
    let (_, viewer) = app.user("viewer").create().await;
    let seen = app.post("/api/v1/forecasts", &viewer, &json!({"board": "OPS", "type": "incident", "history_from": "2027-01-06", "history_to": "2027-01-20", "mode": "when", "items": 3})).await;
    assert_eq!(seen.status, 200, "{}", seen.text);
    let stranger = app
        .request(Method::POST, "/api/v1/forecasts")
        .json(&history)
        .send()
        .await;
    assert_eq!(stranger.status, 401);
}

async fn sla_compliance_counts_by_month(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    app.service("wohngeld").accountable(&lead).create().await;
    let policy = app
        .post(
            "/api/v1/sla-policies",
            &app.admin_token,
            &json!({"severity": "s2", "response_minutes": 60, "resolution_minutes": 240, "clock": "calendar"}),
        )
        .await;
    assert_eq!(policy.status, 201, "{}", policy.text);
    let soon = (chrono::Utc::now() - chrono::Duration::minutes(10)).to_rfc3339();
    // Resolution target 4 calendar hours:
    //   I1 11-03 09:00 → 10:00 met (Nov) · I2 11-04 09:00 → 15:00 breached, completed (Nov)
    //   I3 11-05 → resolved 12-01: breached, completed in December
    //   I4 11-28 09:00 open: breached at 13:00, counted in November
    //   I5 reported ten minutes ago, open: not breached, left out
    //   I6 11-10 09:00 → 11:00 met (Nov)
    // November: met 2, breached completed 1, breached open 1 → 2 / 4 = 0.5.
    // December: breached completed 1 → 0.
    let incidents = [
        ("2026-11-03T09:00:00Z", Some("2026-11-03T10:00:00Z")),
        ("2026-11-04T09:00:00Z", Some("2026-11-04T15:00:00Z")),
        ("2026-11-05T09:00:00Z", Some("2026-12-01T09:00:00Z")),
        ("2026-11-28T09:00:00Z", None),
        (soon.as_str(), None),
        ("2026-11-10T09:00:00Z", Some("2026-11-10T11:00:00Z")),
    ];
    for (i, (reported, resolved)) in incidents.iter().enumerate() {
        let made = app
            .post(
                "/api/v1/items",
                &app.admin_token,
                &json!({"board": "OPS", "type": "incident", "title": format!("I{}", i + 1),
                        "service": "wohngeld",
                        "incident": {"severity": "s2", "reported_at": reported, "resolved_at": resolved}}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
    }
    let report = app
        .get(
            "/api/v1/reports/sla?from=2026-11-01&to=2026-12-31",
            &app.admin_token,
        )
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let report = report.json();
    let months: Vec<(Value, Value, Value, Value, Value)> = report["months"]
        .as_array()
        .map(|m| {
            m.iter()
                .map(|m| {
                    (
                        m["month"].clone(),
                        m["met"].clone(),
                        m["breached_completed"].clone(),
                        m["breached_open"].clone(),
                        m["success_share"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        months,
        vec![
            (json!("2026-11"), json!(2), json!(1), json!(1), json!(0.5)),
            (json!("2026-12"), json!(0), json!(1), json!(0), json!(0.0)),
        ]
    );
    assert_eq!(report["rows"][0]["service"], "wohngeld");
    assert_eq!(report["rows"][0]["severity"], "s2");
    // Three resolved in November: under 5 values, no percentiles.
    assert_eq!(report["rows"][0]["resolution_hours_p50"], Value::Null);
    let csv = app
        .request(
            Method::GET,
            "/api/v1/reports/sla?from=2026-11-01&to=2026-12-31",
        )
        .token(&app.admin_token)
        .header("Accept", "text/csv")
        .send()
        .await;
    assert!(
        csv.text.contains("2026-11;wohngeld;s2;2;1;1;0,5;3;;\r\n"),
        "{}",
        csv.text
    );
    let svg = app
        .get(
            "/api/v1/reports/sla.svg?from=2026-11-01&to=2026-12-31",
            &app.admin_token,
        )
        .await;
    assert_eq!(svg.status, 200, "{}", svg.text);
    if let Ok(dir) = std::env::var("OPSBOARD_CHART_DIR") {
        std::fs::write(format!("{dir}/sla-de.svg"), &svg.text).expect("write");
    }
    let texts = svg_texts(&svg.text);
    assert!(
        texts[0].starts_with("SLA-Einhaltung je Monat – 01.11.2026 – 31.12.2026 · Stand: "),
        "{texts:?}"
    );
    for text in ["Monat", "Störungen (Anzahl)", "Eingehalten", "50,0 %"] {
        assert!(texts.iter().any(|t| t == text), "{text}: {texts:?}");
    }
    app.get("/api/v1/reports/sla?service=nope", &app.admin_token)
        .await
        .names_field(422, "service");
    let stranger = app.request(Method::GET, "/api/v1/reports/sla").send().await;
    assert_eq!(stranger.status, 401);
}

async fn the_governance_report_comes_in_three_formats(app: TestApp) {
    setup(&app).await;
    let report = app
        .get("/api/v1/reports/governance?month=2027-01", &app.admin_token)
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let report = report.json();
    assert_eq!(
        (report["from"].clone(), report["to"].clone()),
        (json!("2027-01-01"), json!("2027-01-31"))
    );
    assert_eq!(report["portfolio"]["total"], 1);
    let flow = &report["flow"][0];
    assert_eq!(flow["board"], "OPS");
    // Finished in January: A, B, C, D, E, I and J (01-05) = 7; cycle days 3, 5, 8, 8, 1, 9
    // and J 12-29 → 01-05 = 8: sorted 1, 3, 5, 8, 8, 8, 9 → p50 rank 4 = 8, p85 rank 6 = 8,
    // p95 rank 7 = 9.
    assert_eq!(flow["throughput_monthly"]["2027-01"], 7, "{flow}");
    assert_eq!(flow["throughput_monthly"]["2026-08"], 0, "{flow}");
    assert_eq!(
        (
            flow["cycle_time_p50"].clone(),
            flow["cycle_time_p85"].clone(),
            flow["cycle_time_p95"].clone()
        ),
        (json!(8), json!(8), json!(9))
    );
    assert!(report.get("omitted").is_none(), "every section is there");
    assert_eq!(
        report["rollout"]["total"]["total"], 0,
        "{}",
        report["rollout"]
    );
    let html = app
        .request(Method::GET, "/api/v1/reports/governance?month=2027-01")
        .token(&app.admin_token)
        .header("Accept", "text/html")
        .send()
        .await;
    assert_eq!(html.status, 200, "{}", html.text);
    assert!(
        html.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    assert!(html.text.starts_with("<!DOCTYPE html>"));
    assert!(html.text.contains("<h1>Governance-Bericht 2027-01</h1>"));
    assert!(html.text.contains("<svg"), "charts inline");
    for outside in ["<script", " src=", " href=", "<link"] {
        assert!(!html.text.contains(outside), "self-contained: {outside}");
    }
    if let Ok(dir) = std::env::var("OPSBOARD_CHART_DIR") {
        std::fs::write(format!("{dir}/governance.html"), &html.text).expect("write");
    }
    let markdown = app
        .get(
            "/api/v1/reports/governance?month=2027-01&format=markdown",
            &app.admin_token,
        )
        .await;
    assert!(
        markdown
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/markdown"))
    );
    assert!(
        markdown.text.starts_with("# Governance-Bericht 2027-01\n"),
        "{}",
        markdown.text
    );
    assert!(markdown.text.contains("| OPS | "), "{}", markdown.text);
    app.get("/api/v1/reports/governance", &app.admin_token)
        .await
        .names_field(422, "month");
    app.get("/api/v1/reports/governance?month=2027-13", &app.admin_token)
        .await
        .names_field(422, "month");
    let stranger = app
        .request(Method::GET, "/api/v1/reports/governance?month=2027-01")
        .send()
        .await;
    assert_eq!(stranger.status, 401);
}

/// Runs one statement against the test's database (both engines read the same SQL).
fn execute(app: &TestApp, sql: &str) {
    use diesel::RunQueryDsl;
    let mut conn = app.conn();
    diesel::sql_query(sql)
        .execute(&mut *conn)
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn the_governance_report_shows_the_rollout_and_the_catalogues_changes(app: TestApp) {
    let lead = setup(&app).await;
    let lead_name = lead["display_name"].as_str().expect("name").to_string();
    // The catalogue: `alt` existed before January and changed its lifecycle twice and its
    // maturity once in January; `neu` came in January; `weg` existed and was deleted in
    // January; `kurz` came and went within January (at neither end).
    for key in ["alt", "neu", "weg", "kurz"] {
        app.service(key).create().await;
    }
    for change in [
        json!({"lifecycle": "pilot"}),
        json!({"lifecycle": "productive", "maturity_level": 3}),
    ] {
        let patched = app
            .patch("/api/v1/services/alt", &app.admin_token, &change)
            .await;
        assert_eq!(patched.status, 200, "{}", patched.text);
    }
    for key in ["weg", "kurz"] {
        let deleted = app
            .delete(&format!("/api/v1/services/{key}"), &app.admin_token)
            .await;
        assert_eq!(deleted.status, 204, "{}", deleted.text);
    }
    // Backdate the catalogue's history (the API writes it at the present time).
    execute(
        &app,
        "UPDATE services SET created_at = '2026-12-01 10:00:00' WHERE key <> 'neu'",
    );
    execute(
        &app,
        "UPDATE services SET created_at = '2027-01-10 10:00:00' WHERE key = 'neu'",
    );
    execute(
        &app,
        "UPDATE events SET created_at = '2026-12-01 10:00:00' WHERE entity_type = 'service'",
    );
    execute(
        &app,
        "UPDATE events SET created_at = '2027-01-10 10:00:00' WHERE entity_type = 'service' \
         AND (entity_id IN (SELECT id FROM services WHERE key = 'neu') \
              OR kind = 'deleted' OR data LIKE '%\"kurz\"%' OR kind = 'updated')",
    );
    // The rollout: two administrations of a district and a kreisfreie Stadt.
    let csv = "short_name;name;kind;district;official_key;members\n\
        LKA;Landkreis Alpha;district;;13071;\n\
        A-EINS;Amt Eins;amt;LKA;;\n\
        A-ZWEI;Amt Zwei;amt;LKA;;\n\
        STADT;Freie Stadt;kreisfreie_stadt;;;\n";
    let imported = app
        .request(Method::POST, "/api/v1/organizations/import")
        .token(&app.admin_token)
        .raw("text/csv", csv.as_bytes().to_vec())
        .send()
        .await;
    assert_eq!(imported.status, 200, "{}", imported.text);
    let entries = [
        // Blocked and overdue.
        (
            "A-EINS",
            json!({"status": "preparing", "blocker": "AVV liegt beim Amtsausschuss",
                          "planned_go_live": "2020-01-01"}),
        ),
        // Went live in January.
        (
            "A-ZWEI",
            json!({"status": "live", "actual_go_live": "2027-01-15",
                          "checklist": {"dpa": true, "responsibility_data": true,
                                        "transport": true, "dvdv": true, "mailbox": true,
                                        "case_management": true, "production_test": true}}),
        ),
        // Neither.
        (
            "STADT",
            json!({"status": "testing", "planned_go_live": "2099-01-01"}),
        ),
    ];
    for (administration, body) in entries {
        let put = app
            .put(
                &format!("/api/v1/rollout/wohngeld/{administration}"),
                &app.admin_token,
                &body,
            )
            .await;
        assert!(put.status == 200 || put.status == 201, "{}", put.text);
    }
    // The list filters the governance section builds on.
    let blocked = app
        .get("/api/v1/rollout?blocked=true", &app.admin_token)
        .await;
    assert_eq!(blocked.status, 200, "{}", blocked.text);
    let administrations = |page: &Value| -> Vec<String> {
        page["items"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|e| e["administration"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(administrations(&blocked.json()), ["A-EINS"]);
    let on_time = app
        .get("/api/v1/rollout?overdue=false", &app.admin_token)
        .await
        .json();
    assert_eq!(administrations(&on_time), ["A-ZWEI", "STADT"]);

    let report = app
        .get("/api/v1/reports/governance?month=2027-01", &app.admin_token)
        .await;
    assert_eq!(report.status, 200, "{}", report.text);
    let report = report.json();
    let change = &report["portfolio"]["change_since_last_month"];
    assert_eq!(report["portfolio"]["total"], 3, "{}", report["portfolio"]);
    assert_eq!(change["total_last_month"], 3, "{change}");
    assert_eq!(change["added"], json!(["neu"]), "{change}");
    assert_eq!(change["removed"], json!(["weg"]), "{change}");
    assert_eq!(
        change["lifecycle_changed"],
        json!([{"service": "alt", "from": "planned", "to": "productive"}]),
        "{change}"
    );
    assert_eq!(change["maturity_changed"][0]["service"], "alt", "{change}");

    let rollout = &report["rollout"];
    assert_eq!(
        (
            rollout["total"]["total"].clone(),
            rollout["total"]["applicable"].clone(),
            rollout["total"]["live"].clone(),
            rollout["went_live_this_month"].clone()
        ),
        (json!(3), json!(3), json!(1), json!(1)),
        "{rollout}"
    );
    let lka = rollout["by_district"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["key"] == "LKA"))
        .unwrap_or_else(|| panic!("LKA: {rollout}"));
    assert_eq!(
        (lka["live"].clone(), lka["applicable"].clone()),
        (json!(1), json!(2))
    );
    assert_eq!(rollout["by_service"][0]["key"], "wohngeld");
    assert_eq!(rollout["blocked"].as_array().map(Vec::len), Some(1));
    let blocked = &rollout["blocked"][0];
    assert_eq!(blocked["key"], "wohngeld/A-EINS");
    assert_eq!(blocked["blocker"], "AVV liegt beim Amtsausschuss");
    assert_eq!(blocked["accountable"], lead_name.as_str(), "{blocked}");
    assert_eq!(rollout["overdue"][0]["key"], "wohngeld/A-EINS");
    assert_eq!(rollout["overdue"].as_array().map(Vec::len), Some(1));
    let decision = report["decisions_needed"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["kind"] == "blocked_rollout"))
        .unwrap_or_else(|| panic!("{}", report["decisions_needed"]));
    assert_eq!(decision["key"], "wohngeld/A-EINS");
    assert_eq!(decision["accountable"], lead_name.as_str());
    assert!(
        decision["detail"]
            .as_str()
            .is_some_and(|d| d.contains("AVV liegt beim Amtsausschuss")),
        "{decision}"
    );

    let markdown = app
        .get(
            "/api/v1/reports/governance?month=2027-01&format=markdown",
            &app.admin_token,
        )
        .await
        .text;
    for expected in [
        "## Rollout\n",
        "| Landkreis Alpha | 1 / 2 | 50,0 % | 1 | 1 |",
        "| blocked\\_rollout | wohngeld/A-EINS |",
        "- **Lebenszyklus geändert**: alt (planned → productive)",
    ] {
        assert!(markdown.contains(expected), "{expected}: {markdown}");
    }
    let html = app
        .get(
            "/api/v1/reports/governance?month=2027-01&format=html",
            &app.admin_token,
        )
        .await
        .text;
    assert!(html.contains("<h2>Rollout</h2>"), "{html}");
    assert!(html.contains("<td>wohngeld/A-EINS</td>"), "{html}");
}

type IntervalRow = (
    i64,
    i64,
    String,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
);
type FlowRow = (
    i64,
    i64,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
    Option<chrono::NaiveDateTime>,
    i32,
    bool,
    i64,
    Option<chrono::NaiveDateTime>,
);

/// Every derived row: the stays in order, and each item's flow.
fn derived(app: &TestApp) -> (Vec<IntervalRow>, Vec<FlowRow>) {
    use diesel::prelude::*;
    use opsboard::db::schema::{item_flow, item_intervals};
    let mut conn = app.conn();
    let intervals = item_intervals::table
        .order((
            item_intervals::item_id,
            item_intervals::entered_at,
            item_intervals::id,
        ))
        .select((
            item_intervals::item_id,
            item_intervals::column_id,
            item_intervals::category,
            item_intervals::entered_at,
            item_intervals::left_at,
        ))
        .load(&mut conn)
        .expect("intervals");
    let flows = item_flow::table
        .order(item_flow::item_id)
        .select((
            item_flow::item_id,
            item_flow::board_id,
            item_flow::created_at,
            item_flow::started_at,
            item_flow::finished_at,
            item_flow::reopen_count,
            item_flow::skipped_wip,
            item_flow::progress_seconds,
            item_flow::deleted_at,
        ))
        .load(&mut conn)
        .expect("flows");
    (intervals, flows)
}

/// Each write brings the derived data up to date by itself (a new item, a move after the
/// item's present stay, a deletion) or by recomputing the item (an import's backdated
/// history); either way the rows are exactly those a rebuild from the history writes.
async fn derived_data_kept_with_each_write_equals_a_rebuild(app: TestApp) {
    setup(&app).await;
    let board = crate::fixtures::Board {
        json: app.get("/api/v1/boards/OPS", &app.admin_token).await.json(),
    };
    let column = |name: &str| json!({"column": board.column_id(name)});
    let create = |title: &'static str| {
        let app = &app;
        async move {
            let made = app
                .post(
                    "/api/v1/items",
                    &app.admin_token,
                    &json!({"board": "OPS", "type": "task", "title": title, "service": "wohngeld"}),
                )
                .await;
            assert_eq!(made.status, 201, "{}", made.text);
            made.json()["key"].as_str().unwrap_or_default().to_string()
        }
    };
    let paths: [(&str, &[&str]); 5] = [
        // Forward, back, done, reopened, done again.
        (
            "Round trip",
            &[
                "In progress",
                "Review",
                "In progress",
                "Done",
                "In progress",
                "Done",
            ],
        ),
        // Straight to done.
        ("Skipper", &["Done"]),
        // A false start.
        (
            "False start",
            &["In progress", "Backlog", "Ready", "In progress"],
        ),
        // A move within its column (a new rank, no new stay).
        ("Reordered", &["Backlog", "In progress", "In progress"]),
        // Deleted below, while in progress.
        ("Deleted", &["In progress"]),
    ];
    let mut keys = Vec::new();
    for (title, path) in paths {
        let key = create(title).await;
        for name in path {
            let moved = app.move_item(&key, &app.admin_token, &column(name)).await;
            assert_eq!(moved.status, 200, "{title} to {name}: {}", moved.text);
        }
        keys.push(key);
    }
    let deleted = app
        .delete(&format!("/api/v1/items/{}", keys[4]), &app.admin_token)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    // An imported item (its rows recomputed by the import) moved on through the API: G, open
    // in "In progress" since 2027-01-18.
    let imported = app
        .get("/api/v1/items?board=OPS&limit=100", &app.admin_token)
        .await
        .json();
    let g = imported["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["title"] == "G"))
        .and_then(|i| i["key"].as_str())
        .map(str::to_string);
    let g = g.unwrap_or_else(|| panic!("no imported item G in {imported}"));
    let moved = app.move_item(&g, &app.admin_token, &column("Done")).await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    let kept = derived(&app);
    assert!(kept.1.len() >= 15, "{:?}", kept.1);
    {
        let mut conn = app.conn();
        opsboard::common::history::in_transaction(&mut conn, |conn| {
            opsboard::reports::derive::rebuild(conn)
        })
        .expect("rebuild");
    }
    let rebuilt = derived(&app);
    assert_eq!(kept.0, rebuilt.0, "the stays differ from a rebuild");
    assert_eq!(kept.1, rebuilt.1, "the flows differ from a rebuild");
}
