//! The one PGD engine (docs/protocol.md#pgd-ce): a random start, then K signed-gradient ascent
//! steps of size α on a pluggable loss, each projected back onto the ε-ball and [0, 1]. PGD-CE for
//! training and testing, and the losses of other attacks, all run through [`Pgd::run`].
use super::final_table::{AdversarialImages, TableBatch};
use super::{input_gradient, project, Logits};
use crate::losses::cross_entropy;
use tch::Tensor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RandomStart {
    /// `clip_[0,1](x + U(−ε, ε))`.
    Uniform,
    /// `x + U(−ε, ε)` left unclipped before the first gradient (the reference's CW attack).
    UniformUnclipped,
    /// Start at `x`.
    None,
}

#[derive(Clone, Copy, Debug)]
pub struct Pgd {
    pub epsilon: f64,
    pub step_size: f64,
    pub steps: usize,
    pub start: RandomStart,
}

impl RandomStart {
    /// The first iterate around the (detached) clean images `x`; also the start of the FAT and
    /// FOSC attacks, whose iterations differ from PGD's.
    pub fn apply(self, x: &Tensor, epsilon: f64) -> Tensor {
        let noise = || x.rand_like() * (2.0 * epsilon) - epsilon;
        match self {
            RandomStart::Uniform => (x + noise()).clamp(0.0, 1.0),
            RandomStart::UniformUnclipped => x + noise(),
            RandomStart::None => x.shallow_clone(),
        }
    }
}

impl Pgd {
    /// Maximises `loss(logits)` over the ε-ball around `x`; returns `x_K` (no early stop, no best
    /// iterate), detached.
    pub fn run(&self, logits: Logits, x: &Tensor, loss: &dyn Fn(&Tensor) -> Tensor) -> Tensor {
        let x = x.detach();
        let mut adversarial = self.start.apply(&x, self.epsilon);
        crate::thread_modes::with_grad(|| {
            for _ in 0..self.steps {
                let current = adversarial.detach().set_requires_grad(true);
                let gradient = input_gradient(&loss(&logits(&current)), &current);
                adversarial = project(
                    &(current.detach() + gradient.sign() * self.step_size),
                    &x,
                    self.epsilon,
                );
            }
        });
        adversarial.detach()
    }
}

/// PGD-K of the final table: K steps of size α on cross-entropy from a clipped uniform start.
pub struct FinalPgd {
    pub steps: usize,
}

impl AdversarialImages for FinalPgd {
    fn adversarial(&self, batch: &TableBatch<'_>) -> Tensor {
        let pgd = Pgd {
            epsilon: batch.settings.epsilon,
            step_size: batch.settings.step_size,
            steps: self.steps,
            start: RandomStart::Uniform,
        };
        pgd.run(batch.eval, batch.images, &|z| {
            cross_entropy(z, batch.labels)
        })
    }
}
