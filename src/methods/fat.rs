//! FAT (docs/protocol.md#fat): PGD-AT's losses on the examples of the early-stopped PGD (4.4),
//! whose budget τ grows with the epoch.
use super::{attack_in_train_mode, cross_entropy_step, MethodError, StepLosses, TrainingMethod};
use crate::attacks::EarlyStoppedPgd;
use crate::config::{FatParams, JobConfig};
use crate::data::Batch;
use crate::models::Network;
use crate::store::train_log::{Columns, Layout};

pub struct Fat {
    attack: EarlyStoppedPgd,
    attack_train_mode: bool,
    taus: Vec<usize>,
    boundaries: Vec<usize>,
}

impl Fat {
    pub fn new(cfg: &JobConfig, params: &FatParams) -> Result<Fat, MethodError> {
        let FatParams { taus, boundaries } = params;
        if taus.len() != boundaries.len() + 1 {
            return Err(MethodError::FatSchedule {
                taus: taus.clone(),
                boundaries: boundaries.clone(),
            });
        }
        Ok(Fat {
            attack: EarlyStoppedPgd {
                epsilon: cfg.attack.epsilon,
                step_size: cfg.attack.step_size,
                steps: cfg.attack.steps,
            },
            attack_train_mode: attack_in_train_mode(cfg),
            taus: taus.clone(),
            boundaries: boundaries.clone(),
        })
    }
}

/// τ at the 0-indexed `epoch`: `taus[i]` before `boundaries[i]`, the last τ from the last
/// boundary on (the reference: 3 before epoch 50, 6 before 90, then 9). Needs one more τ than
/// boundaries, boundaries increasing.
pub fn tau(taus: &[usize], boundaries: &[usize], epoch: usize) -> usize {
    let passed = boundaries.iter().filter(|&&b| epoch >= b).count();
    taus[passed]
}

impl TrainingMethod for Fat {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "FAT",
            columns: Columns::Adversarial,
        }
    }

    fn losses(&mut self, net: &Network, batch: &Batch, epoch: usize) -> StepLosses {
        let train = self.attack_train_mode;
        let adversarial = self.attack.run(
            &|x| net.forward_t(x, train),
            &batch.images,
            &batch.labels,
            tau(&self.taus, &self.boundaries, epoch),
        );
        cross_entropy_step(net, batch, &adversarial)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tau_follows_the_reference_schedule() {
        let (taus, boundaries) = ([3, 6, 9], [50, 90]);
        for (epoch, expected) in [(0, 3), (49, 3), (50, 6), (89, 6), (90, 9), (119, 9)] {
            assert_eq!(tau(&taus, &boundaries, epoch), expected, "epoch {epoch}");
        }
        assert_eq!(tau(&[4], &[], 100), 4);
    }
}
