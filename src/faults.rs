//! Fault injection for the reliability tests, compiled in only with the `fault-injection` feature
//! (`make test` turns it on; a release build ignores these variables), and driven by environment
//! variables, so that the tests can fail a write or kill a run at an exact point:
//! - `ADARAT_FAULT_FULL_DISK=PREFIX`: writing a file whose name starts with PREFIX fails as on a full
//!   disk (ENOSPC);
//! - `ADARAT_FAULT_KILL_AFTER_EPOCH=N`: the process kills itself with SIGKILL right after epoch N's
//!   resume point is committed, as `kill -9` would;
//! - `ADARAT_FAULT_OUT_OF_MEMORY=POINT`: once per process, the first training batch asks libtorch for
//!   more memory than any machine has, which fails inside libtorch as a GPU's out-of-memory does, at
//!   POINT: `batch` (before the step), `autocast` (inside the step's autocast region) or `optimizer`
//!   (inside the SGD update, with gradients off). `POINT@WORD,WORD...` injects only in a process
//!   whose command line holds every WORD as an argument: one job of the queue worker, whose jobs
//!   each run in their own process (`batch@pgd-at/synthetic/adarat`), or one seed's task on Slurm
//!   (`batch@st/synthetic/baseline,2`);
//! - `ADARAT_FAULT_NO_LOCKS=1`: every lock call fails with ENOSYS, as on Lustre mounted without
//!   `flock`;
//! - `ADARAT_FAULT_MOUNTINFO=FILE`: the mount table is read from FILE instead of
//!   `/proc/self/mountinfo`, so that a folder can seem to be on an NFS mount with `nolock`.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use tch::{Device, Kind, Tensor};

/// An injected full disk for `path`, if the environment asks for one.
pub fn full_disk(path: &Path) -> std::io::Result<()> {
    if !cfg!(feature = "fault-injection") {
        return Ok(());
    }
    let Some(prefix) = std::env::var_os("ADARAT_FAULT_FULL_DISK") else {
        return Ok(());
    };
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match name {
        Some(name) if name.starts_with(&*prefix.to_string_lossy()) => {
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        }
        _ => Ok(()),
    }
}

/// An injected lock call that the file system refuses, if the environment asks for one.
pub fn no_locks() -> std::io::Result<()> {
    if cfg!(feature = "fault-injection") && std::env::var_os("ADARAT_FAULT_NO_LOCKS").is_some() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOSYS));
    }
    Ok(())
}

/// The mount table to read, `/proc/self/mountinfo` unless the environment names another.
pub fn mountinfo() -> PathBuf {
    let injected =
        std::env::var_os("ADARAT_FAULT_MOUNTINFO").filter(|_| cfg!(feature = "fault-injection"));
    injected.map_or_else(|| PathBuf::from("/proc/self/mountinfo"), PathBuf::from)
}

/// Dies here, without any cleanup, if the environment asks for it after `epoch`.
pub fn kill_after_epoch(epoch: usize) {
    if !cfg!(feature = "fault-injection") {
        return;
    }
    let asked = std::env::var("ADARAT_FAULT_KILL_AFTER_EPOCH").ok();
    if asked.and_then(|n| n.parse::<usize>().ok()) == Some(epoch) {
        crate::native::posix::kill_self();
    }
}

/// Where in a training step an injected out-of-memory error happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepPoint {
    Batch,
    Autocast,
    Optimizer,
}

impl StepPoint {
    fn name(self) -> &'static str {
        match self {
            StepPoint::Batch => "batch",
            StepPoint::Autocast => "autocast",
            StepPoint::Optimizer => "optimizer",
        }
    }
}

/// Whether the first training step of this process went by the point the environment names: the
/// injected error happens there or never, so the next job of a queue runs normally.
static FIRST_STEP_PASSED: [AtomicBool; 3] = [
    AtomicBool::new(false),
    AtomicBool::new(false),
    AtomicBool::new(false),
];

/// Fails inside libtorch at `point`, as an allocation beyond the device's memory does, if the
/// environment asks for it there.
pub fn out_of_memory(point: StepPoint, device: Device) {
    if !cfg!(feature = "fault-injection") {
        return;
    }
    if !FIRST_STEP_PASSED[point as usize].swap(true, Ordering::Relaxed)
        && std::env::var("ADARAT_FAULT_OUT_OF_MEMORY").is_ok_and(|asked| {
            let (asked, job) = asked
                .split_once('@')
                .map_or((asked.as_str(), None), |(p, j)| (p, Some(j)));
            asked == point.name()
                && job.is_none_or(|words| {
                    (words.split(',')).all(|word| std::env::args().any(|arg| arg == word))
                })
        })
    {
        let _ = Tensor::empty([1i64 << 50], (Kind::Float, device));
    }
}
