//! Slurm clusters: `adarat submit` writes a batch script and submits it as a job array, one task
//! per job, each task `adarat run`-ning its job into the shared output folder. Slurm queues, places,
//! preempts and accounts; adarat only plans (teachers first), writes the script and records what it
//! submitted (docs/slurm.md).
mod script;
mod settings;
mod status;

pub use settings::{SlurmOptionError, SlurmSettings};
pub use status::poll;

use super::{Request, Scheduler, SchedulerError, Submitted, Task};
use crate::config::JobConfig;
use crate::store::RunStore;
use script::ArrayScript;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The backend's name in `scheduler:`.
pub const NAME: &str = "slurm";
/// The folder under the output folder with the scripts, the tasks' logs and the record.
pub const SLURM_DIR: &str = "slurm";
/// One line per submitted array, appended.
pub const SUBMISSIONS_FILE: &str = "submissions.jsonl";

/// The Slurm backend with its settings (`scheduler: {slurm: …}`).
pub struct Slurm {
    settings: SlurmSettings,
}

impl Slurm {
    /// Reads and checks its settings, refusing any value that is not in Slurm's syntax.
    pub fn new(settings: serde_yaml::Value) -> Result<Slurm, SchedulerError> {
        let refuse = |message: String| SchedulerError::Settings {
            backend: NAME.to_string(),
            message,
        };
        let settings: SlurmSettings =
            serde_yaml::from_value(settings).map_err(|e| refuse(e.to_string()))?;
        settings
            .check()
            .map_err(|e| SchedulerError::Refused(e.to_string()))?;
        Ok(Slurm { settings })
    }
}

impl Scheduler for Slurm {
    fn name(&self) -> &'static str {
        NAME
    }

    fn label(&self) -> &'static str {
        "Slurm"
    }

    fn check(&self, output_dir: &Path) -> Result<(), SchedulerError> {
        // Tasks on several hosts share the output folder: its locks must hold across them.
        Ok(crate::lock::check_shared_locking(output_dir)?)
    }

    fn submit(&self, request: &Request) -> Result<Vec<Submitted>, SchedulerError> {
        let arrays = submit(request, &self.settings)?;
        Ok(arrays
            .into_iter()
            .map(|array| {
                let after = (array.dependency.as_deref())
                    .map(|d| format!(" --dependency={d} --kill-on-invalid-dep=yes"))
                    .unwrap_or_default();
                Submitted {
                    detail: match array.array {
                        Some(_) => array.script.display().to_string(),
                        None => format!("sbatch{after} {}", array.script.display()),
                    },
                    id: array.array.map(|id| format!("array {id}")),
                    jobs: array.tasks.into_iter().map(|t| t.job).collect(),
                }
            })
            .collect())
    }

    fn poll(&self, output_dir: &Path) -> Option<HashMap<String, Task>> {
        poll(output_dir)
    }

    fn cancel(&self, _output_dir: &Path, task: &str) -> Result<(), SchedulerError> {
        status::cancel(task)
    }
}

/// One submitted (or, in a dry run, written) array.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Submission {
    /// Slurm's id of the array; None in a dry run.
    pub array: Option<String>,
    pub script: PathBuf,
    /// Each task's job and run folder name, task 0 first.
    pub tasks: Vec<SubmittedTask>,
    /// `afterok:` on the teachers' tasks, when this array holds students.
    pub dependency: Option<String>,
    /// Local time, `YYYY/MM/DD HH:MM:SS`.
    pub at: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmittedTask {
    pub job: String,
    pub folder: String,
}

/// Submits `req.configs` as job arrays: first the jobs that wait for no teacher, then the
/// students, one array per set of teacher tasks they wait for (`afterok`), so that a teacher that
/// fails cancels only its own students (docs/slurm.md#teachers-first).
fn submit(req: &Request, settings: &SlurmSettings) -> Result<Vec<Submission>, SchedulerError> {
    let dir = req.output_dir.join(SLURM_DIR);
    // The tasks' log path goes into an #SBATCH line (double-quoted there); every other path and
    // argument of the script is single-quoted for bash.
    let text = dir.to_string_lossy();
    if text.chars().any(|c| c.is_control() || c == '"') {
        return Err(SchedulerError::Refused(format!(
            "{}: a path with a control character or a double quote cannot go into a batch script's #SBATCH line; choose another output folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let adarat = std::env::current_exe().map_err(io(Path::new("adarat")))?;
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let teachers: Vec<Vec<Teacher>> = (0..req.configs.len())
        .map(|i| teachers_of(req, i))
        .collect();
    let first: Vec<usize> = (0..req.configs.len())
        .filter(|&i| teachers[i].is_empty())
        .collect();
    let mut submitted: Vec<Submission> = Vec::new();
    let mut submit_array = |members: &[usize], dependency: Option<String>| {
        let number = submitted.len() + 1;
        let submission = submit_one(
            req, settings, members, dependency, &dir, &adarat, &stamp, number,
        )?;
        submitted.push(submission.clone());
        Ok::<Submission, SchedulerError>(submission)
    };
    let first_array = if first.is_empty() {
        None
    } else {
        Some(submit_array(&first, None)?)
    };
    // Students grouped by the tasks they wait for, in the order they were planned.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, waits_for) in teachers.iter().enumerate() {
        if waits_for.is_empty() {
            continue;
        }
        let tasks: Vec<String> = (waits_for.iter())
            .map(|teacher| match teacher {
                Teacher::Earlier(task) => task.clone(),
                Teacher::Here(j) => {
                    let array = (first_array.as_ref()).and_then(|a| a.array.as_deref());
                    let position = first.iter().position(|k| k == j).unwrap_or_default();
                    format!("{}_{position}", array.unwrap_or("<first array>"))
                }
            })
            .collect();
        let dependency = format!("afterok:{}", tasks.join(":"));
        match groups.iter_mut().find(|(d, _)| *d == dependency) {
            Some((_, members)) => members.push(i),
            None => groups.push((dependency, vec![i])),
        }
    }
    for (dependency, members) in groups {
        submit_array(&members, Some(dependency))?;
    }
    Ok(submitted)
}

/// A teacher a student of the request waits for.
enum Teacher {
    /// Another job of this request (its index), which goes into the first array.
    Here(usize),
    /// The task of an earlier submission that has it waiting or running.
    Earlier(String),
}

/// What job `i` of the request waits for: its teachers in this request, and those an earlier
/// submission still has on the cluster. A teacher that has completed is waited for by nobody.
fn teachers_of(req: &Request, i: usize) -> Vec<Teacher> {
    let student = &req.configs[i];
    (student.name().teachers().iter())
        .filter_map(|(_, teacher)| {
            let folder = RunStore::teacher_folder(student, teacher);
            if let Some(j) =
                (0..req.configs.len()).find(|&j| RunStore::folder_of(&req.configs[j]) == folder)
            {
                return Some(Teacher::Here(j));
            }
            let name = folder.file_name()?.to_string_lossy().into_owned();
            req.earlier_tasks.get(&name).cloned().map(Teacher::Earlier)
        })
        .collect()
}

/// Writes the script of one array of `members` and submits it (unless a dry run), recording it.
#[allow(clippy::too_many_arguments)]
fn submit_one(
    req: &Request,
    settings: &SlurmSettings,
    members: &[usize],
    dependency: Option<String>,
    dir: &Path,
    adarat: &Path,
    stamp: &str,
    number: usize,
) -> Result<Submission, SchedulerError> {
    let script = ArrayScript {
        adarat,
        tasks: members
            .iter()
            .map(|&i| task_args(&req.configs[i]))
            .collect(),
        common: common_args(req),
        sbatch: sbatch_options(settings),
        log_dir: dir,
        signal_seconds: settings.signal_seconds,
    };
    let path = dir.join(format!("{stamp}-{number}.sh"));
    std::fs::write(&path, script.text()).map_err(io(&path))?;
    let array = if req.dry_run {
        None
    } else {
        Some(sbatch(&path, dependency.as_deref())?)
    };
    let submission = Submission {
        array,
        script: path,
        tasks: (members.iter())
            .map(|&i| SubmittedTask {
                job: req.configs[i].job.clone(),
                folder: RunStore::folder_name(&req.configs[i]),
            })
            .collect(),
        dependency,
        at: chrono::Local::now().format("%Y/%m/%d %H:%M:%S").to_string(),
    };
    if !req.dry_run {
        record(dir, &submission)?;
    }
    Ok(submission)
}

/// A task's own arguments: its job, and the model and seed it was planned with (a teacher takes
/// its student's).
fn task_args(cfg: &JobConfig) -> Vec<String> {
    vec![
        cfg.job.clone(),
        "--model".into(),
        cfg.model.to_string(),
        "--seed".into(),
        cfg.seed.to_string(),
    ]
}

fn sbatch_options(slurm: &SlurmSettings) -> Vec<String> {
    let mut options = Vec::new();
    if let Some(partition) = &slurm.partition {
        options.push(format!("--partition={partition}"));
    }
    if let Some(time) = &slurm.time {
        options.push(format!("--time={time}"));
    }
    if let Some(account) = &slurm.account {
        options.push(format!("--account={account}"));
    }
    if let Some(qos) = &slurm.qos {
        options.push(format!("--qos={qos}"));
    }
    if slurm.gpus_per_job > 0 {
        options.push(format!("--gres=gpu:{}", slurm.gpus_per_job));
    }
    options
}

/// Submits a script; returns the array's id.
fn sbatch(script: &Path, dependency: Option<&str>) -> Result<String, SchedulerError> {
    let mut command = Command::new("sbatch");
    command.arg("--parsable");
    if let Some(dependency) = dependency {
        // A teacher that fails cancels its students instead of leaving them pending forever.
        command.arg(format!("--dependency={dependency}"));
        command.arg("--kill-on-invalid-dep=yes");
    }
    command.arg(script);
    let text = run(command)?;
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let id = text.trim().split(';').next().unwrap_or("").to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(SchedulerError::Command {
            command: "sbatch".into(),
            message: format!("unexpected answer `{}`", text.trim()),
        });
    }
    Ok(id)
}

/// Runs a Slurm command and returns its standard output; a failure carries its stderr's first line.
fn run(mut command: Command) -> Result<String, SchedulerError> {
    let name = command.get_program().to_string_lossy().into_owned();
    let out = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if name == "sbatch" => SchedulerError::Unavailable(
            "sbatch is not on PATH: adarat submit runs where Slurm's commands do (a login node); --dry-run writes the scripts only".into(),
        ),
        _ => SchedulerError::Command {
            command: name.clone(),
            message: e.to_string(),
        },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let line = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(SchedulerError::Command {
            command: name,
            message: format!("{} ({})", line.trim(), out.status),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Appends a submission to `submissions.jsonl` (one line, written with one call).
fn record(dir: &Path, submission: &Submission) -> Result<(), SchedulerError> {
    let path = dir.join(SUBMISSIONS_FILE);
    let mut line = serde_json::to_string(submission).map_err(|e| SchedulerError::Io {
        path: path.clone(),
        source: std::io::Error::other(e),
    })?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    file.write_all(line.as_bytes()).map_err(io(&path))
}

/// Every submission recorded in `output_dir`, oldest first; unreadable lines are skipped.
pub fn submissions(output_dir: &Path) -> Vec<Submission> {
    let path = output_dir.join(SLURM_DIR).join(SUBMISSIONS_FILE);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SchedulerError + '_ {
    move |source| SchedulerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What every task's `adarat run` takes besides its job: the shared output folder, the study and
/// its changes, the request's own arguments, offline (a compute node downloads nothing).
fn common_args(req: &Request) -> Vec<String> {
    let mut common = vec!["--output".to_string(), req.output_dir.display().to_string()];
    if let Some(study) = &req.study {
        common.extend(["--config".to_string(), study.display().to_string()]);
    }
    for set in &req.sets {
        common.extend(["--set".to_string(), set.clone()]);
    }
    common.extend(req.run_args.iter().cloned());
    common.push("--offline".to_string());
    common
}
