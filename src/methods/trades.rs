//! TRADES (docs/protocol.md#trades): examples from PGD-KL (docs/protocol.md#pgd-kl-for-trades), loss
//! `CE(f(x), y) + λ·KL_bm(clamp(softmax(f(x)), 1e-8) ‖ softmax(f(x')))`. In FixRAT and AdaRAT the
//! λ·KL term is the ratio's `extra`, so AdaRAT's clean-only branch drops it with the regulariser.
use super::{attack_in_train_mode, training_pgd, StepLosses, TrainingMethod};
use crate::attacks::{pgd_kl, Pgd};
use crate::config::{JobConfig, TradesParams};
use crate::data::Batch;
use crate::losses::{cross_entropy, kl_batchmean};
use crate::models::Network;
use crate::ratio::LossTerms;
use crate::store::train_log::{Columns, Layout};
use tch::Tensor;

pub struct Trades {
    attack: Pgd,
    attack_train_mode: bool,
    lambda: f64,
}

impl Trades {
    pub fn new(cfg: &JobConfig, params: TradesParams) -> Trades {
        Trades {
            attack: training_pgd(cfg),
            attack_train_mode: attack_in_train_mode(cfg),
            lambda: params.lambda,
        }
    }
}

/// `KL_bm(clamp(softmax(f(x)), min 1e-8) ‖ softmax(f(x')))`. The clamped target is neither
/// renormalised nor detached: the gradient flows into the clean branch too (docs/protocol.md Q22).
pub fn kl_term(clean_logits: &Tensor, adversarial_logits: &Tensor) -> Tensor {
    kl_batchmean(
        &clean_logits.softmax(-1, None).clamp_min(1e-8),
        &adversarial_logits.log_softmax(-1, None),
    )
}

/// TRADES' terms: `L_s = CE(f(x), y)`; `L_a = CE(f(x'), y)` (for R and the `train_AE_loss` column,
/// not the TRADES loss); baseline `L_s + λ·KL`; `extra = λ·KL`.
pub fn loss_terms(
    clean_logits: &Tensor,
    adversarial_logits: &Tensor,
    labels: &Tensor,
    lambda: f64,
) -> LossTerms {
    let standard = cross_entropy(clean_logits, labels);
    let weighted_kl = kl_term(clean_logits, adversarial_logits) * lambda;
    LossTerms {
        baseline: &standard + &weighted_kl,
        standard,
        adversarial: cross_entropy(adversarial_logits, labels),
        extra: Some(weighted_kl),
    }
}

impl TrainingMethod for Trades {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "TRADES",
            columns: Columns::Adversarial,
        }
    }

    fn losses(&mut self, net: &Network, batch: &Batch, _epoch: usize) -> StepLosses {
        let train = self.attack_train_mode;
        let adversarial = pgd_kl(&self.attack, &|x| net.forward_t(x, train), &batch.images);
        // Clean, then adversarial train-mode forwards, as the reference.
        let clean_logits = net.forward_t(&batch.images, true);
        let adversarial_logits = net.forward_t(&adversarial, true);
        StepLosses {
            terms: loss_terms(
                &clean_logits,
                &adversarial_logits,
                &batch.labels,
                self.lambda,
            ),
            clean_logits,
            adversarial_logits,
            teacher_correct: None,
        }
    }
}
