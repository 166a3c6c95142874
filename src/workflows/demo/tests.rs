//! The rules the demo data keeps (they were the tests of the Rust tuples it was written in):
//! a plausible landscape, fictional people and addresses, every reference resolvable.

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
    parsed.rows.into_iter().map(|(_, row)| row.form).collect()
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
