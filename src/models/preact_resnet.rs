//! PreActResNet-18 as in the reference's Generalist code (`train/Generalist/models/preact_resnet.py`).
//!
//! That file differs from Rice et al.'s version: there is no final BN and ReLU before the pooling, so
//! the state_dict has no top-level `bn.*` entries. We follow the reference file, so that checkpoints load
//! into it with a strict `load_state_dict`.
use super::layers::{conv2d, conv3x3, linear_default, ConvInit};
use super::preact_block::{BlockShape, PreActBlock};
use super::resnet::{build_stages, FEATURE_WIDTH, STEM_WIDTH};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub(super) struct PreActResNet18 {
    conv1: nn::Conv2D,
    /// The blocks of `layer1` … `layer4`, in forward order.
    blocks: Vec<PreActBlock>,
    linear: nn::Linear,
}

impl PreActResNet18 {
    pub(super) fn new(root: &nn::Path, in_channels: i64, classes: i64) -> PreActResNet18 {
        let stem = conv3x3(in_channels, STEM_WIDTH, 1);
        PreActResNet18 {
            conv1: conv2d(root / "conv1", stem, false, ConvInit::PytorchDefault),
            blocks: build_stages(root, |path, in_channels, out_channels, stride| {
                let shape = BlockShape {
                    in_channels,
                    out_channels,
                    stride,
                };
                PreActBlock::new(
                    &path,
                    &path / "shortcut" / 0,
                    shape,
                    ConvInit::PytorchDefault,
                    0.0,
                )
            }),
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
