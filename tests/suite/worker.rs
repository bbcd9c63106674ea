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
    assert_eq!(second.status.code(), Some(2), "{message}");
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
