//! Helpers shared by the integration tests: the real binary, run folders, and the Python of
//! `.venv` that checks adarat against PyTorch and torchattacks.
#![allow(dead_code)]
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tiny synthetic set on the CPU with a short final table: an epoch takes a few seconds on one
/// thread.
pub const TINY: [&str; 8] = [
    "--set",
    "datasets.synthetic.train_size=160",
    "--set",
    "datasets.synthetic.test_size=64",
    "--set",
    "device=cpu",
    "--set",
    "evaluation.final_attacks=[fgsm, pgd10]",
];

/// The adarat binary in `dir`, on one torch thread, stdin closed and outputs captured: to spawn
/// and signal, or to run with `.output()`.
pub fn adarat_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_adarat"));
    command
        .args(args)
        .current_dir(dir)
        .env("OMP_NUM_THREADS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// Runs the adarat binary in `dir` on one thread: a run is then bitwise reproducible, whatever the
/// machine's core count.
pub fn adarat(dir: &Path, args: &[&str]) -> Output {
    adarat_on_threads(dir, args, 1)
}

/// Runs the adarat binary with `threads` torch threads, where speed matters more than bitwise
/// reproducibility across machines.
pub fn adarat_on_threads(dir: &Path, args: &[&str], threads: usize) -> Output {
    adarat_command(dir, args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .expect("the adarat binary runs")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn result_json(folder: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(folder.join("result.json")).unwrap()).unwrap()
}

/// Waits (at most two minutes) until `ready` holds.
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ADARAT_PYTHON` (set by `make test`), else `.venv/bin/python` of this checkout. The tests that
/// need it fail rather than skip when it is missing: `make test` installs it.
pub fn python() -> PathBuf {
    std::env::var_os("ADARAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// The folder of the Python modules the tests run (`tests/python`).
pub fn python_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Runs `script` (a file of `tests/python`) with `args` and returns its standard output; fails the
/// test with the script's output when it fails or Python is missing.
pub fn run_python(script: &str, args: &[&Path]) -> String {
    let python = python();
    let output = Command::new(&python)
        .arg(python_modules().join(script))
        .args(args)
        .env("ADARAT_PARITY_THREADS", "2")
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (`make test` installs .venv)", python.display()));
    let out = stdout(&output);
    assert!(
        output.status.success(),
        "{script} failed:\n{out}\n{}",
        stderr(&output)
    );
    out
}

/// What a run computed, for comparing an interrupted run with an uninterrupted one: every epoch
/// record without its clock fields, and the final table without its timings.
pub fn same_numbers(result: &Value) -> Value {
    let mut epochs = result["epochs_log"].clone();
    for epoch in epochs.as_array_mut().into_iter().flatten() {
        let fields = epoch.as_object_mut().unwrap();
        for clock in [
            "seconds",
            "images_per_second",
            "test_seconds",
            "finished_at",
        ] {
            fields.remove(clock);
        }
    }
    let mut table = result["final"].clone();
    if let Some(fields) = table.as_object_mut() {
        fields.remove("seconds");
        for step in fields
            .get_mut("autoattack_steps")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            step.as_object_mut().unwrap().remove("seconds");
        }
    }
    serde_json::json!({"epochs": epochs, "final": table})
}
