//! `adarat submit` against a real Slurm (Debian's 22.05: slurmctld, slurmd and munge on 127.0.0.1,
//! two fake GPUs), started by `tests/slurm/cluster.sh` in a temporary folder and stopped by its pids
//! at the end (docs/testing.md#a-real-slurm). `make test` installs the packages where it can
//! (docs/testing.md#system-packages).
use crate::common;

use common::system::Need;
use common::{result_json, stderr, stdout, wait_for, TINY};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};

/// A running one-node cluster; stopped (every job cancelled, every daemon killed) when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    /// One cluster at a time: each takes the ports of this process and every CPU of the machine.
    _alone: MutexGuard<'static, ()>,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slurm/cluster.sh")
}

impl Cluster {
    /// None when Slurm or root is missing: the test is then skipped (outside CI, docs/testing.md).
    fn start() -> Option<Cluster> {
        if !common::system::installed(&[Need::Slurm]) {
            return None;
        }
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir().unwrap();
        // Ports of their own, so a cluster left by another run cannot answer.
        let port = 20000 + 2 * (std::process::id() % 10000);
        let out = Command::new(script())
            .args(["start", dir.path().to_str().unwrap(), &port.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the test cluster did not start: {}",
            stderr(&out)
        );
        let conf = dir.path().join("slurm.conf");
        Some(Cluster {
            dir,
            conf,
            _alone: alone,
        })
    }

    /// A Slurm command (or adarat) that talks to this cluster.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env("SLURM_CONF", &self.conf)
            .env("OMP_NUM_THREADS", "1")
            .stdin(Stdio::null());
        command
    }

    fn squeue(&self) -> String {
        let out = self
            .command("squeue", &["-h", "-r", "--states=all", "-o", "%i %T"])
            .output()
            .unwrap();
        stdout(&out)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["stop", self.dir.path().to_str().unwrap()])
            .output();
    }
}

fn submit(cluster: &Cluster, dir: &Path, jobs: &[&str], epochs: &str) -> Output {
    let mut args = vec!["submit"];
    args.extend(jobs);
    args.extend([
        "--epochs",
        epochs,
        "--output",
        "output",
        "--gpus-per-job",
        "1",
    ]);
    args.extend(TINY);
    cluster
        .command(env!("CARGO_BIN_EXE_adarat"), &args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The array ids `adarat submit` printed, in order.
fn arrays(out: &Output) -> Vec<String> {
    (stdout(out).lines())
        .filter_map(|l| l.strip_prefix("submitted array "))
        .map(|l| l.split(':').next().unwrap().to_string())
        .collect()
}

fn status(folder: &Path) -> String {
    std::fs::read_to_string(folder.join("result.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .map(|v| v["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

fn epochs_finished(folder: &Path) -> usize {
    let events = std::fs::read_to_string(folder.join("events.jsonl")).unwrap_or_default();
    events.matches("\"epoch_finished\"").count()
}

fn task_log(output: &Path, array: &str) -> String {
    std::fs::read_to_string(output.join("slurm").join(format!("{array}_0.log"))).unwrap_or_default()
}

/// Through a real Slurm: an array of synthetic jobs completes into the output folder with the
/// student started only after its teachers' tasks; `scancel` of a running task leaves its run
/// `stopped` and a second submit resumes it; the time limit's warning stops a task, which is
/// requeued and resumes without losing an epoch.
#[test]
fn submitted_arrays_complete_wait_for_teachers_stop_on_scancel_and_resume_after_a_requeue() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");

    let out = submit(
        &cluster,
        dir.path(),
        &["kd-at/synthetic/baseline", "pgd-at/synthetic/fixrat"],
        "1",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = arrays(&out);
    assert_eq!(
        ids.len(),
        2,
        "teachers and others, then the student: {}",
        stdout(&out)
    );
    let submissions = std::fs::read_to_string(output.join("slurm/submissions.jsonl")).unwrap();
    let student: Value = serde_json::from_str(submissions.lines().nth(1).unwrap()).unwrap();
    assert_eq!(student["tasks"][0]["job"], "kd-at/synthetic/baseline");
    assert_eq!(
        student["dependency"],
        format!("afterok:{}_0:{}_1", ids[0], ids[0]),
        "the student waits for its two teachers' tasks"
    );
    let folders = [
        "st_synthetic_baseline_small-cnn_seed1",
        "pgd-at_synthetic_baseline_small-cnn_seed1",
        "pgd-at_synthetic_fixrat_small-cnn_seed1",
        "kd-at_synthetic_baseline_small-cnn_seed1",
    ];
    wait_for("every task to complete", || {
        folders
            .iter()
            .all(|f| status(&output.join(f)) == "completed")
    });
    let script = std::fs::read_to_string(student["script"].as_str().unwrap()).unwrap();
    assert!(script.contains("#SBATCH --requeue"), "{script}");

    // scancel of a running task: the run stops resumably; a second submit goes on from there.
    let long = output.join("pgd-at_synthetic_adarat_small-cnn_seed1");
    let out = submit(&cluster, dir.path(), &["pgd-at/synthetic/adarat"], "5");
    assert!(out.status.success(), "{}", stderr(&out));
    let id = arrays(&out).remove(0);
    wait_for("the first epoch on the cluster", || {
        epochs_finished(&long) >= 1
    });
    let cancelled = cluster
        .command("scancel", &[&format!("{id}_0")])
        .output()
        .unwrap();
    assert!(cancelled.status.success(), "{}", stderr(&cancelled));
    wait_for("the run to stop", || status(&long) == "stopped");
    let stopped_after = result_json(&long)["epochs_done"].as_u64().unwrap();
    assert!((1..5).contains(&stopped_after), "{stopped_after}");
    // While its task is still ending on Slurm a submit leaves it out; once it has ended, the
    // stopped run is submitted again.
    wait_for("Slurm to say cancelled", || {
        cluster.squeue().contains(&format!("{id}_0 CANCELLED"))
    });
    let out = submit(&cluster, dir.path(), &["pgd-at/synthetic/adarat"], "5");
    assert!(out.status.success(), "{}", stderr(&out));
    let again = arrays(&out).remove(0);
    wait_for("the resubmitted run to complete", || {
        status(&long) == "completed"
    });
    let log = task_log(&output, &again);
    assert!(
        log.contains(&format!("resuming at epoch {}", stopped_after + 1)),
        "{log}"
    );
    assert_eq!(
        result_json(&long)["epochs_log"].as_array().unwrap().len(),
        5
    );

    // The time limit's warning (USR1 to the batch script): stop, requeue, resume.
    let warned = output.join("trades_synthetic_adarat_small-cnn_seed1");
    let out = submit(&cluster, dir.path(), &["trades/synthetic/adarat"], "4");
    assert!(out.status.success(), "{}", stderr(&out));
    let id = arrays(&out).remove(0);
    wait_for("the first epoch of the warned task", || {
        epochs_finished(&warned) >= 1
    });
    let signal = cluster
        .command("scancel", &["--batch", "--signal=USR1", &format!("{id}_0")])
        .output()
        .unwrap();
    assert!(signal.status.success(), "{}", stderr(&signal));
    wait_for("the task to requeue itself", || {
        task_log(&output, &id).contains("requeued to resume")
    });
    assert_eq!(status(&warned), "stopped");
    // Slurm holds a requeued job for about two minutes (BeginTime); the test releases it once it
    // waits (and its old step is gone: released at once, slurmd may refuse the launch).
    let task = format!("{id}_0");
    wait_for("the task to wait in the queue again", || {
        cluster.squeue().contains(&format!("{task} PENDING"))
    });
    std::thread::sleep(std::time::Duration::from_secs(2));
    let release = ["update", &format!("JobId={task}"), "StartTime=now"];
    let released = cluster.command("scontrol", &release).output().unwrap();
    assert!(released.status.success(), "{}", stderr(&released));
    wait_for("the requeued task to complete", || {
        status(&warned) == "completed"
    });
    let log = task_log(&output, &id);
    assert!(log.contains("requeued to resume"), "{log}");
    assert!(log.contains("resuming at epoch"), "{log}");
    let result = result_json(&warned);
    let epochs: Vec<u64> = (result["epochs_log"].as_array().unwrap().iter())
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4], "no epoch lost or repeated");
    wait_for("Slurm to record the task completed", || {
        cluster.squeue().contains(&format!("{task} COMPLETED"))
    });
}

/// Without a cluster: bad input is refused before anything is submitted.
#[test]
fn submit_refuses_a_missing_dataset_and_says_when_sbatch_is_missing_and_a_dry_run_writes_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let adarat = |args: &[&str], path: &str| {
        Command::new(env!("CARGO_BIN_EXE_adarat"))
            .args(args)
            .current_dir(dir.path())
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let path = std::env::var("PATH").unwrap_or_default();
    let out = adarat(
        &[
            "submit",
            "pgd-at/cifar10/adarat",
            "--set",
            "paths.data=empty",
        ],
        &path,
    );
    assert_eq!(out.status.code(), Some(2));
    let text = stderr(&out);
    assert!(
        text.contains("cifar10 not in") && text.contains("adarat data download cifar10"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");

    let out = adarat(&["submit", "pgd-at/synthetic/adarat"], "/nonexistent");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("sbatch is not on PATH"),
        "{}",
        stderr(&out)
    );

    let out = adarat(
        &[
            "submit",
            "iad/synthetic/adarat",
            "--dry-run",
            "--partition",
            "gpu",
            "--time",
            "1:00:00",
        ],
        "/nonexistent",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 2, "{printed}");
    assert!(
        lines[1].contains("--dependency=afterok:<first array>_0:<first array>_1"),
        "{printed}"
    );
    let first = lines[0].split_whitespace().nth(1).unwrap();
    let script = std::fs::read_to_string(first).unwrap();
    for line in [
        "#SBATCH --partition=gpu",
        "#SBATCH --time=1:00:00",
        "#SBATCH --gres=gpu:1",
        "  0) task=('st/synthetic/baseline' '--model' 'small-cnn' '--seed' '1') ;;",
    ] {
        assert!(
            script.lines().any(|l| l == line),
            "`{line}` missing:\n{script}"
        );
    }
    assert!(
        !dir.path().join("output/slurm/submissions.jsonl").exists(),
        "a dry run records nothing"
    );
}

/// Without a cluster: a Slurm option, from the command line or the configuration, that is not in
/// Slurm's syntax (a newline that would start a shell line in the script, a space) is refused in one
/// line before any script is written; so is an output folder whose path cannot go into a directive.
#[test]
fn submit_refuses_slurm_options_and_paths_that_would_break_the_batch_script() {
    let dir = tempfile::tempdir().unwrap();
    let dry_run = |extra: &[&str]| {
        let mut args = vec!["submit", "pgd-at/synthetic/adarat", "--dry-run"];
        args.extend(extra);
        common::adarat(dir.path(), &args)
    };
    for option in ["partition", "account", "qos", "time"] {
        for value in ["gpu\nrm -rf ~", "gpu a100", "1:00:00\n--wrap=id"] {
            let flag = format!("--{option}");
            let set = format!("scheduler.slurm.{option}={value}");
            for args in [[flag.as_str(), value], ["--set", set.as_str()]] {
                let out = dry_run(&args);
                let text = stderr(&out);
                assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
                assert!(
                    text.contains(&format!("--{option} (scheduler.slurm.{option}): ")),
                    "{args:?}: {text}"
                );
                assert_eq!(text.lines().count(), 1, "{args:?}: {text}");
                assert!(!dir.path().join("output/slurm").exists(), "{args:?}");
            }
        }
    }
    let out = dry_run(&["--output", "out\nput"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("cannot go into a batch script"), "{text}");
    assert!(!dir.path().join("out\nput").exists());
    // A space in the output folder is quoted in the directive.
    let out = dry_run(&["--output", "my output"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let scripts = dir.path().join("my output/slurm");
    let script = std::fs::read_dir(&scripts)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let text = std::fs::read_to_string(script.path()).unwrap();
    assert!(
        text.contains("#SBATCH --output=\"") && text.contains("my output/slurm/%A_%a.log\"\n"),
        "{text}"
    );
}

/// The console as the control room, in a real terminal: it shows a task pending on Slurm (with
/// Slurm's reason) and tasks running, and `x` `y` on a running one cancels its task through Slurm,
/// which stops the run resumably.
#[test]
fn the_console_shows_pending_and_running_slurm_tasks_and_cancels_one() {
    if !common::system::installed(&[Need::Tmux]) {
        return;
    }
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    // Two CPUs and two GPUs on the node: two tasks run, the third waits for resources.
    let jobs = [
        "pgd-at/synthetic/baseline",
        "pgd-at/synthetic/fixrat",
        "pgd-at/synthetic/adarat",
    ];
    let out = submit(&cluster, dir.path(), &jobs, "40");
    assert!(out.status.success(), "{}", stderr(&out));
    let id = arrays(&out).remove(0);
    wait_for("two tasks running and one pending", || {
        let listed = cluster.squeue();
        listed.matches("RUNNING").count() == 2 && listed.contains(&format!("{id}_2 PENDING"))
    });

    let home = dir.path().join("home");
    let console = format!(
        "env SLURM_CONF={conf} OMP_NUM_THREADS=1 TERM=xterm-256color XDG_CONFIG_HOME={home}/config \
         XDG_STATE_HOME={home}/state {exe} {sets}; sleep 30",
        conf = cluster.conf.display(),
        home = home.display(),
        exe = env!("CARGO_BIN_EXE_adarat"),
        sets = TINY.join(" ").replace("[fgsm, pgd10]", "'[fgsm, pgd10]'"),
    );
    let tmux = common::tmux::Tmux::new();
    tmux.open_sized(dir.path(), &console, 160, 40);
    wait_for("the grid", || tmux.screen().contains("pgd-at"));
    tmux.keys(&["/", "pgd-at/synthetic/adarat", "Enter"]);
    wait_for("the pending task in the detail", || {
        let screen = tmux.screen();
        screen.contains(&format!("slurm {id}_2 PENDING (Resources)"))
            && screen.contains("slurm pending")
    });

    let baseline = output.join("pgd-at_synthetic_baseline_small-cnn_seed1");
    tmux.keys(&["/", "pgd-at/synthetic/baseline", "Enter"]);
    wait_for("the running task in the detail", || {
        tmux.screen().contains(&format!("slurm {id}_0 RUNNING on"))
    });
    tmux.keys(&["x"]);
    wait_for("the cancel question", || {
        tmux.screen().contains(&format!("(Slurm task {id}_0)? y/n"))
    });
    tmux.keys(&["y"]);
    wait_for("the run to stop", || status(&baseline) == "stopped");
    wait_for("Slurm to say cancelled", || {
        cluster.squeue().contains(&format!("{id}_0 CANCELLED"))
    });
    // The pending task took the freed place; nothing else was touched.
    wait_for("the pending task to start", || {
        cluster.squeue().contains(&format!("{id}_2 RUNNING"))
    });
    assert!(cluster.squeue().contains(&format!("{id}_1 RUNNING")));
    // S submits the cursor's job through `adarat submit` and sbatch, off the UI thread.
    tmux.keys(&["/", "st/synthetic/baseline", "Enter", "S"]);
    wait_for("the console to say what it submitted", || {
        tmux.screen().contains("submitted to Slurm: array")
    });
    let screen = tmux.screen();
    let submitted = screen
        .split("submitted to Slurm: array ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the array's id")
        .to_string();
    wait_for("the submitted array in squeue", || {
        cluster.squeue().contains(&format!("{submitted}_0"))
    });
    tmux.keys(&["q"]);
}

/// Two tasks of the same run at once (a task submitted by hand again, or a requeued task landing
/// while the old one still runs): a second `adarat submit` submits nothing; the script submitted
/// again by hand finds the run's lock held, says so, exits 75 and touches nothing; the first
/// completes as if alone.
#[test]
fn a_second_submit_submits_nothing_and_a_task_whose_run_is_locked_leaves_it_alone() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let run = output.join("pgd-at_synthetic_adarat_small-cnn_seed1");
    let first = submit(&cluster, dir.path(), &["pgd-at/synthetic/adarat"], "6");
    assert!(first.status.success(), "{}", stderr(&first));
    let first = arrays(&first).remove(0);
    wait_for("the first task's run to start", || {
        epochs_finished(&run) >= 1
    });
    let second = submit(&cluster, dir.path(), &["pgd-at/synthetic/adarat"], "6");
    assert!(second.status.success(), "{}", stderr(&second));
    assert!(arrays(&second).is_empty(), "{}", stdout(&second));
    assert!(
        stdout(&second).contains(&format!(
            "skipped pgd-at/synthetic/adarat seed 1: already on Slurm as task {first}_0 (running)"
        )),
        "{}",
        stdout(&second)
    );
    let submissions = std::fs::read_to_string(output.join("slurm/submissions.jsonl")).unwrap();
    let script: Value = serde_json::from_str(submissions.lines().next().unwrap()).unwrap();
    let again = cluster
        .command(
            "sbatch",
            &["--parsable", script["script"].as_str().unwrap()],
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let again = stdout(&again).trim().to_string();
    wait_for("the second task to end", || {
        cluster.squeue().contains(&format!("{again}_0 FAILED"))
    });
    // The lock names the task that holds the run.
    let log = task_log(&output, &again);
    let holder = format!("already running in Slurm task {first}_0 (process ");
    assert!(log.contains(&holder), "{log}");
    wait_for("the first task's run to complete", || {
        status(&run) == "completed"
    });
    let result = result_json(&run);
    let epochs: Vec<u64> = (result["epochs_log"].as_array().unwrap().iter())
        .map(|e| e["epoch"].as_u64().unwrap())
        .collect();
    assert_eq!(epochs, [1, 2, 3, 4, 5, 6]);
    // The run folder says completed a moment before the task prints its last line and ends.
    wait_for("the first task to end", || {
        cluster.squeue().contains(&format!("{first}_0 COMPLETED"))
    });
    let log = task_log(&output, &first);
    assert!(log.contains("completed 6/6"), "{log}");
    // Completed: submitting it again submits nothing either.
    let third = submit(&cluster, dir.path(), &["pgd-at/synthetic/adarat"], "6");
    assert!(
        stdout(&third).contains("skipped pgd-at/synthetic/adarat seed 1: completed")
            && arrays(&third).is_empty(),
        "{}",
        stdout(&third)
    );
}

/// Each seed's students wait for their own teachers' tasks: seed 2's standard teacher runs out of
/// memory (injected), which cancels seed 2's student only, while seed 1's student starts once its
/// teachers completed, one of them warned (USR1) as its run completes: that task ends COMPLETED,
/// not requeued. `adarat list` says what a waiting student waits for.
#[test]
fn a_failing_teacher_holds_only_its_own_students_and_a_warning_at_the_end_leaves_a_run_completed() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let mut args = vec!["submit", "kd-at/synthetic/baseline", "--seed", "1,2"];
    args.extend(["--epochs", "1", "--output", "output", "--gpus-per-job", "1"]);
    args.extend(TINY);
    let out = cluster
        .command(env!("CARGO_BIN_EXE_adarat"), &args)
        .env(
            "ADARAT_FAULT_OUT_OF_MEMORY",
            "batch@st/synthetic/baseline,2",
        )
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let ids = arrays(&out);
    assert_eq!(
        ids.len(),
        3,
        "the teachers, then one student array per seed: {}",
        stdout(&out)
    );
    let submissions = std::fs::read_to_string(output.join("slurm/submissions.jsonl")).unwrap();
    let dependencies: Vec<String> = (submissions.lines().skip(1))
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["dependency"].to_string())
        .collect();
    let teachers = &ids[0];
    assert_eq!(
        dependencies,
        [
            format!("\"afterok:{teachers}_0:{teachers}_1\""),
            format!("\"afterok:{teachers}_2:{teachers}_3\"")
        ]
    );
    let list = |cluster: &Cluster| {
        let mut args = vec!["list", "--output", "output", "--set", "grid.seeds=[1,2]"];
        args.extend(TINY);
        let out = (cluster.command(env!("CARGO_BIN_EXE_adarat"), &args))
            .current_dir(dir.path())
            .output()
            .unwrap();
        stdout(&out)
    };
    wait_for("list to say what a student waits for", || {
        list(&cluster)
            .contains("(Dependency) after st/synthetic/baseline, pgd-at/synthetic/baseline")
    });

    // The warning lands as seed 1's standard teacher completes.
    let teacher = output.join("st_synthetic_baseline_small-cnn_seed1");
    wait_for("seed 1's standard teacher to complete", || {
        status(&teacher) == "completed"
    });
    let task = format!("{teachers}_0");
    let _ = (cluster.command("scancel", &["--batch", "--signal=USR1", &task]))
        .output()
        .unwrap();
    let student = output.join("kd-at_synthetic_baseline_small-cnn_seed1");
    wait_for("seed 1's student to complete", || {
        status(&student) == "completed"
    });
    assert!(cluster.squeue().contains(&format!("{task} COMPLETED")));
    assert!(!task_log(&output, teachers).contains("requeued"));

    // Seed 2's teacher failed: its student is cancelled and never ran.
    wait_for("seed 2's teacher to fail", || {
        status(&output.join("st_synthetic_baseline_small-cnn_seed2")) == "failed"
    });
    wait_for("seed 2's student to be cancelled", || {
        cluster
            .squeue()
            .contains(&format!("{}_0 CANCELLED", ids[2]))
    });
    assert!(!output
        .join("kd-at_synthetic_baseline_small-cnn_seed2")
        .exists());
}
