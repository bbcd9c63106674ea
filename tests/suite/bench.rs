//! `adarat bench`: the real engine next to bench/reference.py, both timed on the same work.
use crate::common;
use common::{adarat, python, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `adarat bench --quick` on the CPU with the reference on `python`, from the repository.
fn quick_bench(python: &str) -> Output {
    adarat(
        repository(),
        &[
            "bench", "--quick", "--device", "cpu", "--json", "--python", python,
        ],
    )
}

#[test]
fn a_quick_bench_times_adarat_and_the_reference_on_the_same_cases() {
    let out = quick_bench(python().to_str().unwrap());
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["device"], "cpu");
    let cases = report["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "small-cnn 1×28×28 PGD-AT training",
            "small-cnn 1×28×28 per-epoch test",
            "small-cnn 1×28×28 attack table",
            "small-cnn 1×28×28 PGD-AT training, bf16",
        ]
    );
    for case in cases {
        let ours = case["ours"].as_f64().unwrap();
        let reference = case["reference"].as_f64().unwrap();
        assert!(ours > 0.0 && reference > 0.0, "{case}");
        let ratio = case["ratio"].as_f64().unwrap();
        assert!((ratio - ours / reference).abs() < 1e-9, "{case}");
        assert_eq!(case["unit"], "images/s");
    }
    assert_eq!(cases[0]["images"], 128);
    assert_eq!(cases[1]["images"], 32);
    assert_eq!(cases[3]["precision"], "bf16");
    assert_eq!(cases[0]["precision"], "fp32");
}

#[test]
fn a_missing_reference_python_leaves_the_reference_column_empty() {
    let out = quick_bench("/nonexistent/python");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not start /nonexistent/python"),
        "{}",
        stderr(&out)
    );
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    for case in report["cases"].as_array().unwrap() {
        assert!(case["ours"].as_f64().unwrap() > 0.0);
        assert!(
            case["reference"].is_null() && case["ratio"].is_null(),
            "{case}"
        );
    }
}

#[test]
fn bad_bench_arguments_get_one_line_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&[&str], &str); 3] = [
        (
            &["bench", "--suites", "main,fast"],
            "unknown suite `fast` (expected one of: main, ablation, scaling, eval)",
        ),
        (
            &["bench", "--device", "tpu"],
            "device `tpu`: expected auto, cpu, cuda or cuda:N",
        ),
        (&["bench"], "bench/reference.py: no such file"),
    ];
    for (args, message) in cases {
        let out = adarat(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.contains(message), "{args:?}: {text}");
        assert_eq!(text.trim_end().lines().count(), 1, "{args:?}: {text}");
    }
}

#[test]
fn the_eval_suite_attacks_one_checkpoint_with_adarat_and_with_torchattacks() {
    let out = adarat(
        repository(),
        &[
            "bench",
            "--suites",
            "eval",
            "--quick",
            "--device",
            "cpu",
            "--json",
            "--python",
            python().to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let cases = report["cases"].as_array().unwrap();
    let names: Vec<&str> = cases.iter().map(|c| c["name"].as_str().unwrap()).collect();
    let label = "small-cnn standard AutoAttack";
    assert_eq!(names[0], label);
    // Every sub-attack that had points left is timed on both sides.
    for (name, case) in names.iter().zip(cases).skip(1) {
        assert!(
            name.starts_with(&format!("{label}: ")) && name.ends_with(" seconds"),
            "{name}"
        );
        assert_eq!(case["unit"], "s");
        assert!(case["reference"].as_f64().is_some(), "{case}");
    }
    assert!(names.contains(&"small-cnn standard AutoAttack: apgd-ce seconds"));
    let whole = &cases[0];
    assert_eq!(whole["unit"], "images/s");
    assert!(whole["ours"].as_f64().unwrap() > 0.0 && whole["reference"].as_f64().unwrap() > 0.0);
    // The same checkpoint and images on both sides: the same clean accuracy; robust accuracies
    // that do not exceed it.
    let note = whole["note"].as_str().unwrap();
    let numbers: Vec<f64> = note
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|s| s.parse().ok())
        .collect();
    let [ours, theirs, clean_ours, clean_theirs] = numbers[..] else {
        panic!("{note}");
    };
    assert_eq!(clean_ours, clean_theirs, "{note}");
    assert!(ours <= clean_ours && theirs <= clean_theirs, "{note}");
}
