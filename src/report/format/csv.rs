//! Tidy CSV for pandas: `epochs.csv` (run × epoch × metric), `attacks.csv` (run × attack) and
//! `verdict.csv` (FixRAT/AdaRAT group × column against the baseline).
use super::{write_text, Tables, Writer};
use crate::report::groups::{Collection, Group, Run};
use crate::report::tables::{MainTable, COLUMNS};
use crate::report::ReportError;
use crate::vocab::FinalAttack;
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub(super) struct Csv;

impl Writer for Csv {
    fn write(&self, tables: &Tables, out: &Path) -> Result<Vec<PathBuf>, ReportError> {
        Ok(vec![
            write_text(out, "epochs.csv", &epochs_csv(tables.collection))?,
            write_text(out, "attacks.csv", &attacks_csv(tables.collection))?,
            write_text(out, "verdict.csv", &verdict_csv(tables.main))?,
        ])
    }
}

/// A CSV field, quoted when it needs to be.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Who ran, and what keeps groups apart: a group-by on `job` and `group` averages what the tables
/// average.
const RUN_COLUMNS: &str =
    "run,job,method,dataset,mode,model,seed,protocol,epochs,epsilon,autoattack,images,group";

fn run_fields(run: &Run, group: &Group) -> String {
    let r = &run.result;
    let table = r.final_table.as_ref();
    let optional = |v: Option<String>| v.unwrap_or_default();
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
        r.epochs.to_string(),
        optional(table.and_then(|t| t.epsilon).map(|e| e.to_string())),
        optional(table.and_then(|t| t.autoattack_preset.clone())),
        optional(table.and_then(|t| t.images).map(|n| n.to_string())),
        field(group.apart.as_deref().unwrap_or_default()),
    ]
    .join(",")
}

fn runs(collection: &Collection) -> impl Iterator<Item = (&Group, &Run)> {
    (collection.groups.iter()).flat_map(|group| group.runs.iter().map(move |run| (group, run)))
}

/// Tidy long form, one row per run × epoch × metric.
fn epochs_csv(collection: &Collection) -> String {
    let mut s = format!("{RUN_COLUMNS},epoch,metric,value\n");
    for (group, run) in runs(collection) {
        let fields = run_fields(run, group);
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
fn attacks_csv(collection: &Collection) -> String {
    let mut s = format!("{RUN_COLUMNS},attack,accuracy\n");
    for (group, run) in runs(collection) {
        let fields = run_fields(run, group);
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

/// One row per FixRAT/AdaRAT group and column with evidence against its baseline: Δ (points), its
/// 95 % interval, p, and the test and n it rests on (docs/report.md#the-verdict).
fn verdict_csv(tables: &[MainTable]) -> String {
    let mut s = String::from("dataset,method,mode,group,column,delta,ci_low,ci_high,p,test,n\n");
    for table in tables {
        for row in &table.rows {
            for ((name, _), evidence) in COLUMNS.iter().zip(&row.evidence) {
                let Some(e) = evidence else {
                    continue;
                };
                let number = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
                let _ = writeln!(
                    s,
                    "{},{},{},{},{},{},{},{},{},{},{}",
                    table.dataset,
                    row.method,
                    row.mode,
                    field(row.apart.as_deref().unwrap_or_default()),
                    field(name),
                    e.delta,
                    number(e.ci.map(|c| c.0)),
                    number(e.ci.map(|c| c.1)),
                    number(e.p),
                    e.test.as_str(),
                    e.n
                );
            }
        }
    }
    s
}
