//! Login and access tokens: success, uniform failure, and every way a token can be wrong.

use actix_web::http::Method;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::both_engines;
use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TEST_SECRET, TestApp, USER_PASSWORD};

both_engines!(
    login_returns_a_bearer_token_that_works,
    wrong_email_and_wrong_password_get_the_same_401,
    forged_and_stale_tokens_are_refused,
    deactivated_users_tokens_stop_working,
    role_changes_take_effect_at_once,
    reads_that_check_their_caller_on_their_own_trip_refuse_the_same,
);

async fn login_returns_a_bearer_token_that_works(app: TestApp) {
    // Any case of the e-mail logs in.
    let response = app
        .request(Method::POST, "/api/v1/auth/login")
        .json(&json!({"email": ADMIN_EMAIL.to_uppercase(), "password": ADMIN_PASSWORD}))
        .send()
        .await;
    assert_eq!(response.status, 200, "{}", response.text);
    let body = response.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap_or_default();
    let me = app.get("/api/v1/me", token).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.json()["email"], ADMIN_EMAIL);
    assert_eq!(me.json()["role"], "admin");
    assert_eq!(me.header("etag").as_deref(), Some("\"1\""));

    let claims = decode_claims(token);
    assert_eq!(claims["iss"], "opsboard");
    assert_eq!(claims["aud"], "opsboard-api");
    assert_eq!(claims["role"], "admin");
    assert_eq!(claims["sub"], me.json()["id"].to_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap_or(0) - claims["iat"].as_i64().unwrap_or(0),
        3600
    );
}

async fn wrong_email_and_wrong_password_get_the_same_401(app: TestApp) {
    let (member, _) = app.user("member").create().await;
    let login = |email: Value, password: &str| {
        app.request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    let wrong_password = login(member["email"].clone(), "not-the-password").await;
    let wrong_email = login(json!("nobody@example.org"), USER_PASSWORD).await;
    let a = wrong_password.problem(401);
    let b = wrong_email.problem(401);
    assert_eq!(a, b, "the two failures must not be told apart");
    // A deactivated account fails the same way, even with the right password.
    let path = format!("/api/v1/users/{}/deactivate", member["id"]);
    assert_eq!(
        app.post(&path, &app.admin_token, &json!({})).await.status,
        200
    );
    let deactivated = login(member["email"].clone(), USER_PASSWORD).await;
    assert_eq!(deactivated.problem(401), a);
}

fn claims(offset_exp: i64, iss: &str, aud: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": "1", "role": "admin", "auth_epoch": 0, "iat": now, "exp": now + offset_exp,
           "iss": iss, "aud": aud})
}

fn sign(alg: Algorithm, secret: &str, claims: &Value) -> String {
    let key = EncodingKey::from_secret(secret.as_bytes()).expect("key");
    jsonwebtoken::encode(&Header::new(alg), claims, &key).expect("sign")
}

fn decode_claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default()).unwrap_or_default()
}

async fn forged_and_stale_tokens_are_refused(app: TestApp) {
    // A correctly made token works, so each refusal below is due to the one thing changed.
    let good = sign(
        Algorithm::HS256,
        TEST_SECRET,
        &claims(600, "opsboard", "opsboard-api"),
    );
    assert_eq!(app.get("/api/v1/me", &good).await.status, 200);

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims(600, "opsboard", "opsboard-api").to_string())
    );
    let cases = [
        (
            "expired",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                &claims(-3600, "opsboard", "opsboard-api"),
            ),
        ),
        (
            "wrong signature",
            sign(
                Algorithm::HS256,
                "another-secret-another-secret-another!",
                &claims(600, "opsboard", "opsboard-api"),
            ),
        ),
        (
            "wrong audience",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                &claims(600, "opsboard", "someone-else"),
            ),
        ),
        (
            "wrong issuer",
            sign(
                Algorithm::HS256,
                TEST_SECRET,
                &claims(600, "evil", "opsboard-api"),
            ),
        ),
        ("alg none", unsigned),
        ("no auth_epoch", {
            let mut c = claims(600, "opsboard", "opsboard-api");
            c.as_object_mut().map(|c| c.remove("auth_epoch"));
            sign(Algorithm::HS256, TEST_SECRET, &c)
        }),
        ("another auth_epoch", {
            let mut c = claims(600, "opsboard", "opsboard-api");
            c["auth_epoch"] = json!(1);
            sign(Algorithm::HS256, TEST_SECRET, &c)
        }),
        (
            "other algorithm",
            sign(
                Algorithm::HS512,
                TEST_SECRET,
                &claims(600, "opsboard", "opsboard-api"),
            ),
        ),
        ("tampered payload", {
            let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
            let mut c = decode_claims(&good);
            c["role"] = json!("admin");
            c["sub"] = json!("2");
            parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
            parts.join(".")
        }),
    ];
    for (case, token) in cases {
        let response = app.get("/api/v1/me", &token).await;
        assert_eq!(response.status, 401, "{case}: {}", response.text);
        response.problem(401);
        assert!(response.header("www-authenticate").is_some(), "{case}");
    }
}

async fn deactivated_users_tokens_stop_working(app: TestApp) {
    let (member, token) = app.user("member").create().await;
    assert_eq!(app.get("/api/v1/me", &token).await.status, 200);
    let deactivated = app
        .post(
            &format!("/api/v1/users/{}/deactivate", member["id"]),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(deactivated.status, 200, "{}", deactivated.text);
    assert_eq!(deactivated.json()["active"], false);
    let problem = app.get("/api/v1/me", &token).await.problem(401);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap_or("")
            .contains("deactivated"),
        "{problem}"
    );
    // Reactivation lets the person log in again; the tokens from before stay dead.
    let path = format!("/api/v1/users/{}/reactivate", member["id"]);
    assert_eq!(
        app.post(&path, &app.admin_token, &json!({})).await.json()["active"],
        true
    );
    app.get("/api/v1/me", &token).await.problem(401);
    let email = member["email"].as_str().unwrap_or_default();
    let fresh = app.login(email, USER_PASSWORD).await;
    assert_eq!(app.get("/api/v1/me", &fresh).await.status, 200);
}

async fn role_changes_take_effect_at_once(app: TestApp) {
    let (member, token) = app.user("manager").create().await;
    assert_eq!(app.get("/api/v1/users", &token).await.status, 200);
    let path = format!("/api/v1/users/{}", member["id"]);
    assert_eq!(
        app.patch(&path, &app.admin_token, &json!({"role": "requester"}))
            .await
            .status,
        200
    );
    // The token issued as manager is revoked; a new one carries the stored role (requester).
    app.get("/api/v1/users", &token).await.problem(401);
    let email = member["email"].as_str().unwrap_or_default();
    let fresh = app.login(email, USER_PASSWORD).await;
    app.get("/api/v1/users", &fresh).await.problem(403);
}

/// The item GET and the board view check their caller in the same trip to storage as their
/// read (not in the extractor); they must refuse exactly what every other request refuses.
async fn reads_that_check_their_caller_on_their_own_trip_refuse_the_same(app: TestApp) {
    let (member, jwt) = app.user("member").create().await;
    app.board("OPS").lead(&member).create().await;
    let item = app.item("OPS").create().await;
    let item_path = format!("/api/v1/items/{}", item["key"].as_str().unwrap_or_default());
    let view_path = "/api/v1/boards/OPS/view";
    let made = app
        .post(
            "/api/v1/tokens",
            &jwt,
            &json!({"name": "reader", "scopes": ["read"]}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.text);
    let secret = made.json()["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for bearer in [&jwt, &secret] {
        let read = app.get(&item_path, bearer).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.json()["key"], item["key"]);
        let view = app.get(view_path, bearer).await;
        assert_eq!(view.status, 200, "{}", view.text);
    }
    // No bearer, a forged one: 401 before any work.
    for path in [item_path.as_str(), view_path] {
        app.request(Method::GET, path).send().await.problem(401);
        app.get(path, "not-a-token").await.problem(401);
        app.get(path, "opb_0000000000000000000000000000000000000")
            .await
            .problem(401);
    }
    // Deactivated: the login and the API token are refused at once, on both reads, as
    // `/me` refuses them, and a missing item is not told apart from a present one.
    let path = format!("/api/v1/users/{}/deactivate", member["id"]);
    assert_eq!(
        app.post(&path, &app.admin_token, &json!({})).await.status,
        200
    );
    let login_refused = app.get("/api/v1/me", &jwt).await.problem(401);
    assert!(
        login_refused["detail"]
            .as_str()
            .unwrap_or("")
            .contains("deactivated"),
        "{login_refused}"
    );
    for bearer in [&jwt, &secret] {
        let refused = app.get("/api/v1/me", bearer).await.problem(401);
        for path in [item_path.as_str(), view_path, "/api/v1/items/OPS-999"] {
            assert_eq!(app.get(path, bearer).await.problem(401), refused, "{path}");
        }
    }
}
