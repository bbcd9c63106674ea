//! Carries out the application's commands on the outside world: the queue file, the worker
//! process and stop signals. Nothing else in the console changes anything.
use super::app::Command;
use crate::vocab::JobName;
use crate::worker::{self, queue};
use std::path::PathBuf;

pub struct Control {
    pub output_dir: PathBuf,
    /// The study file the console was opened on (absolute), None for the built-in default.
    pub config: Option<PathBuf>,
    pub sets: Vec<String>,
}

impl Control {
    /// Returns a line for the status bar when there is something to say.
    pub fn execute(&self, command: &Command) -> Result<Option<String>, String> {
        match command {
            Command::Enqueue(jobs) => {
                let added = queue::modify(&self.output_dir, |q| {
                    q.paused = false;
                    q.push(jobs.iter().map(|job| self.entry(job)))
                })?;
                worker::ensure_running(&self.output_dir)?;
                Ok(Some(match added {
                    0 => "already queued".to_string(),
                    1 => format!("queued {}", jobs[0]),
                    n => format!("queued {n} jobs"),
                }))
            }
            Command::StartQueue => {
                queue::modify(&self.output_dir, |q| q.paused = false)?;
                worker::ensure_running(&self.output_dir)?;
                Ok(Some("queue started".to_string()))
            }
            Command::Stop { job, pid } => {
                stop(*pid)?;
                Ok(Some(format!(
                    "stopping {job} at the next batch; the queue is paused"
                )))
            }
            Command::MoveQueued { job, by } => {
                let name = job.to_string();
                queue::modify(&self.output_dir, |q| q.shift(&name, *by))?;
                Ok(None)
            }
            Command::RemoveQueued(job) => {
                let name = job.to_string();
                queue::modify(&self.output_dir, |q| q.remove(&name))?;
                Ok(Some(format!("removed {job} from the queue")))
            }
            Command::Quit { .. } => Ok(None),
        }
    }

    fn entry(&self, job: &JobName) -> queue::Entry {
        queue::Entry {
            job: job.to_string(),
            config: self.config.clone(),
            sets: self.sets.clone(),
        }
    }
}

/// Asks the process running a job to stop at its next batch boundary (it saves and marks the run
/// stopped).
fn stop(pid: u32) -> Result<(), String> {
    crate::native::posix::terminate(pid).map_err(|e| format!("stopping process {pid}: {e}"))
}
