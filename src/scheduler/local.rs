//! This machine's queue worker as a backend (`scheduler: {local: {}}`): submitting queues the runs
//! in the output folder's `queue.json` and starts a worker when none serves it, as the console's
//! enter does. The worker runs them on the devices of the study's `queue:` section, teachers first
//! (docs/architecture.md#processes-and-who-owns-what).
use super::{Request, Scheduler, SchedulerError, Submitted, Task};
use crate::config::Placement;
use crate::lock::{self, Holder};
use crate::store;
use crate::worker::{self, queue};
use std::collections::HashMap;
use std::path::Path;

/// The backend's name in `scheduler:`.
pub const NAME: &str = "local";

pub struct LocalWorker {
    /// The study's `queue:` section, given to the worker with the runs.
    placement: Placement,
}

impl LocalWorker {
    /// It takes no settings of its own: where it runs jobs is the study's `queue:` section.
    pub fn new(settings: serde_yaml::Value, placement: &Placement) -> Result<Self, SchedulerError> {
        if settings.as_mapping().is_some_and(|m| !m.is_empty()) {
            return Err(SchedulerError::Settings {
                backend: NAME.to_string(),
                message: "takes no settings: its devices are the study's `queue:` section".into(),
            });
        }
        Ok(LocalWorker {
            placement: placement.clone(),
        })
    }
}

impl Scheduler for LocalWorker {
    fn name(&self) -> &'static str {
        NAME
    }

    fn label(&self) -> &'static str {
        "the local queue"
    }

    fn check(&self, output_dir: &Path) -> Result<(), SchedulerError> {
        Ok(lock::check_lock_support(output_dir)?)
    }

    fn submit(&self, request: &Request) -> Result<Vec<Submitted>, SchedulerError> {
        if !request.run_args.is_empty() {
            return Err(SchedulerError::Refused(format!(
                "the local queue runs each job as the study configures it, on the devices of its `queue:` section: {} can only be given to adarat run (or as --set)",
                request.run_args.join(" ")
            )));
        }
        let jobs: Vec<String> = request.configs.iter().map(|c| c.job.clone()).collect();
        let path = queue::queue_path(request.output_dir);
        if request.dry_run {
            return Ok(vec![Submitted {
                id: None,
                jobs,
                detail: format!("queue into {}", path.display()),
            }]);
        }
        let entries = request.configs.iter().map(|cfg| queue::Entry {
            model: Some(cfg.model),
            seed: Some(cfg.seed),
            ..queue::Entry::new(&cfg.job, request.study.clone(), request.sets.clone())
        });
        queue::modify(request.output_dir, |q| {
            q.paused = false;
            q.placement = self.placement.clone();
            q.push(entries);
        })?;
        worker::ensure_running(request.output_dir)?;
        Ok(vec![Submitted {
            id: Some("queue".into()),
            jobs,
            detail: path.display().to_string(),
        }])
    }

    fn poll(&self, output_dir: &Path) -> Option<HashMap<String, Task>> {
        let runs = worker::queued_runs(output_dir).ok()?;
        Some(
            (runs.into_iter())
                .map(|(folder, entry)| {
                    let task = Task {
                        backend: NAME,
                        id: folder.clone(),
                        state: if entry.waiting.is_some() {
                            "WAITING"
                        } else {
                            "QUEUED"
                        }
                        .into(),
                        active: true,
                        reason: entry.waiting,
                        node: None,
                        elapsed: String::new(),
                        after: Vec::new(),
                    };
                    (folder, task)
                })
                .collect(),
        )
    }

    /// Takes the run of folder `task` out of the queue, and stops it if a process of this host
    /// runs it (the next batch saves it, resumable).
    fn cancel(&self, output_dir: &Path, task: &str) -> Result<(), SchedulerError> {
        let queued = worker::queued_runs(output_dir)?;
        let entry = queued
            .iter()
            .find(|(folder, _)| folder == task)
            .map(|(_, e)| e);
        if let Some(entry) = entry {
            queue::modify(output_dir, |q| q.remove(&entry.job, entry.seed))?;
        }
        let lock = store::run_lock_path(output_dir, task);
        let here = match lock::holder(&lock) {
            Holder::Held(Some(owner)) if owner.is_this_hosts_process() => Some(owner.pid),
            _ => None,
        };
        if let Some(pid) = here {
            crate::native::posix::terminate(pid)
                .map_err(|source| SchedulerError::Io { path: lock, source })?;
        }
        if entry.is_none() && here.is_none() {
            return Err(SchedulerError::Refused(format!(
                "{task} is neither in the local queue nor run by a process of this host"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_takes_a_queued_run_out_and_refuses_a_task_it_does_not_have() {
        let dir = tempfile::tempdir().unwrap();
        let entry = queue::Entry {
            seed: Some(1),
            ..queue::Entry::new("st/synthetic/baseline", None, Vec::new())
        };
        queue::modify(dir.path(), |q| q.push([entry])).unwrap();
        let local = LocalWorker::new(serde_yaml::Value::Null, &Placement::default()).unwrap();
        let tasks = local.poll(dir.path()).unwrap();
        let folder = tasks.keys().next().unwrap().clone();
        assert!(folder.starts_with("st_synthetic_baseline_"), "{folder}");
        assert_eq!(tasks[&folder].state, "QUEUED");
        local.cancel(dir.path(), &folder).unwrap();
        assert!(queue::read(dir.path()).unwrap().jobs.is_empty());
        let error = local.cancel(dir.path(), &folder).unwrap_err();
        assert!(
            error.to_string().contains("neither in the local queue"),
            "{error}"
        );
    }
}
