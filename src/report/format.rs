//! The tables written out: Markdown for READMEs, LaTeX (booktabs) for the paper, tidy CSV for
//! pandas and JSON for scripts (docs/report.md).
use super::groups::Collection;
use super::tables::{MainRow, MainTable, PeakRow, Stat, COLUMNS};
use crate::vocab::FinalAttack;
use std::fmt::Write;

/// `82.10 ± 1.20`, or `82.10` for one seed; `-` for no value.
fn stat(s: Option<Stat>, plus_minus: &str) -> String {
    match s {
        None => "-".into(),
        Some(Stat {
            mean, sd: Some(sd), ..
        }) => format!("{mean:.2}{plus_minus}{sd:.2}"),
        Some(Stat { mean, .. }) => format!("{mean:.2}"),
    }
}

fn delta(d: Option<f64>) -> String {
    d.map_or(String::new(), |d| format!(" ({d:+.2})"))
}

fn row_label(row: &MainRow) -> (String, String) {
    let mode = match &row.apart {
        Some(apart) => format!("{} [{apart}]", row.mode),
        None => row.mode.to_string(),
    };
    (row.method.to_string(), mode)
}

fn seeds(seeds: &[u64]) -> String {
    seeds.len().to_string()
}

const LEGEND: &str = "mean ± sample sd over n seeds; the best mode of each method in bold; (Δ) against the method's baseline";

pub fn markdown(tables: &[MainTable], peaks: &[PeakRow], collection: &Collection) -> String {
    let mut s = String::from("# Results\n\n");
    for table in tables {
        let _ = writeln!(s, "## {}\n", table.dataset);
        s += "| method | mode | n |";
        for (name, _) in COLUMNS.iter() {
            let _ = write!(s, " {name} |");
        }
        s += "\n|---|---|---|";
        s += &"---:|".repeat(COLUMNS.len());
        s += "\n";
        for row in &table.rows {
            let (method, mode) = row_label(row);
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
        if !table.presets.is_empty() {
            let _ = writeln!(s, "AutoAttack: {}.", table.presets.join(", "));
        }
        for note in &table.notes {
            let _ = writeln!(s, "- {note}");
        }
        s += "\n";
    }
    if !peaks.is_empty() {
        s += "## Peaks\n\nEpochs and values of the test SA and RA (PGD) peaks, their distance in epochs, and the last epoch.\n\n";
        s += "| job | n | SA peak epoch | SA peak | RA peak epoch | RA peak | distance | last SA | last RA |\n";
        s += "|---|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for p in peaks {
            let job = match &p.apart {
                Some(apart) => format!("{}/{}/{} [{apart}]", p.method, p.dataset, p.mode),
                None => format!("{}/{}/{}", p.method, p.dataset, p.mode),
            };
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

/// LaTeX's special characters in running text.
fn tex(text: &str) -> String {
    text.replace('\\', r"\textbackslash{}")
        .replace('_', r"\_")
        .replace('%', r"\%")
        .replace('&', r"\&")
        .replace('#', r"\#")
        .replace('ε', r"$\epsilon$")
}

/// A standalone document with one booktabs table per dataset and the peaks table: compiles as is
/// with `pdflatex` (the tables can be pasted into a paper that loads booktabs).
pub fn latex(tables: &[MainTable], peaks: &[PeakRow]) -> String {
    let mut s = String::from(
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage[margin=1in]{geometry}\n\\begin{document}\n",
    );
    for table in tables {
        let _ = writeln!(s, "\\begin{{table}}[t]\n\\centering\\small");
        let _ = writeln!(
            s,
            "\\caption{{{}: accuracy (\\%), {}.}}",
            tex(&table.dataset.to_string()),
            tex(LEGEND).replace('±', "$\\pm$").replace('Δ', "$\\Delta$")
        );
        let _ = writeln!(
            s,
            "\\begin{{tabular}}{{llr{}}}\n\\toprule",
            "r".repeat(COLUMNS.len())
        );
        s += "Method & Mode & $n$";
        for (name, _) in COLUMNS.iter() {
            let _ = write!(s, " & {name}");
        }
        s += " \\\\\n\\midrule\n";
        let mut previous = None;
        for row in &table.rows {
            if previous.is_some() && previous != Some(row.method) {
                s += "\\midrule\n";
            }
            previous = Some(row.method);
            let (method, mode) = row_label(row);
            let _ = write!(
                s,
                "{} & {} & {}",
                tex(&method),
                tex(&mode),
                seeds(&row.seeds)
            );
            for column in 0..COLUMNS.len() {
                let text = stat(row.cells[column], "$\\pm$");
                let text = if row.best[column] {
                    format!("\\textbf{{{text}}}")
                } else {
                    text
                };
                let _ = write!(s, " & {text}{}", delta(row.delta[column]));
            }
            s += " \\\\\n";
        }
        s += "\\bottomrule\n\\end{tabular}\n";
        let mut notes: Vec<String> = Vec::new();
        if !table.presets.is_empty() {
            notes.push(format!("AutoAttack: {}.", table.presets.join(", ")));
        }
        notes.extend(table.notes.iter().cloned());
        for note in notes {
            let _ = writeln!(s, "\n\\par\\footnotesize {}", tex(&note));
        }
        s += "\\end{table}\n\n";
    }
    if !peaks.is_empty() {
        s += "\\begin{table}[t]\n\\centering\\small\n\\caption{Test SA and RA (PGD) peaks: epochs, values (\\%), their distance and the last epoch.}\n";
        s += "\\begin{tabular}{lrrrrrrrr}\n\\toprule\nJob & $n$ & SA ep. & SA & RA ep. & RA & dist. & last SA & last RA \\\\\n\\midrule\n";
        for p in peaks {
            let job = format!("{}/{}/{}", p.method, p.dataset, p.mode);
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

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

const RUN_COLUMNS: &str = "run,job,method,dataset,mode,model,seed,protocol";

fn run_fields(run: &super::groups::Run) -> String {
    let r = &run.result;
    let name = run
        .folder
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    [
        field(&name),
        r.job.to_string(),
        r.method.to_string(),
        r.dataset.to_string(),
        r.mode.to_string(),
        r.model.to_string(),
        r.seed.to_string(),
        r.protocol.to_string(),
    ]
    .join(",")
}

/// Tidy long form, one row per run × epoch × metric.
pub fn epochs_csv(collection: &Collection) -> String {
    let mut s = format!("{RUN_COLUMNS},epoch,metric,value\n");
    for run in collection.groups.iter().flat_map(|g| &g.runs) {
        let fields = run_fields(run);
        for e in &run.result.epochs_log {
            let metrics: [(&str, Option<f64>); 9] = [
                ("lr", Some(e.lr)),
                ("train_loss", Some(e.train_loss)),
                ("train_clean_acc", Some(e.train_clean_acc)),
                ("train_adv_acc", Some(e.train_adv_acc)),
                ("test_clean_acc", Some(e.test_clean_acc)),
                ("test_fgsm_acc", Some(e.test_fgsm_acc)),
                ("test_pgd_acc", Some(e.test_pgd_acc)),
                ("ratio_mean", e.ratio_mean),
                ("clean_branch_share", e.clean_branch_share),
            ];
            for (metric, value) in metrics {
                if let Some(value) = value {
                    let _ = writeln!(s, "{fields},{},{metric},{value}", e.epoch);
                }
            }
        }
    }
    s
}

/// Tidy long form, one row per run × attack of the final table.
pub fn attacks_csv(collection: &Collection) -> String {
    let mut s = format!("{RUN_COLUMNS},attack,accuracy\n");
    for run in collection.groups.iter().flat_map(|g| &g.runs) {
        let fields = run_fields(run);
        let Some(table) = &run.result.final_table else {
            continue;
        };
        let attacks =
            (FinalAttack::ALL.iter()).map(|attack| (attack.as_str(), table.accuracy(*attack)));
        for (attack, accuracy) in std::iter::once(("clean", table.clean)).chain(attacks) {
            if let Some(accuracy) = accuracy {
                let _ = writeln!(s, "{fields},{attack},{accuracy}");
            }
        }
    }
    s
}

#[derive(serde::Serialize)]
struct Report<'a> {
    main: &'a [MainTable],
    peaks: &'a [PeakRow],
    skipped: Vec<(String, &'a str)>,
}

pub fn json(tables: &[MainTable], peaks: &[PeakRow], collection: &Collection) -> String {
    let report = Report {
        main: tables,
        peaks,
        skipped: (collection.skipped.iter())
            .map(|(folder, why)| (folder.display().to_string(), why.as_str()))
            .collect(),
    };
    serde_json::to_string_pretty(&report).unwrap_or_default()
}
