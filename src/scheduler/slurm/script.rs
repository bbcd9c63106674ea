//! The batch script of one job array: each task `adarat run`s one job into the shared output
//! folder. The script is written to be read and re-submitted by hand (docs/slurm.md).
use std::fmt::Write;
use std::path::Path;

/// What one array's script says.
pub(crate) struct ArrayScript<'a> {
    /// The adarat binary the tasks run (the one that wrote the script).
    pub(crate) adarat: &'a Path,
    /// Each task's `adarat run` arguments, task 0 first.
    pub(crate) tasks: Vec<Vec<String>>,
    /// Arguments every task adds (`--output`, `--config`, `--set`, ...).
    pub(crate) common: Vec<String>,
    /// `#SBATCH` options (without the prefix), e.g. `--partition=gpu`.
    pub(crate) sbatch: Vec<String>,
    /// The folder for the tasks' logs.
    pub(crate) log_dir: &'a Path,
    pub(crate) signal_seconds: u32,
}

impl ArrayScript<'_> {
    pub(crate) fn text(&self) -> String {
        let mut s = String::from("#!/bin/bash\n");
        s += "# Written by `adarat submit`: one array task per job, each `adarat run`-ning it into the\n";
        s += "# shared output folder. Submit it again with `sbatch` (and the same --dependency, if any).\n";
        let last = self.tasks.len().saturating_sub(1);
        let log = self.log_dir.join("%A_%a.log");
        let mut options = vec![
            "--job-name=adarat".to_string(),
            format!("--array=0-{last}"),
            // Quoted: sbatch reads double quotes in a directive, and a space would end it.
            format!("--output=\"{}\"", log.display()),
            "--open-mode=append".to_string(),
            // A preempted or warned task goes back to the queue and resumes from its last epoch.
            "--requeue".to_string(),
            // USR1 to this script (B:) that long before the time limit: stop, then requeue.
            format!("--signal=B:USR1@{}", self.signal_seconds),
        ];
        options.extend(self.sbatch.iter().cloned());
        for option in options {
            let _ = writeln!(s, "#SBATCH {option}");
        }
        s += "set -u\n\n";
        let _ = writeln!(s, "adarat={}", quote(&self.adarat.display().to_string()));
        let _ = writeln!(s, "log_dir={}", quote(&self.log_dir.display().to_string()));
        s += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
        for (index, args) in self.tasks.iter().enumerate() {
            let _ = writeln!(s, "  {index}) task=({}) ;;", quoted(args));
        }
        s += "  *) echo \"adarat: no task $SLURM_ARRAY_TASK_ID in this array\" >&2; exit 2 ;;\nesac\n";
        let _ = writeln!(s, "common=({})\n", quoted(&self.common));
        s += r#"requeue=0
early=0
pid=
# The traps go first: a signal between the run's start and a later trap would end this script
# without its run. A signal before the run has a pid is passed on as soon as it has one.
# The time-limit warning (or a preemption's): the run stops at its next batch, then requeue.
trap 'requeue=1; if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; else early=1; fi' USR1
# scancel: the run stops at its next batch and stays resumable (status stopped).
trap 'if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null; else early=1; fi' TERM INT
# adarat writes its exit status here too: bash can lose a child's status when a trap interrupts a
# `wait` at the instant the child ends (docs/slurm.md).
exit_file="$log_dir/.${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.exit"
rm -f "$exit_file"
ADARAT_EXIT_STATUS_FILE="$exit_file" "$adarat" run "${task[@]}" "${common[@]}" &
pid=$!
[ "$early" = 0 ] || kill -TERM "$pid" 2>/dev/null
# The short waits let the traps run within a second.
while kill -0 "$pid" 2>/dev/null; do
  sleep 1 &
  wait $!
done
wait "$pid"
status=$?
if [ -s "$exit_file" ]; then
  status=$(cat "$exit_file")
  rm -f "$exit_file"
fi
if [ "$requeue" = 1 ] && [ "$status" = 130 ]; then
  echo "adarat: requeued to resume after the time limit's warning" >&2
  scontrol requeue "${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}"
fi
exit "$status"
"#;
        s
    }
}

/// Single-quoted for bash, whatever the text holds.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn quoted(args: &[String]) -> String {
    args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_quoted_for_bash_and_tasks_indexed_from_zero() {
        let script = ArrayScript {
            adarat: Path::new("/opt/adarat"),
            tasks: vec![
                vec!["st/cifar10/baseline".into()],
                vec!["kd-at/cifar10/adarat".into(), "--seed".into(), "2".into()],
            ],
            common: vec!["--set".into(), "paths.data=/data/it's here".into()],
            sbatch: vec!["--partition=gpu".into()],
            log_dir: Path::new("/out/slurm"),
            signal_seconds: 90,
        };
        let text = script.text();
        for line in [
            "#SBATCH --array=0-1",
            "#SBATCH --output=\"/out/slurm/%A_%a.log\"",
            "#SBATCH --signal=B:USR1@90",
            "#SBATCH --partition=gpu",
            "  0) task=('st/cifar10/baseline') ;;",
            "  1) task=('kd-at/cifar10/adarat' '--seed' '2') ;;",
            r"common=('--set' 'paths.data=/data/it'\''s here')",
        ] {
            assert!(text.lines().any(|l| l == line), "`{line}` missing:\n{text}");
        }
    }

    /// The script of one task whose `adarat` is `stub` (a bash script body), and a folder with a
    /// `scontrol` that records its arguments, for the script's PATH.
    fn stub_task(dir: &Path, stub: &str) -> std::process::Command {
        use std::os::unix::fs::PermissionsExt;
        let executable = |name: &str, body: &str| {
            let path = dir.join(name);
            std::fs::write(&path, format!("#!/bin/bash\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path
        };
        let adarat = executable("adarat", stub);
        executable(
            "scontrol",
            &format!("echo \"$@\" > {}/scontrol.args", dir.display()),
        );
        let script = ArrayScript {
            adarat: &adarat,
            tasks: vec![vec!["st/synthetic/baseline".into()]],
            common: Vec::new(),
            sbatch: Vec::new(),
            log_dir: dir,
            signal_seconds: 90,
        };
        let path = executable("task.sh", &script.text());
        let mut command = std::process::Command::new("bash");
        command
            .arg(path)
            .current_dir(dir)
            .env("SLURM_ARRAY_TASK_ID", "0")
            .env("SLURM_ARRAY_JOB_ID", "7")
            .env(
                "PATH",
                format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
            )
            .stderr(std::process::Stdio::null());
        command
    }

    /// USR1 to the task `seconds` after its run started (the stub touches `started`).
    fn usr1_after(child: &std::process::Child, dir: &Path, seconds: f64) {
        while !dir.join("started").exists() {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(seconds));
        crate::native::posix::send_signal(child.id(), libc::SIGUSR1).unwrap();
    }

    #[test]
    fn the_scripts_exit_is_the_runs_whatever_instant_the_warning_lands() {
        // A run that completes at 0.2 s and ignores the stop (its last epoch was done): a warning
        // just before, at or after its end leaves the task completed, never requeued.
        for delay in [0.0, 0.15, 0.19, 0.2, 0.21, 0.3] {
            let dir = tempfile::tempdir().unwrap();
            let run = "trap '' TERM\ntouch started\nsleep 0.2\necho 0 > \"$ADARAT_EXIT_STATUS_FILE\"\nexit 0";
            let mut child = stub_task(dir.path(), run).spawn().unwrap();
            usr1_after(&child, dir.path(), delay);
            let status = child.wait().unwrap();
            assert_eq!(
                status.code(),
                Some(0),
                "warned {delay} s after the run started"
            );
            assert!(!dir.path().join("scontrol.args").exists(), "{delay} s");
        }
        // A run that stops on the warning (130): the task requeues itself and exits 130.
        let dir = tempfile::tempdir().unwrap();
        let stops = "trap 'echo 130 > \"$ADARAT_EXIT_STATUS_FILE\"; exit 130' TERM\ntouch started\nsleep 5 & wait";
        let mut child = stub_task(dir.path(), stops).spawn().unwrap();
        usr1_after(&child, dir.path(), 0.1);
        assert_eq!(child.wait().unwrap().code(), Some(130));
        let args = std::fs::read_to_string(dir.path().join("scontrol.args")).unwrap();
        assert_eq!(args.trim(), "requeue 7_0");
    }
}
