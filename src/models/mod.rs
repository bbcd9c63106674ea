//! TEMPORARY STUB (replaced by the models branch).
use crate::vocab::ModelKind;
use std::path::Path;
use tch::{nn, nn::ModuleT, Device, Tensor};

#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpec {
    pub kind: ModelKind,
    pub in_channels: i64,
    pub height: i64,
    pub width: i64,
    pub classes: i64,
    pub dropout: f64,
}

#[derive(thiserror::Error, Debug)]
pub enum ModelError {
    #[error("{0}")]
    Msg(String),
}

pub struct Network {
    pub vs: nn::VarStore,
    seq: nn::SequentialT,
    spec: ModelSpec,
}

impl Network {
    pub fn new(spec: &ModelSpec, device: Device) -> Result<Network, ModelError> {
        let vs = nn::VarStore::new(device);
        let p = vs.root();
        let seq = nn::seq_t()
            .add(nn::conv2d(
                &p / "c1",
                spec.in_channels,
                16,
                3,
                Default::default(),
            ))
            .add_fn(|x| x.relu().max_pool2d_default(2))
            .add_fn(|x| x.flatten(1, -1))
            .add(nn::linear(
                &p / "fc",
                16 * (spec.height / 2 - 1) * (spec.width / 2 - 1),
                spec.classes,
                Default::default(),
            ));
        Ok(Network {
            vs,
            seq,
            spec: *spec,
        })
    }
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        self.seq.forward_t(x, train)
    }
    pub fn parameters(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<_> = self.vs.variables().into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }
    pub fn state_dict(&self) -> Vec<(String, Tensor)> {
        self.parameters()
    }
    pub fn parameter_count(&self) -> i64 {
        self.parameters()
            .iter()
            .map(|(_, t)| t.numel() as i64)
            .sum()
    }
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        self.vs
            .save(path)
            .map_err(|e| ModelError::Msg(e.to_string()))
    }
    pub fn load(&mut self, path: &Path) -> Result<(), ModelError> {
        self.vs
            .load(path)
            .map_err(|e| ModelError::Msg(e.to_string()))
    }
}
