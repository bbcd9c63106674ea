//! Carries out the application's commands on the outside world: the queue file, the worker
//! process and stop signals. Nothing else in the console changes anything. Each command comes back
//! as an [`Outcome`] or a [`ControlError`], which the application words.
use crate::config::Placement;
use crate::lock::LockOwner;
use crate::vocab::{JobName, SeededJob};
use crate::worker::{self, queue};
use std::path::PathBuf;
use thiserror::Error;

/// What the application asks the outside world to do; the event loop carries it out.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Append these runs to the queue (skipping those already waiting) and start the queue
    /// (un-pause it and make sure a worker runs it).
    Enqueue(Vec<SeededJob>),
    /// As `Enqueue`, for completed runs the user confirmed to train again: each is moved aside
    /// when it starts (`adarat run --fresh`).
    Rerun(Vec<SeededJob>),
    /// Un-pause the queue and make sure a worker runs it.
    StartQueue,
    /// Stop the running run through the process its lock names: SIGTERM to this host's process,
    /// a cancel of its scheduler task (`scancel` of a Slurm task), nothing elsewhere
    /// (`control::stop_path`); the queue pauses.
    Stop {
        run: SeededJob,
        owner: LockOwner,
    },
    /// Cancel a run's task on the study's scheduler (Slurm: `scancel`): it stops at its next batch.
    Cancel {
        run: SeededJob,
        task: String,
    },
    /// Submit these jobs (and the teachers they lack) to the study's scheduler with `adarat submit`.
    Submit(Vec<JobName>),
    /// Write the study's tables, in every format, into the output folder's `report/`.
    Export,
    /// Move a queued run by this many places (negative: earlier).
    MoveQueued {
        run: SeededJob,
        by: isize,
    },
    RemoveQueued(SeededJob),
    /// Leave the console; `farewell` is printed after the terminal is restored.
    Quit {
        farewell: Option<String>,
    },
}

/// What a command did; the application words it for the status line.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// The runs that went into the queue (none when all were waiting already); a worker runs it.
    Enqueued {
        added: Vec<SeededJob>,
        /// A damaged-queue notice the queue held at the change (the console lists it among its
        /// problems; `adarat queue` prints it).
        notice: Option<String>,
    },
    /// The queue is un-paused and a worker runs it.
    QueueStarted,
    /// The job's process was asked to stop at its next batch (which pauses the queue).
    StopRequested {
        run: SeededJob,
    },
    MovedInQueue,
    RemovedFromQueue {
        run: SeededJob,
    },
    /// The scheduler took the request to cancel the run's task.
    CancelRequested {
        run: SeededJob,
        task: String,
    },
    /// `adarat submit` submitted the batches it names (`array 12`).
    Submitted {
        batches: Vec<String>,
        /// Runs left out as completed, running or already on the scheduler, one line each.
        skipped: Vec<String>,
    },
    /// The study's tables and figures were written into this folder (the figures not, and why,
    /// when no font was found).
    Exported {
        folder: std::path::PathBuf,
        files: usize,
        figures_failed: Option<String>,
    },
}

/// Why a command did not happen; the status line shows it after `error: `.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The queue file could not be locked, read or written.
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    #[error(transparent)]
    WorkerNotStarted(#[from] worker::WorkerError),
    /// The run's lock names a process this console must not signal (docs/run-folder.md#locks).
    #[error("the run is in {0}, which this console cannot stop: stop it there")]
    NotHere(LockOwner),
    #[error("stopping process {pid}: {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error(transparent)]
    Scheduler(#[from] crate::scheduler::SchedulerError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// `adarat submit` refused (its one line) or could not be started.
    #[error("adarat submit: {0}")]
    Submit(String),
    #[error(transparent)]
    Export(#[from] crate::report::ReportError),
}

/// How the console can stop the process a run's lock names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StopPath {
    /// SIGTERM to this pid: a process of this host, still the one that took the lock.
    Signal(u32),
    /// A cancel of this task through the study's scheduler (`scancel` of a Slurm task),
    /// wherever it runs.
    Task(String),
    /// None: another host's process outside Slurm, a pid reused since, or a lock file of an older
    /// adarat that names only a pid. A pid names a process on its own host only.
    Elsewhere,
}

/// The way to stop `owner`. A process of this host is signalled even when it is a Slurm task: the
/// task's id may be a whole interactive allocation (`salloc`), which `scancel` would end.
pub(crate) fn stop_path(owner: &LockOwner) -> StopPath {
    if owner.is_this_hosts_process() {
        StopPath::Signal(owner.pid)
    } else if let Some(task) = &owner.slurm_task {
        StopPath::Task(task.clone())
    } else {
        StopPath::Elsewhere
    }
}

#[derive(Clone)]
pub struct Control {
    pub output_dir: PathBuf,
    /// The study file the console was opened on (absolute), None for the built-in default.
    pub config: Option<PathBuf>,
    pub sets: Vec<String>,
    /// The study's `queue:` section, given to the worker with every job queued.
    pub placement: Placement,
}

impl Control {
    /// Appends the runs not waiting already, un-pauses the queue and makes sure a worker runs it.
    /// `fresh`: completed runs the user confirmed to train again.
    pub(crate) fn enqueue(&self, runs: &[SeededJob], fresh: bool) -> Result<Outcome, ControlError> {
        let (added, notice) = self.modify_queue(|q| {
            q.paused = false;
            q.placement = self.placement.clone();
            let added: Vec<SeededJob> = (runs.iter().copied())
                .filter(|run| !q.contains(&run.job.to_string(), Some(run.seed)))
                .collect();
            q.push(added.iter().map(|run| queue::Entry {
                fresh,
                ..self.entry(run)
            }));
            // Seen before it is cleared: a damaged queue file moved aside, for `adarat queue` to
            // say (the console lists it among its problems).
            (added, q.notice.clone())
        })?;
        self.ensure_worker()?;
        Ok(Outcome::Enqueued { added, notice })
    }

    pub(crate) fn start_queue(&self) -> Result<Outcome, ControlError> {
        self.modify_queue(|q| {
            q.paused = false;
            q.placement = self.placement.clone();
        })?;
        self.ensure_worker()?;
        Ok(Outcome::QueueStarted)
    }

    /// Asks the process running a job to stop at its next batch boundary (it saves and marks the
    /// run stopped), by the way [`stop_path`] finds from its lock's record, decided here, just
    /// before the signal.
    pub(crate) fn stop(&self, run: SeededJob, owner: &LockOwner) -> Result<Outcome, ControlError> {
        match stop_path(owner) {
            StopPath::Signal(pid) => {
                crate::native::posix::terminate(pid)
                    .map_err(|source| ControlError::Signal { pid, source })?;
                Ok(Outcome::StopRequested { run })
            }
            StopPath::Task(task) => self.cancel(run, task),
            StopPath::Elsewhere => Err(ControlError::NotHere(owner.clone())),
        }
    }

    /// Cancels a run's task on the study's scheduler; it stops at its next batch (docs/slurm.md).
    pub(crate) fn cancel(&self, run: SeededJob, task: String) -> Result<Outcome, ControlError> {
        let study = crate::config::open(self.config.as_deref(), &self.sets)?;
        crate::scheduler::from_study(&study, &[])?.cancel(&self.output_dir, &task)?;
        Ok(Outcome::CancelRequested { run, task })
    }

    /// Runs `adarat submit` on the console's study and output folder; waits for `sbatch` (the event
    /// loop calls it off the UI thread).
    pub(crate) fn submit(&self, jobs: &[JobName]) -> Result<Outcome, ControlError> {
        let exe = std::env::current_exe().map_err(|e| ControlError::Submit(e.to_string()))?;
        let mut command = std::process::Command::new(exe);
        command.arg("submit");
        command.args(jobs.iter().map(JobName::to_string));
        command.arg("--output").arg(&self.output_dir);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        for set in &self.sets {
            command.arg("--set").arg(set);
        }
        command.stdin(std::process::Stdio::null());
        let out = command
            .output()
            .map_err(|e| ControlError::Submit(e.to_string()))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr.lines().last().unwrap_or("failed");
            return Err(ControlError::Submit(
                line.strip_prefix("adarat: ").unwrap_or(line).to_string(),
            ));
        }
        let said = String::from_utf8_lossy(&out.stdout);
        // `submitted array 12: st/cifar10/baseline, ... (script)`.
        let batches = (said.lines())
            .filter_map(|l| l.strip_prefix("submitted "))
            .map(|l| l.split(':').next().unwrap_or(l).to_string())
            .collect();
        let skipped = (said.lines())
            .filter_map(|l| l.strip_prefix("skipped "))
            .map(str::to_string)
            .collect();
        Ok(Outcome::Submitted { batches, skipped })
    }

    /// Writes the study's tables in every format, and its figures, into `<output>/report/`
    /// (docs/report.md).
    pub fn export(&self) -> Result<Outcome, ControlError> {
        use crate::report::{export, figures::Barrier, tables::Filter, Format};
        let folder = self.output_dir.join("report");
        // The study the console shows gives the barrier figure when no AdaRAT run has finished.
        let study = crate::config::open(self.config.as_deref(), &self.sets).ok();
        let exported = export(
            std::slice::from_ref(&self.output_dir),
            &Filter::default(),
            Format::ALL,
            Some(study.as_ref().and_then(Barrier::of_study)),
            &folder,
        )?;
        let files = exported.files.len();
        let figures_failed = exported.figures_failed.map(|e| e.to_string());
        Ok(Outcome::Exported {
            folder,
            files,
            figures_failed,
        })
    }

    pub(crate) fn move_queued(&self, run: SeededJob, by: isize) -> Result<Outcome, ControlError> {
        let name = run.job.to_string();
        self.modify_queue(|q| q.shift(&name, Some(run.seed), by))?;
        Ok(Outcome::MovedInQueue)
    }

    pub(crate) fn remove_queued(&self, run: SeededJob) -> Result<Outcome, ControlError> {
        let name = run.job.to_string();
        self.modify_queue(|q| q.remove(&name, Some(run.seed)))?;
        Ok(Outcome::RemovedFromQueue { run })
    }

    /// A change the user asked for; it also clears a damaged-queue notice the user has seen by
    /// now, but not one this very change wrote (it moved the damaged file aside itself).
    fn modify_queue<R>(
        &self,
        change: impl FnOnce(&mut queue::Queue) -> R,
    ) -> Result<R, ControlError> {
        let seen = queue::read(&self.output_dir).ok().and_then(|q| q.notice);
        Ok(queue::modify(&self.output_dir, |q| {
            let outcome = change(q);
            if q.notice == seen {
                q.notice = None;
            }
            outcome
        })?)
    }

    fn ensure_worker(&self) -> Result<(), ControlError> {
        Ok(worker::ensure_running(&self.output_dir)?)
    }

    fn entry(&self, run: &SeededJob) -> queue::Entry {
        queue::Entry {
            seed: Some(run.seed),
            ..queue::Entry::new(&run.job.to_string(), self.config.clone(), self.sets.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock::{self, Holder};
    use crate::native::posix::{self, Lock, Locked};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Child;

    fn control(dir: &std::path::Path) -> Control {
        Control {
            output_dir: dir.to_path_buf(),
            config: None,
            sets: Vec::new(),
            placement: Placement::default(),
        }
    }

    fn a_run() -> SeededJob {
        SeededJob {
            job: "pgd-at/synthetic/adarat".parse().unwrap(),
            seed: 1,
        }
    }

    fn sleeper() -> Child {
        std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap()
    }

    /// The child as its own lock would record it.
    fn recorded(child: &Child) -> LockOwner {
        LockOwner {
            pid: child.id(),
            started: lock::ProcessStart::of(child.id()),
            ..LockOwner::this_process()
        }
    }

    /// Writes `record` into a lock file and holds its lock, as a running job does; the console
    /// reads it back through `holder`.
    fn held_lock(dir: &std::path::Path, record: &str) -> (std::fs::File, LockOwner) {
        let path = crate::store::run_lock_path(dir, "pgd-at_synthetic_adarat_small-cnn_seed1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, record).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        assert_eq!(posix::lock(&file, Lock::Try).unwrap(), Locked::Free);
        let Holder::Held(Some(owner)) = lock::holder(&path) else {
            panic!("the lock is held and its record readable");
        };
        (file, owner)
    }

    /// Ends `child` with SIGKILL and says which signal ended it: SIGTERM if something sent it one
    /// before (the kernel keeps the first fatal signal as the cause).
    fn killed_by(mut child: Child) -> Option<i32> {
        posix::send_signal(child.id(), libc::SIGKILL).unwrap();
        child.wait().unwrap().signal()
    }

    #[test]
    fn a_lock_naming_another_host_a_reused_pid_or_no_host_is_never_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let child = sleeper();
        let right = recorded(&child);
        let mut reused = right.clone();
        reused.started.as_mut().unwrap().ticks += 1;
        let elsewhere = LockOwner {
            host: Some("node7-of-another-cluster".into()),
            ..right.clone()
        };
        let pid = child.id();
        let here = right.host.clone().unwrap();
        let records = [
            (
                serde_json::to_string(&elsewhere).unwrap(),
                format!("process {pid} on host node7-of-another-cluster"),
            ),
            (
                serde_json::to_string(&reused).unwrap(),
                format!("process {pid} on host {here}"),
            ),
            // An older adarat's lock file: the bare pid.
            (
                format!("{pid}\n"),
                format!("process {pid} on an unrecorded host"),
            ),
        ];
        for (record, place) in records {
            let (_held, owner) = held_lock(dir.path(), &record);
            assert_eq!(stop_path(&owner), StopPath::Elsewhere, "{record}");
            let error = control(dir.path()).stop(a_run(), &owner).unwrap_err();
            assert!(matches!(&error, ControlError::NotHere(o) if *o == owner));
            let message = error.to_string();
            assert!(message.contains(&place), "{message}");
        }
        assert_eq!(
            killed_by(child),
            Some(libc::SIGKILL),
            "nothing signalled it"
        );
    }

    #[test]
    fn a_lock_naming_this_hosts_process_as_it_started_is_signalled() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = sleeper();
        let record = serde_json::to_string(&recorded(&child)).unwrap();
        let (_held, owner) = held_lock(dir.path(), &record);
        assert_eq!(stop_path(&owner), StopPath::Signal(child.id()));
        let stopped = control(dir.path()).stop(a_run(), &owner).unwrap();
        assert_eq!(stopped, Outcome::StopRequested { run: a_run() });
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn a_slurm_task_is_cancelled_through_slurm_unless_it_is_this_hosts_process() {
        let here = LockOwner::this_process();
        let task = LockOwner {
            host: Some("node7-of-another-cluster".into()),
            slurm_task: Some("45_3".into()),
            ..here.clone()
        };
        assert_eq!(stop_path(&task), StopPath::Task("45_3".into()));
        let local_task = LockOwner {
            slurm_task: Some("45_3".into()),
            ..here
        };
        assert_eq!(stop_path(&local_task), StopPath::Signal(std::process::id()));
    }

    #[test]
    fn a_change_of_the_users_clears_the_damaged_queue_notice_they_have_seen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(queue::queue_path(dir.path()), "{ damaged").unwrap();
        // The worker's next pass moves the file aside and leaves the notice.
        queue::modify(dir.path(), |_| ()).unwrap();
        assert!(queue::read(dir.path()).unwrap().notice.is_some());
        control(dir.path()).move_queued(a_run(), 1).unwrap();
        assert_eq!(queue::read(dir.path()).unwrap().notice, None);
        // A change that itself finds the file damaged keeps the notice for the user to see.
        std::fs::write(queue::queue_path(dir.path()), "{ damaged").unwrap();
        control(dir.path()).move_queued(a_run(), 1).unwrap();
        assert!(queue::read(dir.path()).unwrap().notice.is_some());
    }
}
