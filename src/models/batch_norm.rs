//! BatchNorm2d with PyTorch's state: `weight`, `bias`, `running_mean`, `running_var`, `num_batches_tracked`.
//!
//! tch's own batch norm lacks `num_batches_tracked`, which a strict PyTorch `load_state_dict` requires.
use tch::nn::{self, Init, ModuleT};
use tch::{Kind, Tensor};

/// PyTorch's defaults, used by every reference model.
const MOMENTUM: f64 = 0.1;
const EPS: f64 = 1e-5;

#[derive(Debug)]
pub(super) struct BatchNorm2d {
    weight: Tensor,
    bias: Tensor,
    running_mean: Tensor,
    running_var: Tensor,
    num_batches_tracked: Tensor,
}

impl BatchNorm2d {
    /// γ = 1, β = 0, running mean 0, running variance 1, no batch tracked yet.
    pub(super) fn new(path: nn::Path, channels: i64) -> BatchNorm2d {
        let counter = Tensor::zeros([], (Kind::Int64, path.device()));
        BatchNorm2d {
            weight: path.var("weight", &[channels], Init::Const(1.0)),
            bias: path.var("bias", &[channels], Init::Const(0.0)),
            running_mean: path.zeros_no_train("running_mean", &[channels]),
            running_var: path.ones_no_train("running_var", &[channels]),
            num_batches_tracked: path.add("num_batches_tracked", counter, false),
        }
    }
}

impl ModuleT for BatchNorm2d {
    /// In train mode, `batch_norm` normalises with the batch statistics and updates the running
    /// statistics in place, i.e. in the tensors the VarStore holds, so a later save sees them.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        if train {
            crate::thread_modes::no_grad(|| {
                let mut counter = self.num_batches_tracked.shallow_clone();
                counter += 1;
            });
        }
        xs.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            Some(&self.running_mean),
            Some(&self.running_var),
            train,
            MOMENTUM,
            EPS,
            true,
        )
    }
}
