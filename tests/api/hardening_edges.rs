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
