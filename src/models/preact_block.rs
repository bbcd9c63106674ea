//! The pre-activation residual block of PreActResNet-18 and WRN-34-10: BN → ReLU → conv → BN → ReLU →
//! (dropout) → conv, added to the raw input, or where the shape changes to a 1×1 projection of the
//! pre-activated input. No ReLU after the addition.
use super::batch_norm::BatchNorm2d;
use super::layers::{conv1x1, conv2d, conv3x3, ConvInit};
use tch::nn::{self, Module, ModuleT};
use tch::Tensor;

#[derive(Debug)]
pub(super) struct PreActBlock {
    bn1: BatchNorm2d,
    conv1: nn::Conv2D,
    bn2: BatchNorm2d,
    conv2: nn::Conv2D,
    /// The projection where the shape changes (`shortcut.0` in PreActResNet, `convShortcut` in WRN).
    shortcut: Option<nn::Conv2D>,
    dropout: f64,
}

/// Channels and stride of a block.
#[derive(Clone, Copy, Debug)]
pub(super) struct BlockShape {
    pub in_channels: i64,
    pub out_channels: i64,
    pub stride: i64,
}

impl PreActBlock {
    /// `shortcut_path` names the projection, which exists only where the stride or width changes.
    pub(super) fn new(
        path: &nn::Path,
        shortcut_path: nn::Path,
        shape: BlockShape,
        init: ConvInit,
        dropout: f64,
    ) -> PreActBlock {
        let BlockShape {
            in_channels,
            out_channels,
            stride,
        } = shape;
        let shortcut = (stride != 1 || in_channels != out_channels).then(|| {
            conv2d(
                shortcut_path,
                conv1x1(in_channels, out_channels, stride),
                false,
                init,
            )
        });
        PreActBlock {
            bn1: BatchNorm2d::new(path / "bn1", in_channels),
            conv1: conv2d(
                path / "conv1",
                conv3x3(in_channels, out_channels, stride),
                false,
                init,
            ),
            bn2: BatchNorm2d::new(path / "bn2", out_channels),
            conv2: conv2d(
                path / "conv2",
                conv3x3(out_channels, out_channels, 1),
                false,
                init,
            ),
            shortcut,
            dropout,
        }
    }
}

impl ModuleT for PreActBlock {
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
        match &self.shortcut {
            Some(projection) => projection.forward(&activated) + residual,
            None => xs + residual,
        }
    }
}
