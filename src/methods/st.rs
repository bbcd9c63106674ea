//! ST (docs/protocol.md#st): standard training on clean images, `CE(f(x), y)`, no attack; one
//! train-mode forward (one BN statistics update) per batch.
use super::{StepLosses, TrainingMethod};
use crate::data::Batch;
use crate::losses::cross_entropy;
use crate::models::Network;
use crate::ratio::LossTerms;
use crate::store::train_log::{Columns, Layout};

pub struct St;

impl TrainingMethod for St {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "ST",
            columns: Columns::Clean,
        }
    }

    /// Its research code ends with the last epoch's test (docs/protocol.md Q29).
    fn attacked_finally(&self) -> bool {
        false
    }

    fn losses(&mut self, net: &Network, batch: &Batch, _epoch: usize) -> StepLosses {
        let clean_logits = net.forward_t(&batch.images, true);
        let standard = cross_entropy(&clean_logits, &batch.labels);
        // ST trains on x itself (an ε = 0 "attack"), so its adversarial statistics are the clean
        // ones; train.log leaves them out of ST's rows (section 7).
        StepLosses {
            terms: LossTerms {
                standard: standard.shallow_clone(),
                adversarial: standard.shallow_clone(),
                baseline: standard,
                extra: None,
            },
            adversarial_logits: clean_logits.shallow_clone(),
            clean_logits,
            teacher_correct: None,
        }
    }
}
