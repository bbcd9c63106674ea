//! The queue file, `<output>/queue.json`: the jobs waiting for the worker, in order. The console
//! edits it and the worker takes jobs from its head; both go through [`modify`], which holds a
//! lock across read, change and atomic write.
use crate::config::Placement;
use crate::lock::{LockError, ProcessLock, LOCKS_DIR};
use crate::store::{write_atomically, StoreError};
use crate::vocab::ModelKind;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const QUEUE_FILE: &str = "queue.json";

/// How many failures without a run folder the file remembers.
const FAILURES_KEPT: usize = 50;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    /// Waiting jobs; the head runs next.
    #[serde(default)]
    pub jobs: Vec<Entry>,
    /// Set by a stop: the worker starts nothing until the console starts the queue again.
    #[serde(default)]
    pub paused: bool,
    /// Jobs that failed before they had a run folder to say so (a missing dataset, a bad
    /// configuration), newest last.
    #[serde(default)]
    pub failures: Vec<Failure>,
    /// Where the worker runs jobs: the study's `queue:` section, written by the console that
    /// queued last.
    #[serde(default)]
    pub placement: Placement,
    /// Set when a damaged queue file was moved aside and the queue started again empty: what
    /// happened and where the old file is. The console shows it until the user next changes the
    /// queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

/// A job and the configuration it is resolved from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub job: String,
    /// The study file (absolute); None for the built-in default.
    pub config: Option<PathBuf>,
    /// `--set KEY=VALUE` overrides, in order.
    #[serde(default)]
    pub sets: Vec<String>,
    /// A teacher queued for a student runs on the student's model and seed (`--model`, `--seed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// The user asked to train a completed run again (`adarat run --fresh`): without it the
    /// worker drops an entry whose run has completed instead of starting it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// Why the job cannot start yet (its teachers have not completed), as the worker last saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failure {
    pub job: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub error: String,
    /// Local time, `YYYY/MM/DD HH:MM:SS`.
    pub at: String,
}

/// How [`Failure::at`] is written.
const FAILURE_TIME: &str = "%Y/%m/%d %H:%M:%S";

impl Failure {
    /// When it was recorded, if `at` reads as a local time.
    pub fn time(&self) -> Option<std::time::SystemTime> {
        let naive = chrono::NaiveDateTime::parse_from_str(&self.at, FAILURE_TIME).ok()?;
        let local = naive.and_local_timezone(chrono::Local).earliest()?;
        Some(local.into())
    }
}

impl Entry {
    /// A job of a study, as the console queues it.
    pub fn new(job: &str, config: Option<PathBuf>, sets: Vec<String>) -> Entry {
        Entry {
            job: job.to_string(),
            config,
            sets,
            model: None,
            seed: None,
            fresh: false,
            waiting: None,
        }
    }

    /// The job, with its seed when it has one: how the worker's log names the run.
    pub fn label(&self) -> String {
        match self.seed {
            Some(seed) => format!("{} seed {seed}", self.job),
            None => self.job.clone(),
        }
    }

    /// Which run the entry is: its job and seed.
    pub fn run(&self) -> (String, Option<u64>) {
        (self.job.clone(), self.seed)
    }

    /// Whether this entry is that job's run with that seed (None: the study's seed).
    pub fn is(&self, job: &str, seed: Option<u64>) -> bool {
        self.job == job && self.seed == seed
    }
}

impl Queue {
    /// Appends the entries whose run is not waiting already; returns how many were added.
    pub fn push(&mut self, entries: impl IntoIterator<Item = Entry>) -> usize {
        let before = self.jobs.len();
        for entry in entries {
            if !self.contains(&entry.job, entry.seed) {
                self.forget_failure(&entry.job, entry.seed);
                self.jobs.push(entry);
            }
        }
        self.jobs.len() - before
    }

    /// Whether the job's run with that seed waits in the queue.
    pub fn contains(&self, job: &str, seed: Option<u64>) -> bool {
        self.jobs.iter().any(|e| e.is(job, seed))
    }

    /// Moves a waiting run by `by` places (negative: earlier), within the queue's bounds.
    pub fn shift(&mut self, job: &str, seed: Option<u64>, by: isize) {
        if let Some(from) = self.jobs.iter().position(|e| e.is(job, seed)) {
            let last = self.jobs.len() as isize - 1;
            let to = (from as isize + by).clamp(0, last) as usize;
            let entry = self.jobs.remove(from);
            self.jobs.insert(to, entry);
        }
    }

    pub fn remove(&mut self, job: &str, seed: Option<u64>) {
        self.jobs.retain(|e| !e.is(job, seed));
    }

    pub fn record_failure(&mut self, entry: &Entry, error: String) {
        self.forget_failure(&entry.job, entry.seed);
        self.failures.push(Failure {
            job: entry.job.clone(),
            seed: entry.seed,
            error,
            at: chrono::Local::now().format(FAILURE_TIME).to_string(),
        });
        let excess = self.failures.len().saturating_sub(FAILURES_KEPT);
        self.failures.drain(..excess);
    }

    pub fn forget_failure(&mut self, job: &str, seed: Option<u64>) {
        self.failures.retain(|f| !(f.job == job && f.seed == seed));
    }

    /// Why the job's run with that seed last failed before it had a run folder, if it did.
    pub fn failure(&self, job: &str, seed: Option<u64>) -> Option<&Failure> {
        (self.failures.iter().rev()).find(|f| f.job == job && f.seed == seed)
    }
}

pub fn queue_path(output_dir: &Path) -> PathBuf {
    output_dir.join(QUEUE_FILE)
}

/// Why the queue file could not be read or changed; each names the file.
#[derive(thiserror::Error, Debug)]
pub enum QueueError {
    #[error("{}: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Damaged {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Write(#[from] StoreError),
}

/// Reads the queue; a missing file is an empty queue, a damaged one an error naming the file.
pub fn read(output_dir: &Path) -> Result<Queue, QueueError> {
    let path = queue_path(output_dir);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            serde_json::from_str(&text).map_err(|source| QueueError::Damaged { path, source })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Queue::default()),
        Err(source) => Err(QueueError::Unreadable { path, source }),
    }
}

/// Reads, changes and writes the queue under its lock. A damaged file (not the queue's JSON) is
/// moved aside to `queue.json.damaged-<time>` and the queue goes on empty with a notice saying so,
/// rather than stopping every worker and console that reads it (docs/run-folder.md).
pub fn modify<R>(output_dir: &Path, change: impl FnOnce(&mut Queue) -> R) -> Result<R, QueueError> {
    let lock_path = output_dir.join(LOCKS_DIR).join("queue.lock");
    let _lock = ProcessLock::acquire_waiting(&lock_path)?;
    let (mut queue, moved_aside) = match read(output_dir) {
        Err(QueueError::Damaged { path, source }) => (set_aside(&path, &source)?, true),
        other => (other?, false),
    };
    let before = queue.clone();
    let outcome = change(&mut queue);
    if moved_aside || queue != before {
        let text = serde_json::to_string_pretty(&queue).map_err(|source| QueueError::Damaged {
            path: queue_path(output_dir),
            source,
        })?;
        write_atomically(&queue_path(output_dir), text.as_bytes())?;
    }
    Ok(outcome)
}

/// Moves the damaged queue file at `path` aside; the empty queue that replaces it says so.
fn set_aside(path: &Path, error: &serde_json::Error) -> Result<Queue, QueueError> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    // Under the queue's lock: a second damaged file within the second gets a name of its own.
    let mut aside = path.with_file_name(format!("{QUEUE_FILE}.damaged-{stamp}"));
    for n in 2.. {
        if !aside.exists() {
            break;
        }
        aside = path.with_file_name(format!("{QUEUE_FILE}.damaged-{stamp}-{n}"));
    }
    std::fs::rename(path, &aside).map_err(|source| QueueError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(Queue {
        notice: Some(format!(
            "{} was damaged ({error}) and moved to {}; the queue started again empty",
            path.display(),
            aside.display()
        )),
        ..Queue::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(job: &str) -> Entry {
        Entry::new(job, None, Vec::new())
    }

    fn jobs(queue: &Queue) -> Vec<&str> {
        queue.jobs.iter().map(|e| e.job.as_str()).collect()
    }

    #[test]
    fn push_skips_waiting_jobs_and_clears_their_failure() {
        let mut queue = Queue::default();
        queue.record_failure(&entry("b"), "no data".into());
        assert_eq!(queue.push([entry("a"), entry("b"), entry("a")]), 2);
        assert_eq!(jobs(&queue), ["a", "b"]);
        assert!(queue.failures.is_empty());
        // Another seed of a waiting job is another run.
        let seeded = |seed| Entry {
            seed: Some(seed),
            ..entry("a")
        };
        assert_eq!(queue.push([seeded(2), seeded(3), seeded(2)]), 2);
        assert_eq!(jobs(&queue), ["a", "b", "a", "a"]);
        assert!(queue.contains("a", Some(3)) && !queue.contains("a", Some(4)));
        queue.record_failure(&seeded(4), "no data".into());
        assert!(queue.failure("a", Some(4)).is_some() && queue.failure("a", None).is_none());
        queue.remove("a", Some(2));
        assert_eq!(jobs(&queue), ["a", "b", "a"]);
        assert!(queue.contains("a", None) && queue.contains("a", Some(3)));
    }

    #[test]
    fn shift_stays_within_bounds_and_remove_drops_one_job() {
        let mut queue = Queue::default();
        queue.push([entry("a"), entry("b"), entry("c")]);
        queue.shift("c", None, -1);
        assert_eq!(jobs(&queue), ["a", "c", "b"]);
        queue.shift("a", None, -5);
        assert_eq!(jobs(&queue), ["a", "c", "b"]);
        queue.shift("a", None, 9);
        assert_eq!(jobs(&queue), ["c", "b", "a"]);
        queue.remove("b", None);
        assert_eq!(jobs(&queue), ["c", "a"]);
    }

    #[test]
    fn modify_persists_and_a_damaged_file_is_named_and_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        modify(dir.path(), |q| q.push([entry("a")])).unwrap();
        assert_eq!(jobs(&read(dir.path()).unwrap()), ["a"]);
        std::fs::write(queue_path(dir.path()), "{ not json").unwrap();
        let error = read(dir.path()).unwrap_err();
        assert!(error.to_string().contains("queue.json"), "{error}");
        // A change goes on from an empty queue; the damaged bytes are kept beside it.
        modify(dir.path(), |q| q.push([entry("b")])).unwrap();
        let queue = read(dir.path()).unwrap();
        assert_eq!(jobs(&queue), ["b"]);
        let notice = queue.notice.unwrap();
        assert!(notice.contains("was damaged") && notice.contains("queue.json.damaged-"));
        // The contents of the files moved aside, sorted.
        let kept = || {
            let mut kept: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().contains("queue.json.damaged-"))
                .map(|p| std::fs::read_to_string(p).unwrap())
                .collect();
            kept.sort();
            kept
        };
        assert_eq!(kept(), ["{ not json"]);
        // Damaged again at once: both files are kept.
        std::fs::write(queue_path(dir.path()), "[").unwrap();
        modify(dir.path(), |_| ()).unwrap();
        assert_eq!(kept(), ["[", "{ not json"]);
    }
}
