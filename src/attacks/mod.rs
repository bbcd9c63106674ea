//! L∞ attacks. Every attack takes the network as a function from images to logits, so the caller
//! decides its mode (train mode while crafting training examples, eval mode in every evaluation),
//! and differentiates with respect to the input only: no weight-gradient work, no `.grad` pollution.
pub mod apgd;
pub mod autoattack;
pub mod cw;
pub mod fab;
pub mod fat;
pub mod fgsm;
pub mod final_table;
pub mod fosc;
pub mod interrupt;
pub mod pgd;
pub mod square;
pub mod trades;

pub use apgd::Apgd;
pub use autoattack::AutoAttack;
pub use cw::Cw;
pub use fab::FabTargeted;
pub use fat::EarlyStoppedPgd;
pub use fgsm::fgsm;
pub use fosc::FoscPgd;
pub use pgd::{Pgd, RandomStart};
pub use square::Square;
pub use trades::pgd_kl;

use crate::vocab::FinalAttack;
use final_table::FinalTableAttack;
use tch::Tensor;

/// The implementation of each final-table attack: where a name of the vocabulary meets its code.
pub fn final_table_attack<'a, E: 'a>(attack: FinalAttack) -> &'a dyn FinalTableAttack<E> {
    match attack {
        FinalAttack::Fgsm => &fgsm::FinalFgsm,
        FinalAttack::Pgd10 => &pgd::FinalPgd { steps: 10 },
        FinalAttack::Pgd20 => &pgd::FinalPgd { steps: 20 },
        FinalAttack::Pgd50 => &pgd::FinalPgd { steps: 50 },
        FinalAttack::Cw => &cw::FinalCw,
        FinalAttack::AutoAttack => &autoattack::FinalAutoAttack,
    }
}

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

/// A per-sample vector `[B]` shaped `[B, 1, 1, ...]` to broadcast over images like `images`.
pub(crate) fn per_sample(values: &Tensor, images: &Tensor) -> Tensor {
    let mut shape = vec![1i64; images.dim()];
    shape[0] = -1;
    values.view(shape.as_slice())
}
