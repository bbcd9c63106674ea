//! PGD-KL, the TRADES training attack (docs/protocol.md#pgd-kl-for-trades): the PGD engine with the loss
//! `KL_bm(softmax(f(x)) ‖ softmax(f(x_k)))`, from a uniform start.
use super::{Logits, Pgd};
use crate::losses::kl_batchmean;
use tch::Tensor;

/// Runs `pgd` (uniform start in TRADES, not the original 0.001·N(0, 1), docs/protocol.md Q23) on the KL to the
/// clean prediction. The clean forward runs once, in the caller's mode (train mode while training:
/// one more BN statistics update); its target is not clamped, and only input gradients are taken.
pub fn pgd_kl(pgd: &Pgd, logits: Logits, x: &Tensor) -> Tensor {
    let target = crate::thread_modes::no_grad(|| logits(x).softmax(-1, None));
    pgd.run(logits, x, &|z| {
        kl_batchmean(&target, &z.log_softmax(-1, None))
    })
}
