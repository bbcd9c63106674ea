//! CW∞ (docs/protocol.md#cw-infinity): the PGD engine on the Carlini–Wagner margin loss with
//! margin κ, from the reference's unclipped uniform start.
use super::final_table::{AdversarialImages, TableBatch};
use super::{Logits, Pgd, RandomStart};
use tch::Tensor;

/// `−mean(max(0, z_y − max_{j≠y} z_j + κ))`, the other classes' maximum taken as the reference
/// does (the true class pushed down by 1000).
pub fn cw_loss(logits: &Tensor, labels: &Tensor, margin: f64) -> Tensor {
    let classes = logits.size()[1];
    let one_hot = labels.one_hot(classes).to_kind(logits.kind());
    let true_logit = (logits * &one_hot).sum_dim_intlist(-1, false, logits.kind());
    let others = logits * (-&one_hot + 1.0) - &one_hot * 1000.0;
    let other = others.amax([-1i64].as_slice(), false);
    -(true_logit - other + margin)
        .clamp_min(0.0)
        .mean(logits.kind())
}

#[derive(Clone, Copy, Debug)]
pub struct Cw {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    /// κ: 50 in the reference.
    pub margin: f64,
}

impl Cw {
    /// `steps` ascent steps of size α on the CW loss within the ε-ball; returns `x_K`, detached.
    pub fn run(&self, logits: Logits, x: &Tensor, labels: &Tensor) -> Tensor {
        let pgd = Pgd {
            epsilon: self.epsilon,
            step_size: self.step_size,
            steps: self.steps,
            start: RandomStart::UniformUnclipped,
        };
        pgd.run(logits, x, &|z| cw_loss(z, labels, self.margin))
    }
}

/// CW∞ in the final table, with the configured steps and margin.
pub struct FinalCw;

impl AdversarialImages for FinalCw {
    fn adversarial(&self, batch: &TableBatch<'_>) -> Tensor {
        let settings = batch.settings;
        let cw = Cw {
            epsilon: settings.epsilon,
            step_size: settings.step_size,
            steps: settings.cw_steps,
            margin: settings.cw_margin,
        };
        cw.run(batch.eval, batch.images, batch.labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cw_loss_by_hand() {
        // Sample 0: true logit 3, best other 1 → −max(0, 3 − 1 + 50) = −52.
        // Sample 1: true logit 0, best other 100 → −max(0, 0 − 100 + 50) = 0.
        let logits = Tensor::from_slice(&[3.0f64, 1.0, -2.0, 0.0, 100.0, 5.0]).view([2, 3]);
        let labels = Tensor::from_slice(&[0i64, 0]);
        let loss = cw_loss(&logits, &labels, 50.0);
        assert!((loss.double_value(&[]) - (-52.0 / 2.0)).abs() < 1e-12);
    }
}
