//! Loads the demo data (`opsboard serve --demo`, `opsboard seed-demo`): the organizations
//! around an OZG operations team, its five members and a few stakeholders, and the online
//! services with their RACI templates. Only into an empty database, never in production.

use diesel::prelude::*;

use crate::board::model::{Board, ColumnCategory, NewBoard, NewColumn};
use crate::catalog::demo_data;
use crate::catalog::organizations::{NewOrganization, Organization, OrganizationKind};
use crate::catalog::raci::{self, Accountable, RaciInput};
use crate::catalog::services::{Lifecycle, OrganizationIndex, Service, ServiceInput, ServiceKind};
use crate::common::actor::Actor;
use crate::common::actor::Role;
use crate::common::db::DbConnection;
use crate::common::db::schema::{organizations, services, users};
use crate::common::error::ApiError;
use crate::common::version::Precondition;
use crate::demands::model::{self as demands, DecisionRequest};
use crate::items::demand::{Decision, DemandInput, Effort};
use crate::items::incident::IncidentInput;
use crate::items::model::{Item, ItemType, MoveRequest, NewItem, Priority};
use crate::sla::severity::Severity;
use crate::users::model::{NewUser, User};

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

/// Whether the database holds anything besides its first admin.
pub fn has_data(conn: &mut DbConnection) -> Result<bool, ApiError> {
    let orgs: i64 = organizations::table.count().get_result(conn)?;
    let services: i64 = services::table.count().get_result(conn)?;
    let users: i64 = users::table.count().get_result(conn)?;
    Ok(orgs > 0 || services > 0 || users > 1)
}

/// Loads the demo data in one transaction; refuses a database that already has data.
pub fn seed(conn: &mut DbConnection) -> Result<DemoSummary, ApiError> {
    conn.transaction(|conn| {
        if has_data(conn)? {
            return Err(ApiError::Conflict(
                "The database already has data; demo data is only loaded into an empty one.".into(),
            ));
        }
        let mut summary = DemoSummary {
            organizations: 0,
            services: 0,
            logins: Vec::new(),
            items: 0,
        };
        for org in demo_data::organizations() {
            let kind = OrganizationKind::parse(org.kind)
                .ok_or_else(|| ApiError::internal(format!("demo kind {}", org.kind)))?;
            Organization::create(
                conn,
                NewOrganization {
                    short_name: org.short_name.into(),
                    name: org.name.into(),
                    kind,
                    contact_email: org.contact_email.map(str::to_string),
                },
                None,
            )?;
            summary.organizations += 1;
        }
        let orgs = Organization::all(conn)?;
        let mut team = Vec::new();
        for person in demo_data::people() {
            let role = Role::parse(person.role)
                .ok_or_else(|| ApiError::internal(format!("demo role {}", person.role)))?;
            let user = User::create(
                conn,
                NewUser {
                    email: person.email.into(),
                    display_name: person.display_name.into(),
                    role,
                    password: DEMO_PASSWORD.into(),
                },
                None,
            )?;
            let organization = orgs
                .iter()
                .find(|o| o.short_name == person.organization)
                .map(|o| o.id);
            diesel::update(users::table.find(user.id))
                .set(users::organization_id.eq(organization))
                .execute(conn)?;
            if let Some(team_role) = person.team_role {
                team.push((team_role, user.id));
            }
            summary.logins.push((
                person.email.into(),
                person.role.into(),
                person.team_role.unwrap_or("stakeholder").into(),
            ));
        }
        let member = |wanted: &str| team.iter().find(|(r, _)| *r == wanted).map(|(_, id)| *id);
        let lead = member("project lead");
        let own = member("case worker own developments");
        let efa = member("case worker EfA services");
        let demand = member("demand manager");
        let coordinator = member("coordinator");
        let index = OrganizationIndex::load(conn)?;
        for (i, service) in demo_data::services().into_iter().enumerate() {
            let input = ServiceInput {
                key: service.key.clone(),
                name: service.name,
                description: service.description,
                lifecycle: Lifecycle::parse(service.lifecycle).unwrap_or_default(),
                kind: ServiceKind::parse(service.kind),
                maturity_level: service.maturity_level,
                ozg_id: service.ozg_id,
                leika_keys: service.leika_keys,
                topic: service.topic.map(str::to_string),
                operator: Some(service.operator.into()),
                responsible: Some(service.responsible.into()),
                url: service.url,
                go_live_date: service
                    .go_live_date
                    .and_then(|(y, m, d)| chrono::NaiveDate::from_ymd_opt(y, m, d)),
                tags: service.tags.into_iter().map(str::to_string).collect(),
            };
            let resolved = input.validate(&index).map_err(ApiError::Validation)?;
            Service::upsert(conn, &resolved, &index, None, true)?;
            summary.services += 1;
            // EfA services belong to the EfA case worker, own developments to the one for own
            // developments, reused ones to the coordinator; the lead is accountable for every
            // seventh service, so that workloads differ as they do in life.
            let worker = match input.kind {
                Some(ServiceKind::Efa) => efa,
                Some(ServiceKind::Own) => own,
                _ => coordinator,
            };
            let accountable = if i % 7 == 0 { lead } else { worker };
            let Some(accountable) = accountable else {
                continue;
            };
            let template = RaciInput {
                accountable: Some(Accountable::One(accountable)),
                responsible: worker.into_iter().collect(),
                consulted: demand.filter(|_| i % 3 == 0).into_iter().collect(),
                informed: lead.filter(|id| *id != accountable).into_iter().collect(),
            };
            raci::replace(conn, &service.key, &template, None, Precondition(None))?;
        }
        let column =
            |name: &str, category: ColumnCategory, wip_limit: Option<i32>, pauses_sla| NewColumn {
                name: name.into(),
                category,
                wip_limit,
                pauses_sla,
                position: None,
            };
        use ColumnCategory::{Done, InProgress, Todo};
        let boards = [
            (
                "OPS",
                "Betrieb",
                "Aufgaben und Störungen im Betrieb der Onlinedienste",
                lead,
                vec![
                    column("Backlog", Todo, None, false),
                    column("Bereit", Todo, None, false),
                    column("In Arbeit", InProgress, Some(5), false),
                    column("Wartet auf Meldende", InProgress, None, true),
                    column("Review", InProgress, Some(3), false),
                    column("Erledigt", Done, None, false),
                ],
            ),
            (
                "DEM",
                "Bedarfe",
                "Bedarfe von Ministerien, Kommunen und Betreibern",
                demand,
                vec![
                    column("Eingang", Todo, None, false),
                    column("Angenommen", Todo, None, false),
                    column("In Umsetzung", InProgress, Some(5), false),
                    column("Abnahme", InProgress, Some(3), false),
                    column("Umgesetzt", Done, None, false),
                ],
            ),
        ];
        for (key, name, description, board_lead, columns) in boards {
            let board = NewBoard {
                key: key.into(),
                name: name.into(),
                description: description.into(),
                columns: Some(columns),
                lead: board_lead,
            };
            Board::create(conn, &board, None)?;
        }
        seed_sla_policies(conn)?;
        summary.items = seed_items(conn, &member_ids(&team), demand, &orgs)?;
        Ok(summary)
    })
}

/// The SLA policies of the team's operating agreement: an outage (s1) is answered round the
/// clock, everything else within business hours.
fn seed_sla_policies(conn: &mut DbConnection) -> Result<(), ApiError> {
    use crate::sla::policies::{ClockKind, NewSlaPolicy, SlaPolicy};
    for (severity, response_minutes, resolution_minutes, clock) in [
        (Severity::S1, 30, 240, ClockKind::Calendar),
        (Severity::S2, 60, 480, ClockKind::Business),
        (Severity::S3, 240, 2_400, ClockKind::Business),
        (Severity::S4, 480, 4_800, ClockKind::Business),
    ] {
        let policy = NewSlaPolicy {
            severity,
            service: None,
            response_minutes,
            resolution_minutes,
            clock,
        };
        SlaPolicy::create(conn, &policy, None)?;
    }
    Ok(())
}

fn member_ids(team: &[(&str, i64)]) -> Vec<i64> {
    team.iter().map(|(_, id)| *id).collect()
}

/// A few hundred items: incidents and tasks on OPS, demands on DEM, spread over the columns
/// and the services, by the team's members.
fn seed_items(
    conn: &mut DbConnection,
    team: &[i64],
    demand_manager: Option<i64>,
    orgs: &[Organization],
) -> Result<usize, ApiError> {
    const INCIDENTS: &[&str] = &[
        "Upload von Nachweisen bricht ab",
        "Zahlung über ePayBL schlägt fehl",
        "Login mit BundID nicht möglich",
        "PDF-Bescheid wird nicht erzeugt",
        "Antwortzeiten über 10 Sekunden",
        "Formular zeigt falsche Gebühr",
    ];
    const TASKS: &[&str] = &[
        "Zertifikat erneuern",
        "Release einspielen und testen",
        "Datenschutzfolgenabschätzung aktualisieren",
        "Schnittstelle zum Fachverfahren prüfen",
        "Nutzerhandbuch überarbeiten",
    ];
    const DEMANDS: &[&str] = &[
        "Anbindung weiterer Kommunen",
        "Barrierefreiheit nach BITV 2.0 herstellen",
        "Mehrsprachige Oberfläche (Englisch, Ukrainisch)",
        "Statusabfrage für Antragstellende",
        "Export der Antragsdaten für die Statistik",
    ];
    let services: Vec<String> = services::table
        .order(services::id)
        .select(services::key)
        .load(conn)?;
    if services.is_empty() || team.is_empty() {
        return Ok(0);
    }
    let priorities = [
        Priority::Medium,
        Priority::High,
        Priority::Low,
        Priority::Medium,
        Priority::Critical,
    ];
    const SEVERITIES: [Severity; 4] = [Severity::S1, Severity::S2, Severity::S3, Severity::S4];
    let requesting = ["LUP", "HRO", "VG", "SN", "SM", "SK", "MV"];
    let requesting: Vec<&Organization> = requesting
        .iter()
        .filter_map(|short| orgs.iter().find(|o| o.short_name == *short))
        .collect();
    let now = chrono::Utc::now();
    let mut created = 0;
    for i in 0..320_usize {
        let (board, item_type, title) = match i % 4 {
            0 | 1 => ("OPS", ItemType::Incident, INCIDENTS[i % INCIDENTS.len()]),
            2 => ("OPS", ItemType::Task, TASKS[i % TASKS.len()]),
            _ => ("DEM", ItemType::Demand, DEMANDS[i % DEMANDS.len()]),
        };
        let service = &services[(i * 7) % services.len()];
        let actor = team[i % team.len()];
        let form = NewItem {
            board: board.into(),
            item_type,
            title: format!("{title} ({service})"),
            description: String::new(),
            service: Some(service.clone()),
            priority: priorities[i % priorities.len()],
            labels: if i % 5 == 0 {
                vec!["kommunal".into()]
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
        let mut form = form;
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
                impact: Some("Antragstellende können den Antrag nicht abschließen.".into()),
                first_response_at: Some(if answered { soon(20) } else { None }),
                resolved_at: Some(if done { soon(180) } else { None }),
                resolution: Some(done.then(|| "Fehler behoben, Dienst läuft wieder.".into())),
                ..IncidentInput::default()
            });
        }
        if item_type == ItemType::Demand {
            let org = requesting.get((i / 4) % requesting.len().max(1));
            form.demand = Some(DemandInput {
                requesting_organization: Some(org.map(|o| o.short_name.clone())),
                justification: Some(
                    "Gesetzliche Änderung und Rückmeldungen der Antragstellenden.".into(),
                ),
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
        if item_type == ItemType::Demand {
            // Every fifth stays pending; the others are decided by the demand manager.
            let Some(manager) = demand_manager else {
                created += 1;
                continue;
            };
            let d = i / 4;
            let (decision, reason) = match d % 5 {
                0 => (None, None),
                1 | 2 => (Some(Decision::Accepted), None),
                3 => (
                    Some(Decision::Rejected),
                    Some("Kein Mehrwert gegenüber dem EfA-Dienst."),
                ),
                _ => (
                    Some(Decision::Deferred),
                    Some("Nach der Migration auf die neue Plattform."),
                ),
            };
            if let Some(decision) = decision {
                let found = User::find(conn, manager)?;
                let caller = Actor::user(found.id, found.role, found.organization_id);
                let request = DecisionRequest {
                    decision,
                    reason: reason.map(str::to_string),
                    target_quarter: (decision == Decision::Accepted)
                        .then(|| format!("2027-Q{}", 1 + d % 4)),
                    value: None,
                    effort: Some([Effort::S, Effort::M, Effort::L][d % 3]),
                    override_wip: true,
                };
                let decided =
                    demands::decide(conn, &item.key, &request, &caller, Precondition(None))?;
                if decision == Decision::Accepted && d % 3 == 0 {
                    let board = Board::find(conn, "DEM")?;
                    let request = MoveRequest {
                        column: board.columns[2].id,
                        before: None,
                        after: None,
                        override_wip: true,
                        resolution: None,
                    };
                    Item::move_to(
                        conn,
                        &decided.key,
                        &request,
                        manager,
                        true,
                        Precondition(None),
                    )?;
                }
            }
            created += 1;
            continue;
        }
        // Spread over the workflow; the WIP limits are overridden as a team lead would.
        if target > 3 {
            let board = Board::find(conn, board)?;
            let column = &board.columns[(target - 3).min(board.columns.len() - 1)];
            let request = MoveRequest {
                column: column.id,
                before: None,
                after: None,
                override_wip: true,
                resolution: None,
            };
            Item::move_to(conn, &item.key, &request, actor, true, Precondition(None))?;
        }
        created += 1;
    }
    Ok(created)
}
