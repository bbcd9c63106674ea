//! Generalist (Wang et al.; docs/protocol.md#generalist): an AT learner (the run's network and
//! optimizer) and an ST learner (held here, with its own optimizer) train side by side; EMA teachers
//! of both are mixed into a global model `T_mix`, which is evaluated and saved, and in the
//! communication epochs both learners are reset from it after every batch.
use super::{
    attack_in_train_mode, cross_entropy_step, pgd_ce_examples, training_pgd, MethodError,
    StepLosses, TrainingMethod,
};
use crate::attacks::Pgd;
use crate::config::{GeneralistParams, JobConfig};
use crate::data::Batch;
use crate::losses::cross_entropy;
use crate::models::{ModelSpec, Network};
use crate::optim::schedule::interpolate;
use crate::optim::sgd::Sgd;
use crate::store::train_log::Layout;
use std::collections::HashMap;
use tch::{Device, Tensor};

/// An exponential moving average of a network's whole state (6.7, "EMA rule").
pub struct Ema {
    pub model: Network,
    /// Handles on `model`'s state in [`Network::state_dict`] order, updated in place (no per-batch
    /// lookup).
    state: Vec<(String, Tensor)>,
    /// Updates so far, `t` in the decay rule.
    pub updates: u64,
    max_decay: f64,
}

impl Ema {
    pub fn new(model: Network, max_decay: f64) -> Ema {
        Ema {
            state: model.state_dict(),
            model,
            updates: 0,
            max_decay,
        }
    }

    /// `decay_t = min(max_decay, (t+1)/(t+10))`.
    pub fn decay(&self) -> f64 {
        let t = self.updates as f64;
        self.max_decay.min((t + 1.0) / (t + 10.0))
    }

    /// `θ_ema ← decay·θ_ema + (1−decay)·θ_src` on every parameter and buffer; `source` lists the
    /// state in [`Network::state_dict`] order.
    pub fn update(&mut self, source: &[(String, Tensor)]) {
        let weight = 1.0 - self.decay();
        self.updates += 1;
        crate::thread_modes::no_grad(|| {
            for ((_, target), (_, src)) in self.state.iter().zip(source) {
                blend_into(target, src, weight);
            }
        });
    }
}

/// `target ← (1−w)·target + w·source` in place; integer buffers (`num_batches_tracked`) are
/// truncated, as copying a float result into them does in the reference.
fn blend_into(target: &Tensor, source: &Tensor, weight: f64) {
    let mut target = target.shallow_clone();
    if target.is_floating_point() {
        let _ = target.lerp_(source, weight);
    } else {
        let blended = &target * (1.0 - weight) + source * weight;
        target.copy_(&blended);
    }
}

/// When the learners are reset from the global model (6.7 step 6, 1-indexed epochs).
#[derive(Clone, Copy, Debug)]
pub struct Communication {
    pub start: usize,
    pub period: usize,
}

impl Communication {
    /// Whether 0-indexed epoch `epoch` communicates: `e ≥ start` and `e mod period = 0`, `e = epoch+1`.
    pub fn is_communication_epoch(&self, epoch: usize) -> bool {
        let e = epoch + 1;
        e >= self.start && e.is_multiple_of(self.period)
    }
}

/// β_mix of 0-indexed epoch `epoch`, interpolated through `(epoch, β)` points with 1-indexed epochs.
pub fn mixing_coefficient(points: &[(f64, f64)], epoch: usize) -> f64 {
    interpolate(points, (epoch + 1) as f64)
}

pub struct Generalist {
    attack: Pgd,
    attack_train_mode: bool,
    st_learner: Network,
    st_optimizer: Sgd,
    at_teacher: Ema,
    st_teacher: Ema,
    global: Ema,
    mix_points: Vec<(f64, f64)>,
    communication: Communication,
}

/// Prefixes of the resume state's tensor names.
const ST_LEARNER: &str = "st_learner.";
const ST_MOMENTUM: &str = "st_momentum.";
const AT_TEACHER: &str = "at_teacher.";
const ST_TEACHER: &str = "st_teacher.";
const GLOBAL: &str = "global.";
const UPDATES: &str = "updates";

impl Generalist {
    /// Builds the extra networks; their weights are set from the AT learner by [`TrainingMethod::initialise`].
    pub fn new(
        cfg: &JobConfig,
        params: &GeneralistParams,
        spec: &ModelSpec,
        device: Device,
    ) -> Result<Generalist, MethodError> {
        let GeneralistParams {
            st_weight_decay,
            ref mix_points,
            communication_start,
            communication_period,
            ema_max_decay,
        } = *params;
        let network = || {
            Network::new(spec, device).map_err(|source| MethodError::Network {
                what: cfg.job.clone(),
                source: Box::new(source),
            })
        };
        let st_learner = network()?;
        let st_optimizer = Sgd::new(st_learner.parameters(), cfg.momentum, st_weight_decay);
        Ok(Generalist {
            attack: training_pgd(cfg),
            attack_train_mode: attack_in_train_mode(cfg),
            st_learner,
            st_optimizer,
            at_teacher: Ema::new(network()?, ema_max_decay),
            st_teacher: Ema::new(network()?, ema_max_decay),
            global: Ema::new(network()?, ema_max_decay),
            mix_points: mix_points.clone(),
            communication: Communication {
                start: communication_start,
                period: communication_period,
            },
        })
    }

    /// The ST learner's clean-only step (6.7 step 4).
    fn st_step(&mut self, batch: &Batch, lr: f64) {
        self.st_optimizer.zero_grad();
        let logits = self.st_learner.forward_t(&batch.images, true);
        cross_entropy(&logits, &batch.labels).backward();
        self.st_optimizer.step(lr);
    }

    /// `T_mix` from `β_mix·θ(T_at) + (1−β_mix)·θ(T_st)` (6.7 step 5).
    fn update_global(&mut self, epoch: usize) {
        let beta = mixing_coefficient(&self.mix_points, epoch);
        let at = &self.at_teacher.state;
        if beta == 1.0 {
            // Exactly T_at's state, without computing the blend (epochs ≤ 80 by default, docs/protocol.md Q18).
            self.global.update(at);
            return;
        }
        let source: Vec<(String, Tensor)> = crate::thread_modes::no_grad(|| {
            at.iter()
                .zip(&self.st_teacher.state)
                .map(|((name, a), (_, s))| (name.clone(), a * beta + s * (1.0 - beta)))
                .collect()
        });
        self.global.update(&source);
    }
}

impl TrainingMethod for Generalist {
    fn train_log(&self) -> Layout {
        Layout::Learners
    }

    /// Its code takes the barrier branch when `L_s ≤ switch·u` (docs/protocol.md Q19).
    fn barrier_at_threshold(&self) -> bool {
        true
    }

    fn initialise(&mut self, at_learner: &Network) -> Result<(), MethodError> {
        // model_st is a deep copy of model_at; the teachers copy their learners (6.7, "Models and state").
        for net in [
            &mut self.st_learner,
            &mut self.at_teacher.model,
            &mut self.st_teacher.model,
            &mut self.global.model,
        ] {
            net.copy_from(at_learner)
                .map_err(|source| MethodError::Network {
                    what: "generalist's copies of the AT learner".to_string(),
                    source: Box::new(source),
                })?;
        }
        Ok(())
    }

    fn losses(&mut self, net: &Network, batch: &Batch, _epoch: usize) -> StepLosses {
        // The training attack runs in eval mode (docs/protocol.md#generalist and Q2); the losses in train mode.
        let train = self.attack_train_mode;
        let adversarial = pgd_ce_examples(&self.attack, net, train, batch);
        cross_entropy_step(net, batch, &adversarial)
    }

    fn after_step(
        &mut self,
        at_learner: &mut Network,
        batch: &Batch,
        epoch: usize,
        lr: f64,
    ) -> Result<(), MethodError> {
        self.at_teacher.update(&at_learner.state_dict());
        self.st_step(batch, lr);
        self.st_teacher.update(&self.st_learner.state_dict());
        self.update_global(epoch);
        if self.communication.is_communication_epoch(epoch) {
            // Momentum buffers are kept (docs/protocol.md Q16).
            let communication = |source| MethodError::Network {
                what: "generalist's communication".to_string(),
                source: Box::new(source),
            };
            at_learner
                .copy_from(&self.global.model)
                .map_err(communication)?;
            self.st_learner
                .copy_from(&self.global.model)
                .map_err(communication)?;
        }
        Ok(())
    }

    fn evaluated(&self) -> Option<&Network> {
        // Per-epoch test, final evaluation and model.safetensors use T_mix (6.7; Q15 fixed).
        Some(&self.global.model)
    }

    /// Its step also trains the ST learner and updates the EMA teachers outside `losses`.
    fn capturable(&self) -> bool {
        false
    }

    fn tested_alongside(&self) -> Option<&Network> {
        // The per-epoch test is `test(T_st, T_mix)` (6.7).
        Some(&self.st_teacher.model)
    }

    fn resume_state(&self) -> Vec<(String, Tensor)> {
        let prefixed = |prefix: &str, state: Vec<(String, Tensor)>| {
            state
                .into_iter()
                .map(move |(name, t)| (format!("{prefix}{name}"), t))
                .collect::<Vec<_>>()
        };
        let mut state = prefixed(ST_LEARNER, self.st_learner.state_dict());
        state.extend(prefixed(ST_MOMENTUM, self.st_optimizer.momentum_buffers()));
        for (prefix, ema) in [
            (AT_TEACHER, &self.at_teacher),
            (ST_TEACHER, &self.st_teacher),
            (GLOBAL, &self.global),
        ] {
            state.extend(prefixed(prefix, ema.model.state_dict()));
            state.push((
                format!("{prefix}{UPDATES}"),
                Tensor::from(ema.updates as i64),
            ));
        }
        state
    }

    fn restore_state(&mut self, saved: Vec<(String, Tensor)>) -> Result<(), MethodError> {
        let (momentum, models): (Vec<_>, Vec<_>) = saved
            .into_iter()
            .partition(|(name, _)| name.starts_with(ST_MOMENTUM));
        let momentum = momentum
            .into_iter()
            .map(|(name, t)| (name[ST_MOMENTUM.len()..].to_string(), t))
            .collect();
        let mut saved: HashMap<String, Tensor> = models.into_iter().collect();
        load_state(&self.st_learner, &mut saved, ST_LEARNER)?;
        self.st_optimizer.restore_momentum(momentum)?;
        for (prefix, ema) in [
            (AT_TEACHER, &mut self.at_teacher),
            (ST_TEACHER, &mut self.st_teacher),
            (GLOBAL, &mut self.global),
        ] {
            load_state(&ema.model, &mut saved, prefix)?;
            let counter = format!("{prefix}{UPDATES}");
            let updates = saved
                .remove(&counter)
                .ok_or(MethodError::MissingState { key: counter })?;
            ema.updates = updates.int64_value(&[]).max(0) as u64;
        }
        Ok(())
    }
}

/// Copies the saved tensors named `prefix + name` into `net`'s state; every entry must be present.
fn load_state(
    net: &Network,
    saved: &mut HashMap<String, Tensor>,
    prefix: &str,
) -> Result<(), MethodError> {
    crate::thread_modes::no_grad(|| {
        for (name, target) in net.state_dict() {
            let key = format!("{prefix}{name}");
            let Some(saved) = saved.remove(&key) else {
                return Err(MethodError::MissingState { key });
            };
            target
                .shallow_clone()
                .f_copy_(&saved)
                .map_err(|source| MethodError::StateMismatch { key, source })?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ModelKind;

    fn tiny_network() -> Network {
        let spec = ModelSpec {
            kind: ModelKind::SmallCnn,
            in_channels: 3,
            height: 32,
            width: 32,
            classes: 10,
            dropout: 0.0,
        };
        Network::new(&spec, Device::Cpu).expect("small-cnn builds")
    }

    #[test]
    fn ema_decay_follows_the_warm_up_rule() {
        let mut ema = Ema::new(tiny_network(), 0.999);
        // (t+1)/(t+10) for t = 0, 1, 2 …, capped at 0.999 from t = 8991 on.
        assert!((ema.decay() - 0.1).abs() < 1e-15);
        ema.updates = 1;
        assert!((ema.decay() - 2.0 / 11.0).abs() < 1e-15);
        ema.updates = 8990;
        assert!((ema.decay() - 8991.0 / 9000.0).abs() < 1e-15);
        ema.updates = 8991;
        assert_eq!(ema.decay(), 0.999);
        ema.updates = 1_000_000;
        assert_eq!(ema.decay(), 0.999);
    }

    #[test]
    fn ema_update_matches_a_hand_computation() {
        let mut ema = Ema::new(tiny_network(), 0.999);
        let source = tiny_network();
        let before: Vec<Tensor> = ema
            .model
            .state_dict()
            .iter()
            .map(|(_, t)| t.copy())
            .collect();
        // Give the integer counters values whose blend must be truncated: 0.9·3 + 0.1·7 = 3.4 → 3.
        crate::thread_modes::no_grad(|| {
            for ((name, e), (_, s)) in ema.model.state_dict().iter().zip(source.state_dict()) {
                if name.ends_with("num_batches_tracked") {
                    let _ = e.shallow_clone().fill_(3);
                    let _ = s.shallow_clone().fill_(7);
                }
            }
        });
        ema.update(&source.state_dict());
        assert_eq!(ema.updates, 1);
        for (((name, after), (_, src)), old) in ema
            .model
            .state_dict()
            .iter()
            .zip(source.state_dict())
            .zip(&before)
        {
            if name.ends_with("num_batches_tracked") {
                assert_eq!(after.int64_value(&[]), 3, "{name}");
                continue;
            }
            let expected = old * 0.1 + &src * 0.9;
            let gap = (after - expected).abs().max().double_value(&[]);
            assert!(gap < 1e-6, "{name}: off by {gap}");
        }
    }

    #[test]
    fn mixing_coefficient_through_the_reference_points() {
        let points = [(0.0, 1.0), (40.0, 1.0), (80.0, 1.0), (120.0, 0.9)];
        let beta = |e| mixing_coefficient(&points, e);
        assert_eq!(beta(0), 1.0); // epoch 1
        assert_eq!(beta(39), 1.0); // epoch 40
        assert_eq!(beta(79), 1.0); // epoch 80
        assert!((beta(99) - 0.95).abs() < 1e-12); // epoch 100: halfway to 0.9
        assert!((beta(89) - 0.975).abs() < 1e-12); // epoch 90
        assert!((beta(119) - 0.9).abs() < 1e-12); // epoch 120
        assert!((beta(130) - 0.9).abs() < 1e-12); // constant after the last point
    }

    #[test]
    fn communication_epochs_are_75_to_120_every_third() {
        let communication = Communication {
            start: 75,
            period: 3,
        };
        let epochs: Vec<usize> = (0..120)
            .filter(|&e| communication.is_communication_epoch(e))
            .map(|e| e + 1)
            .collect();
        assert_eq!(epochs, (75..=120).step_by(3).collect::<Vec<_>>());
        assert_eq!(epochs.len(), 16);
    }
}
