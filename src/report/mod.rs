//! From run folders to a paper: runs gathered into seed groups ([`groups`]), the main and peaks
//! tables ([`tables`]), written as Markdown, LaTeX, tidy CSV and JSON ([`format`]), with figures
//! ([`figures`]) and TensorBoard event files ([`tensorboard`]). `adarat export` is its command
//! (docs/report.md).
pub mod figures;
pub mod format;
pub mod groups;
pub mod tables;
pub mod tensorboard;

use std::path::{Path, PathBuf};
use tables::Filter;

crate::vocab::vocabulary!(
    /// The formats `adarat export` writes.
    Format, "format" {
        Markdown => "markdown" | "md", Latex => "latex" | "tex", Csv => "csv", Json => "json",
        /// TensorBoard event files, one folder per run.
        Tensorboard => "tensorboard",
    }
);

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
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for format in formats {
        match format {
            Format::Markdown => files.push((out.join("results.md"), markdown.clone())),
            Format::Latex => files.push((out.join("results.tex"), format::latex(&main, &peaks))),
            Format::Csv => {
                files.push((out.join("epochs.csv"), format::epochs_csv(&collection)));
                files.push((out.join("attacks.csv"), format::attacks_csv(&collection)));
            }
            Format::Json => files.push((
                out.join("results.json"),
                format::json(&main, &peaks, &collection),
            )),
            Format::Tensorboard => {}
        }
    }
    std::fs::create_dir_all(out).map_err(|source| ReportError::Write {
        path: out.to_path_buf(),
        source,
    })?;
    for (path, text) in &files {
        crate::store::write_atomically(path, text.as_bytes()).map_err(|e| ReportError::Write {
            path: path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    let mut written: Vec<PathBuf> = files.into_iter().map(|(path, _)| path).collect();
    if formats.contains(&Format::Tensorboard) {
        let dir = out.join("tensorboard");
        for run in collection.groups.iter().flat_map(|g| &g.runs) {
            let path = tensorboard::write_run(run, &dir).map_err(|source| ReportError::Write {
                path: dir.clone(),
                source,
            })?;
            written.push(path);
        }
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
