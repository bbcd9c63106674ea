//! The verdict's paired statistics (`adarat::report::stats`) against scipy on the same inputs: the
//! paired t-test over seed pairs of different sizes and signs, McNemar's exact test over small and
//! large discordant counts.
use crate::common::{python, stderr, stdout};
use adarat::report::stats::{mcnemar, paired_t, Evidence, Test};
use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// scipy's numbers for the inputs on stdin, as JSON on stdout; a non-finite number as its string
/// ("inf", "nan"), which JSON has no other way to carry.
const ORACLE: &str = r#"
import json, sys
import numpy as np
from scipy import stats

def num(x):
    x = float(x)
    return x if np.isfinite(x) else str(x)

data = json.load(sys.stdin)
out = {"paired": [], "mcnemar": []}
for pairs in data["paired"]:
    t, b = np.array(pairs, dtype=float).T
    r = stats.ttest_rel(t, b)
    d = t - b
    n = len(d)
    mean = np.mean(d)
    half = stats.t.ppf(0.975, n - 1) * np.std(d, ddof=1) / np.sqrt(n)
    out["paired"].append({"statistic": num(r.statistic), "pvalue": num(r.pvalue),
                          "mean": num(mean), "ci": [num(mean - half), num(mean + half)]})
for b, c, n in data["mcnemar"]:
    p = stats.binomtest(min(b, c), b + c, 0.5).pvalue if b + c else 1.0
    delta = 100 * (b - c) / n
    half = stats.norm.ppf(0.975) * 100 * np.sqrt((b + c) - (b - c) ** 2 / n) / n
    out["mcnemar"].append({"pvalue": num(p), "delta": num(delta),
                           "ci": [num(delta - half), num(delta + half)]})
print(json.dumps(out))
"#;

/// Runs the oracle on `input`; fails the test with Python's output when it fails or Python is
/// missing (`make test` installs .venv), as `common::run_python` does.
fn scipy(input: &Value) -> Value {
    let python = python();
    let mut child = Command::new(&python)
        .args(["-c", ORACLE])
        .env("OMP_NUM_THREADS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (`make test` installs .venv)", python.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the scipy oracle failed:\n{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    serde_json::from_str(&stdout(&output)).unwrap()
}

/// The absolute floor for values in points.
const POINTS: f64 = 1e-12;

/// A number of the oracle's answer, non-finite ones included.
fn number(value: &Value) -> f64 {
    match value {
        Value::String(word) => word.parse().unwrap(),
        _ => value.as_f64().unwrap(),
    }
}

/// Within 1e-9 of scipy's value relative to it, or within `floor` absolute: points (a difference,
/// an interval's ends) may sit at or near 0, where rounding of the ~50 % inputs (~1e-14) swamps a
/// relative bound; a p is held to the relative bound alone, however small.
fn assert_close(what: &str, ours: f64, theirs: f64, floor: f64) {
    let gap = (ours - theirs).abs();
    assert!(
        ours == theirs || gap <= 1e-9 * theirs.abs() || gap <= floor,
        "{what}: ours {ours:e}, scipy {theirs:e} (gap {gap:e})"
    );
}

fn assert_ci_close(what: &str, evidence: &Evidence, theirs: &Value) {
    let (low, high) = evidence.ci.unwrap_or_else(|| panic!("{what}: no interval"));
    assert_close(&format!("{what} CI low"), low, number(&theirs[0]), POINTS);
    assert_close(&format!("{what} CI high"), high, number(&theirs[1]), POINTS);
}

/// Seed pairs (treatment, baseline) in %, two decimals as in the attack tables.
fn seed_pairs() -> Vec<(&'static str, Vec<(f64, f64)>)> {
    // Ten seeds from a fixed recipe: a gain of about half a point with seed-to-seed noise.
    let ten = (0..10)
        .map(|i| {
            let baseline = 45.0 + f64::from((i * 37) % 11) * 0.23;
            let treatment = baseline + 0.5 + f64::from((i * 53) % 7) * 0.31 - 0.93;
            ((treatment * 100.0).round() / 100.0, baseline)
        })
        .collect();
    // A large, steady gain: a p far below the usual thresholds.
    let steady = (0..10)
        .map(|i| {
            let baseline = 40.0 + f64::from(i) * 0.7;
            (baseline + 3.0 + f64::from(i % 3) * 0.01, baseline)
        })
        .collect();
    vec![
        ("two seeds, a gain", vec![(47.31, 45.10), (48.02, 46.55)]),
        (
            "three seeds, a loss",
            vec![(44.12, 46.80), (45.03, 46.21), (43.97, 47.15)],
        ),
        (
            "five seeds, mixed",
            vec![
                (47.31, 47.02),
                (46.88, 47.40),
                (48.15, 47.11),
                (46.52, 46.90),
                (47.77, 47.05),
            ],
        ),
        ("ten seeds, mixed", ten),
        ("ten seeds, a steady gain", steady),
        // Differences exactly 1.25 in binary: scipy's t is inf and its p 0.
        (
            "four seeds, the same gain",
            vec![(50.25, 49.0), (47.75, 46.5), (48.5, 47.25), (51.0, 49.75)],
        ),
    ]
}

/// (treatment only, baseline only, test images).
const COUNTS: [(u64, u64, u64); 8] = [
    (0, 5, 100),
    (5, 0, 100),
    (3, 9, 200),
    (40, 61, 1000),
    (500, 530, 10_000),
    (7, 7, 50),
    (10, 60, 10_000),
    (0, 0, 10),
];

#[test]
fn paired_t_matches_scipy_ttest_rel() {
    let cases = seed_pairs();
    let input = json!({
        "paired": cases.iter().map(|(_, pairs)| pairs.clone()).collect::<Vec<_>>(),
        "mcnemar": [],
    });
    let answer = scipy(&input);
    for ((name, pairs), theirs) in cases.iter().zip(answer["paired"].as_array().unwrap()) {
        let ours = paired_t(pairs).unwrap_or_else(|| panic!("{name}: no evidence"));
        assert_eq!((ours.test, ours.n), (Test::PairedT, pairs.len()), "{name}");
        assert_close(
            &format!("{name}: delta"),
            ours.delta,
            number(&theirs["mean"]),
            POINTS,
        );
        assert_ci_close(name, &ours, &theirs["ci"]);
        let p = ours.p.unwrap_or_else(|| panic!("{name}: no p"));
        assert_close(&format!("{name}: p"), p, number(&theirs["pvalue"]), 0.0);
        // The sign of the difference is the sign of scipy's t.
        let t = number(&theirs["statistic"]);
        assert_eq!(ours.delta.signum(), t.signum(), "{name}: t = {t}");
    }
    let same = &answer["paired"][5];
    assert_eq!(
        (same["statistic"].as_str(), same["pvalue"].as_f64()),
        (Some("inf"), Some(0.0))
    );
}

#[test]
fn paired_t_has_no_p_where_scipy_has_nan() {
    let pairs = vec![(40.0, 40.0), (41.5, 41.5), (39.25, 39.25)];
    let answer = scipy(&json!({"paired": [pairs], "mcnemar": []}));
    let theirs = &answer["paired"][0];
    assert!(number(&theirs["statistic"]).is_nan() && number(&theirs["pvalue"]).is_nan());
    let ours = paired_t(&pairs).unwrap();
    assert_eq!((ours.delta, ours.p), (0.0, None));
    assert_ci_close("no difference", &ours, &theirs["ci"]);
}

#[test]
fn mcnemar_matches_scipy_binomtest_and_the_wald_interval() {
    let answer = scipy(&json!({"paired": [], "mcnemar": COUNTS}));
    for (&(b, c, images), theirs) in COUNTS.iter().zip(answer["mcnemar"].as_array().unwrap()) {
        let name = format!("b = {b}, c = {c} of {images}");
        let ours = mcnemar(b, c, images).unwrap_or_else(|| panic!("{name}: no evidence"));
        assert_eq!(
            (ours.test, ours.n),
            (Test::McNemarExact, images as usize),
            "{name}"
        );
        assert_close(
            &format!("{name}: delta"),
            ours.delta,
            number(&theirs["delta"]),
            POINTS,
        );
        assert_ci_close(&name, &ours, &theirs["ci"]);
        assert_close(
            &format!("{name}: p"),
            ours.p.unwrap(),
            number(&theirs["pvalue"]),
            0.0,
        );
    }
    // 70 discordant images 10 against 60: far below 1 %; 7 against 7: nothing at all.
    assert!(mcnemar(10, 60, 10_000).unwrap().significant(0.01));
    assert!(!mcnemar(7, 7, 50).unwrap().significant(0.05));
}
