//! Jobs as processes: stop requests, hangups, the run lock and the console's queue worker, through
//! the real binary and the real engine on a tiny synthetic dataset.
use crate::common;

use common::{adarat_command as adarat, result_json, wait_for, TINY};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Child;

fn run_args<'a>(job: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let mut args = vec!["run", job, "--epochs", epochs, "--offline"];
    args.extend(TINY);
    args
}

fn folder(dir: &Path, job_folder: &str) -> PathBuf {
    dir.join("output").join(job_folder)
}

fn events(folder: &Path) -> String {
    std::fs::read_to_string(folder.join("events.jsonl")).unwrap_or_default()
}

fn signal(child: &Child, signal: i32) {
    adarat::native::posix::send_signal(child.id(), signal).unwrap();
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ADARAT_FOLDER: &str = "pgd-at_synthetic_adarat_small-cnn_seed1";

#[test]
fn sigterm_stops_a_run_resumably_and_a_second_run_of_the_job_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = folder(dir.path(), ADARAT_FOLDER);
    let child = adarat(dir.path(), &run_args("pgd-at/synthetic/adarat", "3"))
        .spawn()
        .unwrap();
    wait_for("the first epoch", || {
        events(&run).contains("epoch_finished")
    });

    let second = adarat(dir.path(), &run_args("pgd-at/synthetic/adarat", "3"))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&second.stderr);
    // 75, EX_TEMPFAIL: nothing ran, try again later (the worker waits and does).
    assert_eq!(second.status.code(), Some(75), "{message}");
    assert!(
        message.contains(&format!("already running in process {}", child.id())),
        "{message}"
    );

    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("resumes after epoch"), "{stderr}");
    let stopped = result_json(&run);
    assert_eq!(stopped["status"], "stopped");
    let done = stopped["epochs_done"].as_u64().unwrap();
    assert!((1..3).contains(&done), "{stopped}");
    assert!(events(&run).contains(r#""type":"ended","status":"stopped""#));

    let resumed = adarat(dir.path(), &run_args("pgd-at/synthetic/adarat", "3"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming at epoch {}", done + 1)),
        "{stderr}"
    );
    let completed = result_json(&run);
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["epochs_log"].as_array().unwrap().len(), 3);
}

#[test]
fn sigterm_during_the_per_epoch_test_stops_within_a_test_batch() {
    // A per-epoch test of 500 batches: without a check between its batches the stop would wait
    // for the whole test and epoch 1 would be recorded.
    let dir = tempfile::tempdir().unwrap();
    let run = folder(dir.path(), ADARAT_FOLDER);
    let mut args = run_args("pgd-at/synthetic/adarat", "1");
    args.extend([
        "--set",
        "datasets.synthetic.test_size=4000",
        "--set",
        "evaluation.batch_size=8",
    ]);
    let child = adarat(dir.path(), &args).spawn().unwrap();
    wait_for("the per-epoch test", || {
        events(&run).contains(r#""type":"testing""#)
    });
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("stopped at epoch 1"), "{stderr}");
    assert!(stderr.contains("resumes after epoch 0"), "{stderr}");
    let stopped = result_json(&run);
    assert_eq!(stopped["status"], "stopped");
    assert_eq!(stopped["epochs_done"], 0, "{stopped}");
    assert!(!events(&run).contains("epoch_finished"));
}

#[test]
fn a_stopped_final_evaluation_goes_on_from_its_last_batch_and_gives_the_same_table() {
    // Sixteen test batches of an attack table long enough to be stopped in.
    let mut args = run_args("pgd-at/synthetic/baseline", "1");
    args.extend([
        "--set",
        "evaluation.batch_size=4",
        "--set",
        "evaluation.final_attacks=[fgsm, pgd10, pgd20, pgd50, cw]",
    ]);
    let job_folder = "pgd-at_synthetic_baseline_small-cnn_seed1";
    let whole = tempfile::tempdir().unwrap();
    let out = adarat(whole.path(), &args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uninterrupted = result_json(&folder(whole.path(), job_folder));

    let dir = tempfile::tempdir().unwrap();
    let run = folder(dir.path(), job_folder);
    let child = adarat(dir.path(), &args).spawn().unwrap();
    wait_for("two batches of the final evaluation", || {
        events(&run).matches(r#""type":"final_batch""#).count() >= 2
    });
    signal(&child, libc::SIGTERM);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("final evaluation"), "{stderr}");
    assert_eq!(result_json(&run)["status"], "stopped");
    let progress: Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("final-progress.json")).unwrap())
            .unwrap();
    let done = progress["batches"].as_u64().unwrap();
    assert!((2..16).contains(&done), "{progress}");
    let before = events(&run).len();

    let resumed = adarat(dir.path(), &args).output().unwrap();
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    // The second process started at the first batch not done, not at batch 1.
    let second_run = events(&run)[before..].to_string();
    let first_attack: Value = second_run
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["type"] == "final_attack")
        .unwrap();
    assert_eq!(
        first_attack["batch"].as_u64(),
        Some(done + 1),
        "{second_run}"
    );
    assert!(!run.join("final-progress.json").exists());
    // Every attack of every batch is seeded on its own: the table equals the uninterrupted one.
    let mut table = result_json(&run)["final"].clone();
    let mut expected = uninterrupted["final"].clone();
    for t in [&mut table, &mut expected] {
        t["seconds"] = Value::Null;
    }
    assert_eq!(table, expected);
    // So are the per-image records, carried across the stop in final-progress.json.
    let per_image = |run: &Path| std::fs::read_to_string(run.join("per-image.json")).unwrap();
    assert_eq!(
        per_image(&run),
        per_image(&folder(whole.path(), job_folder))
    );
}

#[test]
fn a_hangup_does_not_stop_a_headless_run() {
    let dir = tempfile::tempdir().unwrap();
    let run = folder(dir.path(), "pgd-at_synthetic_baseline_small-cnn_seed1");
    let child = adarat(dir.path(), &run_args("pgd-at/synthetic/baseline", "2"))
        .spawn()
        .unwrap();
    wait_for("the first batches", || events(&run).contains("batches"));
    signal(&child, libc::SIGHUP);
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_json(&run)["status"], "completed");
}

fn write_queue(output: &Path, queue: Value) {
    std::fs::create_dir_all(output).unwrap();
    std::fs::write(output.join("queue.json"), queue.to_string()).unwrap();
}

fn read_queue(output: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(output.join("queue.json")).unwrap()).unwrap()
}

/// A queue file damaged while a job runs: the worker moves it aside (its bytes kept), says so in its
/// log and in the queue file the console reads, goes on with an empty queue, and its running job
/// ends as if nothing had happened.
#[test]
fn a_damaged_queue_is_moved_aside_and_the_running_job_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let mut sets: Vec<&str> = TINY.iter().copied().filter(|a| *a != "--set").collect();
    sets.push("datasets.synthetic.epochs=2");
    write_queue(
        &output,
        json!({"jobs": [{"job": "pgd-at/synthetic/adarat", "config": null, "sets": sets, "seed": 1}]}),
    );
    let worker = adarat(
        dir.path(),
        &["worker", "--output", output.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let run = folder(dir.path(), ADARAT_FOLDER);
    wait_for("the job's first batches", || {
        events(&run).contains("batches")
    });
    std::fs::write(output.join("queue.json"), "{\"jobs\": [").unwrap();
    let out = worker.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("queue.json was damaged ("), "{log}");
    assert!(
        log.contains("pgd-at/synthetic/adarat seed 1: completed"),
        "{log}"
    );
    assert_eq!(result_json(&run)["status"], "completed");
    let queue = read_queue(&output);
    assert_eq!(queue["jobs"], json!([]));
    let notice = queue["notice"].as_str().unwrap();
    assert!(notice.contains("queue.json.damaged-"), "{notice}");
    let aside = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("queue.json.damaged-"))
        .unwrap_or_else(|| panic!("nothing moved aside: {log}"));
    assert_eq!(std::fs::read_to_string(aside).unwrap(), "{\"jobs\": [");
}

#[test]
fn the_worker_runs_the_queue_in_order_records_failures_and_pauses_on_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let mut sets: Vec<&str> = TINY.iter().copied().filter(|a| *a != "--set").collect();
    sets.push("datasets.synthetic.epochs=1");
    let mut long_sets = sets.clone();
    long_sets.push("datasets.synthetic.epochs=20");
    let mut bad_device = sets.clone();
    bad_device.push("device=tpu");
    write_queue(
        &output,
        json!({"jobs": [
            {"job": "trades/synthetic/adarat", "config": null, "sets": bad_device},
            {"job": "pgd-at/synthetic/baseline", "config": null, "sets": sets},
            {"job": "pgd-at/synthetic/adarat", "config": null, "sets": long_sets},
        ]}),
    );
    let worker = adarat(
        dir.path(),
        &["worker", "--output", output.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let long_run = folder(dir.path(), ADARAT_FOLDER);
    wait_for("the third job's first batches", || {
        events(&long_run).contains("batches")
    });
    // The first job failed before it had a run folder: the queue file says why.
    let queue = read_queue(&output);
    assert_eq!(queue["jobs"], json!([]));
    assert_eq!(queue["failures"][0]["job"], "trades/synthetic/adarat");
    let error = queue["failures"][0]["error"].as_str().unwrap();
    assert!(error.contains("--set device"), "{error}");
    // The second ran to the end before the third started.
    let baseline = result_json(&folder(
        dir.path(),
        "pgd-at_synthetic_baseline_small-cnn_seed1",
    ));
    assert_eq!(baseline["status"], "completed");

    signal(&worker, libc::SIGTERM);
    let (code, stderr) = finish(worker);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(result_json(&long_run)["status"], "stopped");
    assert_eq!(read_queue(&output)["paused"], true);
}

/// The run folders whose lock a process holds right now.
fn running_now(output: &Path) -> Vec<String> {
    let Ok(locks) = std::fs::read_dir(output.join(".locks")) else {
        return Vec::new();
    };
    locks
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().unwrap().to_string_lossy();
            !["worker.lock", "queue.lock"].contains(&name.as_ref())
                && matches!(adarat::lock::holder(path), adarat::lock::Holder::Held(_))
        })
        .map(|path| path.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// A worker whose output goes to `worker.log`, as when the console starts it.
fn start_worker(dir: &Path, output: &Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(output.join("worker.log"))
        .unwrap();
    adarat(dir, &["worker", "--output", output.to_str().unwrap()])
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn worker_log(output: &Path) -> String {
    std::fs::read_to_string(output.join("worker.log")).unwrap()
}

fn line_of(log: &str, text: &str) -> usize {
    log.lines()
        .position(|line| line.contains(text))
        .unwrap_or_else(|| panic!("worker.log lacks `{text}`:\n{log}"))
}

/// Two slots on the CPU: jobs overlap, a KD-AT student waits until its teachers (queued for it)
/// have completed while another job takes the free slot, and every result equals the job run
/// alone. Then a stop of one of two running jobs leaves the other running to its end.
#[test]
fn two_slots_run_jobs_at_once_students_wait_for_teachers_and_a_stop_ends_one_job() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let mut sets: Vec<String> = TINY
        .iter()
        .filter(|a| **a != "--set")
        .map(|a| a.to_string())
        .collect();
    sets.push("datasets.synthetic.epochs=1".into());
    let entry = |job: &str| json!({"job": job, "config": null, "sets": sets});
    write_queue(
        &output,
        json!({
            "jobs": [entry("kd-at/synthetic/baseline"), entry("pgd-at/synthetic/fixrat")],
            "placement": {"devices": ["cpu", "cpu"]},
        }),
    );
    let mut worker = start_worker(dir.path(), &output);
    let mut most_at_once = 0;
    let mut student_waited = false;
    wait_for("the queue to be done", || {
        most_at_once = most_at_once.max(running_now(&output).len());
        let queue = read_queue(&output);
        student_waited |= queue["jobs"].as_array().into_iter().flatten().any(|e| {
            e["job"] == "kd-at/synthetic/baseline"
                && e["waiting"]
                    .as_str()
                    .is_some_and(|w| w.contains("st/synthetic/baseline"))
        });
        worker.try_wait().unwrap().is_some()
    });
    let log = worker_log(&output);
    assert!(worker.wait().unwrap().success(), "{log}");
    assert_eq!(most_at_once, 2, "two jobs ran at once: {log}");
    assert!(student_waited, "the queue file said why the student waited");
    // Every entry runs with an explicit seed, which the worker's log names.
    let student = line_of(&log, "kd-at/synthetic/baseline seed 1: starting on cpu");
    assert!(
        line_of(&log, "st/synthetic/baseline seed 1: completed") < student,
        "{log}"
    );
    assert!(
        line_of(&log, "pgd-at/synthetic/baseline seed 1: completed") < student,
        "{log}"
    );

    // The same jobs, one after another by `adarat run`, give the same numbers.
    let mut alone = vec!["run", "kd-at/synthetic/baseline", "pgd-at/synthetic/fixrat"];
    alone.extend(["--epochs", "1", "--offline", "--output", "alone"]);
    alone.extend(TINY);
    let out = crate::common::adarat(dir.path(), &alone);
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    for run in [
        "st_synthetic_baseline_small-cnn_seed1",
        "pgd-at_synthetic_baseline_small-cnn_seed1",
        "kd-at_synthetic_baseline_small-cnn_seed1",
        "pgd-at_synthetic_fixrat_small-cnn_seed1",
    ] {
        let queued = result_json(&output.join(run));
        assert_eq!(queued["status"], "completed", "{run}");
        assert_eq!(
            crate::common::same_numbers(&queued),
            crate::common::same_numbers(&result_json(&dir.path().join("alone").join(run))),
            "{run} differs from the job run alone"
        );
    }

    // One device running two jobs at once; the one stopped ends `stopped`, the other completes.
    let long = |job: &str, epochs: &str| {
        let mut sets = sets.clone();
        sets.push(format!("datasets.synthetic.epochs={epochs}"));
        json!({"job": job, "config": null, "sets": sets})
    };
    write_queue(
        &output,
        json!({
            "jobs": [long("trades/synthetic/adarat", "40"), long("dat/synthetic/baseline", "3")],
            "placement": {"devices": ["cpu"], "jobs_per_device": 2},
        }),
    );
    let mut worker = start_worker(dir.path(), &output);
    let trades = output.join("trades_synthetic_adarat_small-cnn_seed1");
    wait_for("both jobs to train", || {
        running_now(&output).len() == 2 && events(&trades).contains("batches")
    });
    let lock = output
        .join(".locks")
        .join("trades_synthetic_adarat_small-cnn_seed1.lock");
    let adarat::lock::Holder::Held(Some(owner)) = adarat::lock::holder(&lock) else {
        panic!("the trades job holds its lock");
    };
    adarat::native::posix::send_signal(owner.pid, libc::SIGTERM).unwrap();
    let status = worker.wait().unwrap();
    assert!(status.success(), "{}", worker_log(&output));
    assert_eq!(result_json(&trades)["status"], "stopped");
    let dat = result_json(&output.join("dat_synthetic_baseline_small-cnn_seed1"));
    assert_eq!(dat["status"], "completed", "the other job went on");
    assert_eq!(
        read_queue(&output)["paused"],
        true,
        "a stop pauses the queue"
    );
}

#[test]
fn each_seed_of_a_job_is_its_own_run_for_the_worker_run_list_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let mut sets: Vec<&str> = TINY.iter().copied().filter(|a| *a != "--set").collect();
    sets.push("datasets.synthetic.epochs=1");
    // The console queues one entry per seed; the worker runs each in its own folder.
    write_queue(
        &output,
        json!({"jobs": [
            {"job": "pgd-at/synthetic/baseline", "seed": 1, "config": null, "sets": sets},
            {"job": "pgd-at/synthetic/baseline", "seed": 2, "config": null, "sets": sets},
        ]}),
    );
    let worker = adarat(
        dir.path(),
        &["worker", "--output", output.to_str().unwrap()],
    )
    .spawn()
    .unwrap();
    let (code, stderr) = finish(worker);
    assert_eq!(code, Some(0), "{stderr}");
    for seed in [1, 2] {
        let run = folder(
            dir.path(),
            &format!("pgd-at_synthetic_baseline_small-cnn_seed{seed}"),
        );
        let result = result_json(&run);
        assert_eq!(
            (result["status"].as_str(), result["seed"].as_u64()),
            (Some("completed"), Some(seed))
        );
    }
    let log = std::fs::read_to_string(output.join("worker.log")).unwrap_or_default();
    assert_eq!(read_queue(&output)["jobs"], json!([]), "{log}");

    // `adarat run` goes seed by seed through the jobs it is given.
    let mut args = vec![
        "run",
        "pgd-at/synthetic/adarat",
        "pgd-at/synthetic/baseline",
        "--seed",
        "3,4",
        "--epochs",
        "1",
        "--offline",
    ];
    args.extend(TINY);
    let run = adarat(dir.path(), &args).output().unwrap();
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{said}");
    let order: Vec<&str> = (said.lines())
        .filter_map(|l| l.split(" -> ").nth(1))
        .map(|path| path.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "pgd-at_synthetic_adarat_small-cnn_seed3",
            "pgd-at_synthetic_baseline_small-cnn_seed3",
            "pgd-at_synthetic_adarat_small-cnn_seed4",
            "pgd-at_synthetic_baseline_small-cnn_seed4",
        ],
        "{said}"
    );

    // `adarat list` names each seed's run; export averages the four baseline seeds.
    let listed = adarat(
        dir.path(),
        &[
            "list",
            "--set",
            "grid.datasets=[synthetic]",
            "--set",
            "grid.seeds=[1,2,3,4,5]",
        ],
    )
    .output()
    .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let baseline: Vec<&str> = (listed.lines())
        .filter(|l| l.starts_with("pgd-at/synthetic/baseline "))
        .collect();
    assert_eq!(baseline.len(), 5, "{listed}");
    assert!(
        baseline[1].contains("seed 2") && baseline[1].contains("completed 1/1"),
        "{listed}"
    );
    assert!(
        baseline[4].contains("seed 5") && baseline[4].contains("not run"),
        "{listed}"
    );
    let exported = adarat(dir.path(), &["export", "--output", "output"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&exported.stdout).into_owned();
    assert!(table.contains("| pgd-at | baseline | 4 |"), "{table}");
    assert!(table.contains("| pgd-at | adarat | 2 |"), "{table}");
}

/// The study's scheduler as `scheduler: {local: {}}`: `adarat submit` queues the planned runs
/// (teachers first) for this machine's worker, which runs them; a second submit sends nothing.
/// Run options the queue cannot carry, an unknown backend and a study with the old `slurm:`
/// section are each refused in one line.
#[test]
fn the_local_scheduler_queues_a_submission_for_this_machines_worker() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let submit = |extra: &[&str]| {
        let mut args = vec!["submit", "kd-at/synthetic/baseline", "--output", "output"];
        args.extend(["--set", "scheduler={local: {}}"]);
        args.extend(["--set", "datasets.synthetic.epochs=1"]);
        args.extend(TINY);
        args.extend(extra);
        adarat(dir.path(), &args).output().unwrap()
    };
    let refusals = [
        (vec!["--epochs", "1"], "can only be given to adarat run"),
        (
            vec!["--set", "scheduler={kubernetes: {}}"],
            "unknown backend `kubernetes`",
        ),
        (
            vec!["--set", "scheduler.local.partition=gpu"],
            "scheduler.local: takes no settings",
        ),
        (
            vec!["--set", "slurm.partition=gpu"],
            "the Slurm settings are now `scheduler: {slurm: …}`",
        ),
    ];
    for (extra, expected) in refusals {
        let out = submit(&extra);
        let text = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {text}");
        assert!(text.contains(expected), "{extra:?}: {text}");
        assert_eq!(text.lines().count(), 1, "{extra:?}: {text}");
    }

    // Nothing refused was queued.
    assert!(!output.join("queue.json").exists());
    let out = submit(&[]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        said.contains("submitted queue: st/synthetic/baseline, pgd-at/synthetic/baseline, kd-at/synthetic/baseline"),
        "{said}"
    );
    let student = folder(dir.path(), "kd-at_synthetic_baseline_small-cnn_seed1");
    wait_for("the worker to run the student", || {
        student.join("result.json").exists()
            && result_json(&student)["status"] == "completed"
            && adarat::worker::worker_pid(&output).is_none()
    });
    let log = worker_log(&output);
    assert!(
        line_of(&log, "kd-at/synthetic/baseline") > line_of(&log, "st/synthetic/baseline"),
        "{log}"
    );

    let again = submit(&[]);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(again.status.success());
    assert!(
        said.contains("skipped kd-at/synthetic/baseline seed 1: completed")
            && said.contains("nothing to submit"),
        "{said}"
    );
}
