//! What the console knows, as plain data: the monitor builds a [`Snapshot`] from the output folder
//! (run folders, the queue file, the locks of running processes) and the application state keeps
//! the latest one. Nothing here touches tch.
use crate::config::JobConfig;
use crate::lock::LockOwner;
use crate::scheduler::Task;
use crate::store::events::BatchSample;
use crate::store::per_image::PerImage;
use crate::store::result::{EpochRecord, RunResult};
use crate::vocab::{DatasetKind, JobName, Method, Mode, SeededJob, Status};
use std::path::PathBuf;
use std::sync::Arc;

/// Where a grid job stands: never run, waiting in the queue, or its run's status. A run is
/// running only while a process holds its lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    NotRun,
    Queued,
    Run(Status),
}

impl JobState {
    /// The state as the screens write it; a run's status in the vocabulary's spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobState::NotRun => "not run",
            JobState::Queued => "queued",
            JobState::Run(status) => status.as_str(),
        }
    }
}

/// One run of the console's grid (a job with one of the study's seeds) and what its run folder
/// says.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRow {
    pub job: JobName,
    pub seed: u64,
    /// The run folder, whether it exists yet or not.
    pub folder: PathBuf,
    pub state: JobState,
    /// `result.json`, when the folder has a readable one.
    pub result: Option<Arc<RunResult>>,
    /// `config.yaml` and `per-image.json`, read with `result.json`.
    pub config: Option<Arc<JobConfig>>,
    pub per_image: Option<Arc<PerImage>>,
    /// Why the job failed (from `result.json`, or from the queue when it failed before its run
    /// folder existed), or why the folder could not be read.
    pub error: Option<String>,
    /// The process running the job right now as its lock records it, if any (a console's worker,
    /// `adarat run`, a Slurm task; on this host or another sharing the output folder).
    pub owner: Option<LockOwner>,
    /// Its task on the study's scheduler (a Slurm cluster), when it was submitted from this output
    /// folder and the scheduler still lists it.
    pub remote: Option<Task>,
}

impl JobRow {
    pub fn run(&self) -> SeededJob {
        SeededJob {
            job: self.job,
            seed: self.seed,
        }
    }

    /// Its run for the study's tables, once it has a result.
    pub fn report_run(&self) -> Option<crate::report::groups::Run> {
        Some(crate::report::groups::Run {
            folder: self.folder.clone(),
            result: self.result.clone()?,
            config: self.config.clone(),
            per_image: self.per_image.clone(),
        })
    }
}

/// How many of a job's runs (one per seed) have completed.
pub(crate) fn completed_seeds(runs: &[&JobRow]) -> usize {
    (runs.iter())
        .filter(|row| row.state == JobState::Run(Status::Completed))
        .count()
}

/// The mean ± sd and n of one final-table value over a job's completed runs.
pub(crate) fn over_completed_seeds(
    runs: &[&JobRow],
    pick: impl Fn(&crate::store::result::FinalTable) -> Option<f64>,
) -> Option<crate::report::tables::Stat> {
    let values: Vec<f64> = (runs.iter())
        .filter(|row| row.state == JobState::Run(Status::Completed))
        .filter_map(|row| pick(row.result.as_ref()?.final_table.as_ref()?))
        .collect();
    crate::report::tables::Stat::of(&values)
}

/// Where the running job is within an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Loading data and building the model: no event yet.
    Starting,
    Training,
    /// The per-epoch test after the training batches.
    Testing,
    /// The final attack table after the last epoch.
    FinalEvaluation,
}

/// The running job as its event log tells it.
#[derive(Clone, Debug, PartialEq)]
pub struct Live {
    pub run: SeededJob,
    pub pid: u32,
    pub device: String,
    pub phase: Phase,
    /// 1-indexed epoch being trained (or tested).
    pub epoch: usize,
    pub epochs: usize,
    /// Batches done within the epoch, and per epoch.
    pub batch: usize,
    pub batches_per_epoch: usize,
    /// The epoch's learning rate.
    pub lr: f64,
    /// The latest training batches, oldest first (a bounded window: at most [`LIVE_WINDOW`]).
    pub samples: Vec<BatchSample>,
    /// The epochs finished so far (also those before a resume).
    pub epochs_log: Vec<EpochRecord>,
    /// Training images per second over the latest batches; None until measurable.
    pub images_per_second: Option<f64>,
    /// Seconds until the last epoch's training and test are done, from the epochs measured so far.
    pub eta_seconds: Option<f64>,
    /// Recent human-readable lines (started, epoch summaries, stopped...), oldest first, bounded.
    pub log: Vec<String>,
    /// In the final evaluation: the attack running and the batch it is on.
    pub final_step: Option<FinalStep>,
}

/// The attack the final evaluation is running (`pgd20`, `autoattack/square`) on batch `batch`
/// (1-indexed) of `batches`.
#[derive(Clone, Debug, PartialEq)]
pub struct FinalStep {
    pub attack: String,
    pub batch: usize,
    pub batches: usize,
}

/// The most batch samples a [`Live`] keeps.
pub const LIVE_WINDOW: usize = 4096;

/// One job waiting in the queue file.
#[derive(Clone, Debug, PartialEq)]
pub struct Queued {
    pub run: SeededJob,
    /// Why it cannot start yet (its teachers have not completed), as the worker last wrote it.
    pub waiting: Option<String>,
}

/// Everything the monitor saw on one pass over the output folder.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// The grid's datasets, left to right (the study's, then those for trying things out).
    pub datasets: Vec<DatasetKind>,
    /// The seeds each grid job runs with (`grid.seeds`).
    pub seeds: Vec<u64>,
    /// Every run of the console's grid, in grid order (method, then mode, then dataset), the
    /// seeds of a job next to each other.
    pub jobs: Vec<JobRow>,
    /// Jobs waiting, in the order they will run.
    pub queue: Vec<Queued>,
    /// The queue is held after a stop: nothing new starts until the user starts it again.
    pub paused: bool,
    /// The queue worker's process, while one is alive.
    pub worker: Option<u32>,
    /// Every running job's live view (usually one).
    pub live: Vec<Live>,
    /// What is wrong with the output folder itself (a damaged queue file), for the status line.
    pub problems: Vec<String>,
    /// The study's scheduler in sentences (`Slurm`), which `S` submits to; None when the study's
    /// `scheduler:` section is refused (a problem says why).
    pub scheduler: Option<&'static str>,
}

/// The grid's shape: one row per method and mode with jobs, one column per dataset.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GridShape {
    pub(crate) rows: Vec<(Method, Mode)>,
    pub(crate) datasets: Vec<DatasetKind>,
}

/// What the screens and the update function ask of what the monitor saw.
impl Snapshot {
    /// The study's scheduler in sentences, as the console words what it sends there.
    pub fn scheduler_label(&self) -> &'static str {
        self.scheduler.unwrap_or("the scheduler")
    }

    pub(crate) fn grid_shape(&self) -> GridShape {
        let mut rows: Vec<(Method, Mode)> = Vec::new();
        let mut datasets = self.datasets.clone();
        for row in &self.jobs {
            let key = (row.job.method, row.job.mode);
            if !rows.contains(&key) {
                rows.push(key);
            }
            if !datasets.contains(&row.job.dataset) {
                datasets.push(row.job.dataset);
            }
        }
        GridShape { rows, datasets }
    }

    /// How the console names a run: its job, and its seed when the grid has several.
    pub(crate) fn name(&self, run: SeededJob) -> String {
        match self.seeds.len() {
            0 | 1 => run.job.to_string(),
            _ => run.to_string(),
        }
    }

    pub(crate) fn row(&self, run: SeededJob) -> Option<&JobRow> {
        self.jobs.iter().find(|row| row.run() == run)
    }

    /// The runs of a grid cell: the job's, one per seed.
    pub(crate) fn runs_of(&self, job: JobName) -> Vec<&JobRow> {
        self.jobs.iter().filter(|row| row.job == job).collect()
    }

    /// The live view of a run, while it runs.
    pub(crate) fn live(&self, run: SeededJob) -> Option<&Live> {
        self.live.iter().find(|live| live.run == run)
    }

    /// The latest epoch of a run: the live one if it runs, else its result's.
    pub(crate) fn last_epoch<'a>(&'a self, row: &'a JobRow) -> Option<&'a EpochRecord> {
        let live = self.live(row.run()).and_then(|live| live.epochs_log.last());
        live.or_else(|| row.result.as_ref().and_then(|r| r.epochs_log.last()))
    }

    /// Place in the queue (0: next) of a run.
    pub(crate) fn queue_position(&self, run: SeededJob) -> Option<usize> {
        self.queue.iter().position(|q| q.run == run)
    }

    /// Running runs and the processes their locks name, from the grid and the live views.
    pub(crate) fn running(&self) -> Vec<(SeededJob, Option<LockOwner>)> {
        let mut running: Vec<(SeededJob, Option<LockOwner>)> = Vec::new();
        for row in &self.jobs {
            if row.state == JobState::Run(Status::Running) {
                running.push((row.run(), row.owner.clone()));
            }
        }
        for live in &self.live {
            if !running.iter().any(|(run, _)| *run == live.run) {
                running.push((live.run, None));
            }
        }
        running
    }

    /// The first job in grid order whose name contains the text, or whose consecutive parts each
    /// contain the text's `/`-separated parts (`synth/ada` finds `pgd-at/synthetic/adarat`).
    pub(crate) fn first_match(&self, text: &str) -> Option<JobName> {
        let query = text.to_lowercase();
        let query_parts: Vec<&str> = query.split('/').collect();
        self.jobs.iter().map(|row| row.job).find(|job| {
            let name = job.to_string();
            if name.contains(&query) {
                return true;
            }
            let parts: Vec<&str> = name.split('/').collect();
            parts.windows(query_parts.len()).any(|window| {
                window
                    .iter()
                    .zip(&query_parts)
                    .all(|(part, wanted)| part.contains(wanted))
            })
        })
    }
}
