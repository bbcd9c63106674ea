//! The main and peaks tables in Markdown (`results.md`), also printed where the export ran.
use super::{
    delta, peak_job, presets_note, row_label, seeds, stat, verdict_rows, write_text, Tables,
    Writer, LEGEND, VERDICT_LEGEND,
};
use crate::report::groups::Collection;
use crate::report::tables::{MainTable, PeakRow, Stat, COLUMNS};
use crate::report::ReportError;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub(super) struct Markdown;

impl Writer for Markdown {
    fn write(&self, tables: &Tables, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
        let text = text(tables.main, tables.peaks, tables.collection);
        Ok(vec![write_text(out, "results.md", &text)?])
    }
}

/// The header of a table with a row per method and mode, `third`'s column, then one per column
/// of the main table, right-aligned.
fn header(third: &str) -> String {
    let mut s = format!("| method | mode | {third} |");
    for (name, _) in COLUMNS.iter() {
        let _ = write!(s, " {name} |");
    }
    s + "\n|---|---|---|" + &"---:|".repeat(COLUMNS.len()) + "\n"
}

/// The evidence of each FixRAT and AdaRAT row against its baseline, one cell per column.
fn verdict(s: &mut String, table: &MainTable) {
    let rows = verdict_rows(table);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(s, "### {}: against the baseline\n", table.dataset);
    *s += &header("test");
    for (row, basis) in rows {
        let (method, mode) = row_label(row, table);
        let _ = write!(s, "| {method} | {mode} | {basis} |");
        for evidence in &row.evidence {
            let text = evidence.map_or("—".into(), |e| e.summary());
            let _ = write!(s, " {text} |");
        }
        *s += "\n";
    }
    let _ = writeln!(s, "\n{VERDICT_LEGEND}.\n");
}

pub fn text(tables: &[MainTable], peaks: &[PeakRow], collection: &Collection) -> String {
    let mut s = String::from("# Results\n\n");
    for table in tables {
        let _ = writeln!(s, "## {}\n", table.dataset);
        s += &header("n");
        for row in &table.rows {
            let (method, mode) = row_label(row, table);
            let _ = write!(s, "| {method} | {mode} | {} |", seeds(&row.seeds));
            for column in 0..COLUMNS.len() {
                let text = stat(row.cells[column], " ± ");
                let text = if row.best[column] {
                    format!("**{text}**")
                } else {
                    text
                };
                let _ = write!(s, " {text}{} |", delta(row.delta[column]));
            }
            s += "\n";
        }
        let _ = writeln!(s, "\n{LEGEND}.");
        if let Some(note) = presets_note(table) {
            let _ = writeln!(s, "{note}");
        }
        for note in &table.notes {
            let _ = writeln!(s, "- {note}");
        }
        s += "\n";
        verdict(&mut s, table);
    }
    if !peaks.is_empty() {
        s += "## Peaks\n\nEpochs and values of the test SA and RA (PGD) peaks, their distance in epochs, and the last epoch.\n\n";
        s += "| job | n | SA peak epoch | SA peak | RA peak epoch | RA peak | distance | last SA | last RA |\n";
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for p in peaks {
            let job = peak_job(p);
            let epoch = |s: Stat| match s.sd {
                Some(sd) => format!("{:.1} ± {sd:.1}", s.mean),
                None => format!("{:.0}", s.mean),
            };
            let _ = writeln!(
                s,
                "| {job} | {} | {} | {} | {} | {} | {} | {} | {} |",
                seeds(&p.seeds),
                epoch(p.sa_epoch),
                stat(Some(p.sa), " ± "),
                epoch(p.ra_epoch),
                stat(Some(p.ra), " ± "),
                epoch(p.distance),
                stat(Some(p.last_sa), " ± "),
                stat(Some(p.last_ra), " ± "),
            );
        }
        s += "\n";
    }
    if !collection.skipped.is_empty() {
        s += "Left out:\n";
        for (folder, why) in &collection.skipped {
            let _ = writeln!(s, "- {}: {why}", folder.display());
        }
    }
    s
}
