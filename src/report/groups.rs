//! Run folders gathered into groups: runs that differ only in their seed. Anything else that
//! changes what a number means (protocol, ε, AutoAttack preset, epochs, model, the images the
//! table was computed on) keeps runs apart, so no mean mixes two experiments (docs/report.md).
use crate::store::result::RunResult;
use crate::store::{self, RunName, RESULT_FILE};
use crate::vocab::{DatasetKind, Method, Mode, ModelKind, Protocol, Status};
use std::path::PathBuf;
use std::sync::Arc;

/// One completed run and where it lives.
#[derive(Clone, Debug)]
pub struct Run {
    pub folder: PathBuf,
    /// Shared with the console's snapshot, which read it already.
    pub result: Arc<RunResult>,
}

/// What must be equal for runs to be averaged together; the seed is not part of it.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupKey {
    pub method: Method,
    pub dataset: DatasetKind,
    pub mode: Mode,
    pub model: ModelKind,
    pub protocol: Protocol,
    pub epochs: usize,
    pub epsilon: Option<f64>,
    pub preset: Option<String>,
    pub images: Option<usize>,
}

impl GroupKey {
    fn of(result: &RunResult) -> GroupKey {
        let table = result.final_table.as_ref();
        GroupKey {
            method: result.method,
            dataset: result.dataset,
            mode: result.mode,
            model: result.model,
            protocol: result.protocol,
            epochs: result.epochs,
            epsilon: table.and_then(|t| t.epsilon),
            preset: table.and_then(|t| t.autoattack_preset.clone()),
            images: table.and_then(|t| t.images),
        }
    }

    /// The settings that keep groups of one job apart, by name, as the tables write them.
    pub fn settings(&self) -> [(&'static str, String); 6] {
        let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        [
            ("model", self.model.to_string()),
            ("protocol", self.protocol.to_string()),
            ("epochs", self.epochs.to_string()),
            ("ε", show(self.epsilon.map(|e| format!("{e:.6}")))),
            ("AutoAttack", show(self.preset.clone())),
            ("images", show(self.images.map(|n| n.to_string()))),
        ]
    }
}

/// Runs that differ only in their seed, seeds ascending.
#[derive(Clone, Debug)]
pub struct Group {
    pub key: GroupKey,
    pub runs: Vec<Run>,
}

impl Group {
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.result.seed).collect()
    }
}

/// What was found in the output folders: the groups, and the run folders left out with why.
#[derive(Debug, Default)]
pub struct Collection {
    pub groups: Vec<Group>,
    /// `(folder, why)`: unreadable `result.json`, or a run that has not completed.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Reads every run folder (a folder named as adarat names runs) of `output_dirs`.
pub fn collect(output_dirs: &[PathBuf]) -> Collection {
    let mut collection = Collection::default();
    let mut folders: Vec<PathBuf> = Vec::new();
    for dir in output_dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let named = (path.file_name())
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.parse::<RunName>().is_ok());
            if named && path.join(RESULT_FILE).is_file() {
                folders.push(path);
            }
        }
    }
    folders.sort();
    for folder in folders {
        match store::read_result(&folder.join(RESULT_FILE)) {
            Ok(result) if result.status == Status::Completed && result.final_table.is_some() => {
                let result = Arc::new(result);
                add(&mut collection.groups, Run { folder, result });
            }
            Ok(result) => {
                let why = if result.status == Status::Completed {
                    "completed without a final attack table".to_string()
                } else {
                    let (done, of) = (result.epochs_done, result.epochs);
                    format!("{} ({done} of {of} epochs)", result.status)
                };
                collection.skipped.push((folder, why));
            }
            Err(error) => collection
                .skipped
                .push((folder, format!("unreadable: {error}"))),
        }
    }
    sort_seeds(&mut collection);
    collection
}

/// The groups of runs already read (the console's results): completed runs with a final table.
pub fn of_runs(runs: impl IntoIterator<Item = Run>) -> Collection {
    let mut collection = Collection::default();
    for run in runs {
        if run.result.status == Status::Completed && run.result.final_table.is_some() {
            add(&mut collection.groups, run);
        }
    }
    sort_seeds(&mut collection);
    collection
}

fn sort_seeds(collection: &mut Collection) {
    for group in &mut collection.groups {
        group.runs.sort_by_key(|run| run.result.seed);
    }
}

fn add(groups: &mut Vec<Group>, run: Run) {
    let key = GroupKey::of(&run.result);
    match groups.iter_mut().find(|g| g.key == key) {
        // The same seed twice (two output folders holding one run): the first is kept.
        Some(group) if group.seeds().contains(&run.result.seed) => {}
        Some(group) => group.runs.push(run),
        None => groups.push(Group {
            key,
            runs: vec![run],
        }),
    }
}
