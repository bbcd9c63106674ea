//! From run folders to a paper: runs gathered into seed groups ([`groups`]), the main and peaks
//! tables ([`tables`]), written in each export format (Markdown, LaTeX, tidy CSV, JSON, TensorBoard
//! event files: [`format`]), with figures ([`figures`]) and the verdict's paired statistics
//! ([`stats`]). `adarat export` is its command (docs/report.md).
pub mod figures;
pub mod format;
pub mod groups;
pub mod stats;
pub mod tables;

pub use format::Format;

use std::path::{Path, PathBuf};
use tables::Filter;

#[derive(thiserror::Error, Debug)]
pub enum ReportError {
    #[error("no completed run in {0}")]
    NothingToReport(String),
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Debug)]
pub struct Exported {
    pub files: Vec<PathBuf>,
    /// Why the figures were not drawn, when they were asked for and could not be: the tables are
    /// written all the same.
    pub figures_failed: Option<figures::FigureError>,
    /// The main and peaks tables in Markdown, to show where the export ran.
    pub markdown: String,
    /// Run folders left out, with why (not completed, unreadable `result.json`).
    pub skipped: Vec<(PathBuf, String)>,
}

/// The figures an export draws: None for none; else the barrier to draw when no exported AdaRAT
/// run has its own ratio settings (the study's).
pub type Plots = Option<Option<figures::Barrier>>;

/// Writes the report of the runs in `output_dirs` into `out`, in each of `formats`, and the
/// figures if `plots` asks for them.
pub fn export(
    output_dirs: &[PathBuf],
    filter: &Filter,
    formats: &[Format],
    plots: Plots,
    out: &Path,
) -> Result<Exported, ReportError> {
    let mut collection = groups::collect(output_dirs);
    collection.groups.retain(|group| filter.keeps(&group.key));
    let main = tables::main_tables(&collection);
    if main.is_empty() {
        let folders: Vec<String> = output_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        return Err(ReportError::NothingToReport(folders.join(", ")));
    }
    let peaks = tables::peaks(&collection);
    let markdown = format::markdown(&main, &peaks, &collection);
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    let tables = format::Tables {
        main: &main,
        peaks: &peaks,
        collection: &collection,
    };
    let mut written: Vec<PathBuf> = Vec::new();
    for format in formats {
        written.extend(format::writer(*format).write(&tables, out)?);
    }
    let mut figures_failed = None;
    if let Some(fallback) = plots {
        match figures::write_all(&collection, fallback, out) {
            Ok(files) => written.extend(files),
            Err(error) => figures_failed = Some(error),
        }
    }
    Ok(Exported {
        files: written,
        figures_failed,
        markdown,
        skipped: collection.skipped,
    })
}
