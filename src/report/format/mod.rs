//! The export formats, one file each: Markdown for READMEs, LaTeX (booktabs) for the paper, tidy CSV
//! for pandas, JSON for scripts and TensorBoard event files for the curves (docs/report.md). Each
//! is a [`Writer`] that [`writer`] finds from its `Format` vocabulary entry
//! (docs/architecture.md#how-to-add).
mod csv;
mod json;
mod latex;
mod markdown;
mod tensorboard;

pub use markdown::text as markdown;

use super::groups::{labelled, Collection};
use super::tables::{MainRow, MainTable, PeakRow, Stat};
use super::ReportError;
use std::path::{Path, PathBuf};

crate::vocab::vocabulary!(
    /// The formats `adarat export` writes.
    Format, "format" {
        Markdown => "markdown" | "md", Latex => "latex" | "tex", Csv => "csv", Json => "json",
        /// TensorBoard event files, one folder per run.
        Tensorboard => "tensorboard",
    }
);

/// What every format writes from: the main and peaks tables and the runs behind them.
pub struct Tables<'a> {
    pub main: &'a [MainTable],
    pub peaks: &'a [PeakRow],
    pub collection: &'a Collection,
}

/// One export format: writes its files into the report folder, which exists.
pub trait Writer {
    /// The files it wrote.
    fn write(&self, tables: &Tables, out: &Path) -> Result<Vec<PathBuf>, ReportError>;
}

/// The writer of `format`: the one place a format's name meets its code.
pub fn writer(format: Format) -> &'static dyn Writer {
    match format {
        Format::Markdown => &markdown::Markdown,
        Format::Latex => &latex::Latex,
        Format::Csv => &csv::Csv,
        Format::Json => &json::Json,
        Format::Tensorboard => &tensorboard::Tensorboard,
    }
}

/// Writes `text` as `out/name`, atomically.
fn write_text(out: &Path, name: &str, text: &str) -> Result<PathBuf, ReportError> {
    let path = out.join(name);
    crate::store::write_atomically(&path, text.as_bytes()).map_err(|e| ReportError::Write {
        path: path.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    Ok(path)
}

/// `82.10 ± 1.20`, or `82.10` for one seed; `—` for no value (an attack a run had no table for).
fn stat(s: Option<Stat>, plus_minus: &str) -> String {
    match s {
        None => "—".into(),
        Some(Stat {
            mean, sd: Some(sd), ..
        }) => format!("{mean:.2}{plus_minus}{sd:.2}"),
        Some(Stat { mean, .. }) => format!("{mean:.2}"),
    }
}

/// A peaks row's job, with what keeps its group apart from others of the job (`[epochs 2]`).
fn peak_job(p: &PeakRow) -> String {
    let job = format!("{}/{}/{}", p.method, p.dataset, p.mode);
    labelled(job, p.apart.as_deref())
}

fn delta(d: Option<f64>) -> String {
    d.map_or(String::new(), |d| format!(" ({d:+.2})"))
}

fn row_label(row: &MainRow, table: &MainTable) -> (String, String) {
    (
        row.method.to_string(),
        row.label(row.mode, table.mixed_presets()),
    )
}

/// The table's AutoAttack presets: one for the table, or each row's where they differ.
fn presets_note(table: &MainTable) -> Option<String> {
    match table.presets.as_slice() {
        [] => None,
        [preset] => Some(format!("AutoAttack: {preset}.")),
        presets => Some(format!(
            "AutoAttack: {} (each row says its own: its AA column is not comparable across presets).",
            presets.join(", ")
        )),
    }
}

fn seeds(seeds: &[u64]) -> String {
    seeds.len().to_string()
}

/// The rows with evidence against their baseline (FixRAT and AdaRAT rows whose baseline has a
/// seed in common), each with what its evidence rests on (`paired t, n 3 seeds`).
fn verdict_rows(table: &MainTable) -> Vec<(&MainRow, String)> {
    (table.rows.iter())
        .filter_map(|row| Some((row, row.basis()?)))
        .collect()
}

/// How to read the verdict: the words every format prints under it.
const VERDICT_LEGEND: &str = "Δ in points against the method's baseline of the same settings, its 95 % confidence interval and two-sided p: a paired t-test over the seeds both have (t distribution, n − 1 degrees of freedom), or with one seed McNemar's exact test over the same test images (Wald interval)";

const LEGEND: &str = "mean ± sample sd over n seeds; the best mode of each method in bold; (Δ) against the method's baseline";
