//! A newcomer's first hour with the binary (issue 11): a failed first start changes nothing, the
//! `user` commands are the way back in, and settings that cannot work are refused with a
//! message naming them before anything is created.

use std::process::Command;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::{Value, json};

use crate::cli::{PRODUCTION_SECRET, free_port, http, opsboard, run, serve_while};
use crate::helpers::postgres_url;

/// A database for a test of the binary: a file in a temp dir, or a PostgreSQL schema of its
/// own, dropped at the end.
struct CliDb {
    engine: &'static str,
    url: String,
    dir: tempfile::TempDir,
    schema: Option<(String, String)>,
}

impl Drop for CliDb {
    fn drop(&mut self) {
        if let Some((base_url, schema)) = &self.schema
            && let Ok(mut conn) = PgConnection::establish(base_url)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

impl CliDb {
    /// `opsboard` on this database.
    fn opsboard(&self, env: &[(&str, &str)]) -> Command {
        let mut env = env.to_vec();
        env.push(("DATABASE_URL", &self.url));
        opsboard(&self.dir, &env)
    }

    /// Whether the start created any table.
    fn is_untouched(&self) -> bool {
        match &self.schema {
            None => !self.dir.path().join("db.sqlite").exists(),
            Some((base_url, schema)) => {
                let mut conn = PgConnection::establish(base_url).expect("connect");
                let tables: i64 = diesel::sql_query(format!(
                    "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = '{schema}'"
                ))
                .get_result::<Count>(&mut conn)
                .expect("count tables")
                .n;
                tables == 0
            }
        }
    }

    /// The kinds of the events of one user, oldest first, with whether the system wrote them.
    fn user_events(&self, id: i64) -> Vec<(String, Option<i64>)> {
        use opsboard::db::schema::events;
        let mut settings = opsboard::config::Settings::defaults().expect("defaults");
        settings.database.url = self.url.clone();
        let pool = opsboard::db::build_pool(&settings.database).expect("pool");
        let mut conn = pool.get().expect("connection");
        events::table
            .filter(events::entity_type.eq("user"))
            .filter(events::entity_id.eq(id))
            .order(events::id)
            .select((events::kind, events::actor_id))
            .load(&mut *conn)
            .expect("events")
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// One database per engine: SQLite always, PostgreSQL when configured.
fn databases() -> Vec<CliDb> {
    let dir = tempfile::tempdir().expect("dir");
    let mut all = vec![CliDb {
        engine: "sqlite",
        url: dir.path().join("db.sqlite").display().to_string(),
        dir,
        schema: None,
    }];
    if let Some(base_url) = postgres_url() {
        let schema = format!(
            "cli1h_{}_{}",
            std::process::id(),
            crate::helpers::COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        );
        let mut conn = PgConnection::establish(&base_url).expect("connect");
        conn.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .expect("schema");
        let separator = if base_url.contains('?') { '&' } else { '?' };
        all.push(CliDb {
            engine: "postgres",
            url: format!("{base_url}{separator}options=-csearch_path%3D{schema}"),
            dir: tempfile::tempdir().expect("dir"),
            schema: Some((base_url, schema)),
        });
    }
    all
}

#[test]
fn a_first_start_on_a_busy_port_creates_nothing_and_the_next_prints_the_password() {
    for db in databases() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let bind = busy.local_addr().expect("addr").to_string();
        let (output, text) = run(db
            .opsboard(&[("OPSBOARD_BIND", &bind)])
            .args(["serve", "--demo"]));
        assert!(!output.status.success(), "{}: {text}", db.engine);
        assert!(
            text.contains(&format!("cannot listen on {bind}")),
            "{}: {text}",
            db.engine
        );
        assert!(
            !text.contains("created the first admin") && !text.contains("demo"),
            "{}: {text}",
            db.engine
        );
        assert!(
            db.is_untouched(),
            "{}: the failed start migrated",
            db.engine
        );
        drop(busy);
        let log = serve_while(&db.dir, &[("DATABASE_URL", &db.url)], |_| {});
        assert!(
            log.contains("created the first admin: e-mail admin@example.org  password "),
            "{}: the next start prints the one-time password: {log}",
            db.engine
        );
        // A fresh install with the default demand board is as it should be: no warning.
        assert!(
            !log.lines()
                .any(|l| l.contains("WARN") && l.contains("demands.board")),
            "{}: {log}",
            db.engine
        );
        assert!(
            log.contains("demands.board: there is no board DEM yet"),
            "{log}"
        );
    }
}

/// Logs in; the token, or the status when refused.
fn login(port: u16, email: &str, password: &str) -> Result<String, u16> {
    let (status, body) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        None,
        Some(&json!({"email": email, "password": password})),
    )
    .ok_or(0_u16)?;
    if status != 200 {
        return Err(status);
    }
    let body: Value = serde_json::from_str(&body).map_err(|_| status)?;
    body["access_token"]
        .as_str()
        .map(str::to_string)
        .ok_or(status)
}

#[test]
fn user_commands_list_reset_and_change_roles_under_the_api_rules() {
    for db in databases() {
        let engine = db.engine;
        let create = |email: &str, role: &str| {
            let (output, text) = run(db
                .opsboard(&[("OPSBOARD_PASSWORD", "first-password-123")])
                .args(["user", "create", "--email", email, "--role", role]));
            assert!(output.status.success(), "{engine}: {text}");
        };
        create("boss@example.org", "admin");
        create("Mia@Example.org", "member");
        let (output, text) = run(db.opsboard(&[]).args(["user", "list"]));
        assert!(output.status.success(), "{engine}: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.contains(" INFO ")).collect();
        assert!(
            lines.iter().any(|l| l.starts_with("id")
                && l.contains("email")
                && l.contains("display name")
                && l.contains("role")
                && l.contains("active")),
            "{engine}: {text}"
        );
        let mia = lines
            .iter()
            .find(|l| l.contains("mia@example.org"))
            .unwrap_or_else(|| panic!("{engine}: {text}"));
        assert!(
            mia.contains("member") && mia.ends_with("yes"),
            "{engine}: {mia}"
        );
        let mia_id: i64 = mia
            .split_whitespace()
            .next()
            .and_then(|id| id.parse().ok())
            .unwrap_or_else(|| panic!("{engine}: {mia}"));

        let secret = [
            ("OPSBOARD_JWT_SECRET", PRODUCTION_SECRET),
            ("DATABASE_URL", db.url.as_str()),
        ];
        serve_while(&db.dir, &secret, |port| {
            let old = login(port, "mia@example.org", "first-password-123").expect("login");
            let me = http(port, "GET", "/api/v1/me", Some(&old), None).map(|r| r.0);
            assert_eq!(me, Some(200), "{engine}");

            // The password policy holds, and nothing changes.
            let (output, text) = run(db.opsboard(&[("OPSBOARD_PASSWORD", "short")]).args([
                "user",
                "set-password",
                "--email",
                "MIA@example.org",
            ]));
            assert!(
                !output.status.success() && text.contains("password must be at least 12"),
                "{engine}: {text}"
            );
            assert_eq!(
                http(port, "GET", "/api/v1/me", Some(&old), None).map(|r| r.0),
                Some(200),
                "{engine}: a refused reset ends no session"
            );
            let (output, text) = run(db
                .opsboard(&[("OPSBOARD_PASSWORD", "second-password-456")])
                .args(["user", "set-password", "--email", "MIA@example.org"]));
            assert!(output.status.success(), "{engine}: {text}");
            assert_eq!(
                http(port, "GET", "/api/v1/me", Some(&old), None).map(|r| r.0),
                Some(401),
                "{engine}: the token issued before the reset is refused"
            );
            assert_eq!(
                login(port, "mia@example.org", "first-password-123").err(),
                Some(401),
                "{engine}"
            );
            let new = login(port, "mia@example.org", "second-password-456").expect("login");

            // A role change ends the sessions too.
            let (output, text) = run(db.opsboard(&[]).args([
                "user",
                "set-role",
                "--email",
                "mia@example.org",
                "--role",
                "manager",
            ]));
            assert!(
                output.status.success() && text.contains("has the role manager"),
                "{engine}: {text}"
            );
            assert_eq!(
                http(port, "GET", "/api/v1/me", Some(&new), None).map(|r| r.0),
                Some(401),
                "{engine}"
            );

            // The last active admin keeps the role.
            let (output, text) = run(db.opsboard(&[]).args([
                "user",
                "set-role",
                "--email",
                "boss@example.org",
                "--role",
                "member",
            ]));
            assert!(!output.status.success(), "{engine}: {text}");
            assert!(text.contains("last active admin"), "{engine}: {text}");
            assert_eq!(
                text.lines().filter(|l| l.starts_with("opsboard:")).count(),
                1,
                "{engine}: one line: {text}"
            );

            // A deactivated user gets back in with --activate.
            let boss = login(port, "boss@example.org", "first-password-123").expect("login");
            let path = format!("/api/v1/users/{mia_id}/deactivate");
            let deactivated = http(port, "POST", &path, Some(&boss), Some(&json!({})));
            assert_eq!(
                deactivated.as_ref().map(|r| r.0),
                Some(200),
                "{engine}: {deactivated:?}"
            );
            let (output, text) = run(db
                .opsboard(&[("OPSBOARD_PASSWORD", "third-password-789")])
                .args([
                    "user",
                    "set-password",
                    "--email",
                    "mia@example.org",
                    "--activate",
                ]));
            assert!(output.status.success(), "{engine}: {text}");
            login(port, "mia@example.org", "third-password-789").expect("login after --activate");
        });

        let (output, text) = run(db.opsboard(&[]).args([
            "user",
            "set-role",
            "--email",
            "nobody@example.org",
            "--role",
            "viewer",
        ]));
        assert!(
            !output.status.success() && text.contains("no user with the e-mail nobody@example.org"),
            "{engine}: {text}"
        );
        let events = db.user_events(mia_id);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "created",
                "updated",
                "updated",
                "deactivated",
                "updated",
                "reactivated"
            ],
            "{engine}"
        );
        assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, (_, actor))| (i == 3) == actor.is_some()),
            "{engine}: the commands act as the system: {events:?}"
        );
    }
}

/// Variables to set, and what the message must name.
type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);

#[test]
fn settings_that_cannot_work_are_refused_in_one_clear_line_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("dir");
    let outside = tempfile::tempdir().expect("dir");
    let missing = outside.path().join("no/such/dir/x.db");
    let missing = missing.display().to_string();
    let cases: &[Case] = &[
        (
            &[("DATABASE_URL", "mysql://root@localhost/opsboard")],
            &["DATABASE_URL", "postgres://", "sqlite://", "mysql://"],
        ),
        (
            &[("DATABASE_URL", &missing)],
            &["DATABASE_URL", "create_dir"],
        ),
        (
            &[("OPSBOARD_ENV", "prod")],
            &["OPSBOARD_ENV must be development or production, got prod"],
        ),
        (
            &[("OPSBOARD__DEMANDS__BOARD", "no-pe")],
            &["demands.board", "no-pe"],
        ),
        (
            &[("OPSBOARD__DATABASE__WATCH_MS", "5000")],
            &["database.watch_ms", "between 0 and 1000", "5000"],
        ),
        (
            &[("OPSBOARD__DATABASE__ITEM_CACHE_MB", "4096")],
            &["database.item_cache_mb", "between 0 and 1024", "4096"],
        ),
        (
            &[
                ("OPSBOARD_ENV", "production"),
                ("OPSBOARD_JWT_SECRET", PRODUCTION_SECRET),
            ],
            &["never loaded in production"],
        ),
    ];
    for (env, named) in cases {
        let (output, text) = run(opsboard(&dir, env).args(["serve", "--demo"]));
        assert!(!output.status.success(), "{env:?}: {text}");
        for name in *named {
            assert!(text.contains(name), "{env:?} must name {name}: {text}");
        }
        assert!(
            !text.contains("variant") && !text.contains("enum "),
            "no serde wording: {text}"
        );
        assert_eq!(text.trim().lines().count(), 1, "{env:?}: one line: {text}");
        assert!(
            std::fs::read_dir(dir.path())
                .map(|d| d.count())
                .unwrap_or(1)
                == 0,
            "{env:?}: nothing was created: {text}"
        );
    }
    assert!(
        !outside.path().join("no").exists(),
        "no directory was created"
    );
    assert!(!dir.path().join("mysql:").exists());
    // With database.create_dir the directory is created.
    let (output, text) = run(opsboard(
        &dir,
        &[
            ("DATABASE_URL", &missing),
            ("OPSBOARD__DATABASE__CREATE_DIR", "true"),
        ],
    )
    .arg("migrate"));
    assert!(output.status.success(), "{text}");
    assert!(outside.path().join("no/such/dir/x.db").exists());
}

#[test]
fn an_unreachable_postgresql_gives_one_line_naming_database_url() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/opsboard");
    let (output, text) = run(opsboard(&dir, &[("DATABASE_URL", &url)]).arg("migrate"));
    assert!(!output.status.success(), "{text}");
    assert!(text.contains("DATABASE_URL"), "{text}");
    assert!(
        text.trim().lines().count() <= 2,
        "at most one line per attempt: {text}"
    );
}

#[test]
fn a_host_name_binds_and_an_unknown_demand_board_is_a_warning() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port();
    let bind = format!("localhost:{port}");
    let mut child = opsboard(
        &dir,
        &[
            ("OPSBOARD_BIND", &bind),
            ("OPSBOARD__DEMANDS__BOARD", "NOPE"),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("start");
    crate::cli::wait_until_healthy(port);
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let _ = child.wait();
    let output = child.wait_with_output().expect("output");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        log.lines().any(|l| l.contains("WARN")
            && l.contains("demands.board")
            && l.contains("NOPE")
            && l.contains("POST /api/v1/demands")),
        "a configured board that is missing is a warning: {log}"
    );
}

#[test]
fn every_help_names_the_database() {
    let dir = tempfile::tempdir().expect("dir");
    let commands: &[&[&str]] = &[
        &[],
        &["serve"],
        &["migrate"],
        &["seed-demo"],
        &["import", "services"],
        &["user"],
        &["user", "list"],
        &["user", "create"],
        &["user", "set-password"],
        &["user", "set-role"],
    ];
    for command in commands {
        let (output, text) = run(opsboard(&dir, &[]).args(*command).arg("--help"));
        assert!(output.status.success(), "{command:?}: {text}");
        assert!(
            text.contains("DATABASE_URL") && text.contains("data/opsboard.db"),
            "{command:?}: {text}"
        );
    }
}
