//! The flow report's charts as SVG, drawn on the server with plotters' SVG backend: the
//! cumulative flow, cycle time (scatter with dashed percentile lines), weekly throughput and
//! aging. Each has a title with the board, the range and "Stand: <asof>", axis titles with
//! units, a legend in stack order, German number and date formats (`lang=de`, the default)
//! or English ones, an empty-state message, `<title>` and `<desc>` for screen readers, the
//! Okabe–Ito palette (safe for colour-blind readers), and no script or external resource.

use chrono::{Duration, NaiveDate, TimeZone};
use plotters::prelude::*;

use crate::common::error::ApiError;
use crate::reports::flow::{FlowReport, Lang};

/// Width and height of every chart, in pixels.
pub const SIZE: (u32, u32) = (960, 540);

/// The Okabe–Ito palette: distinguishable with every common colour-vision deficiency.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(230, 159, 0),   // orange
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(240, 228, 66),  // yellow
    RGBColor(0, 0, 0),       // black
];

const FONT: &str = "sans-serif";

fn failed(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("drawing a chart: {e}"))
}

/// A whole number as the language writes it: `1.234` or `1,234`.
pub fn integer(n: i64, lang: Lang) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(if lang == Lang::De { '.' } else { ',' });
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// A date as the language writes it: `04.01.2027` or `2027-01-04`.
pub fn date(d: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::De => d.format("%d.%m.%Y").to_string(),
        Lang::En => d.format("%Y-%m-%d").to_string(),
    }
}

/// A short date for axis ticks: `04.01.` or `01-04`.
fn short_date(d: NaiveDate, lang: Lang) -> String {
    match lang {
        Lang::De => d.format("%d.%m.").to_string(),
        Lang::En => d.format("%m-%d").to_string(),
    }
}

/// Escapes text for XML.
pub fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The words of a chart in the report's language.
fn words(lang: Lang, de: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::De => de,
        Lang::En => en,
    }
}

/// The title line: what, board, range, and the moment the figures stand for.
fn title(report: &FlowReport, what: &str, lang: Lang) -> String {
    let asof = report
        .asof
        .with_timezone(&crate::common::calendar::current().tz);
    let asof = match lang {
        Lang::De => format!("Stand: {}", asof.format("%d.%m.%Y %H:%M")),
        Lang::En => format!("As of: {}", asof.format("%Y-%m-%d %H:%M")),
    };
    format!(
        "{what} – {} ({}), {} – {} · {asof}",
        report.board_name,
        report.board,
        date(report.from, lang),
        date(report.to, lang)
    )
}

/// Puts `<title>` and `<desc>` first in the document and names them as its accessible name
/// and description.
fn accessible(svg: String, title: &str, desc: &str) -> String {
    let Some(start) = svg.find("<svg") else {
        return svg;
    };
    let Some(end) = svg[start..].find('>').map(|i| start + i) else {
        return svg;
    };
    format!(
        "{} role=\"img\" aria-labelledby=\"chart-title chart-desc\" font-family=\"sans-serif\">\
         <title id=\"chart-title\">{}</title><desc id=\"chart-desc\">{}</desc>{}",
        &svg[..end],
        xml(title),
        xml(desc),
        &svg[end + 1..]
    )
}

/// An empty chart: the title and a message in the middle.
fn empty(title_text: &str, message: &str) -> Result<String, ApiError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        root.draw(&Text::new(title_text.to_string(), (20, 20), (FONT, 20)))
            .map_err(failed)?;
        root.draw(&Text::new(
            message.to_string(),
            (SIZE.0 as i32 / 2 - 150, SIZE.1 as i32 / 2),
            (FONT, 22).into_font().color(&RGBColor(80, 80, 80)),
        ))
        .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

fn no_data(lang: Lang) -> &'static str {
    words(
        lang,
        "Keine Daten in diesem Zeitraum",
        "No data in this range",
    )
}

/// The cumulative flow diagram: one band per column, the first column on top.
pub fn cfd(report: &FlowReport, lang: Lang) -> Result<String, ApiError> {
    let what = words(lang, "Kumulatives Flussdiagramm", "Cumulative flow");
    let heading = title(report, what, lang);
    let days = report.cfd.days.len() as i64;
    let top = report
        .cfd
        .days
        .iter()
        .filter_map(|d| d.counts.first().copied())
        .max()
        .unwrap_or(0);
    let desc = format!(
        "{}: {}",
        words(
            lang,
            "Anzahl der Einträge je Spalte oder später am Ende jedes Tages; Spalten",
            "Items in each column or a later one at the end of each day; columns"
        ),
        report
            .cfd
            .columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if top == 0 || report.cfd.columns.is_empty() {
        return Ok(accessible(empty(&heading, no_data(lang))?, &heading, &desc));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let from = report.from;
        let mut chart = ChartBuilder::on(&root)
            .caption(&heading, (FONT, 18))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0..(days - 1).max(1), 0..top + top / 10 + 1)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(words(lang, "Datum (Tag)", "Date (day)"))
            .y_desc(words(lang, "Einträge (Anzahl)", "Items (count)"))
            .x_label_formatter(&|x| short_date(from + Duration::days(*x), lang))
            .y_label_formatter(&|y| integer(*y, lang))
            .x_labels(10)
            .draw()
            .map_err(failed)?;
        for (k, column) in report.cfd.columns.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let points: Vec<(i64, i64)> = report
                .cfd
                .days
                .iter()
                .enumerate()
                .map(|(d, day)| (d as i64, day.counts.get(k).copied().unwrap_or(0)))
                .collect();
            chart
                .draw_series(AreaSeries::new(points, 0, color.mix(0.85)).border_style(color))
                .map_err(failed)?
                .label(column.name.clone())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(accessible(svg, &heading, &desc))
}

/// A percentile line's label: "85 % ≤ 14 Tage" or "85% ≤ 14 days".
pub fn percentile_label(p: u32, days: i64, lang: Lang) -> String {
    match lang {
        Lang::De => format!(
            "{p} % ≤ {} {}",
            integer(days, lang),
            if days == 1 { "Tag" } else { "Tage" }
        ),
        Lang::En => format!(
            "{p}% ≤ {} {}",
            integer(days, lang),
            if days == 1 { "day" } else { "days" }
        ),
    }
}

/// Dashed horizontal percentile lines with their labels, in the legend and at the line.
fn percentile_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<
        '_,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordi64, plotters::coord::types::RangedCoordi64>,
    >,
    lines: &[(u32, Option<i64>)],
    width: i64,
    lang: Lang,
) -> Result<(), ApiError>
where
    DB::ErrorType: 'static,
{
    let styles = [PALETTE[2], PALETTE[1], PALETTE[5]];
    for (i, (p, value)) in lines.iter().enumerate() {
        let Some(value) = value else { continue };
        let color = styles[i % styles.len()];
        let label = percentile_label(*p, *value, lang);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(0, *value), (width, *value)],
                8,
                5,
                color.stroke_width(2),
            ))
            .map_err(failed)?
            .label(label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
    }
    // The labels at the lines, above them at the right end (clear of the legend); lines that
    // coincide share one label.
    let mut at_value: Vec<(i64, Vec<String>, RGBColor)> = Vec::new();
    for (i, (p, value)) in lines.iter().enumerate() {
        let Some(value) = value else { continue };
        let label = percentile_label(*p, *value, lang);
        match at_value.iter_mut().find(|(v, _, _)| v == value) {
            Some((_, labels, _)) => labels.push(label),
            None => at_value.push((*value, vec![label], styles[i % styles.len()])),
        }
    }
    for (value, labels, color) in at_value {
        let text = labels.join(" · ");
        chart
            .draw_series(std::iter::once(
                EmptyElement::at((width, value))
                    + Text::new(
                        text,
                        (-6, -4),
                        (FONT, 13).into_font().color(&color).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Right,
                                plotters::style::text_anchor::VPos::Bottom,
                            ),
                        ),
                    ),
            ))
            .map_err(failed)?;
    }
    Ok(())
}

/// Cycle time: each finished item at its finish date and cycle days, with dashed p50/p85/p95.
pub fn cycle_time(report: &FlowReport, lang: Lang) -> Result<String, ApiError> {
    let what = words(lang, "Durchlaufzeit", "Cycle time");
    let heading = title(report, what, lang);
    let stats = &report.cycle_time;
    let na = words(lang, "nicht berechnet", "not computed");
    let show = |v: Option<i64>| v.map_or(na.to_string(), |d| integer(d, lang));
    let desc = format!(
        "{} n = {}; p50 = {}, p85 = {}, p95 = {} {}",
        words(
            lang,
            "Streudiagramm: Fertigstellungsdatum und Durchlaufzeit in Tagen je Eintrag.",
            "Scatter plot: finish date and cycle time in days of each item."
        ),
        stats.n,
        show(stats.p50),
        show(stats.p85),
        show(stats.p95),
        words(lang, "Tage", "days")
    );
    if stats.items.is_empty() {
        return Ok(accessible(empty(&heading, no_data(lang))?, &heading, &desc));
    }
    let tz = crate::common::calendar::current().tz;
    let from = report.from;
    let days = (report.to - report.from).num_days().max(1);
    let top = stats.items.iter().map(|i| i.days).max().unwrap_or(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&heading, (FONT, 18))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0..days, 0..top + top / 5 + 2)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc(words(lang, "Fertigstellung (Datum)", "Finished (date)"))
            .y_desc(words(lang, "Durchlaufzeit (Tage)", "Cycle time (days)"))
            .x_label_formatter(&|x| short_date(from + Duration::days(*x), lang))
            .y_label_formatter(&|y| integer(*y, lang))
            .x_labels(10)
            .draw()
            .map_err(failed)?;
        let points: Vec<(i64, i64)> = stats
            .items
            .iter()
            .map(|i| {
                let finished = tz
                    .from_utc_datetime(&i.finished_at.naive_utc())
                    .date_naive();
                ((finished - from).num_days(), i.days)
            })
            .collect();
        let dot = PALETTE[0];
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(x, y)| Circle::new((*x, *y), 5, dot.filled())),
            )
            .map_err(failed)?
            .label(words(lang, "Eintrag", "Item"))
            .legend(move |(x, y)| Circle::new((x + 7, y), 5, dot.filled()));
        percentile_lines(
            &mut chart,
            &[(50, stats.p50), (85, stats.p85), (95, stats.p95)],
            days,
            lang,
        )?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(accessible(svg, &heading, &desc))
}

/// Throughput: finishes per ISO week as bars; weeks cut by the range lighter.
pub fn throughput(report: &FlowReport, lang: Lang) -> Result<String, ApiError> {
    let what = words(
        lang,
        "Durchsatz je Kalenderwoche",
        "Throughput per ISO week",
    );
    let heading = title(report, what, lang);
    let weeks = &report.throughput_weekly;
    let desc = format!(
        "{} {}",
        words(lang, "Fertigstellungen je Woche:", "Finishes per week:"),
        weeks
            .iter()
            .map(|w| format!("{} {}", w.week, integer(w.count, lang)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let top = weeks.iter().map(|w| w.count).max().unwrap_or(0);
    if top == 0 {
        return Ok(accessible(empty(&heading, no_data(lang))?, &heading, &desc));
    }
    let labels: Vec<String> = weeks
        .iter()
        .map(|w| match lang {
            Lang::De => format!("KW {}", &w.week[6..]),
            Lang::En => w.week.clone(),
        })
        .collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let n = weeks.len() as i64;
        let mut chart = ChartBuilder::on(&root)
            .caption(&heading, (FONT, 18))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0..n * 2, 0..top + top / 5 + 1)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(words(lang, "Kalenderwoche (ISO)", "ISO week"))
            .y_desc(words(lang, "Fertigstellungen (Anzahl)", "Finishes (count)"))
            // Each week spans two units; its label sits at the odd one, the bar's middle.
            .x_label_formatter(&|x| {
                if x % 2 == 1 {
                    labels.get((*x / 2) as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| integer(*y, lang))
            .x_labels((n * 2 + 1) as usize)
            .draw()
            .map_err(failed)?;
        let (full, cut) = (PALETTE[0], PALETTE[4]);
        chart
            .draw_series(
                weeks
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| !w.partial)
                    .map(|(i, w)| {
                        Rectangle::new(
                            [(i as i64 * 2, 0), (i as i64 * 2 + 2, w.count)],
                            full.filled(),
                        )
                    }),
            )
            .map_err(failed)?
            .label(words(lang, "Ganze Woche", "Whole week"))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], full.filled()));
        chart
            .draw_series(
                weeks
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.partial)
                    .map(|(i, w)| {
                        Rectangle::new(
                            [(i as i64 * 2, 0), (i as i64 * 2 + 2, w.count)],
                            cut.filled(),
                        )
                    }),
            )
            .map_err(failed)?
            .label(words(
                lang,
                "Woche vom Zeitraum angeschnitten",
                "Week cut by the range",
            ))
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], cut.filled()));
        // Gaps between the bars.
        chart
            .draw_series((0..=n).map(|i| {
                PathElement::new(
                    vec![(i * 2, 0), (i * 2, top + top / 5 + 1)],
                    WHITE.stroke_width(6),
                )
            }))
            .map_err(failed)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(accessible(svg, &heading, &desc))
}

/// Aging: each open started item in its column at its age, against the finished items'
/// percentiles.
pub fn aging(report: &FlowReport, lang: Lang) -> Result<String, ApiError> {
    let what = words(lang, "Alter offener Einträge", "Age of open items");
    let heading = title(report, what, lang);
    let desc = format!(
        "{} {}",
        words(
            lang,
            "Alter in Tagen je begonnenem, offenem Eintrag nach Spalte:",
            "Age in days of each open started item by column:"
        ),
        report
            .aging
            .iter()
            .map(|a| format!("{} ({}) {}", a.key, a.column, integer(a.age_days, lang)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if report.aging.is_empty() {
        let message = words(
            lang,
            "Keine offenen begonnenen Einträge",
            "No open started items",
        );
        return Ok(accessible(empty(&heading, message)?, &heading, &desc));
    }
    let columns: Vec<String> = report
        .cfd
        .columns
        .iter()
        .filter(|c| c.category == "in_progress")
        .map(|c| c.name.clone())
        .collect();
    let n = columns.len().max(1) as i64;
    let top = report
        .aging
        .iter()
        .map(|a| a.age_days)
        .chain(report.cycle_time.p95)
        .max()
        .unwrap_or(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&heading, (FONT, 18))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0..n * 2, 0..top + top / 5 + 2)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(words(lang, "Spalte", "Column"))
            .y_desc(words(lang, "Alter (Tage)", "Age (days)"))
            .x_label_formatter(&|x| {
                if x % 2 == 1 {
                    columns.get((*x / 2) as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| integer(*y, lang))
            .x_labels((n * 2 + 1) as usize)
            .draw()
            .map_err(failed)?;
        let dot = PALETTE[0];
        let points: Vec<(i64, i64)> = report
            .aging
            .iter()
            .map(|a| {
                let column = columns.iter().position(|c| *c == a.column).unwrap_or(0) as i64;
                (column * 2 + 1, a.age_days)
            })
            .collect();
        chart
            .draw_series(
                points
                    .iter()
                    .map(|(x, y)| Circle::new((*x, *y), 6, dot.filled())),
            )
            .map_err(failed)?
            .label(words(lang, "Offener Eintrag", "Open item"))
            .legend(move |(x, y)| Circle::new((x + 7, y), 5, dot.filled()));
        let stats = &report.cycle_time;
        percentile_lines(
            &mut chart,
            &[(50, stats.p50), (85, stats.p85), (95, stats.p95)],
            n * 2,
            lang,
        )?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(accessible(svg, &heading, &desc))
}

/// One part of a stacked bar: its legend label, colour, and span of a month's row.
type Part = (
    &'static str,
    RGBColor,
    fn(&crate::reports::sla::SlaRow) -> (i64, i64),
);

/// SLA compliance per month: stacked bars of met, breached-completed and breached-open
/// resolution clocks, with the success share written above each bar.
pub fn sla(report: &crate::reports::sla::SlaReport, lang: Lang) -> Result<String, ApiError> {
    let asof = report
        .asof
        .with_timezone(&crate::common::calendar::current().tz);
    let heading = format!(
        "{} – {} – {} · {}",
        words(lang, "SLA-Einhaltung je Monat", "SLA compliance per month"),
        date(report.from, lang),
        date(report.to, lang),
        match lang {
            Lang::De => format!("Stand: {}", asof.format("%d.%m.%Y %H:%M")),
            Lang::En => format!("As of: {}", asof.format("%Y-%m-%d %H:%M")),
        }
    );
    let share = |x: Option<f64>| match x {
        Some(x) => {
            let pct = format!("{:.1}", x * 100.0);
            match lang {
                Lang::De => format!("{} %", pct.replace('.', ",")),
                Lang::En => format!("{pct}%"),
            }
        }
        None => "–".to_string(),
    };
    let desc = format!(
        "{} {}",
        words(
            lang,
            "Je Monat eingehalten, verletzt abgeschlossen, verletzt offen; Erfolgsquote:",
            "Per month met, breached completed, breached open; success share:"
        ),
        report
            .months
            .iter()
            .map(|m| {
                format!(
                    "{} {}/{}/{} ({})",
                    m.month,
                    m.met,
                    m.breached_completed,
                    m.breached_open,
                    share(m.success_share)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    let top = report
        .months
        .iter()
        .map(|m| m.met + m.breached_completed + m.breached_open)
        .max()
        .unwrap_or(0);
    if top == 0 {
        return Ok(accessible(empty(&heading, no_data(lang))?, &heading, &desc));
    }
    let n = report.months.len() as i64;
    let labels: Vec<String> = report.months.iter().map(|m| m.month.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let y_top = top + top / 4 + 1;
        let mut chart = ChartBuilder::on(&root)
            .caption(&heading, (FONT, 18))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0..n * 2, 0..y_top)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(words(lang, "Monat", "Month"))
            .y_desc(words(lang, "Störungen (Anzahl)", "Incidents (count)"))
            .x_label_formatter(&|x| {
                if x % 2 == 1 {
                    labels.get((*x / 2) as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| integer(*y, lang))
            .x_labels((n * 2 + 1) as usize)
            .draw()
            .map_err(failed)?;
        let parts: [Part; 3] = [
            (words(lang, "Eingehalten", "Met"), PALETTE[2], |m| {
                (0, m.met)
            }),
            (
                words(lang, "Verletzt, abgeschlossen", "Breached, completed"),
                PALETTE[1],
                |m| (m.met, m.met + m.breached_completed),
            ),
            (
                words(lang, "Verletzt, offen", "Breached, open"),
                PALETTE[5],
                |m| {
                    (
                        m.met + m.breached_completed,
                        m.met + m.breached_completed + m.breached_open,
                    )
                },
            ),
        ];
        // Drawn top part first, so that the legend lists the parts as they are stacked.
        for (label, color, span) in parts.into_iter().rev() {
            chart
                .draw_series(report.months.iter().enumerate().map(|(i, m)| {
                    let (low, high) = span(m);
                    let x = i as i64 * 2;
                    Rectangle::new([(x, low), (x + 2, high)], color.filled())
                }))
                .map_err(failed)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 14, y + 6)], color.filled())
                });
        }
        chart
            .draw_series(
                (0..=n).map(|i| {
                    PathElement::new(vec![(i * 2, 0), (i * 2, y_top)], WHITE.stroke_width(8))
                }),
            )
            .map_err(failed)?;
        chart
            .draw_series(report.months.iter().enumerate().map(|(i, m)| {
                let total = m.met + m.breached_completed + m.breached_open;
                EmptyElement::at((i as i64 * 2 + 1, total))
                    + Text::new(
                        share(m.success_share),
                        (0, -6),
                        (FONT, 14).into_font().color(&BLACK).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Bottom,
                            ),
                        ),
                    )
            }))
            .map_err(failed)?;
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 14))
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(accessible(svg, &heading, &desc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_labels_follow_the_language() {
        assert_eq!(integer(1_234_567, Lang::De), "1.234.567");
        assert_eq!(integer(1_234, Lang::En), "1,234");
        assert_eq!(integer(-12, Lang::De), "-12");
        assert_eq!(percentile_label(85, 14, Lang::De), "85 % ≤ 14 Tage");
        assert_eq!(percentile_label(50, 1, Lang::En), "50% ≤ 1 day");
    }
}
