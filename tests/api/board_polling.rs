//! What makes a board view cheap for frontends that poll: a 304 for an unchanged view, a
//! compressed body for a large one, and `done` columns that show the last two weeks.

use actix_web::http::Method;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    an_unchanged_view_is_a_304_and_any_change_a_new_etag,
    a_view_sent_again_is_never_stale_nor_another_boards,
    large_views_are_compressed_when_the_client_accepts_it,
    done_columns_show_the_last_two_weeks_unless_asked_for_more,
);

async fn view(
    app: &TestApp,
    token: &str,
    query: &str,
    etag: Option<&str>,
) -> crate::helpers::Response {
    let mut request = app
        .request(Method::GET, &format!("/api/v1/boards/OPS/view{query}"))
        .token(token);
    if let Some(etag) = etag {
        request = request.header("If-None-Match", etag);
    }
    request.send().await
}

async fn an_unchanged_view_is_a_304_and_any_change_a_new_etag(app: TestApp) {
    let (lead, lead_token) = app.user("manager").create().await;
    let board = app.board("OPS").lead(&lead).create().await;
    app.item("OPS").task().title("Eins").create().await;
    let first = view(&app, &app.admin_token, "", None).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let etag = first.header("etag").expect("an ETag");
    let unchanged = view(&app, &app.admin_token, "", Some(&etag)).await;
    assert_eq!(unchanged.status, 304, "{}", unchanged.text);
    assert!(unchanged.text.is_empty());
    assert_eq!(unchanged.header("etag").as_deref(), Some(etag.as_str()));
    // Another filter, or another person (`me` means someone else), is another view.
    let filtered = view(&app, &app.admin_token, "?type=task", Some(&etag)).await;
    assert_eq!(filtered.status, 200);
    let theirs = view(&app, &lead_token, "", Some(&etag)).await;
    assert_eq!(theirs.status, 200);
    // Any change of what the view shows: a move, a new title, a column, a person's name.
    let moved = app
        .move_item(
            "OPS-1",
            &app.admin_token,
            &json!({"column": board.column_id("Ready")}),
        )
        .await;
    assert_eq!(moved.status, 200);
    let after_move = view(&app, &app.admin_token, "", Some(&etag)).await;
    assert_eq!(after_move.status, 200, "a move changes the view");
    let etag = after_move.header("etag").expect("an ETag");
    assert_eq!(
        view(&app, &app.admin_token, "", Some(&etag)).await.status,
        304
    );
    let renamed = app
        .patch(
            &format!("/api/v1/users/{}", lead["id"]),
            &app.admin_token,
            &json!({"display_name": "Neu"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(
        view(&app, &app.admin_token, "", Some(&etag)).await.status,
        200
    );
    assert_eq!(
        view(&app, &app.admin_token, "", Some("*")).await.status,
        304
    );
}

/// The views last built are kept by their ETag and sent again: what a client gets must still
/// be the board it asked for, as it is now.
async fn a_view_sent_again_is_never_stale_nor_another_boards(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    app.board("OPT").lead(&lead).create().await;
    app.item("OPS")
        .task()
        .title("Eins")
        .accountable(&lead)
        .create()
        .await;
    app.item("OPT").task().title("Zwei").create().await;
    let get = |board: &'static str| {
        let app = &app;
        async move {
            let response = app
                .request(Method::GET, &format!("/api/v1/boards/{board}/view"))
                .token(&app.admin_token)
                .send()
                .await;
            assert_eq!(response.status, 200, "{}", response.text);
            let etag = response.header("etag").expect("an ETag");
            (etag, response.json())
        }
    };
    let titles = |view: &Value| -> Vec<String> {
        view["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["cards"].as_array().cloned().unwrap_or_default())
            .map(|card| card["title"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let (ops_tag, ops) = get("OPS").await;
    let (again_tag, again) = get("OPS").await;
    assert_eq!(
        (&again_tag, &again),
        (&ops_tag, &ops),
        "the same view, sent again"
    );
    assert_eq!(titles(&ops), ["Eins"]);
    // Same caller, same query, same minute: only the board differs.
    let (opt_tag, opt) = get("OPT").await;
    assert_ne!(opt_tag, ops_tag, "another board is another view");
    assert_eq!(opt["board"], "OPT");
    assert_eq!(titles(&opt), ["Zwei"]);
    // A change after the view was kept: the next GET shows it.
    let renamed = app
        .patch(
            "/api/v1/items/OPS-1",
            &app.admin_token,
            &json!({"title": "Eins, neu"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let (changed_tag, changed) = get("OPS").await;
    assert_ne!(changed_tag, ops_tag);
    assert_eq!(titles(&changed), ["Eins, neu"]);
    // A person's new name, kept nowhere on the item, shows too.
    let name = app
        .patch(
            &format!("/api/v1/users/{}", lead["id"]),
            &app.admin_token,
            &json!({"display_name": "Neuer Name"}),
        )
        .await;
    assert_eq!(name.status, 200, "{}", name.text);
    let (_, after_name) = get("OPS").await;
    let card = &after_name["columns"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["cards"].as_array().cloned().unwrap_or_default())
        .next()
        .expect("a card");
    assert_eq!(card["accountable"], "Neuer Name", "{card}");
}

async fn large_views_are_compressed_when_the_client_accepts_it(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    app.board("OPS").lead(&lead).create().await;
    for n in 0..40 {
        app.item("OPS")
            .task()
            .title(&format!(
                "Eine Aufgabe mit einem längeren Titel, Nummer {n}"
            ))
            .create()
            .await;
    }
    for encoding in ["gzip", "br"] {
        let answer = app
            .request(Method::GET, "/api/v1/boards/OPS/view")
            .token(&app.admin_token)
            .header("Accept-Encoding", encoding)
            .send()
            .await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-encoding").as_deref(), Some(encoding));
        assert_eq!(
            answer.json()["columns"][0]["count"],
            40,
            "decoded, the same view"
        );
    }
    let plain = app
        .request(Method::GET, "/api/v1/boards/OPS/view")
        .token(&app.admin_token)
        .header("Accept-Encoding", "identity")
        .send()
        .await;
    assert_eq!(plain.header("content-encoding"), None);
}

async fn done_columns_show_the_last_two_weeks_unless_asked_for_more(app: TestApp) {
    let (lead, _) = app.user("manager").create().await;
    let board = app.board("OPS").lead(&lead).create().await;
    let done = board.column_id("Done");
    for n in 1..=5 {
        app.item("OPS")
            .task()
            .title(&format!("Fertig {n}"))
            .create()
            .await;
        let moved = app
            .move_item(
                &format!("OPS-{n}"),
                &app.admin_token,
                &json!({"column": done}),
            )
            .await;
        assert_eq!(moved.status, 200);
    }
    // OPS-1 and OPS-2 were finished long ago, OPS-3 twenty days ago.
    {
        use opsboard::db::schema::items;
        let now = chrono::Utc::now().naive_utc();
        for (key, days) in [("OPS-1", 200), ("OPS-2", 40), ("OPS-3", 20)] {
            diesel::update(items::table.filter(items::key.eq(key)))
                .set(items::done_at.eq(now - chrono::Duration::days(days)))
                .execute(&mut *app.conn())
                .expect("backdate");
        }
    }
    let column = |v: &Value| -> (Vec<String>, Value, Value) {
        let done = v["columns"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["category"] == "done"))
            .cloned()
            .unwrap_or_default();
        let keys = done["cards"]
            .as_array()
            .map(|c| {
                c.iter()
                    .filter_map(|c| c["key"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (keys, done["count"].clone(), done["hidden"].clone())
    };
    let default = view(&app, &app.admin_token, "", None).await.json();
    assert_eq!(
        column(&default),
        (vec!["OPS-4".into(), "OPS-5".into()], json!(5), json!(3))
    );
    assert!(
        default["columns"][0].get("hidden").is_none(),
        "only done columns hide"
    );
    let month = (chrono::Utc::now() - chrono::Duration::days(30)).date_naive();
    let since = view(
        &app,
        &app.admin_token,
        &format!("?done_since={month}"),
        None,
    )
    .await
    .json();
    assert_eq!(column(&since).0, ["OPS-3", "OPS-4", "OPS-5"]);
    assert_eq!(column(&since).2, 2);
    let all = view(&app, &app.admin_token, "?done=all", None).await.json();
    assert_eq!(column(&all).0.len(), 5);
    assert!(column(&all).2.is_null());
    view(&app, &app.admin_token, "?done=some", None)
        .await
        .names_field(400, "done");
}
