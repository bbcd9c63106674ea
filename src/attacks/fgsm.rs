//! FGSM (docs/protocol.md#fgsm): one signed-gradient step of size ε from the clean image.
use super::final_table::{AdversarialImages, TableBatch};
use super::{input_gradient, Logits};
use crate::losses::cross_entropy;
use tch::Tensor;

pub fn fgsm(logits: Logits, x: &Tensor, labels: &Tensor, epsilon: f64) -> Tensor {
    crate::thread_modes::with_grad(|| {
        let x = x.detach().set_requires_grad(true);
        let gradient = input_gradient(&cross_entropy(&logits(&x), labels), &x);
        (x.detach() + gradient.sign() * epsilon).clamp(0.0, 1.0)
    })
}

/// FGSM in the final table.
pub struct FinalFgsm;

impl AdversarialImages for FinalFgsm {
    fn adversarial(&self, batch: &TableBatch<'_>) -> Tensor {
        fgsm(
            batch.eval,
            batch.images,
            batch.labels,
            batch.settings.epsilon,
        )
    }
}
