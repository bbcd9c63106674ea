//! The training section: the network, the optimiser with its schedule, the training attack and the
//! training data.
use super::layers::{setting, Layers, Located};
use super::{AugmentName, ConfigError, PiecewiseEntry, ScheduleEntry, StepEntry, Study};
use crate::config::job::{AttackConfig, Augment, LrSchedule, SyntheticSize};
use crate::vocab::{DatasetKind, ModelKind};

/// The optimiser's settings of a job.
pub(super) struct Optimisation {
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub lr_schedule: LrSchedule,
    pub momentum: f64,
    pub weight_decay: f64,
    pub reset_momentum_each_epoch: bool,
}

impl Study {
    /// The model (`--model` over the layers) and its dropout: a layer's value, else the model's own
    /// under `models`.
    pub(super) fn model(
        &self,
        layers: &Layers,
        model_override: Option<ModelKind>,
    ) -> Result<(ModelKind, f64), ConfigError> {
        let model = match model_override {
            Some(model) => model,
            None => setting!(layers, model)?.value,
        };
        let dropout = match layers.find("dropout", |s| s.dropout) {
            Some(dropout) => self.below_one(dropout)?,
            None => self
                .file
                .models
                .get(&model)
                .map(|m| m.dropout.0)
                .ok_or_else(|| self.error("models", format!("model `{model}` has no entry")))?,
        };
        Ok((model, dropout))
    }

    /// Epochs (`--epochs` over the layers), batches, learning rate and its schedule, SGD's values.
    pub(super) fn optimisation(
        &self,
        layers: &Layers,
        epochs_override: Option<usize>,
    ) -> Result<Optimisation, ConfigError> {
        let epochs = match epochs_override {
            Some(0) => return Err(self.error("--epochs", "expected at least 1 epoch")),
            Some(epochs) => epochs,
            None => self.at_least_one(setting!(layers, epochs)?)?,
        };
        let batch_size = self.at_least_one(setting!(layers, batch_size)?)?;
        let learning_rate = self.positive(setting!(layers, learning_rate)?)?;
        let momentum = self.below_one(setting!(layers, momentum)?)?;
        let weight_decay = self.non_negative(setting!(layers, weight_decay)?)?;
        let lr_schedule = self.schedule(setting!(layers, lr_schedule)?)?;
        Ok(Optimisation {
            epochs,
            batch_size,
            learning_rate,
            lr_schedule,
            momentum,
            weight_decay,
            reset_momentum_each_epoch: setting!(layers, reset_momentum_each_epoch)?.value,
        })
    }

    fn schedule(&self, entry: Located<ScheduleEntry>) -> Result<LrSchedule, ConfigError> {
        let path = &entry.path;
        match (entry.value.step, entry.value.piecewise_linear) {
            (
                Some(StepEntry {
                    milestones,
                    factors,
                }),
                None,
            ) => {
                if milestones.len() != factors.len() {
                    return Err(self.error(path, "expected as many factors as milestones"));
                }
                if milestones.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(self.error(path, "expected strictly increasing milestones"));
                }
                if factors.iter().any(|f| f.0 <= 0.0) {
                    return Err(self.error(path, "expected factors greater than 0"));
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
                        path,
                        "expected points (epoch, lr) with non-decreasing epochs and lr > 0",
                    ));
                }
                Ok(LrSchedule::PiecewiseLinear {
                    points: points.iter().map(|(e, lr)| (e.0, lr.0)).collect(),
                })
            }
            _ => Err(self.error(path, "expected exactly one of `step` or `piecewise-linear`")),
        }
    }

    /// The training attack's ε, α, K and the network mode while it crafts.
    pub(super) fn attack(&self, layers: &Layers) -> Result<AttackConfig, ConfigError> {
        Ok(AttackConfig {
            epsilon: self.positive(setting!(layers, epsilon)?)?,
            step_size: self.positive(setting!(layers, step_size)?)?,
            steps: self.at_least_one(setting!(layers, steps)?)?,
            bn_mode: setting!(layers, attack_bn_mode)?.value,
        })
    }

    /// The training set's augmentation; random crops pad by 4 pixels, as the reference.
    pub(super) fn augment(&self, layers: &Layers) -> Result<Augment, ConfigError> {
        Ok(match setting!(layers, augment)?.value {
            AugmentName::CropFlip => Augment::CropFlip { pad: 4 },
            AugmentName::Crop => Augment::Crop { pad: 4 },
            AugmentName::None => Augment::None,
        })
    }

    /// The generated set's sizes; none for the other datasets.
    pub(super) fn synthetic_size(
        &self,
        layers: &Layers,
        dataset: DatasetKind,
    ) -> Result<SyntheticSize, ConfigError> {
        if dataset != DatasetKind::Synthetic {
            return Ok(SyntheticSize { train: 0, test: 0 });
        }
        Ok(SyntheticSize {
            train: self.at_least_one(setting!(layers, train_size)?)?,
            test: self.at_least_one(setting!(layers, test_size)?)?,
        })
    }
}
