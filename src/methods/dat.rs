//! DAT (docs/protocol.md#dat): PGD-AT's losses on the examples of the FOSC-controlled PGD
//! (4.3), whose stopping threshold falls linearly to 0 over the first epochs.
use super::{attack_in_train_mode, cross_entropy_step, StepLosses, TrainingMethod};
use crate::attacks::FoscPgd;
use crate::config::{DatParams, JobConfig};
use crate::data::Batch;
use crate::models::Network;
use crate::store::train_log::{Columns, Layout};

pub struct Dat {
    attack: FoscPgd,
    attack_train_mode: bool,
    fosc_max: f64,
    fosc_control_epoch: usize,
}

impl Dat {
    pub fn new(cfg: &JobConfig, params: DatParams) -> Dat {
        let DatParams {
            fosc_max,
            fosc_control_epoch,
        } = params;
        Dat {
            attack: FoscPgd {
                epsilon: cfg.attack.epsilon,
                step_size: cfg.attack.step_size,
                steps: cfg.attack.steps,
            },
            attack_train_mode: attack_in_train_mode(cfg),
            fosc_max,
            fosc_control_epoch,
        }
    }
}

/// `c(e) = max(0, c_max − c_max·e/E)` at the 0-indexed epoch `e`: 0.3 at 0, 0.005 at 59 and 0 from
/// E = 60 on with the reference's values (then the attack is practically PGD-K).
pub fn fosc_threshold(fosc_max: f64, control_epoch: usize, epoch: usize) -> f64 {
    if epoch >= control_epoch {
        return 0.0;
    }
    (fosc_max - fosc_max * epoch as f64 / control_epoch as f64).max(0.0)
}

impl TrainingMethod for Dat {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "DAT",
            columns: Columns::Adversarial,
        }
    }

    fn losses(&mut self, net: &Network, batch: &Batch, epoch: usize) -> StepLosses {
        let train = self.attack_train_mode;
        let adversarial = self.attack.run(
            &|x| net.forward_t(x, train),
            &batch.images,
            &batch.labels,
            fosc_threshold(self.fosc_max, self.fosc_control_epoch, epoch),
        );
        cross_entropy_step(net, batch, &adversarial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fosc_threshold_falls_to_zero_at_the_control_epoch() {
        let c = |epoch| fosc_threshold(0.3, 60, epoch);
        assert_eq!(c(0), 0.3);
        assert!((c(30) - 0.15).abs() < 1e-12);
        assert!((c(59) - 0.005).abs() < 1e-12);
        for epoch in [60, 61, 119] {
            assert_eq!(c(epoch), 0.0);
        }
        assert_eq!(fosc_threshold(0.3, 0, 0), 0.0);
    }
}
