//! Which queued jobs may start: dependencies, not order. A KD-AT or IAD job starts only after its
//! teachers have completed (docs/protocol.md#teachers-of-kd-at-and-iad); until then it waits with
//! the reason in the queue file, and jobs behind it start as slots free up.
use super::queue::{Entry, Queue};
use crate::config::{self, JobConfig, JobOverrides, Study};
use crate::lock::{self, Holder};
use crate::store::{self, RunStore};
use crate::vocab::{JobName, Status};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What the worker makes of one waiting entry.
#[derive(Debug, PartialEq)]
pub(super) enum Readiness {
    /// It can start now; its run folder.
    Ready(PathBuf),
    /// Its teachers have not completed.
    Waiting {
        reason: String,
        /// Teachers nobody runs or queued yet: they go into the queue before it.
        queue_first: Vec<Entry>,
        /// Whether a teacher is on its way (queued or running), as opposed to one that failed or
        /// stopped and waits for the user to queue it again.
        on_its_way: bool,
    },
    /// Another process runs it now (a second console's `adarat run`, a Slurm task): it waits,
    /// and once that process ends the entry is looked at again (docs/architecture.md#the-queue).
    Busy(String),
    /// Its run has completed and the entry does not ask for it again: nothing to do.
    Done,
    /// The job cannot be run at all (a bad configuration, an unknown job): why.
    Invalid(String),
}

/// The studies of one pass over the queue, each file and set of overrides read once: a queued
/// grid is 44 entries of the same study.
#[derive(Default)]
pub(super) struct Studies(HashMap<StudyKey, Result<Rc<Study>, String>>);

/// A study file (None: the built-in default) and its `--set` overrides.
type StudyKey = (Option<PathBuf>, Vec<String>);

impl Studies {
    pub(super) fn of(&mut self, entry: &Entry) -> Result<Rc<Study>, String> {
        let key = (entry.config.clone(), entry.sets.clone());
        let study = self.0.entry(key).or_insert_with(|| {
            config::open(entry.config.as_deref(), &entry.sets)
                .map(Rc::new)
                .map_err(|e| e.to_string())
        });
        study.clone()
    }
}

/// Whether `entry` can start, given the queue it is in and the jobs this worker has started.
pub(super) fn readiness(
    entry: &Entry,
    queue: &Queue,
    started: &[(String, Option<u64>)],
    studies: &mut Studies,
    output_dir: &Path,
) -> Readiness {
    let (cfg, teachers) = match resolve(entry, studies, output_dir) {
        Ok(resolved) => resolved,
        Err(message) => return Readiness::Invalid(message),
    };
    if let Some(reason) = running_elsewhere(&cfg, started) {
        return Readiness::Busy(reason);
    }
    if !entry.fresh && store::completed_run(&cfg).is_some() {
        return Readiness::Done;
    }
    if teachers.is_empty() {
        return Readiness::Ready(RunStore::folder_of(&cfg));
    }
    let mut coming = Vec::new();
    let mut blocked = Vec::new();
    let mut queue_first = Vec::new();
    for teacher in &teachers {
        let name = teacher.job.as_str();
        let seed = Some(teacher.seed);
        let lock = store::run_lock_path(output_dir, &RunStore::folder_name(teacher));
        let is_it = |(job, s): &(String, Option<u64>)| job == name && *s == seed;
        if started.iter().any(is_it) || matches!(lock::holder(&lock), Holder::Held(_)) {
            coming.push(format!("{name} (running)"));
        } else if queue.contains(name, seed) {
            coming.push(format!("{name} (queued)"));
        } else {
            let path = RunStore::folder_of(teacher).join(store::RESULT_FILE);
            match store::read_result(&path) {
                Ok(result) => {
                    // Running without a process holding its lock: killed, resumable as if stopped.
                    let status = match result.status {
                        Status::Running => "was interrupted".to_string(),
                        other => other.to_string(),
                    };
                    let why = result.error.map(|e| format!(": {e}")).unwrap_or_default();
                    blocked.push(format!("its teacher {name} {status}{why}"));
                }
                // A teacher that failed before it had a run folder (its dataset missing and no
                // network, a bad device) blocks its student as one with a folder does: only the
                // user queues it again, so the worker never starts it over and over.
                Err(_) => match queue.failure(name, seed) {
                    Some(failure) => {
                        blocked.push(format!("its teacher {name} failed: {}", failure.error));
                    }
                    None => {
                        queue_first.push(Entry {
                            model: Some(teacher.model),
                            seed: Some(teacher.seed),
                            ..Entry::new(name, entry.config.clone(), entry.sets.clone())
                        });
                        coming.push(format!("{name} (queued)"));
                    }
                },
            }
        }
    }
    let reason = if blocked.is_empty() {
        format!("waiting for its teachers: {}", coming.join(", "))
    } else {
        format!("{} (queue it again to go on)", blocked.join("; "))
    };
    Readiness::Waiting {
        reason,
        queue_first,
        on_its_way: blocked.is_empty(),
    }
}

/// Why the run of `cfg` cannot start now because it runs already: started by this worker, or
/// its lock held by another process.
fn running_elsewhere(cfg: &JobConfig, started: &[(String, Option<u64>)]) -> Option<String> {
    let run = (cfg.job.clone(), Some(cfg.seed));
    if started.contains(&run) {
        return Some("already running here; waits for that run to end".to_string());
    }
    let path = store::run_lock_path(&cfg.output_dir, &RunStore::folder_name(cfg));
    (lock::holder(&path).who()).map(|who| format!("already running in {who}; waits for it to end"))
}

/// The entry's job resolved from its study into this output folder, and the teachers it lacks.
fn resolve(
    entry: &Entry,
    studies: &mut Studies,
    output_dir: &Path,
) -> Result<(JobConfig, Vec<JobConfig>), String> {
    let (study, cfg, overrides) = resolve_run(entry, studies, output_dir)?;
    let teachers =
        crate::plan::missing_teachers(&study, &cfg, &overrides).map_err(|e| e.to_string())?;
    Ok((cfg, teachers))
}

/// The entry's job resolved from its study into this output folder: the study, the run's
/// configuration and the overrides it was resolved with.
pub(super) fn resolve_run(
    entry: &Entry,
    studies: &mut Studies,
    output_dir: &Path,
) -> Result<(Rc<Study>, JobConfig, JobOverrides), String> {
    let study = studies.of(entry)?;
    let job = entry.job.parse::<JobName>().map_err(|e| e.to_string())?;
    let overrides = JobOverrides {
        output_dir: Some(output_dir.to_path_buf()),
        model: entry.model,
        seed: entry.seed,
        ..Default::default()
    };
    let cfg = study.resolve(&job, &overrides).map_err(|e| e.to_string())?;
    Ok((study, cfg, overrides))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An entry as the console queues it: with the seed (the default study's, 1).
    fn entry(job: &str) -> Entry {
        Entry {
            seed: Some(1),
            ..Entry::new(job, None, Vec::new())
        }
    }

    #[test]
    fn a_student_queues_its_teachers_then_waits_for_them_and_others_are_ready() {
        let dir = tempfile::tempdir().unwrap();
        let output = dir.path();
        let student = entry("kd-at/synthetic/baseline");
        let mut queue = Queue::default();
        queue.push([student.clone(), entry("pgd-at/synthetic/adarat")]);
        let Readiness::Waiting {
            queue_first,
            on_its_way,
            ..
        } = readiness(&student, &queue, &[], &mut Studies::default(), output)
        else {
            panic!("the student cannot start before its teachers");
        };
        let teachers: Vec<&str> = queue_first.iter().map(|e| e.job.as_str()).collect();
        assert_eq!(
            teachers,
            ["st/synthetic/baseline", "pgd-at/synthetic/baseline"]
        );
        assert!(on_its_way);

        queue.push(queue_first);
        let started = [("st/synthetic/baseline".to_string(), Some(1))];
        let Readiness::Waiting {
            reason,
            queue_first,
            ..
        } = readiness(&student, &queue, &started, &mut Studies::default(), output)
        else {
            panic!("still waiting");
        };
        assert!(queue_first.is_empty());
        assert_eq!(
            reason,
            "waiting for its teachers: st/synthetic/baseline (running), pgd-at/synthetic/baseline (queued)"
        );
        assert!(matches!(
            readiness(
                &entry("pgd-at/synthetic/adarat"),
                &queue,
                &[],
                &mut Studies::default(),
                output
            ),
            Readiness::Ready(_)
        ));
        assert!(matches!(
            readiness(
                &entry("pgd-at/nowhere/adarat"),
                &queue,
                &[],
                &mut Studies::default(),
                output
            ),
            Readiness::Invalid(_)
        ));
    }

    /// Why `student` waits, the teachers it would queue and whether one is on its way; fails the
    /// test when it does not wait.
    fn waiting(student: &Entry, queue: &Queue, output: &Path) -> (String, Vec<Entry>, bool) {
        match readiness(student, queue, &[], &mut Studies::default(), output) {
            Readiness::Waiting {
                reason,
                queue_first,
                on_its_way,
            } => (reason, queue_first, on_its_way),
            other => panic!("{} does not wait: {other:?}", student.job),
        }
    }

    #[test]
    fn a_teacher_that_failed_without_a_folder_blocks_its_student_and_is_not_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = Queue::default();
        let teacher = entry("st/synthetic/baseline");
        queue.record_failure(&teacher, "cifar10 not in data".into());
        let student = entry("kd-at/synthetic/baseline");
        let (reason, queue_first, on_its_way) = waiting(&student, &queue, dir.path());
        let queued: Vec<&str> = queue_first.iter().map(|e| e.job.as_str()).collect();
        assert_eq!(
            queued,
            ["pgd-at/synthetic/baseline"],
            "only the teacher that never ran"
        );
        assert!(!on_its_way);
        assert!(
            reason.starts_with("its teacher st/synthetic/baseline failed: cifar10 not in data"),
            "{reason}"
        );
        // Queued again by the user, the teacher is on its way once more.
        queue.push([teacher]);
        assert!(waiting(&student, &queue, dir.path()).2);
    }

    #[test]
    fn a_completed_run_is_done_unless_asked_again_and_a_locked_one_waits() {
        let dir = tempfile::tempdir().unwrap();
        let job = entry("pgd-at/synthetic/adarat");
        let folder = dir.path().join("pgd-at_synthetic_adarat_small-cnn_seed1");
        std::fs::create_dir_all(&folder).unwrap();
        let result = serde_json::json!({
            "job": "pgd-at/synthetic/adarat", "method": "pgd-at", "dataset": "synthetic",
            "mode": "adarat", "model": "small-cnn", "seed": 1, "protocol": "default",
            "device": "cpu", "status": "completed", "error": null, "epochs": 2,
            "epochs_done": 2, "seconds": 1.0, "epochs_log": [], "peaks": null, "final": null
        });
        std::fs::write(folder.join(store::RESULT_FILE), result.to_string()).unwrap();
        let ready = |entry: &Entry, started: &[(String, Option<u64>)]| {
            readiness(
                entry,
                &Queue::default(),
                started,
                &mut Studies::default(),
                dir.path(),
            )
        };
        assert_eq!(ready(&job, &[]), Readiness::Done);
        let again = Entry {
            fresh: true,
            ..job.clone()
        };
        assert_eq!(ready(&again, &[]), Readiness::Ready(folder.clone()));
        // Running here, or in a process holding its lock: it waits, whatever it asks.
        assert!(matches!(ready(&again, &[job.run()]), Readiness::Busy(_)));
        let lock = store::run_lock_path(dir.path(), "pgd-at_synthetic_adarat_small-cnn_seed1");
        let _held = crate::lock::ProcessLock::try_acquire(&lock).unwrap();
        let Readiness::Busy(reason) = ready(&job, &[]) else {
            panic!("a locked run waits");
        };
        assert!(reason.contains("already running in process"), "{reason}");
    }

    #[test]
    fn a_failed_teacher_leaves_its_student_waiting_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("st_synthetic_baseline_small-cnn_seed1");
        std::fs::create_dir_all(&folder).unwrap();
        let result = serde_json::json!({
            "job": "st/synthetic/baseline", "method": "st", "dataset": "synthetic",
            "mode": "baseline", "model": "small-cnn", "seed": 1, "protocol": "default",
            "device": "cpu", "status": "failed", "error": "out of memory", "epochs": 2,
            "epochs_done": 0, "seconds": 1.0, "epochs_log": [], "peaks": null, "final": null
        });
        std::fs::write(folder.join(store::RESULT_FILE), result.to_string()).unwrap();
        let mut queue = Queue::default();
        queue.push([entry("pgd-at/synthetic/baseline")]);
        let student = entry("iad/synthetic/adarat");
        let (reason, queue_first, on_its_way) = waiting(&student, &queue, dir.path());
        assert!(
            queue_first.is_empty(),
            "a failed teacher is not queued again by itself"
        );
        assert!(!on_its_way);
        assert_eq!(
            reason,
            "its teacher st/synthetic/baseline failed: out of memory (queue it again to go on)"
        );
    }
}
