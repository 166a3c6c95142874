//! The rollout at a glance: the plan of a wave, the matrix of administrations × services (JSON,
//! CSV, SVG, and a CSV upload that changes many entries at once) and the progress figures.
//! Each reads all it needs in a fixed number of queries and computes in memory: the whole
//! state has a few thousand entries at most (116 administrations × the services rolled out).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

use chrono::NaiveDate;
use diesel::prelude::*;

use crate::catalog::organizations::OrganizationKind;
use crate::common::actor::Actor;
use crate::common::csv_out::{Cell, CsvOut};
use crate::common::db::DbConnection;
use crate::common::db::schema::{
    organizations, rollout_blockers, rollout_entries, rollout_waves, services,
};
use crate::common::error::{ApiError, FieldError};
use crate::common::version::Precondition;
use crate::rollout::entries::{self, Outcome, is_overdue, zero_counts};
use crate::rollout::model::{
    EntryChanges, Matrix, MatrixCell, MatrixColumn, MatrixFilter, MatrixRow, MatrixUploadReport,
    PlanReport, Progress, ProgressBy, ProgressFigures, ProgressGroup, RolloutPlan, RolloutSettings,
    RolloutStatus,
};
use crate::rollout::waves::{service_id, wave_id};

/// Creates the `planned` entries of a wave: for the administrations named, those of a
/// district, or all; those that have an entry already stay as they are. In the caller's
/// transaction; one `created` event per entry.
pub fn plan(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    plan: &RolloutPlan,
    actor: &Actor,
) -> Result<PlanReport, ApiError> {
    let chosen = [
        plan.administrations.is_some(),
        plan.district.is_some(),
        plan.all == Some(true),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    if chosen != 1 {
        return Err(ApiError::invalid(
            "administrations",
            "give exactly one of administrations, district, all: true",
        ));
    }
    let service = service_id(conn, &plan.service)?;
    if wave_id(conn, service, &plan.wave)?.is_none() {
        return Err(ApiError::invalid(
            "wave",
            format!(
                "the service `{}` has no wave `{}`; create it at /api/v1/services/{}/waves",
                plan.service.trim(),
                plan.wave.trim(),
                plan.service.trim()
            ),
        ));
    }
    let targets: Vec<String> = if let Some(names) = &plan.administrations {
        if names.is_empty() || names.len() > 500 {
            return Err(ApiError::invalid(
                "administrations",
                "name 1 to 500 administrations",
            ));
        }
        let mut errors = Vec::new();
        let mut out = Vec::new();
        for (i, name) in names.iter().enumerate() {
            match entries::administration(conn, name) {
                Ok(admin) => out.push(admin.short_name),
                Err(ApiError::NotFound(message)) => {
                    errors.push(FieldError::new(format!("administrations[{i}]"), message))
                }
                Err(other) => return Err(other),
            }
        }
        ApiError::from_fields(errors)?;
        out.dedup();
        out
    } else if let Some(name) = &plan.district {
        let (district, _) = entries::district(conn, name)?.ok_or_else(|| {
            ApiError::invalid(
                "district",
                format!("there is no district `{}`", name.trim()),
            )
        })?;
        entries::administrations_of(conn, Some(district))?
            .into_iter()
            .map(|(_, short)| short)
            .collect()
    } else {
        entries::administrations_of(conn, None)?
            .into_iter()
            .map(|(_, short)| short)
            .collect()
    };
    let changes = EntryChanges {
        wave: Some(Some(plan.wave.trim().to_string())),
        ..EntryChanges::default()
    };
    let mut report = PlanReport {
        created: Vec::new(),
        existing: Vec::new(),
    };
    let existing: BTreeSet<i64> = rollout_entries::table
        .filter(rollout_entries::service_id.eq(service))
        .select(rollout_entries::organization_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    for short in targets {
        let admin = entries::administration(conn, &short)?;
        if existing.contains(&admin.id) {
            report.existing.push(short);
            continue;
        }
        entries::write(
            conn,
            settings,
            &plan.service,
            &short,
            &changes,
            actor,
            Precondition::ANY,
            true,
        )?;
        report.created.push(short);
    }
    Ok(report)
}

/// One entry as the matrix and the progress see it.
#[derive(Debug, Clone)]
struct Cellish {
    service_id: i64,
    organization_id: i64,
    status: RolloutStatus,
    planned_go_live: Option<NaiveDate>,
    wave: Option<String>,
    blocked: bool,
}

/// An administration (or any organization) as a row.
#[derive(Debug, Clone)]
struct Org {
    id: i64,
    short_name: String,
    name: String,
    kind: String,
    parent_id: Option<i64>,
}

/// Everything the matrix and the progress read: four queries.
struct State {
    cells: Vec<Cellish>,
    services: HashMap<i64, (String, String)>,
    orgs: HashMap<i64, Org>,
}

type CellRow = (
    i64,
    i64,
    i64,
    String,
    Option<NaiveDate>,
    Option<String>,
    Option<String>,
    Option<NaiveDate>,
);

fn read_state(conn: &mut DbConnection) -> Result<State, ApiError> {
    let rows: Vec<CellRow> = rollout_entries::table
        .left_join(rollout_waves::table)
        .select((
            rollout_entries::id,
            rollout_entries::service_id,
            rollout_entries::organization_id,
            rollout_entries::status,
            rollout_entries::planned_go_live,
            rollout_entries::blocker,
            rollout_waves::name.nullable(),
            rollout_waves::planned_go_live.nullable(),
        ))
        .load(conn)?;
    let blocked: BTreeSet<i64> = rollout_blockers::table
        .select(rollout_blockers::entry_id)
        .distinct()
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let cells = rows
        .into_iter()
        .map(
            |(id, service_id, organization_id, status, planned, blocker, wave, wave_date)| {
                Ok(Cellish {
                    service_id,
                    organization_id,
                    status: RolloutStatus::parse(&status)
                        .ok_or_else(|| ApiError::internal("unknown rollout status"))?,
                    planned_go_live: planned.or(wave_date),
                    wave,
                    blocked: blocker.is_some() || blocked.contains(&id),
                })
            },
        )
        .collect::<Result<Vec<_>, ApiError>>()?;
    let services = services::table
        .select((services::id, services::key, services::name))
        .load::<(i64, String, String)>(conn)?
        .into_iter()
        .map(|(id, key, name)| (id, (key, name)))
        .collect();
    let orgs = organizations::table
        .select((
            organizations::id,
            organizations::short_name,
            organizations::name,
            organizations::kind,
            organizations::parent_id,
        ))
        .load::<(i64, String, String, String, Option<i64>)>(conn)?
        .into_iter()
        .map(|(id, short_name, name, kind, parent_id)| {
            (
                id,
                Org {
                    id,
                    short_name,
                    name,
                    kind,
                    parent_id,
                },
            )
        })
        .collect();
    Ok(State {
        cells,
        services,
        orgs,
    })
}

impl State {
    fn district_of(&self, org: &Org) -> Option<&Org> {
        org.parent_id.and_then(|p| self.orgs.get(&p))
    }

    fn district_id(&self, name: &str) -> Option<i64> {
        let wanted = name.trim().to_lowercase();
        self.orgs
            .values()
            .find(|o| {
                o.kind == OrganizationKind::District.as_str() && {
                    let full = o.name.to_lowercase();
                    o.short_name.to_lowercase() == wanted
                        || full == wanted
                        || full.strip_prefix("landkreis ") == Some(wanted.as_str())
                }
            })
            .map(|o| o.id)
    }

    /// The sort key of an administration: the kreisfreie Städte first, then by district
    /// name, then by name.
    fn order_key(&self, org: &Org) -> (String, String) {
        (
            self.district_of(org)
                .map(|d| d.name.to_lowercase())
                .unwrap_or_default(),
            org.name.to_lowercase(),
        )
    }
}

/// The matrix, filtered; `only` confines it to one administration (a requester's own; `Some(None)`
/// for a requester without one, who sees no row).
pub fn matrix(
    conn: &mut DbConnection,
    filter: &MatrixFilter,
    only: Option<Option<i64>>,
) -> Result<Matrix, ApiError> {
    let state = read_state(conn)?;
    let wanted_services: Option<BTreeSet<String>> = filter.service.as_deref().map(|s| {
        s.split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect()
    });
    if let Some(wanted) = &wanted_services {
        let unknown: Vec<&String> = wanted
            .iter()
            .filter(|k| !state.services.values().any(|(key, _)| key == *k))
            .collect();
        if !unknown.is_empty() {
            return Err(ApiError::bad_field(
                "service",
                format!(
                    "no such service: {}",
                    unknown
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let district = match filter.district.as_deref() {
        Some(name) => Some(state.district_id(name).ok_or_else(|| {
            ApiError::bad_field(
                "district",
                format!("there is no district `{}`", name.trim()),
            )
        })?),
        None => None,
    };
    let kind = match filter.kind.as_deref() {
        Some(kind) => {
            let parsed = OrganizationKind::parse(kind.trim())
                .filter(|k| k.is_administration())
                .ok_or_else(|| ApiError::bad_field("kind", "must be amt, municipality or city"))?;
            Some(parsed.as_str())
        }
        None => None,
    };
    let row_ok = |org: &Org| {
        OrganizationKind::parse(&org.kind).is_some_and(OrganizationKind::is_administration)
            && district.is_none_or(|d| org.parent_id == Some(d))
            && kind.is_none_or(|k| org.kind == k)
            && only.is_none_or(|o| o == Some(org.id))
    };
    let cell_ok = |cell: &Cellish| {
        wanted_services.as_ref().is_none_or(|w| {
            state
                .services
                .get(&cell.service_id)
                .is_some_and(|(key, _)| w.contains(key))
        }) && filter
            .wave
            .as_deref()
            .is_none_or(|w| cell.wave.as_deref() == Some(w.trim()))
            && filter.status.is_none_or(|s| cell.status == s)
    };
    let mut by_org: HashMap<i64, BTreeMap<String, MatrixCell>> = HashMap::new();
    let mut columns: BTreeSet<(String, String)> = BTreeSet::new();
    for cell in state.cells.iter().filter(|c| cell_ok(c)) {
        let (Some(org), Some((key, name))) = (
            state.orgs.get(&cell.organization_id),
            state.services.get(&cell.service_id),
        ) else {
            continue;
        };
        if !row_ok(org) {
            continue;
        }
        columns.insert((key.clone(), name.clone()));
        by_org.entry(org.id).or_default().insert(
            key.clone(),
            MatrixCell {
                status: cell.status,
                planned_go_live: cell.planned_go_live,
                blocked: cell.blocked,
                wave: cell.wave.clone(),
            },
        );
    }
    if let Some(wanted) = &wanted_services {
        for (key, name) in state.services.values() {
            if wanted.contains(key) {
                columns.insert((key.clone(), name.clone()));
            }
        }
    }
    let cells_filtered = filter.wave.is_some() || filter.status.is_some();
    let mut orgs: Vec<&Org> = state
        .orgs
        .values()
        .filter(|o| row_ok(o))
        .filter(|o| !cells_filtered || by_org.contains_key(&o.id))
        .collect();
    orgs.sort_by_cached_key(|o| state.order_key(o));
    let rows = orgs
        .into_iter()
        .map(|org| MatrixRow {
            administration: org.short_name.clone(),
            name: org.name.clone(),
            kind: org.kind.clone(),
            district: state.district_of(org).map(|d| d.short_name.clone()),
            cells: by_org.remove(&org.id).unwrap_or_default(),
        })
        .collect();
    Ok(Matrix {
        services: columns
            .into_iter()
            .map(|(key, name)| MatrixColumn { key, name })
            .collect(),
        rows,
    })
}

/// The matrix as CSV in the dialect German Excel opens directly: UTF-8 with BOM, `;`, CRLF,
/// formula cells neutralized. Columns: `administration`, `name`, `district`, then one per
/// service (its key) holding the status; the upload reads the same file back.
pub fn to_csv(matrix: &Matrix) -> Result<Vec<u8>, ApiError> {
    let mut out = CsvOut::excel(Vec::new()).map_err(ApiError::internal)?;
    let mut header: Vec<Cell> = vec![
        Cell::Text("administration"),
        Cell::Text("name"),
        Cell::Text("district"),
    ];
    header.extend(matrix.services.iter().map(|s| Cell::Text(&s.key)));
    out.row(header).map_err(ApiError::internal)?;
    for row in &matrix.rows {
        let mut cells: Vec<Cell> = vec![
            Cell::Text(&row.administration),
            Cell::Text(&row.name),
            Cell::Text(row.district.as_deref().unwrap_or("")),
        ];
        cells.extend(matrix.services.iter().map(|s| {
            Cell::Text(
                row.cells
                    .get(&s.key)
                    .map(|c| c.status.as_str())
                    .unwrap_or(""),
            )
        }));
        out.row(cells).map_err(ApiError::internal)?;
    }
    out.finish().map_err(ApiError::internal)
}

/// The colour of a status in the heat map, and its text colour.
fn colour(status: RolloutStatus) -> (&'static str, &'static str) {
    match status {
        RolloutStatus::Planned => ("#e9d5ff", "#2e1065"),
        RolloutStatus::Preparing => ("#fde68a", "#3b2f00"),
        RolloutStatus::TechnicalReady => ("#fdba74", "#3b1d00"),
        RolloutStatus::Testing => ("#93c5fd", "#0b2545"),
        RolloutStatus::Live => ("#16a34a", "#ffffff"),
        RolloutStatus::Paused => ("#dc2626", "#ffffff"),
        RolloutStatus::NotApplicable => ("#f3f4f6", "#6b7280"),
    }
}

/// Text for SVG: `&`, `<`, `>`, quotes escaped, control characters dropped.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Shortens a name to `max` characters with an ellipsis.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// The matrix as an SVG heat map: a legend, the services' names as column heads, the
/// administrations grouped by district, one coloured cell per entry (a dot marks a blocked
/// one, a title gives status, wave and date on hover). Static: no script, no external
/// reference; every text escaped.
pub fn to_svg(matrix: &Matrix, district_names: &HashMap<String, String>) -> String {
    const CELL: usize = 22;
    const LABEL: usize = 300;
    const HEAD: usize = 230;
    const LEGEND: usize = 70;
    let columns = matrix.services.len().max(1);
    // A district heading row before each district's administrations.
    let mut groups = 0;
    let mut last: Option<Option<&String>> = None;
    for row in &matrix.rows {
        if last != Some(row.district.as_ref()) {
            groups += 1;
            last = Some(row.district.as_ref());
        }
    }
    let width = LABEL + columns * CELL + 40;
    let width = width.max(760);
    let height = LEGEND + HEAD + (matrix.rows.len() + groups) * CELL + 30;
    let mut svg = String::with_capacity(200 * matrix.rows.len() * columns.min(20) + 4096);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<title>Rollout matrix</title><rect width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = write!(
        svg,
        r##"<text x="10" y="22" font-size="16" font-weight="bold" fill="#111827">Rollout: {} administrations × {} services</text>"##,
        matrix.rows.len(),
        matrix.services.len()
    );
    // Legend.
    let mut x = 10;
    for status in RolloutStatus::ALL {
        let (fill, _) = colour(status);
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="36" width="14" height="14" fill="{fill}" stroke="#9ca3af"/><text x="{}" y="47" fill="#111827">{}</text>"##,
            x + 18,
            status.as_str()
        );
        if status == RolloutStatus::NotApplicable {
            let _ = write!(
                svg,
                r##"<line x1="{}" y1="49" x2="{}" y2="37" stroke="#9ca3af"/>"##,
                x + 1,
                x + 13
            );
        }
        x += 24 + status.as_str().len() * 7 + 10;
    }
    let _ = write!(
        svg,
        r##"<circle cx="{}" cy="43" r="4" fill="#111827"/><text x="{}" y="47" fill="#111827">blocked</text>"##,
        x + 6,
        x + 14
    );
    // Column heads: service names, rotated.
    let top = LEGEND + HEAD;
    for (i, service) in matrix.services.iter().enumerate() {
        let cx = LABEL + i * CELL + CELL / 2 + 4;
        let _ = write!(
            svg,
            r##"<text x="{cx}" y="{}" transform="rotate(-60 {cx} {})" fill="#111827"><title>{}</title>{}</text>"##,
            top - 6,
            top - 6,
            escape(&service.key),
            escape(&clip(&service.name, 38))
        );
    }
    let mut y = top;
    let mut last: Option<Option<&String>> = None;
    for row in &matrix.rows {
        if last != Some(row.district.as_ref()) {
            last = Some(row.district.as_ref());
            let heading = match &row.district {
                Some(d) => district_names.get(d).cloned().unwrap_or_else(|| d.clone()),
                None => "Kreisfreie Städte".to_string(),
            };
            let _ = write!(
                svg,
                r##"<rect x="0" y="{y}" width="{width}" height="{CELL}" fill="#e5e7eb"/><text x="10" y="{}" font-weight="bold" fill="#111827">{}</text>"##,
                y + 15,
                escape(&heading)
            );
            y += CELL;
        }
        let _ = write!(
            svg,
            r##"<text x="20" y="{}" fill="#111827"><title>{}</title>{}</text>"##,
            y + 15,
            escape(&format!("{} ({})", row.name, row.administration)),
            escape(&clip(&row.name, 42))
        );
        for (i, service) in matrix.services.iter().enumerate() {
            let cx = LABEL + i * CELL;
            match row.cells.get(&service.key) {
                Some(cell) => {
                    let (fill, ink) = colour(cell.status);
                    let mut title =
                        format!("{} – {}: {}", row.name, service.name, cell.status.as_str());
                    if let Some(wave) = &cell.wave {
                        let _ = write!(title, ", {wave}");
                    }
                    if let Some(date) = cell.planned_go_live {
                        let _ = write!(title, ", planned {date}");
                    }
                    if cell.blocked {
                        title.push_str(", blocked");
                    }
                    let _ = write!(
                        svg,
                        r##"<rect x="{cx}" y="{}" width="{}" height="{}" fill="{fill}" stroke="#ffffff"><title>{}</title></rect>"##,
                        y + 1,
                        CELL - 2,
                        CELL - 2,
                        escape(&title)
                    );
                    if cell.status == RolloutStatus::NotApplicable {
                        let _ = write!(
                            svg,
                            r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#9ca3af"/>"##,
                            cx + 2,
                            y + CELL - 3,
                            cx + CELL - 4,
                            y + 3
                        );
                    }
                    if cell.blocked {
                        let _ = write!(
                            svg,
                            r##"<circle cx="{}" cy="{}" r="4" fill="{ink}"/>"##,
                            cx + CELL / 2 - 1,
                            y + CELL / 2
                        );
                    }
                }
                None => {
                    let _ = write!(
                        svg,
                        r##"<rect x="{cx}" y="{}" width="{}" height="{}" fill="none" stroke="#e5e7eb"/>"##,
                        y + 1,
                        CELL - 2,
                        CELL - 2
                    );
                }
            }
        }
        y += CELL;
    }
    svg.push_str("</svg>");
    svg
}

/// The district names by short name, for the SVG's headings.
pub fn district_names(conn: &mut DbConnection) -> Result<HashMap<String, String>, ApiError> {
    Ok(organizations::table
        .filter(organizations::kind.eq(OrganizationKind::District.as_str()))
        .select((organizations::short_name, organizations::name))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// Applies an uploaded matrix (the CSV of [`to_csv`], `;` or `,`): every cell that differs
/// from what is stored changes that entry's status (an entry is created where there was
/// none), through the write path of `PATCH` with its rules and events, in the caller's
/// transaction. Every bad cell is reported as `row N: column` (N the line in the file, the
/// header being row 1); with any, the caller must roll back.
pub fn upload(
    conn: &mut DbConnection,
    settings: &RolloutSettings,
    body: &[u8],
    actor: &Actor,
) -> Result<MatrixUploadReport, ApiError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid("file", "the file is not UTF-8"))?;
    let first = text.lines().next().unwrap_or_default();
    let delimiter = if first.matches(';').count() >= first.matches(',').count() {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ApiError::invalid("row 1", format!("cannot read the header row: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let mut errors = Vec::new();
    let admin_column = headers.iter().position(|h| h == "administration");
    if admin_column.is_none() {
        errors.push(FieldError::new(
            "row 1: administration",
            "the column `administration` (short names) is required",
        ));
    }
    let state = read_state(conn)?;
    let mut service_columns: Vec<(usize, String, i64)> = Vec::new();
    for (i, header) in headers.iter().enumerate() {
        if matches!(
            header.as_str(),
            "administration" | "name" | "district" | "kind"
        ) {
            continue;
        }
        match state.services.iter().find(|(_, (key, _))| key == header) {
            Some((id, (key, _))) => service_columns.push((i, key.clone(), *id)),
            None => errors.push(FieldError::new(
                format!("row 1: {header}"),
                format!("column {} is no service key", i + 1),
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let admin_column = admin_column.unwrap_or_default();
    let current: HashMap<(i64, i64), RolloutStatus> = state
        .cells
        .iter()
        .map(|c| ((c.organization_id, c.service_id), c.status))
        .collect();
    let mut report = MatrixUploadReport {
        cells: 0,
        created: 0,
        updated: 0,
        unchanged: 0,
    };
    for (index, record) in reader.records().enumerate() {
        let row = index + 2;
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(FieldError::new(
                    format!("row {row}"),
                    format!("cannot read: {e}"),
                ));
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let short = record.get(admin_column).unwrap_or_default();
        let admin = state.orgs.values().find(|o| {
            o.short_name.eq_ignore_ascii_case(short)
                && OrganizationKind::parse(&o.kind).is_some_and(OrganizationKind::is_administration)
        });
        let Some(admin) = admin else {
            errors.push(FieldError::new(
                format!("row {row}: administration"),
                format!("there is no municipal administration `{short}`"),
            ));
            continue;
        };
        for (column, key, service) in &service_columns {
            let cell = record.get(*column).unwrap_or_default();
            report.cells += 1;
            let stored = current.get(&(admin.id, *service)).copied();
            let field = format!("row {row}: {key}");
            let wanted = if cell.is_empty() {
                None
            } else {
                match RolloutStatus::parse(&cell.to_lowercase()) {
                    Some(status) => Some(status),
                    None => {
                        errors.push(FieldError::new(
                            field,
                            format!(
                                "`{cell}` ({}) is no status; use one of {}",
                                admin.short_name,
                                RolloutStatus::NAMES.join(", ")
                            ),
                        ));
                        continue;
                    }
                }
            };
            match (stored, wanted) {
                (None, None) => report.unchanged += 1,
                (Some(_), None) => errors.push(FieldError::new(
                    field,
                    format!(
                        "empty, but {} has an entry: set `not_applicable` rather than removing it",
                        admin.short_name
                    ),
                )),
                (Some(old), Some(new)) if old == new => report.unchanged += 1,
                (_, Some(new)) => {
                    let changes = EntryChanges {
                        status: Some(new),
                        ..EntryChanges::default()
                    };
                    match entries::write(
                        conn,
                        settings,
                        key,
                        &admin.short_name,
                        &changes,
                        actor,
                        Precondition::ANY,
                        true,
                    ) {
                        Ok((_, Outcome::Created)) => report.created += 1,
                        Ok((_, Outcome::Updated)) => report.updated += 1,
                        Ok((_, Outcome::Unchanged)) => report.unchanged += 1,
                        Err(ApiError::Validation(problems)) => {
                            for problem in problems {
                                errors.push(FieldError::new(
                                    field.clone(),
                                    format!(
                                        "{} {}: {}",
                                        admin.short_name, problem.field, problem.message
                                    ),
                                ));
                            }
                        }
                        Err(ApiError::Forbidden(message)) => {
                            errors.push(FieldError::new(field.clone(), message))
                        }
                        Err(other) => return Err(other),
                    }
                }
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(report)
}

/// Progress groups by (sort key, key): name and cells.
type Groups<'a> = BTreeMap<(String, Option<String>), (String, Vec<&'a Cellish>)>;

/// The progress figures, grouped `by`; `service` narrows to one service.
pub fn progress(
    conn: &mut DbConnection,
    by: ProgressBy,
    service: Option<&str>,
) -> Result<Progress, ApiError> {
    let state = read_state(conn)?;
    let only = match service {
        Some(key) => Some(
            state
                .services
                .iter()
                .find(|(_, (k, _))| k == key.trim())
                .map(|(id, _)| *id)
                .ok_or_else(|| {
                    ApiError::bad_field("service", format!("there is no service `{}`", key.trim()))
                })?,
        ),
        None => None,
    };
    let today = crate::items::queries::today();
    let mut groups: Groups = BTreeMap::new();
    let mut per_service: BTreeMap<String, Vec<&Cellish>> = BTreeMap::new();
    let mut all = Vec::new();
    for cell in state
        .cells
        .iter()
        .filter(|c| only.is_none_or(|s| c.service_id == s))
    {
        let Some((service_key, service_name)) = state.services.get(&cell.service_id) else {
            continue;
        };
        all.push(cell);
        per_service
            .entry(service_key.clone())
            .or_default()
            .push(cell);
        let (sort, key, name) = match by {
            ProgressBy::Service => (
                service_key.clone(),
                Some(service_key.clone()),
                service_name.clone(),
            ),
            ProgressBy::District => {
                let district = state
                    .orgs
                    .get(&cell.organization_id)
                    .and_then(|o| state.district_of(o));
                match district {
                    Some(d) => (d.name.clone(), Some(d.short_name.clone()), d.name.clone()),
                    None => (String::new(), None, "Kreisfreie Städte".to_string()),
                }
            }
            ProgressBy::Wave => {
                let wave = cell.wave.clone().unwrap_or_else(|| "(no wave)".into());
                let key = format!("{service_key}/{wave}");
                (key.clone(), Some(key), format!("{service_name} – {wave}"))
            }
        };
        groups
            .entry((sort, key))
            .or_insert_with(|| (name, Vec::new()))
            .1
            .push(cell);
    }
    let figures = |cells: &[&Cellish]| {
        let mut f = ProgressFigures {
            counts: zero_counts(),
            ..ProgressFigures::default()
        };
        for cell in cells {
            *f.counts
                .entry(cell.status.as_str().to_string())
                .or_default() += 1;
            f.total += 1;
            if cell.status != RolloutStatus::NotApplicable {
                f.applicable += 1;
            }
            if cell.status == RolloutStatus::Live {
                f.live += 1;
            }
            if is_overdue(cell.status, cell.planned_go_live, today) {
                f.overdue += 1;
            }
            if cell.blocked {
                f.blocked += 1;
            }
        }
        f.live_share = (f.applicable > 0).then(|| f.live as f64 / f.applicable as f64);
        f.live_everywhere = f.applicable > 0 && f.live == f.applicable;
        f
    };
    Ok(Progress {
        by,
        groups: groups
            .into_iter()
            .map(|((_, key), (name, cells))| ProgressGroup {
                key,
                name,
                figures: figures(&cells),
            })
            .collect(),
        total: figures(&all),
        services_live_everywhere: per_service
            .into_iter()
            .filter(|(_, cells)| figures(cells).live_everywhere)
            .map(|(key, _)| key)
            .collect(),
    })
}
