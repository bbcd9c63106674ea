//! TEMPORARY STUB (replaced by the config branch).
use super::*;
use crate::vocab::*;
use std::path::{Path, PathBuf};

pub const DEFAULT_CONFIG: &str = "";
#[derive(thiserror::Error, Debug)]
#[error("{0}")]
pub struct ConfigError(String);
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
pub struct Study {
    base: PathBuf,
}
pub fn load(path: &Path, sets: &[String]) -> Result<Study, ConfigError> {
    parse("", path, sets)
}
pub fn parse(_text: &str, origin: &Path, _sets: &[String]) -> Result<Study, ConfigError> {
    Ok(Study {
        base: origin.parent().map(Path::to_path_buf).unwrap_or_default(),
    })
}
impl Study {
    pub fn grid(&self) -> Vec<JobName> {
        vec!["pgd-at/synthetic/adarat".parse().unwrap()]
    }
    pub fn data_dir(&self) -> &Path {
        &self.base
    }
    pub fn output_dir(&self) -> &Path {
        &self.base
    }
    pub fn device(&self) -> &str {
        "auto"
    }
    pub fn resolve(&self, job: &JobName, o: &JobOverrides) -> Result<JobConfig, ConfigError> {
        Ok(JobConfig {
            job: job.to_string(),
            method: job.method,
            dataset: job.dataset,
            mode: job.mode,
            model: o.model.unwrap_or(ModelKind::SmallCnn),
            dropout: 0.5,
            seed: o.seed.unwrap_or(1),
            device: o.device.clone().unwrap_or("auto".into()),
            protocol: Protocol::Default,
            data_dir: std::env::current_dir().unwrap().join("data"),
            output_dir: o
                .output_dir
                .clone()
                .unwrap_or(std::env::current_dir().unwrap().join("output")),
            limit_train: o.limit_train,
            limit_test: o.limit_test,
            synthetic: SyntheticSize {
                train: 2000,
                test: 500,
            },
            augment: Augment::CropFlip { pad: 4 },
            test_random_crop: false,
            epochs: o.epochs.unwrap_or(120),
            batch_size: 128,
            learning_rate: 0.1,
            lr_schedule: LrSchedule::Step {
                milestones: vec![60, 90, 110],
                factors: vec![0.1, 0.01, 0.005],
            },
            momentum: 0.9,
            weight_decay: 5e-4,
            reset_momentum_each_epoch: true,
            attack: AttackConfig {
                epsilon: 8.0 / 255.0,
                step_size: 2.0 / 255.0,
                steps: 10,
                bn_mode: BnMode::Train,
            },
            ratio: RatioConfig {
                beta: 0.04,
                up: 1.1,
                down: 0.4,
                tau: 0.01,
                switch: 0.7,
            },
            params: MethodParams::PgdAt,
            evaluation: EvaluationConfig {
                batch_size: 256,
                final_attacks: vec![
                    "fgsm".into(),
                    "pgd10".into(),
                    "pgd20".into(),
                    "pgd50".into(),
                    "cw".into(),
                    "autoattack".into(),
                ],
                autoattack: AutoAttackPreset::Standard,
                cw_steps: 20,
                cw_margin: 50.0,
            },
        })
    }
}
