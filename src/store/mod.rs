//! The run folder (product.md section 6): one directory under `output/` per job, model and seed,
//! holding the resolved configuration, the event log, `result.json`, `train.log`, the final weights
//! and what resuming needs. Every file a later step reads is written to a temporary file and renamed.
pub mod lock;
pub mod result;
pub mod train_log;

use crate::config::JobConfig;
use result::{RunResult, Status};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.yaml";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const RESULT_FILE: &str = "result.json";
pub const TRAIN_LOG_FILE: &str = "train.log";
pub const MODEL_FILE: &str = "model.safetensors";
pub const RESUME_FILE: &str = "resume.json";
pub const RESUME_WEIGHTS_FILE: &str = "resume.safetensors";
pub const RESUME_OPTIMIZER_FILE: &str = "resume-optimizer.safetensors";
/// A method's own resume state (Generalist's ST learner, momentum and EMA models).
pub const RESUME_METHOD_FILE: &str = "resume-method.safetensors";
/// The final evaluation's counts after each test batch, while it runs: a stop resumes from them.
pub const FINAL_PROGRESS_FILE: &str = "final-progress.json";

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("{folder}: {source}")]
    Busy {
        folder: PathBuf,
        source: lock::LockError,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a reader
/// sees the old file or the new one, never half of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let tmp = temporary_path(path);
    let write = || -> std::io::Result<()> {
        let mut file = File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|source| {
        let _ = fs::remove_file(&tmp);
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// `name.ext` → `.name.ext.tmp` beside it.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// The resumable point of an unfinished run: the epochs completed and the files that hold them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResumePoint {
    pub epochs_done: usize,
    /// Length of `resume.safetensors`, checked before it is loaded.
    pub weights_bytes: u64,
    pub has_optimizer: bool,
    /// Whether `resume-method.safetensors` belongs to this point.
    #[serde(default)]
    pub has_method_state: bool,
}

pub struct RunStore {
    dir: PathBuf,
    /// Held while the run goes on: a second process on the same folder is refused, and the
    /// console learns which process runs the job.
    _lock: lock::ProcessLock,
}

/// What was found in a job's folder when the run was opened.
pub enum Opening {
    /// Nothing to continue: a new run.
    Fresh,
    /// An unfinished run of the same configuration: continue after its last completed epoch.
    Resume {
        result: Box<RunResult>,
        point: ResumePoint,
    },
    /// An earlier run (finished, or of another configuration) was moved aside to this folder.
    Archived(PathBuf),
}

impl RunStore {
    /// `<method>_<dataset>_<mode>_<model>_seed<seed>`.
    pub fn folder_name(cfg: &JobConfig) -> String {
        format!(
            "{}_{}_{}_{}_seed{}",
            cfg.method, cfg.dataset, cfg.mode, cfg.model, cfg.seed
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Opens the job's folder. An unfinished run of the identical configuration is resumed unless
    /// `fresh`; any other earlier run is moved aside, never overwritten.
    pub fn open(cfg: &JobConfig, fresh: bool) -> Result<(RunStore, Opening), StoreError> {
        let name = Self::folder_name(cfg);
        let dir = cfg.output_dir.join(&name);
        let held = lock::ProcessLock::try_acquire(&lock::run_lock_path(&cfg.output_dir, &name))
            .map_err(|source| StoreError::Busy {
                folder: dir.clone(),
                source,
            })?;
        let store = RunStore { dir, _lock: held };
        let opening =
            if store.dir.join(RESULT_FILE).exists() || store.dir.join(CONFIG_FILE).exists() {
                match store.resumable(cfg) {
                    Some((result, point)) if !fresh => Opening::Resume {
                        result: Box::new(result),
                        point,
                    },
                    _ => Opening::Archived(store.archive()?),
                }
            } else {
                Opening::Fresh
            };
        fs::create_dir_all(&store.dir).map_err(io_error(&store.dir))?;
        if !matches!(opening, Opening::Resume { .. }) {
            let text = serde_yaml::to_string(cfg).map_err(|e| StoreError::Corrupt {
                path: store.path(CONFIG_FILE),
                message: e.to_string(),
            })?;
            write_atomically(&store.path(CONFIG_FILE), text.as_bytes())?;
            // A new event log for a new run.
            File::create(store.path(EVENTS_FILE)).map_err(io_error(&store.path(EVENTS_FILE)))?;
        }
        Ok((store, opening))
    }

    /// The unfinished run in the folder, if its configuration equals `cfg` and its files are whole.
    fn resumable(&self, cfg: &JobConfig) -> Option<(RunResult, ResumePoint)> {
        let saved: JobConfig =
            serde_yaml::from_str(&fs::read_to_string(self.path(CONFIG_FILE)).ok()?).ok()?;
        if !saved.same_run_as(cfg) {
            return None;
        }
        let result = self.read_result().ok()?;
        if result.status == Status::Completed {
            return None;
        }
        let point: ResumePoint =
            serde_json::from_str(&fs::read_to_string(self.path(RESUME_FILE)).ok()?).ok()?;
        let weights = fs::metadata(self.path(RESUME_WEIGHTS_FILE)).ok()?;
        (weights.len() == point.weights_bytes && point.epochs_done <= result.epochs_log.len())
            .then_some((result, point))
    }

    /// Moves the folder to `<name>.<timestamp>` beside it.
    fn archive(&self) -> Result<PathBuf, StoreError> {
        let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut target = self.dir.with_file_name(format!("{name}.{stamp}"));
        let mut n = 1;
        while target.exists() {
            target = self.dir.with_file_name(format!("{name}.{stamp}-{n}"));
            n += 1;
        }
        fs::rename(&self.dir, &target).map_err(io_error(&self.dir))?;
        Ok(target)
    }

    pub fn read_result(&self) -> Result<RunResult, StoreError> {
        read_result(&self.path(RESULT_FILE))
    }

    pub fn write_result(&self, result: &RunResult) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(result).map_err(|e| StoreError::Corrupt {
            path: self.path(RESULT_FILE),
            message: e.to_string(),
        })?;
        write_atomically(&self.path(RESULT_FILE), text.as_bytes())
    }

    pub fn write_train_log(&self, text: &str) -> Result<(), StoreError> {
        write_atomically(&self.path(TRAIN_LOG_FILE), text.as_bytes())
    }

    /// Appends JSON lines to the event log (readable while it grows).
    pub fn append_events<T: Serialize>(&self, events: &[T]) -> Result<(), StoreError> {
        let path = self.path(EVENTS_FILE);
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut out = BufWriter::new(file);
        for event in events {
            serde_json::to_writer(&mut out, event).map_err(|e| StoreError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
            out.write_all(b"\n").map_err(io_error(&path))?;
        }
        out.flush().map_err(io_error(&path))
    }

    pub fn write_resume_point(&self, point: &ResumePoint) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(point).expect("a resume point always serialises");
        write_atomically(&self.path(RESUME_FILE), text.as_bytes())
    }
}

/// Reads a `result.json`, naming the file when it is missing or damaged.
pub fn read_result(path: &Path) -> Result<RunResult, StoreError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
