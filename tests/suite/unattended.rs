//! A study left alone: the queue worker through ordinary faults at once, with real processes
//! (README, "Reliability"; docs/architecture.md#the-queue). Nothing is trained twice, nothing
//! loops, every run ends completed or failed or blocked with its reason, and `adarat list` says
//! what the run folders say.
use crate::common;

use common::{adarat_command as adarat, result_json, stderr, stdout, wait_for, TINY};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

/// The study of these tests: TINY on synthetic, two epochs, three CPU slots, and a CIFAR-10 that
/// is not in the data folder and cannot be downloaded (the mirror is a closed local port).
fn study_args(dir: &Path) -> Vec<String> {
    let data = dir.join("data");
    let mut args: Vec<String> = TINY.iter().map(|a| a.to_string()).collect();
    for set in [
        "datasets.synthetic.epochs=2".to_string(),
        "queue.devices=[cpu, cpu, cpu]".to_string(),
        "grid.datasets=[synthetic, cifar10]".to_string(),
        "paths.mirror=http://127.0.0.1:9".to_string(),
        format!("paths.data={}", data.display()),
    ] {
        args.extend(["--set".to_string(), set]);
    }
    args.extend([
        "--output".to_string(),
        dir.join("output").display().to_string(),
    ]);
    args
}

/// `adarat <command> <jobs> <study>`, started (not waited for).
fn start(dir: &Path, command: &str, jobs: &[&str]) -> std::process::Child {
    let study = study_args(dir);
    let mut args: Vec<&str> = vec![command];
    args.extend(jobs);
    args.extend(study.iter().map(String::as_str));
    adarat(dir, &args).spawn().unwrap()
}

fn succeeded(child: std::process::Child) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out
}

/// The pid holding the lock at `path`, if a process holds it.
fn holder_pid(path: &Path) -> Option<u32> {
    match adarat::lock::holder(path) {
        adarat::lock::Holder::Held(owner) => owner.map(|o| o.pid),
        adarat::lock::Holder::Free => None,
    }
}

/// The run folders whose lock a process holds now, with its pid.
fn running(output: &Path) -> Vec<(String, u32)> {
    let Ok(locks) = std::fs::read_dir(output.join(".locks")) else {
        return Vec::new();
    };
    (locks.filter_map(|entry| entry.ok().map(|e| e.path())))
        .filter(|path| path.extension().is_some_and(|e| e == "lock"))
        .filter_map(|path| {
            let name = path.file_stem()?.to_string_lossy().into_owned();
            let pid = holder_pid(&path)?;
            (!["worker", "queue"].contains(&name.as_str())).then_some((name, pid))
        })
        .collect()
}

fn worker_pid(output: &Path) -> Option<u32> {
    holder_pid(&output.join(".locks/worker.lock"))
}

/// The parent of process `pid`, from /proc.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: the command may hold spaces, so read after its `)`.
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn kill(pid: u32) {
    adarat::native::posix::send_signal(pid, libc::SIGKILL).unwrap();
}

/// How many times each run folder's run started (its `started` events), by folder name.
fn starts(output: &Path) -> Vec<(String, usize)> {
    let mut found: Vec<(String, usize)> = std::fs::read_dir(output)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("events.jsonl").is_file())
        .map(|e| {
            let events = std::fs::read_to_string(e.path().join("events.jsonl")).unwrap();
            let started = (events.lines())
                .filter(|l| l.contains("\"type\":\"started\""))
                .count();
            (e.file_name().to_string_lossy().into_owned(), started)
        })
        .collect();
    found.sort();
    found
}

fn read_queue(output: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(output.join("queue.json")).unwrap()).unwrap()
}

/// The line of `adarat list` for `job`'s run.
fn listed<'a>(list: &'a str, job: &str) -> &'a str {
    (list.lines())
        .find(|l| l.starts_with(&format!("{job} ")))
        .unwrap_or_else(|| panic!("{job} not listed:\n{list}"))
}

/// Students whose teachers cannot run (CIFAR-10 missing, no network), students and others whose
/// teachers can, on three CPU slots; meanwhile two processes queue the same jobs at once (twice),
/// the worker is SIGKILLed while three jobs run, the queue file is damaged, and a running job is
/// SIGKILLed. At the end the worker has exited by itself, no run started twice, each run is
/// completed, failed with its reason, or blocked with its teacher's reason, and `adarat list`
/// agrees with the run folders and the queue.
#[test]
fn a_study_goes_through_killed_processes_a_damaged_queue_and_double_enqueues_without_training_twice(
) {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    let jobs = [
        "kd-at/cifar10/baseline",
        "iad/cifar10/adarat",
        "kd-at/synthetic/baseline",
        "kd-at/synthetic/fixrat",
        "iad/synthetic/baseline",
        "iad/synthetic/adarat",
        "pgd-at/synthetic/fixrat",
        "pgd-at/synthetic/adarat",
        "trades/synthetic/baseline",
        "fat/synthetic/baseline",
    ];
    // With the two teachers the synthetic students queue for themselves.
    let synthetic_runs = jobs.iter().filter(|j| j.contains("synthetic")).count() + 2;

    // Two processes queue the same jobs at once: each run is queued once, one worker starts.
    let (first, second) = (
        start(dir.path(), "queue", &jobs),
        start(dir.path(), "queue", &jobs),
    );
    let said = stdout(&succeeded(first)) + &stdout(&succeeded(second));
    assert!(said.contains("queued"), "{said}");

    // The worker is killed while three jobs run; they go on without it.
    wait_for("three jobs running at once", || running(&output).len() == 3);
    let first_worker = worker_pid(&output).expect("a worker serves the queue");
    kill(first_worker);
    wait_for("the worker to be gone", || worker_pid(&output).is_none());

    // The queue file is damaged; the user queues everything again, from two processes at once.
    std::fs::write(output.join("queue.json"), "{\"jobs\": [{\"job\"").unwrap();
    let (first, second) = (
        start(dir.path(), "queue", &jobs),
        start(dir.path(), "queue", &jobs),
    );
    let said = stderr(&succeeded(first)) + &stderr(&succeeded(second));
    assert!(said.contains("queue.json was damaged"), "{said}");
    // The worker queueing started takes its lock once libtorch has loaded.
    let mut worker = None;
    wait_for("the new worker", || {
        worker = worker_pid(&output).filter(|&pid| pid != first_worker);
        worker.is_some()
    });
    let worker = worker.unwrap();

    // A job the new worker started is killed.
    let mut victim = None;
    wait_for("a job of the new worker", || {
        victim = (running(&output).into_iter()).find(|(_, pid)| parent_of(*pid) == Some(worker));
        victim.is_some()
    });
    let (victim, pid) = victim.unwrap();
    kill(pid);

    wait_for("the worker to finish and exit", || {
        worker_pid(&output).is_none()
    });
    let log = std::fs::read_to_string(output.join("worker.log")).unwrap();
    let queue = read_queue(&output);

    // No run started twice; every synthetic run has a folder with its event log, but the killed
    // job, which may have been killed between taking its run's lock and writing its first event.
    let starts = starts(&output);
    let victim_logged = starts.iter().any(|(folder, _)| *folder == victim);
    assert_eq!(
        starts.len() + usize::from(!victim_logged),
        synthetic_runs,
        "{starts:?}\n{log}"
    );
    assert!(
        (starts.iter()).all(|(folder, n)| *n == 1 || (*folder == victim && *n == 0)),
        "{starts:?}\n{log}"
    );
    for (folder, _) in &starts {
        if *folder == victim {
            continue;
        }
        let result = result_json(&output.join(folder));
        assert_eq!(result["status"], "completed", "{folder}\n{log}");
    }
    // The killed job failed with the signal as its reason: in its result.json when it had
    // written one, else in the queue file.
    let victim_job: adarat::store::RunName = victim.parse().unwrap();
    let error = match std::fs::read_to_string(output.join(&victim).join("result.json")) {
        Ok(_) => {
            let result = result_json(&output.join(&victim));
            assert_eq!(result["status"], "failed", "{victim}");
            result["error"].as_str().unwrap().to_string()
        }
        Err(_) => (queue["failures"].as_array().unwrap().iter())
            .find(|f| f["job"] == victim_job.job.to_string())
            .unwrap_or_else(|| panic!("no failure of {victim}: {queue}"))["error"]
            .as_str()
            .unwrap()
            .to_string(),
    };
    assert!(error.contains("signal"), "{error}");

    // The CIFAR-10 students wait, blocked by their teachers' failure; nothing else is queued.
    let waiting: Vec<(&str, &str)> = (queue["jobs"].as_array().unwrap().iter())
        .map(|e| {
            (
                e["job"].as_str().unwrap(),
                e["waiting"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(waiting.len(), 2, "{queue}");
    for (job, why) in &waiting {
        assert!(job.contains("/cifar10/"), "{queue}");
        assert!(
            why.contains("its teacher") && why.contains("cifar10"),
            "{why}"
        );
    }

    // `adarat list` says what the folders and the queue say.
    let list = succeeded(start(dir.path(), "list", &[]));
    let list = stdout(&list);
    for (folder, _) in &starts {
        let run: adarat::store::RunName = folder.parse().unwrap();
        let status = match *folder == victim {
            true => "failed".to_string(),
            false => result_json(&output.join(folder))["status"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        let line = listed(&list, &run.job.to_string());
        assert!(line.contains(&format!(" {status}")), "{line}\n{list}");
    }
    assert!(
        listed(&list, "kd-at/cifar10/baseline").contains("queued  (its teacher"),
        "{list}"
    );
    assert!(
        listed(&list, "st/cifar10/baseline").contains("failed"),
        "{list}"
    );
}

/// A run that another process runs (here an `adarat run` in a terminal) is not started by the
/// worker: its entry waits, and when that run completes the entry is dropped, not trained again,
/// and no failure is recorded.
#[test]
fn the_worker_waits_for_a_run_another_process_runs_and_never_starts_it_twice() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let job = "pgd-at/synthetic/adarat";
    let run = output.join("pgd-at_synthetic_adarat_small-cnn_seed1");
    let outside = start(dir.path(), "run", &[job]);
    wait_for("the run to start", || {
        std::fs::read_to_string(run.join("events.jsonl")).is_ok_and(|e| e.contains("batches"))
    });
    succeeded(start(dir.path(), "queue", &[job]));
    wait_for("the worker to see the run busy", || {
        std::fs::read_to_string(output.join("queue.json"))
            .is_ok_and(|q| q.contains("already running in process"))
    });
    succeeded(outside);
    wait_for("the worker to exit", || worker_pid(&output).is_none());
    let queue = read_queue(&output);
    assert_eq!(queue["jobs"], serde_json::json!([]), "{queue}");
    assert_eq!(queue["failures"], serde_json::json!([]), "{queue}");
    let folder = run.file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(starts(&output), [(folder, 1)]);
    let list = stdout(&succeeded(start(dir.path(), "list", &[])));
    assert!(listed(&list, job).contains("completed 2/2"), "{list}");
}
