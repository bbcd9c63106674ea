//! The networks, with PyTorch state_dict names, saved and loaded as safetensors.
//!
//! Four architectures (docs/protocol.md#models): `resnet18`, `wrn-34-10`,
//! `preact-resnet18` and `small-cnn`, for any input shape and class count. Every network keeps its
//! weights and BatchNorm buffers in one [`tch::nn::VarStore`] under the exact names of the reference's
//! PyTorch state_dict, so a checkpoint written here loads into the reference model with a strict
//! `load_state_dict`, and the other way round.
mod batch_norm;
mod checkpoint;
mod layers;
mod preact_block;
mod preact_resnet;
mod resnet;
mod small_cnn;
mod wrn;

pub use checkpoint::save as write_tensors;

use crate::vocab::ModelKind;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tch::nn::{ModuleT, VarStore};
use tch::{Device, Tensor};

/// What to build: the architecture, the input shape (C×H×W), the class count and the dropout rate.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub in_channels: i64,
    pub height: i64,
    pub width: i64,
    pub classes: i64,
    /// Dropout probability of WRN-34-10 (inside every block) and small-cnn (after `fc1`); the ResNets
    /// have no dropout and ignore it.
    pub dropout: f64,
}

impl ModelSpec {
    /// A spec with the reference's dropout for the architecture ([`ModelSpec::reference_dropout`]).
    pub fn new(
        kind: ModelKind,
        in_channels: i64,
        height: i64,
        width: i64,
        classes: i64,
    ) -> ModelSpec {
        let dropout = ModelSpec::reference_dropout(kind);
        ModelSpec {
            kind,
            in_channels,
            height,
            width,
            classes,
            dropout,
        }
    }

    /// WRN-34-10 of the main scripts: 0.3; the TRADES SmallCNN: 0.5; the ResNets: none (0).
    /// Generalist's WRN-34-10 (`Wide_ResNet_Madry`) uses 0, which callers set explicitly.
    pub fn reference_dropout(kind: ModelKind) -> f64 {
        match kind {
            ModelKind::Wrn34_10 => 0.3,
            ModelKind::SmallCnn => 0.5,
            ModelKind::ResNet18 | ModelKind::PreActResNet18 => 0.0,
        }
    }

    /// The same network (same state names and shapes), whatever the dropout.
    fn same_architecture(&self, other: &ModelSpec) -> bool {
        ModelSpec {
            dropout: 0.0,
            ..*self
        } == ModelSpec {
            dropout: 0.0,
            ..*other
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} for {}×{}×{} inputs and {} classes",
            self.kind, self.in_channels, self.height, self.width, self.classes
        )
    }
}

/// Why a network could not be built, fed, saved, loaded or copied. Each message is one line.
#[derive(thiserror::Error, Debug)]
pub enum ModelError {
    #[error("invalid model: {0}")]
    InvalidSpec(String),
    #[error("device {device} is not available (this machine has {cuda_devices} CUDA devices)")]
    UnavailableDevice { device: String, cuda_devices: i64 },
    #[error("input of shape {found:?} does not fit the {network} network, which takes [batch, {channels}, {height}, {width}] on {device}")]
    InputMismatch {
        network: String,
        found: Vec<i64>,
        channels: i64,
        height: i64,
        width: i64,
        device: String,
    },
    #[error("cannot read checkpoint {}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint {} is not a valid safetensors file: {reason}", .path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot write checkpoint {}: {reason}", .path.display())]
    Write { path: PathBuf, reason: String },
    #[error("checkpoint {} lacks tensor `{name}` (shape {expected:?}){}", .path.display(), and_others(*.others, "missing"))]
    MissingTensor {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
        others: usize,
    },
    #[error("checkpoint {} has tensor `{name}` (shape {found:?}) that the network does not have{}", .path.display(), and_others(*.others, "unexpected"))]
    UnexpectedTensor {
        path: PathBuf,
        name: String,
        found: Vec<i64>,
        others: usize,
    },
    #[error("checkpoint {}: tensor `{name}` has shape {found:?}, the network expects {expected:?}", .path.display())]
    ShapeMismatch {
        path: PathBuf,
        name: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("checkpoint {}: tensor `{name}` has dtype {found}, the network expects {expected}", .path.display())]
    DtypeMismatch {
        path: PathBuf,
        name: String,
        expected: String,
        found: String,
    },
    #[error("cannot copy a {source_network} network into a {target_network} network")]
    ArchitectureMismatch {
        source_network: String,
        target_network: String,
    },
    #[error("libtorch: {0}")]
    Torch(String),
}

fn and_others(others: usize, what: &str) -> String {
    match others {
        0 => String::new(),
        1 => format!(", and 1 other {what} tensor"),
        n => format!(", and {n} other {what} tensors"),
    }
}

/// A network and its weights. `vs` holds every state tensor (trainable parameters and BatchNorm buffers)
/// under its PyTorch state_dict name.
pub struct Network {
    pub vs: VarStore,
    spec: ModelSpec,
    module: Box<dyn ModuleT>,
    /// Names of the trainable tensors; the rest of the state are BatchNorm buffers.
    parameter_names: BTreeSet<String>,
    /// Weights and inputs are convolved NHWC in memory ([`Network::use_channels_last`]).
    channels_last: bool,
}

impl Network {
    /// Builds the network with the reference's initialisation. Refuses specs that cannot work: a
    /// non-positive size or class count, a dropout outside [0, 1), an input too small for small-cnn, a
    /// CUDA device this machine lacks.
    pub fn new(spec: &ModelSpec, device: Device) -> Result<Network, ModelError> {
        validate(spec)?;
        if let Device::Cuda(index) = device {
            let cuda_devices = tch::Cuda::device_count();
            if i64::try_from(index).map_or(true, |index| index >= cuda_devices) {
                return Err(ModelError::UnavailableDevice {
                    device: crate::device::name(device),
                    cuda_devices,
                });
            }
        }
        let vs = VarStore::new(device);
        let module: Box<dyn ModuleT> = {
            let root = vs.root();
            match spec.kind {
                ModelKind::ResNet18 => {
                    Box::new(resnet::ResNet18::new(&root, spec.in_channels, spec.classes))
                }
                ModelKind::Wrn34_10 => Box::new(wrn::WideResNet34_10::new(
                    &root,
                    spec.in_channels,
                    spec.classes,
                    spec.dropout,
                )),
                ModelKind::PreActResNet18 => Box::new(preact_resnet::PreActResNet18::new(
                    &root,
                    spec.in_channels,
                    spec.classes,
                )),
                ModelKind::SmallCnn => Box::new(small_cnn::SmallCnn::new(&root, spec)?),
            }
        };
        let parameter_names = vs
            .variables()
            .into_iter()
            .filter(|(_, tensor)| tensor.requires_grad())
            .map(|(name, _)| name)
            .collect();
        Ok(Network {
            vs,
            spec: *spec,
            module,
            parameter_names,
            channels_last: false,
        })
    }

    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Logits [B, classes]. `train` = true: BatchNorm normalises with the batch statistics and updates
    /// its running statistics (momentum 0.1) and `num_batches_tracked`; dropout is active. `train` =
    /// false: running statistics, no dropout, no state change.
    ///
    /// Panics with a one-line message if `x` is not [B, C, H, W] of the spec on the network's device;
    /// [`Network::f_forward_t`] returns that as an error instead.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.f_forward_t(x, train)
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// [`Network::forward_t`], with an input that does not fit the network reported as an error.
    pub fn f_forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor, ModelError> {
        self.check_input(x)?;
        if self.channels_last {
            return Ok(self.module.forward_t(&nhwc(x), train));
        }
        Ok(self.module.forward_t(x, train))
    }

    /// Checks that `x` is a batch [B, C, H, W] of the spec's input shape on the network's device.
    pub fn check_input(&self, x: &Tensor) -> Result<(), ModelError> {
        let spec = &self.spec;
        let fits = matches!(x.size().as_slice(), &[batch, channels, height, width]
            if batch > 0 && channels == spec.in_channels && height == spec.height && width == spec.width);
        if fits && x.device() == self.device() {
            return Ok(());
        }
        Err(ModelError::InputMismatch {
            network: spec.kind.to_string(),
            found: x.size(),
            channels: spec.in_channels,
            height: spec.height,
            width: spec.width,
            device: format!("{:?}", self.device()),
        })
    }

    /// Stores the convolution weights channels-last (NHWC in memory) and hands every input to the
    /// network NHWC, which oneDNN and cuDNN convolve faster; activations follow. An NCHW input
    /// alongside NHWC weights costs oneDNN a reorder at every first convolution, forward and
    /// backward (README, Performance). Values, names, the checkpoints written (always contiguous
    /// NCHW) and the caller's tensors are unchanged.
    pub fn use_channels_last(&mut self) {
        crate::thread_modes::no_grad(|| {
            for (_, mut weight) in self.vs.variables() {
                if weight.dim() == 4 {
                    weight.set_data(&nhwc(&weight));
                }
            }
        });
        self.channels_last = true;
    }

    /// Trainable parameters (conv and linear weights and biases, BatchNorm γ and β), sorted by name:
    /// the set SGD updates, weight decay included.
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        self.state_dict()
            .into_iter()
            .filter(|(name, _)| self.parameter_names.contains(name))
            .collect()
    }

    /// Every tensor of the PyTorch state_dict, sorted by name: the parameters plus each BatchNorm's
    /// `running_mean`, `running_var` and `num_batches_tracked` (an Int64 scalar). The tensors share
    /// storage with the network, so in-place changes to them change the network.
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        let mut state: Vec<(String, Tensor)> = self.vs.variables().into_iter().collect();
        state.sort_by(|(a, _), (b, _)| a.cmp(b));
        state
    }

    /// Number of trainable scalars (11,173,962 for ResNet-18 with 10 classes).
    pub fn parameter_count(&self) -> i64 {
        self.parameters()
            .iter()
            .map(|(_, tensor)| tensor.numel() as i64)
            .sum()
    }

    /// Writes the state_dict as safetensors, atomically (temporary file in the same folder, then rename).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        checkpoint::save(path, &self.state_dict())
    }

    /// Loads a safetensors state_dict strictly, like PyTorch's `load_state_dict(strict=True)`: a missing
    /// or unexpected name, a shape or dtype mismatch, or a truncated or corrupt file is an error naming
    /// the file and the tensor, and leaves the network unchanged.
    pub fn load(&mut self, path: &Path) -> Result<(), ModelError> {
        checkpoint::load_into(path, &self.state_dict())
    }

    /// Copies every state tensor of `other`, which must have the same architecture (the dropout may
    /// differ); the devices may differ.
    pub fn copy_from(&mut self, other: &Network) -> Result<(), ModelError> {
        if !self.spec.same_architecture(&other.spec) {
            return Err(ModelError::ArchitectureMismatch {
                source_network: other.spec.describe(),
                target_network: self.spec.describe(),
            });
        }
        let sources = other.state_dict();
        crate::thread_modes::no_grad(|| {
            for ((name, target), (source_name, source)) in self.state_dict().iter().zip(&sources) {
                // Same architecture, so the same names in the same order; a mismatch would be a bug.
                debug_assert_eq!(name, source_name);
                target.shallow_clone().f_copy_(source).map_err(|err| {
                    ModelError::Torch(crate::torch_error::first_line(&err.to_string()))
                })?;
            }
            Ok(())
        })
    }
}

fn validate(spec: &ModelSpec) -> Result<(), ModelError> {
    let invalid = |reason: String| Err(ModelError::InvalidSpec(format!("{}: {reason}", spec.kind)));
    let sizes = [
        ("in_channels", spec.in_channels),
        ("height", spec.height),
        ("width", spec.width),
        ("classes", spec.classes),
    ];
    if let Some((what, value)) = sizes.iter().find(|(_, value)| *value < 1) {
        return invalid(format!("{what} must be at least 1, got {value}"));
    }
    if !(0.0..1.0).contains(&spec.dropout) {
        return invalid(format!("dropout must be in [0, 1), got {}", spec.dropout));
    }
    Ok(())
}

/// `t` `[N, C, H, W]` laid out NHWC in memory (a view where it already is), same values and shape.
fn nhwc(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}
