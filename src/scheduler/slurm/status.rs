//! What Slurm says of the tasks adarat submitted, read with `squeue` (on every cluster; no REST
//! API), sparingly: the console asks every few seconds, not on every scan (docs/slurm.md#watching).
use super::{submissions, NAME};
use crate::scheduler::{SchedulerError, Task};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// Whether a task in Slurm's state `state` is waiting or running: what `scancel` can still stop.
fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "REQUEUED" | "SUSPENDED"
    )
}

/// The format `squeue` is asked for, and [`parse`] reads.
const FORMAT: &str = "%i|%T|%r|%N|%M";

/// The Slurm task of each run folder submitted from `output_dir` (the newest submission of a folder
/// wins), as `squeue` lists them now. None when nothing was submitted or `squeue` cannot be asked
/// (not on a cluster). A task missing from `squeue` ended long ago or was cancelled while pending
/// (which leaves no trace): its run folder says the rest.
pub fn poll(output_dir: &Path) -> Option<HashMap<String, Task>> {
    let mut task_of: HashMap<String, String> = HashMap::new();
    let mut job_of: HashMap<String, String> = HashMap::new();
    let mut after_of: HashMap<String, Vec<String>> = HashMap::new();
    for submission in submissions(output_dir) {
        let Some(array) = submission.array else {
            continue;
        };
        let waits_for: Vec<String> = (submission.dependency.iter())
            .flat_map(|d| d.trim_start_matches("afterok:").split(':'))
            .map(|id| job_of.get(id).cloned().unwrap_or_else(|| id.to_string()))
            .collect();
        for (index, task) in submission.tasks.into_iter().enumerate() {
            let id = format!("{array}_{index}");
            job_of.insert(id.clone(), task.job);
            after_of.insert(id.clone(), waits_for.clone());
            task_of.insert(task.folder, id);
        }
    }
    if task_of.is_empty() {
        return None;
    }
    let out = Command::new("squeue")
        .args(["-h", "-r", "--me", "--states=all", "-o", FORMAT])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let listed = parse(&String::from_utf8_lossy(&out.stdout));
    Some(
        task_of
            .into_iter()
            .filter_map(|(folder, id)| {
                let task = listed.get(&id)?;
                let after = after_of.remove(&id).unwrap_or_default();
                Some((
                    folder,
                    Task {
                        after,
                        ..task.clone()
                    },
                ))
            })
            .collect(),
    )
}

/// `squeue -o "%i|%T|%r|%N|%M"` lines, by task id.
fn parse(text: &str) -> HashMap<String, Task> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim().split('|').collect();
            let [id, state, reason, node, elapsed] = fields[..] else {
                return None;
            };
            let given =
                |s: &str| (!s.is_empty() && s != "None" && s != "(null)").then(|| s.to_string());
            Some((
                id.to_string(),
                Task {
                    backend: NAME,
                    id: id.to_string(),
                    state: state.to_string(),
                    active: is_active(state),
                    reason: given(reason),
                    node: given(node),
                    elapsed: elapsed.to_string(),
                    after: Vec::new(),
                },
            ))
        })
        .collect()
}

/// Asks Slurm to stop a task: `scancel` sends SIGTERM, and the run stops at its next batch
/// (docs/slurm.md). `scancel` of an unknown id succeeds silently, so success means only that
/// Slurm took the request.
pub(super) fn cancel(task: &str) -> Result<(), SchedulerError> {
    let mut command = Command::new("scancel");
    command.arg(task);
    super::run(command).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squeue_lines_become_tasks_by_id() {
        let text = "12_0|RUNNING|None|node7|1:02:03\n12_1|PENDING|Resources||0:00\nbad line\n";
        let tasks = parse(text);
        assert_eq!(tasks.len(), 2);
        let running = &tasks["12_0"];
        assert_eq!(running.node.as_deref(), Some("node7"));
        assert_eq!(running.reason, None);
        assert!(running.active);
        let pending = &tasks["12_1"];
        assert_eq!(pending.reason.as_deref(), Some("Resources"));
        assert_eq!(pending.node, None);
        let done = parse("3_0|COMPLETED|None|n1|0:10");
        assert!(!done["3_0"].active);
    }
}
