//! How a run ends when it does not complete: it could not start, it failed, or it was stopped
//! (docs/architecture.md#errors-and-exit-statuses).
use crate::data::DataError;
use crate::models::ModelError;
use crate::store::StoreError;
use std::path::PathBuf;

#[derive(thiserror::Error, Debug)]
pub enum RunError {
    /// The job cannot start; nothing was trained and no run folder was touched.
    #[error(transparent)]
    Input(#[from] InputError),
    /// The run folder could not be opened (another process holds it, a damaged resume point).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The job started and failed; `result.json` says so.
    #[error(transparent)]
    Failed(#[from] Failure),
    /// A stop was requested (a signal, the console's `x`); the run is resumable.
    #[error(transparent)]
    Stopped(#[from] StopPoint),
}

/// An attack of the final table ended early by a stop request: the run stopped at that batch.
impl From<super::attack_table::Interrupted> for RunError {
    fn from(interrupted: super::attack_table::Interrupted) -> RunError {
        RunError::Stopped(StopPoint::FinalEvaluation {
            batch: interrupted.batch,
        })
    }
}

/// Why a job cannot start.
#[derive(thiserror::Error, Debug)]
pub enum InputError {
    #[error(transparent)]
    Device(#[from] crate::device::MissingDevice),
    /// The method's settings, its teachers or its parameters.
    #[error(transparent)]
    Method(#[from] crate::methods::MethodError),
    #[error(transparent)]
    Ratio(#[from] crate::ratio::RatioError),
    #[error(transparent)]
    Data(#[from] DataError),
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A file of the resume point that does not fit the job.
    #[error("{}: {source}", path.display())]
    ResumeFile {
        path: PathBuf,
        source: ResumeFileError,
    },
}

/// What is wrong with a file of the resume point.
#[derive(thiserror::Error, Debug)]
pub enum ResumeFileError {
    #[error(transparent)]
    Unreadable(tch::TchError),
    #[error(transparent)]
    Momentum(#[from] crate::optim::MomentumError),
    #[error(transparent)]
    MethodState(#[from] crate::methods::MethodError),
}

/// Why a started job failed.
#[derive(thiserror::Error, Debug)]
pub enum Failure {
    #[error("non-finite loss ({loss}) at epoch {epoch}, batch {batch}")]
    NonFiniteLoss {
        loss: f64,
        epoch: usize,
        batch: usize,
    },
    /// An error inside libtorch (out of memory among them), which tch raises as a panic.
    #[error("{message} (at {place})")]
    Libtorch { message: String, place: String },
    /// A file of the run folder could not be written (a full disk).
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    SavingModel(ModelError),
    /// The method's own work between steps (Generalist's mixing).
    #[error(transparent)]
    Method(crate::methods::MethodError),
    #[error(transparent)]
    Graph(super::cuda_graph::GraphError),
    #[error("reading batch statistics: {0}")]
    Statistics(tch::TchError),
    #[error("{0}")]
    Evaluation(String),
    /// The job failed or stopped and its `result.json` could not say so.
    #[error("{reason}; result.json could not be updated either: {source}")]
    Unrecorded { reason: String, source: StoreError },
}

/// Where a requested stop ended the run.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
pub enum StopPoint {
    #[error("stopped at epoch {epoch}, batch {batch}; resumes after epoch {resumes_after}")]
    Training {
        epoch: usize,
        batch: usize,
        resumes_after: usize,
    },
    #[error(
        "stopped in the final evaluation at batch {batch}; it goes on from there when run again"
    )]
    FinalEvaluation { batch: usize },
}

/// Runs `job`, turning a panic into a failure with its message: tch raises libtorch's errors (out of
/// memory among them) as panics. The default hook's report is replaced meanwhile by this message,
/// which names where the panic happened.
pub(super) fn catching_panics<T>(job: impl FnOnce() -> Result<T, RunError>) -> Result<T, RunError> {
    static WHERE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut place) = WHERE.lock() {
            *place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
        }
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    std::panic::set_hook(previous);
    outcome.unwrap_or_else(|panic| {
        let place = WHERE
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .unwrap_or_default();
        Err(Failure::Libtorch {
            message: crate::torch_error::panic_message(panic.as_ref()),
            place,
        }
        .into())
    })
}
