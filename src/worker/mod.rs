//! The queue worker: a detached process (`adarat worker`) that runs the queue's jobs, as many at
//! once as the queue's placement has slots (devices × jobs per device), so jobs go on when the
//! console that queued them closes or loses its terminal. Each job runs in its own `adarat run`
//! process pinned to its slot's device ([`job_process`]); the worker itself holds no tch object. The
//! console learns what happens from the output folder (run folders, the queue file, locks) and
//! talks back through the queue file and SIGTERM (docs/architecture.md#processes-and-who-owns-what).
mod job_process;
pub mod queue;
mod schedule;

use crate::lock::{self, Holder, LockError, ProcessLock, LOCKS_DIR};
use crate::train::StopFlag;
use job_process::{Ending, JobProcess, Slot};
use schedule::Readiness;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The worker's own output (its jobs' output lines and how each ended), in the output folder.
pub const WORKER_LOG: &str = "worker.log";

pub fn worker_lock_path(output_dir: &Path) -> PathBuf {
    output_dir.join(LOCKS_DIR).join("worker.lock")
}

/// The pid of the worker serving `output_dir`'s queue, if one is alive.
pub fn worker_pid(output_dir: &Path) -> Option<Option<u32>> {
    match lock::holder(&worker_lock_path(output_dir)) {
        Holder::Free => None,
        Holder::Held(owner) => Some(owner.map(|o| o.pid)),
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

/// How often the worker looks at its jobs and the queue.
const POLL: Duration = Duration::from_millis(250);

/// Runs queued jobs, each on a free slot once its teachers have completed, until nothing is left
/// that can run. A job that stops pauses the queue (nothing new starts; the others go on); a stop
/// requested of the worker stops every job resumably and pauses the queue. Returns at once when
/// another worker already serves this output folder.
pub fn serve(output_dir: &Path, stop: &StopFlag) -> Result<(), WorkerError> {
    let mut held = match ProcessLock::try_acquire(&worker_lock_path(output_dir)) {
        Ok(lock) => Some(lock),
        Err(LockError::Held(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    // Asked once: the count of CUDA devices does not change under a running process.
    let cuda_devices = usize::try_from(tch::Cuda::device_count()).unwrap_or(0);
    let mut running: Vec<JobProcess> = Vec::new();
    let mut stopping = false;
    // The damaged-queue notice last written to the log, so that it is written once.
    let mut noticed: Option<String> = None;
    loop {
        let mut pause = false;
        let mut failures = Vec::new();
        let mut put_back = Vec::new();
        let mut completed = Vec::new();
        running.retain_mut(|job| match job.ended() {
            None => true,
            Some(ending) => {
                let name = job.entry.label();
                match ending {
                    Ending::Completed => {
                        println!("{name}: completed");
                        completed.push(job.entry.clone());
                    }
                    Ending::Stopped => {
                        println!("{name}: stopped");
                        pause = true;
                    }
                    Ending::Failed(message) => println!("{name}: failed: {message}"),
                    // Another process took the run between the look at its lock and the start:
                    // it waits in the queue until that one ends.
                    Ending::Busy => {
                        println!("{name}: runs in another process; it waits in the queue");
                        put_back.push(job.entry.clone());
                    }
                    // Stopped before it could install its handlers: it never started, so it
                    // waits again at the head of the queue.
                    Ending::FailedWithoutFolder(_) if stopping => {
                        println!("{name}: stopped before it started");
                        put_back.push(job.entry.clone());
                    }
                    Ending::FailedWithoutFolder(message) => {
                        println!("{name}: failed: {message}");
                        failures.push((job.entry.clone(), message));
                    }
                }
                false
            }
        });
        if stop.requested() && !stopping {
            stopping = true;
            running.iter().for_each(JobProcess::stop);
        }
        let mut started: Vec<(String, Option<u64>)> =
            running.iter().map(|job| job.entry.run()).collect();
        let busy: Vec<usize> = running.iter().map(|job| job.slot.index).collect();
        let to_start = queue::modify(output_dir, |q| {
            if let Some(notice) = q.notice.as_ref().filter(|n| noticed.as_ref() != Some(n)) {
                println!("{notice}");
                noticed = Some(notice.clone());
            }
            for (entry, message) in failures {
                q.record_failure(&entry, message);
            }
            // A failure recorded before (a duplicate start, a missing dataset) is stale now.
            for entry in completed {
                q.forget_failure(&entry.job, entry.seed);
            }
            for entry in put_back {
                if !q.contains(&entry.job, entry.seed) {
                    q.jobs.insert(0, entry);
                }
            }
            q.paused |= pause || stopping;
            let free = free_slots(&q.placement.slots(cuda_devices), &busy);
            let (to_start, on_its_way) = if q.paused {
                (Vec::new(), false)
            } else {
                pick(q, &mut started, free, output_dir)
            };
            // The lock is given up under the queue's lock, so a console that queues a job right
            // now either sees this worker take it or sees no worker and starts one.
            if to_start.is_empty() && started.is_empty() && !on_its_way {
                held = None;
            }
            to_start
        })?;
        if held.is_none() {
            if stopping {
                println!("stopped; the queue is paused");
            }
            return Ok(());
        }
        for Start {
            entry,
            folder,
            slot,
        } in to_start
        {
            println!("{}: starting on {}", entry.label(), slot.device);
            match JobProcess::start(entry.clone(), folder, slot, output_dir) {
                Ok(job) => running.push(job),
                Err(e) => {
                    let message = format!("starting adarat run: {e}");
                    println!("{}: failed: {message}", entry.label());
                    queue::modify(output_dir, |q| q.record_failure(&entry, message))?;
                }
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The slots no running job holds.
fn free_slots(devices: &[String], busy: &[usize]) -> Vec<Slot> {
    let threads = cpu_threads(devices);
    (devices.iter().enumerate())
        .filter(|(index, _)| !busy.contains(index))
        .map(|(index, device)| Slot {
            index,
            device: device.clone(),
            threads: threads.filter(|_| device == "cpu"),
        })
        .collect()
}

/// Torch threads for each job of several CPU slots: the cores shared out, since jobs that each
/// take every core spin against each other (README, "More than one GPU": 4 synthetic jobs on 2
/// cores took 75 s on 2 slots that way, 30 s with one core each, 35 s on one slot). None when one
/// CPU slot (or none) leaves libtorch its default, or when `OMP_NUM_THREADS` says what the user wants.
fn cpu_threads(devices: &[String]) -> Option<usize> {
    let cpu_slots = devices.iter().filter(|d| *d == "cpu").count();
    if cpu_slots < 2 || std::env::var_os("OMP_NUM_THREADS").is_some() {
        return None;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Some((cores / cpu_slots).max(1))
}

/// A job the worker is about to start: its queue entry, its run folder and its slot.
struct Start {
    entry: queue::Entry,
    folder: PathBuf,
    slot: Slot,
}

/// Takes the entries that can start (up to one per free slot) out of the queue, in queue order,
/// queues the teachers students lack, records why the others wait, and drops (as failures)
/// entries that cannot run at all. Also says whether any entry waits for a teacher that is on its
/// way, so the worker stays for it.
fn pick(
    q: &mut queue::Queue,
    started: &mut Vec<(String, Option<u64>)>,
    mut free: Vec<Slot>,
    output_dir: &Path,
) -> (Vec<Start>, bool) {
    let mut to_start = Vec::new();
    let mut on_its_way = false;
    let mut inserted: Vec<(String, Option<u64>)> = Vec::new();
    let mut studies = schedule::Studies::default();
    // An entry without a seed (an older console, a hand-written queue) runs with its study's seed:
    // the file says so from now on, so that every comparison below is between explicit seeds.
    for entry in q.jobs.iter_mut().filter(|e| e.seed.is_none()) {
        if let Ok(study) = studies.of(entry) {
            entry.seed = Some(study.seed());
        }
    }
    let mut index = 0;
    while index < q.jobs.len() {
        let entry = q.jobs[index].clone();
        match schedule::readiness(&entry, q, started, &mut studies, output_dir) {
            Readiness::Ready(folder) => {
                q.jobs[index].waiting = None;
                if !free.is_empty() {
                    q.jobs.remove(index);
                    started.push(entry.run());
                    let slot = free.remove(0);
                    to_start.push(Start {
                        entry,
                        folder,
                        slot,
                    });
                    continue;
                }
            }
            Readiness::Waiting {
                reason,
                queue_first,
                on_its_way: coming,
            } => {
                on_its_way |= coming;
                q.jobs[index].waiting = Some(reason);
                // The teachers go before their student and are looked at next; each once, so a
                // teacher that cannot run is not queued again and again.
                let new = !queue_first.iter().any(|t| inserted.contains(&t.run()));
                if new && !queue_first.is_empty() {
                    for teacher in queue_first.into_iter().rev() {
                        inserted.push(teacher.run());
                        q.jobs.insert(index, teacher);
                    }
                    continue;
                }
            }
            Readiness::Busy(reason) => {
                // Whatever runs it now leaves a result the user has not seen yet: a rerun asked
                // of the earlier one does not train that one again.
                on_its_way = true;
                q.jobs[index].waiting = Some(reason);
                q.jobs[index].fresh = false;
            }
            Readiness::Done => {
                println!("{}: already completed; not run again", entry.label());
                q.jobs.remove(index);
                q.forget_failure(&entry.job, entry.seed);
                continue;
            }
            Readiness::Invalid(message) => {
                println!("{}: failed: {message}", entry.label());
                q.jobs.remove(index);
                q.record_failure(&entry, message);
                continue;
            }
        }
        index += 1;
    }
    (to_start, on_its_way)
}

/// The runs waiting in `output_dir`'s queue, each with the name of the run folder it will write;
/// an entry that does not resolve (its study gone) is left out.
pub fn queued_runs(output_dir: &Path) -> Result<Vec<(String, queue::Entry)>, queue::QueueError> {
    let mut studies = schedule::Studies::default();
    Ok((queue::read(output_dir)?.jobs.into_iter())
        .filter_map(|entry| {
            let (_, cfg, _) = schedule::resolve_run(&entry, &mut studies, output_dir).ok()?;
            Some((crate::store::RunStore::folder_name(&cfg), entry))
        })
        .collect())
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
