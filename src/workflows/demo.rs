//! Loads the demo data (`opsboard serve --demo`, `opsboard seed-demo`): the organizations
//! around an OZG operations team, its five members and a few stakeholders, the online services
//! with their RACI templates, the OPS and DEM boards, the SLA policies and a few hundred items.
//! Only into an empty database, never in production.
//!
//! The data is data: the files under `data/demo/` (see its README), compiled into the binary
//! so that it runs from any directory. Each part goes through the path a user's request takes:
//! organizations and services through their imports (`opsboard import organizations|services`),
//! people through user creation, RACI templates, boards and SLA policies through the functions
//! behind their endpoints. Only the items are generated, by the code at the end of this file,
//! from the texts and knobs of `data/demo/items.toml`.

use std::collections::HashMap;

use diesel::prelude::*;
use serde::Deserialize;

use crate::auth::{CurrentUser, Role, password};
use crate::board::model::{Board, NewBoard, NewColumn};
use crate::catalog::import::{self, ImportFormat};
use crate::catalog::organizations::Organization;
use crate::catalog::raci::{self, Accountable, RaciInput};
use crate::db::DbConnection;
use crate::db::schema::{organizations, services, users};
use crate::demands::model::{self as demands, Decision, DecisionRequest, DemandInput, Effort};
use crate::error::ApiError;
use crate::http::IfMatch;
use crate::incidents::model::{IncidentInput, Severity};
use crate::items::model::{Item, ItemType, MoveRequest, NewItem, Priority};
use crate::sla::policies::{NewSlaPolicy, SlaPolicy};
use crate::users::model::{NewUser, User};

/// The files of the demo, as `(name, content)`: the name is where it lives in the repository,
/// for messages.
mod files {
    pub const ORGANIZATIONS: (&str, &[u8]) = (
        "data/demo/organizations.csv",
        include_bytes!("../../data/demo/organizations.csv"),
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

/// `items.toml`: the texts and knobs of the item generator (the file explains the rules).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemPlan {
    count: usize,
    requesting_organizations: Vec<String>,
    priorities: Vec<Priority>,
    label: String,
    incidents: IncidentPlan,
    tasks: TaskPlan,
    demands: DemandPlan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentPlan {
    board: String,
    titles: Vec<String>,
    impact: String,
    resolution: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskPlan {
    board: String,
    titles: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DemandPlan {
    board: String,
    titles: Vec<String>,
    justification: String,
    decided_by: String,
    rejected_because: String,
    deferred_because: String,
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
}

impl DemoData {
    fn read() -> Result<DemoData, ApiError> {
        let items: ItemPlan = read_toml(files::ITEMS)?;
        let lists = [
            (
                "requesting_organizations",
                items.requesting_organizations.len(),
            ),
            ("priorities", items.priorities.len()),
            ("incidents.titles", items.incidents.titles.len()),
            ("tasks.titles", items.tasks.titles.len()),
            ("demands.titles", items.demands.titles.len()),
        ];
        if let Some((list, _)) = lists.iter().find(|(_, len)| *len == 0) {
            return Err(broken(
                files::ITEMS.0,
                format!("`{list}` must not be empty"),
            ));
        }
        Ok(DemoData {
            people: read_csv(files::PEOPLE)?,
            raci: read_csv(files::RACI)?,
            boards: read_toml::<Boards>(files::BOARDS)?.board,
            policies: read_toml::<SlaPolicies>(files::SLA_POLICIES)?.policy,
            items,
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
    conn.transaction(|conn| {
        if has_data(conn)? {
            return Err(ApiError::Conflict(
                "The database already has data; demo data is only loaded into an empty one.".into(),
            ));
        }
        let organizations = import_file(
            conn,
            files::ORGANIZATIONS,
            import::organizations::parse,
            import::organizations::apply,
        )?;
        let people = seed_people(conn, &data.people, &hashes)?;
        let services = import_file(conn, files::SERVICES, import::parse, import::apply)?;
        seed_raci(conn, &data.raci, &people)?;
        for board in &data.boards {
            let form = NewBoard {
                key: board.key.clone(),
                name: board.name.clone(),
                description: board.description.clone(),
                columns: Some(board.columns.clone()),
                lead: Some(person(&people, files::BOARDS.0, &board.lead)?),
            };
            Board::create(conn, &form, None)?;
        }
        for policy in &data.policies {
            SlaPolicy::create(conn, policy, None)?;
        }
        let team: Vec<i64> = data
            .people
            .iter()
            .filter(|p| p.team_role.is_some())
            .map(|p| person(&people, files::PEOPLE.0, &p.email))
            .collect::<Result<_, _>>()?;
        let decider = person(&people, files::ITEMS.0, &data.items.demands.decided_by)?;
        let items = seed_items(conn, &data.items, &team, decider)?;
        let logins = data
            .people
            .iter()
            .map(|p| {
                let team_role = p.team_role.as_deref().unwrap_or("stakeholder");
                (
                    p.email.clone(),
                    p.role.as_str().to_string(),
                    team_role.into(),
                )
            })
            .collect();
        Ok(DemoSummary {
            organizations,
            services,
            logins,
            items,
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
    match apply(conn, &parsed, None, &mut |_| {}) {
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
        let user = User::insert(conn, &form, hash, None)?;
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
    let ids = |cell: &str| -> Result<Vec<i64>, ApiError> {
        cell.split('|')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|email| person(people, file, email))
            .collect()
    };
    for row in rows {
        let template = RaciInput {
            accountable: Some(Accountable::One(person(people, file, &row.accountable)?)),
            responsible: ids(&row.responsible)?,
            consulted: ids(&row.consulted)?,
            informed: ids(&row.informed)?,
        };
        raci::replace(conn, &row.service, &template, None, IfMatch(None))?;
    }
    Ok(())
}

/// A few hundred items: incidents and tasks on OPS, demands on DEM, spread over the columns
/// and the services, by the team's members; `items.toml` says how.
fn seed_items(
    conn: &mut DbConnection,
    plan: &ItemPlan,
    team: &[i64],
    decider: i64,
) -> Result<usize, ApiError> {
    let services: Vec<String> = services::table
        .order(services::id)
        .select(services::key)
        .load(conn)?;
    if services.is_empty() || team.is_empty() {
        return Ok(0);
    }
    const SEVERITIES: [Severity; 4] = [Severity::S1, Severity::S2, Severity::S3, Severity::S4];
    let orgs = Organization::all(conn)?;
    let requesting: Vec<&Organization> = plan
        .requesting_organizations
        .iter()
        .filter_map(|short| orgs.iter().find(|o| o.short_name == *short))
        .collect();
    let now = chrono::Utc::now();
    let mut created = 0;
    for i in 0..plan.count {
        let (board, item_type, title) = match i % 4 {
            0 | 1 => {
                let titles = &plan.incidents.titles;
                (
                    &plan.incidents.board,
                    ItemType::Incident,
                    &titles[i % titles.len()],
                )
            }
            2 => (
                &plan.tasks.board,
                ItemType::Task,
                &plan.tasks.titles[i % plan.tasks.titles.len()],
            ),
            _ => {
                let titles = &plan.demands.titles;
                (
                    &plan.demands.board,
                    ItemType::Demand,
                    &titles[i % titles.len()],
                )
            }
        };
        let service = &services[(i * 7) % services.len()];
        let actor = team[i % team.len()];
        let mut form = NewItem {
            board: board.clone(),
            item_type,
            title: format!("{title} ({service})"),
            description: String::new(),
            service: Some(service.clone()),
            priority: plan.priorities[i % plan.priorities.len()],
            labels: if i % 5 == 0 {
                vec![plan.label.clone()]
            } else {
                Vec::new()
            },
            due_date: None,
            raci: None,
            external_refs: Vec::new(),
            demand: None,
            incident: None,
            override_wip: true,
        };
        let target = i % 9;
        if item_type == ItemType::Incident {
            // Reported over the last ten days; older open ones have run out of time.
            let reported_at = now - chrono::Duration::minutes(((i * 397) % 14_400) as i64 + 5);
            let done = target == 8;
            let answered = done || i % 3 != 0;
            let soon = |minutes: i64| {
                let at = reported_at + chrono::Duration::minutes(minutes);
                (at < now).then_some(at)
            };
            form.incident = Some(IncidentInput {
                severity: Some(SEVERITIES[((i / 4) * 2 + i % 4) % 4]),
                reported_at: Some(reported_at),
                reported_by_org: Some(
                    requesting
                        .get(i % requesting.len().max(1))
                        .map(|o| o.short_name.clone()),
                ),
                impact: Some(plan.incidents.impact.clone()),
                first_response_at: Some(if answered { soon(20) } else { None }),
                resolved_at: Some(if done { soon(180) } else { None }),
                resolution: Some(done.then(|| plan.incidents.resolution.clone())),
                ..IncidentInput::default()
            });
        }
        if item_type == ItemType::Demand {
            let org = requesting.get((i / 4) % requesting.len().max(1));
            form.demand = Some(DemandInput {
                requesting_organization: Some(org.map(|o| o.short_name.clone())),
                justification: Some(plan.demands.justification.clone()),
                value: Some(Some(i32::try_from(i % 5).unwrap_or(0) + 1)),
                desired_date: Some(chrono::NaiveDate::from_ymd_opt(
                    2027,
                    1 + (i % 12) as u32,
                    1,
                )),
                ..DemandInput::default()
            });
        }
        let item = Item::create(conn, &form, actor, true)?;
        created += 1;
        if item_type == ItemType::Demand {
            // Every fifth stays pending; the others are decided by the demand manager.
            let d = i / 4;
            let (decision, reason) = match d % 5 {
                0 => (None, None),
                1 | 2 => (Some(Decision::Accepted), None),
                3 => (
                    Some(Decision::Rejected),
                    Some(&plan.demands.rejected_because),
                ),
                _ => (
                    Some(Decision::Deferred),
                    Some(&plan.demands.deferred_because),
                ),
            };
            if let Some(decision) = decision {
                let caller = CurrentUser(User::find(conn, decider)?);
                let request = DecisionRequest {
                    decision,
                    reason: reason.cloned(),
                    target_quarter: (decision == Decision::Accepted)
                        .then(|| format!("2027-Q{}", 1 + d % 4)),
                    value: None,
                    effort: Some([Effort::S, Effort::M, Effort::L][d % 3]),
                    override_wip: true,
                };
                let decided = demands::decide(conn, &item.key, &request, &caller, IfMatch(None))?;
                if decision == Decision::Accepted && d % 3 == 0 {
                    let board = Board::find(conn, board)?;
                    let column = board.columns.get(2).ok_or_else(|| {
                        broken(
                            files::BOARDS.0,
                            format!("{} needs a third column", board.key),
                        )
                    })?;
                    let request = MoveRequest {
                        column: column.id,
                        before: None,
                        after: None,
                        override_wip: true,
                        resolution: None,
                    };
                    Item::move_to(conn, &decided.key, &request, decider, true, IfMatch(None))?;
                }
            }
            continue;
        }
        // Spread over the workflow; the WIP limits are overridden as a team lead would.
        if target > 3 {
            let board = Board::find(conn, board)?;
            let Some(last) = board.columns.len().checked_sub(1) else {
                continue;
            };
            let column = &board.columns[(target - 3).min(last)];
            let request = MoveRequest {
                column: column.id,
                before: None,
                after: None,
                override_wip: true,
                resolution: None,
            };
            Item::move_to(conn, &item.key, &request, actor, true, IfMatch(None))?;
        }
    }
    Ok(created)
}

/// The rules the demo data keeps (they were the tests of the Rust tuples it was written in):
/// a plausible landscape, fictional people and addresses, every reference resolvable.
#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::Datelike;

    use super::*;
    use crate::catalog::organizations::{NewOrganization, OrganizationKind};
    use crate::catalog::services::{Lifecycle, ServiceInput, ServiceKind};

    const TOPICS: [&str; 14] = [
        "Bauen & Wohnen",
        "Familie & Kind",
        "Mobilität & Reisen",
        "Unternehmensführung & -entwicklung",
        "Gesundheit",
        "Steuern & Zoll",
        "Arbeit & Ruhestand",
        "Bildung",
        "Engagement & Hobby",
        "Ein- & Auswanderung",
        "Forschung & Förderung",
        "Recht & Ordnung",
        "Umwelt",
        "Querschnittsleistungen",
    ];

    fn is_slug(key: &str) -> bool {
        !key.is_empty()
            && key.len() <= 64
            && key.split('-').all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            })
    }

    fn is_clean(text: &str) -> bool {
        !text.is_empty() && !text.chars().any(char::is_control)
    }

    fn organizations() -> Vec<NewOrganization> {
        let parsed = import::organizations::parse(ImportFormat::Csv, files::ORGANIZATIONS.1);
        assert_eq!(parsed.problems, [], "organizations.csv reads");
        parsed.rows.into_iter().map(|(_, row)| row).collect()
    }

    fn services() -> Vec<ServiceInput> {
        let parsed = import::parse(ImportFormat::Csv, files::SERVICES.1);
        assert_eq!(parsed.problems, [], "services.csv reads");
        parsed.rows.into_iter().map(|(_, row)| row).collect()
    }

    fn org_kind(orgs: &[NewOrganization], short_name: &str) -> Option<OrganizationKind> {
        orgs.iter()
            .find(|o| o.short_name == short_name)
            .map(|o| o.kind)
    }

    #[test]
    fn every_file_reads() {
        let data = DemoData::read().expect("the demo files read");
        assert_eq!(data.boards.len(), 2);
        assert_eq!(data.policies.len(), 4);
        assert_eq!(data.items.count, 320);
    }

    #[test]
    fn organizations_are_consistent() {
        let orgs = organizations();
        assert!((25..=30).contains(&orgs.len()));
        let mut seen = HashSet::new();
        for org in &orgs {
            assert!(
                seen.insert(org.short_name.to_lowercase()),
                "duplicate {}",
                org.short_name
            );
            assert!((2..=12).contains(&org.short_name.len()));
            assert!(
                org.short_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-')
            );
            assert!(is_clean(&org.name));
            if let Some(email) = &org.contact_email {
                assert!(email.ends_with("@example.org") && *email == email.to_lowercase());
            }
        }
        for required in ["FM", "ZDMV", "DVZ", "LKT", "StGT", "eGo-MV", "HRO", "SN"] {
            assert!(
                seen.contains(&required.to_lowercase()),
                "missing {required}"
            );
        }
        let districts = orgs
            .iter()
            .filter(|o| o.kind == OrganizationKind::District)
            .count();
        assert_eq!(districts, 6);
        let fm = orgs
            .iter()
            .find(|o| o.short_name == "FM")
            .map(|o| o.name.as_str());
        assert_eq!(
            fm,
            Some("Ministerium für Finanzen und Digitalisierung Mecklenburg-Vorpommern"),
            "UTF-8 survives"
        );
    }

    #[test]
    fn people_are_consistent() {
        let orgs = organizations();
        let people: Vec<Person> = read_csv(files::PEOPLE).expect("people.csv reads");
        let mut emails = HashSet::new();
        for p in &people {
            assert!(emails.insert(p.email.as_str()), "duplicate {}", p.email);
            assert!(p.email.ends_with("@example.org"));
            assert!(
                p.email
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b"@.-".contains(&b))
            );
            assert!(is_clean(&p.display_name));
            assert!([Role::Manager, Role::Member, Role::Viewer, Role::Requester].contains(&p.role));
            assert!(
                org_kind(&orgs, &p.organization).is_some(),
                "unknown {}",
                p.organization
            );
        }
        let team: Vec<_> = people.iter().filter(|p| p.team_role.is_some()).collect();
        assert_eq!(team.len(), 5);
        assert!(people[..5].iter().all(|p| p.team_role.is_some()));
        assert!(
            team.iter()
                .all(|p| ["FM", "ZDMV"].contains(&p.organization.as_str()))
        );
        assert!((5..=7).contains(&(people.len() - 5)));
        assert_eq!(people.iter().filter(|p| p.role == Role::Viewer).count(), 1);
        assert_eq!(people[0].display_name, "Katrin Möller", "UTF-8 survives");
    }

    #[test]
    fn services_are_consistent() {
        let orgs = organizations();
        let services = services();
        assert!(services.len() >= 230, "only {} services", services.len());
        let mut keys = HashSet::new();
        let mut names = HashSet::new();
        for s in &services {
            assert!(is_slug(&s.key), "bad key {}", s.key);
            assert!(keys.insert(s.key.as_str()), "duplicate key {}", s.key);
            assert!(names.insert(s.name.as_str()), "duplicate name {}", s.name);
            assert!(is_clean(&s.name) && is_clean(&s.description));
            assert!(s.kind.is_some(), "{}", s.key);
            assert!((0..=4).contains(&s.maturity_level));
            if s.lifecycle == Lifecycle::Planned {
                assert!(
                    s.maturity_level <= 1 && s.go_live_date.is_none(),
                    "{}",
                    s.key
                );
            } else {
                assert!(s.go_live_date.is_some(), "{}", s.key);
            }
            if s.lifecycle == Lifecycle::Productive {
                assert!(s.maturity_level >= 2, "{}", s.key);
            }
            if let Some(id) = &s.ozg_id {
                assert!(
                    id.len() == 5 && id.bytes().all(|b| b.is_ascii_digit()),
                    "{id}"
                );
            }
            assert!(s.leika_keys.len() <= 3);
            for leika in &s.leika_keys {
                assert!(leika.len() == 14 && leika.starts_with("99"), "{leika}");
                assert!(leika.bytes().all(|b| b.is_ascii_digit()), "{leika}");
            }
            assert!(s.topic.as_deref().is_none_or(|t| TOPICS.contains(&t)));
            let operator = s.operator.as_deref().and_then(|o| org_kind(&orgs, o));
            assert!(
                matches!(
                    operator,
                    Some(OrganizationKind::ItOperator | OrganizationKind::Vendor)
                ),
                "{:?}",
                s.operator
            );
            let responsible = s.responsible.as_deref().and_then(|o| org_kind(&orgs, o));
            assert!(
                matches!(
                    responsible,
                    Some(OrganizationKind::Ministry | OrganizationKind::Agency)
                ),
                "{:?}",
                s.responsible
            );
            if let Some(url) = &s.url {
                assert!(url.starts_with("https://") && url.contains("example.org"));
            }
            if let Some(date) = s.go_live_date {
                assert!((2015..=2026).contains(&date.year()));
                assert!((1..=28).contains(&date.day()));
            }
            assert!(s.tags.len() <= 3);
            assert!(s.tags.iter().all(|t| is_slug(t)));
        }
        let bau = services.iter().find(|s| s.key == "bauantrag-online");
        assert_eq!(bau.and_then(|s| s.ozg_id.as_deref()), Some("10519"));
        let share = |f: &dyn Fn(&ServiceInput) -> bool| {
            services.iter().filter(|s| f(s)).count() * 100 / services.len()
        };
        assert!((70..=80).contains(&share(&|s| s.lifecycle == Lifecycle::Productive)));
        assert!((30..=40).contains(&share(&|s| s.kind == Some(ServiceKind::Efa))));
        assert!((35..=45).contains(&share(&|s| s.kind == Some(ServiceKind::Own))));
        assert!((20..=30).contains(&share(&|s| s.kind == Some(ServiceKind::Reuse))));
    }

    #[test]
    fn every_service_has_one_raci_row_naming_team_members() {
        let data = DemoData::read().expect("the demo files read");
        let team: HashSet<&str> = data
            .people
            .iter()
            .filter(|p| p.team_role.is_some())
            .map(|p| p.email.as_str())
            .collect();
        let services: Vec<String> = services().into_iter().map(|s| s.key).collect();
        let rows: Vec<&str> = data.raci.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(
            rows, services,
            "one row per service, in the catalogue's order"
        );
        for row in &data.raci {
            let cells = [
                &row.accountable,
                &row.responsible,
                &row.consulted,
                &row.informed,
            ];
            for email in cells
                .iter()
                .flat_map(|c| c.split('|'))
                .filter(|e| !e.is_empty())
            {
                assert!(
                    team.contains(email),
                    "{}: {email} is not in the team",
                    row.service
                );
            }
            assert!(
                !row.accountable.contains('|'),
                "{}: one accountable",
                row.service
            );
        }
        for email in data
            .boards
            .iter()
            .map(|b| &b.lead)
            .chain([&data.items.demands.decided_by])
        {
            assert!(team.contains(email.as_str()), "{email} is not in the team");
        }
    }
}
