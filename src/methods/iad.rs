//! IAD (docs/protocol.md#iad): KD-AT whose robust-teacher term becomes introspective from
//! epoch `begin` on: each sample trusts the robust teacher by `α_i = p_R(x'_i)[y_i]^b` and itself
//! (its clean prediction) by `1 − α_i`.
use super::distillation::{kd_loss, Distillation, Forwards, KdWeights};
use super::teachers::Teachers;
use super::{StepLosses, TrainingMethod};
use crate::config::{IadParams, JobConfig};
use crate::data::Batch;
use crate::losses::{cross_entropy, kl_batchmean, kl_per_sample};
use crate::models::Network;
use crate::store::train_log::{Columns, Layout};
use tch::{Kind, Tensor};

/// When and how strongly the student trusts the robust teacher.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Introspection {
    /// The first (0-indexed) epoch of the introspective `KD_adv`.
    pub begin: usize,
    /// The exponent `b` of the teacher's true-class probability.
    pub b: f64,
}

impl Introspection {
    /// `KD_adv` of epoch `epoch` (0-indexed): KD-AT's before `begin`, the introspective form from it on.
    pub fn adversarial_loss(
        &self,
        weights: &KdWeights,
        epoch: usize,
        forwards: &Forwards,
        labels: &Tensor,
    ) -> Tensor {
        if epoch < self.begin {
            return kd_loss(
                weights,
                &forwards.adversarial_logits,
                labels,
                &forwards.on_adversarial,
            );
        }
        let log_q = forwards.adversarial_logits.log_softmax(-1, Kind::Float);
        let alpha = self.weights(&forwards.on_adversarial.robust, labels);
        // The self-distillation target p_f(x) is not detached: its gradient reaches the clean
        // branch, as in the reference (docs/protocol.md Q22).
        let own_clean = forwards.clean_logits.softmax(-1, Kind::Float);
        let trust_teacher = &alpha * kl_per_sample(&forwards.on_adversarial.robust, &log_q);
        let trust_self = (1.0_f64 - &alpha) * kl_per_sample(&own_clean, &log_q);
        let introspective = (trust_teacher + trust_self).mean(Kind::Float);
        cross_entropy(&forwards.adversarial_logits, labels) * weights.ce
            + introspective * weights.robust
            + kl_batchmean(&forwards.on_adversarial.standard, &log_q) * weights.standard
    }

    /// `α_i = p_R(x'_i)[y_i]^b`, per sample and vectorised (docs/protocol.md Q21); constants, like the reference's
    /// python floats.
    pub fn weights(&self, robust_probabilities: &Tensor, labels: &Tensor) -> Tensor {
        robust_probabilities
            .detach()
            .gather(-1, &labels.unsqueeze(-1), false)
            .squeeze_dim(-1)
            .pow_tensor_scalar(self.b)
    }
}

pub struct Iad {
    distillation: Distillation,
    introspection: Introspection,
}

impl Iad {
    pub fn new(cfg: &JobConfig, params: IadParams, teachers: Teachers) -> Iad {
        let IadParams {
            ce,
            teacher_robust,
            teacher_standard,
            begin,
            b,
        } = params;
        let weights = KdWeights {
            ce,
            robust: teacher_robust,
            standard: teacher_standard,
        };
        Iad {
            distillation: Distillation::new(cfg, teachers, weights),
            introspection: Introspection { begin, b },
        }
    }
}

impl TrainingMethod for Iad {
    fn train_log(&self) -> Layout {
        Layout::Main {
            name: "IAD",
            columns: Columns::Adversarial,
        }
    }

    fn losses(&mut self, net: &Network, batch: &Batch, epoch: usize) -> StepLosses {
        let introspection = self.introspection;
        self.distillation
            .step(net, batch, |weights, forwards, labels| {
                introspection.adversarial_loss(weights, epoch, forwards, labels)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methods::distillation::TeacherProbabilities;

    const WEIGHTS: KdWeights = KdWeights {
        ce: 0.25,
        robust: 0.5,
        standard: 0.25,
    };
    const INTROSPECTION: Introspection = Introspection { begin: 3, b: 0.1 };

    fn tensor(rows: &[[f64; 3]]) -> Tensor {
        Tensor::from_slice2(rows).to_kind(Kind::Float)
    }

    fn labels() -> Tensor {
        Tensor::from_slice(&[0_i64, 2])
    }

    /// A batch of two with the clean logits as a leaf, to follow gradients into the clean branch.
    fn forwards(clean: &Tensor) -> Forwards {
        Forwards {
            clean_logits: clean.shallow_clone(),
            adversarial_logits: tensor(&[[1.0, 0.5, -0.5], [0.2, 1.5, 0.1]]),
            on_clean: TeacherProbabilities {
                robust: tensor(&[[0.6, 0.3, 0.1], [0.1, 0.1, 0.8]]),
                standard: tensor(&[[0.8, 0.1, 0.1], [0.05, 0.05, 0.9]]),
            },
            on_adversarial: TeacherProbabilities {
                robust: tensor(&[[0.5, 0.3, 0.2], [0.2, 0.4, 0.4]]),
                standard: tensor(&[[0.4, 0.4, 0.2], [0.3, 0.3, 0.4]]),
            },
        }
    }

    fn clean_leaf(rows: &[[f64; 3]]) -> Tensor {
        tensor(rows).set_requires_grad(true)
    }

    const CLEAN: [[f64; 3]; 2] = [[2.0, 0.0, -1.0], [0.3, -0.2, 1.2]];

    fn value(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    fn softmax(z: &[f64; 3]) -> [f64; 3] {
        let total: f64 = z.iter().map(|v| v.exp()).sum();
        z.map(|v| v.exp() / total)
    }

    fn kl(p: &[f64; 3], q: &[f64; 3]) -> f64 {
        p.iter().zip(q).map(|(p, q)| p * (p.ln() - q.ln())).sum()
    }

    #[test]
    fn weights_are_the_robust_teachers_true_class_probability_to_the_power_b_and_constant() {
        let robust = tensor(&[[0.5, 0.3, 0.2], [0.2, 0.4, 0.4]]).set_requires_grad(true);
        let alpha = INTROSPECTION.weights(&robust, &labels());
        assert!(!alpha.requires_grad(), "α must be a constant");
        let expected = [0.5_f64.powf(0.1), 0.4_f64.powf(0.1)];
        for (i, expected) in expected.iter().enumerate() {
            assert!((alpha.double_value(&[i as i64]) - expected).abs() < 1e-6);
        }
        let b_one = Introspection { begin: 0, b: 1.0 }.weights(&robust, &labels());
        assert!((b_one.double_value(&[1]) - 0.4).abs() < 1e-7);
    }

    #[test]
    fn the_introspective_form_applies_from_begin() {
        let clean = clean_leaf(&CLEAN);
        let f = forwards(&clean);
        let before = INTROSPECTION.adversarial_loss(&WEIGHTS, 2, &f, &labels());
        let kd_at = kd_loss(
            &WEIGHTS,
            &f.adversarial_logits,
            &labels(),
            &f.on_adversarial,
        );
        assert_eq!(value(&before), value(&kd_at));

        let adversarial = [[1.0, 0.5, -0.5], [0.2, 1.5, 0.1]];
        let robust: [[f64; 3]; 2] = [[0.5, 0.3, 0.2], [0.2, 0.4, 0.4]];
        let standard = [[0.4, 0.4, 0.2], [0.3, 0.3, 0.4]];
        let y = [0, 2];
        let mut expected = 0.0;
        for i in 0..2 {
            let q = softmax(&adversarial[i]);
            let alpha = robust[i][y[i]].powf(0.1);
            let own = softmax(&CLEAN[i]);
            expected += 0.25 * -q[y[i]].ln()
                + 0.5 * (alpha * kl(&robust[i], &q) + (1.0 - alpha) * kl(&own, &q))
                + 0.25 * kl(&standard[i], &q);
        }
        expected /= 2.0;
        for epoch in [3, 4, 100] {
            let from = INTROSPECTION.adversarial_loss(&WEIGHTS, epoch, &f, &labels());
            assert!(
                (value(&from) - expected).abs() < 1e-6,
                "epoch {epoch}: {} vs {expected}",
                value(&from)
            );
        }
        assert!((expected - value(&kd_at)).abs() > 1e-3);
    }

    #[test]
    fn the_self_distillation_gradient_reaches_the_clean_branch() {
        let gradient = |epoch: usize, rows: &[[f64; 3]; 2]| {
            let clean = clean_leaf(rows);
            let loss =
                INTROSPECTION.adversarial_loss(&WEIGHTS, epoch, &forwards(&clean), &labels());
            assert!(loss.requires_grad(), "KD_adv ignores the clean logits");
            let grad = Tensor::run_backward(&[&loss], &[&clean], false, true)
                .pop()
                .expect("one gradient per input");
            (value(&loss), grad)
        };
        // Before `begin`, KD_adv does not involve the clean logits (the only leaf here).
        let clean = clean_leaf(&CLEAN);
        let before = INTROSPECTION.adversarial_loss(&WEIGHTS, 2, &forwards(&clean), &labels());
        assert!(!before.requires_grad());

        // From `begin` on, d KD_adv / d f(x) matches central differences.
        let (_, grad) = gradient(3, &CLEAN);
        assert!(value(&grad.abs().sum(Kind::Float)) > 1e-4);
        let h = 1e-2;
        for i in 0..2 {
            for k in 0..3 {
                let mut up = CLEAN;
                let mut down = CLEAN;
                up[i][k] += h;
                down[i][k] -= h;
                let numeric = (gradient(3, &up).0 - gradient(3, &down).0) / (2.0 * h);
                let analytic = grad.double_value(&[i as i64, k as i64]);
                assert!(
                    (numeric - analytic).abs() < 1e-3,
                    "∂/∂f(x)[{i},{k}]: {analytic} vs {numeric}"
                );
            }
        }
    }
}
