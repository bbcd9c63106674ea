//! L∞ attacks. Every attack takes the network as a function from images to logits, so the caller
//! decides its mode (train mode while crafting training examples, eval mode in every evaluation),
//! and differentiates with respect to the input only: no weight-gradient work, no `.grad` pollution.
pub mod fgsm;
pub mod pgd;

pub use fgsm::fgsm;
pub use pgd::{Pgd, RandomStart};

use tch::Tensor;

/// The attacked network: images in [0, 1] to logits.
pub type Logits<'a> = &'a dyn Fn(&Tensor) -> Tensor;

/// ∇ₓ loss, computing nothing for the network's parameters.
pub fn input_gradient(loss: &Tensor, x: &Tensor) -> Tensor {
    let mut grads = Tensor::run_backward(&[loss], &[x], false, false);
    grads
        .pop()
        .expect("run_backward returns one gradient per input")
}

/// `Π_{ε,x}`: clip to the ε-ball around `x`, then to the image range [0, 1].
pub fn project(candidate: &Tensor, x: &Tensor, epsilon: f64) -> Tensor {
    candidate
        .max_other(&(x - epsilon))
        .min_other(&(x + epsilon))
        .clamp(0.0, 1.0)
}

/// Mean cross-entropy of logits against labels.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_for_logits(labels)
}
