//! Carries out the application's commands on the outside world: the queue file, the worker
//! process and stop signals. Nothing else in the console changes anything. Each command comes back
//! as an [`Outcome`] or a [`ControlError`], which the application words.
use super::app::Outcome;
use crate::config::Placement;
use crate::vocab::{JobName, SeededJob};
use crate::worker::{self, queue};
use std::path::PathBuf;
use thiserror::Error;

/// Why a command did not happen; the status line shows it after `error: `.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The queue file could not be locked, read or written.
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    #[error(transparent)]
    WorkerNotStarted(#[from] worker::WorkerError),
    #[error("no process to stop (pid {pid})")]
    NoProcess { pid: u32 },
    #[error("stopping process {pid}: {source}")]
    Signal { pid: u32, source: std::io::Error },
    #[error(transparent)]
    Slurm(#[from] crate::slurm::SlurmError),
    /// `adarat submit` refused (its one line) or could not be started.
    #[error("adarat submit: {0}")]
    Submit(String),
    #[error(transparent)]
    Export(#[from] crate::report::ReportError),
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
        let added = self.modify_queue(|q| {
            q.paused = false;
            q.placement = self.placement.clone();
            let added: Vec<SeededJob> = (runs.iter().copied())
                .filter(|run| !q.contains(&run.job.to_string(), Some(run.seed)))
                .collect();
            q.push(added.iter().map(|run| queue::Entry {
                fresh,
                ..self.entry(run)
            }));
            added
        })?;
        self.ensure_worker()?;
        Ok(Outcome::Enqueued { added })
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
    /// run stopped).
    pub(crate) fn stop(&self, run: SeededJob, pid: u32) -> Result<Outcome, ControlError> {
        if libc::pid_t::try_from(pid).map_or(true, |p| p <= 0) {
            return Err(ControlError::NoProcess { pid });
        }
        crate::native::posix::terminate(pid)
            .map_err(|source| ControlError::Signal { pid, source })?;
        Ok(Outcome::StopRequested { run })
    }

    /// Cancels a run's Slurm task; it stops at its next batch (docs/slurm.md).
    pub(crate) fn cancel(&self, run: SeededJob, task: String) -> Result<Outcome, ControlError> {
        crate::slurm::cancel(&task)?;
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
        let arrays = (String::from_utf8_lossy(&out.stdout).lines())
            .filter_map(|l| l.strip_prefix("submitted array "))
            .map(|l| l.split(':').next().unwrap_or(l).to_string())
            .collect();
        Ok(Outcome::Submitted { arrays })
    }

    /// Writes the study's tables in every format, and its figures, into `<output>/report/`
    /// (docs/report.md).
    pub fn export(&self) -> Result<Outcome, ControlError> {
        use crate::report::{export, figures::Barrier, tables::Filter, Format};
        let folder = self.output_dir.join("report");
        // The study the console shows gives the barrier figure when no AdaRAT run has finished.
        let study = crate::config::open(self.config.as_deref(), &self.sets).ok();
        let formats = [
            Format::Markdown,
            Format::Latex,
            Format::Csv,
            Format::Json,
            Format::Tensorboard,
        ];
        let exported = export(
            std::slice::from_ref(&self.output_dir),
            &Filter::default(),
            &formats,
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

    #[test]
    fn a_change_of_the_users_clears_the_damaged_queue_notice_they_have_seen() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(queue::queue_path(dir.path()), "{ damaged").unwrap();
        // The worker's next pass moves the file aside and leaves the notice.
        queue::modify(dir.path(), |_| ()).unwrap();
        assert!(queue::read(dir.path()).unwrap().notice.is_some());
        let control = Control {
            output_dir: dir.path().to_path_buf(),
            config: None,
            sets: Vec::new(),
            placement: Placement::default(),
        };
        let run = SeededJob {
            job: "pgd-at/synthetic/adarat".parse().unwrap(),
            seed: 1,
        };
        control.move_queued(run, 1).unwrap();
        assert_eq!(queue::read(dir.path()).unwrap().notice, None);
        // A change that itself finds the file damaged keeps the notice for the user to see.
        std::fs::write(queue::queue_path(dir.path()), "{ damaged").unwrap();
        control.move_queued(run, 1).unwrap();
        assert!(queue::read(dir.path()).unwrap().notice.is_some());
    }
}
