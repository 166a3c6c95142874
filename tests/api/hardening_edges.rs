//! Issue 9, the edges: security headers, errors that actix itself would give, trailing
//! slashes, unique and foreign keys, CSV, requester confinement in history, list limits.

use actix_web::http::Method;
use base64::Engine as _;
use serde_json::json;
use sha2::Digest;

use crate::both_engines;
use crate::helpers::{Engine, TestApp};

both_engines!(api_responses_are_never_cached);

/// Authenticated JSON, the login's token and every error under `/api/v1` carry
/// `Cache-Control: no-store`.
async fn api_responses_are_never_cached(app: TestApp) {
    let ok = app.get("/api/v1/me", &app.admin_token).await;
    assert_eq!(ok.status, 200);
    let login = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": "nobody@opsboard.test", "password": "wrong-password-1"}))
        .send()
        .await;
    let unauthenticated = app.request(Method::GET, "/api/v1/users").send().await;
    let missing = app.get("/api/v1/no-such-thing", &app.admin_token).await;
    let invalid = app
        .post("/api/v1/users", &app.admin_token, &json!({"email": 1}))
        .await;
    let wrong_method = app
        .request(Method::DELETE, "/api/v1/users")
        .token(&app.admin_token)
        .send()
        .await;
    for (what, response) in [
        ("200", &ok),
        ("failed login", &login),
        ("401", &unauthenticated),
        ("404", &missing),
        ("422", &invalid),
        ("405", &wrong_method),
    ] {
        assert_eq!(
            response.header("cache-control").as_deref(),
            Some("no-store"),
            "{what}: {:?}",
            response.headers
        );
    }
    assert_eq!(login.status, 401);
    assert_eq!(invalid.status, 422);
    // Swagger UI's assets are no API: they may be cached.
    let asset = app
        .request(Method::GET, "/swagger-ui/swagger-ui.css")
        .send()
        .await;
    assert_eq!(asset.status, 200);
    assert_ne!(asset.header("cache-control").as_deref(), Some("no-store"));
}

/// The directive `name` of a Content-Security-Policy, as its list of sources.
fn directive<'a>(csp: &'a str, name: &str) -> Option<Vec<&'a str>> {
    csp.split(';').map(str::trim).find_map(|d| {
        let mut words = d.split_whitespace();
        (words.next() == Some(name)).then(|| words.collect())
    })
}

/// Swagger UI's page, its redirect and its assets carry a CSP that allows only this server,
/// `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer`; the one inline style the UI
/// renders is allowed by its hash, recomputed here from the served preset. (Checked in headless
/// Chromium when written: every operation renders, "Try it out" works, no CSP violation.)
#[actix_web::test]
async fn swagger_ui_gets_a_csp_of_its_own_assets_and_no_framing() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let mut csp = String::new();
    for path in [
        "/swagger-ui",
        "/swagger-ui/",
        "/swagger-ui/swagger-ui-bundle.js",
        "/swagger-ui/swagger-initializer.js",
        "/swagger-ui/no-such-file",
    ] {
        let response = app.request(Method::GET, path).send().await;
        csp = response
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no CSP"));
        assert_eq!(
            response.header("x-frame-options").as_deref(),
            Some("DENY"),
            "{path}"
        );
        assert_eq!(
            response.header("referrer-policy").as_deref(),
            Some("no-referrer"),
            "{path}"
        );
    }
    assert_eq!(directive(&csp, "default-src"), Some(vec!["'none'"]));
    assert_eq!(directive(&csp, "script-src"), Some(vec!["'self'"]));
    assert_eq!(directive(&csp, "connect-src"), Some(vec!["'self'"]));
    assert_eq!(directive(&csp, "img-src"), Some(vec!["'self'", "data:"]));
    assert_eq!(directive(&csp, "frame-ancestors"), Some(vec!["'none'"]));
    assert!(!csp.contains("unsafe"), "{csp}");

    // The only inline <style> of Swagger UI is the logo's, created by the standalone preset.
    let preset = app
        .request(Method::GET, "/swagger-ui/swagger-ui-standalone-preset.js")
        .send()
        .await;
    let bundle = app
        .request(Method::GET, "/swagger-ui/swagger-ui-bundle.js")
        .send()
        .await;
    let marker = "createElement(\"style\",null,\"";
    assert_eq!(bundle.text.matches("createElement(\"style\"").count(), 0);
    assert_eq!(preset.text.matches("createElement(\"style\"").count(), 1);
    let style = preset
        .text
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the logo's style");
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(style));
    let style_src = directive(&csp, "style-src").unwrap_or_default();
    assert_eq!(
        style_src,
        vec!["'self'", &format!("'sha256-{hash}'")],
        "Swagger UI's inline style changed; put its hash into SWAGGER_UI_CSP: {style}"
    );

    // Nothing outside Swagger UI gets its policy.
    let health = app.request(Method::GET, "/health").send().await;
    assert!(health.header("content-security-policy").is_none());
}

/// A path and query over 8 KiB is a 414 problem; one just under it is served.
#[actix_web::test]
async fn an_over_long_uri_is_a_414_problem() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let under = format!("/api/v1/items?q={}", "a".repeat(190));
    assert_eq!(app.get(&under, &app.admin_token).await.status, 200);
    let padding = format!("/health?pad={}", "a".repeat(8 * 1024 - 20));
    assert_eq!(app.request(Method::GET, &padding).send().await.status, 200);
    let over = format!("/api/v1/items?q={}", "a".repeat(9 * 1024));
    let response = app.get(&over, &app.admin_token).await;
    let problem = response.problem(414);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("8192"),
        "{problem}"
    );
    assert_eq!(
        response.header("cache-control").as_deref(),
        Some("no-store")
    );
    // Before authentication: the same answer without a token.
    app.request(Method::GET, &over).send().await.problem(414);
}

/// A header section over 32 KiB (but under actix-http's own 128 KiB and 96 fields) is a 431
/// problem; under it, the request is served.
#[actix_web::test]
async fn over_large_headers_are_a_431_problem() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let value = "v".repeat(1000);
    let mut fine = app
        .request(Method::GET, "/api/v1/me")
        .token(&app.admin_token);
    for i in 0..25 {
        fine = fine.header(&format!("x-pad-{i}"), &value);
    }
    assert_eq!(fine.send().await.status, 200);
    let mut large = app
        .request(Method::GET, "/api/v1/me")
        .token(&app.admin_token);
    for i in 0..40 {
        large = large.header(&format!("x-pad-{i}"), &value);
    }
    let response = large.send().await;
    let problem = response.problem(431);
    assert!(
        problem["detail"].as_str().unwrap_or("").contains("32768"),
        "{problem}"
    );
}

/// Sends a raw request head and returns the status line and the body of the answer.
fn raw_exchange(address: &str, head: String) -> (String, String) {
    use std::io::{Read, Write};
    let host = address.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    // The server may answer and close before it has read everything: ignore write errors.
    let _ = stream.write_all(head.as_bytes());
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer.lines().next().unwrap_or_default().to_string();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// What the README says of actix-http's own limit: a head over 128 KiB, or more than 96
/// header fields, gets an empty 431 from actix-http, which opsboard cannot change.
#[actix_web::test]
async fn the_hard_limit_of_actix_http_is_an_empty_431() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    let address = app.address.clone();
    let (status, body) = actix_web::web::block(move || {
        let huge = format!(
            "GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
            "v".repeat(130 * 1024)
        );
        raw_exchange(&address, huge)
    })
    .await
    .expect("blocking pool");
    assert!(status.contains(" 431"), "{status}");
    assert_eq!(body, "");
    let address = app.address.clone();
    let (status, _) = actix_web::web::block(move || {
        let mut head = "GET /health HTTP/1.1\r\nHost: x\r\n".to_string();
        for i in 0..100 {
            head.push_str(&format!("X-Pad-{i}: v\r\n"));
        }
        head.push_str("\r\n");
        raw_exchange(&address, head)
    })
    .await
    .expect("blocking pool");
    assert!(status.contains(" 431"), "{status}");
}

/// A trailing slash is another path: 404 naming the path without it, never a 405 whose
/// `Allow` lists the method that was used.
#[actix_web::test]
async fn trailing_slash_paths_are_404_not_405() {
    let Some(app) = TestApp::spawn(Engine::Sqlite).await else {
        return;
    };
    for (method, path, suggestion) in [
        (Method::GET, "/health/", Some("/health")),
        (Method::HEAD, "/health/", None),
        (Method::GET, "/ready/", Some("/ready")),
        (Method::GET, "/api/v1/items/", Some("/api/v1/items")),
        (Method::POST, "/api/v1/users/", Some("/api/v1/users")),
        (
            Method::GET,
            "/api/v1/boards/OPS/view/",
            Some("/api/v1/boards/OPS/view"),
        ),
        (Method::GET, "/api/v1/", None),
        (Method::GET, "//health", None),
    ] {
        let response = app
            .request(method.clone(), path)
            .token(&app.admin_token)
            .send()
            .await;
        assert_eq!(response.status, 404, "{method} {path}: {}", response.text);
        assert!(response.header("allow").is_none(), "{method} {path}");
        if method == Method::HEAD {
            continue;
        }
        let problem = response.problem(404);
        let detail = problem["detail"].as_str().unwrap_or_default();
        match suggestion {
            Some(p) => assert!(detail.contains(&format!("did you mean {p} ")), "{detail}"),
            None => assert!(!detail.contains("did you mean"), "{detail}"),
        }
    }
    // The paths themselves still answer, and a wrong method on them is still a 405.
    assert_eq!(app.request(Method::GET, "/health").send().await.status, 200);
    let response = app
        .request(Method::DELETE, "/health")
        .token(&app.admin_token)
        .send()
        .await;
    response.problem(405);
    assert_eq!(response.header("allow").as_deref(), Some("GET, HEAD"));
}
