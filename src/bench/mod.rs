//! `adarat bench`: images/s of PGD-AT training, the per-epoch test and the final attack table, each
//! through the real engine ([`train::run_with_data`]) and next to the same work done by
//! `bench/reference.py`, the research code's loop in PyTorch, on the same device in the same call.
//!
//! Both sides train two epochs on random images and report the second, so one-time work (CUDA
//! context, cuDNN autotuning, the first allocations) is not counted. The `eval` suite ([`eval`])
//! times standard AutoAttack on a trained checkpoint against torchattacks' sub-attacks.
use crate::config::{self, DeviceSpec, JobOverrides, Precision, SpeedSwitches};
use crate::data::{Dataset, Splits};
use crate::store::events::{Event, Observer};
use crate::train::{self, RunOptions};
use crate::vocab::{FinalAttack, JobName, Method, Mode, ModelKind};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use tch::{Device, Kind, Tensor};

mod eval;

/// What `adarat bench` was asked for.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub device: DeviceSpec,
    /// The Python that runs `bench/reference.py` (with torch).
    pub python: PathBuf,
    pub reference: PathBuf,
    pub suites: Vec<Suite>,
    /// Tiny sizes, small-cnn only: a smoke run whose figures mean little.
    pub quick: bool,
}

crate::vocab::vocabulary!(
    /// A group of cases.
    Suite, "suite" {
        /// Training, per-epoch test and attack table for each model, fp32 and bf16 training.
        Main => "main",
        /// From the reference to adarat one change at a time (resnet18 training).
        Ablation => "ablation",
        /// small-cnn training on 1 000, 10 000 and 60 000 images: the cost per image stays flat.
        Scaling => "scaling",
        /// Standard AutoAttack on a trained checkpoint, next to torchattacks' sub-attacks ([`eval`]).
        Eval => "eval",
    }
);

/// Why the benchmark stopped short.
#[derive(thiserror::Error, Debug)]
pub enum BenchError {
    #[error(transparent)]
    Device(#[from] crate::device::MissingDevice),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The scratch folder, or a file written for the reference.
    #[error("{}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A run of the engine that the bench times or attacks.
    #[error(transparent)]
    Run(Box<train::RunError>),
    #[error(transparent)]
    Checkpoint(#[from] train::InputError),
    #[error("writing the attacked images: {0}")]
    Images(tch::TchError),
    #[error("interrupted at batch {batch}")]
    Interrupted { batch: usize },
    /// Something the bench needs that its run or a reference script did not report.
    #[error("{0}")]
    Missing(&'static str),
    #[error("could not start {} ({source}); `make bench` makes .venv, or pass --python", python.display())]
    NoPython {
        python: PathBuf,
        source: std::io::Error,
    },
    /// A reference script failed: the last line of its stderr.
    #[error("{} failed: {last}", script.display())]
    Reference { script: PathBuf, last: String },
    #[error("{}: unreadable output ({source})", script.display())]
    ReferenceOutput {
        script: PathBuf,
        source: serde_json::Error,
    },
}

impl From<train::RunError> for BenchError {
    fn from(error: train::RunError) -> BenchError {
        BenchError::Run(Box::new(error))
    }
}

/// One line of the report: adarat's images/s next to the reference's doing the same work.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub name: String,
    pub ours: f64,
    pub reference: Option<f64>,
    pub ratio: Option<f64>,
    pub unit: &'static str,
    /// Images of the timed pass.
    pub images: usize,
    pub precision: Precision,
    /// Model FLOP/s of adarat's training step (26 forward passes' worth per PGD-10 image, docs/protocol.md#published-numbers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tflops: Option<f64>,
    /// What the reference ran differently, when it is not the research code's loop.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Case {
    /// One line for progress output.
    fn summary(&self) -> String {
        let reference = self.reference.map_or("-".into(), |r| format!("{r:.1}"));
        format!(
            "{}: {:.1} vs {reference} {}",
            self.name, self.ours, self.unit
        )
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub device: String,
    pub torch_threads: i32,
    pub cases: Vec<Case>,
}

/// A network on an image shape, with the sizes timed on this device.
#[derive(Clone, Copy, Debug)]
struct Workload {
    model: ModelKind,
    shape: [i64; 3],
    classes: i64,
    train: usize,
    /// Test images (0: training only).
    test: usize,
    /// Whether the final attack table runs on the test images.
    table: bool,
}

impl Workload {
    /// The study's image shape for `model`: 28×28 grey for small-cnn (the MNIST-like sets), CIFAR-10's
    /// for resnet18 and CIFAR-100's (100 classes) for wrn-34-10. The table runs where there is a test.
    fn new(model: ModelKind, train: usize, test: usize) -> Workload {
        let (shape, classes) = match model {
            ModelKind::SmallCnn => ([1, 28, 28], 10),
            ModelKind::Wrn34_10 => ([3, 32, 32], 100),
            ModelKind::ResNet18 | ModelKind::PreActResNet18 => ([3, 32, 32], 10),
        };
        Workload {
            model,
            shape,
            classes,
            train,
            test,
            table: test > 0,
        }
    }

    fn label(&self) -> String {
        let [c, h, w] = self.shape;
        format!("{} {c}×{h}×{w}", self.model)
    }
}

/// Forward GFLOP per image of the models the bench trains (2 FLOP per multiply-accumulate; docs/protocol.md#published-numbers).
fn forward_gflop(model: ModelKind, side: i64) -> Option<f64> {
    let scale = (side * side) as f64 / 1024.0;
    match model {
        ModelKind::ResNet18 | ModelKind::PreActResNet18 => Some(1.11 * scale),
        ModelKind::Wrn34_10 => Some(13.3 * scale),
        ModelKind::SmallCnn => None,
    }
}

/// PGD-10 adversarial training per image: 10 × (forward + input backward) + 2 forwards + their
/// backward (2 × 2F) = 26 forward passes' worth of FLOPs.
const PGD10_FORWARDS_PER_IMAGE: f64 = 26.0;

/// Throughput of one side on one workload; `None` where not timed.
#[derive(Clone, Copy, Debug, Default)]
struct Throughput {
    train: f64,
    test: Option<f64>,
    table: Option<f64>,
}

pub fn run(options: &BenchOptions, progress: &mut dyn FnMut(&str)) -> Result<Report, BenchError> {
    let device = crate::device::resolve(options.device)?;
    let cuda = device.is_cuda();
    let small_cnn = |train, test| Workload::new(ModelKind::SmallCnn, train, test);
    let resnet18 = |train, test| Workload::new(ModelKind::ResNet18, train, test);
    let wrn = |train, test| Workload::new(ModelKind::Wrn34_10, train, test);
    // A CPU trains ResNet-18 at a few images/s: it gets small sizes and no WRN-34-10.
    // (workload, precision, whether the reference runs it too)
    let mut plan: Vec<(Workload, Precision, bool)> = Vec::new();
    if options.suites.contains(&Suite::Main) {
        let main = if options.quick {
            vec![
                (small_cnn(128, 32), Precision::Fp32),
                (small_cnn(128, 0), Precision::Bf16),
            ]
        } else if cuda {
            vec![
                (small_cnn(10_240, 2_048), Precision::Fp32),
                (resnet18(5_120, 2_048), Precision::Fp32),
                (resnet18(5_120, 0), Precision::Bf16),
                (wrn(1_280, 256), Precision::Fp32),
                (wrn(1_280, 0), Precision::Bf16),
            ]
        } else {
            vec![
                (small_cnn(2_048, 256), Precision::Fp32),
                (resnet18(256, 32), Precision::Fp32),
                (resnet18(256, 0), Precision::Bf16),
            ]
        };
        plan.extend(main.into_iter().map(|(w, p)| (w, p, true)));
    }
    if options.suites.contains(&Suite::Scaling) {
        for images in [1_000, 10_000, 60_000] {
            // The per-epoch test grows with the set; `main` times the attack table.
            let workload = Workload {
                table: false,
                ..small_cnn(images, (images / 6).min(10_000))
            };
            plan.push((workload, Precision::Fp32, false));
        }
    }
    let scratch = Scratch::new()?;
    let out = scratch.0.clone();
    let mut cases = Vec::new();
    for (workload, precision, compare) in plan {
        progress(&format!("{} {precision}", workload.label()));
        let tuning = Tuning {
            precision,
            ..Tuning::default()
        };
        let ours = time_ours(options, &workload, device, tuning, &out)?;
        let reference = if compare {
            time_reference(options, device, &workload, &[])
                .map_err(|e| progress(&format!("reference: {e}")))
                .ok()
        } else {
            None
        };
        let bf16 = precision == Precision::Bf16;
        let note = bf16.then(|| "the reference trains in fp32, as the research code".to_string());
        for case in cases_of(&workload, precision, &ours, reference.as_ref(), note) {
            progress(&case.summary());
            cases.push(case);
        }
    }
    if options.suites.contains(&Suite::Ablation) {
        let workload = resnet18(if cuda { 5_120 } else { 256 }, 0);
        cases.extend(ablation(options, device, workload, &out, progress)?);
    }
    if options.suites.contains(&Suite::Eval) {
        cases.extend(eval::run(options, device, &scratch, progress)?);
    }
    Ok(Report {
        device: crate::device::name(device),
        torch_threads: tch::get_num_threads(),
        cases,
    })
}

/// The reference's loop with adarat's changes added one at a time, then adarat itself with cuDNN's
/// autotuning off, on (the default) and with bf16.
fn ablation(
    options: &BenchOptions,
    device: Device,
    workload: Workload,
    out: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Case>, BenchError> {
    let all = [
        "device-data",
        "no-sync",
        "channels-last",
        "cudnn-benchmark",
        "bf16",
    ];
    let steps = (0..=all.len()).map(|n| &all[..n]);
    let baseline = time_reference(options, device, &workload, &[])?.train;
    let mut cases = Vec::new();
    // Printed as soon as measured, so a run cut short still shows what it timed.
    let mut record = |case: Case, progress: &mut dyn FnMut(&str)| {
        progress(&case.summary());
        cases.push(case);
    };
    for upgrades in steps {
        progress(&format!("ablation: reference +{}", upgrades.join(" +")));
        let timed = if upgrades.is_empty() {
            baseline
        } else {
            time_reference(options, device, &workload, upgrades)?.train
        };
        record(
            Case {
                name: format!(
                    "{} training, reference +[{}]",
                    workload.label(),
                    upgrades.join(", ")
                ),
                ours: timed,
                reference: Some(baseline),
                ratio: Some(timed / baseline),
                unit: "images/s",
                images: workload.train,
                precision: if upgrades.contains(&"bf16") {
                    Precision::Bf16
                } else {
                    Precision::Fp32
                },
                tflops: None,
                note: Some(
                    "both columns are the PyTorch reference; `ours` is the upgraded one".into(),
                ),
            },
            progress,
        );
    }
    let fp32 = Tuning::default();
    let with_speed = |speed: SpeedSwitches| Tuning { speed, ..fp32 };
    let eager = with_speed(SpeedSwitches {
        cuda_graphs: false,
        ..fp32.speed
    });
    let variants = [
        (
            "adarat, NCHW, no cuDNN autotuning, no CUDA graphs",
            with_speed(SpeedSwitches {
                channels_last: false,
                cudnn_benchmark: false,
                ..eager.speed
            }),
        ),
        (
            "adarat, no cuDNN autotuning, no CUDA graphs",
            with_speed(SpeedSwitches {
                cudnn_benchmark: false,
                ..eager.speed
            }),
        ),
        ("adarat, no CUDA graphs", eager),
        ("adarat", fp32),
        (
            "adarat, bf16, no CUDA graphs",
            Tuning {
                precision: Precision::Bf16,
                ..eager
            },
        ),
        (
            "adarat, bf16",
            Tuning {
                precision: Precision::Bf16,
                ..fp32
            },
        ),
    ];
    for (label, tuning) in variants {
        // cuDNN autotuning and CUDA graphs do nothing on a CPU: keep the variants that differ there.
        let cuda_only = !tuning.speed.cuda_graphs && tuning.speed.channels_last;
        if cuda_only && !device.is_cuda() {
            continue;
        }
        let precision = tuning.precision;
        progress(&format!("ablation: {label}"));
        let ours = time_ours(options, &workload, device, tuning, out)?;
        record(
            Case {
                name: format!("{} training, {label}", workload.label()),
                ours: ours.train,
                reference: Some(baseline),
                ratio: Some(ours.train / baseline),
                unit: "images/s",
                images: workload.train,
                precision,
                tflops: training_tflops(&workload, ours.train),
                note: None,
            },
            progress,
        );
    }
    Ok(cases)
}

fn training_tflops(workload: &Workload, images_per_second: f64) -> Option<f64> {
    forward_gflop(workload.model, workload.shape[1])
        .map(|g| g * PGD10_FORWARDS_PER_IMAGE * images_per_second / 1000.0)
}

fn cases_of(
    workload: &Workload,
    precision: Precision,
    ours: &Throughput,
    reference: Option<&Throughput>,
    note: Option<String>,
) -> Vec<Case> {
    let label = workload.label();
    let suffix = if precision == Precision::Bf16 {
        ", bf16"
    } else {
        ""
    };
    let rows = [
        (
            "PGD-AT training",
            Some(ours.train),
            reference.map(|r| r.train),
            workload.train,
        ),
        (
            "per-epoch test",
            ours.test,
            reference.and_then(|r| r.test),
            workload.test,
        ),
        (
            "attack table",
            ours.table,
            reference.and_then(|r| r.table),
            workload.test,
        ),
    ];
    rows.into_iter()
        .filter_map(|(what, ours_value, reference_value, images)| {
            let ours_value = ours_value?;
            Some(Case {
                name: format!("{label} {what}{suffix}"),
                ours: ours_value,
                reference: reference_value,
                ratio: reference_value.map(|r| ours_value / r),
                unit: "images/s",
                images,
                precision,
                tflops: (what == "PGD-AT training")
                    .then(|| training_tflops(workload, ours_value))
                    .flatten(),
                note: note.clone(),
            })
        })
        .collect()
}

/// A folder for the bench's throwaway runs, inside the built-in configuration's output folder
/// (nothing is written outside the data and output folders); removed when dropped, however the
/// bench ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch, BenchError> {
        let study = config::open(None, &[])?;
        let out = study
            .output_dir()
            .join(format!(".bench-{}", std::process::id()));
        std::fs::create_dir_all(&out).map_err(|source| BenchError::Write {
            path: out.clone(),
            source,
        })?;
        Ok(Scratch(out))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Times when the final table starts and ends.
#[derive(Default)]
struct TableClock {
    started: Option<Instant>,
    seconds: Option<f64>,
}

impl Observer for TableClock {
    fn observe(&mut self, event: &Event) {
        match event {
            Event::FinalStarted => self.started = Some(Instant::now()),
            Event::FinalFinished { .. } => {
                self.seconds = self.started.map(|s| s.elapsed().as_secs_f64())
            }
            _ => {}
        }
    }
}

/// How a bench run trains: its precision and speed switches; by default the built-in
/// configuration's.
#[derive(Clone, Copy, Debug, Default)]
struct Tuning {
    precision: Precision,
    speed: SpeedSwitches,
}

/// A PGD-AT run of the built-in configuration (cifar10's ε, α, K, batch 128, crop and flip) on
/// random images of the workload's shape, through the real engine.
fn time_ours(
    options: &BenchOptions,
    workload: &Workload,
    device: Device,
    tuning: Tuning,
    out: &Path,
) -> Result<Throughput, BenchError> {
    let study = config::open(None, &[])?;
    let job = JobName {
        method: Method::PgdAt,
        dataset: crate::vocab::DatasetKind::Cifar10,
        mode: Mode::Baseline,
    };
    let overrides = JobOverrides {
        epochs: Some(2),
        model: Some(workload.model),
        device: Some(options.device),
        output_dir: Some(out.to_path_buf()),
        ..Default::default()
    };
    let mut cfg = study.resolve(&job, &overrides)?;
    cfg.precision = tuning.precision;
    cfg.speed = tuning.speed;
    // Random labels: a smaller step than 0.1 keeps the loss finite for any model.
    cfg.learning_rate = 0.01;
    // The attacks bench/reference.py times in the research code's table.
    cfg.evaluation.final_attacks = (FinalAttack::ALL.iter().copied())
        .filter(|attack| workload.table && attack.info().bench)
        .collect();
    let data = random_splits(workload, device);
    let mut clock = TableClock::default();
    let options = RunOptions {
        fresh: true,
        ..Default::default()
    };
    let result = train::run_with_data(&cfg, data, options, &mut clock)?;
    let last = result
        .epochs_log
        .last()
        .ok_or(BenchError::Missing("the bench run recorded no epoch"))?;
    let per_second = |seconds: f64| workload.test as f64 / seconds.max(1e-9);
    Ok(Throughput {
        train: last.images_per_second,
        test: (workload.test > 0).then(|| per_second(last.test_seconds)),
        table: clock.seconds.filter(|_| workload.table).map(per_second),
    })
}

/// Uniform random pixels and labels on the device (at least one test image: a split is never empty).
fn random_splits(workload: &Workload, device: Device) -> Splits {
    let split = |count: usize| {
        let count = count.max(1) as i64;
        let [c, h, w] = workload.shape;
        Dataset {
            images: Tensor::randint(256, [count, c, h, w], (Kind::Uint8, device)),
            labels: Tensor::randint(workload.classes, [count], (Kind::Int64, device)),
        }
    };
    Splits {
        train: split(workload.train),
        test: split(workload.test),
        classes: workload.classes,
        shape: workload.shape,
    }
}

/// `bench/reference.py` on the same workload and device; its JSON line parsed.
fn time_reference(
    options: &BenchOptions,
    device: Device,
    workload: &Workload,
    upgrades: &[&str],
) -> Result<Throughput, BenchError> {
    let [channels, side, _] = workload.shape;
    let dropout = crate::models::ModelSpec::reference_dropout(workload.model);
    let mut command = Command::new(&options.python);
    command
        .arg(&options.reference)
        .args(["--model", &workload.model.to_string()])
        .args(["--channels", &channels.to_string()])
        .args(["--side", &side.to_string()])
        .args(["--classes", &workload.classes.to_string()])
        .args(["--dropout", &dropout.to_string()])
        .args(["--train", &workload.train.to_string()])
        .args(["--test", &workload.test.to_string()])
        .args(["--device", &crate::device::name(device)])
        .args(["--upgrades", &upgrades.join(",")]);
    if workload.table {
        command.arg("--table");
    }
    let value = python_json(options, &options.reference, &mut command)?;
    let number = |key: &str| value.get(key).and_then(serde_json::Value::as_f64);
    Ok(Throughput {
        train: number("train_images_per_second")
            .ok_or(BenchError::Missing("the reference timed no training"))?,
        test: number("test_images_per_second"),
        table: number("table_images_per_second"),
    })
}

/// Runs `command` (a reference `script` on `options.python`) and reads the one JSON object it
/// prints; a failure is its last line of stderr.
fn python_json(
    options: &BenchOptions,
    script: &Path,
    command: &mut Command,
) -> Result<serde_json::Value, BenchError> {
    let output = command.output().map_err(|source| BenchError::NoPython {
        python: options.python.clone(),
        source,
    })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("no message");
        return Err(BenchError::Reference {
            script: script.to_path_buf(),
            last: last.to_string(),
        });
    }
    serde_json::from_slice(&output.stdout).map_err(|source| BenchError::ReferenceOutput {
        script: script.to_path_buf(),
        source,
    })
}

/// The report as an aligned text table.
pub fn render(report: &Report) -> String {
    let mut text = format!(
        "device {}, {} torch threads; training: the second of two epochs; ratio: adarat's speed-up\n\n",
        report.device, report.torch_threads
    );
    let width = report
        .cases
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(4);
    text.push_str(&format!(
        "{:<width$}  {:>10}  {:>10}  {:>8}  {:>6}  {:>7}\n",
        "case", "adarat", "reference", "unit", "ratio", "TFLOP/s"
    ));
    let or_dash = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    for case in &report.cases {
        text.push_str(&format!(
            "{:<width$}  {:>10.1}  {:>10}  {:>8}  {:>6}  {:>7}\n",
            case.name,
            case.ours,
            or_dash(case.reference, 1),
            case.unit,
            or_dash(case.ratio, 2),
            or_dash(case.tflops, 1),
        ));
    }
    // Notes (the robust accuracies of an evaluation case) under the table, once each.
    let mut notes: Vec<String> = Vec::new();
    for case in &report.cases {
        if let Some(note) = case.note.as_ref().filter(|n| !notes.contains(n)) {
            notes.push(note.clone());
            text.push_str(&format!("{}: {note}\n", case.name));
        }
    }
    text
}
