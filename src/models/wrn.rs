//! WRN-34-10 (`model/wide_resnet.py` of the reference): pre-activation wide basic blocks, dropout inside
//! each block (reference-behaviour.md section 2.2).
use super::batch_norm::BatchNorm2d;
use super::layers::{conv1x1, conv2d, conv3x3, linear, pytorch_default, ConvInit};
use tch::nn::{self, Init, Module, ModuleT};
use tch::Tensor;

const DEPTH: i64 = 34;
const WIDEN_FACTOR: i64 = 10;
/// (depth − 4) / 6 blocks in each of the three groups.
const BLOCKS_PER_GROUP: i64 = (DEPTH - 4) / 6;
const STEM_WIDTH: i64 = 16;

/// BN → ReLU → conv → BN → ReLU → dropout → conv, added to the input (or, where the width changes,
/// to a 1×1 projection of the pre-activated input). No ReLU after the addition.
#[derive(Debug)]
struct WideBlock {
    bn1: BatchNorm2d,
    conv1: nn::Conv2D,
    bn2: BatchNorm2d,
    conv2: nn::Conv2D,
    /// `convShortcut`, present only where the width changes.
    conv_shortcut: Option<nn::Conv2D>,
    dropout: f64,
}

impl WideBlock {
    fn new(path: nn::Path, in_channels: i64, out_channels: i64, stride: i64, dropout: f64) -> Self {
        let init = ConvInit::HeNormalFanOut;
        let conv_shortcut = (in_channels != out_channels).then(|| {
            let projection = conv1x1(in_channels, out_channels, stride);
            conv2d(&path / "convShortcut", projection, false, init)
        });
        WideBlock {
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
            conv_shortcut,
            dropout,
        }
    }
}

impl ModuleT for WideBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let activated = self.bn1.forward_t(xs, train).relu();
        let mut residual = self
            .bn2
            .forward_t(&self.conv1.forward(&activated), train)
            .relu();
        if self.dropout > 0.0 {
            residual = residual.dropout(self.dropout, train);
        }
        let residual = self.conv2.forward(&residual);
        match &self.conv_shortcut {
            Some(projection) => projection.forward(&activated) + residual,
            None => xs + residual,
        }
    }
}

#[derive(Debug)]
pub struct WideResNet34_10 {
    conv1: nn::Conv2D,
    /// The blocks of `block1` … `block3` (each group holds its blocks under `layer.<i>`), in forward order.
    blocks: Vec<WideBlock>,
    bn1: BatchNorm2d,
    fc: nn::Linear,
}

impl WideResNet34_10 {
    pub fn new(root: &nn::Path, in_channels: i64, classes: i64, dropout: f64) -> Self {
        let group_widths = [16 * WIDEN_FACTOR, 32 * WIDEN_FACTOR, 64 * WIDEN_FACTOR];
        let mut channels = STEM_WIDTH;
        let mut blocks = Vec::new();
        for (index, &width) in group_widths.iter().enumerate() {
            let layer_path = root / format!("block{}", index + 1) / "layer";
            for block in 0..BLOCKS_PER_GROUP {
                let stride = if index > 0 && block == 0 { 2 } else { 1 };
                let path = &layer_path / block;
                blocks.push(WideBlock::new(path, channels, width, stride, dropout));
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
