//! PreActResNet-18 as in the reference's Generalist code (`train/Generalist/models/preact_resnet.py`).
//!
//! That file differs from Rice et al.'s version: there is no final BN and ReLU before the pooling, so
//! the state_dict has no top-level `bn.*` entries. We follow the reference file, so that checkpoints load
//! into it with a strict `load_state_dict`.
use super::batch_norm::BatchNorm2d;
use super::layers::{conv1x1, conv2d, conv3x3, linear_default, ConvInit};
use super::resnet::{build_stages, FEATURE_WIDTH, STEM_WIDTH};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// BN → ReLU → conv → BN → ReLU → conv, added to the input (or, where the shape changes, to a 1×1
/// projection of the pre-activated input).
#[derive(Debug)]
struct PreActBlock {
    bn1: BatchNorm2d,
    conv1: nn::Conv2D,
    bn2: BatchNorm2d,
    conv2: nn::Conv2D,
    /// `shortcut.0`, a 1×1 conv without BN, where the shape changes.
    shortcut: Option<nn::Conv2D>,
}

impl PreActBlock {
    fn new(path: nn::Path, in_channels: i64, out_channels: i64, stride: i64) -> PreActBlock {
        let init = ConvInit::PytorchDefault;
        let shortcut = (stride != 1 || in_channels != out_channels).then(|| {
            let projection = conv1x1(in_channels, out_channels, stride);
            conv2d(&path / "shortcut" / 0, projection, false, init)
        });
        PreActBlock {
            bn1: BatchNorm2d::new(&path / "bn1", in_channels),
            conv1: conv2d(
                &path / "conv1",
                conv3x3(in_channels, out_channels, stride),
                false,
                init,
            ),
            bn2: BatchNorm2d::new(&path / "bn2", out_channels),
            conv2: conv2d(
                &path / "conv2",
                conv3x3(out_channels, out_channels, 1),
                false,
                init,
            ),
            shortcut,
        }
    }
}

impl ModuleT for PreActBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let activated = self.bn1.forward_t(xs, train).relu();
        let shortcut = match &self.shortcut {
            Some(projection) => projection.forward(&activated),
            None => xs.shallow_clone(),
        };
        let residual = self.conv1.forward(&activated);
        let residual = self
            .conv2
            .forward(&self.bn2.forward_t(&residual, train).relu());
        residual + shortcut
    }
}

#[derive(Debug)]
pub struct PreActResNet18 {
    conv1: nn::Conv2D,
    /// The blocks of `layer1` … `layer4`, in forward order.
    blocks: Vec<PreActBlock>,
    linear: nn::Linear,
}

impl PreActResNet18 {
    pub fn new(root: &nn::Path, in_channels: i64, classes: i64) -> PreActResNet18 {
        let stem = conv3x3(in_channels, STEM_WIDTH, 1);
        PreActResNet18 {
            conv1: conv2d(root / "conv1", stem, false, ConvInit::PytorchDefault),
            blocks: build_stages(root, PreActBlock::new),
            linear: linear_default(root / "linear", FEATURE_WIDTH, classes),
        }
    }
}

impl ModuleT for PreActResNet18 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut features = self.conv1.forward(xs);
        for block in &self.blocks {
            features = block.forward_t(&features, train);
        }
        let pooled = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.linear.forward(&pooled)
    }
}
