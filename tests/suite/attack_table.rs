//! The final attack table through `adarat eval` on a checkpoint: agreement with torchattacks 3.5.1
//! on the same checkpoint and images, `standard` AutoAttack at least as strong as the torchattacks
//! preset, the JSON object, and one clear line for every kind of bad input.
use crate::common;

use adarat::attacks::fgsm;
use adarat::config::{Augment, SyntheticSize};
use adarat::data::{self, DataRequest};
use adarat::models::{ModelSpec, Network};
use adarat::vocab::{DatasetKind, ModelKind};
use common::{adarat, run_python, stderr, stdout};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tch::{Device, Kind, Tensor};

/// Test images evaluated: the first of the synthetic test split.
const IMAGES: usize = 100;
/// A budget at which the quickly trained network below keeps about a fifth of its points robust:
/// every attack has work to do, and Square's 5000 queries on the survivors stay affordable on a CPU.
const EPSILON: f64 = 16.0 / 255.0;
const STEP: f64 = 2.0 / 255.0;

/// Three epochs of standard training on synthetic (clean accuracy 75–98% under the instruction
/// sets tried; two epochs can stall, docs/testing.md), checked to have learned, made once per test
/// process.
fn trained_checkpoint() -> &'static Path {
    static CHECKPOINT: OnceLock<PathBuf> = OnceLock::new();
    CHECKPOINT
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("attack-table");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let out = adarat(
                &dir,
                &[
                    "run",
                    "st/synthetic/baseline",
                    "--epochs",
                    "3",
                    "--device",
                    "cpu",
                    "--offline",
                ],
            );
            assert!(out.status.success(), "{}", stderr(&out));
            let run = dir.join("output/st_synthetic_baseline_small-cnn_seed1");
            // Learned, so that every attack has a loss to raise (chance is 10%).
            let result = common::result_json(&run);
            let clean = result["epochs_log"][2]["test_clean_acc"].as_f64().unwrap();
            assert!(
                clean > 40.0,
                "the fixture did not learn: test accuracy {clean}%"
            );
            run.join("model.safetensors")
        })
        .as_path()
}

/// `adarat eval --json` on the test images.
fn eval_json(dir: &Path, checkpoint: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "eval",
        checkpoint.to_str().unwrap(),
        "--dataset",
        "synthetic",
        "--model",
        "small-cnn",
        "--limit-test",
        "100",
        "--epsilon",
        "16/255",
        "--step-size",
        "2/255",
        "--device",
        "cpu",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = adarat(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)))
}

fn number(table: &Value, field: &str) -> f64 {
    table[field]
        .as_f64()
        .unwrap_or_else(|| panic!("`{field}` is not a number in {table}"))
}

/// The images `adarat eval` evaluates, as torchattacks will see them.
fn test_images() -> (Tensor, Tensor) {
    let dir = tempfile::tempdir().unwrap();
    let splits = data::load(&DataRequest {
        kind: DatasetKind::Synthetic,
        data_dir: dir.path(),
        device: Device::Cpu,
        limit_train: Some(1),
        limit_test: Some(IMAGES),
        synthetic: SyntheticSize {
            train: 2000,
            test: 500,
        },
        download: false,
        mirror: None,
        progress: false,
    })
    .unwrap();
    let batch = splits
        .test
        .batches(IMAGES, false, Augment::None)
        .next()
        .unwrap();
    (batch.images, batch.labels)
}

#[test]
fn the_table_agrees_with_torchattacks_and_standard_autoattack_is_at_least_as_strong() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained_checkpoint();
    let ours = eval_json(
        dir.path(),
        checkpoint,
        &["--autoattack", "torchattacks-3.5.1"],
    );
    let standard = eval_json(
        dir.path(),
        checkpoint,
        &["--attacks", "autoattack", "--autoattack", "standard"],
    );

    // torchattacks on the same checkpoint (PyTorch names, strict load) and the same images.
    let folder = dir.path().join("parity");
    std::fs::create_dir(&folder).unwrap();
    std::fs::copy(checkpoint, folder.join("model.safetensors")).unwrap();
    let (x, y) = test_images();
    Tensor::write_safetensors(&[("x", &x), ("y", &y)], folder.join("data.safetensors")).unwrap();
    let spec = json!({
        "model": {"kind": "small-cnn", "in_channels": 3, "height": 32, "width": 32, "classes": 10,
                  "dropout": 0.5},
        "epsilon": EPSILON, "step_size": STEP, "cw_steps": 20, "cw_margin": 50.0, "seed": 1,
        "attacks": ["fgsm", "pgd10", "pgd20", "pgd50", "cw", "autoattack"],
    });
    std::fs::write(folder.join("spec.json"), spec.to_string()).unwrap();
    let printed = run_python("torchattacks_parity.py", &[&folder]);
    let theirs: Value = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
    eprintln!("ours: {ours}\nstandard: {standard}\ntorchattacks: {theirs}");

    // The same network and images: the clean accuracy is identical (theirs is a float32 mean).
    assert!((number(&ours, "clean") - number(&theirs, "clean")).abs() < 1e-3);
    let clean = number(&ours, "clean");
    let pgd20 = number(&ours, "pgd20");
    assert!(
        pgd20 > 5.0 && pgd20 < clean - 5.0,
        "PGD-20 {pgd20} should sit well between 0 and clean {clean} for this check to mean anything"
    );
    // FGSM has no randomness: the same adversarial images, up to gradient signs that round
    // differently (ties at exactly zero), hence the same accuracy.
    let net = {
        let _torch = common::torch_lock();
        let spec = ModelSpec::new(ModelKind::SmallCnn, 3, 32, 32, 10);
        let mut net = Network::new(&spec, Device::Cpu).unwrap();
        net.load(checkpoint).unwrap();
        net
    };
    let our_fgsm = fgsm(&|z: &Tensor| net.forward_t(z, false), &x, &y, EPSILON);
    let their_fgsm = Tensor::read_safetensors(folder.join("fgsm.safetensors")).unwrap();
    let different = our_fgsm
        .ne_tensor(&their_fgsm[0].1)
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(
        different < 1e-3,
        "{:.4}% of FGSM pixels differ",
        100.0 * different
    );
    assert!((number(&ours, "fgsm") - number(&theirs, "fgsm")).abs() <= 0.5);
    // Random starts differ (their generator is not ours): within a few points.
    for attack in ["pgd10", "pgd20", "pgd50", "cw", "autoattack"] {
        let (a, b) = (number(&ours, attack), number(&theirs, attack));
        assert!((a - b).abs() <= 4.0, "{attack}: ours {a}, torchattacks {b}");
    }
    // 100 iterations and Square's own schedule find at least what 10 iterations find.
    let (strong, weak) = (number(&standard, "autoattack"), number(&ours, "autoattack"));
    assert!(
        strong <= weak + 0.5,
        "standard {strong} vs torchattacks-3.5.1 preset {weak}"
    );
    assert_eq!(standard["autoattack_preset"], "standard");
    assert_eq!(ours["autoattack_preset"], "torchattacks-3.5.1");
    // AutoAttack is the strongest of the table, and its sub-attacks only ever lower the accuracy.
    assert!(weak <= pgd20 + 0.5 && weak <= number(&ours, "cw") + 0.5);
    let steps = standard["autoattack_steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["attack"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["apgd-ce", "apgd-t", "fab-t", "square"]);
    let accuracies: Vec<f64> = steps.iter().map(|s| number(s, "accuracy")).collect();
    assert!(
        accuracies.windows(2).all(|w| w[1] <= w[0]),
        "{accuracies:?}"
    );
    assert_eq!(*accuracies.last().unwrap(), strong);

    // A checkpoint saved from PyTorch evaluates to the same clean and FGSM accuracy.
    let from_pytorch = eval_json(
        dir.path(),
        &folder.join("pytorch.safetensors"),
        &["--attacks", "fgsm"],
    );
    assert_eq!(from_pytorch["clean"], ours["clean"]);
    assert_eq!(from_pytorch["fgsm"], ours["fgsm"]);
}

#[test]
fn eval_prints_the_table_and_the_json_object_of_result_json() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = trained_checkpoint();
    let table = eval_json(dir.path(), checkpoint, &["--attacks", "fgsm,pgd10"]);
    for field in [
        "clean",
        "fgsm",
        "pgd10",
        "pgd20",
        "pgd50",
        "cw",
        "autoattack",
        "autoattack_preset",
        "autoattack_steps",
        "images",
        "epsilon",
        "seed",
        "seconds",
        "flags",
    ] {
        assert!(
            table.get(field).is_some(),
            "the object lacks `{field}`: {table}"
        );
    }
    assert_eq!(table["images"], 100);
    assert!((number(&table, "epsilon") - EPSILON).abs() < 1e-12);
    // Attacks not asked for are null.
    assert!(table["pgd20"].is_null() && table["autoattack"].is_null());
    assert!(table["seconds"]["pgd10"].as_f64().is_some());
    // Seeded: the same seed gives the same table, bar the timings.
    let again = eval_json(
        dir.path(),
        checkpoint,
        &["--attacks", "fgsm,pgd10", "--per-image"],
    );
    assert_eq!(table["pgd10"], again["pgd10"]);
    // --per-image adds the records the accuracies were counted from, as in per-image.json.
    assert!(table.get("per_image").is_none());
    let records: adarat::store::per_image::PerImage =
        serde_json::from_value(again["per_image"].clone()).unwrap();
    assert_eq!(records.images(), 100);
    for name in ["clean", "fgsm", "pgd10"] {
        let count = records.correct(name).unwrap().count() as f64;
        assert_eq!(count, number(&again, name), "{name}");
    }
    let worst_case = records.worst_case().unwrap().count() as f64;
    assert_eq!(worst_case, number(&again, "worst_case"));

    let out = adarat(
        dir.path(),
        &[
            "eval",
            checkpoint.to_str().unwrap(),
            "--dataset",
            "synthetic",
            "--model",
            "small-cnn",
            "--limit-test",
            "64",
            "--attacks",
            "fgsm",
            "--device",
            "cpu",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("attack table on 64 images"), "{text}");
    assert!(text.contains("FGSM"), "{text}");
}

#[test]
fn bad_input_to_eval_gets_one_line_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.safetensors");
    let spec = ModelSpec::new(ModelKind::SmallCnn, 3, 32, 32, 10);
    let network = {
        let _torch = common::torch_lock();
        Network::new(&spec, Device::Cpu).unwrap()
    };
    network.save(&small).unwrap();
    let truncated = dir.path().join("truncated.safetensors");
    let bytes = std::fs::read(&small).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let base = |checkpoint: String, model: &str| {
        vec![
            "eval".to_string(),
            checkpoint,
            "--dataset".into(),
            "synthetic".into(),
            "--model".into(),
            model.into(),
            "--device".into(),
            "cpu".into(),
        ]
    };
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    for (args, expected) in [
        (
            base(path(&dir.path().join("absent.safetensors")), "small-cnn"),
            "absent.safetensors",
        ),
        (base(path(&truncated), "small-cnn"), "truncated.safetensors"),
        (base(path(&small), "resnet18"), "small.safetensors"),
        (base(path(&small), "vgg"), "unknown model `vgg`"),
        (
            with(base(path(&small), "small-cnn"), &["--attacks", "fgsm,pgd7"]),
            "pgd7",
        ),
        (
            with(base(path(&small), "small-cnn"), &["--epsilon", "eight"]),
            "--epsilon eight",
        ),
        (
            with(base(path(&small), "small-cnn"), &["--step-size=-1"]),
            "--step-size -1",
        ),
        (
            with(base(path(&small), "small-cnn"), &["--autoattack", "plus"]),
            "--autoattack plus",
        ),
        (
            with(base(path(&small), "small-cnn"), &["--batch-size", "0"]),
            "--batch-size 0",
        ),
        (
            with(base(path(&small), "small-cnn"), &["--per-image"]),
            "--json",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = adarat(dir.path(), &args);
        let message = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {message}");
        assert_eq!(message.lines().count(), 1, "{args:?}: {message}");
        assert!(message.contains(expected), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{message}");
    }
}
