//! The distillation shared by KD-AT and IAD (docs/protocol.md#kd-at, #iad): PGD-CE examples
//! crafted on the student, the teachers run in eval mode under no-grad on the student's `x` and
//! `x'`, and KD losses without temperature (T = 1, docs/protocol.md Q20).
use super::teachers::Teachers;
use super::{attack_in_train_mode, pgd_ce_examples, training_pgd, StepLosses};
use crate::attacks::Pgd;
use crate::config::JobConfig;
use crate::data::Batch;
use crate::losses::{correct, cross_entropy, kl_batchmean};
use crate::models::Network;
use crate::ratio::LossTerms;
use tch::{Kind, Tensor};

/// The weights of the KD loss's terms (`--ce`, `--teacher_robust`, `--teacher_standard`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KdWeights {
    pub ce: f64,
    pub robust: f64,
    pub standard: f64,
}

/// The teachers' class probabilities `p_R` and `p_S` on one batch of inputs; constants.
pub struct TeacherProbabilities {
    pub robust: Tensor,
    pub standard: Tensor,
}

/// `ce·CE(z, y) + robust·KL_bm(p_R ‖ p_z) + standard·KL_bm(p_S ‖ p_z)`: `KD_clean` on the clean
/// logits and KD-AT's `KD_adv` on the adversarial ones.
pub fn kd_loss(
    weights: &KdWeights,
    logits: &Tensor,
    labels: &Tensor,
    teachers: &TeacherProbabilities,
) -> Tensor {
    let log_q = logits.log_softmax(-1, Kind::Float);
    cross_entropy(logits, labels) * weights.ce
        + kl_batchmean(&teachers.robust, &log_q) * weights.robust
        + kl_batchmean(&teachers.standard, &log_q) * weights.standard
}

/// The forwards of one training batch: the student's train-mode logits on `x` and `x'`, and the
/// teachers' probabilities on both.
pub struct Forwards {
    pub clean_logits: Tensor,
    pub adversarial_logits: Tensor,
    pub on_clean: TeacherProbabilities,
    pub on_adversarial: TeacherProbabilities,
}

/// A student distilling from its two teachers.
pub struct Distillation {
    attack: Pgd,
    attack_train_mode: bool,
    teachers: Teachers,
    pub weights: KdWeights,
}

impl Distillation {
    pub fn new(cfg: &JobConfig, teachers: Teachers, weights: KdWeights) -> Distillation {
        Distillation {
            attack: training_pgd(cfg),
            attack_train_mode: attack_in_train_mode(cfg),
            teachers,
            weights,
        }
    }

    /// One batch: `x'` by PGD-CE on the student (4.1), the student's clean then adversarial
    /// forwards in train mode, the teachers' on both; `KD_clean` as the standard loss and
    /// `adversarial_loss` (the method's `KD_adv`) as the adversarial and baseline losses.
    pub fn step(
        &self,
        net: &Network,
        batch: &Batch,
        adversarial_loss: impl FnOnce(&KdWeights, &Forwards, &Tensor) -> Tensor,
    ) -> StepLosses {
        let train = self.attack_train_mode;
        let adversarial = pgd_ce_examples(&self.attack, net, train, batch);
        let clean_logits = net.forward_t(&batch.images, true);
        let adversarial_logits = net.forward_t(&adversarial, true);
        let (on_clean, on_adversarial) = self.teach(&batch.images, &adversarial);
        let forwards = Forwards {
            clean_logits,
            adversarial_logits,
            on_clean,
            on_adversarial,
        };
        let labels = &batch.labels;
        let standard = kd_loss(
            &self.weights,
            &forwards.clean_logits,
            labels,
            &forwards.on_clean,
        );
        let adversarial_loss = adversarial_loss(&self.weights, &forwards, labels);
        // The `teacher` statistic (section 7): the robust teacher on the student's training x'.
        let teacher_correct =
            crate::thread_modes::no_grad(|| correct(&forwards.on_adversarial.robust, labels));
        StepLosses {
            terms: LossTerms::adversarial_baseline(standard, adversarial_loss),
            clean_logits: forwards.clean_logits,
            adversarial_logits: forwards.adversarial_logits,
            teacher_correct: Some(teacher_correct),
        }
    }

    /// The teachers' probabilities on `x` and on `x'`, in eval mode (no BatchNorm update) and
    /// without a graph. Eval mode treats samples independently, so each teacher sees both
    /// batches in one forward.
    fn teach(
        &self,
        clean: &Tensor,
        adversarial: &Tensor,
    ) -> (TeacherProbabilities, TeacherProbabilities) {
        crate::thread_modes::no_grad(|| {
            let both = Tensor::cat(&[clean, adversarial], 0);
            let size = clean.size()[0];
            let robust = self
                .teachers
                .robust
                .forward_t(&both, false)
                .softmax(-1, Kind::Float);
            let standard = self
                .teachers
                .standard
                .forward_t(&both, false)
                .softmax(-1, Kind::Float);
            let part = |start: i64| TeacherProbabilities {
                robust: robust.narrow(0, start, size),
                standard: standard.narrow(0, start, size),
            };
            (part(0), part(size))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::losses::testing::{close, kl, probabilities};

    fn softmax(z: &[f64; 3]) -> [f64; 3] {
        let total: f64 = z.iter().map(|v| v.exp()).sum();
        z.map(|v| v.exp() / total)
    }

    #[test]
    fn kd_loss_by_hand() {
        let logits = [[2.0, -1.0, 0.5], [0.1, 0.2, 3.0]];
        let labels = [0_i64, 1];
        let robust = [[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]];
        let standard = [[0.9, 0.05, 0.05], [0.2, 0.3, 0.5]];
        let weights = KdWeights {
            ce: 0.25,
            robust: 0.5,
            standard: 0.25,
        };
        let teachers = TeacherProbabilities {
            robust: probabilities(&robust),
            standard: probabilities(&standard),
        };
        let z = Tensor::from_slice2(&logits).to_kind(Kind::Float);
        let y = Tensor::from_slice(&labels);
        let loss = kd_loss(&weights, &z, &y, &teachers).double_value(&[]);

        let mut expected = 0.0;
        for i in 0..2 {
            let q = softmax(&logits[i]);
            expected += weights.ce * -q[labels[i] as usize].ln()
                + weights.robust * kl(&robust[i], &q)
                + weights.standard * kl(&standard[i], &q);
        }
        expected /= 2.0;
        assert!(close(loss, expected), "{loss} vs {expected}");

        // Each weight scales its own term only.
        let only = |ce, robust, standard| {
            let w = KdWeights {
                ce,
                robust,
                standard,
            };
            kd_loss(&w, &z, &y, &teachers).double_value(&[])
        };
        let q: Vec<[f64; 3]> = logits.iter().map(softmax).collect();
        let ce = (-q[0][0].ln() - q[1][1].ln()) / 2.0;
        let kl_r = (kl(&robust[0], &q[0]) + kl(&robust[1], &q[1])) / 2.0;
        let kl_s = (kl(&standard[0], &q[0]) + kl(&standard[1], &q[1])) / 2.0;
        assert!(close(only(1.0, 0.0, 0.0), ce));
        assert!(close(only(0.0, 1.0, 0.0), kl_r));
        assert!(close(only(0.0, 0.0, 1.0), kl_s));
        assert!(close(
            only(0.3, 0.6, 0.1),
            0.3 * ce + 0.6 * kl_r + 0.1 * kl_s
        ));
    }
}
