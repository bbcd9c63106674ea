//! The resolved configuration of one job: everything a run needs, with every default filled in.
//! It is written as `config.yaml` in the run folder, so a run can be repeated exactly.
use crate::vocab::{DatasetKind, FinalAttack, Method, Mode, ModelKind};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobConfig {
    /// `method/dataset/mode`.
    pub job: String,
    pub method: Method,
    pub dataset: DatasetKind,
    pub mode: Mode,
    pub model: ModelKind,
    /// Dropout of the model (WRN-34-10: 0.3, small-cnn: 0.5; ignored by the ResNets).
    pub dropout: f64,
    pub seed: u64,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    pub device: String,
    /// Number format of the training step (evaluations are always fp32).
    #[serde(default)]
    pub precision: Precision,
    /// Let cuDNN time its convolution algorithms on the first batches and keep the fastest (CUDA only).
    #[serde(default = "enabled")]
    pub cudnn_benchmark: bool,
    /// Convolution weights (and so activations) channels-last in memory: the same numbers, faster.
    #[serde(default = "enabled")]
    pub channels_last: bool,
    /// Capture each epoch's training step in a CUDA graph and replay it (CUDA only; see train::cuda_graph).
    #[serde(default = "enabled")]
    pub cuda_graphs: bool,
    pub protocol: Protocol,
    pub data_dir: PathBuf,
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
    /// Parameters of the method itself.
    pub params: MethodParams,
    pub evaluation: EvaluationConfig,
}

impl JobConfig {
    /// Whether `other` is the same run: equal but for the speed switches, which change how fast a run
    /// goes, not what it computes (a run started with CUDA graphs resumes without them).
    pub fn same_run_as(&self, other: &JobConfig) -> bool {
        let without_speed = |c: &JobConfig| JobConfig {
            cudnn_benchmark: true,
            channels_last: true,
            cuda_graphs: true,
            ..c.clone()
        };
        without_speed(self) == without_speed(other)
    }
}

fn enabled() -> bool {
    true
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Everything in fp32 (on CUDA, convolutions may use TF32 as libtorch allows by default).
    #[default]
    Fp32,
    /// The training step's forward passes under bf16 autocast; see `train::precision`.
    Bf16,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Best-practice evaluation: deterministic test set, standard AutoAttack.
    Default,
    /// The research code's evaluation: CIFAR-10 test crops, torchattacks 3.5.1 AutoAttack.
    Reference,
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

/// Parameters specific to a method (docs/protocol.md#methods).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum MethodParams {
    St,
    PgdAt,
    Fat {
        /// τ per epoch range: τ = taus[i] for epochs before boundaries[i] (0-indexed), the last τ after.
        taus: Vec<usize>,
        boundaries: Vec<usize>,
    },
    Dat {
        fosc_max: f64,
        fosc_control_epoch: usize,
    },
    Trades {
        lambda: f64,
    },
    KdAt {
        ce: f64,
        teacher_robust: f64,
        teacher_standard: f64,
    },
    Iad {
        ce: f64,
        teacher_robust: f64,
        teacher_standard: f64,
        begin: usize,
        b: f64,
    },
    Generalist {
        st_weight_decay: f64,
        /// β_mix(e) through these (epoch, β_mix) points.
        mix_points: Vec<(f64, f64)>,
        communication_start: usize,
        communication_period: usize,
        ema_max_decay: f64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AutoAttackPreset {
    /// Croce & Hein 2020: 100 iterations, Square without `resc_schedule`.
    Standard,
    /// torchattacks 3.5.1 defaults, as the reference calls it (docs/protocol.md Q27).
    #[serde(rename = "torchattacks-3.5.1")]
    Torchattacks351,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationConfig {
    /// Batch size of the per-epoch test and the final evaluation.
    pub batch_size: usize,
    /// Final attacks: any of fgsm, pgd10, pgd20, pgd50, cw, autoattack.
    pub final_attacks: Vec<FinalAttack>,
    pub autoattack: AutoAttackPreset,
    pub cw_steps: usize,
    pub cw_margin: f64,
    /// The final table on the first N test images (all when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_images: Option<usize>,
}
