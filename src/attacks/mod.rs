//! L∞ attacks. Every attack takes the network as a function from images to logits, so the caller
//! decides its mode (train mode while crafting training examples, eval mode in every evaluation),
//! and differentiates with respect to the input only: no weight-gradient work, no `.grad` pollution.
pub mod fab;
pub mod fat;
pub mod fgsm;
pub mod fosc;
pub mod pgd;
pub mod trades;

pub use fab::FabTargeted;
pub use fat::EarlyStoppedPgd;
pub use fgsm::fgsm;
pub use fosc::FoscPgd;
pub use pgd::{Pgd, RandomStart};
pub use trades::pgd_kl;

use tch::{Reduction, Tensor};

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

/// `KL_bm(p ‖ q) = (1/B) Σ_i Σ_k p_ik (log p_ik − log q_ik)` from the target probabilities `p` and
/// the log-probabilities `log q`: PyTorch's `KLDivLoss(reduction="batchmean")` (a `p_ik = 0` term
/// contributes 0). Differentiable in both arguments.
pub fn kl_batchmean(target: &Tensor, log_probs: &Tensor) -> Tensor {
    log_probs.kl_div(target, Reduction::Sum, false) / log_probs.size()[0] as f64
}

/// A per-sample vector `[B]` shaped `[B, 1, 1, ...]` to broadcast over images like `images`.
pub(crate) fn per_sample(values: &Tensor, images: &Tensor) -> Tensor {
    let mut shape = vec![1i64; images.dim()];
    shape[0] = -1;
    values.view(shape.as_slice())
}
