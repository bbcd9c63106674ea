//! FAT's early-stopped PGD (docs/protocol.md#early-stopped-pgd-for-fat, Q24): PGD-CE whose output for each
//! sample is the first iterate at which its cumulative count of misclassified iterates reaches
//! τ+1. Runs on the device without host reads.
use super::{input_gradient, per_sample, project, Logits, RandomStart};
use crate::losses::cross_entropy;
use tch::{Kind, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct EarlyStoppedPgd {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

impl EarlyStoppedPgd {
    /// Per sample: the first iterate `x_s` (`s < K`) such that `τ+1` of `x_0..x_s` are misclassified
    /// (not necessarily in a row), else `x_K`; detached. As the reference, every sample keeps
    /// stepping and counting after it is returned, and `x_K` itself is never tested.
    pub fn run(&self, logits: Logits, x: &Tensor, labels: &Tensor, tau: usize) -> Tensor {
        let x = x.detach();
        let mut adversarial = RandomStart::Uniform.apply(&x, self.epsilon);
        // The reference counts r_i down from τ and stops at r_i = −1: here, up from 0 to τ+1.
        let mut misclassified = labels.zeros_like().to_kind(Kind::Int64);
        let mut returned = labels.zeros_like().to_kind(Kind::Bool);
        let mut output = x.zeros_like();
        crate::thread_modes::with_grad(|| {
            for _ in 0..self.steps {
                let current = adversarial.detach().set_requires_grad(true);
                let z = logits(&current);
                misclassified += z.argmax(-1, false).ne_tensor(labels);
                let stops = misclassified
                    .eq(tau as i64 + 1)
                    .logical_and(&returned.logical_not());
                output = current
                    .detach()
                    .where_self(&per_sample(&stops, &x), &output);
                returned = returned.logical_or(&stops);
                // One forward serves the prediction and the gradient (one BN update per step).
                let gradient = input_gradient(&cross_entropy(&z, labels), &current);
                adversarial = project(
                    &(current.detach() + gradient.sign() * self.step_size),
                    &x,
                    self.epsilon,
                );
            }
        });
        output
            .where_self(&per_sample(&returned, &x), &adversarial)
            .detach()
    }
}
