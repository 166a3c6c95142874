//! A team lead's day: strict query strings, "my open items" in one call, due dates and what is
//! overdue, time spans for `updated_since`, person filters on incidents, and a filtered board
//! view that keeps its WIP context.

use serde_json::{Value, json};

use crate::both_engines;
use crate::fixtures::{Board, keys};
use crate::helpers::TestApp;

both_engines!(
    an_unknown_query_parameter_is_a_400_naming_it,
    my_open_items_is_one_call_with_me_and_lists,
    due_dates_filter_sort_and_say_what_is_overdue,
    updated_since_takes_a_span_back_from_now,
    incidents_filter_by_person_board_and_severities,
    a_filtered_board_view_keeps_its_counts_and_wip_limits,
    history_and_activity_name_people_and_columns,
);

/// An item's key as the API returned it.
fn key(item: &Value) -> String {
    item["key"].as_str().unwrap_or_default().to_string()
}

/// Board OPS, a manager (the lead) and a member with their tokens:
/// `(board, lead, lead_token, worker, worker_token)`.
async fn team(app: &TestApp) -> (Board, Value, String, Value, String) {
    let board = app.board("OPS").name("Operations").create().await;
    let (lead, lead_token) = app.user("manager").create().await;
    let (worker, worker_token) = app.user("member").create().await;
    app.service("wohngeld")
        .name("Wohngeld")
        .accountable(&lead)
        .responsible(&[&worker])
        .create()
        .await;
    (board, lead, lead_token, worker, worker_token)
}

async fn an_unknown_query_parameter_is_a_400_naming_it(app: TestApp) {
    team(&app).await;
    app.item("OPS")
        .task()
        .title("Eins")
        .service("wohngeld")
        .create()
        .await;
    let token = app.admin_token.clone();
    let problem = app
        .get("/api/v1/items?limitt=5", &token)
        .await
        .names_field(400, "limitt");
    let detail = problem["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        detail.contains("accepted:") && detail.contains("limit") && detail.contains("overdue"),
        "lists the accepted parameters: {problem}"
    );
    app.get("/api/v1/incidents?breached=true&assignee=3", &token)
        .await
        .names_field(400, "assignee");
    // A path that takes no query parameters says so.
    let problem = app
        .get("/api/v1/items/OPS-1?expand=raci", &token)
        .await
        .names_field(400, "expand");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("takes none")),
        "{problem}"
    );
    // Writes too: a misspelt parameter is not silently dropped.
    app.request(
        actix_web::http::Method::PATCH,
        "/api/v1/items/OPS-1?force=true",
    )
    .token(&token)
    .json(&json!({"title": "Zwei"}))
    .send()
    .await
    .names_field(400, "force");
    // Without a token, the parameter check still comes first and changes nothing.
    app.get("/api/v1/users?rol=admin", "")
        .await
        .names_field(400, "rol");
    // A parameter that is not a list, given twice, is named.
    app.get("/api/v1/items?limit=5&limit=6", &token)
        .await
        .names_field(400, "limit");
    // The documented ones still work.
    let page = app
        .get("/api/v1/items?limit=1&sort=-created_at", &token)
        .await
        .json();
    assert_eq!(keys(&page), ["OPS-1"]);
    let item = app.get("/api/v1/items/OPS-1", &token).await.json();
    assert_eq!(item["title"], "Eins", "the refused PATCH changed nothing");
}

async fn my_open_items_is_one_call_with_me_and_lists(app: TestApp) {
    let (board, lead, lead_token, worker, worker_token) = team(&app).await;
    let mine_todo = app
        .item("OPS")
        .task()
        .title("A")
        .accountable(&worker)
        .create()
        .await;
    let mine_doing = app
        .item("OPS")
        .task()
        .title("B")
        .accountable(&worker)
        .create()
        .await;
    let mine_done = app
        .item("OPS")
        .task()
        .title("C")
        .accountable(&worker)
        .create()
        .await;
    let theirs = app
        .item("OPS")
        .task()
        .title("D")
        .accountable(&lead)
        .create()
        .await;
    for (item, column) in [(&mine_doing, "In progress"), (&mine_done, "Done")] {
        let key = item["key"].as_str().unwrap_or("");
        let response = app
            .move_item(
                key,
                &worker_token,
                &json!({"column": board.column_id(column)}),
            )
            .await;
        assert_eq!(response.status, 200, "{}", response.text);
    }
    let all = |page: &Value| keys(page);
    let open = app
        .get("/api/v1/items?accountable=me&open=true", &worker_token)
        .await
        .json();
    assert_eq!(all(&open), [key(&mine_todo), key(&mine_doing)]);
    for query in [
        "involved=me&category=todo,in_progress",
        "involved=me&category=todo&category=in_progress",
        "involved=me&category=in_progress,%20todo",
    ] {
        let page = app
            .get(&format!("/api/v1/items?{query}"), &worker_token)
            .await
            .json();
        assert_eq!(all(&page), [key(&mine_todo), key(&mine_doing)], "{query}");
    }
    let done = app
        .get("/api/v1/items?accountable=me&open=false", &worker_token)
        .await
        .json();
    assert_eq!(all(&done), [key(&mine_done)]);
    // `me` is whoever asks; an id still works.
    let leads = app
        .get("/api/v1/items?accountable=me", &lead_token)
        .await
        .json();
    assert_eq!(all(&leads), [key(&theirs)]);
    let by_id = app
        .get(
            &format!("/api/v1/items?accountable={}", lead["id"]),
            &worker_token,
        )
        .await
        .json();
    assert_eq!(all(&by_id), [key(&theirs)]);
    let both = app
        .get(
            "/api/v1/items?type=task,incident&priority=medium,high",
            &worker_token,
        )
        .await
        .json();
    assert_eq!(both["items"].as_array().map(Vec::len), Some(4));
    app.get("/api/v1/items?category=todo,doing", &worker_token)
        .await
        .names_field(400, "category");
    app.get("/api/v1/items?category=todo,", &worker_token)
        .await
        .names_field(400, "category");
    app.get("/api/v1/items?accountable=you", &worker_token)
        .await
        .names_field(400, "accountable");
    // Demands take the same filters.
    app.get(
        "/api/v1/demands?accountable=me&open=true&category=todo",
        &worker_token,
    )
    .await
    .json();
}

async fn due_dates_filter_sort_and_say_what_is_overdue(app: TestApp) {
    let (board, _, _, worker, token) = team(&app).await;
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Europe::Berlin)
        .date_naive();
    let day = |offset: i64| (today + chrono::Duration::days(offset)).to_string();
    let mut created: Vec<String> = Vec::new();
    for (title, due) in [
        ("late", Some(day(-3))),
        ("late but done", Some(day(-2))),
        ("today", Some(day(0))),
        ("none", None),
        ("soon", Some(day(5))),
    ] {
        let item = app
            .item("OPS")
            .task()
            .title(title)
            .accountable(&worker)
            .with(json!({"due_date": due}))
            .create()
            .await;
        created.push(key(&item));
    }
    let response = app
        .move_item(
            &created[1],
            &token,
            &json!({"column": board.column_id("Done")}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let get = |query: String| {
        let app = &app;
        let token = token.clone();
        async move {
            keys(
                &app.get(&format!("/api/v1/items?{query}"), &token)
                    .await
                    .json(),
            )
        }
    };
    assert_eq!(get("overdue=true".into()).await, [created[0].clone()]);
    assert_eq!(
        get("overdue=false".into()).await,
        [
            created[1].clone(),
            created[2].clone(),
            created[3].clone(),
            created[4].clone()
        ]
    );
    assert_eq!(
        get(format!("due_before={}", day(0))).await,
        [created[0].clone(), created[1].clone(), created[2].clone()]
    );
    assert_eq!(
        get(format!("due_after={}&due_before={}", day(-2), day(5))).await,
        [created[1].clone(), created[2].clone(), created[4].clone()]
    );
    // Soonest first, items without a due date last; paged one at a time the same.
    let sorted = vec![
        created[0].clone(),
        created[1].clone(),
        created[2].clone(),
        created[4].clone(),
        created[3].clone(),
    ];
    assert_eq!(get("sort=due_date".into()).await, sorted);
    let mut reversed = sorted.clone();
    reversed.reverse();
    assert_eq!(get("sort=-due_date".into()).await, reversed);
    for (sort, expected) in [("due_date", &sorted), ("-due_date", &reversed)] {
        let mut paged = Vec::new();
        let mut next = Some(format!("/api/v1/items?sort={sort}&limit=2"));
        while let Some(url) = next {
            let page = app.get(&url, &token).await.json();
            paged.extend(keys(&page));
            next = page["next_cursor"]
                .as_str()
                .map(|cursor| format!("/api/v1/items?sort={sort}&limit=2&cursor={cursor}"));
        }
        assert_eq!(&paged, expected, "{sort}");
    }
    app.get("/api/v1/items?due_before=tomorrow", &token)
        .await
        .names_field(400, "due_before");
}

async fn updated_since_takes_a_span_back_from_now(app: TestApp) {
    team(&app).await;
    let item = app
        .item("OPS")
        .task()
        .title("Neu")
        .service("wohngeld")
        .create()
        .await;
    let token = app.admin_token.clone();
    for since in ["P1D", "PT6H", "24h", "30m", "1w"] {
        let page = app
            .get(&format!("/api/v1/items?updated_since={since}"), &token)
            .await
            .json();
        assert_eq!(keys(&page), [key(&item)], "{since}");
    }
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let page = app
        .get(
            &format!("/api/v1/items?updated_since={}", future.replace('+', "%2B")),
            &token,
        )
        .await
        .json();
    assert_eq!(keys(&page), Vec::<String>::new());
    for list in ["items", "services", "boards", "users", "organizations"] {
        let response = app
            .get(&format!("/api/v1/{list}?updated_since=P1D"), &token)
            .await;
        assert_eq!(response.status, 200, "{list}: {}", response.text);
    }
    let problem = app
        .get("/api/v1/items?updated_since=yesterday", &token)
        .await
        .names_field(400, "updated_since");
    assert!(problem.to_string().contains("P1D"), "{problem}");
}

async fn incidents_filter_by_person_board_and_severities(app: TestApp) {
    let (_, lead, lead_token, worker, worker_token) = team(&app).await;
    let mut keys_by = Vec::new();
    for (severity, accountable) in [("s1", &worker), ("s3", &worker), ("s2", &lead)] {
        let item = app
            .item("OPS")
            .incident()
            .title(severity)
            .service("wohngeld")
            .severity(severity)
            .accountable(accountable)
            .create()
            .await;
        keys_by.push(item["key"].as_str().unwrap_or("").to_string());
    }
    let get = |query: &str, token: &str| {
        let app = &app;
        let (query, token) = (query.to_string(), token.to_string());
        async move {
            keys(
                &app.get(&format!("/api/v1/incidents?{query}"), &token)
                    .await
                    .json(),
            )
        }
    };
    assert_eq!(
        get("accountable=me", &worker_token).await,
        [keys_by[0].clone(), keys_by[1].clone()]
    );
    assert_eq!(
        get("accountable=me", &lead_token).await,
        [keys_by[2].clone()]
    );
    assert_eq!(
        get("involved=me&severity=s1,s2", &worker_token).await,
        [keys_by[0].clone()],
        "an item that names its accountable takes no roles from the template"
    );
    assert_eq!(
        get("severity=s3&severity=s2&board=ops", &worker_token).await,
        [keys_by[1].clone(), keys_by[2].clone()]
    );
    assert_eq!(get("board=NOPE", &worker_token).await, Vec::<String>::new());
    assert_eq!(
        get(
            &format!("accountable={}&open=true", lead["id"]),
            &worker_token
        )
        .await,
        [keys_by[2].clone()]
    );
}

async fn a_filtered_board_view_keeps_its_counts_and_wip_limits(app: TestApp) {
    let (board, lead, _, worker, worker_token) = team(&app).await;
    for n in 0..3 {
        let accountable = if n == 0 { &worker } else { &lead };
        app.item("OPS")
            .task()
            .title(&format!("T{n}"))
            .accountable(accountable)
            .with(json!({"priority": if n == 2 { "high" } else { "medium" }}))
            .create()
            .await;
    }
    let backlog = board.column_id("Backlog");
    let column = |view: &Value| {
        view["columns"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["id"] == backlog).cloned())
            .unwrap_or(Value::Null)
    };
    let unfiltered = app
        .get("/api/v1/boards/OPS/view", &worker_token)
        .await
        .json();
    let all = column(&unfiltered);
    assert_eq!(all["count"], 3);
    assert!(all.get("shown").is_none(), "no filter, no `shown`: {all}");
    let mine = app
        .get("/api/v1/boards/OPS/view?accountable=me", &worker_token)
        .await
        .json();
    let mine = column(&mine);
    assert_eq!(
        (mine["count"].clone(), mine["shown"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(mine["cards"].as_array().map(Vec::len), Some(1));
    assert_eq!(mine["wip_limit"], all["wip_limit"]);
    let urgent = app
        .get(
            "/api/v1/boards/OPS/view?priority=high,critical",
            &worker_token,
        )
        .await
        .json();
    assert_eq!(column(&urgent)["shown"], 1, "{urgent}");
    let none = app
        .get(
            "/api/v1/boards/OPS/view?priority=high&person=me",
            &worker_token,
        )
        .await
        .json();
    assert_eq!(
        (
            column(&none)["count"].clone(),
            column(&none)["shown"].clone()
        ),
        (json!(3), json!(0))
    );
    app.get("/api/v1/boards/OPS/view?persn=me", &worker_token)
        .await
        .names_field(400, "persn");
}

async fn history_and_activity_name_people_and_columns(app: TestApp) {
    let (board, lead, lead_token, worker, worker_token) = team(&app).await;
    let item = app
        .item("OPS")
        .task()
        .title("Zertifikat erneuern")
        .accountable(&worker)
        .create()
        .await;
    let other = app
        .item("OPS")
        .task()
        .title("Anderes")
        .accountable(&lead)
        .create()
        .await;
    let response = app
        .move_item(
            &key(&item),
            &worker_token,
            &json!({"column": board.column_id("In progress")}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let response = app
        .put(
            &format!("/api/v1/items/{}/raci", key(&item)),
            &lead_token,
            &json!({"accountable": lead["id"], "responsible": [worker["id"]]}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let history = app
        .get(
            &format!("/api/v1/items/{}/history", key(&item)),
            &worker_token,
        )
        .await
        .json();
    let events = history["items"].as_array().cloned().unwrap_or_default();
    let moved = events
        .iter()
        .find(|e| e["kind"] == "moved")
        .cloned()
        .unwrap_or_default();
    assert_eq!(moved["actor_id"], worker["id"]);
    assert_eq!(moved["actor_name"], worker["display_name"]);
    let from = moved["data"]["from_column"].to_string();
    let to = moved["data"]["to_column"].to_string();
    assert_eq!(moved["names"]["columns"][&from], "Backlog", "{moved}");
    assert_eq!(moved["names"]["columns"][&to], "In progress", "{moved}");
    let changed = events
        .iter()
        .find(|e| e["kind"] == "accountable_changed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(changed["actor_name"], lead["display_name"]);
    assert_eq!(
        changed["names"]["users"][&worker["id"].to_string()],
        worker["display_name"],
        "{changed}"
    );
    assert_eq!(
        changed["names"]["users"][&lead["id"].to_string()],
        lead["display_name"]
    );

    // The stream across items: newest first, each entry with its item.
    let (_, viewer) = app.user("viewer").create().await;
    let stream = app
        .get("/api/v1/activity?board=ops&since=P1D", &viewer)
        .await
        .json();
    let entries = stream["items"].as_array().cloned().unwrap_or_default();
    let ids: Vec<i64> = entries.iter().filter_map(|e| e["id"].as_i64()).collect();
    let mut newest_first = ids.clone();
    newest_first.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(ids, newest_first);
    assert_eq!(
        entries.first().map(|e| e["kind"].clone()),
        Some(json!("accountable_changed"))
    );
    assert_eq!(entries[0]["item"]["key"], key(&item).as_str());
    assert_eq!(entries[0]["item"]["title"], "Zertifikat erneuern");
    assert_eq!(entries[0]["item"]["board"], "OPS");
    assert!(
        entries
            .iter()
            .any(|e| e["item"]["key"] == key(&other).as_str())
    );
    let by_worker = app
        .get("/api/v1/activity?person=me", &worker_token)
        .await
        .json();
    let kinds: Vec<Value> = by_worker["items"]
        .as_array()
        .map(|e| e.iter().map(|e| e["kind"].clone()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, [json!("moved")], "{by_worker}");
    let moves = app
        .get("/api/v1/activity?kind=moved,commented", &viewer)
        .await
        .json();
    assert_eq!(moves["items"].as_array().map(Vec::len), Some(1));
    // Paged one at a time, the same entries.
    let mut paged = Vec::new();
    let mut next = Some("/api/v1/activity?limit=1".to_string());
    while let Some(url) = next {
        let page = app.get(&url, &viewer).await.json();
        paged.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["id"].as_i64()),
        );
        next = page["next_cursor"]
            .as_str()
            .map(|c| format!("/api/v1/activity?limit=1&cursor={c}"));
    }
    let all = app.get("/api/v1/activity", &viewer).await.json();
    let all_ids: Vec<i64> = all["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["id"].as_i64())
        .collect();
    assert_eq!(paged, all_ids);
    assert_eq!(app.get("/api/v1/activity", "").await.status, 401);
    app.get("/api/v1/activity?board=OPS&user=me", &viewer)
        .await
        .names_field(400, "user");
    let future = app
        .get("/api/v1/activity?since=2999-01-01T00:00:00Z", &viewer)
        .await
        .json();
    assert_eq!(future["items"], json!([]));
}
