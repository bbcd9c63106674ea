//! Helpers shared by the integration tests: the real binary, run folders, and the Python of
//! `.venv` that checks adarat against PyTorch and torchattacks.
#![allow(dead_code)]
pub(crate) mod system;
pub(crate) mod tmux;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// libtorch's random generator is global to the process, and the tests run in parallel: a test that
/// seeds it or draws from it in this process (a new network, `rand`, dropout in training mode,
/// shuffled batches, augmentation) holds this lock while it does, so that a seeded computation sees
/// only its own draws. The tests that drive the adarat binary run beside them
/// (docs/testing.md#parallel-tests).
/// It also keeps libtorch on one thread in the calling test thread (OpenMP's count is per thread):
/// with tests side by side, a second libtorch thread only spins against them.
pub(crate) fn torch_lock() -> MutexGuard<'static, ()> {
    static TORCH: Mutex<()> = Mutex::new(());
    // A test that failed while holding it leaves the generator as usable as any other.
    let guard = TORCH
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    tch::set_num_threads(1);
    guard
}

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
/// machine's core count, and tests running side by side do not spin against each other's threads.
pub(crate) fn adarat(dir: &Path, args: &[&str]) -> Output {
    adarat_command(dir, args)
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
        .env("OMP_NUM_THREADS", "1")
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

/// The first `train` and `test` images of the synthetic dataset, on the CPU.
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
/// follow; with its 256 test images. Trained once per test process; each call loads the weights
/// into a network of its own. The caller holds `torch_lock`.
pub(crate) fn trained_small_cnn() -> (adarat::models::Network, adarat::data::Splits) {
    static WEIGHTS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let data = synthetic_splits(1024, 256);
    let weights = WEIGHTS.get_or_init(|| {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("trained-small-cnn.safetensors");
        train_small_cnn(&data).save(&path).unwrap();
        path
    });
    let mut net = small_cnn(data.classes);
    net.load(weights).unwrap();
    (net, data)
}

/// The recipe (the synthetic job's learning rate 0.01, batch 32, momentum 0.9, 4 epochs) reached
/// 86–99 % over three seeds under `ATEN_CPU_CAPABILITY` default, avx2 and avx512; a hotter one
/// (lr 0.05) collapsed to a constant output on some CPUs and not on others (docs/testing.md).
fn train_small_cnn(data: &adarat::data::Splits) -> adarat::models::Network {
    use adarat::config::Augment;
    use adarat::losses::cross_entropy;
    use adarat::optim::sgd::Sgd;
    use tch::Kind;
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
    net
}
