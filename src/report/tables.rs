//! The paper's tables from run groups: the main table (method × mode against clean and the final
//! attacks marked for it, mean ± sd over seeds, the best mode of each method marked, Δ against
//! the method's baseline) and the peaks table (docs/report.md).
use super::groups::{labelled, Collection, Group, GroupKey, Run};
use super::stats::{self, Evidence};
use crate::store::per_image::discordant;
use crate::store::result::FinalTable;
use crate::vocab::{DatasetKind, FinalAttack, Method, Mode};
use serde::Serialize;
use std::sync::LazyLock;

/// A mean over a group's seeds, the sample standard deviation (n − 1; none for one seed) and n.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Stat {
    pub mean: f64,
    pub sd: Option<f64>,
    pub n: usize,
}

impl Stat {
    pub fn of(values: &[f64]) -> Option<Stat> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let sd = (n > 1).then(|| {
            let squares: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
            (squares / (n - 1) as f64).sqrt()
        });
        Some(Stat { mean, sd, n })
    }
}

/// A column's name and the attack whose accuracy it shows; clean accuracy for none.
pub type Column = (&'static str, Option<FinalAttack>);

/// The main table's columns, in the paper's order: clean, then the final attacks of the paper's
/// table (`FinalAttackInfo::main_table`).
pub static COLUMNS: LazyLock<Vec<Column>> = LazyLock::new(|| {
    let attacks = (FinalAttack::ALL.iter()).filter(|attack| attack.info().main_table);
    std::iter::once(("clean", None))
        .chain(attacks.map(|attack| (attack.info().label, Some(*attack))))
        .collect()
});

/// A column's value in a run's final table.
fn value(table: &FinalTable, attack: Option<FinalAttack>) -> Option<f64> {
    match attack {
        Some(attack) => table.accuracy(attack),
        None => table.clean,
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MainRow {
    pub method: Method,
    pub mode: Mode,
    /// What tells this group from others of the same job (`epochs 2`), when there are others.
    pub apart: Option<String>,
    /// The AutoAttack preset of its final tables.
    pub preset: Option<String>,
    pub seeds: Vec<u64>,
    /// One per column; none where no run of the group has that attack.
    pub cells: Vec<Option<Stat>>,
    /// Per column: this mode has the method's best mean.
    pub best: Vec<bool>,
    /// Per column: the mean minus the method's baseline mean (FixRAT and AdaRAT rows).
    pub delta: Vec<Option<f64>>,
    /// Per column: the evidence for a difference to the baseline of the same settings, over
    /// seed-matched pairs (paired t) or, with one seed, over the same test images (McNemar).
    pub evidence: Vec<Option<Evidence>>,
}

impl MainRow {
    /// `name` (its mode, or its method in a figure) with what keeps its group apart
    /// (`adarat [epochs 2]`) and, where presets mix, its AutoAttack preset (`adarat (AA standard)`).
    pub fn label(&self, name: impl std::fmt::Display, mixed_presets: bool) -> String {
        let mut label = labelled(name, self.apart.as_deref());
        if let (true, Some(preset)) = (mixed_presets, &self.preset) {
            label += &format!(" (AA {preset})");
        }
        label
    }

    /// What its evidence against the baseline rests on (`paired t, n 3 seeds`); none without any.
    pub fn basis(&self) -> Option<String> {
        Some(self.evidence.iter().flatten().next()?.basis())
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct MainTable {
    pub dataset: DatasetKind,
    pub rows: Vec<MainRow>,
    /// The AutoAttack presets of the table's runs.
    pub presets: Vec<String>,
    /// Footnotes: groups kept apart and why, sanity flags of runs.
    pub notes: Vec<String>,
}

impl MainTable {
    /// Whether its rows were attacked with more than one AutoAttack preset (`protocol:
    /// reference`: Generalist's standard one beside torchattacks'), so each row says its own.
    pub fn mixed_presets(&self) -> bool {
        self.presets.len() > 1
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct PeakRow {
    pub method: Method,
    pub dataset: DatasetKind,
    pub mode: Mode,
    pub apart: Option<String>,
    pub seeds: Vec<u64>,
    pub sa_epoch: Stat,
    pub sa: Stat,
    pub ra_epoch: Stat,
    pub ra: Stat,
    /// |SA peak epoch − RA peak epoch|, per seed, then averaged.
    pub distance: Stat,
    pub last_sa: Stat,
    pub last_ra: Stat,
}

/// Which jobs to report.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub datasets: Vec<DatasetKind>,
    pub methods: Vec<Method>,
}

impl Filter {
    pub fn keeps(&self, key: &GroupKey) -> bool {
        (self.datasets.is_empty() || self.datasets.contains(&key.dataset))
            && (self.methods.is_empty() || self.methods.contains(&key.method))
    }
}

/// The groups to report, in the study's order (dataset, method, mode).
pub(super) fn ordered(collection: &Collection) -> Vec<&Group> {
    let mut groups: Vec<&Group> = collection.groups.iter().collect();
    groups.sort_by_key(|g| {
        let k = &g.key;
        (
            ordinal(DatasetKind::ALL, k.dataset),
            ordinal(Method::ALL, k.method),
            ordinal(Mode::ALL, k.mode),
        )
    });
    groups
}

fn ordinal<T: PartialEq>(all: &[T], value: T) -> usize {
    all.iter().position(|v| *v == value).unwrap_or(usize::MAX)
}

/// One main table per dataset.
pub fn main_tables(collection: &Collection) -> Vec<MainTable> {
    let groups = ordered(collection);
    let mut tables: Vec<MainTable> = Vec::new();
    for &dataset in DatasetKind::ALL {
        let in_dataset: Vec<&Group> = (groups.iter().copied())
            .filter(|g| g.key.dataset == dataset)
            .collect();
        if in_dataset.is_empty() {
            continue;
        }
        let mut rows: Vec<MainRow> = in_dataset
            .iter()
            .map(|group| MainRow {
                method: group.key.method,
                mode: group.key.mode,
                apart: group.apart.clone(),
                preset: group.preset().map(str::to_string),
                seeds: group.seeds(),
                cells: COLUMNS
                    .iter()
                    .map(|(_, attack)| {
                        let values: Vec<f64> = (group.runs.iter())
                            .filter_map(|r| value(r.result.final_table.as_ref()?, *attack))
                            .collect();
                        Stat::of(&values)
                    })
                    .collect(),
                best: vec![false; COLUMNS.len()],
                delta: vec![None; COLUMNS.len()],
                evidence: vec![None; COLUMNS.len()],
            })
            .collect();
        mark_best_and_delta(&mut rows, &in_dataset);
        let mut notes = Vec::new();
        let mut presets: Vec<String> = Vec::new();
        for group in &in_dataset {
            if let Some(apart) = &group.apart {
                notes.push(format!(
                    "{}/{}/{} ({apart}): kept apart from the job's other runs, whose settings differ; never averaged",
                    group.key.method, group.key.dataset, group.key.mode
                ));
            }
            if !group.attacked() {
                notes.push(format!(
                    "{}: no final attack table by design (it trains teachers; docs/protocol.md)",
                    group.label()
                ));
            }
            if let Some(preset) = group.preset() {
                if !presets.iter().any(|p| p == preset) {
                    presets.push(preset.to_string());
                }
            }
            for run in &group.runs {
                for flag in run.result.final_table.iter().flat_map(|t| &t.flags) {
                    notes.push(format!(
                        "{} seed {}: {flag}",
                        run.result.job, run.result.seed
                    ));
                }
            }
        }
        tables.push(MainTable {
            dataset,
            rows,
            presets,
            notes,
        });
    }
    tables
}

/// The best mean per method and column, and each non-baseline row's difference to its method's
/// baseline with the same settings.
fn mark_best_and_delta(rows: &mut [MainRow], groups: &[&Group]) {
    for column in 0..COLUMNS.len() {
        for method in Method::ALL {
            let best = (rows.iter())
                .filter(|r| r.method == *method)
                .filter_map(|r| r.cells[column].map(|s| s.mean))
                .fold(f64::NEG_INFINITY, f64::max);
            for row in rows.iter_mut().filter(|r| r.method == *method) {
                row.best[column] = row.cells[column].is_some_and(|s| s.mean == best);
            }
        }
    }
    for index in 0..rows.len() {
        let key = &groups[index].key;
        if key.mode == Mode::Baseline {
            continue;
        }
        let baseline_key = key.baseline();
        let Some(baseline) = groups.iter().position(|g| g.key == baseline_key) else {
            continue;
        };
        for (column, (_, attack)) in COLUMNS.iter().enumerate() {
            rows[index].delta[column] =
                match (rows[index].cells[column], rows[baseline].cells[column]) {
                    (Some(mine), Some(base)) => Some(mine.mean - base.mean),
                    _ => None,
                };
            rows[index].evidence[column] = evidence(groups[index], groups[baseline], *attack);
        }
    }
}

/// The evidence for `group`'s difference to `baseline` in one column: the paired t-test over the
/// seeds both have; with one such seed, McNemar's exact test over the test images both runs
/// recorded (docs/report.md#the-verdict).
fn evidence(group: &Group, baseline: &Group, attack: Option<FinalAttack>) -> Option<Evidence> {
    let pairs: Vec<(&Run, &Run)> = (group.runs.iter())
        .filter_map(|run| {
            let seed = run.result.seed;
            Some((run, baseline.runs.iter().find(|b| b.result.seed == seed)?))
        })
        .collect();
    match pairs.as_slice() {
        [] => None,
        [(mine, base)] => per_image_evidence(mine, base, attack),
        pairs => {
            let values: Vec<(f64, f64)> = (pairs.iter())
                .filter_map(|(mine, base)| {
                    let of = |run: &Run| value(run.result.final_table.as_ref()?, attack);
                    Some((of(mine)?, of(base)?))
                })
                .collect();
            stats::paired_t(&values)
        }
    }
}

/// McNemar's exact test of one seed's two runs over the test images both recorded: none when
/// either has no records for the column, or they scored different images.
fn per_image_evidence(mine: &Run, base: &Run, attack: Option<FinalAttack>) -> Option<Evidence> {
    let name = attack.map_or("clean", |a| a.as_str());
    let (mine, base) = (mine.per_image.as_ref()?, base.per_image.as_ref()?);
    let (only_mine, only_base) = discordant(mine.correct(name)?, base.correct(name)?).ok()?;
    stats::mcnemar(only_mine, only_base, mine.images() as u64)
}

/// The peaks of every group: where test SA and RA (PGD) peaked, how far apart, and the last epoch.
pub fn peaks(collection: &Collection) -> Vec<PeakRow> {
    ordered(collection)
        .into_iter()
        .filter_map(|group| {
            let per_run = |value: &dyn Fn(&crate::store::result::RunResult) -> Option<f64>| {
                let values: Vec<f64> = group.runs.iter().filter_map(|r| value(&r.result)).collect();
                Stat::of(&values)
            };
            let peak = |r: &crate::store::result::RunResult| r.peaks;
            let last = |r: &crate::store::result::RunResult| r.epochs_log.last().cloned();
            Some(PeakRow {
                method: group.key.method,
                dataset: group.key.dataset,
                mode: group.key.mode,
                apart: group.apart.clone(),
                seeds: group.seeds(),
                sa_epoch: per_run(&|r| peak(r).map(|p| p.test_clean_acc.epoch as f64))?,
                sa: per_run(&|r| peak(r).map(|p| p.test_clean_acc.value))?,
                ra_epoch: per_run(&|r| peak(r).map(|p| p.test_pgd_acc.epoch as f64))?,
                ra: per_run(&|r| peak(r).map(|p| p.test_pgd_acc.value))?,
                distance: per_run(&|r| {
                    peak(r).map(|p| {
                        (p.test_clean_acc.epoch as f64 - p.test_pgd_acc.epoch as f64).abs()
                    })
                })?,
                last_sa: per_run(&|r| last(r).map(|e| e.test_clean_acc))?,
                last_ra: per_run(&|r| last(r).map(|e| e.test_pgd_acc))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_sd_divides_by_n_minus_one_and_one_seed_has_none() {
        let s = Stat::of(&[80.0, 82.0, 84.0]).unwrap();
        assert_eq!((s.mean, s.sd, s.n), (82.0, Some(2.0), 3));
        assert_eq!(Stat::of(&[70.5]).unwrap().sd, None);
        assert!(Stat::of(&[]).is_none());
    }
}
