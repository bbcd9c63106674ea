//! KD-AT and IAD with their teachers, through the real binary on a tiny synthetic dataset:
//! missing teachers are trained first, finished ones reused, a teacher that does not fit the
//! student is refused in one line, every mode trains, and the queue worker does the same.
use crate::common;
use adarat::config::Protocol;
use adarat::models::{ModelSpec, Network};
use adarat::store::result::RunResult;
use adarat::vocab::{DatasetKind, Mode, ModelKind, Status};

use common::{adarat_command as adarat, result_json, stderr, TINY};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};
use tch::Device;

const ROBUST_FOLDER: &str = "pgd-at_synthetic_baseline_small-cnn_seed1";
const STANDARD_FOLDER: &str = "st_synthetic_baseline_small-cnn_seed1";

/// `adarat run JOBS... --epochs 1` on the tiny set, with extra `--set` values.
fn run(dir: &Path, jobs: &[&str], sets: &[&str]) -> Output {
    let mut args = vec!["run"];
    args.extend(jobs);
    args.extend(["--epochs", "1", "--offline"]);
    args.extend(TINY);
    for set in sets {
        args.extend(["--set", set]);
    }
    adarat(dir, &args).output().expect("the adarat binary runs")
}

fn output(dir: &Path) -> PathBuf {
    dir.join("output")
}

/// A finished teacher run made by hand: `model` weights for the synthetic images and `classes`
/// classes, and a completed `result.json`.
fn plant_teacher(output: &Path, method: &str, model: ModelKind, classes: i64) -> PathBuf {
    let folder = output.join(format!("{method}_synthetic_baseline_small-cnn_seed1"));
    std::fs::create_dir_all(&folder).unwrap();
    let spec = ModelSpec::new(model, 3, 32, 32, classes);
    let network = {
        let _torch = common::torch_lock();
        Network::new(&spec, Device::Cpu).unwrap()
    };
    network.save(&folder.join("model.safetensors")).unwrap();
    let result = RunResult {
        job: format!("{method}/synthetic/baseline").parse().unwrap(),
        method: method.parse().unwrap(),
        dataset: DatasetKind::Synthetic,
        mode: Mode::Baseline,
        model: ModelKind::SmallCnn,
        seed: 1,
        protocol: Protocol::Default,
        device: "cpu".into(),
        status: Status::Completed,
        error: None,
        epochs: 1,
        epochs_done: 1,
        seconds: 1.0,
        epochs_log: Vec::new(),
        peaks: None,
        final_table: None,
    };
    std::fs::write(
        folder.join("result.json"),
        serde_json::to_string(&result).unwrap(),
    )
    .unwrap();
    folder
}

/// Run folders of `output` whose names start with `prefix` (archived runs included).
fn folders_starting_with(output: &Path, prefix: &str) -> usize {
    std::fs::read_dir(output)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with(prefix)
        })
        .count()
}

fn train_log(folder: &Path) -> Vec<String> {
    std::fs::read_to_string(folder.join("train.log"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The header and first epoch row of a train.log.
fn header_and_row(folder: &Path) -> (String, String) {
    let log = train_log(folder);
    (log[2].clone(), log[3].clone())
}

fn teacher_acc(result: &Value) -> f64 {
    result["epochs_log"][0]["train_teacher_acc"]
        .as_f64()
        .expect("the robust teacher's accuracy is recorded")
}

#[test]
fn kd_at_on_an_empty_output_folder_trains_its_teachers_first_then_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = output(dir.path());

    let first = run(dir.path(), &["kd-at/synthetic/adarat"], &[]);
    let text = stderr(&first);
    assert!(first.status.success(), "{text}");
    // The teachers ran first, each to completion, then the student.
    let position = |job: &str| {
        text.find(&format!("{job}: completed"))
            .unwrap_or_else(|| panic!("no summary line for {job} in:\n{text}"))
    };
    assert!(position("pgd-at/synthetic/baseline") < position("kd-at/synthetic/adarat"));
    assert!(position("st/synthetic/baseline") < position("kd-at/synthetic/adarat"));
    for teacher in [ROBUST_FOLDER, STANDARD_FOLDER] {
        let folder = out_dir.join(teacher);
        assert_eq!(result_json(&folder)["status"], "completed", "{teacher}");
        assert!(folder.join("model.safetensors").is_file(), "{teacher}");
    }

    let student = out_dir.join("kd-at_synthetic_adarat_small-cnn_seed1");
    let result = result_json(&student);
    assert_eq!(result["status"], "completed");
    assert_eq!(result["epochs_done"], 1);
    assert!(result["final"]["pgd10"].as_f64().is_some(), "{result}");
    let epoch = &result["epochs_log"][0];
    for loss in ["train_loss", "train_clean_loss", "train_adv_loss"] {
        assert!(epoch[loss].as_f64().unwrap().is_finite(), "{loss}");
    }
    assert!((0.0..=100.0).contains(&teacher_acc(&result)));
    let (header, row) = header_and_row(&student);
    assert!(header.ends_with("test_PGD_acc   teacher"), "{header}");
    let teacher_field = format!("{:05.2}%", teacher_acc(&result));
    assert!(
        row.ends_with(&format!("%         {teacher_field}")),
        "{row}"
    );

    // A second student reuses both teachers: nothing of theirs changes, nothing is archived.
    let robust_before = std::fs::read(out_dir.join(ROBUST_FOLDER).join("result.json")).unwrap();
    let standard_before = std::fs::read(out_dir.join(STANDARD_FOLDER).join("result.json")).unwrap();
    let second = run(dir.path(), &["iad/synthetic/baseline"], &[]);
    let text = stderr(&second);
    assert!(second.status.success(), "{text}");
    assert!(!text.contains("pgd-at/synthetic/baseline"), "{text}");
    assert!(!text.contains("st/synthetic/baseline"), "{text}");
    assert_eq!(
        std::fs::read(out_dir.join(ROBUST_FOLDER).join("result.json")).unwrap(),
        robust_before
    );
    assert_eq!(
        std::fs::read(out_dir.join(STANDARD_FOLDER).join("result.json")).unwrap(),
        standard_before
    );
    assert_eq!(folders_starting_with(&out_dir, "pgd-at_"), 1);
    assert_eq!(folders_starting_with(&out_dir, "st_"), 1);
    let iad = result_json(&out_dir.join("iad_synthetic_baseline_small-cnn_seed1"));
    assert_eq!(iad["status"], "completed");
}

#[test]
fn a_teacher_that_does_not_fit_the_student_is_refused_in_one_line() {
    for (model, classes, problem) in [
        (ModelKind::SmallCnn, 5, "shape"),
        (ModelKind::PreActResNet18, 10, "tensor"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = output(dir.path());
        plant_teacher(&out_dir, "st", ModelKind::SmallCnn, 10);
        let robust = plant_teacher(&out_dir, "pgd-at", model, classes);

        let out = run(dir.path(), &["kd-at/synthetic/baseline"], &[]);
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{model}: {text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{model}: {text}");
        let file = robust.join("model.safetensors");
        assert!(lines[0].contains(&file.display().to_string()), "{text}");
        assert!(lines[0].contains("robust teacher"), "{text}");
        assert!(lines[0].contains(problem), "{text}");
        assert!(!text.contains("panicked"), "{text}");
        // Refused before the student's run folder exists.
        assert_eq!(folders_starting_with(&out_dir, "kd-at_"), 0);
    }
}

#[test]
fn kd_at_and_iad_complete_an_epoch_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = output(dir.path());
    plant_teacher(&out_dir, "st", ModelKind::SmallCnn, 10);
    plant_teacher(&out_dir, "pgd-at", ModelKind::SmallCnn, 10);
    let jobs = [
        "kd-at/synthetic/baseline",
        "kd-at/synthetic/fixrat",
        "kd-at/synthetic/adarat",
        "iad/synthetic/baseline",
        "iad/synthetic/fixrat",
        "iad/synthetic/adarat",
    ];
    // IAD's introspective KD_adv from the first epoch; u = 1 puts the untrained student's
    // KD_clean (about 0.25 ln 10) below AdaRAT's switch, so the barrier branch is taken.
    let sets = [
        "methods.iad.params.begin=0",
        "methods.kd-at.settings.up=1",
        "methods.iad.settings.up=1",
    ];
    let out = run(dir.path(), &jobs, &sets);
    assert!(out.status.success(), "{}", stderr(&out));
    for job in jobs {
        let folder = out_dir.join(format!("{}_small-cnn_seed1", job.replace('/', "_")));
        let result = result_json(&folder);
        assert_eq!(result["status"], "completed", "{job}");
        let epoch = &result["epochs_log"][0];
        assert!(epoch["train_loss"].as_f64().unwrap().is_finite(), "{job}");
        assert!((0.0..=100.0).contains(&teacher_acc(&result)), "{job}");
        let ratio = epoch["ratio_mean"].as_f64();
        let share = epoch["clean_branch_share"].as_f64();
        match job.rsplit('/').next().unwrap() {
            "baseline" => assert!(ratio.is_none() && share.is_none(), "{job}: {epoch}"),
            "fixrat" => assert!(ratio == Some(1.0) && share.is_none(), "{job}: {epoch}"),
            _ => assert!(
                ratio.is_some_and(|r| r > 0.0) && share.is_some_and(|s| s < 1.0),
                "{job}: {epoch}"
            ),
        }
        // The teacher column is KD-AT's only (docs/run-folder.md#trainlog).
        let (header, _) = header_and_row(&folder);
        assert_eq!(
            header.ends_with("teacher"),
            job.starts_with("kd-at"),
            "{job}"
        );
    }
}

fn write_queue(output: &Path, queue: Value) {
    std::fs::create_dir_all(output).unwrap();
    std::fs::write(output.join("queue.json"), queue.to_string()).unwrap();
}

/// Runs `adarat worker` on the queue of `out_dir` until it exits (five minutes at most): its exit
/// code and output.
fn serve_queue(dir: &Path, out_dir: &Path) -> (Option<i32>, String) {
    let mut worker = adarat(dir, &["worker", "--output", out_dir.to_str().unwrap()])
        .spawn()
        .unwrap();
    let start = Instant::now();
    while worker.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(300) {
            worker.kill().unwrap();
            panic!("the worker did not exit");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = worker.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code(), log)
}

fn read_queue(out_dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out_dir.join("queue.json")).unwrap()).unwrap()
}

#[test]
fn a_teacher_that_fails_before_it_has_a_folder_blocks_its_student_and_starts_once() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = output(dir.path());
    let empty = dir.path().join("no-data");
    std::fs::create_dir_all(&empty).unwrap();
    // CIFAR-10 is missing and its mirror refuses every connection: both teachers fail before
    // either has a run folder.
    let sets = [
        format!("paths.data={}", empty.display()),
        "paths.mirror=http://127.0.0.1:9/".to_string(),
    ];
    let student = json!({"job": "kd-at/cifar10/baseline", "config": null, "sets": sets, "seed": 1});
    write_queue(&out_dir, json!({ "jobs": [student] }));
    let (code, log) = serve_queue(dir.path(), &out_dir);
    assert_eq!(
        code,
        Some(0),
        "the worker exits when nothing can run: {log}"
    );
    for teacher in [
        "st/cifar10/baseline seed 1",
        "pgd-at/cifar10/baseline seed 1",
    ] {
        assert_eq!(
            log.matches(&format!("{teacher}: starting")).count(),
            1,
            "{log}"
        );
        assert!(log.contains(&format!("{teacher}: failed: ")), "{log}");
    }
    assert!(
        !log.contains("kd-at/cifar10/baseline seed 1: starting"),
        "{log}"
    );
    let queue = read_queue(&out_dir);
    let jobs = queue["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "the student waits: {queue}");
    let waiting = jobs[0]["waiting"].as_str().unwrap();
    assert!(
        waiting.starts_with("its teacher st/cifar10/baseline failed: ")
            && waiting.ends_with("(queue it again to go on)"),
        "{waiting}"
    );
    // A second worker on the same queue starts nothing again.
    let (code, log) = serve_queue(dir.path(), &out_dir);
    assert_eq!(code, Some(0), "{log}");
    assert!(!log.contains("starting"), "{log}");
}

#[test]
fn the_worker_trains_a_missing_teacher_before_its_student_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = output(dir.path());
    let mut sets: Vec<&str> = TINY.iter().copied().filter(|a| *a != "--set").collect();
    sets.push("datasets.synthetic.epochs=1");
    // The robust teacher also waits in the queue, behind its student: it runs once.
    write_queue(
        &out_dir,
        json!({"jobs": [
            {"job": "kd-at/synthetic/baseline", "config": null, "sets": sets},
            {"job": "pgd-at/synthetic/baseline", "config": null, "sets": sets},
        ]}),
    );
    let (code, log) = serve_queue(dir.path(), &out_dir);
    assert_eq!(code, Some(0), "{log}");
    // The standard teacher was queued for the student; each teacher completed before it started.
    let line = |text: &str| {
        log.lines()
            .position(|l| l.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in {log}"))
    };
    // Every entry runs with an explicit seed, which the worker's log names.
    let student = line("kd-at/synthetic/baseline seed 1: starting on cpu");
    assert!(
        line("st/synthetic/baseline seed 1: completed") < student,
        "{log}"
    );
    assert!(
        line("pgd-at/synthetic/baseline seed 1: completed") < student,
        "{log}"
    );
    for folder in [ROBUST_FOLDER, "kd-at_synthetic_baseline_small-cnn_seed1"] {
        assert_eq!(
            result_json(&out_dir.join(folder))["status"],
            "completed",
            "{folder}: {log}"
        );
    }
    assert_eq!(folders_starting_with(&out_dir, "pgd-at_"), 1, "{log}");
    let queue = read_queue(&out_dir);
    assert_eq!(queue["jobs"], json!([]));
    assert_eq!(queue["failures"], json!([]));
}
