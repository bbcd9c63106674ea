//! The SmallCNN of the TRADES code (`models/small_cnn.py`): four unpadded 3×3 convs with two max-pools,
//! then three linear layers. Input channels and the first linear width follow the input shape.
use super::layers::{conv2d, linear, linear_default, ConvInit, ConvShape};
use super::{ModelError, ModelSpec};
use tch::nn::{self, Init, Module, ModuleT};
use tch::Tensor;

const CONV_WIDTHS: [i64; 2] = [32, 64];
const HIDDEN_WIDTH: i64 = 200;
/// Side of the smallest input whose feature map survives all four convs and both pools.
pub(super) const MIN_INPUT_SIDE: i64 = 16;

/// Side of the final feature map for an input side, or `None` when the input is too small.
pub(super) fn feature_side(input_side: i64) -> Option<i64> {
    // Each stage: two unpadded 3×3 convs (−4), then a 2×2 max-pool with stride 2 (floor).
    let after_stage = |side: i64| Some((side - 4) / 2).filter(|&pooled| pooled >= 1);
    after_stage(input_side).and_then(after_stage)
}

#[derive(Debug)]
pub(super) struct SmallCnn {
    convs: [nn::Conv2D; 4],
    fc1: nn::Linear,
    fc2: nn::Linear,
    fc3: nn::Linear,
    dropout: f64,
}

impl SmallCnn {
    /// Refuses inputs smaller than [`MIN_INPUT_SIDE`] on either side.
    pub(super) fn new(root: &nn::Path, spec: &ModelSpec) -> Result<Self, ModelError> {
        let (Some(feature_height), Some(feature_width)) =
            (feature_side(spec.height), feature_side(spec.width))
        else {
            return Err(ModelError::InvalidSpec(format!(
                "small-cnn needs inputs of at least {MIN_INPUT_SIDE}×{MIN_INPUT_SIDE}, got {}×{}",
                spec.height, spec.width
            )));
        };
        let features = root / "feature_extractor";
        let conv = |name: &str, in_channels: i64, out_channels: i64| {
            let shape = ConvShape {
                in_channels,
                out_channels,
                kernel: 3,
                stride: 1,
                padding: 0,
            };
            conv2d(&features / name, shape, true, ConvInit::HeNormalFanIn)
        };
        let [narrow, wide] = CONV_WIDTHS;
        let convs = [
            conv("conv1", spec.in_channels, narrow),
            conv("conv2", narrow, narrow),
            conv("conv3", narrow, wide),
            conv("conv4", wide, wide),
        ];
        let flat_width = wide * feature_height * feature_width;
        let classifier = root / "classifier";
        let zero = Init::Const(0.0);
        Ok(SmallCnn {
            convs,
            fc1: linear_default(&classifier / "fc1", flat_width, HIDDEN_WIDTH),
            fc2: linear_default(&classifier / "fc2", HIDDEN_WIDTH, HIDDEN_WIDTH),
            // The TRADES code zeroes the last layer, so the initial logits are all 0.
            fc3: linear(&classifier / "fc3", HIDDEN_WIDTH, spec.classes, zero, zero),
            dropout: spec.dropout,
        })
    }
}

impl ModuleT for SmallCnn {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let [conv1, conv2, conv3, conv4] = &self.convs;
        let features = conv2
            .forward(&conv1.forward(xs).relu())
            .relu()
            .max_pool2d_default(2);
        let features = conv4
            .forward(&conv3.forward(&features).relu())
            .relu()
            .max_pool2d_default(2);
        let hidden = self.fc1.forward(&features.flatten(1, -1)).relu();
        let hidden = if self.dropout > 0.0 {
            hidden.dropout(self.dropout, train)
        } else {
            hidden
        };
        let hidden = self.fc2.forward(&hidden).relu();
        self.fc3.forward(&hidden)
    }
}
