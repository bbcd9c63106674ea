//! DAT's FOSC-controlled PGD (docs/protocol.md#fosc-controlled-pgd-for-dat, Q25): PGD-CE in which a sample stops
//! moving, for the rest of the attack, once its first-order stationarity condition
//! `FOSC_i = ε‖g_i‖₁ − ⟨x_{k,i} − x_i, g_i⟩` is at most the threshold `c`. Runs on the device
//! without host reads.
use super::{input_gradient, per_sample, project, Logits, RandomStart};
use tch::{Kind, Reduction, Tensor};

#[derive(Clone, Copy, Debug)]
pub struct FoscPgd {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
}

impl FoscPgd {
    /// Returns `x_K`, detached. The FOSC is checked after every step, so a sample always takes the
    /// first step, and the gradient at `x_K` is computed (K+1 forwards, as the reference) though no
    /// step uses it.
    pub fn run(&self, logits: Logits, x: &Tensor, labels: &Tensor, threshold: f64) -> Tensor {
        let x = x.detach();
        let mut adversarial = RandomStart::Uniform.apply(&x, self.epsilon);
        crate::thread_modes::with_grad(|| {
            let mut gradient = sum_ce_gradient(logits, &adversarial, labels);
            let mut moving = labels.ones_like().to_kind(x.kind());
            for _ in 0..self.steps {
                let step = gradient.sign() * per_sample(&moving, &x) * self.step_size;
                adversarial = project(&(&adversarial + step), &x, self.epsilon);
                gradient = sum_ce_gradient(logits, &adversarial, labels);
                let converged = fosc(&gradient, &(&adversarial - &x), self.epsilon).le(threshold);
                moving = moving.masked_fill(&converged, 0.0);
            }
        });
        adversarial.detach()
    }
}

/// ∇ₓ of the *summed* CE: each sample's gradient is that of its own CE, which the FOSC threshold
/// is compared against (the step direction is the same as with the mean).
fn sum_ce_gradient(logits: Logits, adversarial: &Tensor, labels: &Tensor) -> Tensor {
    let current = adversarial.detach().set_requires_grad(true);
    let loss =
        logits(&current).cross_entropy_loss::<Tensor>(labels, None, Reduction::Sum, -100, 0.0);
    input_gradient(&loss, &current)
}

/// `FOSC_i = ε‖g_i‖₁ − ⟨δ_i, g_i⟩` per sample, sums over all pixels; ≥ 0 while `‖δ‖∞ ≤ ε`.
pub fn fosc(gradient: &Tensor, perturbation: &Tensor, epsilon: f64) -> Tensor {
    let per_image = |t: Tensor| t.flatten(1, -1).sum_dim_intlist(1, false, Kind::Float);
    per_image(gradient.abs()) * epsilon - per_image(perturbation * gradient)
}
