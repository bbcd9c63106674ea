//! One queued job running in its own `adarat run` process, pinned to a slot's device. A process
//! per job keeps every libtorch object (and its CUDA context, its thread-local modes, its out of
//! memory) inside that job; the worker only starts, watches and signals processes.
use super::queue::Entry;
use crate::store;
use crate::vocab::Status;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;

/// `adarat run`'s exit status after a stop (`cli::exit::ExitStatus::Stopped`).
const STOPPED: i32 = 130;
/// `adarat run`'s exit status when another process runs the job (`cli::exit::ExitStatus::Busy`).
const BUSY: i32 = 75;

pub(super) struct JobProcess {
    pub(super) entry: Entry,
    /// The slot it holds.
    pub(super) slot: Slot,
    folder: PathBuf,
    child: Child,
    /// The threads passing its stdout and stderr on; the stderr one returns the last line, the
    /// reason when the job fails before having a run folder.
    stdout: Option<JoinHandle<Option<String>>>,
    stderr: Option<JoinHandle<Option<String>>>,
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
    /// Another process took the run first; this one did nothing.
    Busy,
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
        if entry.fresh {
            command.arg("--fresh");
        }
        if let Some(threads) = slot.threads {
            command.env("OMP_NUM_THREADS", threads.to_string());
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().map(|out| relay(out, entry.label()));
        let stderr = child.stderr.take().map(|err| relay(err, entry.label()));
        Ok(JobProcess {
            entry,
            slot,
            folder,
            child,
            stdout,
            stderr,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the process ended, once it has.
    pub(super) fn ended(&mut self) -> Option<Ending> {
        let status = self.child.try_wait().ok().flatten()?;
        // The pipes closed with the process: the relays pass on the last lines and end.
        let finish =
            |relay: Option<JoinHandle<Option<String>>>| relay.and_then(|r| r.join().ok()).flatten();
        finish(self.stdout.take());
        let last_line = finish(self.stderr.take());
        Some(self.ending(status, last_line))
    }

    /// Asks the job to stop at its next batch boundary, as the console's `x` does.
    pub(super) fn stop(&self) {
        let _ = crate::native::posix::terminate(self.pid());
    }

    fn ending(&self, status: ExitStatus, last_line: Option<String>) -> Ending {
        match status.code() {
            Some(0) => return Ending::Completed,
            Some(STOPPED) => return Ending::Stopped,
            Some(BUSY) => return Ending::Busy,
            _ => {}
        }
        if let Some(reason) = self.recorded_failure() {
            return Ending::Failed(reason);
        }
        // Killed before it could say why (the kernel's out-of-memory killer, a SIGKILL): the signal
        // is the reason, in result.json when the run has one by then, else in the queue file.
        if status.code().is_none() {
            let killed = format!("adarat run ended: {status}");
            return match mark_failed(&self.folder, killed.clone()) {
                true => Ending::Failed(killed),
                false => Ending::FailedWithoutFolder(killed),
            };
        }
        let reason =
            last_line.map(|line| line.strip_prefix("adarat: ").unwrap_or(&line).to_string());
        Ending::FailedWithoutFolder(
            reason.unwrap_or_else(|| format!("adarat run ended with {status}")),
        )
    }

    /// The reason `result.json` gives, when it says the run failed.
    fn recorded_failure(&self) -> Option<String> {
        let result = store::read_result(&self.folder.join(store::RESULT_FILE)).ok()?;
        (result.status == Status::Failed).then(|| result.error.unwrap_or_default())
    }
}

/// Passes a job's output on, line by line, after its name; returns its last non-empty line.
fn relay(stream: impl Read + Send + 'static, job: String) -> JoinHandle<Option<String>> {
    std::thread::spawn(move || {
        let mut last = None;
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            // `adarat run` names the job on most lines itself.
            if line.starts_with(&format!("{job}: ")) {
                println!("{line}");
            } else {
                println!("{job}: {line}");
            }
            if !line.trim().is_empty() {
                last = Some(line);
            }
        }
        last
    })
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
    store::write_result(&path, &result).is_ok()
}
