//! Who is running what: a process holds an exclusive lock on a small file for as long as it runs a
//! job (or the queue), and records in it who it is ([`LockOwner`]: host, pid, start time, Slurm
//! task). The kernel drops the lock when the process dies, however it dies, so a lock is never
//! stale. Open-file-description locks are used because they also exclude a second holder inside
//! the same process. They work only where the file system carries them; the checks below say so
//! before any job starts, naming the mount (docs/slurm.md#what-the-shared-file-system-must-provide).
mod mounts;

use crate::native::posix::{self, Lock, Locked};
pub use mounts::Mount;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Locks live together in one hidden folder of the folder they guard (the output folder, outside
/// the run folders, which are renamed when archived; the data folder).
pub const LOCKS_DIR: &str = ".locks";

/// Whether a lock is held, and by which process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Holder {
    Free,
    /// Held; the owner is None for the instant between taking the lock and recording who took it.
    Held(Option<LockOwner>),
}

impl Holder {
    /// Who holds it, in words (`process 12 on host node7`, `Slurm task 4_1 (...)`); None when free.
    pub fn who(&self) -> Option<String> {
        match self {
            Holder::Free => None,
            Holder::Held(Some(owner)) => Some(owner.to_string()),
            // The instant between taking the lock and recording who took it.
            Holder::Held(None) => Some("a process".to_string()),
        }
    }
}

/// The process that holds a lock, as it recorded itself in the lock file. A pid alone names a
/// process only on its own host and only while it lives, so the record also says where and when
/// it started: the console signals nothing else (docs/run-folder.md#locks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// None in the lock file of an older adarat, which wrote the bare pid.
    #[serde(default)]
    pub host: Option<String>,
    pub pid: u32,
    #[serde(default)]
    pub started: Option<ProcessStart>,
    /// `<array job>_<array task>`, or the job id outside an array, when it runs under Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_task: Option<String>,
}

/// When a process started: the clock ticks from boot to its start (field 22, `starttime`, of
/// `/proc/<pid>/stat`), and the boot they count from (`/proc/sys/kernel/random/boot_id`), so
/// that neither a pid reused since nor one of an earlier boot matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessStart {
    pub boot_id: String,
    pub ticks: u64,
}

impl ProcessStart {
    /// When process `pid` of this host started; None when there is none.
    pub fn of(pid: u32) -> Option<ProcessStart> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        Some(ProcessStart {
            boot_id: boot_id.trim().to_string(),
            ticks: start_ticks(&stat)?,
        })
    }
}

/// Field 22 of a `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so the fields are counted after the last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    after_name.split_whitespace().nth(22 - 3)?.parse().ok()
}

impl LockOwner {
    /// This process, as it records itself in a lock it takes.
    pub fn this_process() -> LockOwner {
        let pid = std::process::id();
        LockOwner {
            host: posix::hostname().ok(),
            pid,
            started: ProcessStart::of(pid),
            slurm_task: slurm_task(|name| std::env::var(name).ok()),
        }
    }

    /// Whether the owner is a process of this host that is still the one that took the lock (its
    /// pid was not reused since): the only kind of owner a signal may be sent to.
    pub fn is_this_hosts_process(&self) -> bool {
        let here = posix::hostname().ok();
        self.host.is_some()
            && self.host == here
            && self.started.is_some()
            && self.started == ProcessStart::of(self.pid)
    }

    /// The record in a lock file: JSON, or the bare pid an older adarat wrote.
    fn parse(text: &str) -> Option<LockOwner> {
        let text = text.trim();
        if let Ok(pid) = text.parse() {
            return Some(LockOwner {
                host: None,
                pid,
                started: None,
                slurm_task: None,
            });
        }
        serde_json::from_str(text).ok()
    }
}

impl fmt::Display for LockOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let process = match &self.host {
            Some(host) => format!("process {} on host {host}", self.pid),
            None => format!("process {} on an unrecorded host", self.pid),
        };
        match &self.slurm_task {
            Some(task) => write!(f, "Slurm task {task} ({process})"),
            None => f.write_str(&process),
        }
    }
}

/// The Slurm task of a process with environment `var`: the array task adarat submits, else the
/// job.
fn slurm_task(var: impl Fn(&str) -> Option<String>) -> Option<String> {
    match (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        (Some(array), Some(task)) => Some(format!("{array}_{task}")),
        _ => var("SLURM_JOB_ID"),
    }
}

/// Where the docs say what a file system must provide.
const FS_DOC: &str = "docs/slurm.md#what-the-shared-file-system-must-provide";

/// Why a lock was not taken. Boxed fields keep the errors that carry it small.
#[derive(thiserror::Error, Debug)]
pub enum LockError {
    #[error("already running in {}", .0.as_ref().map_or("another process".to_string(), ToString::to_string))]
    Held(Option<Box<LockOwner>>),
    /// The file system refuses the lock call itself (Lustre without `flock`, NFSv3 without a
    /// lock daemon): no lock could ever be taken there.
    #[error("{path}: file locks do not work on {}: {source}; adarat needs them to know who runs what ({FS_DOC})", on_mount(.mount))]
    Unsupported {
        path: PathBuf,
        mount: Option<Box<Mount>>,
        source: std::io::Error,
    },
    /// A network file system mounted so that each client keeps its locks to itself (NFS `nolock`,
    /// Lustre `localflock`): tasks on two hosts could both run one job.
    #[error("{mount} is mounted with `{option}`: its locks are not seen from other hosts, so two Slurm tasks could run one job at once; remount it with shared locks or use another output folder ({FS_DOC})")]
    HostLocal { mount: Box<Mount>, option: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn on_mount(mount: &Option<Box<Mount>>) -> String {
    mount
        .as_ref()
        .map_or("its file system".to_string(), ToString::to_string)
}

/// Whether a failed lock call means that the file system does not carry locks at all.
fn means_no_locks(error: &std::io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOSYS | libc::EOPNOTSUPP | libc::ENOLCK)
    )
}

/// The error of a lock call on `path` that failed.
fn lock_failed(path: &Path, source: std::io::Error) -> LockError {
    if means_no_locks(&source) {
        LockError::Unsupported {
            path: path.to_path_buf(),
            mount: mounts::mount_of(path).map(Box::new),
            source,
        }
    } else {
        LockError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Checks that locks can be taken in `output_dir`'s lock folder, so that a file system without
/// them is one error naming its mount before any job starts (`adarat run`, the worker, the
/// console). It locks a file of its own in the nearest folder of `output/.locks` that exists and
/// removes it: a command refused later leaves nothing behind.
pub fn check_lock_support(output_dir: &Path) -> Result<(), LockError> {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let locks = output_dir.join(LOCKS_DIR);
    let Some(folder) = locks.ancestors().find(|p| p.is_dir()) else {
        return Ok(());
    };
    let probe = folder.join(format!(
        ".lock-probe-{}-{}",
        std::process::id(),
        PROBES.fetch_add(1, Ordering::Relaxed)
    ));
    // A folder that cannot be written to teaches nothing about locks; the command that needs
    // it will say what is wrong.
    let Ok(file) = File::create(&probe) else {
        return Ok(());
    };
    let locked = lock(&file, Lock::Try);
    drop(file);
    let _ = fs::remove_file(&probe);
    match locked {
        Ok(_) => Ok(()),
        Err(error) => Err(lock_failed(&locks, error)),
    }
}

/// [`check_lock_support`], and more for an output folder that processes on several hosts share
/// (`adarat submit`): an NFS mount whose locks stay on each client is refused too. The local
/// worker needs no more than the first: all its processes are on one host.
pub fn check_shared_locking(output_dir: &Path) -> Result<(), LockError> {
    check_lock_support(output_dir)?;
    let Some(mount) = mounts::mount_of(&output_dir.join(LOCKS_DIR)) else {
        return Ok(());
    };
    match mount.host_local_locks() {
        Some(option) => Err(LockError::HostLocal {
            option: option.to_string(),
            mount: Box::new(mount),
        }),
        None => Ok(()),
    }
}

/// An exclusive lock held until dropped (or until the process ends).
#[derive(Debug)]
pub struct ProcessLock {
    _file: File,
}

impl ProcessLock {
    /// Takes the lock at `path` without waiting and records this process in it.
    pub fn try_acquire(path: &Path) -> Result<ProcessLock, LockError> {
        let io = |source| LockError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = open(path).map_err(io)?;
        match lock(&file, Lock::Try) {
            Ok(Locked::Free) => {}
            Ok(Locked::Held) => return Err(LockError::Held(read_owner(&file).map(Box::new))),
            Err(error) => return Err(lock_failed(path, error)),
        }
        let record = serde_json::to_string(&LockOwner::this_process())
            .map_err(|e| io(std::io::Error::other(e)))?;
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(format!("{record}\n").as_bytes())
            .map_err(io)?;
        Ok(ProcessLock { _file: file })
    }

    /// Waits for the lock at `path` (for short critical sections such as editing the queue).
    pub fn acquire_waiting(path: &Path) -> Result<ProcessLock, LockError> {
        let file = open(path).map_err(|source| LockError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        loop {
            match lock(&file, Lock::Wait) {
                Ok(_) => return Ok(ProcessLock { _file: file }),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(lock_failed(path, error)),
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

fn read_owner(mut file: &File) -> Option<LockOwner> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    LockOwner::parse(&text)
}

/// A lock request; under fault injection, one the file system refuses.
fn lock(file: &File, request: Lock) -> std::io::Result<Locked> {
    crate::faults::no_locks()?;
    posix::lock(file, request)
}

/// Who holds the lock at `path`, without taking it.
pub fn holder(path: &Path) -> Holder {
    let Ok(file) = File::open(path) else {
        return Holder::Free;
    };
    match lock(&file, Lock::Query) {
        Ok(Locked::Held) => Holder::Held(read_owner(&file)),
        _ => Holder::Free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(LOCKS_DIR).join(name)
    }

    #[test]
    fn a_lock_excludes_a_second_holder_and_names_this_host_pid_and_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "job.lock");
        assert_eq!(holder(&path), Holder::Free);
        let lock = ProcessLock::try_acquire(&path).unwrap();
        let Holder::Held(Some(owner)) = holder(&path) else {
            panic!("held, with its record");
        };
        assert_eq!(owner.pid, std::process::id());
        assert_eq!(owner.host, Some(posix::hostname().unwrap()));
        assert_eq!(owner.started, ProcessStart::of(std::process::id()));
        assert!(owner.started.is_some());
        assert!(owner.is_this_hosts_process());
        match ProcessLock::try_acquire(&path) {
            Err(error @ LockError::Held(_)) => {
                assert_eq!(error.to_string(), format!("already running in {owner}"),)
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(lock);
        assert_eq!(holder(&path), Holder::Free);
        ProcessLock::try_acquire(&path).unwrap();
    }

    #[test]
    fn the_record_round_trips_and_says_where_the_run_is() {
        let owner = LockOwner {
            host: Some("node7".into()),
            pid: 123,
            started: Some(ProcessStart {
                boot_id: "5a1c-boot".into(),
                ticks: 987_654,
            }),
            slurm_task: None,
        };
        let text = serde_json::to_string(&owner).unwrap();
        assert_eq!(LockOwner::parse(&format!("{text}\n")), Some(owner.clone()));
        assert_eq!(owner.to_string(), "process 123 on host node7");
        assert_eq!(
            LockError::Held(Some(Box::new(owner.clone()))).to_string(),
            "already running in process 123 on host node7"
        );
        let task = LockOwner {
            slurm_task: Some("45_3".into()),
            ..owner
        };
        let text = serde_json::to_string(&task).unwrap();
        assert_eq!(LockOwner::parse(&text), Some(task.clone()));
        assert_eq!(
            LockError::Held(Some(Box::new(task))).to_string(),
            "already running in Slurm task 45_3 (process 123 on host node7)"
        );
        assert_eq!(
            LockError::Held(None).to_string(),
            "already running in another process"
        );
        assert_eq!(LockOwner::parse(""), None);
        assert_eq!(LockOwner::parse("{\"host\":\"no"), None, "half written");
    }

    #[test]
    fn an_old_bare_pid_record_is_a_process_on_an_unknown_host_never_this_ones() {
        let me = std::process::id();
        let old = LockOwner::parse(&format!("{me}\n")).unwrap();
        assert_eq!(old.pid, me);
        assert_eq!(old.host, None);
        assert!(
            !old.is_this_hosts_process(),
            "even naming this very process"
        );
        assert_eq!(
            old.to_string(),
            format!("process {me} on an unrecorded host")
        );
    }

    #[test]
    fn another_host_or_another_start_is_not_this_hosts_process() {
        let me = LockOwner::this_process();
        assert!(me.is_this_hosts_process());
        let elsewhere = LockOwner {
            host: Some(format!("{}-elsewhere", me.host.clone().unwrap())),
            ..me.clone()
        };
        assert!(!elsewhere.is_this_hosts_process());
        let mut reused = me.clone();
        reused.started.as_mut().unwrap().ticks += 1;
        assert!(!reused.is_this_hosts_process());
        let mut other_boot = me.clone();
        other_boot.started.as_mut().unwrap().boot_id.push('x');
        assert!(!other_boot.is_this_hosts_process());
        let unstarted = LockOwner {
            started: None,
            ..me
        };
        assert!(!unstarted.is_this_hosts_process());
    }

    #[test]
    fn the_start_time_is_field_22_whatever_the_command_name_holds() {
        let fields: Vec<String> = (3..=30).map(|n| format!("{n}0")).collect();
        let stat = format!("4242 (a) b (c)) {}\n", fields.join(" "));
        assert_eq!(start_ticks(&stat), Some(220));
        assert_eq!(start_ticks("4242 (short) S 1 2"), None);
    }

    #[test]
    fn the_slurm_task_is_the_array_task_else_the_job() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                (vars.iter())
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let array = env(&[
            ("SLURM_JOB_ID", "48"),
            ("SLURM_ARRAY_JOB_ID", "45"),
            ("SLURM_ARRAY_TASK_ID", "3"),
        ]);
        assert_eq!(slurm_task(array).as_deref(), Some("45_3"));
        assert_eq!(
            slurm_task(env(&[("SLURM_JOB_ID", "48")])).as_deref(),
            Some("48")
        );
        assert_eq!(slurm_task(env(&[])), None);
    }

    #[test]
    fn lock_calls_the_file_system_refuses_name_its_mount() {
        let dir = tempfile::tempdir().unwrap();
        let path = lock_path(dir.path(), "job.lock");
        for code in [libc::ENOSYS, libc::EOPNOTSUPP, libc::ENOLCK] {
            let error = lock_failed(&path, std::io::Error::from_raw_os_error(code));
            let LockError::Unsupported { mount, .. } = &error else {
                panic!("{code}: expected Unsupported, got {error:?}");
            };
            let mount = mount.as_ref().expect("the temporary folder's mount");
            let message = error.to_string();
            assert!(message.contains("file locks do not work on"), "{message}");
            assert!(message.contains(&mount.to_string()), "{message}");
        }
        for code in [libc::EIO, libc::EBADF, libc::EINVAL] {
            let error = lock_failed(&path, std::io::Error::from_raw_os_error(code));
            assert!(matches!(error, LockError::Io { .. }), "{code}: {error:?}");
        }
    }

    #[test]
    fn a_local_folder_passes_both_checks_which_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let entries = |folder: &Path| fs::read_dir(folder).unwrap().count();
        let output = dir.path().join("output");
        check_lock_support(&output).unwrap();
        check_shared_locking(&output).unwrap();
        assert_eq!(entries(dir.path()), 0, "the output folder is not made");
        let _running = ProcessLock::try_acquire(&lock_path(&output, "job.lock")).unwrap();
        check_lock_support(&output).unwrap();
        check_shared_locking(&output).unwrap();
        assert_eq!(entries(&output.join(LOCKS_DIR)), 1, "only the job's lock");
    }
}
