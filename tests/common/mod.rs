//! Helpers shared by the integration tests: the real binary, run folders, and the Python of
//! `.venv` that checks adarat against PyTorch and torchattacks.
#![allow(dead_code)]
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the adarat binary in `dir` on one thread: a run is then bitwise reproducible, whatever the
/// machine's core count.
pub fn adarat(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_adarat"))
        .args(args)
        .current_dir(dir)
        .env("OMP_NUM_THREADS", "1")
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
        .env("ADARAT_TESTS_PYTHON", python_modules())
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
