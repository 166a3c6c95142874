//! The `opsboard` command: parses arguments, loads the configuration, runs a subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use opsboard::catalog::import::{self, ApplyFn, ImportError, ImportFormat, ParseFn};
use opsboard::common::actor::{Actor, Role};
use opsboard::common::version::Precondition;
use opsboard::config::Settings;
use opsboard::error::ApiError;
use opsboard::users::model::{NewUser, PasswordChange, User, UserChanges, UserFilter};

/// mimalloc gives freed memory back to the system. With glibc's allocator each blocking thread
/// kept its own 19 MiB argon2 buffer after a login, and the idle server grew past 150 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Which database a command uses, shown by every `--help`.
const DATABASE_HELP: &str = "Database: the one named by DATABASE_URL (sqlite://path, a plain \
file path, postgres://… or postgresql://…); without it, the SQLite file data/opsboard.db under \
the working directory (setting database.url).";

/// Ticketing and demand-management backend for teams that run public online services.
///
/// Configuration comes from config/default.toml, the file named by OPSBOARD_CONFIG, and the
/// environment (DATABASE_URL, OPSBOARD_BIND, OPSBOARD_JWT_SECRET, OPSBOARD_ENV,
/// OPSBOARD__SECTION__KEY, …).
#[derive(Parser)]
#[command(name = "opsboard", version, about, long_about, after_help = DATABASE_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server (the default). Binds its address, then applies pending
    /// migrations and creates the first admin on a database without users.
    #[command(after_help = DATABASE_HELP)]
    Serve {
        /// Fill an empty database with demo data first (never in production).
        #[arg(long)]
        demo: bool,
    },
    /// Fill an empty database with the demo data and exit (never in production).
    #[command(after_help = DATABASE_HELP)]
    SeedDemo,
    /// Import data from a file.
    #[command(after_help = DATABASE_HELP)]
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Apply pending database migrations and exit.
    #[command(after_help = DATABASE_HELP)]
    Migrate,
    /// Print the OpenAPI document (the same as GET /api-docs/openapi.json) to stdout.
    #[command(after_help = "Database: none; this command opens no database.")]
    Openapi,
    /// Manage users from the command line: list them, create one, set a password or a role.
    #[command(after_help = DATABASE_HELP)]
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// The reports' derived data: rebuild it from the history.
    #[command(after_help = DATABASE_HELP)]
    Reports {
        #[command(subcommand)]
        command: ReportsCommand,
    },
    /// Write a report to stdout.
    #[command(after_help = DATABASE_HELP)]
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// The monthly governance report, as GET /api/v1/reports/governance gives it.
    Governance {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// json, html or markdown.
        #[arg(long, default_value = "html", value_parser = ["json", "html", "markdown"])]
        format: String,
    },
}

#[derive(Subcommand)]
enum ReportsCommand {
    /// Recompute every item's column intervals, start and finish from the history (after an
    /// upgrade, or to check the data kept with each change), in one transaction.
    Rebuild,
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Create or update online services from a CSV or JSON file, all or nothing; re-importing
    /// the same file changes nothing. See docs/import-services.sample.csv for the columns.
    #[command(after_help = DATABASE_HELP)]
    Services {
        /// The file (.csv or .json).
        file: std::path::PathBuf,
    },
    /// Create or update organizations from a CSV file (columns
    /// short_name;name;kind;contact_email) or a JSON array, by short name, all or nothing;
    /// re-importing the same file changes nothing. Import them before the services that name
    /// them.
    #[command(after_help = DATABASE_HELP)]
    Organizations {
        /// The file (.csv or .json).
        file: std::path::PathBuf,
    },
    /// Import JIRA issues (as its REST API returns them with expand=changelog: a search
    /// response, pages of them one after the other, or an array of issues) into a board, by the
    /// mapping file (see docs/jira-mapping.sample.toml). All or nothing; importing again updates
    /// instead of duplicating. --dry-run reports what would happen and every unmapped status,
    /// type, priority, component and person, and writes nothing.
    #[command(after_help = DATABASE_HELP)]
    Jira {
        /// The export (.json).
        file: std::path::PathBuf,
        /// The mapping file (.toml).
        #[arg(long)]
        mapping: std::path::PathBuf,
        /// Report only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// List every user: id, e-mail, display name, role, active.
    #[command(after_help = DATABASE_HELP)]
    List,
    /// Create a user. The password comes from OPSBOARD_PASSWORD, or is asked for.
    #[command(after_help = DATABASE_HELP)]
    Create {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Role: admin, manager, member, viewer or requester.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Display name (defaults to the part of the e-mail before the @).
        #[arg(long)]
        name: Option<String>,
    },
    /// Set a user's password (the way back in for a locked-out admin). The password comes
    /// from OPSBOARD_PASSWORD, or is asked for. Every session of the user ends.
    #[command(after_help = DATABASE_HELP)]
    SetPassword {
        /// Login e-mail of the user (any case).
        #[arg(long)]
        email: String,
        /// Also reactivate the user if they are deactivated.
        #[arg(long)]
        activate: bool,
    },
    /// Set a user's role. The last active admin keeps theirs; every session of the user ends.
    #[command(after_help = DATABASE_HELP)]
    SetRole {
        /// Login e-mail of the user (any case).
        #[arg(long)]
        email: String,
        /// Role: admin, manager, member, viewer or requester.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("must be one of {}", Role::ALL.map(Role::as_str).join(", ")))
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    match run(cli.command.unwrap_or(Command::Serve { demo: false })) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("opsboard: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<(), String> {
    if let Command::Openapi = command {
        print!(
            "{}",
            opsboard::openapi::to_pretty_json(&opsboard::openapi_document())
        );
        return Ok(());
    }
    let settings = Settings::load().map_err(|e| e.to_string())?;
    match command {
        Command::Serve { demo } => {
            actix_web::rt::System::new().block_on(opsboard::startup::serve(settings, demo))
        }
        Command::SeedDemo => {
            opsboard::startup::check_start(&settings, true)?;
            let db = opsboard::startup::open_database(&settings)?;
            opsboard::startup::load_demo(&db, &settings, true)
        }
        Command::Import {
            command: ImportCommand::Services { file },
        } => import_file(&settings, &file, "services", import::parse, import::apply),
        Command::Import {
            command:
                ImportCommand::Jira {
                    file,
                    mapping,
                    dry_run,
                },
        } => import_jira(&settings, &file, &mapping, dry_run),
        Command::Import {
            command: ImportCommand::Organizations { file },
        } => import_file(
            &settings,
            &file,
            "organizations",
            import::organizations::parse,
            import::organizations::apply,
        ),
        Command::Migrate => {
            opsboard::startup::open_database(&settings)?;
            println!("migrations are up to date");
            Ok(())
        }
        Command::User { command } => user_command(&settings, command),
        Command::Reports {
            command: ReportsCommand::Rebuild,
        } => {
            let db = opsboard::startup::open_database(&settings)?;
            let started = std::time::Instant::now();
            let items = db
                .run_here(|conn| {
                    opsboard::common::history::in_transaction(
                        conn,
                        opsboard::reports::derive::rebuild,
                    )
                })
                .map_err(describe)?;
            println!(
                "rebuilt the flow data of {items} items in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Report {
            command: ReportCommand::Governance { month, format },
        } => {
            use opsboard::reports::governance;
            let db = opsboard::startup::open_database(&settings)?;
            let report = db
                .run_here(|conn| governance::report(conn, &settings.rollout, Some(&month)))
                .map_err(describe)?;
            match format.as_str() {
                "json" => println!(
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
                ),
                "markdown" => print!("{}", governance::markdown(&report)),
                _ => print!("{}", governance::html(&report)),
            }
            Ok(())
        }
        Command::Openapi => Ok(()),
    }
}

/// One line for a domain error: the invalid fields, or the error's own message.
fn describe(error: opsboard::error::ApiError) -> String {
    match error {
        opsboard::error::ApiError::Validation(errors) => errors
            .iter()
            .map(|e| format!("{} {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// The password of `user create` and `user set-password`: `OPSBOARD_PASSWORD`, or asked for
/// twice in a terminal.
fn read_password() -> Result<String, String> {
    match std::env::var("OPSBOARD_PASSWORD") {
        Ok(p) => Ok(p),
        Err(_) if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
            let again = rpassword::prompt_password("Repeat: ").map_err(|e| e.to_string())?;
            if first != again {
                return Err("the passwords differ".into());
            }
            Ok(first)
        }
        Err(_) => Err("set OPSBOARD_PASSWORD or run this in a terminal".into()),
    }
}

/// The user with this login e-mail (any case), or an error naming it.
fn user_by_email(conn: &mut opsboard::db::DbConnection, email: &str) -> Result<User, ApiError> {
    User::find_for_login(conn, email)?
        .map(|c| c.user)
        .ok_or_else(|| ApiError::NotFound(format!("there is no user with the e-mail {email}")))
}

/// `opsboard user …`: the same model functions as `/api/v1/users`, acting as the system.
fn user_command(settings: &Settings, command: UserCommand) -> Result<(), String> {
    // The password is read (and checked) before the database is opened or changed.
    let password = match &command {
        UserCommand::Create { .. } | UserCommand::SetPassword { .. } => {
            let password = read_password()?;
            opsboard::common::password::check_strength("password", &password)
                .map_err(|e| format!("{} {}", e.field, e.message))?;
            password
        }
        UserCommand::List | UserCommand::SetRole { .. } => String::new(),
    };
    let db = opsboard::startup::open_database(settings)?;
    let mut conn = db.pool().get().map_err(|e| e.to_string())?;
    match command {
        UserCommand::List => {
            let mut users = Vec::new();
            let mut cursor = None;
            loop {
                let filter = UserFilter {
                    limit: Some(500),
                    cursor,
                    ..UserFilter::default()
                };
                let page = User::list(&mut conn, &filter).map_err(describe)?;
                users.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            print_users(&users);
            Ok(())
        }
        UserCommand::Create { email, role, name } => {
            let display_name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_string());
            let form = NewUser {
                email,
                display_name,
                role,
                password,
            };
            let user = User::create(&mut conn, form, &Actor::SYSTEM).map_err(describe)?;
            println!(
                "created user {} <{}> with role {}",
                user.id,
                user.email,
                user.role.as_str()
            );
            Ok(())
        }
        UserCommand::SetPassword { email, activate } => {
            let new_hash = opsboard::common::password::hash(&password).map_err(describe)?;
            let user = diesel::Connection::transaction(&mut *conn, |conn| {
                let user = user_by_email(conn, &email)?;
                let changes = UserChanges {
                    password: Some(password.clone()),
                    ..UserChanges::default()
                };
                let change = PasswordChange {
                    new_hash: new_hash.clone(),
                    verified_against: None,
                };
                let user = User::update(
                    conn,
                    user.id,
                    changes,
                    &Actor::SYSTEM,
                    Precondition::ANY,
                    Some(change),
                )?;
                if activate && !user.active {
                    User::set_active(
                        conn,
                        user.id,
                        true,
                        &Actor::SYSTEM,
                        Precondition::ANY,
                        &|_| Ok(()),
                    )
                } else {
                    Ok(user)
                }
            })
            .map_err(describe)?;
            println!(
                "set the password of user {} <{}>; their sessions have ended{}",
                user.id,
                user.email,
                if user.active {
                    ""
                } else {
                    " (the user is deactivated; --activate reactivates them)"
                }
            );
            Ok(())
        }
        UserCommand::SetRole { email, role } => {
            let user = diesel::Connection::transaction(&mut *conn, |conn| {
                let user = user_by_email(conn, &email)?;
                let changes = UserChanges {
                    role: Some(role),
                    ..UserChanges::default()
                };
                User::update(
                    conn,
                    user.id,
                    changes,
                    &Actor::SYSTEM,
                    Precondition::ANY,
                    None,
                )
            })
            .map_err(describe)?;
            println!(
                "user {} <{}> has the role {}",
                user.id,
                user.email,
                user.role.as_str()
            );
            Ok(())
        }
    }
}

/// The table of `opsboard user list`.
fn print_users(users: &[User]) {
    let rows: Vec<[String; 5]> = users
        .iter()
        .map(|u| {
            [
                u.id.to_string(),
                u.email.clone(),
                u.display_name.clone(),
                u.role.as_str().to_string(),
                if u.active { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let header = ["id", "email", "display name", "role", "active"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        println!("{}", line.trim_end());
    }
}

/// `opsboard import jira FILE --mapping MAPPING [--dry-run]`: the report on stdout, the unmapped
/// values (a refused run's reasons) one per line on stderr.
fn import_jira(
    settings: &Settings,
    file: &std::path::Path,
    mapping: &std::path::Path,
    dry_run: bool,
) -> Result<(), String> {
    use opsboard::workflows::jira::import;
    let export = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mapping_text = std::fs::read_to_string(mapping)
        .map_err(|e| format!("cannot read {}: {e}", mapping.display()))?;
    let db = opsboard::startup::open_database(settings)?;
    let started = std::time::Instant::now();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} issues {elapsed}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = db.run_here(|conn| {
        if dry_run {
            import::dry_run(conn, &export, &mapping_text)
        } else {
            opsboard::common::history::in_transaction(conn, |conn| {
                import::run(
                    conn,
                    &export,
                    &mapping_text,
                    &Actor::SYSTEM,
                    &mut |done, total| {
                        bar.set_length(total as u64);
                        bar.set_position(done as u64);
                    },
                )
            })
        }
    });
    bar.finish_and_clear();
    let report = match result {
        Ok(report) => report,
        Err(opsboard::error::ApiError::Validation(errors)) => {
            for e in &errors {
                eprintln!("{}: {}", e.field, e.message);
            }
            return Err(format!(
                "{} problem(s) found; nothing was imported",
                errors.len()
            ));
        }
        Err(other) => return Err(other.problem().detail),
    };
    println!(
        "{}{} issues into {}: {} created, {} updated, {} unchanged, {} skipped ({:.2} s)",
        if report.dry_run { "dry run: " } else { "" },
        report.issues,
        report.board,
        report.created,
        report.updated,
        report.unchanged,
        report.skipped,
        started.elapsed().as_secs_f64()
    );
    let by = |map: &std::collections::BTreeMap<String, usize>| {
        map.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  by type:   {}", by(&report.by_type));
    println!("  by column: {}", by(&report.by_column));
    println!(
        "  {} status changes, {} comments, {} links; {} attachments not imported",
        report.moves, report.comments, report.links, report.attachments_skipped
    );
    for line in report.unmapped.lines() {
        println!("  {line}");
    }
    if dry_run && !report.unmapped.is_empty() {
        println!("  a real run is refused until these are mapped or have a fallback");
    }
    Ok(())
}

/// `opsboard import services|organizations FILE`: parse, validate every row, write all in one
/// transaction with a progress bar, print the summary; or print every bad row and write nothing.
fn import_file<T>(
    settings: &Settings,
    file: &std::path::Path,
    what: &str,
    parse: ParseFn<T>,
    apply: ApplyFn<T>,
) -> Result<(), String> {
    let body = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let format = ImportFormat::detect(&file.to_string_lossy(), &body);
    let report_problems = |problems: Vec<import::ImportProblem>| {
        for p in &problems {
            eprintln!("{}:{}: {}: {}", file.display(), p.line, p.column, p.message);
        }
        format!("{} problem(s) found; nothing was imported", problems.len())
    };
    let parsed = parse(format, &body);
    let rows = parsed.rows.len();
    let db = opsboard::startup::open_database(settings)?;
    let mut conn = db.pool().get().map_err(|e| e.to_string())?;
    let bar = indicatif::ProgressBar::new(rows as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    // Through the history's transaction, so that the import's events are complete (item
    // snapshots, webhooks) as those of any API write.
    let result = opsboard::common::history::in_transaction(&mut conn, |conn| {
        apply(conn, &parsed, &Actor::SYSTEM, &mut |done| {
            bar.set_position(done as u64)
        })
    });
    bar.finish_and_clear();
    match result {
        Ok(report) => {
            println!(
                "{} rows: {} created, {} updated, {} unchanged ({:.2} s)",
                report.total,
                report.created,
                report.updated,
                report.unchanged,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(ImportError::Invalid(problems)) => Err(report_problems(problems)),
        Err(ImportError::Other(e)) => Err(e.to_string()),
    }
}
