//! PGD-AT (Madry et al.; docs/protocol.md#pgd-at): PGD-CE training examples crafted in train mode,
//! baseline loss `CE(f(x'), y)`.
use super::{
    attack_in_train_mode, cross_entropy_step, pgd_ce_examples, training_pgd, StepLosses,
    TrainingMethod,
};
use crate::attacks::Pgd;
use crate::config::JobConfig;
use crate::data::Batch;
use crate::models::Network;
use crate::store::train_log::{Columns, Layout};

pub struct PgdAt {
    attack: Pgd,
    attack_train_mode: bool,
}

impl PgdAt {
    pub fn new(cfg: &JobConfig) -> PgdAt {
        PgdAt {
            attack: training_pgd(cfg),
            attack_train_mode: attack_in_train_mode(cfg),
        }
    }
}

impl TrainingMethod for PgdAt {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "PGD_AT",
            columns: Columns::Adversarial,
        }
    }

    fn losses(&mut self, net: &Network, batch: &Batch, _epoch: usize) -> StepLosses {
        let train = self.attack_train_mode;
        let adversarial = pgd_ce_examples(&self.attack, net, train, batch);
        cross_entropy_step(net, batch, &adversarial)
    }
}
