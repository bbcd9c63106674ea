//! The resolved configuration of one job: everything a run needs, with every default filled in.
//! It is written as `config.yaml` in the run folder, so a run can be repeated exactly.
use super::device::DeviceSpec;
use super::number::{fraction, fraction_pairs};
pub use crate::vocab::{AutoAttackPreset, Precision, Protocol};
use crate::vocab::{DatasetKind, FinalAttack, JobName, Method, Mode, ModelKind};
use serde::de::Error as _;
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_yaml::{Mapping, Value};
use std::path::PathBuf;

/// The job's method is its `params`' variant (see [`JobConfig::method`]), so the two cannot
/// disagree; `config.yaml` still records it as `method` (the `Serialize` impl below).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct JobConfig {
    /// `method/dataset/mode`.
    pub job: String,
    pub dataset: DatasetKind,
    pub mode: Mode,
    pub model: ModelKind,
    /// Dropout of the model (WRN-34-10: 0.3, small-cnn: 0.5; ignored by the ResNets).
    pub dropout: f64,
    pub seed: u64,
    /// As configured; `crate::device::resolve` turns it into this machine's device.
    pub device: DeviceSpec,
    /// Number format of the training step (evaluations are always fp32).
    #[serde(default)]
    pub precision: Precision,
    /// Flat keys in `config.yaml`, as in `experiments.yaml`.
    #[serde(flatten)]
    pub speed: SpeedSwitches,
    pub protocol: Protocol,
    pub data_dir: PathBuf,
    /// Where a missing dataset is downloaded from instead of its official address (`paths.mirror`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    pub output_dir: PathBuf,
    /// Take the first N training / test images (quick checks).
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// Sizes of the generated `synthetic` dataset.
    pub synthetic: SyntheticSize,
    /// Training-set augmentation, done on the device.
    pub augment: Augment,
    /// Whether test images are randomly cropped (the reference's CIFAR-10 quirk, docs/protocol.md Q3; `protocol: reference`).
    pub test_random_crop: bool,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub lr_schedule: LrSchedule,
    pub momentum: f64,
    pub weight_decay: f64,
    /// The main scripts recreate SGD each epoch, so momentum restarts from zero (docs/protocol.md Q1).
    pub reset_momentum_each_epoch: bool,
    /// The training attack (and per-epoch test PGD): ε, α, K and the network mode while crafting.
    pub attack: AttackConfig,
    /// FixRAT/AdaRAT parameters β, u, d, τ and the clean-only switch factor (0.7); none for st.
    pub ratio: Option<RatioConfig>,
    /// The method and its own parameters.
    pub params: MethodParams,
    pub evaluation: EvaluationConfig,
}

impl JobConfig {
    pub fn method(&self) -> Method {
        self.params.method()
    }

    /// The job this configures, `method/dataset/mode`.
    pub fn name(&self) -> JobName {
        JobName {
            method: self.method(),
            dataset: self.dataset,
            mode: self.mode,
        }
    }

    /// Whether `other` is the same run: equal but for the speed switches, which change how fast a run
    /// goes, not what it computes (a run started with CUDA graphs resumes without them), the
    /// device, so a queued job stopped on one GPU resumes on whichever slot is free next, and where
    /// its dataset was downloaded from.
    pub fn same_run_as(&self, other: &JobConfig) -> bool {
        let without_speed = |c: &JobConfig| JobConfig {
            speed: SpeedSwitches::default(),
            device: DeviceSpec::Auto,
            mirror: None,
            ..c.clone()
        };
        without_speed(self) == without_speed(other)
    }
}

/// `config.yaml`'s keys in field order, with `method` after `job` (docs/run-folder.md#configyaml).
impl Serialize for JobConfig {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields =
            JobConfig::serialize(self, serde_yaml::value::Serializer).map_err(S::Error::custom)?;
        let mut recorded = Mapping::new();
        for (key, value) in fields.as_mapping().into_iter().flatten() {
            recorded.insert(key.clone(), value.clone());
            if key.as_str() == Some("job") {
                recorded.insert("method".into(), self.method().as_str().into());
            }
        }
        recorded.serialize(serializer)
    }
}

/// Refuses a `config.yaml` whose `method` is not its `params`' method.
impl<'de> Deserialize<'de> for JobConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JobConfig, D::Error> {
        let mut fields = Mapping::deserialize(deserializer)?;
        let method = fields
            .remove("method")
            .ok_or_else(|| D::Error::missing_field("method"))?;
        let method: Method = serde_yaml::from_value(method).map_err(D::Error::custom)?;
        let cfg = JobConfig::deserialize(Value::Mapping(fields)).map_err(D::Error::custom)?;
        if cfg.method() != method {
            return Err(D::Error::custom(format!(
                "method `{method}` with the parameters of {}",
                cfg.method()
            )));
        }
        Ok(cfg)
    }
}

/// Switches that change how fast a run goes, not what it computes (README, "Performance"), so they
/// never keep a run from resuming. Absent ones are on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpeedSwitches {
    /// Let cuDNN time its convolution algorithms on the first batches and keep the fastest (CUDA only).
    pub cudnn_benchmark: bool,
    /// Convolution weights (and so activations) channels-last in memory: the same numbers, faster.
    pub channels_last: bool,
    /// Capture each epoch's training step in a CUDA graph and replay it (CUDA only; see train::cuda_graph).
    pub cuda_graphs: bool,
}

impl Default for SpeedSwitches {
    fn default() -> SpeedSwitches {
        SpeedSwitches {
            cudnn_benchmark: true,
            channels_last: true,
            cuda_graphs: true,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyntheticSize {
    pub train: usize,
    pub test: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Augment {
    /// No augmentation.
    None,
    /// Zero-padded random crop by `pad` pixels, then a horizontal flip with probability 1/2 (the CIFAR recipe).
    CropFlip { pad: i64 },
    /// Zero-padded random crop only.
    Crop { pad: i64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum LrSchedule {
    /// lr = base × factor of the last milestone reached; epochs are 0-indexed (main scripts).
    Step {
        milestones: Vec<usize>,
        factors: Vec<f64>,
    },
    /// lr interpolated through (epoch, lr) points, with 1-indexed epochs (Generalist).
    PiecewiseLinear { points: Vec<(f64, f64)> },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BnMode {
    Train,
    Eval,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttackConfig {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    /// Network mode while crafting training examples (train in the reference, docs/protocol.md Q2).
    pub bn_mode: BnMode,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioConfig {
    pub beta: f64,
    pub up: f64,
    pub down: f64,
    pub tau: f64,
    /// AdaRAT trains on the clean loss alone while L_s ≥ switch·u (0.7 in the reference).
    pub switch: f64,
}

/// A method with the parameters specific to it (docs/protocol.md#methods): the variant is the
/// job's method. Numbers may be fractions (`8/255`) as anywhere in `experiments.yaml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MethodParams {
    St,
    PgdAt,
    Fat(FatParams),
    Dat(DatParams),
    Trades(TradesParams),
    KdAt(KdParams),
    Iad(IadParams),
    Generalist(GeneralistParams),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FatParams {
    /// τ per epoch range: τ = taus[i] for epochs before boundaries[i] (0-indexed), the last τ after.
    pub taus: Vec<usize>,
    pub boundaries: Vec<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatParams {
    #[serde(deserialize_with = "fraction")]
    pub fosc_max: f64,
    pub fosc_control_epoch: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradesParams {
    #[serde(deserialize_with = "fraction")]
    pub lambda: f64,
}

/// KD-AT's weights of the CE term and of the robust and standard teachers' KD terms.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdParams {
    #[serde(deserialize_with = "fraction")]
    pub ce: f64,
    #[serde(deserialize_with = "fraction")]
    pub teacher_robust: f64,
    #[serde(deserialize_with = "fraction")]
    pub teacher_standard: f64,
}

/// KD-AT's weights, and when (`begin`, 0-indexed epoch) and how strongly (`b`) IAD's student
/// trusts its robust teacher.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IadParams {
    #[serde(deserialize_with = "fraction")]
    pub ce: f64,
    #[serde(deserialize_with = "fraction")]
    pub teacher_robust: f64,
    #[serde(deserialize_with = "fraction")]
    pub teacher_standard: f64,
    pub begin: usize,
    #[serde(deserialize_with = "fraction")]
    pub b: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneralistParams {
    #[serde(deserialize_with = "fraction")]
    pub st_weight_decay: f64,
    /// β_mix(e) through these (epoch, β_mix) points.
    #[serde(deserialize_with = "fraction_pairs")]
    pub mix_points: Vec<(f64, f64)>,
    pub communication_start: usize,
    pub communication_period: usize,
    #[serde(deserialize_with = "fraction")]
    pub ema_max_decay: f64,
}

/// What a method's research code does that `protocol: reference` follows where it differs from
/// the main scripts (docs/protocol.md#quirks); facts the configuration needs to resolve a job, so
/// they sit here with the parameters rather than in the method's file above.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReferenceScript {
    /// Whether it randomly crops the CIFAR-10 test set as it does the training set (Q3).
    pub crops_cifar10_test: bool,
    /// The AutoAttack of its final table (Q27).
    pub autoattack: AutoAttackPreset,
}

impl ReferenceScript {
    /// The main scripts: the test set cropped, torchattacks 3.5.1's AutoAttack with its defaults.
    const MAIN: ReferenceScript = ReferenceScript {
        crops_cifar10_test: true,
        autoattack: AutoAttackPreset::Torchattacks351,
    };
}

impl MethodParams {
    /// The research code the method comes from.
    pub fn reference_script(&self) -> ReferenceScript {
        match self {
            // Generalist's own code: the test set as stored, the fra31 AutoAttack it bundles at
            // standard strength.
            MethodParams::Generalist(_) => ReferenceScript {
                crops_cifar10_test: false,
                autoattack: AutoAttackPreset::Standard,
            },
            _ => ReferenceScript::MAIN,
        }
    }

    /// The method these are the parameters of.
    pub fn method(&self) -> Method {
        match self {
            MethodParams::St => Method::St,
            MethodParams::PgdAt => Method::PgdAt,
            MethodParams::Fat(_) => Method::Fat,
            MethodParams::Dat(_) => Method::Dat,
            MethodParams::Trades(_) => Method::Trades,
            MethodParams::KdAt(_) => Method::KdAt,
            MethodParams::Iad(_) => Method::Iad,
            MethodParams::Generalist(_) => Method::Generalist,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Batch size of the per-epoch test and the final evaluation.
    pub batch_size: usize,
    /// Final attacks: any names of [`FinalAttack`].
    pub final_attacks: Vec<FinalAttack>,
    pub autoattack: AutoAttackPreset,
    pub cw_steps: usize,
    pub cw_margin: f64,
    /// The final table on the first N test images (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_images: Option<usize>,
}
