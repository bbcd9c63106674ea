//! The main and peaks tables, and the runs left out, as JSON (`results.json`).
use super::{write_text, Tables, Writer};
use crate::report::groups::Collection;
use crate::report::tables::{MainTable, PeakRow};
use crate::report::ReportError;
use std::path::{Path, PathBuf};

pub(super) struct Json;

impl Writer for Json {
    fn write(&self, tables: &Tables, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
        let text = json(tables.main, tables.peaks, tables.collection);
        Ok(vec![write_text(out, "results.json", &text)?])
    }
}

#[derive(serde::Serialize)]
struct Report<'a> {
    main: &'a [MainTable],
    peaks: &'a [PeakRow],
    skipped: Vec<(String, &'a str)>,
}

fn json(tables: &[MainTable], peaks: &[PeakRow], collection: &Collection) -> String {
    let report = Report {
        main: tables,
        peaks,
        skipped: (collection.skipped.iter())
            .map(|(folder, why)| (folder.display().to_string(), why.as_str()))
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
