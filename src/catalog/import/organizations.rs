//! Bulk import of organizations (`opsboard import organizations FILE`,
//! `POST /api/v1/organizations/import`): a CSV file with the columns [`CSV_COLUMNS`] or a JSON
//! array of the bodies `POST /api/v1/organizations` takes.
//!
//! Idempotent by short name (regardless of case, as organizations are addressed): a row equal
//! to the stored organization changes nothing, a changed row updates its name, kind and contact
//! address, a new short name creates one. A row is the whole organization: an empty
//! `contact_email` removes the stored one. All-or-nothing, with every problem's line and
//! column, like the import of services.

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
pub const CSV_COLUMNS: &[&str] = &["short_name", "name", "kind", "contact_email"];

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
pub fn parse(format: ImportFormat, body: &[u8]) -> Parsed<NewOrganization> {
    match format {
        ImportFormat::Json => parse_json(body, "organizations"),
        ImportFormat::Csv => parse_csv(body),
    }
}

fn parse_csv(body: &[u8]) -> Parsed<NewOrganization> {
    let mut problems = Vec::new();
    let table = read_csv(
        body,
        CSV_COLUMNS,
        &["short_name", "name", "kind"],
        &mut problems,
    );
    let mut rows = Vec::new();
    for (line, record) in table.records {
        let mut row = NewOrganization {
            short_name: String::new(),
            name: String::new(),
            kind: OrganizationKind::Other,
            contact_email: None,
        };
        for (column, cell) in table.headers.iter().zip(record.iter()) {
            let cell = cell.trim();
            match column.as_str() {
                "short_name" => row.short_name = cell.to_string(),
                "name" => row.name = cell.to_string(),
                "kind" => match OrganizationKind::parse(&cell.to_lowercase()) {
                    Some(kind) => row.kind = kind,
                    None => problems.push(problem(
                        line,
                        column,
                        format!(
                            "must be one of {}",
                            OrganizationKind::ALL
                                .map(OrganizationKind::as_str)
                                .join(", ")
                        ),
                    )),
                },
                _ => row.contact_email = (!cell.is_empty()).then(|| cell.to_string()),
            }
        }
        rows.push((line, row));
    }
    Parsed { rows, problems }
}

/// Creates or updates every row through [`Organization::create`] and [`Organization::update`]
/// (their checks, history and versions), in the caller's transaction. With any problem it
/// answers [`ImportError::Invalid`] with all of them, and the caller's transaction must roll
/// back what was written. `progress` is called after each row.
pub fn apply(
    conn: &mut DbConnection,
    parsed: &Parsed<NewOrganization>,
    actor: &Actor,
    progress: &mut dyn FnMut(usize),
) -> Result<ImportReport, ImportError> {
    let mut problems = parsed.problems.clone();
    let mut report = ImportReport::new(parsed.rows.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, (line, row)) in parsed.rows.iter().enumerate() {
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
                    contact_email: Some(row.contact_email.clone()),
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
