//! Bulk import of organizations (`opsboard import organizations FILE`,
//! `POST /api/v1/organizations/import`): a CSV file with the columns [`CSV_COLUMNS`] or a JSON
//! array of the bodies `POST /api/v1/organizations` takes.
//!
//! Idempotent by short name (regardless of case, as organizations are addressed): a row equal
//! to the stored organization changes nothing, a changed row updates its name, kind and contact
//! address, a new short name creates one. A row is the whole organization as far as the file
//! has columns: an empty `contact_email` cell removes the stored one, a column the file does not
//! have keeps what is stored. All-or-nothing, with every problem's line and column, like the
//! import of services.
//!
//! Municipal administrations (`data/reference/`): `district` (or `parent`) names the district
//! by short name or name, `members` lists an Amt's member municipalities separated by `|`, and
//! the kinds of the state's lists are understood (`amtsfreie_gemeinde` is a `municipality`,
//! `kreisfreie_stadt` a `city`, `landkreis` a `district`). A file without a `kind` column
//! (the list of districts) takes the kind from the official key: 5 digits a district, 9 an
//! Amt.

use std::collections::HashMap;

use utoipa::ToSchema;

use super::{
    ImportError, ImportFormat, ImportProblem, ImportReport, MAX_IMPORT_ROWS, Parsed, parse_json,
    problem, read_csv,
};
use crate::catalog::organizations::{
    NewOrganization, Organization, OrganizationChanges, OrganizationKind,
};
use crate::catalog::services::UpsertOutcome;
use crate::common::actor::Actor;
use crate::common::version::Precondition;
use crate::db::DbConnection;
use crate::error::ApiError;

/// The CSV columns; `short_name`, `name` and `kind` are required.
pub const CSV_COLUMNS: &[&str] = &[
    "short_name",
    "name",
    "kind",
    "contact_email",
    "district",
    "parent",
    "seat",
    "official_key",
    "members",
];

/// A kind as a file may write it: the API's names and those of the state's lists.
fn parse_kind(text: &str) -> Option<OrganizationKind> {
    match text.to_lowercase().as_str() {
        "amtsfreie_gemeinde" | "gemeinde" => Some(OrganizationKind::Municipality),
        "kreisfreie_stadt" => Some(OrganizationKind::City),
        "landkreis" => Some(OrganizationKind::District),
        other => OrganizationKind::parse(other),
    }
}

/// The kind an official key implies, where it implies one.
fn kind_of_key(key: &str) -> Option<OrganizationKind> {
    match key.trim().len() {
        5 => Some(OrganizationKind::District),
        9 => Some(OrganizationKind::Amt),
        _ => None,
    }
}

/// One row of an import: the organization and whether the file had a `contact_email` (a
/// column it lacks keeps the stored address).
#[derive(Debug, Clone)]
pub struct OrganizationRowInput {
    /// The organization as the row describes it.
    pub form: NewOrganization,
    /// Whether the file has a `contact_email` column (JSON: always).
    pub has_contact_email: bool,
}

/// The JSON body of an import: an array of at most [`MAX_IMPORT_ROWS`] organizations. Only its
/// schema is used (the import reads JSON itself, to report every row's problems).
pub struct OrganizationImport;

// Written by hand: the derive cannot put `maxItems` on a top-level array.
impl utoipa::PartialSchema for OrganizationImport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name("NewOrganization"))
            .max_items(Some(MAX_IMPORT_ROWS))
            .description(Some(
                "The organizations to create or update, at most 10,000.",
            ))
            .into()
    }
}

impl ToSchema for OrganizationImport {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            <NewOrganization as ToSchema>::name().into_owned(),
            <NewOrganization as utoipa::PartialSchema>::schema(),
        ));
        <NewOrganization as ToSchema>::schemas(schemas);
    }
}

/// Parses a file of organizations into rows; every problem is collected, none stops the
/// reading. A row whose `kind` cannot be read is kept (as `other`), so that [`apply`] reports
/// the row's other faults too.
pub fn parse(format: ImportFormat, body: &[u8]) -> Parsed<OrganizationRowInput> {
    match format {
        ImportFormat::Json => {
            let parsed: Parsed<NewOrganization> = parse_json(body, "organizations");
            Parsed {
                rows: parsed
                    .rows
                    .into_iter()
                    .map(|(line, form)| {
                        (
                            line,
                            OrganizationRowInput {
                                form,
                                has_contact_email: true,
                            },
                        )
                    })
                    .collect(),
                problems: parsed.problems,
            }
        }
        ImportFormat::Csv => parse_csv(body),
    }
}

fn parse_csv(body: &[u8]) -> Parsed<OrganizationRowInput> {
    let mut problems = Vec::new();
    // The header as written (the reader drops it when any column is wrong): `kind` is
    // required unless the official keys can say it.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let header_line =
        String::from_utf8_lossy(body.split(|b| *b == b'\n').next().unwrap_or_default())
            .to_lowercase();
    let delimiter = if header_line.matches(';').count() > header_line.matches(',').count() {
        ';'
    } else {
        ','
    };
    let written: Vec<&str> = header_line
        .split(delimiter)
        .map(|h| h.trim().trim_matches('"'))
        .collect();
    let has = |name: &str| written.contains(&name);
    if !has("kind") && !has("official_key") {
        problems.push(problem(1, "kind", "this column is required".into()));
    }
    let (has_kind, has_contact_email) = (has("kind"), has("contact_email"));
    let table = read_csv(body, CSV_COLUMNS, &["short_name", "name"], &mut problems);
    let mut rows = Vec::new();
    for (line, record) in table.records {
        let mut row = NewOrganization {
            short_name: String::new(),
            name: String::new(),
            kind: OrganizationKind::Other,
            contact_email: None,
            parent: None,
            official_key: None,
            seat: None,
            members: None,
        };
        for (column, cell) in table.headers.iter().zip(record.iter()) {
            let cell = cell.trim();
            match column.as_str() {
                "short_name" => row.short_name = cell.to_string(),
                "name" => row.name = cell.to_string(),
                "kind" => match parse_kind(cell) {
                    Some(kind) => row.kind = kind,
                    None => problems.push(problem(
                        line,
                        column,
                        format!(
                            "must be one of {} (or amtsfreie_gemeinde, kreisfreie_stadt, landkreis)",
                            OrganizationKind::ALL
                                .map(OrganizationKind::as_str)
                                .join(", ")
                        ),
                    )),
                },
                "district" | "parent" => row.parent = Some(cell.to_string()),
                "seat" => row.seat = Some(cell.to_string()),
                "official_key" => row.official_key = Some(cell.to_string()),
                "members" => {
                    row.members = Some(
                        cell.split('|')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(str::to_string)
                            .collect(),
                    )
                }
                _ => row.contact_email = (!cell.is_empty()).then(|| cell.to_string()),
            }
        }
        if !has_kind {
            match row.official_key.as_deref().and_then(kind_of_key) {
                Some(kind) => row.kind = kind,
                None => problems.push(problem(
                    line,
                    "kind",
                    "without a kind column, the official key must say it (5 digits: a district, 9: an Amt)".into(),
                )),
            }
        }
        rows.push((
            line,
            OrganizationRowInput {
                form: row,
                has_contact_email,
            },
        ));
    }
    Parsed { rows, problems }
}

/// Creates or updates every row through [`Organization::create`] and [`Organization::update`]
/// (their checks, history and versions), in the caller's transaction. With any problem it
/// answers [`ImportError::Invalid`] with all of them, and the caller's transaction must roll
/// back what was written. `progress` is called after each row.
pub fn apply(
    conn: &mut DbConnection,
    parsed: &Parsed<OrganizationRowInput>,
    actor: &Actor,
    progress: &mut dyn FnMut(usize),
) -> Result<ImportReport, ImportError> {
    let mut problems = parsed.problems.clone();
    let mut report = ImportReport::new(parsed.rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, (line, input)) in parsed.rows.iter().enumerate() {
        let row = &input.form;
        let short_name = row.short_name.trim();
        if let Some(first) = seen.insert(short_name.to_lowercase(), *line) {
            problems.push(problem(
                *line,
                "short_name",
                format!("`{short_name}` appears earlier in the file (line {first})"),
            ));
            continue;
        }
        let written = match Organization::find(conn, short_name) {
            Err(ApiError::NotFound(_)) => {
                Organization::create(conn, row.clone(), actor).map(|_| UpsertOutcome::Created)
            }
            Err(other) => return Err(other.into()),
            Ok(stored) => {
                let changes = OrganizationChanges {
                    name: Some(row.name.clone()),
                    kind: Some(row.kind),
                    contact_email: input.has_contact_email.then(|| row.contact_email.clone()),
                    parent: row
                        .parent
                        .clone()
                        .map(|p| Some(p).filter(|p| !p.is_empty())),
                    official_key: row
                        .official_key
                        .clone()
                        .map(|k| Some(k).filter(|k| !k.is_empty())),
                    seat: row.seat.clone().map(|s| Some(s).filter(|s| !s.is_empty())),
                    members: row.members.clone(),
                };
                Organization::update(conn, short_name, &changes, actor, Precondition(None)).map(
                    |after| {
                        // The update writes nothing (and keeps the version) when nothing differs.
                        if after.version == stored.version {
                            UpsertOutcome::Unchanged
                        } else {
                            UpsertOutcome::Updated
                        }
                    },
                )
            }
        };
        match written {
            Ok(outcome) => report.count(short_name, outcome),
            // The checks run before any statement, so the transaction is still usable and the
            // next rows are checked too.
            Err(ApiError::Validation(errors)) => {
                problems.extend(errors.into_iter().map(|e| ImportProblem {
                    line: *line,
                    column: e.field,
                    message: e.message,
                }))
            }
            Err(other) => return Err(other.into()),
        }
        progress(i + 1);
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(ImportError::Invalid(problems));
    }
    Ok(report)
}
