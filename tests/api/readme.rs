//! The README's examples work when pasted: every fenced `sh` block after a
//! `<!-- readme-test: fresh -->` or `<!-- readme-test: demo -->` comment runs with bash against
//! the binary, on a fresh database or on the demo data (the README's contributor section says
//! how to mark one). A failing block fails the test with its text and its output.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin of the fresh server, as the README's login example names them.
const ADMIN_EMAIL: &str = "admin@example.org";
const ADMIN_PASSWORD: &str = "readme-admin-password-1234";

/// A marked block of the README: its line (of the opening fence) and its text.
struct Block {
    line: usize,
    text: String,
}

/// The fenced `sh`/`bash` blocks of `readme` marked `<!-- readme-test: {kind} -->`.
fn blocks(readme: &str, kind: &str) -> Vec<Block> {
    let marker = format!("<!-- readme-test: {kind} -->");
    let lines: Vec<&str> = readme.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == marker {
            let fence = lines.get(i + 1).map(|l| l.trim()).unwrap_or_default();
            assert!(
                fence == "```sh" || fence == "```bash",
                "README.md:{}: `{marker}` must stand right before a ```sh block",
                i + 1
            );
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("README.md:{}: the block does not end", i + 2));
            found.push(Block {
                line: i + 2,
                text: lines[start..end].join("\n"),
            });
            i = end;
        }
        i += 1;
    }
    found
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The server of one session; killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `opsboard serve` (with `--demo` for the demo kind) on a fresh SQLite file in `dir`.
fn serve(dir: &tempfile::TempDir, port: u16, demo: bool) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_opsboard"));
    command
        .env("DATABASE_URL", dir.path().join("db.sqlite"))
        .env("OPSBOARD_BIND", format!("127.0.0.1:{port}"))
        .env("OPSBOARD_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("OPSBOARD_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RUST_LOG", "warn")
        .env_remove("OPSBOARD_CONFIG")
        .env_remove("OPSBOARD_ENV")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .arg("serve");
    if demo {
        command.arg("--demo");
    }
    let server = Server(command.spawn().expect("start opsboard"));
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Runs the first `take` of the README's `kind` blocks, then `epilogue`, in one bash session
/// against a server of their own, `password` pasted for `PASTE-THE-PASSWORD`: the blocks and
/// what bash did.
fn session(
    kind: &str,
    password: &str,
    take: usize,
    epilogue: &str,
) -> (Vec<Block>, std::process::Output) {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md reads");
    let mut blocks = blocks(&readme, kind);
    blocks.truncate(take);
    assert!(!blocks.is_empty(), "no README block marked {kind}");
    let dir = tempfile::tempdir().expect("dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).expect("bin dir");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_opsboard"), bin.join("opsboard"))
        .expect("opsboard on PATH");
    let port = free_port();
    let _server = serve(&dir, port, kind == "demo");
    let address = format!("http://127.0.0.1:{port}");

    // curl fails on an error status (keeping the body), unless the block chose -f itself.
    let prelude = r#"set -euo pipefail
curl() {
  case " $* " in
    *" -f"* | *" --fail"*) command curl "$@" ;;
    *) command curl --fail-with-body "$@" ;;
  esac
}
"#;
    let mut script = String::from(prelude);
    for (n, block) in blocks.iter().enumerate() {
        let text = block
            .text
            .replace("http://127.0.0.1:8080", &address)
            .replace("PASTE-THE-PASSWORD", password);
        script.push_str(&format!(
            "echo '### readme block {n}' >&2\n{text}\necho >&2\n"
        ));
    }
    script.push_str(epilogue);
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("PATH", path)
        .env("DATABASE_URL", dir.path().join("db.sqlite"))
        .env("RUST_LOG", "info")
        .env_remove("OPSBOARD_CONFIG")
        .env_remove("OPSBOARD_ENV")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("script written");
    let output = child.wait_with_output().expect("bash ends");
    (blocks, output)
}

/// Runs the README's `kind` blocks; fails with the failing block and its output.
fn run_blocks(kind: &str) {
    let (blocks, output) = session(kind, ADMIN_PASSWORD, usize::MAX, "");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        let failed = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("### readme block "))
            .next_back()
            .and_then(|n| n.trim().parse::<usize>().ok())
            .and_then(|n| blocks.get(n));
        let (line, text) = failed.map_or((0, ""), |b| (b.line, b.text.as_str()));
        panic!(
            "the README's {kind} block at README.md:{line} fails ({}):\n{text}\n\n\
             --- stdout\n{stdout}\n--- stderr\n{stderr}",
            output.status
        );
    }
}

/// The examples for a fresh database: the curl walk-through, the imports, the SLA policies.
#[test]
fn the_readme_examples_for_a_fresh_database_work() {
    run_blocks("fresh");
}

/// The examples that need the demo data: services, items, demands.
#[test]
fn the_readme_examples_on_the_demo_data_work() {
    run_blocks("demo");
}

/// A wrong password stops the walk-through at its login, loudly, and puts nothing into
/// `TOKEN`.
#[test]
fn the_readme_login_fails_loudly_on_a_wrong_password() {
    let (_, output) = session("fresh", "a-wrong-password", 1, "echo \"TOKEN=[$TOKEN]\"\n");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && !stdout.contains("TOKEN=[") && stderr.contains("401"),
        "--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
}
