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
            format!("--output={}", log.display()),
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
        s += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
        for (index, args) in self.tasks.iter().enumerate() {
            let _ = writeln!(s, "  {index}) task=({}) ;;", quoted(args));
        }
        s += "  *) echo \"adarat: no task $SLURM_ARRAY_TASK_ID in this array\" >&2; exit 2 ;;\nesac\n";
        let _ = writeln!(s, "common=({})\n", quoted(&self.common));
        s += r#"requeue=0
"$adarat" run "${task[@]}" "${common[@]}" &
pid=$!
# The time-limit warning (or a preemption's): the run stops at its next batch, then requeue.
trap 'requeue=1; kill -TERM "$pid" 2>/dev/null' USR1
# scancel: the run stops at its next batch and stays resumable (status stopped).
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
while :; do
  wait "$pid"
  status=$?
  kill -0 "$pid" 2>/dev/null || break
done
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
            "#SBATCH --output=/out/slurm/%A_%a.log",
            "#SBATCH --signal=B:USR1@90",
            "#SBATCH --partition=gpu",
            "  0) task=('st/cifar10/baseline') ;;",
            "  1) task=('kd-at/cifar10/adarat' '--seed' '2') ;;",
            r"common=('--set' 'paths.data=/data/it'\''s here')",
        ] {
            assert!(text.lines().any(|l| l == line), "`{line}` missing:\n{text}");
        }
    }
}
