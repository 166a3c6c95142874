//! The `opsboard` binary as an operator meets it: configuration errors that name the setting,
//! first start on an empty database, PostgreSQL by URL, graceful shutdown, the CLI commands.

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;

use crate::helpers::postgres_url;

const VARIABLES: &[&str] = &[
    "DATABASE_URL",
    "OPSBOARD_BIND",
    "OPSBOARD_ENV",
    "OPSBOARD_JWT_SECRET",
    "OPSBOARD_ADMIN_EMAIL",
    "OPSBOARD_ADMIN_PASSWORD",
    "OPSBOARD_CONFIG",
    "OPSBOARD_PASSWORD",
];

/// A secret that production accepts, printed by `openssl rand -base64 48`.
pub(crate) const PRODUCTION_SECRET: &str =
    "XpupaDPY//JDTRmM1gv1a1NKtPCPMaRGzYCS0IUKN5Lrq3tPdwrFiS/y4IzzTXUX";

pub(crate) fn opsboard(db_dir: &tempfile::TempDir, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opsboard"));
    for variable in VARIABLES {
        command.env_remove(variable);
    }
    command
        .env("DATABASE_URL", db_dir.path().join("db.sqlite"))
        .env("RUST_LOG", "info");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

/// Runs a command that must end by itself within a minute; its output is read while it runs,
/// so a large output cannot fill the pipe and stall it.
pub(crate) fn run(command: &mut Command) -> (Output, String) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run opsboard");
    let pid = child.id();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let output = match receiver.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("output"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("opsboard did not exit within a minute: {command:?}");
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, text)
}

#[test]
fn production_refuses_a_missing_or_weak_secret() {
    let dir = tempfile::tempdir().expect("dir");
    let (output, text) = run(opsboard(
        &dir,
        &[
            ("OPSBOARD_ENV", "production"),
            ("OPSBOARD_JWT_SECRET", "too-short"),
        ],
    )
    .arg("serve"));
    assert!(!output.status.success());
    assert!(
        text.contains("OPSBOARD_JWT_SECRET") && text.contains("32"),
        "{text}"
    );
    let (output, text) = run(opsboard(&dir, &[("OPSBOARD_ENV", "production")]).arg("serve"));
    assert!(!output.status.success());
    assert!(
        text.contains("OPSBOARD_JWT_SECRET") && text.contains("required in production"),
        "{text}"
    );
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "nothing was started"
    );
}

#[test]
fn production_refuses_a_guessable_secret_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("dir");
    for weak in ["a".repeat(48), " ".repeat(32)] {
        let (output, text) = run(opsboard(
            &dir,
            &[
                ("OPSBOARD_ENV", "production"),
                ("OPSBOARD_JWT_SECRET", weak.as_str()),
            ],
        )
        .arg("serve"));
        assert!(!output.status.success(), "{weak:?} was accepted: {text}");
        assert!(
            text.contains("OPSBOARD_JWT_SECRET")
                && text.contains("too easy to guess")
                && text.contains("openssl rand -base64 48"),
            "{weak:?}: {text}"
        );
        if weak.starts_with('a') {
            assert!(!text.contains(&weak), "the secret itself is never printed");
        }
    }
    assert!(
        !dir.path().join("db.sqlite").exists(),
        "nothing was started"
    );
    // Development still takes any secret of 32 bytes.
    let (output, text) =
        run(opsboard(&dir, &[("OPSBOARD_JWT_SECRET", "a".repeat(32).as_str())]).arg("migrate"));
    assert!(output.status.success(), "{text}");
}

#[test]
fn invalid_settings_stop_the_start_and_are_named() {
    let dir = tempfile::tempdir().expect("dir");
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("OPSBOARD_BIND", "localhost")], "OPSBOARD_BIND"),
        (&[("OPSBOARD_ENV", "staging")], "environment"),
        (&[("OPSBOARD__SERVER__BODY_LIMIT", "lots")], "body_limit"),
        (
            &[("OPSBOARD__AUTH__TOKEN_TTL_MINUTES", "0")],
            "token_ttl_minutes",
        ),
        (
            &[("OPSBOARD_ADMIN_EMAIL", "a@example.org")],
            "OPSBOARD_ADMIN_PASSWORD",
        ),
        (
            &[("OPSBOARD_CONFIG", "/no/such/file.toml")],
            "OPSBOARD_CONFIG",
        ),
    ];
    for (env, named) in cases {
        let (output, text) = run(opsboard(&dir, env).arg("serve"));
        assert!(!output.status.success(), "{env:?} must fail");
        assert!(
            text.contains(named),
            "{env:?}: the message must name {named}: {text}"
        );
    }
}

#[test]
fn a_config_file_and_the_environment_override_the_defaults() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("opsboard.toml");
    std::fs::write(&file, "[server]\nbind = \"file-bind-value\"\n").expect("write");
    // The file's value is used (and refused, so nothing starts)…
    let (output, text) = run(opsboard(
        &dir,
        &[("OPSBOARD_CONFIG", file.to_str().unwrap_or_default())],
    )
    .arg("serve"));
    assert!(!output.status.success());
    assert!(text.contains("file-bind-value"), "{text}");
    // …and a variable wins over the file.
    let (output, text) = run(opsboard(
        &dir,
        &[
            ("OPSBOARD_CONFIG", file.to_str().unwrap_or_default()),
            ("OPSBOARD_BIND", "env-bind-value"),
        ],
    )
    .arg("serve"));
    assert!(!output.status.success());
    assert!(text.contains("env-bind-value"), "{text}");
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A minimal HTTP GET, so that this test needs no async runtime: `(status, body)`.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    http(port, "GET", path, None, None)
}

/// A minimal HTTP request with an optional bearer token and JSON body: `(status, body)`.
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&serde_json::Value>,
) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.map_or(String::new(), |b| b.to_string());
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Some((status, body))
}

pub(crate) fn wait_until_healthy(port: u16) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if http_get(port, "/health").is_some_and(|(s, _)| s == 200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the server did not become healthy");
}

pub(crate) fn serve_then_terminate(db_dir: &tempfile::TempDir, env: &[(&str, &str)]) -> String {
    serve_while(db_dir, env, |_| {})
}

/// Starts `serve`, runs `work` with its port while it answers, then stops it with SIGTERM;
/// returns the server's log.
pub(crate) fn serve_while(
    db_dir: &tempfile::TempDir,
    env: &[(&str, &str)],
    work: impl FnOnce(u16),
) -> String {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut env = env.to_vec();
    env.push(("OPSBOARD_BIND", &bind));
    let mut child = opsboard(db_dir, &env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start opsboard");
    wait_until_healthy(port);
    let ready = http_get(port, "/ready");
    let swagger = http_get(port, "/swagger-ui/");
    let worked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(port)));
    let killed = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    assert!(killed.is_ok_and(|s| s.success()));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no graceful exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().expect("output");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    if let Err(panic) = worked {
        eprintln!("server log: {log}");
        std::panic::resume_unwind(panic);
    }
    assert!(status.success(), "SIGTERM ends the server cleanly: {log}");
    assert_eq!(ready.map(|r| r.0), Some(200), "{log}");
    assert_eq!(swagger.map(|r| r.0), Some(200), "{log}");
    assert!(
        log.contains(&format!("http://{bind}/swagger-ui/")),
        "the log names Swagger UI: {log}"
    );
    log
}

#[test]
fn first_start_in_development_creates_an_admin_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("dir");
    let log = serve_then_terminate(&dir, &[]);
    assert!(
        log.contains("created the first admin: e-mail admin@example.org  password "),
        "{log}"
    );
    assert!(
        log.contains("random one"),
        "a generated secret is warned about: {log}"
    );
    // The second start finds the admin and prints no password.
    let log = serve_then_terminate(&dir, &[]);
    assert!(!log.contains("password "), "{log}");
}

#[test]
fn the_same_binary_serves_postgresql_by_url() {
    let Some(base_url) = postgres_url() else {
        return;
    };
    let schema = format!("cli_{}", std::process::id());
    let mut conn = PgConnection::establish(&base_url).expect("connect");
    conn.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .expect("schema");
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("OPSBOARD_ENV", "production"),
        ("OPSBOARD_JWT_SECRET", PRODUCTION_SECRET),
        ("OPSBOARD_ADMIN_EMAIL", "ops@example.org"),
        ("OPSBOARD_ADMIN_PASSWORD", "a-strong-admin-password"),
    ];
    let log = serve_then_terminate(&dir, &env);
    assert!(
        log.contains("(Postgres)") && log.contains("created the first admin ops@example.org"),
        "{log}"
    );
    assert!(
        !log.contains("a-strong-admin-password"),
        "secrets never reach the log"
    );
    let (output, text) = run(opsboard(&dir, &env).arg("migrate"));
    assert!(output.status.success(), "{text}");
    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}

#[test]
fn migrate_and_user_create_work_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let (output, text) = run(opsboard(&dir, &[]).arg("migrate"));
    assert!(output.status.success(), "{text}");
    let (output, text) = run(
        opsboard(&dir, &[("OPSBOARD_PASSWORD", "cli-password-123")]).args([
            "user",
            "create",
            "--email",
            "Cli@Example.org",
            "--role",
            "manager",
            "--name",
            "Cli User",
        ]),
    );
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("<cli@example.org> with role manager"),
        "{text}"
    );
    let (output, text) = run(opsboard(&dir, &[("OPSBOARD_PASSWORD", "short")]).args([
        "user",
        "create",
        "--email",
        "x@example.org",
        "--role",
        "member",
    ]));
    assert!(
        !output.status.success() && text.contains("password must be at least 12"),
        "{text}"
    );
    let (output, text) = run(
        opsboard(&dir, &[("OPSBOARD_PASSWORD", "cli-password-123")]).args([
            "user",
            "create",
            "--email",
            "y@example.org",
            "--role",
            "boss",
        ]),
    );
    assert!(
        !output.status.success() && text.contains("admin, manager, member, viewer, requester"),
        "{text}"
    );
    let (output, text) = run(opsboard(&dir, &[]).arg("--help"));
    assert!(output.status.success());
    for command in ["serve", "migrate", "openapi", "user"] {
        assert!(text.contains(command), "{text}");
    }
}

#[test]
fn openapi_command_prints_the_committed_document() {
    let dir = tempfile::tempdir().expect("dir");
    let (output, _) = run(opsboard(&dir, &[]).arg("openapi"));
    assert!(output.status.success());
    let committed = std::fs::read_to_string("openapi/openapi.json").unwrap_or_default();
    assert!(
        String::from_utf8_lossy(&output.stdout) == committed,
        "`opsboard openapi` differs from openapi/openapi.json"
    );
}

#[test]
fn demo_data_loads_once_and_never_in_production() {
    let dir = tempfile::tempdir().expect("dir");
    let (output, text) = run(opsboard(&dir, &[]).arg("seed-demo"));
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("online services with RACI templates") && text.contains("demo login: "),
        "{text}"
    );
    let (output, text) = run(opsboard(&dir, &[]).arg("seed-demo"));
    assert!(
        !output.status.success() && text.contains("already has data"),
        "{text}"
    );
    let (output, text) =
        run(opsboard(&dir, &[]).args(["import", "services", "docs/import-services.sample.csv"]));
    assert!(
        output.status.success() && text.contains("4 rows: 4 created"),
        "{text}"
    );
    let (output, text) =
        run(opsboard(&dir, &[]).args(["import", "services", "docs/import-services.sample.csv"]));
    assert!(
        output.status.success() && text.contains("4 unchanged"),
        "{text}"
    );
    let production = [
        ("OPSBOARD_ENV", "production"),
        ("OPSBOARD_JWT_SECRET", PRODUCTION_SECRET),
    ];
    let empty = tempfile::tempdir().expect("dir");
    let (output, text) = run(opsboard(&empty, &production).arg("seed-demo"));
    assert!(
        !output.status.success() && text.contains("never loaded in production"),
        "{text}"
    );
    let (output, text) = run(opsboard(&empty, &production).args(["serve", "--demo"]));
    assert!(
        !output.status.success() && text.contains("never loaded in production"),
        "{text}"
    );
}

#[test]
fn the_import_command_refuses_a_duplicate_header_column() {
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("services.csv");
    std::fs::write(
        &file,
        "key;name;kind;key\nwohngeld;Wohngeld;own;wohngeld-2\n",
    )
    .expect("write");
    let (output, text) =
        run(opsboard(&dir, &[]).args(["import", "services", &file.display().to_string()]));
    assert!(!output.status.success(), "{text}");
    assert!(
        text.contains(":1: key: column 4 repeats column 1")
            && text.contains("nothing was imported"),
        "{text}"
    );
}

/// `opsboard import jira` on the demo with the sample mapping: a dry run writes nothing, the
/// import brings the export in, and a second import changes nothing.
#[test]
fn the_jira_import_runs_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let seeded = run(opsboard(&dir, &[]).arg("seed-demo"));
    assert!(seeded.0.status.success(), "{}", seeded.1);
    let import = |dry_run: bool| {
        let mut command = opsboard(&dir, &[]);
        command.args([
            "import",
            "jira",
            "tests/data/jira/export.json",
            "--mapping",
            "docs/jira-mapping.sample.toml",
        ]);
        if dry_run {
            command.arg("--dry-run");
        }
        let (output, text) = run(&mut command);
        assert!(output.status.success(), "{text}");
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let dry = import(true);
    assert!(
        dry.starts_with("dry run: 3 issues into OPS: 0 created"),
        "{dry}"
    );
    assert!(
        dry.contains("3 status changes, 1 comments, 2 links; 1 attachments not imported"),
        "{dry}"
    );
    let first = import(false);
    assert!(
        first.starts_with("3 issues into OPS: 3 created, 0 updated, 0 unchanged"),
        "{first}"
    );
    assert!(
        first.contains("by type:   demand 1, incident 1, task 1"),
        "{first}"
    );
    let second = import(false);
    assert!(
        second.starts_with("3 issues into OPS: 0 created, 0 updated, 3 unchanged"),
        "{second}"
    );
}

/// `opsboard report governance` on the demo, on SQLite and (when it is there) PostgreSQL: the
/// three formats, the rollout section with the demo's blocked entries among the decisions
/// needed, and a bad month or format named.
#[test]
fn the_governance_report_comes_from_the_command_line() {
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let check = |dir: &tempfile::TempDir, env: &[(&str, &str)]| {
        let (output, text) = run(opsboard(dir, env).arg("seed-demo"));
        assert!(output.status.success(), "{text}");
        let report = |format: &str| {
            let (output, text) = run(opsboard(dir, env).args([
                "report",
                "governance",
                "--month",
                &month,
                "--format",
                format,
            ]));
            assert!(output.status.success(), "{text}");
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let json: serde_json::Value = serde_json::from_str(&report("json")).expect("JSON");
        assert_eq!(json["month"], month.as_str());
        assert!(json["portfolio"]["total"].as_i64() > Some(0), "{json}");
        let rollout = &json["rollout"];
        assert!(rollout["total"]["total"].as_i64() > Some(0), "{rollout}");
        assert!(
            rollout["by_district"]
                .as_array()
                .is_some_and(|g| g.len() > 1)
        );
        let blocked = rollout["blocked"].as_array().map_or(0, Vec::len);
        assert!(blocked > 0, "the demo has blocked entries: {rollout}");
        let decisions = json["decisions_needed"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            decisions
                .iter()
                .filter(|d| d["kind"] == "blocked_rollout" && d["accountable"].is_string())
                .count(),
            blocked,
            "each blocked entry is a decision with its accountable person: {decisions:?}"
        );
        let html = report("html");
        assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<h2>Rollout</h2>"));
        assert!(!html.contains("<script"));
        let markdown = report("markdown");
        assert!(markdown.starts_with(&format!("# Governance-Bericht {month}\n")));
        assert!(markdown.contains("| blocked\\_rollout |"), "{markdown}");
        let (output, text) =
            run(opsboard(dir, env).args(["report", "governance", "--month", "2027-13"]));
        assert!(
            !output.status.success() && text.contains("month must be YYYY-MM"),
            "{text}"
        );
        let (output, text) = run(opsboard(dir, env).args([
            "report",
            "governance",
            "--month",
            &month,
            "--format",
            "pdf",
        ]));
        assert!(!output.status.success() && text.contains("json"), "{text}");
    };
    let dir = tempfile::tempdir().expect("dir");
    check(&dir, &[]);
    let Some(base_url) = postgres_url() else {
        return;
    };
    let schema = format!("cli_report_{}", std::process::id());
    let mut conn = PgConnection::establish(&base_url).expect("connect");
    conn.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .expect("schema");
    let separator = if base_url.contains('?') { '&' } else { '?' };
    let url = format!("{base_url}{separator}options=-csearch_path%3D{schema}");
    let dir = tempfile::tempdir().expect("dir");
    check(&dir, &[("DATABASE_URL", url.as_str())]);
    let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
}
