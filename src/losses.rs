//! The losses and metrics shared by the attacks, the methods and the evaluations, written once.
use tch::{Kind, Reduction, Tensor};

/// Mean cross-entropy of logits against labels.
pub fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.cross_entropy_for_logits(labels)
}

/// `KL_i(p ‖ q) = Σ_k p_ik (log p_ik − log q_ik)` per sample from the target probabilities `p` and
/// the log-probabilities `log q`, a term with `p_ik = 0` counting 0: PyTorch's `kl_div` with input
/// `log q` and target `p`. Differentiable in both arguments; the target may carry gradient (IAD,
/// docs/protocol.md Q22).
pub fn kl_per_sample(target: &Tensor, log_probs: &Tensor) -> Tensor {
    log_probs
        .kl_div(target, Reduction::None, false)
        .sum_dim_intlist(-1, false, Kind::Float)
}

/// `KL_bm(p ‖ q) = (1/B) Σ_i KL_i(p ‖ q)`: PyTorch's `KLDivLoss(reduction="batchmean")`.
/// Differentiable in both arguments.
pub fn kl_batchmean(target: &Tensor, log_probs: &Tensor) -> Tensor {
    log_probs.kl_div(target, Reduction::Sum, false) / log_probs.size()[0] as f64
}

/// Number of correct predictions, kept on the device.
pub fn correct(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Float)
}

/// Hand computations the loss tests check against.
#[cfg(test)]
pub(crate) mod testing {
    use tch::{Kind, Tensor};

    pub(crate) fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6 * b.abs().max(1.0)
    }

    pub(crate) fn probabilities(rows: &[[f64; 3]]) -> Tensor {
        Tensor::from_slice2(rows).to_kind(Kind::Float)
    }

    /// `Σ_k p_k (ln p_k − ln q_k)` in f64, 0 for p_k = 0.
    pub(crate) fn kl(p: &[f64; 3], q: &[f64; 3]) -> f64 {
        p.iter()
            .zip(q)
            .filter(|(p, _)| **p > 0.0)
            .map(|(p, q)| p * (p.ln() - q.ln()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{close, kl, probabilities};
    use super::*;
    use tch::Device;

    #[test]
    fn kl_is_zero_for_equal_distributions_and_batch_mean_divides_by_the_batch() {
        let p = probabilities(&[[0.2, 0.3, 0.5], [0.0, 1.0, 0.0]]);
        let log_p = p.clamp_min(1e-30).log();
        let per_sample = kl_per_sample(&p, &log_p);
        assert_eq!(per_sample.size(), [2]);
        assert!(per_sample.abs().max().double_value(&[]) < 1e-6);

        let q = probabilities(&[[1.0 / 3.0; 3], [0.25, 0.5, 0.25]]);
        let log_q = q.log();
        let by_hand = [
            kl(&[0.2, 0.3, 0.5], &[1.0 / 3.0; 3]),
            kl(&[0.0, 1.0, 0.0], &[0.25, 0.5, 0.25]),
        ];
        let per_sample = kl_per_sample(&p, &log_q);
        for (i, expected) in by_hand.iter().enumerate() {
            assert!(close(per_sample.double_value(&[i as i64]), *expected));
        }
        let mean = kl_batchmean(&p, &log_q).double_value(&[]);
        assert!(close(mean, (by_hand[0] + by_hand[1]) / 2.0));
        assert_eq!(per_sample.device(), Device::Cpu);
    }
}
