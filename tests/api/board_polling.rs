//! What makes a board view cheap for frontends that poll: a 304 for an unchanged view, a
//! compressed body for a large one, and `done` columns that show the last two weeks.

use actix_web::http::Method;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::TestApp;

both_engines!(
    an_unchanged_view_is_a_304_and_any_change_a_new_etag,
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
