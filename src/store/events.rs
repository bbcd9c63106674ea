//! `events.jsonl` (docs/run-folder.md#eventsjsonl): what a run reports while it goes. The engine
//! emits these events; the run folder's event log, the progress bar of `adarat run` and the
//! console (which reads the log back) consume them.
use super::result::{EpochRecord, FinalTable};
use crate::vocab::Status;
use serde::{Deserialize, Serialize};

/// One training batch, as plotted: loss, ratio and the accuracies of the pre-update logits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchSample {
    /// 1-indexed, like the epoch records.
    pub epoch: usize,
    /// 1-indexed within the epoch.
    pub batch: usize,
    pub loss: f64,
    pub clean_loss: f64,
    pub adv_loss: f64,
    pub clean_acc: f64,
    pub adv_acc: f64,
    /// Slope on L_s; null in baseline and on AdaRAT's clean-only branch.
    pub ratio: Option<f64>,
    /// Whether AdaRAT took the clean-only branch; null outside AdaRAT.
    pub clean_only: Option<bool>,
}

/// Every event is also a line of the run's `events.jsonl`, which the console reads back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Started {
        job: String,
        epochs: usize,
        first_epoch: usize,
        batches_per_epoch: usize,
        device: String,
    },
    EpochStarted {
        epoch: usize,
        lr: f64,
    },
    Batches {
        samples: Vec<BatchSample>,
        /// Training images in these batches and the wall time they took (for images/s).
        #[serde(default)]
        images: usize,
        #[serde(default)]
        seconds: f64,
    },
    Testing {
        epoch: usize,
    },
    EpochFinished {
        record: EpochRecord,
    },
    FinalStarted,
    /// An attack of the final table (`pgd20`, or an AutoAttack sub-attack such as
    /// `autoattack/square`) starts on batch `batch` (1-indexed) of `batches`.
    FinalAttack {
        attack: String,
        batch: usize,
        batches: usize,
    },
    /// A batch of the final evaluation is done: the table over the first `images_done` images.
    FinalBatch {
        images_done: usize,
        images: usize,
        table: FinalTable,
    },
    FinalFinished {
        table: FinalTable,
    },
    /// Something the run worked around and a person should know: CUDA graphs turned off, a damaged
    /// `final-progress.json` ignored.
    Warning {
        message: String,
    },
    /// The run ended: completed, stopped (resumable) or failed.
    Ended {
        status: Status,
        error: Option<String>,
    },
}

/// Receives a run's events in order.
pub trait Observer {
    fn observe(&mut self, event: &Event);
}
