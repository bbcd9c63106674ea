//! One queued job running in its own `adarat run` process, pinned to a slot's device. A process
//! per job keeps every libtorch object (and its CUDA context, its thread-local modes, its out of
//! memory) inside that job; the worker only starts, watches and signals processes.
use super::queue::Entry;
use crate::store;
use crate::vocab::Status;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

/// `adarat run`'s exit status after a stop (`cli::exit::ExitStatus::Stopped`).
const STOPPED: i32 = 130;

pub(super) struct JobProcess {
    pub(super) entry: Entry,
    /// The slot it holds.
    pub(super) slot: Slot,
    folder: PathBuf,
    child: Child,
    /// The last line the job wrote to stderr: the reason when it fails before having a run folder.
    last_error: Arc<Mutex<Option<String>>>,
}

/// A place for one job: an index into the worker's slot list, that slot's device, and for CPU
/// slots sharing the machine, the torch threads the job may use.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Slot {
    pub(super) index: usize,
    pub(super) device: String,
    pub(super) threads: Option<usize>,
}

/// How a job's process ended.
#[derive(Debug, PartialEq)]
pub(super) enum Ending {
    Completed,
    Stopped,
    /// Its `result.json` says why (this is it).
    Failed(String),
    /// No run folder says why: the queue file records it.
    FailedWithoutFolder(String),
}

impl JobProcess {
    /// Starts `adarat run JOB --device DEVICE` on the entry's study and overrides; the job's output
    /// lines go to the worker's own, each after the job's name.
    pub(super) fn start(
        entry: Entry,
        folder: PathBuf,
        slot: Slot,
        output_dir: &Path,
    ) -> std::io::Result<JobProcess> {
        let mut command = Command::new(std::env::current_exe()?);
        command
            .arg("run")
            .arg(&entry.job)
            .arg("--output")
            .arg(output_dir);
        command.arg("--device").arg(&slot.device);
        if let Some(config) = &entry.config {
            command.arg("--config").arg(config);
        }
        for set in &entry.sets {
            command.arg("--set").arg(set);
        }
        if let Some(model) = entry.model {
            command.arg("--model").arg(model.to_string());
        }
        if let Some(seed) = entry.seed {
            command.arg("--seed").arg(seed.to_string());
        }
        if let Some(threads) = slot.threads {
            command.env("OMP_NUM_THREADS", threads.to_string());
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let last_error = Arc::new(Mutex::new(None));
        if let Some(stdout) = child.stdout.take() {
            relay(stdout, entry.job.clone(), None);
        }
        if let Some(stderr) = child.stderr.take() {
            relay(stderr, entry.job.clone(), Some(last_error.clone()));
        }
        Ok(JobProcess {
            entry,
            slot,
            folder,
            child,
            last_error,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, once it has.
    pub(super) fn ended(&mut self) -> Option<Ending> {
        let status = self.child.try_wait().ok().flatten()?;
        // The relays end with the pipes; give them a moment to pass on the last lines.
        std::thread::sleep(std::time::Duration::from_millis(50));
        Some(self.ending(status))
    }

    /// Asks the job to stop at its next batch boundary, as the console's `x` does.
    pub(super) fn stop(&self) {
        let _ = crate::native::posix::terminate(self.pid());
    }

    fn ending(&self, status: ExitStatus) -> Ending {
        let last_error = || {
            let line = self.last_error.lock().ok().and_then(|l| l.clone());
            line.unwrap_or_else(|| format!("adarat run ended with {status}"))
        };
        match status.code() {
            Some(0) => Ending::Completed,
            Some(STOPPED) => Ending::Stopped,
            _ if self.recorded_failure().is_some() => {
                Ending::Failed(self.recorded_failure().unwrap_or_default())
            }
            // Killed before it could say why (the kernel's out-of-memory killer, a SIGKILL).
            None if mark_failed(&self.folder, format!("adarat run ended: {status}")) => {
                Ending::Failed(format!("adarat run ended: {status}"))
            }
            _ => Ending::FailedWithoutFolder(last_error()),
        }
    }

    /// The reason `result.json` gives, when it says the run failed.
    fn recorded_failure(&self) -> Option<String> {
        let result = store::read_result(&self.folder.join(store::RESULT_FILE)).ok()?;
        (result.status == Status::Failed).then(|| result.error.unwrap_or_default())
    }
}

/// Passes a job's output on, line by line, after its name; keeps the last line in `last`.
fn relay(
    stream: impl Read + Send + 'static,
    job: String,
    last: Option<Arc<Mutex<Option<String>>>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            // `adarat run` names the job on most lines itself.
            if line.starts_with(&format!("{job}: ")) {
                println!("{line}");
            } else {
                println!("{job}: {line}");
            }
            if let Some(last) = &last {
                if !line.trim().is_empty() {
                    let reason = line.strip_prefix("adarat: ").unwrap_or(&line);
                    if let Ok(mut last) = last.lock() {
                        *last = Some(reason.to_string());
                    }
                }
            }
        }
    });
}

/// Marks a run that still says `running` failed with `message`: its process died without saying
/// so. False when there is no such run to mark.
fn mark_failed(folder: &Path, message: String) -> bool {
    let path = folder.join(store::RESULT_FILE);
    let Ok(mut result) = store::read_result(&path) else {
        return false;
    };
    if result.status != Status::Running {
        return false;
    }
    result.status = Status::Failed;
    result.error = Some(message);
    serde_json::to_string_pretty(&result)
        .is_ok_and(|text| store::write_atomically(&path, text.as_bytes()).is_ok())
}
