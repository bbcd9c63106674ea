//! Run folders gathered into groups: runs whose resolved configurations (`config.yaml`) are equal
//! apart from the seed, the device, the paths and the speed switches, none of which changes what a
//! number means. Whatever else differs between groups of one job (epochs, `--limit-train`, β, the
//! learning rate…) keeps them apart and labels them, so no mean mixes two experiments
//! (docs/report.md#groups).
use crate::config::JobConfig;
use crate::store::per_image::PerImage;
use crate::store::result::RunResult;
use crate::store::{self, RunName, RESULT_FILE};
use crate::vocab::{DatasetKind, Method, Mode, Status};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// One completed run, where it lives and what it ran.
#[derive(Clone, Debug)]
pub struct Run {
    pub folder: PathBuf,
    /// Shared with the console's snapshot, which read it already.
    pub result: Arc<RunResult>,
    /// `config.yaml`; none for a folder without a readable one (copied without it), whose group
    /// is then told by what `result.json` records.
    pub config: Option<Arc<JobConfig>>,
    /// `per-image.json`: which test images stayed correct under each attack; none for a run
    /// without one (ST, earlier versions) or a damaged one.
    pub per_image: Option<Arc<PerImage>>,
}

/// Keys of `config.yaml` that never change a run's numbers: who it is (the job's own fields are
/// the key's), its seed (what a group averages over), where it ran and how fast.
const NOT_SETTINGS: &[&str] = &[
    "job",
    "method",
    "dataset",
    "mode",
    "seed",
    "device",
    "cudnn_benchmark",
    "channels_last",
    "cuda_graphs",
    "data_dir",
    "output_dir",
    "mirror",
];

/// What must be equal for runs to be averaged together: the job and every setting that can change
/// its numbers, by dotted `config.yaml` name (`limit_train`, `ratio.beta`, `attack.epsilon`).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupKey {
    pub method: Method,
    pub dataset: DatasetKind,
    pub mode: Mode,
    pub settings: BTreeMap<String, String>,
}

impl GroupKey {
    fn of(run: &Run) -> GroupKey {
        let result = &run.result;
        let mut settings = BTreeMap::new();
        match &run.config {
            Some(config) => {
                let fields = match serde_yaml::to_value(config.as_ref()) {
                    Ok(Value::Mapping(fields)) => fields,
                    _ => Default::default(),
                };
                for (key, value) in &fields {
                    let key = key.as_str().unwrap_or_default();
                    if !NOT_SETTINGS.contains(&key) {
                        flatten(key, value, &mut settings);
                    }
                }
            }
            // What result.json records of the settings.
            None => {
                let table = result.final_table.as_ref();
                let show = |v: Option<String>| v.unwrap_or_else(|| NONE.into());
                settings.extend([
                    ("model".to_string(), result.model.to_string()),
                    ("protocol".to_string(), result.protocol.to_string()),
                    ("epochs".to_string(), result.epochs.to_string()),
                    (
                        "attack.epsilon".to_string(),
                        show(table.and_then(|t| t.epsilon).map(in_255ths)),
                    ),
                    (
                        "evaluation.autoattack".to_string(),
                        show(table.and_then(|t| t.autoattack_preset.clone())),
                    ),
                    (
                        "final images".to_string(),
                        show(table.and_then(|t| t.images).map(|n| n.to_string())),
                    ),
                ]);
            }
        }
        // The baseline never uses the ratio's settings, so they do not keep its runs apart.
        if result.mode == Mode::Baseline {
            settings.retain(|name, _| name != "ratio" && !name.starts_with("ratio."));
        }
        GroupKey {
            method: result.method,
            dataset: result.dataset,
            mode: result.mode,
            settings,
        }
    }

    /// The key of this group's baseline: the same method and settings but the ratio's.
    pub fn baseline(&self) -> GroupKey {
        let mut settings = self.settings.clone();
        settings.retain(|name, _| name != "ratio" && !name.starts_with("ratio."));
        GroupKey {
            mode: Mode::Baseline,
            settings,
            ..self.clone()
        }
    }

    /// Whether `other` is a group of the same job.
    pub fn same_job(&self, other: &GroupKey) -> bool {
        (self.method, self.dataset, self.mode) == (other.method, other.dataset, other.mode)
    }

    /// This group's value of each setting in which one of `others` differs, as `name value`.
    fn apart_from(&self, others: &[&GroupKey]) -> String {
        let names: std::collections::BTreeSet<&String> = std::iter::once(self)
            .chain(others.iter().copied())
            .flat_map(|k| k.settings.keys())
            .collect();
        let value = |key: &GroupKey, name: &str| -> String {
            key.settings
                .get(name)
                .cloned()
                .unwrap_or_else(|| NONE.into())
        };
        names
            .into_iter()
            .filter(|name| others.iter().any(|o| value(o, name) != value(self, name)))
            .map(|name| format!("{name} {}", value(self, name)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a setting without a value (`limit_train: null`) is written.
const NONE: &str = "none";

/// `config.yaml`'s values by dotted name: a tagged value (`augment: !crop-flip {pad: 4}`) gives its
/// tag under its own name and its fields below it; a list is written inline.
fn flatten(name: &str, value: &Value, settings: &mut BTreeMap<String, String>) {
    match value {
        Value::Mapping(fields) => {
            for (key, value) in fields {
                let key = key.as_str().map_or_else(|| scalar(key), str::to_string);
                flatten(&format!("{name}.{key}"), value, settings);
            }
        }
        Value::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            settings.insert(name.to_string(), tag.trim_start_matches('!').to_string());
            if !matches!(tagged.value, Value::Null) {
                flatten(name, &tagged.value, settings);
            }
        }
        Value::Number(n) if is_budget(name) => {
            let value = n.as_f64().map_or_else(|| n.to_string(), in_255ths);
            settings.insert(name.to_string(), value);
        }
        value => {
            settings.insert(name.to_string(), scalar(value));
        }
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::Null => NONE.into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Sequence(items) => {
            let items: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Mapping(_) | Value::Tagged(_) => serde_yaml::to_string(value)
            .unwrap_or_default()
            .trim()
            .replace('\n', " "),
    }
}

/// Whether a setting is an L∞ budget or step, which people write in 255ths.
fn is_budget(name: &str) -> bool {
    name.ends_with("epsilon") || name.ends_with("step_size")
}

/// `8/255` for a whole number of 255ths, else the number as it is.
fn in_255ths(value: f64) -> String {
    let in_255ths = value * 255.0;
    let whole = in_255ths.round();
    if value > 0.0 && value < 1.0 && whole >= 1.0 && (in_255ths - whole).abs() < 1e-9 {
        format!("{whole}/255")
    } else {
        value.to_string()
    }
}

/// Runs of one configuration but their seeds, seeds ascending.
#[derive(Clone, Debug)]
pub struct Group {
    pub key: GroupKey,
    pub runs: Vec<Run>,
    /// What tells this group from the other groups of its job (`epochs 2, limit_train 200`), when
    /// there are others.
    pub apart: Option<String>,
}

impl Group {
    pub fn seeds(&self) -> Vec<u64> {
        self.runs.iter().map(|r| r.result.seed).collect()
    }

    /// The AutoAttack preset of the group's final tables (one configuration, so one preset).
    pub fn preset(&self) -> Option<&str> {
        (self.runs.iter()).find_map(|r| r.result.final_table.as_ref()?.autoattack_preset.as_deref())
    }

    /// Whether its runs have a final attack table (ST has none: it only teaches).
    pub fn attacked(&self) -> bool {
        self.runs.iter().any(|r| r.result.final_table.is_some())
    }

    /// `pgd-at/cifar10/adarat`, with what keeps it apart (`[epochs 2]`).
    pub fn label(&self) -> String {
        let job = format!("{}/{}/{}", self.key.method, self.key.dataset, self.key.mode);
        labelled(job, self.apart.as_deref())
    }
}

/// `name [apart]`: a row's or a line's name with what keeps its group apart from the job's other
/// groups, where something does: the one way every table, figure and screen writes it.
pub fn labelled(name: impl std::fmt::Display, apart: Option<&str>) -> String {
    match apart {
        Some(apart) => format!("{name} [{apart}]"),
        None => name.to_string(),
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
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for folder in folders {
        match store::read_result(&folder.join(RESULT_FILE)) {
            Ok(result) if result.status == Status::Completed => {
                let config = store::read_config(&folder).map(Arc::new);
                let per_image = store::read_per_image(&folder).ok().flatten().map(Arc::new);
                runs.push(Run {
                    folder,
                    result: Arc::new(result),
                    config,
                    per_image,
                });
            }
            Ok(result) => {
                let (done, of) = (result.epochs_done, result.epochs);
                skipped.push((folder, format!("{} ({done} of {of} epochs)", result.status)));
            }
            Err(error) => skipped.push((folder, format!("unreadable: {error}"))),
        }
    }
    Collection {
        skipped,
        ..of_runs(runs)
    }
}

/// The groups of runs already read (the console's results): the completed ones.
pub fn of_runs(runs: impl IntoIterator<Item = Run>) -> Collection {
    let mut groups: Vec<Group> = Vec::new();
    for run in runs {
        if run.result.status != Status::Completed {
            continue;
        }
        let key = GroupKey::of(&run);
        match groups.iter_mut().find(|g| g.key == key) {
            // The same seed twice (two output folders holding one run): the first is kept.
            Some(group) if group.seeds().contains(&run.result.seed) => {}
            Some(group) => group.runs.push(run),
            None => groups.push(Group {
                key,
                runs: vec![run],
                apart: None,
            }),
        }
    }
    for group in &mut groups {
        group.runs.sort_by_key(|run| run.result.seed);
    }
    let aparts: Vec<Option<String>> = (groups.iter())
        .map(|group| {
            let others: Vec<&GroupKey> = (groups.iter())
                .map(|g| &g.key)
                .filter(|k| k.same_job(&group.key) && **k != group.key)
                .collect();
            (!others.is_empty()).then(|| group.key.apart_from(&others))
        })
        .collect();
    for (group, apart) in groups.iter_mut().zip(aparts) {
        group.apart = apart;
    }
    Collection {
        groups,
        skipped: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, JobOverrides};
    use crate::store::result::FinalTable;

    /// A completed run of `job` with `seed`, its configuration changed by `sets`.
    fn run(job: &str, seed: u64, sets: &[&str]) -> Run {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let study = config::parse(
            config::DEFAULT_CONFIG,
            "/s/experiments.yaml".as_ref(),
            &sets,
        )
        .unwrap();
        let overrides = JobOverrides {
            seed: Some(seed),
            ..Default::default()
        };
        let cfg = study.resolve(&job.parse().unwrap(), &overrides).unwrap();
        let result = RunResult {
            job: cfg.name(),
            method: cfg.method(),
            dataset: cfg.dataset,
            mode: cfg.mode,
            model: cfg.model,
            seed,
            protocol: cfg.protocol,
            device: "cpu".into(),
            status: Status::Completed,
            error: None,
            epochs: cfg.epochs,
            epochs_done: cfg.epochs,
            seconds: 1.0,
            epochs_log: Vec::new(),
            peaks: None,
            final_table: Some(FinalTable::default()),
        };
        Run {
            folder: PathBuf::from(format!("/out/{job}/{seed}")),
            result: Arc::new(result),
            config: Some(Arc::new(cfg)),
            per_image: None,
        }
    }

    #[test]
    fn runs_are_grouped_by_everything_but_seed_device_paths_and_speed() {
        let collection = of_runs([
            run("pgd-at/cifar10/adarat", 1, &[]),
            // Another seed, device, output folder and speed switches: the same experiment.
            run(
                "pgd-at/cifar10/adarat",
                2,
                &["device=cpu", "paths.output=/elsewhere", "cuda_graphs=false"],
            ),
            run("pgd-at/cifar10/adarat", 3, &["training.learning_rate=0.05"]),
        ]);
        assert_eq!(collection.groups.len(), 2);
        let (same, other) = (&collection.groups[0], &collection.groups[1]);
        assert_eq!(same.seeds(), vec![1, 2]);
        assert_eq!(same.apart.as_deref(), Some("learning_rate 0.1"));
        assert_eq!(other.apart.as_deref(), Some("learning_rate 0.05"));
        assert_eq!(other.label(), "pgd-at/cifar10/adarat [learning_rate 0.05]");
    }

    #[test]
    fn a_baseline_is_not_kept_apart_by_the_ratio_it_never_uses() {
        let beta = "methods.pgd-at.settings.beta=0.5";
        let collection = of_runs([
            run("pgd-at/cifar10/baseline", 1, &[]),
            run("pgd-at/cifar10/baseline", 2, &[beta]),
            run("pgd-at/cifar10/adarat", 1, &[beta]),
        ]);
        assert_eq!(collection.groups.len(), 2);
        let adarat = &collection.groups[1].key;
        assert_eq!(adarat.settings["ratio.beta"], "0.5");
        assert_eq!(adarat.baseline(), collection.groups[0].key);
    }

    #[test]
    fn settings_are_flattened_by_dotted_name_with_tags_and_255ths() {
        let yaml = "augment: !crop-flip\n  pad: 4\nattack:\n  epsilon: 0.03137254901960784\n  steps: 10\nlimit_train: null\nlr_schedule: !step\n  milestones: [60, 90]\nparams: pgd-at\n";
        let value: Value = serde_yaml::from_str(yaml).unwrap();
        let mut settings = BTreeMap::new();
        for (key, value) in value.as_mapping().unwrap() {
            flatten(key.as_str().unwrap(), value, &mut settings);
        }
        let get = |name: &str| settings.get(name).map(String::as_str);
        assert_eq!(get("augment"), Some("crop-flip"));
        assert_eq!(get("augment.pad"), Some("4"));
        assert_eq!(get("attack.epsilon"), Some("8/255"));
        assert_eq!(get("attack.steps"), Some("10"));
        assert_eq!(get("limit_train"), Some("none"));
        assert_eq!(get("lr_schedule"), Some("step"));
        assert_eq!(get("lr_schedule.milestones"), Some("[60, 90]"));
        assert_eq!(get("params"), Some("pgd-at"));
        assert_eq!(in_255ths(0.5), "0.5");
        assert_eq!(in_255ths(2.0 / 255.0), "2/255");
    }
}
