//! `TestApp`: the real app on a bound port over a fresh database (a temp-file SQLite, or a
//! PostgreSQL schema of its own that is dropped afterwards), plus a small HTTP client. The
//! fixture builders (`app.user(..)`, `app.service(..)`, …) are in `fixtures.rs`.

use std::sync::atomic::{AtomicU32, Ordering};

use actix_web::HttpServer;
use actix_web::http::Method;
use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use opsboard::config::Settings;
use opsboard::{AppState, build_app, startup};
use serde_json::{Value, json};

/// The signing secret of every test app, so that tests can forge tokens.
pub const TEST_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
/// The first admin of every test app.
pub const ADMIN_EMAIL: &str = "admin@opsboard.test";
/// Their password.
pub const ADMIN_PASSWORD: &str = "admin-password-1234";
/// Password of every user made by `TestApp::user`.
pub const USER_PASSWORD: &str = "user-password-5678";

/// The storage engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A temp-file SQLite database.
    Sqlite,
    /// A fresh schema in the database named by `OPSBOARD_TEST_DATABASE_URL`.
    Postgres,
}

/// Removes the test's database when the test ends.
enum DbGuard {
    Sqlite(
        #[expect(dead_code, reason = "held for its Drop, which deletes the files")]
        tempfile::TempDir,
    ),
    Postgres {
        base_url: String,
        schema: String,
    },
    /// A second instance on another app's database, which owns it.
    Borrowed,
}

impl Drop for DbGuard {
    fn drop(&mut self) {
        if let DbGuard::Postgres { base_url, schema } = self
            && let Ok(mut conn) = PgConnection::establish(base_url)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

/// The running app, its state (for storage assertions) and an admin token.
pub struct TestApp {
    /// Base URL, `http://127.0.0.1:PORT`.
    pub address: String,
    /// The same state the server runs on.
    pub state: AppState,
    /// A token of the first admin.
    pub admin_token: String,
    client: awc::Client,
    handle: actix_web::dev::ServerHandle,
    _guard: DbGuard,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the returned future only waits for completion.
        drop(self.handle.stop(false));
    }
}

/// Numbers test databases and test users apart.
pub static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Test settings for a database URL: a known secret and first admin, a small pool, and login
/// throttling that a suite logging everyone in from 127.0.0.1 does not trip (the throttling
/// tests set strict limits of their own).
pub fn test_settings(url: &str) -> Settings {
    let mut settings = Settings::defaults().expect("defaults are valid");
    settings.database.url = url.to_string();
    settings.database.pool_size = 4;
    settings.auth.jwt_secret = TEST_SECRET.to_string();
    settings.auth.admin_email = ADMIN_EMAIL.to_string();
    settings.auth.admin_password = ADMIN_PASSWORD.to_string();
    settings.auth.login_address_burst = 100_000;
    settings.auth.login_account_burst = 1_000;
    settings
}

impl TestApp {
    /// Starts an app on `engine`; `None` when PostgreSQL is not configured locally.
    pub async fn spawn(engine: Engine) -> Option<TestApp> {
        Self::spawn_with(engine, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with changed settings.
    pub async fn spawn_with(engine: Engine, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
        let (url, guard) = match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("opsboard.db").display());
                (url, DbGuard::Sqlite(dir))
            }
            Engine::Postgres => {
                let base_url = postgres_url()?;
                let schema = format!(
                    "t_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    chrono::Utc::now().timestamp_subsec_nanos()
                );
                let mut conn = PgConnection::establish(&base_url).unwrap_or_else(|e| {
                    panic!("cannot connect to OPSBOARD_TEST_DATABASE_URL: {e}")
                });
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .expect("create schema");
                let separator = if base_url.contains('?') { '&' } else { '?' };
                let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
                (url, DbGuard::Postgres { base_url, schema })
            }
        };
        let mut settings = test_settings(&url);
        adjust(&mut settings);
        let state = actix_web::web::block(move || startup::prepare(settings))
            .await
            .expect("blocking pool")
            .expect("the app starts");
        let (address, handle) = serve(state.clone());
        let client = awc::Client::builder()
            .disable_redirects()
            .timeout(std::time::Duration::from_secs(60))
            .finish();
        let mut app = TestApp {
            address,
            state,
            admin_token: String::new(),
            client,
            handle,
            _guard: guard,
        };
        app.admin_token = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        Some(app)
    }

    /// A second instance of the service on this app's database, as a second process on one
    /// PostgreSQL database (or on one SQLite file) would be: its own pool, caches and watch.
    /// The database stays this app's: it lives as long as this app.
    pub async fn beside(&self) -> TestApp {
        let settings = (*self.state.settings).clone();
        let state = actix_web::web::block(move || startup::prepare(settings))
            .await
            .expect("blocking pool")
            .expect("the second instance starts");
        let (address, handle) = serve(state.clone());
        TestApp {
            address,
            state,
            admin_token: self.admin_token.clone(),
            client: self.client.clone(),
            handle,
            _guard: DbGuard::Borrowed,
        }
    }

    /// A request builder for `method` on `path`.
    pub fn request(&self, method: Method, path: &str) -> Request<'_> {
        Request {
            app: self,
            method,
            path: path.to_string(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// `GET path` with a token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path).token(token).send().await
    }

    /// `POST path` with a JSON body and a token.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .token(token)
            .json(body)
            .send()
            .await
    }

    /// `PATCH path` with a JSON body and a token.
    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path)
            .token(token)
            .json(body)
            .send()
            .await
    }

    /// `PUT path` with a JSON body and a token.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PUT, path)
            .token(token)
            .json(body)
            .send()
            .await
    }

    /// `DELETE path` with a token.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.request(Method::DELETE, path).token(token).send().await
    }

    /// `POST /items/{key}/move` with `body` (`{"column": …, "before": …}`) and a token.
    pub async fn move_item(&self, key: &str, token: &str, body: &Value) -> Response {
        self.post(&format!("/api/v1/items/{key}/move"), token, body)
            .await
    }

    /// `POST /services/import` as the admin, with a body of `content_type`.
    pub async fn import_services(&self, content_type: &str, body: &str) -> Response {
        self.request(Method::POST, "/api/v1/services/import")
            .token(&self.admin_token)
            .raw(content_type, body.as_bytes().to_vec())
            .send()
            .await
    }

    /// Logs in and returns the access token; panics unless the login succeeds.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .request(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": email, "password": password}))
            .send()
            .await;
        assert_eq!(
            response.status, 200,
            "login of {email} failed: {}",
            response.text
        );
        response.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_string()
    }

    /// A pooled connection to the app's database, for storage assertions.
    pub fn conn(&self) -> r2d2::PooledConnection<opsboard::db::ConnectionManager> {
        self.state.db.pool().get().expect("a connection")
    }
}

/// Serves the app over `state` on a free port of 127.0.0.1: its base URL and the handle that
/// stops it.
pub fn serve(state: AppState) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = listener.local_addr().expect("local address").port();
    let server = HttpServer::new(move || build_app(state.clone()))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}"), handle)
}

/// The PostgreSQL URL for tests. Unset: a clear failure under CI, a visible skip locally.
pub fn postgres_url() -> Option<String> {
    match std::env::var("OPSBOARD_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false") => panic!(
            "OPSBOARD_TEST_DATABASE_URL is not set: CI must run every test on PostgreSQL too \
             (e.g. postgres://postgres@127.0.0.1:5432/test)"
        ),
        _ => {
            eprintln!("SKIPPED: PostgreSQL test, OPSBOARD_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// An HTTP request under construction.
pub struct Request<'a> {
    app: &'a TestApp,
    method: Method,
    path: String,
    headers: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
}

impl Request<'_> {
    /// Adds `Authorization: Bearer token`.
    pub fn token(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a JSON body.
    pub fn json(self, body: &Value) -> Self {
        self.raw("application/json", body.to_string().into_bytes())
    }

    /// Sets a body of any content type.
    pub fn raw(mut self, content_type: &str, body: Vec<u8>) -> Self {
        self.body = Some((content_type.to_string(), body));
        self
    }

    /// Sends it and reads the whole response.
    pub async fn send(self) -> Response {
        let url = format!("{}{}", self.app.address, self.path);
        let mut request = self.app.client.request(self.method.clone(), &url);
        for (name, value) in &self.headers {
            request = request.insert_header((name.as_str(), value.as_str()));
        }
        let result = match self.body {
            Some((content_type, body)) => {
                request
                    .insert_header(("Content-Type", content_type))
                    .send_body(body)
                    .await
            }
            None => request.send().await,
        };
        let mut response = result.unwrap_or_else(|e| panic!("{} {url}: {e}", self.method));
        let body = response
            .body()
            .limit(64 * 1024 * 1024)
            .await
            .expect("response body");
        Response {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            text: String::from_utf8_lossy(&body).to_string(),
        }
    }
}

/// A received response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: actix_web::http::header::HeaderMap,
    /// Body as text.
    pub text: String,
}

impl Response {
    /// The body as JSON; panics with the text when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Asserts a problem+json error with `status`; returns the problem.
    pub fn problem(&self, status: u16) -> Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/problem+json"),
            "an error must be problem+json: {}",
            self.text
        );
        let problem = self.json();
        assert_eq!(problem["status"], status);
        for field in ["type", "title", "detail"] {
            assert!(
                problem[field].is_string(),
                "problem lacks `{field}`: {problem}"
            );
        }
        problem
    }

    /// Asserts a 422 (or 400) that names `field` in `errors`.
    pub fn names_field(&self, status: u16, field: &str) -> Value {
        let problem = self.problem(status);
        let named = problem["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e["field"] == field));
        assert!(named, "expected `{field}` named in errors: {problem}");
        problem
    }
}

/// Runs a test body once on SQLite and once on PostgreSQL: `both_engines!(name, …)` makes
/// `name::sqlite` and `name::postgres` from `async fn name(app: TestApp)`;
/// `both_engines!(name => super::adjust, …)` starts the app with settings changed by
/// `fn adjust(&mut Settings)` (see [`TestApp::spawn_with`]).
#[macro_export]
macro_rules! both_engines {
    ($($name:ident => $adjust:expr),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                if let Some(app) = $crate::helpers::TestApp::spawn_with(
                    $crate::helpers::Engine::Sqlite, $adjust).await
                {
                    super::$name(app).await;
                }
            }

            #[actix_web::test]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn_with(
                    $crate::helpers::Engine::Postgres, $adjust).await
                {
                    super::$name(app).await;
                }
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Engine::Sqlite).await {
                    super::$name(app).await;
                }
            }

            #[actix_web::test]
            async fn postgres() {
                if let Some(app) = $crate::helpers::TestApp::spawn($crate::helpers::Engine::Postgres).await {
                    super::$name(app).await;
                }
            }
        }
    )*};
}
