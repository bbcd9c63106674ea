//! Where runs are sent to run: a [`Scheduler`] takes planned runs, says what it has waiting or
//! running, and cancels one. Two backends implement it: [`local`], the queue worker of this
//! machine, and [`slurm`], job arrays on a Slurm cluster. The study's `scheduler:` section names
//! the one `adarat submit` and the console's `S` use (docs/architecture.md#how-to-add).
//!
//! Every backend runs each run as an `adarat run` process writing into the shared output folder,
//! so the run folder, its lock and its result are the same whatever sent it; a backend only
//! decides where and when that process starts.
pub mod local;
pub mod slurm;

use crate::config::{JobConfig, Study};
use crate::lock;
use crate::store::{self, RunStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A place runs are sent to. Each backend is one folder (or file) here and one entry of
/// [`BACKENDS`].
pub trait Scheduler: Send {
    /// Its name in the study (`scheduler: {slurm: …}`) and on the console (`slurm pending`).
    fn name(&self) -> &'static str;
    /// Its name in sentences (`already on Slurm as task 12_0`).
    fn label(&self) -> &'static str;
    /// Refuses, before anything is sent, an output folder the backend's processes cannot share
    /// (locks that do not hold across its hosts).
    fn check(&self, output_dir: &Path) -> Result<(), SchedulerError>;
    /// Sends the planned runs (teachers before their students): each becomes an `adarat run`
    /// task; a student waits for its teachers' tasks, and a teacher's failure keeps its students
    /// from running.
    fn submit(&self, request: &Request) -> Result<Vec<Submitted>, SchedulerError>;
    /// What it has waiting or running of the runs sent from `output_dir`, by run folder name;
    /// None when it cannot be asked (no Slurm on this host). Called every few seconds.
    fn poll(&self, output_dir: &Path) -> Option<HashMap<String, Task>>;
    /// Stops one of its tasks, waiting or running; a running one stops at its next batch and
    /// stays resumable.
    fn cancel(&self, output_dir: &Path, task: &str) -> Result<(), SchedulerError>;
}

/// The backend the study's `scheduler:` section names, built from its settings with
/// `overrides` (`adarat submit`'s flags, each a key of those settings) applied.
pub fn from_study(
    study: &Study,
    overrides: &[(&str, serde_yaml::Value)],
) -> Result<Box<dyn Scheduler>, SchedulerError> {
    let section = study.scheduler();
    let mut settings = section.settings.clone();
    for (key, value) in overrides {
        // The configuration gives every backend a mapping.
        if let serde_yaml::Value::Mapping(map) = &mut settings {
            map.insert((*key).into(), value.clone());
        }
    }
    let (_, build) = (BACKENDS.iter())
        .find(|(name, _)| *name == section.backend)
        .ok_or_else(|| SchedulerError::Unknown {
            backend: section.backend.clone(),
            known: BACKENDS
                .iter()
                .map(|(name, _)| *name)
                .collect::<Vec<_>>()
                .join(", "),
        })?;
    build(settings, study)
}

/// Builds a backend from its settings (the mapping under its name) and the study.
type Build = fn(serde_yaml::Value, &Study) -> Result<Box<dyn Scheduler>, SchedulerError>;

/// Every backend, by its name in `scheduler:`.
const BACKENDS: &[(&str, Build)] = &[
    (slurm::NAME, |settings, _| {
        Ok(Box::new(slurm::Slurm::new(settings)?))
    }),
    (local::NAME, |settings, study| {
        Ok(Box::new(local::LocalWorker::new(
            settings,
            study.placement(),
        )?))
    }),
];

/// What to send: planned runs and how every `adarat run` of them is called.
pub struct Request<'a> {
    /// Teachers before their students.
    pub configs: &'a [JobConfig],
    /// The shared output folder, absolute.
    pub output_dir: &'a Path,
    /// The study file (absolute); None for the built-in default.
    pub study: Option<PathBuf>,
    /// Its `--set KEY=VALUE` changes, in order.
    pub sets: Vec<String>,
    /// What every `adarat run` also takes (`--epochs`, `--limit-train`, `--device`, ...).
    pub run_args: Vec<String>,
    /// Write what would be sent, send nothing.
    pub dry_run: bool,
    /// The task each run folder has waiting or running from an earlier submission: a student of
    /// this request whose teacher is one waits for that task.
    pub earlier_tasks: HashMap<String, String>,
}

/// One batch the backend took (or, in a dry run, would take).
#[derive(Clone, Debug, PartialEq)]
pub struct Submitted {
    /// What the backend calls it (`array 12`); None in a dry run.
    pub id: Option<String>,
    /// Its runs' jobs, in task order.
    pub jobs: Vec<String>,
    /// Where to look (the batch script), or in a dry run what would send it.
    pub detail: String,
}

/// A backend's task as it sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Its backend's [`Scheduler::name`].
    pub backend: &'static str,
    /// The backend's id of it, what [`Scheduler::cancel`] takes.
    pub id: String,
    /// The backend's own word for its state (`PENDING`, `RUNNING`, `COMPLETED`, ...).
    pub state: String,
    /// Waiting or running: what can still be cancelled.
    pub active: bool,
    /// Why it waits (`Resources`, `Dependency`, ...).
    pub reason: Option<String>,
    /// The host it runs (or ran) on.
    pub node: Option<String>,
    /// Time used, as the backend writes it.
    pub elapsed: String,
    /// The jobs of the teacher tasks it waits for.
    pub after: Vec<String>,
}

#[derive(thiserror::Error, Debug)]
pub enum SchedulerError {
    #[error("scheduler: unknown backend `{backend}` (one of: {known})")]
    Unknown { backend: String, known: String },
    #[error("scheduler.{backend}: {message}")]
    Settings { backend: String, message: String },
    /// The backend cannot be reached from here (its commands are not on PATH).
    #[error("{0}")]
    Unavailable(String),
    /// A value the backend cannot take; nothing was sent.
    #[error("{0}")]
    Refused(String),
    #[error("{command}: {message}")]
    Command { command: String, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Locks(#[from] lock::LockError),
    #[error(transparent)]
    Queue(#[from] crate::worker::queue::QueueError),
    #[error(transparent)]
    Worker(#[from] crate::worker::WorkerError),
}

/// The planned runs worth sending, and those left out with why: a second submit of the same
/// selection, or of a larger one, sends only what is neither completed, nor running in a process
/// (on any host sharing the output folder), nor waiting or running on `scheduler`
/// (docs/slurm.md#submitting-again). A student whose teacher runs outside it is left out too:
/// nothing of the backend can wait for that.
pub fn to_submit(
    scheduler: &dyn Scheduler,
    configs: Vec<JobConfig>,
    output_dir: &Path,
    active: &HashMap<String, Task>,
) -> (Vec<JobConfig>, Vec<(JobConfig, String)>) {
    let mut submit = Vec::new();
    let mut skipped: Vec<(JobConfig, String)> = Vec::new();
    let mut outside: Vec<PathBuf> = Vec::new();
    for cfg in configs {
        let name = RunStore::folder_name(&cfg);
        let teacher_outside = (cfg.name().teachers().iter())
            .map(|(_, teacher)| RunStore::teacher_folder(&cfg, teacher))
            .find(|folder| outside.contains(folder));
        let why = if let Some(task) = active.get(&name) {
            let state = task.state.to_lowercase();
            let on = scheduler.label();
            Some(format!("already on {on} as task {} ({state})", task.id))
        } else if let Some(who) = lock::holder(&store::run_lock_path(output_dir, &name)).who() {
            outside.push(RunStore::folder_of(&cfg));
            Some(format!("running in {who}"))
        } else if let Some(done) = store::completed_run(&cfg) {
            Some(if done.same_configuration {
                "completed".to_string()
            } else {
                "completed with another configuration (adarat run --fresh moves it aside and trains this one)".to_string()
            })
        } else {
            teacher_outside.map(|teacher| {
                format!(
                    "its teacher {} runs outside {}; submit it again once that has completed",
                    teacher.display(),
                    scheduler.label()
                )
            })
        };
        match why {
            Some(why) => skipped.push((cfg, why)),
            None => submit.push(cfg),
        }
    }
    (submit, skipped)
}
