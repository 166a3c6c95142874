//! Bulk import of online services from CSV (as Excel or Baserow export it: `;` or `,`
//! separated, UTF-8 with or without BOM) or JSON (an array of service objects).
//!
//! Cells are stored as given, also those that a spreadsheet would run as a formula (`=`, `+`,
//! `-`, `@`, …): the catalogue is data, not a sheet. Whatever writes CSV goes through
//! [`crate::common::csv_out`], which neutralizes such cells.
//!
//! Idempotent by `key`: a row equal to the stored service changes nothing, a changed row updates
//! that service, a new key creates one. All-or-nothing: when any row is invalid, nothing is
//! written and every bad row is reported with its line, column and reason.
//!
//! Organizations import the same way ([`organizations`]), by short name; the reading of files,
//! the problems and the report are shared.

pub mod organizations;

use std::collections::HashSet;

use chrono::NaiveDate;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::services::{
    Lifecycle, OrganizationIndex, Service, ServiceInput, ServiceKind, UpsertOutcome,
};
use crate::common::actor::Actor;
use crate::common::db::DbConnection;
use crate::common::error::{ApiError, FieldError};

/// The CSV columns, in the order of the sample file. `key`, `name` and `kind` are required;
/// list cells (`leika_keys`, `tags`) separate values by `|`, `,`, `;` or spaces.
pub const CSV_COLUMNS: &[&str] = &[
    "key",
    "name",
    "description",
    "lifecycle",
    "kind",
    "maturity_level",
    "ozg_id",
    "leika_keys",
    "topic",
    "operator",
    "responsible",
    "url",
    "go_live_date",
    "tags",
];

/// The most services one import may hold, CSV rows or JSON entries: the whole OZG catalogue
/// (about 575 services) many times over, yet a bound on the work of one request.
pub const MAX_IMPORT_ROWS: usize = 10_000;

/// The JSON body of an import: an array of at most [`MAX_IMPORT_ROWS`] services. Only its
/// schema is used (the import reads JSON itself, to report every row's problems).
pub struct ServiceImport;

// Written by hand: the derive cannot put `maxItems` on a top-level array.
impl utoipa::PartialSchema for ServiceImport {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ArrayBuilder::new()
            .items(utoipa::openapi::Ref::from_schema_name("ServiceInput"))
            .max_items(Some(MAX_IMPORT_ROWS))
            .description(Some("The services to create or update, at most 10,000."))
            .into()
    }
}

impl ToSchema for ServiceImport {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        schemas.push((
            <ServiceInput as ToSchema>::name().into_owned(),
            <ServiceInput as utoipa::PartialSchema>::schema(),
        ));
        <ServiceInput as ToSchema>::schemas(schemas);
    }
}

/// One problem in an import file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImportProblem {
    /// CSV: the line in the file (the header is line 1). JSON: the entry's position in the
    /// array, from 1.
    pub line: usize,
    /// The column (field) at fault, or `row` for the row as a whole.
    pub column: String,
    /// What is wrong.
    pub message: String,
}

/// What an import did, one row (service or organization) at a time.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// Rows read.
    pub total: usize,
    /// Rows created.
    pub created: usize,
    /// Rows that changed what was stored.
    pub updated: usize,
    /// Rows equal to what was stored.
    pub unchanged: usize,
    /// Each row's key and outcome, in file order.
    pub results: Vec<ImportResult>,
}

impl ImportReport {
    fn new(total: usize) -> ImportReport {
        ImportReport {
            total,
            created: 0,
            updated: 0,
            unchanged: 0,
            results: Vec::new(),
        }
    }

    /// Counts one written row.
    fn count(&mut self, key: &str, outcome: UpsertOutcome) {
        match outcome {
            UpsertOutcome::Created => self.created += 1,
            UpsertOutcome::Updated => self.updated += 1,
            UpsertOutcome::Unchanged => self.unchanged += 1,
        }
        let outcome = serde_json::to_value(outcome)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        self.results.push(ImportResult {
            key: key.to_string(),
            outcome,
        });
    }
}

/// The outcome for one row.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportResult {
    /// The service's key (the organization's short name).
    pub key: String,
    /// `created`, `updated` or `unchanged`.
    pub outcome: String,
}

/// Why an import was refused as a whole.
#[derive(Debug)]
pub enum ImportError {
    /// Invalid rows: nothing was written.
    Invalid(Vec<ImportProblem>),
    /// Anything else (storage).
    Other(ApiError),
}

impl From<ApiError> for ImportError {
    fn from(error: ApiError) -> Self {
        ImportError::Other(error)
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(error: diesel::result::Error) -> Self {
        ImportError::Other(error.into())
    }
}

impl From<ImportError> for ApiError {
    fn from(error: ImportError) -> Self {
        match error {
            ImportError::Other(e) => e,
            ImportError::Invalid(problems) => ApiError::Validation(
                problems
                    .into_iter()
                    .map(|p| FieldError::new(format!("line {}: {}", p.line, p.column), p.message))
                    .collect(),
            ),
        }
    }
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma- or semicolon-separated values with a header row.
    Csv,
    /// A JSON array of service objects.
    Json,
}

impl ImportFormat {
    /// Guesses the format from a file name or content type, then from the first character.
    pub fn detect(hint: &str, body: &[u8]) -> ImportFormat {
        let hint = hint.to_ascii_lowercase();
        if hint.ends_with(".json") || hint.contains("json") {
            return ImportFormat::Json;
        }
        if hint.ends_with(".csv") || hint.contains("csv") {
            return ImportFormat::Csv;
        }
        let first = strip_bom(body).iter().find(|b| !b.is_ascii_whitespace());
        if matches!(first, Some(b'[') | Some(b'{')) {
            ImportFormat::Json
        } else {
            ImportFormat::Csv
        }
    }

    /// The format a request body declares in its `Content-Type`; 415 for any other type.
    pub fn from_content_type(content_type: &str) -> Result<ImportFormat, ApiError> {
        match content_type.to_ascii_lowercase().as_str() {
            "text/csv" | "application/csv" => Ok(ImportFormat::Csv),
            "application/json" => Ok(ImportFormat::Json),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "Send text/csv or application/json, not `{}`.",
                if other.is_empty() { "none" } else { other }
            ))),
        }
    }
}

fn strip_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// A parsed file: the rows (each with its line number) and the problems found while reading
/// them. Rows with a cell that could not be read are kept, so that [`apply`] reports the
/// row's other faults too.
#[derive(Debug)]
pub struct Parsed<T = ServiceInput> {
    /// The rows read.
    pub rows: Vec<(usize, T)>,
    /// Problems found while reading.
    pub problems: Vec<ImportProblem>,
}

impl<T> Default for Parsed<T> {
    fn default() -> Self {
        Parsed {
            rows: Vec::new(),
            problems: Vec::new(),
        }
    }
}

/// A parser of an import file: [`parse`] for services, [`organizations::parse`].
pub type ParseFn<T> = fn(ImportFormat, &[u8]) -> Parsed<T>;

/// A writer of parsed rows in the caller's transaction: [`apply`] for services,
/// [`organizations::apply`]. Its arguments: the rows, the acting user, a progress callback.
pub type ApplyFn<T> = fn(
    &mut DbConnection,
    &Parsed<T>,
    &Actor,
    &mut dyn FnMut(usize),
) -> Result<ImportReport, ImportError>;

/// Parses a file of services into rows; every problem is collected, none stops the reading.
pub fn parse(format: ImportFormat, body: &[u8]) -> Parsed {
    match format {
        ImportFormat::Json => parse_json(strip_bom(body), "services"),
        ImportFormat::Csv => parse_csv(strip_bom(body)),
    }
}

/// Reads a JSON array of at most [`MAX_IMPORT_ROWS`] entries of `T` (`what` names them in
/// the message when the file is no such array); each entry's problems are its own.
fn parse_json<T: DeserializeOwned>(body: &[u8], what: &str) -> Parsed<T> {
    let body = strip_bom(body);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let values =
        crate::common::parse::at_most::<MAX_IMPORT_ROWS, _, serde_json::Value>(&mut deserializer)
            .and_then(|values| deserializer.end().map(|()| values));
    let values: Vec<serde_json::Value> = match values {
        Ok(values) => values,
        Err(e) => {
            let message = format!("not a JSON array of at most {MAX_IMPORT_ROWS} {what}: {e}");
            return Parsed {
                rows: Vec::new(),
                problems: vec![ImportProblem {
                    line: 0,
                    column: "file".into(),
                    message,
                }],
            };
        }
    };
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    for (i, value) in values.into_iter().enumerate() {
        let text = value.to_string();
        match crate::common::parse::parse_json::<T>(text.as_bytes()) {
            Ok(input) => rows.push((i + 1, input)),
            Err(ApiError::Validation(errors)) => {
                problems.extend(errors.into_iter().map(|e| ImportProblem {
                    line: i + 1,
                    column: e.field,
                    message: e.message,
                }))
            }
            Err(other) => problems.push(ImportProblem {
                line: i + 1,
                column: "row".into(),
                message: other.problem().detail,
            }),
        }
    }
    Parsed { rows, problems }
}

fn split_list(cell: &str) -> Vec<String> {
    cell.split(|c: char| c == '|' || c == ',' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn problem(line: usize, column: &str, message: String) -> ImportProblem {
    ImportProblem {
        line,
        column: column.to_string(),
        message,
    }
}

/// A CSV file read as far as every importer reads it: the header (lower-case names) and the
/// non-empty records with their line numbers.
struct CsvTable {
    headers: Vec<String>,
    records: Vec<(usize, csv::StringRecord)>,
}

/// Reads a CSV file with a header row of `columns` (each at most once, `required` ones
/// present), `;` or `,` separated, whichever the header holds more of. Problems go to
/// `problems`; with a bad header, no record is read.
fn read_csv(
    body: &[u8],
    columns: &[&str],
    required: &[&str],
    problems: &mut Vec<ImportProblem>,
) -> CsvTable {
    let body = strip_bom(body);
    let mut table = CsvTable {
        headers: Vec::new(),
        records: Vec::new(),
    };
    let header_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let semicolons = header_line.iter().filter(|b| **b == b';').count();
    let commas = header_line.iter().filter(|b| **b == b',').count();
    let delimiter = if semicolons > commas { b';' } else { b',' };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_lowercase()).collect(),
        Err(e) => {
            problems.push(problem(
                1,
                "header",
                format!("cannot read the header row: {e}"),
            ));
            return table;
        }
    };
    let before = problems.len();
    for (i, name) in headers.iter().enumerate() {
        if !columns.contains(&name.as_str()) {
            problems.push(problem(
                1,
                name,
                format!("column {} is not one of {}", i + 1, columns.join(", ")),
            ));
        } else if let Some(first) = headers[..i].iter().position(|h| h == name) {
            // Otherwise the later cell would silently win over the earlier one.
            problems.push(problem(
                1,
                name,
                format!(
                    "column {} repeats column {}: each column may appear once",
                    i + 1,
                    first + 1
                ),
            ));
        }
    }
    for required in required {
        if !headers.iter().any(|h| h == required) {
            problems.push(problem(1, required, "this column is required".into()));
        }
    }
    if problems.len() > before {
        return table;
    }
    for (read, record) in reader.records().enumerate() {
        if read == MAX_IMPORT_ROWS {
            problems.push(problem(
                0,
                "file",
                format!("holds more than {MAX_IMPORT_ROWS} rows; split it into several imports"),
            ));
            break;
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e
                    .position()
                    .map(|p| usize::try_from(p.line()).unwrap_or(0))
                    .unwrap_or(0);
                problems.push(problem(line, "row", format!("cannot read the row: {e}")));
                continue;
            }
        };
        let line = record
            .position()
            .map(|p| usize::try_from(p.line()).unwrap_or(0))
            .unwrap_or(0);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() > headers.len() {
            problems.push(problem(
                line,
                "row",
                format!("has {} cells, the header {}", record.len(), headers.len()),
            ));
            continue;
        }
        table.records.push((line, record));
    }
    table.headers = headers;
    table
}

fn parse_csv(body: &[u8]) -> Parsed {
    let mut problems = Vec::new();
    let CsvTable { headers, records } =
        read_csv(body, CSV_COLUMNS, &["key", "name", "kind"], &mut problems);
    let mut rows = Vec::new();
    for (line, record) in records {
        let mut input = ServiceInput::default();
        for (column, cell) in headers.iter().zip(record.iter()) {
            let cell = cell.trim();
            let optional = || (!cell.is_empty()).then(|| cell.to_string());
            match column.as_str() {
                "key" => input.key = cell.to_string(),
                "name" => input.name = cell.to_string(),
                "description" => input.description = cell.to_string(),
                "lifecycle" if cell.is_empty() => {}
                "lifecycle" => match Lifecycle::parse(&cell.to_lowercase()) {
                    Some(l) => input.lifecycle = l,
                    None => problems.push(problem(
                        line,
                        column,
                        format!("must be one of {}", Lifecycle::NAMES.join(", ")),
                    )),
                },
                "kind" if cell.is_empty() => {}
                "kind" => match ServiceKind::parse(&cell.to_lowercase()) {
                    Some(k) => input.kind = Some(k),
                    None => problems.push(problem(
                        line,
                        column,
                        format!("must be one of {}", ServiceKind::NAMES.join(", ")),
                    )),
                },
                "maturity_level" if cell.is_empty() => {}
                "maturity_level" => match cell.parse::<i16>() {
                    Ok(level) => input.maturity_level = level,
                    Err(_) => {
                        problems.push(problem(line, column, "must be a number from 0 to 4".into()))
                    }
                },
                "ozg_id" => input.ozg_id = optional(),
                "leika_keys" => input.leika_keys = split_list(cell),
                "topic" => input.topic = optional(),
                "operator" => input.operator = optional(),
                "responsible" => input.responsible = optional(),
                "url" => input.url = optional(),
                "go_live_date" if cell.is_empty() => {}
                "go_live_date" => match NaiveDate::parse_from_str(cell, "%Y-%m-%d")
                    .or_else(|_| NaiveDate::parse_from_str(cell, "%d.%m.%Y"))
                {
                    Ok(date) => input.go_live_date = Some(date),
                    Err(_) => problems.push(problem(
                        line,
                        column,
                        "must be a date YYYY-MM-DD (or DD.MM.YYYY)".into(),
                    )),
                },
                _ => input.tags = split_list(cell),
            }
        }
        rows.push((line, input));
    }
    Parsed { rows, problems }
}

/// Validates every row, then writes them all in the caller's transaction, or nothing at all.
/// `progress` is called after each written row.
pub fn apply(
    conn: &mut DbConnection,
    parsed: &Parsed,
    actor: &Actor,
    progress: &mut dyn FnMut(usize),
) -> Result<ImportReport, ImportError> {
    let rows = &parsed.rows;
    let orgs = OrganizationIndex::load(conn)?;
    let mut problems = parsed.problems.clone();
    // A cell that could not be read is reported once, not again by validation.
    let unreadable: HashSet<(usize, String)> = problems
        .iter()
        .map(|p| (p.line, p.column.clone()))
        .collect();
    let mut resolved = Vec::with_capacity(rows.len());
    let mut seen = HashSet::new();
    for (line, input) in rows {
        match input.validate(&orgs) {
            Ok(service) => {
                if !seen.insert(input.key.trim().to_string()) {
                    problems.push(ImportProblem {
                        line: *line,
                        column: "key".into(),
                        message: format!("`{}` appears earlier in the file", input.key.trim()),
                    });
                }
                resolved.push(service);
            }
            Err(errors) => problems.extend(
                errors
                    .into_iter()
                    .filter(|e| !unreadable.contains(&(*line, e.field.clone())))
                    .map(|e| ImportProblem {
                        line: *line,
                        column: e.field,
                        message: e.message,
                    }),
            ),
        }
    }
    if !problems.is_empty() {
        problems.sort_by_key(|p| p.line);
        return Err(ImportError::Invalid(problems));
    }
    let mut report = ImportReport::new(rows.len());
    for (i, (service, (_, input))) in resolved.iter().zip(rows).enumerate() {
        let (outcome, _) = Service::upsert(conn, service, &orgs, actor, false)?;
        report.count(input.key.trim(), outcome);
        progress(i + 1);
    }
    Ok(report)
}
