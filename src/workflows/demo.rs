//! Loads the demo data (`opsboard serve --demo`, `opsboard seed-demo`): the organizations
//! around an OZG operations team, its five members and a few stakeholders, the online services
//! with their RACI templates, the OPS and DEM boards, the SLA policies and a few hundred items.
//! Only into an empty database, never in production.
//!
//! The data is data: the files under `data/demo/` (see its README), compiled into the binary
//! so that it runs from any directory. Each part goes through the path a user's request takes:
//! organizations and services through their imports (`opsboard import organizations|services`),
//! people through user creation, RACI templates, boards and SLA policies through the functions
//! behind their endpoints. Only the items are generated, by [`items`], from the texts and knobs
//! of `data/demo/items.toml`.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Deserialize;

use crate::board::model::{Board, NewBoard, NewColumn};
use crate::catalog::import::{self, ImportFormat};
use crate::catalog::organizations::Organization;
use crate::catalog::raci::{self, Accountable, PersonId, RaciInput};
use crate::common::actor::{Actor, Principal, Role};
use crate::common::password;
use crate::common::version::Precondition;
use crate::db::DbConnection;
use crate::db::schema::{organizations, services, users};
use crate::error::ApiError;
use crate::sla::policies::{NewSlaPolicy, SlaPolicy};
use crate::users::model::{NewUser, User};

mod items;
mod rollout;
#[cfg(test)]
mod tests;

use items::{ItemPlan, seed_items};

/// The files of the demo, as `(name, content)`: the name is where it lives in the repository,
/// for messages.
mod files {
    pub const ORGANIZATIONS: (&str, &[u8]) = (
        "data/demo/organizations.csv",
        include_bytes!("../../data/demo/organizations.csv"),
    );
    pub const DISTRICTS: (&str, &[u8]) = (
        "data/reference/mv-districts.csv",
        include_bytes!("../../data/reference/mv-districts.csv"),
    );
    pub const ADMINISTRATIONS: (&str, &[u8]) = (
        "data/reference/mv-municipal-administrations.csv",
        include_bytes!("../../data/reference/mv-municipal-administrations.csv"),
    );
    pub const PEOPLE: (&str, &[u8]) = (
        "data/demo/people.csv",
        include_bytes!("../../data/demo/people.csv"),
    );
    pub const SERVICES: (&str, &[u8]) = (
        "data/demo/services.csv",
        include_bytes!("../../data/demo/services.csv"),
    );
    pub const RACI: (&str, &[u8]) = (
        "data/demo/raci.csv",
        include_bytes!("../../data/demo/raci.csv"),
    );
    pub const BOARDS: (&str, &str) = (
        "data/demo/boards.toml",
        include_str!("../../data/demo/boards.toml"),
    );
    pub const SLA_POLICIES: (&str, &str) = (
        "data/demo/sla-policies.toml",
        include_str!("../../data/demo/sla-policies.toml"),
    );
    pub const ROLLOUT: (&str, &str) = (
        "data/demo/rollout.toml",
        include_str!("../../data/demo/rollout.toml"),
    );
    pub const ITEMS: (&str, &str) = (
        "data/demo/items.toml",
        include_str!("../../data/demo/items.toml"),
    );
}

/// The password of every demo login (printed at start-up and in the README).
pub const DEMO_PASSWORD: &str = "opsboard-demo-2026";

/// What the demo data holds, for the start-up message.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    /// Organizations created.
    pub organizations: usize,
    /// Services created.
    pub services: usize,
    /// `(email, role, team role)` of every demo login.
    pub logins: Vec<(String, String, String)>,
    /// Items created on the demo boards.
    pub items: usize,
    /// Rollout entries of services to municipal administrations.
    pub rollout_entries: usize,
}

/// One row of `people.csv`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Person {
    email: String,
    display_name: String,
    role: Role,
    /// The role within the team; empty for stakeholders.
    team_role: Option<String>,
    /// Short name of the person's organization.
    organization: String,
}

/// One row of `raci.csv`: a service's template, people by e-mail, several separated by `|`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RaciRow {
    service: String,
    accountable: String,
    #[serde(default)]
    responsible: String,
    #[serde(default)]
    consulted: String,
    #[serde(default)]
    informed: String,
}

/// `boards.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Boards {
    board: Vec<DemoBoard>,
}

/// A board of `boards.toml`: the body of `POST /api/v1/boards`, with the lead by e-mail.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoBoard {
    key: String,
    name: String,
    description: String,
    lead: String,
    columns: Vec<NewColumn>,
}

/// `sla-policies.toml`: bodies of `POST /api/v1/sla-policies`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SlaPolicies {
    policy: Vec<NewSlaPolicy>,
}

/// A broken demo file is the code's fault, not a user's: it is a 500 naming the file (and
/// tests read every file, so it never ships).
fn broken(file: &str, error: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("{file}: {error}"))
}

/// Reads the rows of a `;`-separated demo CSV file.
fn read_csv<T: serde::de::DeserializeOwned>(
    (name, body): (&str, &[u8]),
) -> Result<Vec<T>, ApiError> {
    csv::ReaderBuilder::new()
        .delimiter(b';')
        .trim(csv::Trim::All)
        .from_reader(body)
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(|e| broken(name, e))
}

fn read_toml<T: serde::de::DeserializeOwned>((name, text): (&str, &str)) -> Result<T, ApiError> {
    toml::from_str(text).map_err(|e| broken(name, e))
}

/// Everything the demo needs, read and checked before any write.
struct DemoData {
    people: Vec<Person>,
    raci: Vec<RaciRow>,
    boards: Vec<DemoBoard>,
    policies: Vec<NewSlaPolicy>,
    items: ItemPlan,
    rollout: rollout::RolloutPlanFile,
}

impl DemoData {
    fn read() -> Result<DemoData, ApiError> {
        Ok(DemoData {
            people: read_csv(files::PEOPLE)?,
            raci: read_csv(files::RACI)?,
            boards: read_toml::<Boards>(files::BOARDS)?.board,
            policies: read_toml::<SlaPolicies>(files::SLA_POLICIES)?.policy,
            items: ItemPlan::read()?,
            rollout: read_toml(files::ROLLOUT)?,
        })
    }
}

/// Whether the database holds anything besides its first admin.
pub fn has_data(conn: &mut DbConnection) -> Result<bool, ApiError> {
    let orgs: i64 = organizations::table.count().get_result(conn)?;
    let services: i64 = services::table.count().get_result(conn)?;
    let users: i64 = users::table.count().get_result(conn)?;
    Ok(orgs > 0 || services > 0 || users > 1)
}

/// Loads the demo data in one transaction; refuses a database that already has data.
pub fn seed(conn: &mut DbConnection) -> Result<DemoSummary, ApiError> {
    let data = DemoData::read()?;
    // argon2 runs before the transaction, which (on SQLite: the write lock) should not wait
    // for it; each person still gets a hash of their own.
    let hashes = data
        .people
        .iter()
        .map(|_| password::hash(DEMO_PASSWORD))
        .collect::<Result<Vec<_>, _>>()?;
    crate::common::history::in_transaction(conn, |conn| {
        if has_data(conn)? {
            return Err(ApiError::Conflict(
                "The database already has data; demo data is only loaded into an empty one.".into(),
            ));
        }
        // The state's districts and municipal administrations first (the reference data of
        // `data/reference/`), then the stakeholders, whose rows (the current names of Rostock
        // and Schwerin, the districts' contact addresses) win.
        let mut organizations = 0;
        for file in [
            files::DISTRICTS,
            files::ADMINISTRATIONS,
            files::ORGANIZATIONS,
        ] {
            organizations += import_file(
                conn,
                file,
                import::organizations::parse,
                import::organizations::apply,
            )?;
        }
        let people = seed_people(conn, &data.people, &hashes)?;
        let services = import_file(conn, files::SERVICES, import::parse, import::apply)?;
        seed_raci(conn, &data.raci, &people)?;
        for board in &data.boards {
            let form = NewBoard {
                key: board.key.clone(),
                name: board.name.clone(),
                description: board.description.clone(),
                columns: Some(board.columns.clone()),
                lead: Some(PersonId::Id(person(&people, files::BOARDS.0, &board.lead)?)),
            };
            Board::create(conn, &form, &Actor::SYSTEM)?;
        }
        for policy in &data.policies {
            SlaPolicy::create(conn, policy, &Actor::SYSTEM)?;
        }
        // The demo's items are made by the team's members, as if each had written their own.
        let team: Vec<Actor> = data
            .people
            .iter()
            .filter(|p| p.team_role.is_some())
            .map(|p| {
                let id = person(&people, files::PEOPLE.0, &p.email)?;
                Ok(Principal::load(conn, id)?.actor)
            })
            .collect::<Result<_, ApiError>>()?;
        let decider = person(&people, files::ITEMS.0, &data.items.demands.decided_by)?;
        let decider = Principal::load(conn, decider)?.actor;
        let items = seed_items(conn, &data.items, &data.policies, &team, &decider)?;
        let planner = person(&people, files::ROLLOUT.0, &data.rollout.by)?;
        let planner = Principal::load(conn, planner)?.actor;
        let rollout_entries = rollout::seed_rollout(conn, &data.rollout, &planner)
            .map_err(|e| broken(files::ROLLOUT.0, e.problem().detail))?;
        let logins = data
            .people
            .iter()
            .map(|p| {
                // Outside the team: a requester is a stakeholder, anyone else an observer.
                let team_role = match (&p.team_role, p.role) {
                    (Some(team_role), _) => team_role.clone(),
                    (None, Role::Requester) => format!("stakeholder at {}", p.organization),
                    (None, _) => format!("observer at {}", p.organization),
                };
                (p.email.clone(), p.role.as_str().to_string(), team_role)
            })
            .collect();
        Ok(DemoSummary {
            organizations,
            services,
            logins,
            items,
            rollout_entries,
        })
    })
}

/// Imports an embedded file through the import users have; answers how many rows it created.
fn import_file<T>(
    conn: &mut DbConnection,
    (name, body): (&str, &[u8]),
    parse: import::ParseFn<T>,
    apply: import::ApplyFn<T>,
) -> Result<usize, ApiError> {
    let parsed = parse(ImportFormat::Csv, body);
    match apply(conn, &parsed, &Actor::SYSTEM, &mut |_| {}) {
        Ok(report) => Ok(report.created),
        Err(import::ImportError::Invalid(problems)) => {
            let problems: Vec<String> = problems
                .iter()
                .map(|p| format!("line {}: {}: {}", p.line, p.column, p.message))
                .collect();
            Err(broken(name, problems.join("; ")))
        }
        Err(import::ImportError::Other(e)) => Err(e),
    }
}

/// The user id of a demo person by e-mail; `file` names where the e-mail came from.
fn person(people: &HashMap<String, i64>, file: &str, email: &str) -> Result<i64, ApiError> {
    people
        .get(&email.trim().to_lowercase())
        .copied()
        .ok_or_else(|| broken(file, format!("`{email}` is not in {}", files::PEOPLE.0)))
}

/// Creates the people through user creation and sets their organization; answers their ids
/// by e-mail.
fn seed_people(
    conn: &mut DbConnection,
    people: &[Person],
    hashes: &[String],
) -> Result<HashMap<String, i64>, ApiError> {
    let mut ids = HashMap::new();
    for (person, hash) in people.iter().zip(hashes) {
        let form = NewUser {
            email: person.email.clone(),
            display_name: person.display_name.clone(),
            role: person.role,
            password: DEMO_PASSWORD.into(),
        };
        let user = User::insert(conn, &form, hash, &Actor::SYSTEM)?;
        // User creation has no organization (an admin sets it afterwards); the demo sets it
        // at once, as part of the person's creation.
        let organization = Organization::find(conn, &person.organization).map_err(|_| {
            broken(
                files::PEOPLE.0,
                format!("no organization `{}`", person.organization),
            )
        })?;
        diesel::update(users::table.find(user.id))
            .set(users::organization_id.eq(organization.id))
            .execute(conn)?;
        ids.insert(user.email.clone(), user.id);
    }
    Ok(ids)
}

/// Sets every service's RACI template through the replacement behind
/// `PUT /api/v1/services/{key}/raci`.
fn seed_raci(
    conn: &mut DbConnection,
    rows: &[RaciRow],
    people: &HashMap<String, i64>,
) -> Result<(), ApiError> {
    let file = files::RACI.0;
    let ids = |cell: &str| -> Result<Vec<PersonId>, ApiError> {
        cell.split('|')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|email| person(people, file, email).map(PersonId::Id))
            .collect()
    };
    for row in rows {
        let template = RaciInput {
            accountable: Some(Accountable::One(PersonId::Id(person(
                people,
                file,
                &row.accountable,
            )?))),
            responsible: ids(&row.responsible)?,
            consulted: ids(&row.consulted)?,
            informed: ids(&row.informed)?,
        };
        raci::replace(
            conn,
            &row.service,
            &template,
            &Actor::SYSTEM,
            Precondition(None),
        )?;
    }
    Ok(())
}
