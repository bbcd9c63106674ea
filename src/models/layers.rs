//! Convolution and linear layers with the initialisations the reference models use.
//!
//! tch's default initialisation (kaiming-uniform with gain √2) is not PyTorch's, so every layer here
//! states its initialisation explicitly.
use tch::nn::{self, Init};

/// PyTorch's default for conv and linear weights and biases: kaiming-uniform with a = √5,
/// which is U(±1/√fan_in).
pub(super) fn pytorch_default(fan_in: i64) -> Init {
    let bound = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

/// He-normal: N(0, √(2/fan)). With fan = fan_out this is WRN's `kaiming_normal_(mode='fan_out')`,
/// with fan = fan_in the SmallCNN's `kaiming_normal_()`.
pub(super) fn he_normal(fan: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: (2.0 / fan as f64).sqrt(),
    }
}

/// How a convolution's weight (and bias, when it has one) is initialised.
#[derive(Clone, Copy, Debug)]
pub(super) enum ConvInit {
    /// PyTorch's default: weight and bias U(±1/√fan_in).
    PytorchDefault,
    /// Weight N(0, √(2/fan_out)) (WRN).
    HeNormalFanOut,
    /// Weight N(0, √(2/fan_in)), bias 0 (SmallCNN).
    HeNormalFanIn,
}

/// The geometry of a square convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConvShape {
    pub in_channels: i64,
    pub out_channels: i64,
    pub kernel: i64,
    pub stride: i64,
    pub padding: i64,
}

/// A 3×3 convolution with padding 1, the workhorse of the residual nets.
pub(super) fn conv3x3(in_channels: i64, out_channels: i64, stride: i64) -> ConvShape {
    ConvShape {
        in_channels,
        out_channels,
        kernel: 3,
        stride,
        padding: 1,
    }
}

/// A 1×1 projection shortcut.
pub(super) fn conv1x1(in_channels: i64, out_channels: i64, stride: i64) -> ConvShape {
    ConvShape {
        in_channels,
        out_channels,
        kernel: 1,
        stride,
        padding: 0,
    }
}

/// A convolution named `<path>.weight` (and `<path>.bias` when `bias` is set).
pub(super) fn conv2d(path: nn::Path, shape: ConvShape, bias: bool, init: ConvInit) -> nn::Conv2D {
    let receptive_field = shape.kernel * shape.kernel;
    let fan_in = shape.in_channels * receptive_field;
    let (ws_init, bs_init) = match init {
        ConvInit::PytorchDefault => (pytorch_default(fan_in), pytorch_default(fan_in)),
        ConvInit::HeNormalFanOut => (
            he_normal(shape.out_channels * receptive_field),
            Init::Const(0.0),
        ),
        ConvInit::HeNormalFanIn => (he_normal(fan_in), Init::Const(0.0)),
    };
    let config = nn::ConvConfig {
        stride: shape.stride,
        padding: shape.padding,
        bias,
        ws_init,
        bs_init,
        ..Default::default()
    };
    nn::conv2d(
        path,
        shape.in_channels,
        shape.out_channels,
        shape.kernel,
        config,
    )
}

/// A linear layer named `<path>.weight`, `<path>.bias`, with the given initialisations.
pub(super) fn linear(
    path: nn::Path,
    in_dim: i64,
    out_dim: i64,
    ws_init: Init,
    bs_init: Init,
) -> nn::Linear {
    let config = nn::LinearConfig {
        ws_init,
        bs_init: Some(bs_init),
        bias: true,
    };
    nn::linear(path, in_dim, out_dim, config)
}

/// A linear layer with PyTorch's default initialisation.
pub(super) fn linear_default(path: nn::Path, in_dim: i64, out_dim: i64) -> nn::Linear {
    let init = pytorch_default(in_dim);
    linear(path, in_dim, out_dim, init, init)
}
