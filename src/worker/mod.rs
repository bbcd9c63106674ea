//! The queue worker: a detached process (`adarat worker`) that runs the queue's jobs one at a time,
//! so jobs go on when the console that queued them closes or loses its terminal. It owns every tch
//! object on its one thread; the console learns what it does from the output folder (run folders,
//! the queue file, locks) and talks back through the queue file and SIGTERM.
pub mod queue;

use crate::config::{self, JobConfig, JobOverrides};
use crate::store::events::Observer;
use crate::store::lock::{self, Holder, LockError, ProcessLock, LOCKS_DIR};
use crate::store::{self, RunStore, StoreError};
use crate::train::{self, RunError, RunOptions, StopFlag};
use crate::vocab::{JobName, Status};
use queue::Entry;
use std::fs::OpenOptions;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The worker's own output (its jobs' progress lines and failures), in the output folder.
pub const WORKER_LOG: &str = "worker.log";

pub fn worker_lock_path(output_dir: &Path) -> PathBuf {
    output_dir.join(LOCKS_DIR).join("worker.lock")
}

/// The pid of the worker serving `output_dir`'s queue, if one is alive.
pub fn worker_pid(output_dir: &Path) -> Option<Option<u32>> {
    match lock::holder(&worker_lock_path(output_dir)) {
        Holder::Free => None,
        Holder::Held(pid) => Some(pid),
    }
}

/// Why the worker could not serve the queue, or could not be started.
#[derive(thiserror::Error, Debug)]
pub enum WorkerError {
    #[error(transparent)]
    Queue(#[from] queue::QueueError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("finding adarat's binary: {0}")]
    Executable(std::io::Error),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("starting the worker: {0}")]
    Spawn(std::io::Error),
}

/// Runs queued jobs one at a time until the queue is empty or paused, or a stop is requested (the
/// running job stops resumably and the queue pauses). Returns at once when another worker already
/// serves this output folder.
pub fn serve(
    output_dir: &Path,
    stop: &StopFlag,
    observer: &mut dyn Observer,
) -> Result<(), WorkerError> {
    let mut held = match ProcessLock::try_acquire(&worker_lock_path(output_dir)) {
        Ok(lock) => Some(lock),
        Err(LockError::Held(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    while !stop.requested() {
        // The lock is given up under the queue's lock, so a console that queues a job right now
        // either sees this worker take it or sees no worker and starts one.
        let next = queue::modify(output_dir, |q| {
            if q.paused || q.jobs.is_empty() {
                held = None;
                None
            } else {
                Some(q.jobs.remove(0))
            }
        })?;
        let Some(entry) = next else {
            return Ok(());
        };
        println!("{}: starting", entry.job);
        match run_entry(&entry, output_dir, stop, observer) {
            Ok(()) => println!("{}: completed", entry.job),
            Err(Ending::Stopped(message)) => {
                println!("{}: {message}", entry.job);
                break;
            }
            Err(Ending::Failed(message)) => {
                println!("{}: failed: {message}", entry.job);
            }
            Err(Ending::FailedWithoutFolder(message)) => {
                println!("{}: failed: {message}", entry.job);
                queue::modify(output_dir, |q| q.record_failure(&entry.job, message))?;
            }
        }
    }
    queue::modify(output_dir, |q| q.paused = true)?;
    println!("stopped; the queue is paused");
    Ok(())
}

/// How a job ended when it did not complete.
enum Ending {
    Stopped(String),
    /// Its `result.json` says so.
    Failed(String),
    /// Nothing in a run folder says so: the queue file records it.
    FailedWithoutFolder(String),
}

/// The entry's job resolved from its study, and the teachers it still lacks (KD-AT, IAD).
fn resolve(entry: &Entry, output_dir: &Path) -> Result<(JobConfig, Vec<JobConfig>), String> {
    let study = config::open(entry.config.as_deref(), &entry.sets).map_err(|e| e.to_string())?;
    let job = entry.job.parse::<JobName>().map_err(|e| e.to_string())?;
    let overrides = JobOverrides {
        output_dir: Some(output_dir.to_path_buf()),
        ..Default::default()
    };
    let cfg = study.resolve(&job, &overrides).map_err(|e| e.to_string())?;
    let teachers = crate::plan::missing_teachers(&study, &cfg, &overrides)?;
    Ok((cfg, teachers))
}

/// Runs the entry's missing teachers in turn (docs/protocol.md#teachers-of-kd-at-and-iad), then its job. A teacher
/// waiting in the queue with the same configuration is taken out of it, and one running in another
/// process is waited for, so no teacher runs twice. When a stop ends a teacher, the entry goes
/// back to the head of the queue.
fn run_entry(
    entry: &Entry,
    output_dir: &Path,
    stop: &StopFlag,
    observer: &mut dyn Observer,
) -> Result<(), Ending> {
    let (cfg, teachers) =
        resolve(entry, output_dir).map_err(|e| Ending::FailedWithoutFolder(e.to_string()))?;
    for teacher in &teachers {
        let ran = take_teacher(entry, teacher, output_dir, stop).and_then(|()| {
            if store::holds_completed_run(&RunStore::folder_of(teacher)) {
                return Ok(());
            }
            println!("{}: first its teacher {}", entry.job, teacher.job);
            run_config(teacher, stop, observer)
        });
        match ran {
            Ok(()) => {}
            Err(Ending::Stopped(message)) => {
                queue::modify(output_dir, |q| {
                    if !q.contains(&entry.job) {
                        q.jobs.insert(0, entry.clone());
                    }
                })
                .map_err(|e| Ending::FailedWithoutFolder(e.to_string()))?;
                return Err(Ending::Stopped(message));
            }
            Err(Ending::Failed(message) | Ending::FailedWithoutFolder(message)) => {
                return Err(Ending::FailedWithoutFolder(format!(
                    "its teacher {} did not complete: {message}",
                    teacher.job
                )));
            }
        }
    }
    run_config(&cfg, stop, observer)
}

/// Takes `teacher` out of the queue when it waits there with the entry's configuration, then
/// waits while another process runs it.
fn take_teacher(
    entry: &Entry,
    teacher: &JobConfig,
    output_dir: &Path,
    stop: &StopFlag,
) -> Result<(), Ending> {
    queue::modify(output_dir, |q| {
        q.jobs
            .retain(|e| !(e.job == teacher.job && e.config == entry.config && e.sets == entry.sets))
    })
    .map_err(|e| Ending::FailedWithoutFolder(e.to_string()))?;
    let lock = lock::run_lock_path(&teacher.output_dir, &RunStore::folder_name(teacher));
    let mut announced = false;
    while let Holder::Held(pid) = lock::holder(&lock) {
        if stop.requested() {
            return Err(Ending::Stopped(format!(
                "stopped while waiting for its teacher {}",
                teacher.job
            )));
        }
        if !announced {
            let pid = pid.map_or("?".to_string(), |p| p.to_string());
            println!(
                "{}: waiting for its teacher {}, running in process {pid}",
                entry.job, teacher.job
            );
            announced = true;
        }
        std::thread::sleep(TEACHER_POLL);
    }
    Ok(())
}

/// How often a job waiting for a teacher that another process runs looks again.
const TEACHER_POLL: std::time::Duration = std::time::Duration::from_millis(500);

fn run_config(cfg: &JobConfig, stop: &StopFlag, observer: &mut dyn Observer) -> Result<(), Ending> {
    let options = RunOptions {
        fresh: false,
        download: true,
        progress: false,
        stop: stop.clone(),
    };
    // A panic inside libtorch (CUDA out of memory, say) ends this job, not the queue.
    let outcome = catch_unwind(AssertUnwindSafe(|| train::run(cfg, options, observer)));
    let folder = RunStore::folder_of(cfg);
    match outcome {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(RunError::Stopped(point))) => Err(Ending::Stopped(point.to_string())),
        Ok(Err(RunError::Failed(failure))) => Err(Ending::Failed(failure.to_string())),
        Ok(Err(RunError::Input(error))) => Err(Ending::FailedWithoutFolder(error.to_string())),
        Ok(Err(RunError::Store(error @ StoreError::Busy { .. }))) => {
            Err(Ending::FailedWithoutFolder(error.to_string()))
        }
        Ok(Err(RunError::Store(error))) => Err(mark_failed(&folder, error.to_string())),
        Err(panic) => Err(mark_failed(
            &folder,
            crate::torch_error::panic_message(panic.as_ref()),
        )),
    }
}

/// Records a failure in the run's `result.json` when it has one still marked running.
fn mark_failed(folder: &Path, message: String) -> Ending {
    let path = folder.join(store::RESULT_FILE);
    match store::read_result(&path) {
        Ok(mut result) if result.status == Status::Running => {
            result.status = Status::Failed;
            result.error = Some(message.clone());
            let written = serde_json::to_string_pretty(&result)
                .map_err(|e| e.to_string())
                .and_then(|text| {
                    store::write_atomically(&path, text.as_bytes()).map_err(|e| e.to_string())
                });
            match written {
                Ok(()) => Ending::Failed(message),
                Err(_) => Ending::FailedWithoutFolder(message),
            }
        }
        _ => Ending::FailedWithoutFolder(message),
    }
}

/// Starts a worker for `output_dir` in its own session (no terminal, so no SIGHUP reaches it), its
/// output appended to `worker.log`, unless one is alive already.
pub fn ensure_running(output_dir: &Path) -> Result<(), WorkerError> {
    if worker_pid(output_dir).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(WorkerError::Executable)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| WorkerError::Io { path, source }
    };
    std::fs::create_dir_all(output_dir).map_err(io(output_dir))?;
    let log_path = output_dir.join(WORKER_LOG);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(&log_path))?;
    let log_err = log.try_clone().map_err(io(&log_path))?;
    let mut command = Command::new(exe);
    command
        .arg("worker")
        .arg("--output")
        .arg(output_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    crate::native::posix::in_new_session(&mut command);
    let mut child = command.spawn().map_err(WorkerError::Spawn)?;
    // Reaped here so it never lingers as a zombie while the console runs.
    std::thread::spawn(move || child.wait());
    Ok(())
}
