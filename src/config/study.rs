//! The schema of `experiments.yaml`, its validation and the resolution of a job's configuration.
//!
//! Settings come in layers, each overriding the one before: `training`, then `datasets.<d>`, then
//! `methods.<m>.settings`, then `methods.<m>.datasets.<d>`, then the command line
//! ([`layers`]). `resolve` puts a job's configuration together from one resolver per section, each
//! in its own file.
mod evaluation;
mod layers;
mod params;
mod ratio;
mod training;

use super::device::DeviceSpec;
use super::job::*;
use super::locate::locate;
use super::number::Num;
use crate::vocab::{DatasetKind, JobName, Method, Mode, ModelKind};
use layers::{Layers, Located};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(thiserror::Error, Debug, PartialEq)]
#[error("{origin}{line}: {message}", line = .line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct ConfigError {
    pub origin: String,
    pub line: Option<usize>,
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StudyFile {
    paths: Paths,
    device: DeviceSpec,
    // The speed switches stay flat fields here, not a flattened `SpeedSwitches`: serde's flatten
    // would lose the line and path of every refusal in the file; `resolve` puts them together.
    #[serde(default = "enabled")]
    cudnn_benchmark: bool,
    #[serde(default = "enabled")]
    channels_last: bool,
    #[serde(default = "enabled")]
    cuda_graphs: bool,
    seed: u64,
    protocol: Protocol,
    training: Settings,
    evaluation: Evaluation,
    datasets: BTreeMap<DatasetKind, Settings>,
    models: BTreeMap<ModelKind, ModelEntry>,
    methods: BTreeMap<Method, MethodEntry>,
    grid: Grid,
    #[serde(default)]
    queue: super::placement::Placement,
    #[serde(default)]
    scheduler: super::scheduler::SchedulerSection,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Paths {
    data: PathBuf,
    output: PathBuf,
    /// A base URL serving the official dataset files instead of their official addresses.
    #[serde(default)]
    mirror: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Evaluation {
    batch_size: usize,
    final_attacks: Vec<String>,
    autoattack: Option<AutoAttackPreset>,
    cw_steps: usize,
    cw_margin: Num,
    /// The final table on the first N test images; absent: all of them.
    #[serde(default)]
    final_images: Option<usize>,
    /// Per-dataset values of any key above.
    #[serde(default)]
    datasets: BTreeMap<DatasetKind, EvaluationLayer>,
}

/// `evaluation.datasets.<d>`: what differs for one dataset (the quick `synthetic` table).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvaluationLayer {
    batch_size: Option<usize>,
    final_attacks: Option<Vec<String>>,
    autoattack: Option<AutoAttackPreset>,
    cw_steps: Option<usize>,
    cw_margin: Option<Num>,
    final_images: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelEntry {
    dropout: Num,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MethodEntry {
    modes: Vec<Mode>,
    #[serde(default)]
    params: Option<serde_yaml::Value>,
    #[serde(default)]
    settings: Settings,
    #[serde(default)]
    datasets: BTreeMap<DatasetKind, Settings>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grid {
    methods: Vec<Method>,
    datasets: Vec<DatasetKind>,
    modes: Vec<Mode>,
    /// Each job runs once per seed; absent: the study's `seed` alone.
    #[serde(default)]
    seeds: Option<Vec<u64>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AugmentName {
    CropFlip,
    Crop,
    None,
}

/// `{step: {milestones, factors}}` or `{piecewise-linear: {points}}`: exactly one of the two.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ScheduleEntry {
    step: Option<StepEntry>,
    piecewise_linear: Option<PiecewiseEntry>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepEntry {
    milestones: Vec<usize>,
    factors: Vec<Num>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PiecewiseEntry {
    points: Vec<(Num, Num)>,
}

/// Every setting a layer may hold; absent ones fall through to the layer before.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    model: Option<ModelKind>,
    dropout: Option<Num>,
    epochs: Option<usize>,
    batch_size: Option<usize>,
    learning_rate: Option<Num>,
    lr_schedule: Option<ScheduleEntry>,
    momentum: Option<Num>,
    weight_decay: Option<Num>,
    reset_momentum_each_epoch: Option<bool>,
    epsilon: Option<Num>,
    step_size: Option<Num>,
    steps: Option<usize>,
    attack_bn_mode: Option<BnMode>,
    beta: Option<Num>,
    up: Option<Num>,
    down: Option<Num>,
    tau: Option<Num>,
    switch: Option<Num>,
    augment: Option<AugmentName>,
    train_size: Option<usize>,
    test_size: Option<usize>,
    precision: Option<Precision>,
}

/// Command-line values that override the configuration for one run.
#[derive(Default, Clone, Debug)]
pub struct JobOverrides {
    pub epochs: Option<usize>,
    pub model: Option<ModelKind>,
    pub seed: Option<u64>,
    pub device: Option<DeviceSpec>,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    pub output_dir: Option<PathBuf>,
}

/// The parsed, validated study.
#[derive(Debug)]
pub struct Study {
    file: StudyFile,
    text: String,
    origin: String,
    base: PathBuf,
    /// Dotted paths given with `--set`, reported as such instead of a line.
    set_paths: Vec<String>,
}

impl Study {
    pub(super) fn new(
        file: StudyFile,
        text: String,
        origin: &Path,
        set_paths: Vec<String>,
    ) -> Result<Study, ConfigError> {
        let base = match origin.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let base = std::path::absolute(&base).unwrap_or(base);
        let study = Study {
            file,
            text,
            origin: origin.display().to_string(),
            base,
            set_paths,
        };
        study.validate()?;
        Ok(study)
    }

    /// An error at a dotted path: its line in the file, or `--set` if the value came from there.
    fn error(&self, path: &str, message: impl std::fmt::Display) -> ConfigError {
        if path.starts_with("--") {
            return ConfigError {
                origin: "command line".into(),
                line: None,
                message: format!("{path}: {message}"),
            };
        }
        if self.set_paths.iter().any(|p| p == path) {
            return ConfigError {
                origin: format!("--set {path}"),
                line: None,
                message: message.to_string(),
            };
        }
        ConfigError {
            origin: self.origin.clone(),
            line: locate(&self.text, path),
            message: format!("{path}: {message}"),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.base.join(&self.file.paths.data)
    }

    pub fn output_dir(&self) -> PathBuf {
        self.base.join(&self.file.paths.output)
    }

    /// `paths.mirror`: where datasets are downloaded from instead of their official addresses.
    pub fn mirror(&self) -> Option<&str> {
        self.file.paths.mirror.as_deref()
    }

    /// Where the queue worker runs jobs (`queue:`).
    pub fn placement(&self) -> &super::placement::Placement {
        &self.file.queue
    }

    /// Where `adarat submit` sends runs (`scheduler:`).
    pub fn scheduler(&self) -> &super::scheduler::SchedulerSection {
        &self.file.scheduler
    }

    /// Every job of the grid, methods outermost; `st` only in baseline.
    pub fn grid(&self) -> Vec<JobName> {
        self.grid_over(&self.file.grid.datasets)
    }

    /// The top-level `seed`: a job's seed when none is given.
    pub fn seed(&self) -> u64 {
        self.file.seed
    }

    /// The seeds each grid job runs with (`grid.seeds`, else the study's `seed`), in order.
    pub fn seeds(&self) -> Vec<u64> {
        (self.file.grid.seeds.clone()).unwrap_or_else(|| vec![self.file.seed])
    }

    /// The grid's datasets, left to right.
    pub fn grid_datasets(&self) -> &[DatasetKind] {
        &self.file.grid.datasets
    }

    /// The grid's methods and modes over other datasets, in grid order (method, mode, dataset).
    pub fn grid_over(&self, datasets: &[DatasetKind]) -> Vec<JobName> {
        let g = &self.file.grid;
        let mut jobs = Vec::new();
        for &method in &g.methods {
            let modes = self.file.methods.get(&method).map(|m| &m.modes);
            for &mode in g
                .modes
                .iter()
                .filter(|m| modes.is_some_and(|ms| ms.contains(m)))
            {
                jobs.extend(datasets.iter().map(|&dataset| JobName {
                    method,
                    dataset,
                    mode,
                }));
            }
        }
        jobs
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let f = &self.file;
        if let Some(d) = f
            .evaluation
            .datasets
            .keys()
            .find(|d| !f.datasets.contains_key(d))
        {
            return Err(self.error(
                &format!("evaluation.datasets.{d}"),
                format!("dataset `{d}` has no entry under `datasets`"),
            ));
        }
        for (model, entry) in &f.models {
            let layer = format!("models.{model}");
            self.below_one(Located::at(&layer, "dropout", entry.dropout))?;
        }
        for (method, entry) in &f.methods {
            if entry.modes.is_empty() {
                return Err(self.error(
                    &format!("methods.{method}.modes"),
                    "expected at least one mode",
                ));
            }
            if *method == Method::St && entry.modes.iter().any(|m| *m != Mode::Baseline) {
                return Err(self.error(
                    &format!("methods.{method}.modes"),
                    "st has the baseline mode only",
                ));
            }
        }
        let g = &f.grid;
        for (name, empty) in [
            ("methods", g.methods.is_empty()),
            ("datasets", g.datasets.is_empty()),
            ("modes", g.modes.is_empty()),
        ] {
            if empty {
                return Err(self.error(
                    &format!("grid.{name}"),
                    "the grid needs at least one entry here",
                ));
            }
        }
        if let Some(seeds) = &g.seeds {
            if seeds.is_empty() {
                return Err(self.error("grid.seeds", "expected at least one seed"));
            }
            if let Some(twice) =
                (seeds.iter()).find(|s| seeds.iter().filter(|t| t == s).count() > 1)
            {
                return Err(self.error("grid.seeds", format!("seed {twice} is listed twice")));
            }
        }
        if let Some(m) = g.methods.iter().find(|m| !f.methods.contains_key(m)) {
            return Err(self.error(
                "grid.methods",
                format!("method `{m}` has no entry under `methods`"),
            ));
        }
        if let Some(d) = g.datasets.iter().find(|d| !f.datasets.contains_key(d)) {
            return Err(self.error(
                "grid.datasets",
                format!("dataset `{d}` has no entry under `datasets`"),
            ));
        }
        if self.grid().is_empty() {
            return Err(self.error(
                "grid",
                "the grid holds no job (no method allows any of its modes)",
            ));
        }
        // Resolving every job of the grid, and every dataset with every method, surfaces a bad value at load time.
        for &method in f.methods.keys() {
            let mode = f.methods[&method].modes[0];
            for &dataset in f.datasets.keys() {
                self.resolve(
                    &JobName {
                        method,
                        dataset,
                        mode,
                    },
                    &JobOverrides::default(),
                )?;
            }
        }
        Ok(())
    }

    /// The complete configuration of `job`, every default filled in and checked. Values are looked
    /// up section by section in the order a run uses them, so the first bad one is reported.
    pub fn resolve(
        &self,
        job: &JobName,
        overrides: &JobOverrides,
    ) -> Result<JobConfig, ConfigError> {
        let f = &self.file;
        let method_entry = f.methods.get(&job.method).ok_or_else(|| {
            self.error("methods", format!("method `{}` has no entry", job.method))
        })?;
        if !method_entry.modes.contains(&job.mode) {
            return Err(self.error(
                &format!("methods.{}.modes", job.method),
                format!("mode `{}` is not allowed for {}", job.mode, job.method),
            ));
        }
        let layers = Layers::of_job(self, job, method_entry)?;
        let (model, dropout) = self.model(&layers, overrides.model)?;
        let optimisation = self.optimisation(&layers, overrides.epochs)?;
        let attack = self.attack(&layers)?;
        let ratio = self.ratio(&layers, job.method)?;
        let augment = self.augment(&layers)?;
        let synthetic = self.synthetic_size(&layers, job.dataset)?;
        let limit_train = self.image_limit(overrides.limit_train, "--limit-train")?;
        let limit_test = self.image_limit(overrides.limit_test, "--limit-test")?;
        let params = self.params(job.method, method_entry)?;
        let script = params.reference_script();
        let evaluation = self.evaluation(job, script.autoattack)?;
        Ok(JobConfig {
            job: job.to_string(),
            dataset: job.dataset,
            mode: job.mode,
            model,
            dropout,
            seed: overrides.seed.unwrap_or(f.seed),
            device: overrides.device.unwrap_or(f.device),
            precision: layers
                .find("precision", |s| s.precision)
                .map(|p| p.value)
                .unwrap_or_default(),
            speed: SpeedSwitches {
                cudnn_benchmark: f.cudnn_benchmark,
                channels_last: f.channels_last,
                cuda_graphs: f.cuda_graphs,
            },
            protocol: f.protocol,
            data_dir: self.data_dir(),
            mirror: self.file.paths.mirror.clone(),
            output_dir: overrides.output_dir.as_ref().map_or_else(
                || self.output_dir(),
                |o| std::path::absolute(o).unwrap_or(o.clone()),
            ),
            limit_train,
            limit_test,
            synthetic,
            augment,
            // Quirk Q3: the main scripts randomly crop the CIFAR-10 test set.
            test_random_crop: f.protocol == Protocol::Reference
                && job.dataset == DatasetKind::Cifar10
                && script.crops_cifar10_test,
            epochs: optimisation.epochs,
            batch_size: optimisation.batch_size,
            learning_rate: optimisation.learning_rate,
            lr_schedule: optimisation.lr_schedule,
            momentum: optimisation.momentum,
            weight_decay: optimisation.weight_decay,
            reset_momentum_each_epoch: optimisation.reset_momentum_each_epoch,
            attack,
            ratio,
            params,
            evaluation,
        })
    }

    /// `--limit-train` or `--limit-test`: absent, or at least one image.
    fn image_limit(&self, value: Option<usize>, flag: &str) -> Result<Option<usize>, ConfigError> {
        match value {
            Some(0) => Err(self.error(flag, "expected at least 1 image")),
            other => Ok(other),
        }
    }
}
