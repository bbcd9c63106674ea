//! Who is running what: a process holds an exclusive lock on a small file for as long as it runs a
//! job (or the queue), and writes its pid into it. The kernel drops the lock when the process dies,
//! however it dies, so a lock is never stale. Open-file-description locks are used because they
//! also exclude a second holder inside the same process.
use crate::native::posix::{self, Lock, Locked};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Locks live together in one hidden folder of the output folder, outside the run folders (which
/// are renamed when archived).
pub const LOCKS_DIR: &str = ".locks";

/// The lock file of a run folder named `name`.
pub fn run_lock_path(output_dir: &Path, name: &str) -> PathBuf {
    output_dir.join(LOCKS_DIR).join(format!("{name}.lock"))
}

/// Whether a lock is held, and by which process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    Free,
    /// Held; the pid is None for the instant between taking the lock and writing the pid.
    Held(Option<u32>),
}

#[derive(thiserror::Error, Debug)]
pub enum LockError {
    #[error("already running in process {}", .0.map_or("?".to_string(), |p| p.to_string()))]
    Held(Option<u32>),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// An exclusive lock held until dropped (or until the process ends).
#[derive(Debug)]
pub struct ProcessLock {
    _file: File,
}

impl ProcessLock {
    /// Takes the lock at `path` without waiting and records this process's pid in it.
    pub fn try_acquire(path: &Path) -> Result<ProcessLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = open(path).map_err(io)?;
        if posix::lock(&file, Lock::Try).map_err(io)? == Locked::Held {
            return Err(LockError::Held(read_pid(&file)));
        }
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(io)?;
        Ok(ProcessLock { _file: file })
    }

    /// Waits for the lock at `path` (for short critical sections such as editing the queue).
    pub fn acquire_waiting(path: &Path) -> Result<ProcessLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = open(path).map_err(io)?;
        loop {
            match posix::lock(&file, Lock::Wait) {
                Ok(_) => return Ok(ProcessLock { _file: file }),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(io(error)),
            }
        }
    }
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

fn read_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Who holds the lock at `path`, without taking it.
pub fn holder(path: &Path) -> Holder {
    let Ok(file) = File::open(path) else {
        return Holder::Free;
    };
    match posix::lock(&file, Lock::Query) {
        Ok(Locked::Held) => Holder::Held(read_pid(&file)),
        _ => Holder::Free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_excludes_a_second_holder_and_names_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCKS_DIR).join("job.lock");
        assert_eq!(holder(&path), Holder::Free);
        let lock = ProcessLock::try_acquire(&path).unwrap();
        let me = Some(std::process::id());
        assert_eq!(holder(&path), Holder::Held(me));
        assert!(matches!(
            ProcessLock::try_acquire(&path),
            Err(LockError::Held(pid)) if pid == me
        ));
        drop(lock);
        assert_eq!(holder(&path), Holder::Free);
        ProcessLock::try_acquire(&path).unwrap();
    }
}
