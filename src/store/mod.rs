//! The run folder (docs/run-folder.md): one directory under `output/` per job, model and seed,
//! holding the resolved configuration, the event log, `result.json`, `train.log`, the final weights
//! and what resuming needs. Every file a later step reads is written to a temporary file and renamed.
pub mod events;
pub mod per_image;
pub mod result;
mod run_name;
pub mod train_log;

pub use run_name::{NotARunName, RunName};

use crate::config::JobConfig;
use crate::lock;
use crate::vocab::{JobName, Status};
use per_image::PerImage;
use result::RunResult;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "config.yaml";
pub const EVENTS_FILE: &str = "events.jsonl";
pub const RESULT_FILE: &str = "result.json";
pub const TRAIN_LOG_FILE: &str = "train.log";
pub const MODEL_FILE: &str = "model.safetensors";
/// The committed resume point: which files hold it, with their MD5s.
pub const RESUME_FILE: &str = "resume.json";
/// The final evaluation's counts after each test batch, while it runs: a stop resumes from them.
pub const FINAL_PROGRESS_FILE: &str = "final-progress.json";
/// Which test images each attack of the final table left correct, once the table is complete.
pub const PER_IMAGE_FILE: &str = "per-image.json";

#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Corrupt { path: PathBuf, message: String },
    /// A failure whose message already names its file (a checkpoint that could not be written).
    #[error("{0}")]
    File(String),
    #[error("{folder}: {source}")]
    Busy {
        folder: PathBuf,
        source: lock::LockError,
    },
    /// The folder holds a completed run and no rerun was asked for: it is never moved aside
    /// unasked (docs/run-folder.md#when-a-run-is-moved-aside).
    #[error("{}: holds a completed run; --fresh moves it aside and trains again", folder.display())]
    Completed { folder: PathBuf },
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
        crate::faults::full_disk(path)?;
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
fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// The resumable point of an unfinished run: the epochs completed and the files that hold them.
///
/// Each point's tensors go to files named after its epoch, so writing a new point never touches the
/// files of the committed one; `resume.json`, written last, commits it, and only then are older
/// points' files removed. A kill at any instant leaves one whole point.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumePoint {
    pub epochs_done: usize,
    /// File name → MD5 of the point's files: weights, and optionally momentum and method state.
    pub files: BTreeMap<String, String>,
}

/// The tensors of a resume point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointPart {
    Weights,
    /// SGD momentum, when it is kept across epochs.
    Optimizer,
    /// A method's own state (Generalist's ST learner, momentum and EMA models).
    Method,
}

impl PointPart {
    /// `resume-e0003.safetensors`, `resume-optimizer-e0003.safetensors`, ...
    pub fn file_name(self, epochs_done: usize) -> String {
        let part = match self {
            PointPart::Weights => "",
            PointPart::Optimizer => "-optimizer",
            PointPart::Method => "-method",
        };
        format!("resume{part}-e{epochs_done:04}.safetensors")
    }
}

impl ResumePoint {
    /// The file of `part` in this point, if the point has one.
    pub fn file(&self, part: PointPart) -> Option<String> {
        let name = part.file_name(self.epochs_done);
        self.files.contains_key(&name).then_some(name)
    }
}

pub struct RunStore {
    dir: PathBuf,
    /// Held while the run goes on: a second process on the same folder is refused, and the
    /// console learns which process runs the job.
    _lock: lock::ProcessLock,
}

/// Whether `folder` holds a completed run with its final weights (a teacher KD-AT and IAD can use).
pub fn holds_completed_run(folder: &Path) -> bool {
    folder.join(MODEL_FILE).is_file()
        && read_result(&folder.join(RESULT_FILE))
            .is_ok_and(|result| result.status == Status::Completed)
}

/// The lock file of the run folder named `name`, held while a process runs it.
pub fn run_lock_path(output_dir: &Path, name: &str) -> PathBuf {
    output_dir
        .join(lock::LOCKS_DIR)
        .join(format!("{name}.lock"))
}

/// A completed run in a job's folder, and whether it ran the configuration asked for now.
pub struct CompletedRun {
    pub folder: PathBuf,
    pub result: RunResult,
    /// Its `config.yaml` is the job's configuration, speed switches aside.
    pub same_configuration: bool,
}

/// The completed run in `cfg`'s folder, if the folder holds one (read without its lock: the
/// answer can change at once, and [`RunStore::open`] checks again under the lock).
pub fn completed_run(cfg: &JobConfig) -> Option<CompletedRun> {
    let folder = RunStore::folder_of(cfg);
    let result = read_result(&folder.join(RESULT_FILE)).ok()?;
    if result.status != Status::Completed {
        return None;
    }
    let same_configuration = read_config(&folder).is_some_and(|saved| saved.same_run_as(cfg));
    Some(CompletedRun {
        folder,
        result,
        same_configuration,
    })
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
    /// `<method>_<dataset>_<mode>_<model>_seed<seed>` ([`RunName`]).
    pub fn folder_name(cfg: &JobConfig) -> String {
        RunName::of(cfg).to_string()
    }

    /// The run folder of `cfg`: its output folder and [`RunStore::folder_name`].
    pub fn folder_of(cfg: &JobConfig) -> PathBuf {
        cfg.output_dir.join(Self::folder_name(cfg))
    }

    /// The run folder of `student`'s teacher `teacher`: the same output folder, model and seed.
    pub fn teacher_folder(student: &JobConfig, teacher: &JobName) -> PathBuf {
        let name = RunName {
            job: *teacher,
            ..RunName::of(student)
        };
        student.output_dir.join(name.to_string())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// Opens the job's folder. An unfinished run of the identical configuration is resumed unless
    /// `fresh`; any other unfinished run is moved aside, never overwritten. A completed run is
    /// moved aside only when `fresh` asks for it; otherwise opening fails with
    /// [`StoreError::Completed`], so that nothing retrains a finished run unasked.
    pub fn open(cfg: &JobConfig, fresh: bool) -> Result<(RunStore, Opening), StoreError> {
        let name = Self::folder_name(cfg);
        let dir = cfg.output_dir.join(&name);
        let held = lock::ProcessLock::try_acquire(&run_lock_path(&cfg.output_dir, &name)).map_err(
            |source| StoreError::Busy {
                folder: dir.clone(),
                source,
            },
        )?;
        let store = RunStore { dir, _lock: held };
        let completed = read_result(&store.path(RESULT_FILE))
            .is_ok_and(|result| result.status == Status::Completed);
        if completed && !fresh {
            return Err(StoreError::Completed { folder: store.dir });
        }
        let opening =
            if store.dir.join(RESULT_FILE).exists() || store.dir.join(CONFIG_FILE).exists() {
                match store.resumable(cfg, fresh)? {
                    Some((result, point)) => Opening::Resume {
                        result: Box::new(result),
                        point,
                    },
                    None => Opening::Archived(store.archive()?),
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

    /// The unfinished run in the folder to go on with: its configuration is `cfg`'s (speed switches
    /// aside) and it completed an epoch. Its committed point is checked file by file against the
    /// MD5s in `resume.json`: a damaged one is an error naming the file, never loaded and never
    /// silently replaced (`fresh` moves the folder aside instead).
    fn resumable(
        &self,
        cfg: &JobConfig,
        fresh: bool,
    ) -> Result<Option<(RunResult, ResumePoint)>, StoreError> {
        let same_run = read_config(&self.dir).is_some_and(|saved| saved.same_run_as(cfg));
        if fresh || !same_run {
            return Ok(None);
        }
        let point_path = self.path(RESUME_FILE);
        if !self.path(RESULT_FILE).exists() || !point_path.exists() {
            // Killed before its first epoch ended: nothing to go on from.
            return Ok(None);
        }
        let result = self.read_result().map_err(|e| match e {
            StoreError::Corrupt { path, message } => self.damaged(&path, &message),
            other => other,
        })?;
        if result.status == Status::Completed {
            return Ok(None);
        }
        let point: ResumePoint =
            serde_json::from_str(&fs::read_to_string(&point_path).map_err(io_error(&point_path))?)
                .map_err(|e| self.damaged(&point_path, &e.to_string()))?;
        if point.file(PointPart::Weights).is_none() || point.epochs_done > result.epochs_log.len() {
            return Err(self.damaged(&point_path, "it names no weights of a recorded epoch"));
        }
        for (name, md5) in &point.files {
            let path = self.path(name);
            let found =
                crate::data::md5_hex(&path).map_err(|e| self.damaged(&path, &e.to_string()))?;
            if &found != md5 {
                return Err(self.damaged(&path, "its MD5 is not the one resume.json recorded"));
            }
        }
        Ok(Some((result, point)))
    }

    /// A damaged file of an unfinished run, with what the user can do about it.
    fn damaged(&self, path: &Path, problem: &str) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            message: format!(
                "damaged ({problem}); the run cannot go on from it: --fresh starts over and moves {} aside",
                self.dir.display()
            ),
        }
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
        write_result(&self.path(RESULT_FILE), result)
    }

    /// Writes `per-image.json`: before `result.json` says completed, so a completed run with a
    /// final table always has it (docs/run-folder.md#per-imagejson).
    pub fn write_per_image(&self, records: &PerImage) -> Result<(), StoreError> {
        let path = self.path(PER_IMAGE_FILE);
        let text = serde_json::to_string_pretty(records).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomically(&path, text.as_bytes())
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

    /// Writes `tensors` as `part` of the point after `epochs_done` epochs, atomically; returns the
    /// file's name and MD5 for [`RunStore::commit_resume_point`].
    pub fn write_point_part(
        &self,
        part: PointPart,
        epochs_done: usize,
        tensors: &[(String, tch::Tensor)],
    ) -> Result<(String, String), StoreError> {
        let name = part.file_name(epochs_done);
        let path = self.path(&name);
        crate::models::write_tensors(&path, tensors)
            .map_err(|e| StoreError::File(e.to_string()))?;
        let md5 = crate::data::md5_hex(&path).map_err(|e| StoreError::File(e.to_string()))?;
        Ok((name, md5))
    }

    /// Makes `point` the one a rerun goes on from, then removes every other point's files.
    pub fn commit_resume_point(&self, point: &ResumePoint) -> Result<(), StoreError> {
        let text = serde_json::to_string_pretty(point).expect("a resume point always serialises");
        write_atomically(&self.path(RESUME_FILE), text.as_bytes())?;
        self.remove_points_except(&point.files);
        Ok(())
    }

    /// A completed run needs no resume point: its files go (they weigh a model each).
    pub fn remove_resume_point(&self) {
        let _ = fs::remove_file(self.path(RESUME_FILE));
        self.remove_points_except(&BTreeMap::new());
    }

    /// Removes the `resume*.safetensors` files not in `keep`; a file that will not go costs disk only.
    fn remove_points_except(&self, keep: &BTreeMap<String, String>) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("resume")
                && name.ends_with(".safetensors")
                && !keep.contains_key(&name)
            {
                let _ = fs::remove_file(entry.path());
            }
        }
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

/// The `config.yaml` of a run folder, when it has a readable one.
pub fn read_config(folder: &Path) -> Option<JobConfig> {
    let text = fs::read_to_string(folder.join(CONFIG_FILE)).ok()?;
    serde_yaml::from_str(&text).ok()
}

/// The per-image records of the final table in run folder `folder`: None when it has none (no
/// final table yet, none run, or a run from before they were written), an error naming the file
/// when it cannot be read or is damaged.
pub fn read_per_image(folder: &Path) -> Result<Option<PerImage>, StoreError> {
    let path = folder.join(PER_IMAGE_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StoreError::Corrupt {
            path,
            message: e.to_string(),
        })
}

/// Writes a `result.json` atomically.
pub fn write_result(path: &Path, result: &RunResult) -> Result<(), StoreError> {
    let text = serde_json::to_string_pretty(result).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomically(path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_image_records_are_absent_read_back_or_damaged() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_per_image(dir.path()).unwrap(), None);
        let mut records = PerImage::default();
        records.push_batch(2, vec![("clean".into(), vec![true, false])]);
        let text = serde_json::to_string_pretty(&records).unwrap();
        write_atomically(&dir.path().join(PER_IMAGE_FILE), text.as_bytes()).unwrap();
        assert_eq!(read_per_image(dir.path()).unwrap(), Some(records));
        std::fs::write(
            dir.path().join(PER_IMAGE_FILE),
            r#"{"images": 2, "correct": {"clean": "zz"}}"#,
        )
        .unwrap();
        let damaged = read_per_image(dir.path()).unwrap_err().to_string();
        assert!(
            damaged.contains("per-image.json") && damaged.contains("`z` is not a hex digit"),
            "{damaged}"
        );
    }
}
