//! WRN-34-10 (`model/wide_resnet.py` of the reference): pre-activation wide basic blocks, dropout inside
//! each block (docs/protocol.md#wrn-34-10).
use super::batch_norm::BatchNorm2d;
use super::layers::{conv2d, conv3x3, linear, pytorch_default, ConvInit};
use super::preact_block::{BlockShape, PreActBlock};
use tch::nn::{self, Init, Module, ModuleT};
use tch::Tensor;

const DEPTH: i64 = 34;
const WIDEN_FACTOR: i64 = 10;
/// (depth − 4) / 6 blocks in each of the three groups.
const BLOCKS_PER_GROUP: i64 = (DEPTH - 4) / 6;
const STEM_WIDTH: i64 = 16;

#[derive(Debug)]
pub(super) struct WideResNet34_10 {
    conv1: nn::Conv2D,
    /// The blocks of `block1` … `block3` (each group holds its blocks under `layer.<i>`), in forward order.
    blocks: Vec<PreActBlock>,
    bn1: BatchNorm2d,
    fc: nn::Linear,
}

impl WideResNet34_10 {
    pub(super) fn new(root: &nn::Path, in_channels: i64, classes: i64, dropout: f64) -> Self {
        let group_widths = [16 * WIDEN_FACTOR, 32 * WIDEN_FACTOR, 64 * WIDEN_FACTOR];
        let mut channels = STEM_WIDTH;
        let mut blocks = Vec::new();
        for (index, &width) in group_widths.iter().enumerate() {
            let layer_path = root / format!("block{}", index + 1) / "layer";
            for block in 0..BLOCKS_PER_GROUP {
                let stride = if index > 0 && block == 0 { 2 } else { 1 };
                let path = &layer_path / block;
                let shape = BlockShape {
                    in_channels: channels,
                    out_channels: width,
                    stride,
                };
                let shortcut = &path / "convShortcut";
                blocks.push(PreActBlock::new(
                    &path,
                    shortcut,
                    shape,
                    ConvInit::HeNormalFanOut,
                    dropout,
                ));
                channels = width;
            }
        }
        let stem = conv3x3(in_channels, STEM_WIDTH, 1);
        // The reference zeroes the linear bias and leaves its weight at PyTorch's default.
        let fc_init = pytorch_default(channels);
        WideResNet34_10 {
            conv1: conv2d(root / "conv1", stem, false, ConvInit::HeNormalFanOut),
            blocks,
            bn1: BatchNorm2d::new(root / "bn1", channels),
            fc: linear(root / "fc", channels, classes, fc_init, Init::Const(0.0)),
        }
    }
}

impl ModuleT for WideResNet34_10 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut features = self.conv1.forward(xs);
        for block in &self.blocks {
            features = block.forward_t(&features, train);
        }
        let features = self.bn1.forward_t(&features, train).relu();
        // Global average pooling: the reference's avg_pool2d(8) on the 8×8 map of a 32×32 input.
        let pooled = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.fc.forward(&pooled)
    }
}
