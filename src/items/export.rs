//! `GET /api/v1/items` as CSV (`Accept: text/csv`): every item the filters select, in the
//! list's order, one row each, through the kernel's CSV writer (formula cells neutralized).

use crate::common::actor::Visibility;
use crate::common::csv_out::{Cell, CsvOut, Dialect};
use crate::common::db::DbConnection;
use crate::common::error::ApiError;
use crate::items::types::{Item, ItemFilter};

/// The most rows one export writes; more is a 422 asking for narrower filters.
pub const MAX_EXPORT_ROWS: usize = 100_000;

/// The columns of the export, in order (documented in the README and the OpenAPI document).
pub const COLUMNS: &[&str] = &[
    "key",
    "type",
    "title",
    "board",
    "column",
    "category",
    "service",
    "priority",
    "labels",
    "accountable",
    "responsible",
    "due_date",
    "created_at",
    "updated_at",
    "started_at",
    "done_at",
    "severity",
];

/// Every item `filter` selects (its `limit` and `cursor` ignored) as CSV in `dialect`.
pub fn items_csv(
    conn: &mut DbConnection,
    filter: &ItemFilter,
    visibility: Visibility,
    me: i64,
    dialect: Dialect,
) -> Result<Vec<u8>, ApiError> {
    let failed = |e: &dyn std::fmt::Display| ApiError::internal(format!("writing CSV: {e}"));
    let mut out = CsvOut::with_dialect(Vec::new(), dialect).map_err(|e| failed(&e))?;
    out.row(COLUMNS.iter().map(|c| Cell::Text(c)))
        .map_err(|e| failed(&e))?;
    let mut page_filter = ItemFilter {
        limit: Some(500),
        cursor: None,
        ..filter.clone()
    };
    let mut written = 0;
    loop {
        let page = Item::list(conn, &page_filter, visibility, me)?;
        written += page.items.len();
        if written > MAX_EXPORT_ROWS {
            return Err(ApiError::invalid(
                "board",
                format!("the export is limited to {MAX_EXPORT_ROWS} items: narrow the filters"),
            ));
        }
        for item in &page.items {
            let labels = item.labels.join("|");
            let responsible: Vec<&str> = item
                .raci
                .responsible
                .iter()
                .map(|p| p.email.as_str())
                .collect();
            let responsible = responsible.join("|");
            let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or(Cell::Empty, Cell::Time);
            out.row([
                Cell::Text(&item.key),
                Cell::Text(item.item_type.as_str()),
                Cell::Text(&item.title),
                Cell::Text(&item.board),
                Cell::Text(&item.column.name),
                Cell::Text(item.column.category.as_str()),
                item.service.as_deref().map_or(Cell::Empty, Cell::Text),
                Cell::Text(item.priority.as_str()),
                Cell::Text(&labels),
                item.raci
                    .accountable
                    .as_ref()
                    .map_or(Cell::Empty, |p| Cell::Text(&p.email)),
                Cell::Text(&responsible),
                item.due_date.map_or(Cell::Empty, Cell::Date),
                Cell::Time(item.created_at),
                Cell::Time(item.updated_at),
                time(item.started_at),
                time(item.done_at),
                item.incident
                    .as_ref()
                    .map_or(Cell::Empty, |i| Cell::Text(i.severity.as_str())),
            ])
            .map_err(|e| failed(&e))?;
        }
        match page.next_cursor {
            Some(next) => page_filter.cursor = Some(next),
            None => break,
        }
    }
    out.finish().map_err(|e| failed(&e))
}
