//! CIFAR ResNet-18 (`model/resnet.py` of the reference): post-activation basic blocks, a 3×3 stem,
//! no max-pool (docs/protocol.md#resnet-18).
use super::batch_norm::BatchNorm2d;
use super::layers::{conv1x1, conv2d, conv3x3, linear_default, ConvInit};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

/// Output channels of the stem and of the four stages; each stage after the first halves the resolution.
pub(super) const STEM_WIDTH: i64 = 64;
const STAGE_WIDTHS: [i64; 4] = [64, 128, 256, 512];
const BLOCKS_PER_STAGE: i64 = 2;
/// Width of the features the classifier sees.
pub(super) const FEATURE_WIDTH: i64 = 512;

/// Builds the blocks of `layer1` … `layer4` in forward order (ResNet-18 and PreActResNet-18 share this
/// layout): `make_block(path, in_channels, out_channels, stride)`, stride 2 at the start of stages 2–4.
pub(super) fn build_stages<B>(
    root: &nn::Path,
    mut make_block: impl FnMut(nn::Path, i64, i64, i64) -> B,
) -> Vec<B> {
    let mut channels = STEM_WIDTH;
    let mut blocks = Vec::new();
    for (index, &width) in STAGE_WIDTHS.iter().enumerate() {
        let stage_path = root / format!("layer{}", index + 1);
        for block in 0..BLOCKS_PER_STAGE {
            let stride = if index > 0 && block == 0 { 2 } else { 1 };
            blocks.push(make_block(&stage_path / block, channels, width, stride));
            channels = width;
        }
    }
    blocks
}

/// conv → BN → ReLU → conv → BN, plus the shortcut, then ReLU.
#[derive(Debug)]
struct BasicBlock {
    conv1: nn::Conv2D,
    bn1: BatchNorm2d,
    conv2: nn::Conv2D,
    bn2: BatchNorm2d,
    /// `shortcut.0` (1×1 conv) and `shortcut.1` (BN) where the shape changes; identity otherwise.
    shortcut: Option<(nn::Conv2D, BatchNorm2d)>,
}

impl BasicBlock {
    fn new(path: nn::Path, in_channels: i64, out_channels: i64, stride: i64) -> BasicBlock {
        let init = ConvInit::PytorchDefault;
        let shortcut = (stride != 1 || in_channels != out_channels).then(|| {
            let projection = &path / "shortcut";
            (
                conv2d(
                    &projection / 0,
                    conv1x1(in_channels, out_channels, stride),
                    false,
                    init,
                ),
                BatchNorm2d::new(&projection / 1, out_channels),
            )
        });
        BasicBlock {
            conv1: conv2d(
                &path / "conv1",
                conv3x3(in_channels, out_channels, stride),
                false,
                init,
            ),
            bn1: BatchNorm2d::new(&path / "bn1", out_channels),
            conv2: conv2d(
                &path / "conv2",
                conv3x3(out_channels, out_channels, 1),
                false,
                init,
            ),
            bn2: BatchNorm2d::new(&path / "bn2", out_channels),
            shortcut,
        }
    }
}

impl ModuleT for BasicBlock {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let main = self.bn1.forward_t(&self.conv1.forward(xs), train).relu();
        let main = self.bn2.forward_t(&self.conv2.forward(&main), train);
        let shortcut = match &self.shortcut {
            Some((conv, bn)) => bn.forward_t(&conv.forward(xs), train),
            None => xs.shallow_clone(),
        };
        (main + shortcut).relu()
    }
}

#[derive(Debug)]
pub(super) struct ResNet18 {
    conv1: nn::Conv2D,
    bn1: BatchNorm2d,
    /// The blocks of `layer1` … `layer4`, in forward order.
    blocks: Vec<BasicBlock>,
    linear: nn::Linear,
}

impl ResNet18 {
    pub(super) fn new(root: &nn::Path, in_channels: i64, classes: i64) -> ResNet18 {
        let stem = conv3x3(in_channels, STEM_WIDTH, 1);
        ResNet18 {
            conv1: conv2d(root / "conv1", stem, false, ConvInit::PytorchDefault),
            bn1: BatchNorm2d::new(root / "bn1", STEM_WIDTH),
            blocks: build_stages(root, BasicBlock::new),
            linear: linear_default(root / "linear", FEATURE_WIDTH, classes),
        }
    }
}

impl ModuleT for ResNet18 {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut features = self.bn1.forward_t(&self.conv1.forward(xs), train).relu();
        for block in &self.blocks {
            features = block.forward_t(&features, train);
        }
        // Global average pooling: the reference's avg_pool2d(4) on the 4×4 map of a 32×32 input.
        let pooled = features.adaptive_avg_pool2d([1, 1]).flatten(1, -1);
        self.linear.forward(&pooled)
    }
}
