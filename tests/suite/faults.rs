//! Fault injection with real processes: runs killed with SIGKILL at random instants, a full disk,
//! and damaged resume files. Whatever happens, a rerun ends with the numbers of an uninterrupted run,
//! or refuses with one line naming the damaged file.
use crate::common;
use common::{adarat, adarat_command, result_json, same_numbers, stderr, TINY};
use serde_json::Value;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const JOB: &str = "pgd-at/synthetic/adarat";
const FOLDER: &str = "pgd-at_synthetic_adarat_small-cnn_seed1";

fn args(output: &str) -> Vec<&str> {
    args_with_epochs(output, "3")
}

fn args_with_epochs<'a>(output: &'a str, epochs: &'a str) -> Vec<&'a str> {
    vec![
        "run",
        JOB,
        "--epochs",
        epochs,
        "--limit-train",
        "96",
        "--limit-test",
        "48",
        "--device",
        "cpu",
        "--offline",
        "--output",
        output,
        "--set",
        "evaluation.final_attacks=[fgsm, pgd10]",
    ]
}

/// The result of the same job run once, start to end.
fn uninterrupted(dir: &Path) -> Value {
    uninterrupted_with(dir, args("straight"))
}

fn uninterrupted_with(dir: &Path, args: Vec<&str>) -> Value {
    let out = adarat(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    result_json(&dir.join("straight").join(FOLDER))
}

#[test]
fn runs_killed_at_random_instants_end_as_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let expected = uninterrupted_with(dir.path(), args_with_epochs("straight", EPOCHS));
    // Kill instants are fractions of the uninterrupted run's duration, so kills land alike on fast
    // and slow machines, and a fixed pseudo-random sequence, so a failure can be replayed. An
    // attempt killed before 35 % of a six-epoch run commits at most about two epochs, so the first
    // three attempts are killed; the later ones finish once little is left. Under a loaded suite the
    // uninterrupted run can take far longer than the attempts after it, which then finish before
    // three kills: the scenario runs again in a new folder with instants half as long.
    const EPOCHS: &str = "6";
    let whole = started.elapsed();
    let mut state = 0x2545_f491_u64;
    let mut fraction = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut kills = 0;
    for round in 0..3 {
        let scale = 0.5f64.powi(round);
        let output = format!("output{round}");
        let mut attempts = 0;
        kills = 0;
        loop {
            attempts += 1;
            let mut child = adarat_command(dir.path(), &args_with_epochs(&output, EPOCHS))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            std::thread::sleep(whole.mul_f64(scale * (0.1 + 0.25 * fraction())));
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "attempt {attempts} failed: {status}");
                break;
            }
            child.kill().unwrap();
            child.wait().unwrap();
            kills += 1;
            assert!(attempts < 40, "no run finished in {attempts} attempts");
        }
        let finished = result_json(&dir.path().join(&output).join(FOLDER));
        assert_eq!(finished["status"], "completed");
        assert_eq!(same_numbers(&finished), same_numbers(&expected));
        eprintln!("faults injected: {kills} SIGKILLs over {attempts} runs of {JOB}; the result equals an uninterrupted run's");
        if kills >= 3 {
            return;
        }
    }
    panic!("only {kills} kills landed, even at an eighth of the instants: the test proves little");
}

#[test]
fn a_full_disk_fails_the_job_keeps_the_last_point_and_a_rerun_finishes_it() {
    let dir = tempfile::tempdir().unwrap();
    let expected = uninterrupted(dir.path());
    let folder = dir.path().join("output").join(FOLDER);

    // The second epoch's weights cannot be written.
    let out = adarat_command(dir.path(), &args("output"))
        .env("ADARAT_FAULT_FULL_DISK", "resume-e0002")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("failed") && text.contains("No space left on device"),
        "{text}"
    );
    let failed = result_json(&folder);
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("resume-e0002.safetensors"));
    let point: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("resume.json")).unwrap())
            .unwrap();
    assert_eq!(point["epochs_done"], 1);
    assert!(folder.join("resume-e0001.safetensors").is_file());

    // result.json itself cannot be written: the job fails with both reasons, the point stays.
    let out = adarat_command(dir.path(), &args("output"))
        .env("ADARAT_FAULT_FULL_DISK", "result.json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("result.json could not be updated either"),
        "{}",
        stderr(&out)
    );
    assert_eq!(result_json(&folder)["status"], "failed");

    let out = adarat(dir.path(), &args("output"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming at epoch 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(same_numbers(&result_json(&folder)), same_numbers(&expected));
    eprintln!(
        "faults injected: 2 full-disk writes; the rerun resumed and equals an uninterrupted run"
    );
}

enum Damage {
    Truncated,
    OneBitFlipped,
    Emptied,
}

impl Damage {
    fn apply(&self, path: &Path) {
        let mut bytes = std::fs::read(path).unwrap();
        match self {
            Damage::Truncated => bytes.truncate(bytes.len() / 2),
            Damage::OneBitFlipped => *bytes.last_mut().unwrap() ^= 1,
            Damage::Emptied => bytes.clear(),
        }
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn damaged_resume_files_are_refused_by_name_and_fresh_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("output").join(FOLDER);
    let out = adarat_command(dir.path(), &args("output"))
        .env("ADARAT_FAULT_KILL_AFTER_EPOCH", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let weights = folder.join("resume-e0001.safetensors");
    let intact = std::fs::read(&weights).unwrap();

    let damages = [
        ("resume-e0001.safetensors", Damage::Truncated),
        ("resume-e0001.safetensors", Damage::OneBitFlipped),
        ("resume.json", Damage::Truncated),
        ("result.json", Damage::Emptied),
    ];
    for (file, damage) in &damages {
        let saved: Vec<(std::path::PathBuf, Vec<u8>)> = ["resume.json", "result.json"]
            .iter()
            .map(|f| (folder.join(f), std::fs::read(folder.join(f)).unwrap()))
            .collect();
        damage.apply(&folder.join(file));
        let out = adarat(dir.path(), &args("output"));
        assert_eq!(out.status.code(), Some(2), "{file}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(
            text.contains(&format!("{file}: damaged")) && text.contains("--fresh"),
            "{text}"
        );
        assert_eq!(text.trim_end().lines().count(), 1, "{text}");
        assert!(
            folder.join("config.yaml").is_file(),
            "the folder is left as it was"
        );
        std::fs::write(&weights, &intact).unwrap();
        for (path, bytes) in saved {
            std::fs::write(path, bytes).unwrap();
        }
    }

    std::fs::write(&weights, b"garbage").unwrap();
    let mut fresh = args("output");
    fresh.push("--fresh");
    let out = adarat(dir.path(), &fresh);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(result_json(&folder)["status"], "completed");
    let moved_aside = std::fs::read_dir(dir.path().join("output"))
        .unwrap()
        .filter(|e| {
            let name = e
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .into_owned();
            name.starts_with(&format!("{FOLDER}."))
        })
        .count();
    assert_eq!(
        moved_aside, 1,
        "--fresh keeps the damaged run beside the new one"
    );
    eprintln!(
        "bad inputs tried: {} damaged resume files, each refused by name",
        damages.len()
    );
}

#[test]
fn an_error_inside_libtorch_fails_its_job_and_the_next_job_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut both = args("output");
    both.insert(2, "pgd-at/synthetic/baseline");
    let out = adarat_command(dir.path(), &both)
        .env("ADARAT_FAULT_OUT_OF_MEMORY", "batch")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains(&format!("{JOB}: failed: libtorch: ")) && text.contains("allocate"),
        "{text}"
    );
    assert!(
        !text.contains("panicked"),
        "the panic is reported as the job's failure: {text}"
    );
    let failed = result_json(&dir.path().join("output").join(FOLDER));
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("allocate"));
    let next = result_json(
        &dir.path()
            .join("output")
            .join("pgd-at_synthetic_baseline_small-cnn_seed1"),
    );
    assert_eq!(next["status"], "completed");
    eprintln!(
        "faults injected: 1 libtorch out-of-memory error; its job failed, the next completed"
    );
}

/// A job that fails inside the bf16 autocast region, or inside the optimizer step where gradients
/// are off, leaves neither mode behind: the next job on the same thread trains in fp32 with
/// gradients and ends with the numbers it has when run alone.
#[test]
fn a_failure_inside_autocast_or_the_optimizer_leaves_the_next_job_as_if_alone() {
    let dir = tempfile::tempdir().unwrap();
    const NEXT: &str = "pgd-at/synthetic/baseline";
    const NEXT_FOLDER: &str = "pgd-at_synthetic_baseline_small-cnn_seed1";
    let mut alone = args("alone");
    alone[1] = NEXT;
    let out = adarat(dir.path(), &alone);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = result_json(&dir.path().join("alone").join(NEXT_FOLDER));
    for point in ["autocast", "optimizer"] {
        // TRADES in bf16 fails first, then PGD-AT (fp32) runs on the same thread.
        let mut both = args(point);
        both[1] = "trades/synthetic/adarat";
        both.insert(2, NEXT);
        both.extend(["--set", "methods.trades.settings.precision=bf16"]);
        let out = adarat_command(dir.path(), &both)
            .env("ADARAT_FAULT_OUT_OF_MEMORY", point)
            .output()
            .unwrap();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{point}: {text}");
        let output = dir.path().join(point);
        let failed = result_json(&output.join("trades_synthetic_adarat_small-cnn_seed1"));
        assert_eq!(failed["status"], "failed", "{point}");
        assert!(
            failed["error"].as_str().unwrap().contains("allocate"),
            "{point}: {failed}"
        );
        let next = result_json(&output.join(NEXT_FOLDER));
        assert_eq!(next["status"], "completed", "{point}: {text}");
        assert_eq!(
            same_numbers(&next),
            same_numbers(&expected),
            "{point}: the next job did not train as it does alone"
        );
    }
    eprintln!("faults injected: out of memory inside autocast and inside the optimizer step; the next job trained as alone");
}

#[test]
fn a_second_sigint_exits_at_once_and_leaves_every_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    // ResNet-18 on one CPU thread: a batch takes seconds, so both signals land inside the first one.
    let mut slow = args("output");
    slow.extend(["--model", "resnet18"]);
    let mut child = adarat_command(dir.path(), &slow)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let folder = dir
        .path()
        .join("output/pgd-at_synthetic_adarat_resnet18_seed1");
    let events = || std::fs::read_to_string(folder.join("events.jsonl")).unwrap_or_default();
    common::wait_for("the first epoch to start", || {
        events().contains("epoch_started")
    });
    std::thread::sleep(Duration::from_millis(500));
    let interrupt = || {
        adarat::native::posix::send_signal(child.id(), libc::SIGINT).unwrap();
    };
    interrupt();
    std::thread::sleep(Duration::from_millis(300));
    interrupt();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let result = result_json(&folder);
    assert_eq!(
        result["status"], "running",
        "it exited at once, before the stop at the next batch could record `stopped`"
    );
    assert!(events()
        .lines()
        .all(|line| serde_json::from_str::<Value>(line).is_ok()));
    let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
    assert!(serde_yaml::from_str::<serde_yaml::Value>(&config).is_ok());
    eprintln!(
        "faults injected: 2 SIGINTs inside a batch; the process exited at once, every file whole"
    );
}

#[test]
fn a_non_finite_loss_fails_the_job_naming_where() {
    let dir = tempfile::tempdir().unwrap();
    let mut diverging = args("output");
    diverging.extend(["--set", "datasets.synthetic.learning_rate=1e30"]);
    let out = adarat(dir.path(), &diverging);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{JOB}: failed: non-finite loss")),
        "{}",
        stderr(&out)
    );
    let result = result_json(&dir.path().join("output").join(FOLDER));
    assert_eq!(result["status"], "failed");
    let error = result["error"].as_str().unwrap();
    assert!(
        error.starts_with("non-finite loss") && error.contains("at epoch 1, batch "),
        "{error}"
    );
}

#[test]
fn a_run_killed_after_an_epoch_resumes_there_and_ends_as_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "run",
        "pgd-at/synthetic/fixrat",
        "--epochs",
        "2",
        "--limit-train",
        "64",
        "--limit-test",
        "32",
        "--device",
        "cpu",
        "--set",
        "evaluation.final_attacks=[fgsm]",
    ];
    let mut straight = args.to_vec();
    straight.extend(["--output", "straight"]);
    let out = adarat(dir.path(), &straight);
    assert!(out.status.success(), "{}", stderr(&out));
    let name = "pgd-at_synthetic_fixrat_small-cnn_seed1";
    let uninterrupted = result_json(&dir.path().join("straight").join(name));

    // kill -9 right after epoch 1 is committed.
    let out = adarat_command(dir.path(), &args)
        .env("ADARAT_FAULT_KILL_AFTER_EPOCH", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{}", stderr(&out));
    let folder = dir.path().join("output").join(name);
    assert_eq!(result_json(&folder)["epochs_done"], 1);

    // A speed switch changes how fast the run goes, not what it is: it still resumes.
    let mut again = args.to_vec();
    again.extend(["--set", "channels_last=false"]);
    let out = adarat(dir.path(), &again);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("resuming at epoch 2"),
        "{}",
        stderr(&out)
    );
    let resumed = result_json(&folder);
    assert_eq!(resumed["status"], "completed");
    let (resumed, uninterrupted) = (same_numbers(&resumed), same_numbers(&uninterrupted));
    assert_eq!(
        resumed["epochs"][0], uninterrupted["epochs"][0],
        "epoch 1 is kept, not retrained"
    );
    // Epoch 2 ran with NCHW weights: the same computation, rounded differently.
    for field in ["train_loss", "test_clean_loss", "test_pgd_loss"] {
        let (a, b) = (
            resumed["epochs"][1][field].as_f64().unwrap(),
            uninterrupted["epochs"][1][field].as_f64().unwrap(),
        );
        assert!(
            (a - b).abs() < 1e-4,
            "{field}: {a} resumed, {b} uninterrupted"
        );
    }
    // Nothing was moved aside: it is the same run (`.locks` holds the run locks).
    let folders: Vec<String> = std::fs::read_dir(dir.path().join("output"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect();
    assert_eq!(folders, [name]);
}

#[test]
fn an_interrupted_generalist_run_resumes_with_its_method_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["run", "generalist/synthetic/adarat", "--epochs", "2"];
    args.extend(TINY);
    let mut straight = args.clone();
    straight.extend(["--output", "straight"]);
    let out = adarat(dir.path(), &straight);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let name = "generalist_synthetic_adarat_small-cnn_seed1";
    let uninterrupted = result_json(&dir.path().join("straight").join(name));

    let out = adarat_command(dir.path(), &args)
        .env("ADARAT_FAULT_KILL_AFTER_EPOCH", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let folder = dir.path().join("output").join(name);
    let point: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("resume.json")).unwrap())
            .unwrap();
    assert!(
        point["files"]["resume-method-e0001.safetensors"].is_string(),
        "{point}"
    );

    // A damaged method state is refused, not silently replaced by fresh learners.
    let method_file = folder.join("resume-method-e0001.safetensors");
    let intact = std::fs::read(&method_file).unwrap();
    std::fs::write(&method_file, b"not safetensors").unwrap();
    let out = adarat(dir.path(), &args);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resume-method-e0001.safetensors: damaged"),
        "{stderr}"
    );

    std::fs::write(&method_file, intact).unwrap();
    let out = adarat(dir.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming at epoch 2"), "{stderr}");
    let resumed = result_json(&folder);
    assert_eq!(resumed["status"], "completed");
    assert_eq!(same_numbers(&resumed), same_numbers(&uninterrupted));
}

/// Two jobs sharing the device through the queue worker: an out-of-memory failure inside one
/// fails that job only, with its reason, and the other completes as it does alone.
#[test]
fn out_of_memory_in_one_of_two_queued_jobs_fails_that_job_only() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    std::fs::create_dir_all(&output).unwrap();
    let mut sets: Vec<String> = TINY
        .iter()
        .filter(|a| **a != "--set")
        .map(|a| a.to_string())
        .collect();
    sets.push("datasets.synthetic.epochs=2".into());
    let entry = |job: &str| serde_json::json!({"job": job, "config": null, "sets": sets});
    let queue = serde_json::json!({
        "jobs": [entry("trades/synthetic/adarat"), entry("pgd-at/synthetic/baseline")],
        "placement": {"devices": ["cpu"], "jobs_per_device": 2},
    });
    std::fs::write(output.join("queue.json"), queue.to_string()).unwrap();
    let out = adarat_command(
        dir.path(),
        &["worker", "--output", output.to_str().unwrap()],
    )
    .env(
        "ADARAT_FAULT_OUT_OF_MEMORY",
        "batch@trades/synthetic/adarat",
    )
    .output()
    .unwrap();
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{log}");
    let failed = result_json(&output.join("trades_synthetic_adarat_small-cnn_seed1"));
    assert_eq!(failed["status"], "failed", "{log}");
    assert!(
        failed["error"].as_str().unwrap().contains("allocate"),
        "{failed}"
    );
    assert!(
        log.contains("trades/synthetic/adarat: failed: libtorch: "),
        "{log}"
    );
    let other = result_json(&output.join("pgd-at_synthetic_baseline_small-cnn_seed1"));
    assert_eq!(other["status"], "completed", "{log}");
    let mut alone = vec![
        "run",
        "pgd-at/synthetic/baseline",
        "--epochs",
        "2",
        "--offline",
    ];
    alone.extend(["--output", "alone"]);
    alone.extend(TINY);
    let out = adarat(dir.path(), &alone);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = result_json(
        &dir.path()
            .join("alone/pgd-at_synthetic_baseline_small-cnn_seed1"),
    );
    assert_eq!(same_numbers(&other), same_numbers(&expected));
    let queue: Value =
        serde_json::from_str(&std::fs::read_to_string(output.join("queue.json")).unwrap()).unwrap();
    assert_eq!(queue["paused"], false, "a failure does not pause the queue");
    eprintln!("faults injected: out of memory in one of two jobs sharing the CPU; the other completed as alone");
}

/// A file system whose lock call fails (Lustre mounted without `flock`): `adarat run`, the worker
/// and `adarat submit` each refuse with one line naming the mount, before anything starts or is
/// written.
#[test]
fn a_file_system_without_locks_is_one_line_naming_its_mount_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let output_arg = output.to_str().unwrap();
    let submit = ["submit", JOB, "--dry-run", "--output", output_arg];
    let worker = ["worker", "--output", output_arg];
    for args in [args(output_arg), submit.to_vec(), worker.to_vec()] {
        let out = adarat_command(dir.path(), &args)
            .env("ADARAT_FAULT_NO_LOCKS", "1")
            .output()
            .unwrap();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{args:?}: {text}");
        assert!(
            text.contains("file locks do not work on /"),
            "{args:?}: {text}"
        );
        assert!(
            text.contains("Function not implemented"),
            "{args:?}: {text}"
        );
        assert!(!output.exists(), "{args:?}: nothing is written");
    }
}

/// An NFS mount whose locks stay on each client (`nolock`): `adarat submit` refuses it in one line
/// before any script is written, since tasks on several nodes would share it; `adarat run` goes
/// on, all its processes being on one host.
#[test]
fn submit_refuses_an_nfs_output_folder_mounted_nolock_and_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let mountinfo = dir.path().join("mountinfo");
    std::fs::write(
        &mountinfo,
        format!(
            "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
             2 1 0:50 / {} rw,relatime - nfs files:/export rw,vers=3,hard,nolock,local_lock=all\n",
            root.display()
        ),
    )
    .unwrap();
    let adarat_on_nfs = |args: &[&str]| {
        adarat_command(dir.path(), args)
            .env("ADARAT_FAULT_MOUNTINFO", &mountinfo)
            .output()
            .unwrap()
    };
    let out = adarat_on_nfs(&["submit", JOB, "--dry-run", "--output", "output"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert_eq!(text.trim_end().lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!(
            "{} (nfs) is mounted with `nolock`",
            root.display()
        )),
        "{text}"
    );
    assert!(!dir.path().join("output").exists(), "no script is written");

    let out = adarat_on_nfs(&args_with_epochs("output", "1"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        result_json(&dir.path().join("output").join(FOLDER))["status"],
        "completed"
    );
}
