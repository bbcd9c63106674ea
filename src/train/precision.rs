//! Mixed precision for the training step: with `precision: bf16`, the forward passes of a batch (the
//! training attack's included) run under libtorch's bf16 autocast; weights, gradients, the optimizer
//! and every evaluation stay in fp32. bf16 keeps fp32's exponent range, so no loss scaler is needed.
use crate::config::Precision;
use crate::thread_modes::Bf16Autocast;
use tch::Device;

/// Runs `step` in the job's precision on `device`. Not nested: the region ends with `step`.
pub fn in_precision<T>(precision: Precision, device: Device, step: impl FnOnce() -> T) -> T {
    let _autocast = (precision == Precision::Bf16).then(|| Bf16Autocast::enter(device));
    step()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    #[test]
    fn bf16_runs_matrix_products_in_bf16_and_only_inside_the_region() {
        let a = Tensor::ones([4, 4], (Kind::Float, Device::Cpu));
        let inside = in_precision(Precision::Bf16, Device::Cpu, || a.matmul(&a));
        assert_eq!(inside.kind(), Kind::BFloat16);
        assert_eq!(a.matmul(&a).kind(), Kind::Float);
        let fp32 = in_precision(Precision::Fp32, Device::Cpu, || a.matmul(&a));
        assert_eq!(fp32.kind(), Kind::Float);
    }
}
