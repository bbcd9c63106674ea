//! CUDA graphs for the training step. On a GPU, a ResNet-18 batch of 128 is a few thousand small kernels,
//! and launching them from the host, not running them, sets the pace. Each epoch captures one training
//! step once, after a few eager ones, and replays it for every full batch: the same kernels in the same
//! order, launched at once. Numbers are those of the eager step; only host work is saved.
use crate::data::Batch;
use crate::native::libtorch::Graph;
use tch::{Device, Tensor};

/// Why a step could not be captured, or its graph not replayed.
#[derive(thiserror::Error, Debug)]
pub enum GraphError {
    #[error("CUDA graphs need a CUDA device")]
    NotCuda,
    /// The CUDA runtime refused the capture or the replay (the shim's message).
    #[error("{0}")]
    Cuda(String),
    /// The step failed while being captured (libtorch's message, e.g. a host read).
    #[error("{0}")]
    Step(String),
}

/// One captured training step: its static inputs, and the per-batch statistics row it writes.
pub struct StepGraph {
    graph: Graph,
    batch: Batch,
    row: Tensor,
}

impl StepGraph {
    /// Captures `step` on a copy of `batch`; the capture only records, so nothing is trained yet.
    /// A step that cannot be captured (a host read, an unsupported op) is an error, and the stream
    /// is left usable for eager steps.
    pub fn capture(
        batch: &Batch,
        step: impl FnOnce(&Batch) -> Tensor,
    ) -> Result<StepGraph, GraphError> {
        let Device::Cuda(index) = batch.images.device() else {
            return Err(GraphError::NotCuda);
        };
        let inputs = Batch {
            images: batch.images.copy(),
            labels: batch.labels.copy(),
        };
        let mut graph = Graph::begin(index).map_err(GraphError::Cuda)?;
        let captured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&inputs)));
        // Ended also after a failed step, so the stream is usable again.
        let ended = graph.end();
        match (captured, ended) {
            (Ok(row), Ok(())) => Ok(StepGraph {
                graph,
                batch: inputs,
                row,
            }),
            (Ok(_), Err(message)) => Err(GraphError::Cuda(message)),
            (Err(panic), _) => Err(GraphError::Step(crate::torch_error::panic_message(
                panic.as_ref(),
            ))),
        }
    }

    /// Whether `batch` has the captured shapes (the last batch of an epoch may be smaller).
    pub fn fits(&self, batch: &Batch) -> bool {
        batch.images.size() == self.batch.images.size()
    }

    /// One training step on `batch`: its images and labels copied into the captured inputs, the graph
    /// replayed; returns a copy of the step's statistics row.
    pub fn replay(&mut self, batch: &Batch) -> Result<Tensor, GraphError> {
        self.batch.images.copy_(&batch.images);
        self.batch.labels.copy_(&batch.labels);
        self.graph.replay().map_err(GraphError::Cuda)?;
        Ok(self.row.copy())
    }
}
