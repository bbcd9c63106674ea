//! CUDA graphs for the training step. On a GPU, a ResNet-18 batch of 128 is a few thousand small kernels,
//! and launching them from the host, not running them, sets the pace. Each epoch captures one training
//! step once, after a few eager ones, and replays it for every full batch: the same kernels in the same
//! order, launched at once. Numbers are those of the eager step; only host work is saved.
use crate::data::Batch;
use std::ffi::{c_char, c_void, CStr};
use tch::{Device, Tensor};

extern "C" {
    fn adarat_graph_begin(device: i32, error: *mut *mut c_char) -> *mut c_void;
    fn adarat_graph_end(graph: *mut c_void, error: *mut *mut c_char) -> i32;
    fn adarat_graph_replay(graph: *mut c_void, error: *mut *mut c_char) -> i32;
    fn adarat_graph_free(graph: *mut c_void);
}

/// The message the shim allocated, freed here.
fn take_message(error: *mut c_char) -> String {
    if error.is_null() {
        return "no message".to_string();
    }
    // SAFETY: the shim hands over a NUL-terminated string from malloc, owned by the caller.
    let text = unsafe { CStr::from_ptr(error) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: allocated with malloc by the shim, freed once.
    unsafe { libc::free(error.cast()) };
    text.lines().next().unwrap_or_default().to_string()
}

/// One captured training step: its static inputs, and the per-batch statistics row it writes.
pub struct StepGraph {
    raw: *mut c_void,
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
    ) -> Result<StepGraph, String> {
        let Device::Cuda(index) = batch.images.device() else {
            return Err("CUDA graphs need a CUDA device".to_string());
        };
        let inputs = Batch {
            images: batch.images.copy(),
            labels: batch.labels.copy(),
        };
        let mut error = std::ptr::null_mut();
        // SAFETY: begin returns an owned handle or null with a message.
        let raw = unsafe { adarat_graph_begin(index as i32, &mut error) };
        if raw.is_null() {
            return Err(take_message(error));
        }
        let captured = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(&inputs)));
        // SAFETY: `raw` is the live handle from begin; end is called exactly once.
        let ended = unsafe { adarat_graph_end(raw, &mut error) } == 0;
        let failure = match &captured {
            Ok(_) if ended => None,
            Ok(_) => Some(take_message(error)),
            Err(panic) => {
                if !error.is_null() {
                    take_message(error);
                }
                Some(super::panic_message(panic.as_ref()))
            }
        };
        let graph = StepGraph {
            raw,
            batch: inputs,
            row: captured.unwrap_or_else(|_| Tensor::new()),
        };
        match failure {
            None => Ok(graph),
            Some(message) => Err(message),
        }
    }

    /// Whether `batch` has the captured shapes (the last batch of an epoch may be smaller).
    pub fn fits(&self, batch: &Batch) -> bool {
        batch.images.size() == self.batch.images.size()
    }

    /// One training step on `batch`: its images and labels copied into the captured inputs, the graph
    /// replayed; returns a copy of the step's statistics row.
    pub fn replay(&mut self, batch: &Batch) -> Result<Tensor, String> {
        self.batch.images.copy_(&batch.images);
        self.batch.labels.copy_(&batch.labels);
        let mut error = std::ptr::null_mut();
        // SAFETY: `raw` is a live, successfully captured graph.
        if unsafe { adarat_graph_replay(self.raw, &mut error) } != 0 {
            return Err(take_message(error));
        }
        Ok(self.row.copy())
    }
}

impl Drop for StepGraph {
    fn drop(&mut self) {
        // SAFETY: `raw` came from begin and is freed once.
        unsafe { adarat_graph_free(self.raw) };
    }
}
