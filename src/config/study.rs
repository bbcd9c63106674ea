//! The schema of `experiments.yaml`, its validation and the resolution of a job's configuration.
//!
//! Settings come in layers, each overriding the one before: `training`, then `datasets.<d>`, then
//! `methods.<m>.settings`, then `methods.<m>.datasets.<d>`, then the command line.
use super::job::*;
use super::locate::locate;
use super::number::Num;
use crate::vocab::{DatasetKind, FinalAttack, JobName, Method, Mode, ModelKind};
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
    device: String,
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
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Paths {
    data: PathBuf,
    output: PathBuf,
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
    pub device: Option<String>,
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

    pub fn device(&self) -> &str {
        &self.file.device
    }

    /// Every job of the grid, methods outermost; `st` only in baseline.
    pub fn grid(&self) -> Vec<JobName> {
        self.grid_over(&self.file.grid.datasets)
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
        let cuda_index = f
            .device
            .strip_prefix("cuda:")
            .is_some_and(|n| n.parse::<usize>().is_ok());
        if !(matches!(f.device.as_str(), "auto" | "cpu" | "cuda") || cuda_index) {
            return Err(self.error(
                "device",
                format!("expected auto, cpu, cuda or cuda:N, got `{}`", f.device),
            ));
        }
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
            if !(0.0..1.0).contains(&entry.dropout.0) {
                return Err(self.error(
                    &format!("models.{model}.dropout"),
                    format!("expected a value in [0, 1), got {}", entry.dropout.0),
                ));
            }
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

    /// The complete configuration of `job`, every default filled in and checked.
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
        let dataset_settings = f.datasets.get(&job.dataset).ok_or_else(|| {
            self.error(
                "datasets",
                format!("dataset `{}` has no entry", job.dataset),
            )
        })?;
        let empty = Settings::default();
        let layers: [(String, &Settings); 4] = [
            ("training".into(), &f.training),
            (format!("datasets.{}", job.dataset), dataset_settings),
            (
                format!("methods.{}.settings", job.method),
                &method_entry.settings,
            ),
            (
                format!("methods.{}.datasets.{}", job.method, job.dataset),
                method_entry.datasets.get(&job.dataset).unwrap_or(&empty),
            ),
        ];
        // The most specific layer's value of a field, with the dotted path it came from.
        macro_rules! pick {
            ($field:ident) => {{
                let name = stringify!($field);
                layers
                    .iter()
                    .rev()
                    .find_map(|(prefix, s)| {
                        s.$field.clone().map(|v| (v, format!("{prefix}.{name}")))
                    })
                    .ok_or_else(|| {
                        self.error(
                            &format!("datasets.{}", job.dataset),
                            format!("no value for `{name}` (job {job})"),
                        )
                    })
            }};
        }
        let positive = |(v, path): (Num, String)| {
            if v.0 > 0.0 {
                Ok(v.0)
            } else {
                Err(self.error(
                    &path,
                    format!("expected a value greater than 0, got {}", v.0),
                ))
            }
        };
        let at_least_one = |(v, path): (usize, String)| {
            if v > 0 {
                Ok(v)
            } else {
                Err(self.error(&path, "expected a value of at least 1, got 0"))
            }
        };

        let model = match overrides.model {
            Some(m) => m,
            None => pick!(model)?.0,
        };
        let dropout = match layers
            .iter()
            .rev()
            .find_map(|(p, s)| s.dropout.map(|d| (d, format!("{p}.dropout"))))
        {
            Some((d, path)) if !(0.0..1.0).contains(&d.0) => {
                return Err(self.error(&path, format!("expected a value in [0, 1), got {}", d.0)))
            }
            Some((d, _)) => d.0,
            None => f
                .models
                .get(&model)
                .map(|m| m.dropout.0)
                .ok_or_else(|| self.error("models", format!("model `{model}` has no entry")))?,
        };
        let epochs = match overrides.epochs {
            Some(0) => return Err(self.error("--epochs", "expected at least 1 epoch")),
            Some(e) => e,
            None => at_least_one(pick!(epochs)?)?,
        };
        let batch_size = at_least_one(pick!(batch_size)?)?;
        let learning_rate = positive(pick!(learning_rate)?)?;
        let (momentum, momentum_path) = pick!(momentum)?;
        if !(0.0..1.0).contains(&momentum.0) {
            return Err(self.error(
                &momentum_path,
                format!("expected a value in [0, 1), got {}", momentum.0),
            ));
        }
        let (weight_decay, wd_path) = pick!(weight_decay)?;
        if weight_decay.0 < 0.0 {
            return Err(self.error(
                &wd_path,
                format!("expected a value ≥ 0, got {}", weight_decay.0),
            ));
        }
        let lr_schedule = self.schedule(pick!(lr_schedule)?)?;
        let epsilon = positive(pick!(epsilon)?)?;
        let step_size = positive(pick!(step_size)?)?;
        let steps = at_least_one(pick!(steps)?)?;
        // st has no ratio modes, so no β, u, d.
        let ratio = if job.method == Method::St {
            None
        } else {
            let beta = positive(pick!(beta)?)?;
            let (up, up_path) = pick!(up)?;
            let (down, down_path) = pick!(down)?;
            let (tau, tau_path) = pick!(tau)?;
            let (switch, switch_path) = pick!(switch)?;
            if down.0 < 0.0 {
                return Err(self.error(&down_path, format!("expected a value ≥ 0, got {}", down.0)));
            }
            if up.0 <= down.0 {
                return Err(self.error(
                    &up_path,
                    format!(
                        "expected up (u) greater than down (d = {}), got {}",
                        down.0, up.0
                    ),
                ));
            }
            if tau.0 < 0.0 {
                return Err(self.error(&tau_path, format!("expected a value ≥ 0, got {}", tau.0)));
            }
            if !(switch.0 > 0.0 && switch.0 <= 1.0) {
                return Err(self.error(
                    &switch_path,
                    format!("expected a value in (0, 1], got {}", switch.0),
                ));
            }
            Some(RatioConfig {
                beta,
                up: up.0,
                down: down.0,
                tau: tau.0,
                switch: switch.0,
            })
        };
        let augment = match pick!(augment)?.0 {
            AugmentName::CropFlip => Augment::CropFlip { pad: 4 },
            AugmentName::Crop => Augment::Crop { pad: 4 },
            AugmentName::None => Augment::None,
        };
        let synthetic = if job.dataset == DatasetKind::Synthetic {
            SyntheticSize {
                train: at_least_one(pick!(train_size)?)?,
                test: at_least_one(pick!(test_size)?)?,
            }
        } else {
            SyntheticSize { train: 0, test: 0 }
        };
        let reference = f.protocol == Protocol::Reference;
        let limit = |value: Option<usize>, flag: &str| match value {
            Some(0) => Err(self.error(flag, "expected at least 1 image")),
            other => Ok(other),
        };
        let device = overrides.device.clone().unwrap_or_else(|| f.device.clone());
        Ok(JobConfig {
            job: job.to_string(),
            method: job.method,
            dataset: job.dataset,
            mode: job.mode,
            model,
            dropout,
            seed: overrides.seed.unwrap_or(f.seed),
            device,
            precision: layers
                .iter()
                .rev()
                .find_map(|(_, s)| s.precision)
                .unwrap_or_default(),
            cudnn_benchmark: f.cudnn_benchmark,
            channels_last: f.channels_last,
            cuda_graphs: f.cuda_graphs,
            protocol: f.protocol,
            data_dir: self.data_dir(),
            output_dir: overrides.output_dir.as_ref().map_or_else(
                || self.output_dir(),
                |o| std::path::absolute(o).unwrap_or(o.clone()),
            ),
            limit_train: limit(overrides.limit_train, "--limit-train")?,
            limit_test: limit(overrides.limit_test, "--limit-test")?,
            synthetic,
            augment,
            // Quirk Q3: the main scripts randomly crop the CIFAR-10 test set; Generalist does not.
            test_random_crop: reference
                && job.dataset == DatasetKind::Cifar10
                && job.method != Method::Generalist,
            epochs,
            batch_size,
            learning_rate,
            lr_schedule,
            momentum: momentum.0,
            weight_decay: weight_decay.0,
            reset_momentum_each_epoch: pick!(reset_momentum_each_epoch)?.0,
            attack: AttackConfig {
                epsilon,
                step_size,
                steps,
                bn_mode: pick!(attack_bn_mode)?.0,
            },
            ratio,
            params: self.params(job.method, method_entry)?,
            evaluation: self.evaluation(job)?,
        })
    }

    /// The evaluation of `job`: `evaluation.datasets.<d>` over `evaluation`, each value checked
    /// where it was written.
    fn evaluation(&self, job: &JobName) -> Result<EvaluationConfig, ConfigError> {
        let top = &self.file.evaluation;
        let layer = top.datasets.get(&job.dataset);
        // The dataset's value of a key if it has one, else the section's, with its dotted path.
        macro_rules! pick {
            ($field:ident) => {{
                let name = stringify!($field);
                match layer.and_then(|l| l.$field.clone()) {
                    Some(v) => (v, format!("evaluation.datasets.{}.{name}", job.dataset)),
                    None => (top.$field.clone(), format!("evaluation.{name}")),
                }
            }};
        }
        let (batch_size, path) = pick!(batch_size);
        if batch_size == 0 {
            return Err(self.error(&path, "expected a positive batch size, got 0"));
        }
        let (names, path) = pick!(final_attacks);
        let final_attacks = names
            .iter()
            .map(|a| a.parse::<FinalAttack>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| self.error(&path, message))?;
        let (cw_steps, path) = pick!(cw_steps);
        if cw_steps == 0 {
            return Err(self.error(&path, "expected at least 1 step, got 0"));
        }
        let (cw_margin, path) = pick!(cw_margin);
        if cw_margin.0 < 0.0 {
            return Err(self.error(&path, format!("expected a value ≥ 0, got {}", cw_margin.0)));
        }
        // Optional at both levels: the dataset's value, else the section's, else none.
        let final_images = match layer.and_then(|l| l.final_images) {
            Some(images) => Some((
                images,
                format!("evaluation.datasets.{}.final_images", job.dataset),
            )),
            None => top
                .final_images
                .map(|images| (images, "evaluation.final_images".to_string())),
        };
        if let Some((0, path)) = &final_images {
            return Err(self.error(path, "expected at least 1 image, got 0"));
        }
        let final_images = final_images.map(|(images, _)| images);
        // Quirk Q27: the main scripts call torchattacks 3.5.1's AutoAttack with its defaults;
        // Generalist calls the fra31 copy it bundles at standard strength.
        let reference_preset = if job.method == Method::Generalist {
            AutoAttackPreset::Standard
        } else {
            AutoAttackPreset::Torchattacks351
        };
        let chosen = layer.and_then(|l| l.autoattack).or(top.autoattack);
        let autoattack = chosen.unwrap_or(match self.file.protocol {
            Protocol::Reference => reference_preset,
            Protocol::Default => AutoAttackPreset::Standard,
        });
        Ok(EvaluationConfig {
            batch_size,
            final_attacks,
            autoattack,
            cw_steps,
            cw_margin: cw_margin.0,
            final_images,
        })
    }

    fn schedule(&self, (entry, path): (ScheduleEntry, String)) -> Result<LrSchedule, ConfigError> {
        match (entry.step, entry.piecewise_linear) {
            (
                Some(StepEntry {
                    milestones,
                    factors,
                }),
                None,
            ) => {
                if milestones.len() != factors.len() {
                    return Err(self.error(&path, "expected as many factors as milestones"));
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(self.error(&path, "expected strictly increasing milestones"));
                }
                if factors.iter().any(|f| f.0 <= 0.0) {
                    return Err(self.error(&path, "expected factors greater than 0"));
                }
                Ok(LrSchedule::Step {
                    milestones,
                    factors: factors.iter().map(|f| f.0).collect(),
                })
            }
            (None, Some(PiecewiseEntry { points })) => {
                if points.is_empty()
                    || points.windows(2).any(|w| w[0].0 .0 > w[1].0 .0)
                    || points.iter().any(|p| p.1 .0 <= 0.0)
                {
                    return Err(self.error(
                        &path,
                        "expected points (epoch, lr) with non-decreasing epochs and lr > 0",
                    ));
                }
                Ok(LrSchedule::PiecewiseLinear {
                    points: points.iter().map(|(e, lr)| (e.0, lr.0)).collect(),
                })
            }
            _ => Err(self.error(
                &path,
                "expected exactly one of `step` or `piecewise-linear`",
            )),
        }
    }

    /// The method's own parameters, typed and checked.
    fn params(&self, method: Method, entry: &MethodEntry) -> Result<MethodParams, ConfigError> {
        let path = format!("methods.{method}.params");
        let value = entry
            .params
            .clone()
            .unwrap_or(serde_yaml::Value::Mapping(Default::default()));
        let typed = |message: String| self.error(&path, message);
        macro_rules! read {
            ($ty:ty) => {
                serde_yaml::from_value::<$ty>(value.clone()).map_err(|e| typed(e.to_string()))?
            };
        }
        let params = match method {
            Method::St => MethodParams::St,
            Method::PgdAt => MethodParams::PgdAt,
            Method::Fat => {
                let p = read!(FatParams);
                if p.taus.len() != p.boundaries.len() + 1
                    || p.boundaries.windows(2).any(|w| w[0] >= w[1])
                {
                    return Err(typed(
                        "expected one more τ than boundaries, and increasing boundaries".into(),
                    ));
                }
                MethodParams::Fat {
                    taus: p.taus,
                    boundaries: p.boundaries,
                }
            }
            Method::Dat => {
                let p = read!(DatParams);
                MethodParams::Dat {
                    fosc_max: p.fosc_max.0,
                    fosc_control_epoch: p.fosc_control_epoch,
                }
            }
            Method::Trades => MethodParams::Trades {
                lambda: read!(TradesParams).lambda.0,
            },
            Method::KdAt => {
                let p = read!(KdParams);
                MethodParams::KdAt {
                    ce: p.ce.0,
                    teacher_robust: p.teacher_robust.0,
                    teacher_standard: p.teacher_standard.0,
                }
            }
            Method::Iad => {
                let p = read!(IadParams);
                MethodParams::Iad {
                    ce: p.ce.0,
                    teacher_robust: p.teacher_robust.0,
                    teacher_standard: p.teacher_standard.0,
                    begin: p.begin,
                    b: p.b.0,
                }
            }
            Method::Generalist => {
                let p = read!(GeneralistParams);
                if p.communication_period == 0 || !(0.0..1.0).contains(&p.ema_max_decay.0) {
                    return Err(typed(
                        "expected communication_period ≥ 1 and ema_max_decay in [0, 1)".into(),
                    ));
                }
                MethodParams::Generalist {
                    st_weight_decay: p.st_weight_decay.0,
                    mix_points: p.mix_points.iter().map(|(e, b)| (e.0, b.0)).collect(),
                    communication_start: p.communication_start,
                    communication_period: p.communication_period,
                    ema_max_decay: p.ema_max_decay.0,
                }
            }
        };
        Ok(params)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FatParams {
    taus: Vec<usize>,
    boundaries: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DatParams {
    fosc_max: Num,
    fosc_control_epoch: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TradesParams {
    lambda: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KdParams {
    ce: Num,
    teacher_robust: Num,
    teacher_standard: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IadParams {
    ce: Num,
    teacher_robust: Num,
    teacher_standard: Num,
    begin: usize,
    b: Num,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GeneralistParams {
    st_weight_decay: Num,
    mix_points: Vec<(Num, Num)>,
    communication_start: usize,
    communication_period: usize,
    ema_max_decay: Num,
}
