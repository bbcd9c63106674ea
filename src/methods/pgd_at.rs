//! PGD-AT (Madry et al.; reference-behaviour.md 6.1): PGD-CE training examples crafted in train mode,
//! baseline loss `CE(f(x'), y)`.
use super::{attack_in_train_mode, clean_and_adversarial_ce, StepLosses, TrainingMethod};
use crate::attacks::{cross_entropy, Pgd, RandomStart};
use crate::config::JobConfig;
use crate::data::Batch;
use crate::models::Network;
use crate::ratio::LossTerms;

pub struct PgdAt {
    attack: Pgd,
    attack_train_mode: bool,
}

impl PgdAt {
    pub fn new(cfg: &JobConfig) -> PgdAt {
        PgdAt {
            attack: Pgd {
                epsilon: cfg.attack.epsilon,
                step_size: cfg.attack.step_size,
                steps: cfg.attack.steps,
                start: RandomStart::Uniform,
            },
            attack_train_mode: attack_in_train_mode(cfg),
        }
    }
}

impl TrainingMethod for PgdAt {
    fn losses(&mut self, net: &Network, batch: &Batch, _epoch: usize) -> StepLosses {
        let train = self.attack_train_mode;
        let adversarial = self
            .attack
            .run(&|x| net.forward_t(x, train), &batch.images, &|logits| {
                cross_entropy(logits, &batch.labels)
            });
        let (clean_logits, adversarial_logits, standard, adversarial_loss) =
            clean_and_adversarial_ce(net, batch, &adversarial);
        StepLosses {
            terms: LossTerms {
                baseline: adversarial_loss.shallow_clone(),
                standard,
                adversarial: adversarial_loss,
                extra: None,
            },
            clean_logits,
            adversarial_logits,
            teacher_correct: None,
        }
    }
}
