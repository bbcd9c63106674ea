//! What went wrong in a command, and the one table from that to adarat's exit status (README,
//! "Command line"; docs/architecture.md#errors-and-exit-statuses).
use crate::scheduler::SchedulerError;
use crate::train::RunError;

/// adarat's exit statuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ExitStatus {
    Success,
    /// A job failed while running (after the others ran), or the console, the worker or the
    /// benchmark failed.
    Failed,
    /// Bad input of any kind; nothing ran.
    BadInput,
    /// A stop request (a signal) ended the run; it resumes when run again.
    Stopped,
    /// Another process runs the job now; nothing ran (the worker waits and tries again).
    Busy,
}

impl ExitStatus {
    pub(super) const fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::BadInput => 2,
            // 128 + SIGINT, as shells report a command ended by Ctrl-C.
            ExitStatus::Stopped => 130,
            // sysexits.h's EX_TEMPFAIL: try again later.
            ExitStatus::Busy => 75,
        }
    }
}

/// Where the exit status is also written, when set: the Slurm batch script reads the run's status
/// from it, since bash can lose a child's status when a trap interrupts its `wait`
/// (docs/slurm.md#the-batch-script).
pub(super) const EXIT_STATUS_FILE: &str = "ADARAT_EXIT_STATUS_FILE";

/// Writes `status` to the file `ADARAT_EXIT_STATUS_FILE` names, if any (best effort: the exit status
/// itself still tells the same).
pub(super) fn record(status: ExitStatus) {
    if let Some(path) = std::env::var_os(EXIT_STATUS_FILE) {
        let _ = crate::store::write_atomically(
            std::path::Path::new(&path),
            format!("{}\n", status.code()).as_bytes(),
        );
    }
}

#[derive(thiserror::Error, Debug)]
pub(super) enum CliError {
    /// Bad input, worded where it was found: arguments, the configuration, data, a checkpoint.
    #[error("{0}")]
    Input(String),
    /// A job that could not start, or that a stop ended.
    #[error("{job}: {source}")]
    Job { job: String, source: Box<RunError> },
    /// Jobs that failed while running; the others ran.
    #[error("failed: {}", .0.join(", "))]
    JobsFailed(Vec<String>),
    /// A command failed while running (the queue file could not be changed).
    #[error("{0}")]
    Failed(String),
    /// The benchmark failed while running.
    #[error("bench: {0}")]
    Bench(#[from] crate::bench::BenchError),
    /// A stop request (a signal) ended a command that keeps no progress.
    #[error("{0}")]
    Stopped(String),
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
    /// The scheduler refused or could not be asked; nothing was submitted after the failure.
    #[error(transparent)]
    Scheduler(#[from] crate::scheduler::SchedulerError),
    #[error(transparent)]
    Console(#[from] crate::console::event_loop::LoopError),
    /// The output folder's file system has no locks that work, found before anything ran.
    #[error(transparent)]
    Locks(#[from] crate::lock::LockError),
}

impl CliError {
    pub(super) fn input(message: impl ToString) -> CliError {
        CliError::Input(message.to_string())
    }

    pub(super) fn exit_status(&self) -> ExitStatus {
        match self {
            CliError::Input(_) | CliError::Locks(_) => ExitStatus::BadInput,
            CliError::Scheduler(error) => match error {
                SchedulerError::Queue(_) | SchedulerError::Worker(_) => ExitStatus::Failed,
                _ => ExitStatus::BadInput,
            },
            CliError::Job { source, .. } => match source.as_ref() {
                RunError::Stopped(_) => ExitStatus::Stopped,
                RunError::Failed(_) => ExitStatus::Failed,
                RunError::Store(crate::store::StoreError::Busy { .. }) => ExitStatus::Busy,
                RunError::Input(_) | RunError::Store(_) => ExitStatus::BadInput,
            },
            CliError::Stopped(_) => ExitStatus::Stopped,
            CliError::JobsFailed(_)
            | CliError::Failed(_)
            | CliError::Bench(_)
            | CliError::Worker(_)
            | CliError::Console(_) => ExitStatus::Failed,
        }
    }
}
