//! KD-AT (docs/protocol.md#kd-at): a student trained on PGD-CE examples while distilling from a
//! robust and a standard teacher; `KD_clean` and `KD_adv` are the same KD loss on `x` and `x'`.
use super::distillation::{kd_loss, Distillation, KdWeights};
use super::teachers::Teachers;
use super::{StepLosses, TrainingMethod};
use crate::config::{JobConfig, KdParams};
use crate::data::Batch;
use crate::models::Network;
use crate::store::train_log::{Columns, Layout};

pub struct KdAt {
    distillation: Distillation,
}

impl KdAt {
    pub fn new(cfg: &JobConfig, params: KdParams, teachers: Teachers) -> KdAt {
        let weights = KdWeights {
            ce: params.ce,
            robust: params.teacher_robust,
            standard: params.teacher_standard,
        };
        KdAt {
            distillation: Distillation::new(cfg, teachers, weights),
        }
    }
}

impl TrainingMethod for KdAt {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "KD_AT",
            columns: Columns::AdversarialAndTeacher,
        }
    }

    fn losses(&mut self, net: &Network, batch: &Batch, _epoch: usize) -> StepLosses {
        self.distillation
            .step(net, batch, |weights, forwards, labels| {
                kd_loss(
                    weights,
                    &forwards.adversarial_logits,
                    labels,
                    &forwards.on_adversarial,
                )
            })
    }
}
