//! SGD with PyTorch's semantics (docs/protocol.md#sgd-and-weight-decay): `g = ∇L + wd·θ`; the first step
//! after (re)creation sets `buf = g`, later ones `buf = m·buf + g`; then `θ ← θ − lr·buf`. Weight decay
//! applies to every parameter, BN γ/β and biases included. Written here so that the momentum
//! buffers are plain tensors a run can save and resume.
use crate::faults::StepPoint;
use tch::Tensor;

/// Saved momentum that does not fit the network.
#[derive(thiserror::Error, Debug)]
pub enum MomentumError {
    #[error("momentum buffer `{name}` matches no parameter")]
    NoSuchParameter { name: String },
    #[error("momentum buffer `{name}` has shape {found:?}, expected {expected:?}")]
    Shape {
        name: String,
        found: Vec<i64>,
        expected: Vec<i64>,
    },
}

pub struct Sgd {
    parameters: Vec<(String, Tensor)>,
    buffers: Vec<Option<Tensor>>,
    momentum: f64,
    weight_decay: f64,
}

impl Sgd {
    pub fn new(parameters: Vec<(String, Tensor)>, momentum: f64, weight_decay: f64) -> Sgd {
        let buffers = parameters.iter().map(|_| None).collect();
        Sgd {
            parameters,
            buffers,
            momentum,
            weight_decay,
        }
    }

    /// Forgets the momentum, as recreating the optimizer does in the reference's main scripts.
    pub fn reset_momentum(&mut self) {
        self.buffers.iter_mut().for_each(|b| *b = None);
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &self.parameters {
            let mut grad = p.grad();
            if grad.defined() {
                let _ = grad.detach_().zero_();
            }
        }
    }

    pub fn step(&mut self, lr: f64) {
        crate::thread_modes::no_grad(|| {
            if let Some((_, first)) = self.parameters.first() {
                crate::faults::out_of_memory(StepPoint::Optimizer, first.device());
            }
            for ((_, p), buffer) in self.parameters.iter().zip(self.buffers.iter_mut()) {
                let grad = p.grad();
                if !grad.defined() {
                    continue;
                }
                let direction = grad + p * self.weight_decay;
                let direction = match buffer.take() {
                    Some(mut b) if self.momentum != 0.0 => {
                        let _ = b.g_mul_scalar_(self.momentum).g_add_(&direction);
                        b
                    }
                    _ => direction,
                };
                let _ = p.shallow_clone().g_sub_(&(&direction * lr));
                if self.momentum != 0.0 {
                    *buffer = Some(direction);
                }
            }
        });
    }

    /// The momentum buffers that exist, by parameter name.
    pub fn momentum_buffers(&self) -> Vec<(String, Tensor)> {
        self.parameters
            .iter()
            .zip(&self.buffers)
            .filter_map(|((name, _), b)| b.as_ref().map(|b| (name.clone(), b.shallow_clone())))
            .collect()
    }

    /// Restores buffers saved by [`Sgd::momentum_buffers`]; a name or shape that does not fit is an error.
    pub fn restore_momentum(&mut self, saved: Vec<(String, Tensor)>) -> Result<(), MomentumError> {
        self.reset_momentum();
        for (name, tensor) in saved {
            let index = self
                .parameters
                .iter()
                .position(|(n, _)| *n == name)
                .ok_or_else(|| MomentumError::NoSuchParameter { name: name.clone() })?;
            let parameter = &self.parameters[index].1;
            if tensor.size() != parameter.size() {
                return Err(MomentumError::Shape {
                    name,
                    found: tensor.size(),
                    expected: parameter.size(),
                });
            }
            self.buffers[index] = Some(
                tensor
                    .to_device(parameter.device())
                    .to_kind(parameter.kind()),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Kind;

    /// Minimises ½θ² by hand-checked steps: g = θ + wd·θ.
    #[test]
    fn follows_pytorch_momentum_semantics() {
        let theta = Tensor::from_slice(&[1.0f64]).set_requires_grad(true);
        let mut sgd = Sgd::new(vec![("theta".into(), theta.shallow_clone())], 0.9, 0.1);
        let mut expected = 1.0f64;
        let mut buf = None::<f64>;
        for step in 0..4 {
            if step == 2 {
                sgd.reset_momentum();
                buf = None;
            }
            sgd.zero_grad();
            (&theta * &theta * 0.5).sum(Kind::Double).backward();
            sgd.step(0.5);
            let g = expected + 0.1 * expected;
            let b = match buf {
                Some(b) => 0.9 * b + g,
                None => g,
            };
            buf = Some(b);
            expected -= 0.5 * b;
            assert!(
                (theta.double_value(&[0]) - expected).abs() < 1e-12,
                "step {step}"
            );
        }
        assert_eq!(sgd.momentum_buffers().len(), 1);
    }
}
