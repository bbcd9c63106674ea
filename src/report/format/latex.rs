//! The main and peaks tables as a LaTeX document (`results.tex`).
use super::{
    delta, peak_job, presets_note, row_label, seeds, stat, verdict_rows, write_text, Tables,
    Writer, LEGEND, VERDICT_LEGEND,
};
use crate::report::tables::{MainTable, PeakRow, COLUMNS};
use crate::report::ReportError;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub(super) struct Latex;

impl Writer for Latex {
    fn write(&self, tables: &Tables, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
        let text = latex(tables.main, tables.peaks);
        Ok(vec![write_text(out, "results.tex", &text)?])
    }
}

/// LaTeX's special characters in running text.
fn tex(text: &str) -> String {
    text.replace('\\', r"\textbackslash{}")
        .replace('_', r"\_")
        .replace('%', r"\%")
        .replace('&', r"\&")
        .replace('#', r"\#")
        .replace('ε', r"$\epsilon$")
        .replace('Δ', r"$\Delta$")
        .replace('−', "--")
        .replace('<', r"$<$")
}

/// The header of a table with a row per method and mode, `third`'s column, then one per column
/// of the main table.
fn header(third: &str) -> String {
    let mut s = format!("Method & Mode & {third}");
    for (name, _) in COLUMNS.iter() {
        let _ = write!(s, " & {name}");
    }
    s + " \\\\\n\\midrule\n"
}

const MARKS_LEGEND: &str = "* p < 0.05, ** p < 0.01, *** p < 0.001 against the method's baseline";

fn verdict_label(table: &MainTable) -> String {
    format!("tab:verdict-{}", table.dataset)
}

/// The evidence of each FixRAT and AdaRAT row against its baseline, one cell per column: Δ, its
/// interval and p, scaled to the text width.
fn verdict(s: &mut String, table: &MainTable) {
    let rows = verdict_rows(table);
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\\begin{{table}}[t]\n\\centering\\small\n\\caption{{{}: {}.}}\\label{{{}}}",
        tex(&table.dataset.to_string()),
        tex(VERDICT_LEGEND),
        verdict_label(table)
    );
    let _ = writeln!(
        s,
        "\\resizebox{{\\textwidth}}{{!}}{{\\begin{{tabular}}{{lll{}}}\n\\toprule",
        "r".repeat(COLUMNS.len())
    );
    s.push_str(&header("Test"));
    for (row, basis) in rows {
        let (method, mode) = row_label(row, table);
        let _ = write!(s, "{} & {} & {}", tex(&method), tex(&mode), tex(&basis));
        for evidence in &row.evidence {
            let text = evidence.map_or("---".into(), |e| tex(&e.summary()));
            let _ = write!(s, " & {text}");
        }
        s.push_str(" \\\\\n");
    }
    s.push_str("\\bottomrule\n\\end{tabular}}\n\\end{table}\n\n");
}

/// A standalone document with one booktabs table per dataset and the peaks table: compiles as is
/// with `pdflatex` (the tables can be pasted into a paper that loads booktabs).
fn latex(tables: &[MainTable], peaks: &[PeakRow]) -> String {
    let mut s = String::from(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n\\usepackage[margin=1in]{geometry}\n\\begin{document}\n",
    );
    for table in tables {
        let _ = writeln!(s, "\\begin{{table}}[t]\n\\centering\\small");
        let _ = writeln!(
            s,
            "\\caption{{{}: accuracy (\\%), {}.}}",
            tex(&table.dataset.to_string()),
            tex(LEGEND).replace('±', "$\\pm$")
        );
        let _ = writeln!(
            s,
            "\\begin{{tabular}}{{llr{}}}\n\\toprule",
            "r".repeat(COLUMNS.len())
        );
        s += &header("$n$");
        let mut previous = None;
        for row in &table.rows {
            if previous.is_some() && previous != Some(row.method) {
                s += "\\midrule\n";
            }
            previous = Some(row.method);
            let (method, mode) = row_label(row, table);
            let _ = write!(
                s,
                "{} & {} & {}",
                tex(&method),
                tex(&mode),
                seeds(&row.seeds)
            );
            for column in 0..COLUMNS.len() {
                let text = stat(row.cells[column], "$\\pm$").replace('—', "---");
                let text = if row.best[column] {
                    format!("\\textbf{{{text}}}")
                } else {
                    text
                };
                // The verdict's significance as footnote marks on the Δ.
                let stars = row.evidence[column].map_or("", |e| e.stars());
                let marks = if stars.is_empty() {
                    String::new()
                } else {
                    format!("$^{{{stars}}}$")
                };
                let _ = write!(s, " & {text}{}{marks}", delta(row.delta[column]));
            }
            s += " \\\\\n";
        }
        s += "\\bottomrule\n\\end{tabular}\n";
        let mut notes: Vec<String> = Vec::new();
        notes.extend(presets_note(table));
        if !verdict_rows(table).is_empty() {
            notes.push(format!(
                "{MARKS_LEGEND}: Δ, intervals and p in the verdict table."
            ));
        }
        notes.extend(table.notes.iter().cloned());
        for note in notes {
            let _ = writeln!(s, "\n\\par\\footnotesize {}", tex(&note));
        }
        s += "\\end{table}\n\n";
        verdict(&mut s, table);
    }
    if !peaks.is_empty() {
        s += "\\begin{table}[t]\n\\centering\\small\n\\caption{Test SA and RA (PGD) peaks: epochs, values (\\%), their distance and the last epoch.}\n";
        s += "\\begin{tabular}{lrrrrrrrr}\n\\toprule\nJob & $n$ & SA ep. & SA & RA ep. & RA & dist. & last SA & last RA \\\\\n\\midrule\n";
        for p in peaks {
            let job = peak_job(p);
            let _ = writeln!(
                s,
                "{} & {} & {:.1} & {} & {:.1} & {} & {:.1} & {} & {} \\\\",
                tex(&job),
                seeds(&p.seeds),
                p.sa_epoch.mean,
                stat(Some(p.sa), "$\\pm$"),
                p.ra_epoch.mean,
                stat(Some(p.ra), "$\\pm$"),
                p.distance.mean,
                stat(Some(p.last_sa), "$\\pm$"),
                stat(Some(p.last_ra), "$\\pm$"),
            );
        }
        s += "\\bottomrule\n\\end{tabular}\n\\end{table}\n";
    }
    s += "\\end{document}\n";
    s
}
