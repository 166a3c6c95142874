//! The `opsboard` command: parses arguments, loads the configuration, runs a subcommand.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use opsboard::catalog::import::{self, ApplyFn, ImportError, ImportFormat, ParseFn};
use opsboard::common::actor::{Actor, Role};
use opsboard::config::Settings;
use opsboard::users::model::{NewUser, User};

/// mimalloc gives freed memory back to the system. With glibc's allocator each blocking thread
/// kept its own 19 MiB argon2 buffer after a login, and the idle server grew past 150 MB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ticketing and demand-management backend for teams that run public online services.
///
/// Configuration comes from config/default.toml, the file named by OPSBOARD_CONFIG, and the
/// environment (DATABASE_URL, OPSBOARD_BIND, OPSBOARD_JWT_SECRET, OPSBOARD_ENV,
/// OPSBOARD__SECTION__KEY, …).
#[derive(Parser)]
#[command(name = "opsboard", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start the HTTP server (the default). Applies pending migrations first.
    Serve {
        /// Fill an empty database with demo data first (never in production).
        #[arg(long)]
        demo: bool,
    },
    /// Fill an empty database with the demo data and exit (never in production).
    SeedDemo,
    /// Import data from a file.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document (the same as GET /api-docs/openapi.json) to stdout.
    Openapi,
    /// Manage users from the command line.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Create or update online services from a CSV or JSON file, all or nothing; re-importing
    /// the same file changes nothing. See docs/import-services.sample.csv for the columns.
    Services {
        /// The file (.csv or .json).
        file: std::path::PathBuf,
    },
    /// Create or update organizations from a CSV file (columns
    /// short_name;name;kind;contact_email) or a JSON array, by short name, all or nothing;
    /// re-importing the same file changes nothing. Import them before the services that name
    /// them.
    Organizations {
        /// The file (.csv or .json).
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user. The password comes from OPSBOARD_PASSWORD, or is asked for.
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
            let db = opsboard::startup::open_database(&settings)?;
            opsboard::startup::load_demo(&db, &settings, true)
        }
        Command::Import {
            command: ImportCommand::Services { file },
        } => import_file(&settings, &file, "services", import::parse, import::apply),
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
        Command::User {
            command: UserCommand::Create { email, role, name },
        } => {
            let password = match std::env::var("OPSBOARD_PASSWORD") {
                Ok(p) => p,
                Err(_) if std::io::stdin().is_terminal() => {
                    let first =
                        rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
                    let again =
                        rpassword::prompt_password("Repeat: ").map_err(|e| e.to_string())?;
                    if first != again {
                        return Err("the passwords differ".into());
                    }
                    first
                }
                Err(_) => return Err("set OPSBOARD_PASSWORD or run this in a terminal".into()),
            };
            let display_name =
                name.unwrap_or_else(|| email.split('@').next().unwrap_or(&email).to_string());
            let db = opsboard::startup::open_database(&settings)?;
            let mut conn = db.pool().get().map_err(|e| e.to_string())?;
            let form = NewUser {
                email,
                display_name,
                role,
                password,
            };
            let user = User::create(&mut conn, form, &Actor::SYSTEM).map_err(|e| match e {
                opsboard::error::ApiError::Validation(errors) => errors
                    .iter()
                    .map(|e| format!("{} {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            })?;
            println!(
                "created user {} <{}> with role {}",
                user.id,
                user.email,
                user.role.as_str()
            );
            Ok(())
        }
        Command::Openapi => Ok(()),
    }
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
    let result = diesel::Connection::transaction(&mut *conn, |conn| {
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
