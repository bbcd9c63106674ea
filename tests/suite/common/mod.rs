//! Helpers shared by the integration tests: the real binary, run folders, and the Python of
//! `.venv` that checks adarat against PyTorch and torchattacks.
#![allow(dead_code)]
pub(crate) mod tmux;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tiny synthetic set on the CPU with a short final table: an epoch takes a few seconds on one
/// thread.
pub(crate) const TINY: [&str; 8] = [
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
pub(crate) fn adarat_command(dir: &Path, args: &[&str]) -> Command {
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
pub(crate) fn adarat(dir: &Path, args: &[&str]) -> Output {
    adarat_on_threads(dir, args, 1)
}

/// Runs the adarat binary with `threads` torch threads, where speed matters more than bitwise
/// reproducibility across machines.
pub(crate) fn adarat_on_threads(dir: &Path, args: &[&str], threads: usize) -> Output {
    adarat_command(dir, args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .expect("the adarat binary runs")
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn result_json(folder: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(folder.join("result.json")).unwrap()).unwrap()
}

/// Waits (at most two minutes) until `ready` holds.
pub(crate) fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
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
pub(crate) fn python() -> PathBuf {
    std::env::var_os("ADARAT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// The folder of the Python modules the tests run (`tests/python`).
pub(crate) fn python_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Runs `script` (a file of `tests/python`) with `args` and returns its standard output; fails the
/// test with the script's output when it fails or Python is missing.
pub(crate) fn run_python(script: &str, args: &[&Path]) -> String {
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
pub(crate) fn same_numbers(result: &Value) -> Value {
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

/// The synthetic dataset on the CPU, generated from seed 3.
pub(crate) fn synthetic_splits(train: usize, test: usize) -> adarat::data::Splits {
    use adarat::config::SyntheticSize;
    use adarat::data::{self, DataRequest};
    adarat::data::load(&DataRequest {
        kind: adarat::vocab::DatasetKind::Synthetic,
        data_dir: Path::new("/nonexistent"),
        device: tch::Device::Cpu,
        limit_train: None,
        limit_test: None,
        synthetic: SyntheticSize { train, test },
        seed: 3,
        download: false,
        mirror: None,
        progress: false,
    })
    .map_err(|e: data::DataError| e.to_string())
    .unwrap()
}

/// A fresh small-cnn (dropout 0.5) for 3×32×32 images, initialised from seed 0, on the CPU.
pub(crate) fn small_cnn(classes: i64) -> adarat::models::Network {
    use adarat::models::{ModelSpec, Network};
    tch::manual_seed(0);
    let spec = ModelSpec {
        kind: adarat::vocab::ModelKind::SmallCnn,
        in_channels: 3,
        height: 32,
        width: 32,
        classes,
        dropout: 0.5,
    };
    Network::new(&spec, tch::Device::Cpu).unwrap()
}

/// small-cnn after plain training on 1024 synthetic images, checked to have learned (test accuracy
/// well above chance, several classes predicted) so that attacks on it have input gradients to
/// follow; with its 256 test images. The recipe (the synthetic job's learning rate 0.01, batch 32,
/// momentum 0.9, 4 epochs) reached 86–99 % over three seeds under `ATEN_CPU_CAPABILITY` default,
/// avx2 and avx512; a hotter one (lr 0.05) collapsed to a constant output on some CPUs and not on
/// others (docs/testing.md).
pub(crate) fn trained_small_cnn() -> (adarat::models::Network, adarat::data::Splits) {
    use adarat::config::Augment;
    use adarat::losses::cross_entropy;
    use adarat::optim::sgd::Sgd;
    use tch::Kind;
    let data = synthetic_splits(1024, 256);
    let net = small_cnn(data.classes);
    let mut sgd = Sgd::new(net.parameters(), 0.9, 5e-4);
    for _ in 0..4 {
        for batch in data.train.batches(32, true, Augment::None) {
            sgd.zero_grad();
            cross_entropy(&net.forward_t(&batch.images, true), &batch.labels).backward();
            sgd.step(0.01);
        }
    }
    sgd.zero_grad();
    // Learned: well above chance on the test split, and predictions that depend on the image.
    let (mut correct, mut predicted) = (0i64, std::collections::BTreeSet::new());
    tch::no_grad(|| {
        for batch in data.test.batches(256, false, Augment::None) {
            let guess = net.forward_t(&batch.images, false).argmax(-1, false);
            correct += guess
                .eq_tensor(&batch.labels)
                .sum(Kind::Int64)
                .int64_value(&[]);
            predicted.extend(Vec::<i64>::try_from(guess).unwrap());
        }
    });
    let accuracy = correct as f64 / data.test.len() as f64;
    assert!(
        accuracy > 0.5 && predicted.len() >= 5,
        "the fixture did not learn: test accuracy {:.1}% (chance {:.0}%), {} classes predicted",
        100.0 * accuracy,
        100.0 / data.classes as f64,
        predicted.len()
    );
    (net, data)
}
