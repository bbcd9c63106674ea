//! `adarat bench --suites eval`: standard AutoAttack on one checkpoint and one set of test images,
//! through adarat's attack table and through `bench/reference_autoattack.py`, torchattacks 3.5.1's
//! APGD, APGD-T, FAB and Square composed with fra31's standard settings (100 iterations, 9 target
//! classes, 5000 queries, Square's schedule not rescaled), batch by batch on the points still
//! robust, as fra31 and adarat do. Both report images/s, seconds per sub-attack and the robust
//! accuracy, so a speed-up is only read next to the same verdict (README, "Performance").
use super::{BenchError, BenchOptions, Case, Scratch};
use crate::config::{self, AutoAttackPreset, JobConfig, JobOverrides, Precision};
use crate::models::ModelSpec;

use crate::train::attack_table::{AttackTable, Interrupted};
use crate::train::{self, RunOptions};
use crate::vocab::{DatasetKind, FinalAttack, JobName, Method, Mode, ModelKind};
use std::path::Path;
use std::process::Command;
use tch::{Device, Tensor};

/// A checkpoint to attack: the network, how long it trains (PGD-AT on `synthetic`, so that the
/// attacks face a network with robust points), and how many test images are attacked.
#[derive(Clone, Copy, Debug)]
struct Target {
    model: ModelKind,
    epochs: usize,
    images: usize,
}

fn targets(options: &BenchOptions, device: Device) -> Vec<Target> {
    let target = |model, epochs, images| Target {
        model,
        epochs,
        images,
    };
    if options.quick {
        vec![target(ModelKind::SmallCnn, 1, 16)]
    } else if device.is_cuda() {
        // Sized for bench/gpu-check.sh's few minutes on one H200, both sides included.
        vec![
            target(ModelKind::ResNet18, 5, 1_000),
            target(ModelKind::Wrn34_10, 3, 250),
        ]
    } else {
        vec![target(ModelKind::SmallCnn, 4, 128)]
    }
}

/// The standard sub-attacks, in order, as both sides name them.
const SUB_ATTACKS: [&str; 4] = ["apgd-ce", "apgd-t", "fab-t", "square"];

pub(super) fn run(
    options: &BenchOptions,
    device: Device,
    scratch: &Scratch,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Case>, BenchError> {
    let mut cases = Vec::new();
    for target in targets(options, device) {
        let label = format!("{} standard AutoAttack", target.model);
        progress(&format!(
            "{label}: training the checkpoint ({} epochs of PGD-AT)",
            target.epochs
        ));
        let (cfg, folder) = checkpoint(options, target, &scratch.0)?;
        progress(&format!("{label}: adarat on {} images", target.images));
        let (ours, spec) = attack_with_adarat(&cfg, &folder, target.images)?;
        progress(&format!(
            "{label}: the reference on the same checkpoint and images"
        ));
        let theirs = reference(options, &cfg, &spec, &folder, device)
            .map_err(|e| progress(&format!("reference: {e}")))
            .ok();
        cases.extend(cases_of(&label, target.images, &ours, theirs.as_ref()));
        for case in &cases[cases.len().saturating_sub(SUB_ATTACKS.len() + 1)..] {
            progress(&case.summary());
        }
    }
    Ok(cases)
}

/// Trains the target's checkpoint through the engine (`pgd-at/synthetic/baseline`, no final
/// table) and writes its first test images where the reference reads them.
fn checkpoint(
    options: &BenchOptions,
    target: Target,
    out: &Path,
) -> Result<(JobConfig, std::path::PathBuf), BenchError> {
    let study = config::open(None, &[])?;
    let job = JobName {
        method: Method::PgdAt,
        dataset: DatasetKind::Synthetic,
        mode: Mode::Baseline,
    };
    let overrides = JobOverrides {
        epochs: Some(target.epochs),
        model: Some(target.model),
        device: Some(options.device),
        output_dir: Some(out.to_path_buf()),
        limit_test: Some(target.images),
        ..Default::default()
    };
    let mut cfg = study.resolve(&job, &overrides)?;
    cfg.evaluation.final_attacks = Vec::new();
    cfg.synthetic.test = cfg.synthetic.test.max(target.images);
    let run_options = RunOptions {
        fresh: true,
        download: false,
        ..Default::default()
    };
    train::run(&cfg, run_options, &mut super::TableClock::default())?;
    let folder = crate::store::RunStore::folder_of(&cfg);
    Ok((cfg, folder))
}

/// What one side measured: robust accuracy (%) and seconds per sub-attack and in all.
#[derive(Clone, Debug, Default)]
struct Verdict {
    clean: f64,
    robust: f64,
    seconds: Vec<(String, f64)>,
    total: f64,
}

/// adarat's standard AutoAttack on the checkpoint; also writes the attacked images into `folder`
/// for the reference, and returns the network's shape.
fn attack_with_adarat(
    cfg: &JobConfig,
    folder: &Path,
    images: usize,
) -> Result<(Verdict, ModelSpec), BenchError> {
    let checkpoint = train::Checkpoint::load(cfg, &folder.join(crate::store::MODEL_FILE), false)?;
    let mut table = AttackTable::for_job(cfg);
    table.attacks = vec![FinalAttack::AutoAttack];
    table.autoattack = AutoAttackPreset::Standard;
    table.images = Some(images);
    // The images the reference attacks: the same first test images, in [0, 1], on the CPU.
    let batch = (checkpoint
        .test
        .first(Some(images))
        .batches(images, false, config::Augment::None))
    .next()
    .ok_or(BenchError::Missing("no test images"))?;
    let (x, y) = (batch.images.to(Device::Cpu), batch.labels.to(Device::Cpu));
    Tensor::write_safetensors(&[("x", &x), ("y", &y)], folder.join("data.safetensors"))
        .map_err(BenchError::Images)?;
    let result = checkpoint
        .evaluate(&table, &train::StopFlag::default(), &mut |_| {})
        .map_err(|Interrupted { batch }| BenchError::Interrupted { batch })?
        .table;
    let verdict = Verdict {
        clean: result.clean.unwrap_or(0.0),
        robust: result.accuracy(FinalAttack::AutoAttack).unwrap_or(0.0),
        seconds: (result.autoattack_steps.iter())
            .map(|step| (step.attack.clone(), step.seconds))
            .collect(),
        total: result.seconds.get("autoattack").copied().unwrap_or(0.0),
    };
    Ok((verdict, checkpoint.spec))
}

/// `bench/reference_autoattack.py` on the checkpoint and images in `folder`.
fn reference(
    options: &BenchOptions,
    cfg: &JobConfig,
    spec: &ModelSpec,
    folder: &Path,
    device: Device,
) -> Result<Verdict, BenchError> {
    let script = options.reference.with_file_name("reference_autoattack.py");
    let spec = serde_json::json!({
                "model": {
            "kind": spec.kind.to_string(), "in_channels": spec.in_channels, "height": spec.height,
            "width": spec.width, "classes": spec.classes, "dropout": spec.dropout,
        },
        "epsilon": cfg.attack.epsilon,
        "batch_size": cfg.evaluation.batch_size,
        "seed": cfg.seed,
    });
    let path = folder.join("spec.json");
    std::fs::write(&path, spec.to_string()).map_err(|source| BenchError::Write { path, source })?;
    let mut command = Command::new(&options.python);
    command
        .arg(&script)
        .arg(folder)
        .args(["--device", &crate::device::name(device)]);
    let value = super::python_json(options, &script, &mut command)?;
    let number = |v: &serde_json::Value, key: &str| v.get(key).and_then(serde_json::Value::as_f64);
    let seconds = &value["seconds"];
    Ok(Verdict {
        clean: number(&value, "clean").ok_or(BenchError::Missing("no clean accuracy"))?,
        robust: number(&value, "robust").ok_or(BenchError::Missing("no robust accuracy"))?,
        seconds: (SUB_ATTACKS.iter())
            .filter_map(|name| Some((name.to_string(), number(seconds, name)?)))
            .collect(),
        total: number(&value, "total").ok_or(BenchError::Missing("no total time"))?,
    })
}

/// The whole attack in images/s, then each sub-attack in seconds; `ratio` is the speed-up
/// (adarat's images/s over the reference's, the reference's seconds over adarat's).
fn cases_of(label: &str, images: usize, ours: &Verdict, theirs: Option<&Verdict>) -> Vec<Case> {
    let rate = |v: &Verdict| images as f64 / v.total.max(1e-9);
    let verdicts = match theirs {
        Some(t) => format!(
            "robust accuracy: adarat {:.2}%, reference {:.2}% (clean {:.2}% / {:.2}%)",
            ours.robust, t.robust, ours.clean, t.clean
        ),
        None => format!(
            "robust accuracy {:.2}% (clean {:.2}%)",
            ours.robust, ours.clean
        ),
    };
    let mut cases = vec![Case {
        name: label.to_string(),
        ours: rate(ours),
        reference: theirs.map(rate),
        ratio: theirs.map(|t| rate(ours) / rate(t)),
        unit: "images/s",
        images,
        precision: Precision::Fp32,
        tflops: None,
        note: Some(verdicts),
    }];
    for name in SUB_ATTACKS {
        let seconds = |v: &Verdict| v.seconds.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        let Some(our_seconds) = seconds(ours) else {
            continue;
        };
        let their_seconds = theirs.and_then(seconds);
        cases.push(Case {
            name: format!("{label}: {name} seconds"),
            ours: our_seconds,
            reference: their_seconds,
            ratio: their_seconds.map(|t| t / our_seconds.max(1e-9)),
            unit: "s",
            images,
            precision: Precision::Fp32,
            tflops: None,
            note: None,
        });
    }
    cases
}
