//! The study's verdict end to end (docs/report.md#the-verdict): a 3-method × 3-mode × 3-seed study
//! run by the binary on the synthetic set, exported to every format and shown on the Study screen,
//! every Δ, interval and p equal to what scipy computes from the same run folders; runs with
//! another `--limit-train` a separate, labelled group with a verdict of its own.
use crate::common::{adarat, run_python, stderr};
use adarat::config;
use adarat::console::app::{App, Msg};
use adarat::console::monitor::Monitor;
use adarat::console::settings::{SavedState, Settings};
use adarat::console::views::draw;
use adarat::report::stats::Evidence;
use adarat::report::tables::COLUMNS;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use serde_json::Value;
use std::path::Path;

const METHODS: [&str; 3] = ["pgd-at", "trades", "fat"];
const MODES: [&str; 3] = ["baseline", "fixrat", "adarat"];

/// One tiny epoch on the synthetic set, tested and attacked (FGSM) on 50 images.
fn cheap(limit_train: &str) -> Vec<String> {
    [
        "--epochs",
        "1",
        "--limit-train",
        limit_train,
        "--limit-test",
        "50",
        "--set",
        "device=cpu",
        "--set",
        "evaluation.final_attacks=[fgsm]",
    ]
    .map(String::from)
    .to_vec()
}

fn run(dir: &Path, output: &Path, jobs: &[String], seeds: &str, limit_train: &str) {
    let mut args: Vec<String> = vec!["run".into()];
    args.extend(jobs.iter().cloned());
    args.extend(["--seed".into(), seeds.into(), "--output".into()]);
    args.push(output.display().to_string());
    args.extend(cheap(limit_train));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = adarat(dir, &args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// scipy's verdict of the run folders: (method, mode, limit_train, column) → its numbers.
fn scipy(outputs: &[&Path]) -> Vec<Value> {
    let text = run_python("verdict_scipy.py", outputs);
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

/// The exported evidence equals scipy's: same test and n, Δ, interval and p (None where scipy
/// gives nan).
fn assert_same(ours: &Value, theirs: &Value, what: &str) {
    assert_eq!(ours["test"], theirs["test"], "{what}");
    assert_eq!(ours["n"], theirs["n"], "{what}");
    assert!(
        close(
            ours["delta"].as_f64().unwrap(),
            theirs["delta"].as_f64().unwrap()
        ),
        "{what}: {ours} {theirs}"
    );
    for side in 0..2 {
        let (a, b) = (&ours["ci"][side], &theirs["ci"][side]);
        assert!(
            close(a.as_f64().unwrap(), b.as_f64().unwrap()),
            "{what}: {ours} {theirs}"
        );
    }
    match (ours["p"].as_f64(), theirs["p"].as_f64()) {
        (Some(a), Some(b)) => assert!(close(a, b), "{what}: {ours} {theirs}"),
        (a, b) => assert_eq!(a, b, "{what}: {ours} {theirs}"),
    }
}

fn column_index(name: &str) -> usize {
    (COLUMNS.iter())
        .position(|(_, attack)| attack.map_or("clean", |a| a.as_str()) == name)
        .unwrap()
}

#[test]
fn a_three_seed_study_gives_each_delta_its_interval_and_p_as_scipy_does_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (study, other) = (dir.path().join("output"), dir.path().join("limit96"));
    let jobs: Vec<String> = (METHODS.iter())
        .flat_map(|m| {
            MODES
                .iter()
                .map(move |mode| format!("{m}/synthetic/{mode}"))
        })
        .collect();
    run(dir.path(), &study, &jobs, "1,2,3", "64");
    // The same PGD-AT study on more training images: another experiment.
    let pgd: Vec<String> = ["baseline", "adarat"]
        .map(|mode| format!("pgd-at/synthetic/{mode}"))
        .to_vec();
    run(dir.path(), &other, &pgd, "1,2", "96");

    let report = dir.path().join("report");
    let mut args = vec!["export", "--output"];
    let (study_text, other_text) = (study.display().to_string(), other.display().to_string());
    args.extend([study_text.as_str(), "--output", other_text.as_str()]);
    let report_text = report.display().to_string();
    args.extend(["--out", report_text.as_str()]);
    for format in ["markdown", "latex", "csv", "json", "tensorboard"] {
        args.extend(["--format", format]);
    }
    let out = adarat(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));

    let expected = scipy(&[&study, &other]);
    // 3 methods × 2 modes, and PGD-AT's AdaRAT on 96 images, each over clean and FGSM.
    assert_eq!(expected.len(), 7 * 2, "{expected:#?}");
    assert!(
        expected.iter().any(|e| e["p"].is_f64()),
        "some difference is tested: {expected:#?}"
    );
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
            .unwrap();
    let rows = json["main"][0]["rows"].as_array().unwrap();
    let markdown = std::fs::read_to_string(report.join("results.md")).unwrap();
    let csv = std::fs::read_to_string(report.join("verdict.csv")).unwrap();
    let latex = std::fs::read_to_string(report.join("results.tex")).unwrap();
    for e in &expected {
        let (method, mode, limit) = (
            e["method"].as_str().unwrap(),
            e["mode"].as_str().unwrap(),
            e["limit_train"].as_str().unwrap(),
        );
        // Only PGD-AT's baseline and AdaRAT have a second group, so only their rows carry the label.
        let apart =
            (method == "pgd-at" && mode == "adarat").then(|| format!("limit_train {limit}"));
        let row = (rows.iter())
            .find(|r| {
                r["method"] == method
                    && r["mode"] == mode
                    && r["apart"].as_str() == apart.as_deref()
            })
            .unwrap_or_else(|| panic!("{method}/{mode} {apart:?} in {rows:#?}"));
        let column = e["column"].as_str().unwrap();
        let ours = &row["evidence"][column_index(column)];
        let what = format!("{method}/{mode} {apart:?} {column}");
        assert_same(ours, e, &what);

        // The same numbers in the other formats, as each writes them.
        let evidence: Evidence = Evidence {
            test: serde_json::from_value(ours["test"].clone()).unwrap(),
            n: e["n"].as_u64().unwrap() as usize,
            delta: ours["delta"].as_f64().unwrap(),
            ci: Some((
                ours["ci"][0].as_f64().unwrap(),
                ours["ci"][1].as_f64().unwrap(),
            )),
            p: ours["p"].as_f64(),
        };
        assert!(markdown.contains(&evidence.summary()), "{what}: {markdown}");
        assert!(
            latex.contains(&evidence.summary().replace('<', "$<$")),
            "{what}"
        );
        let line = (csv.lines())
            .find(|l| {
                let f: Vec<&str> = l.split(',').collect();
                f[1] == method
                    && f[2] == mode
                    && f[3] == apart.as_deref().unwrap_or_default()
                    && f[4].eq_ignore_ascii_case(COLUMNS[column_index(column)].0)
            })
            .unwrap_or_else(|| panic!("{what} in {csv}"));
        let fields: Vec<&str> = line.split(',').collect();
        assert!(
            close(fields[5].parse().unwrap(), e["delta"].as_f64().unwrap()),
            "{line}"
        );
        assert_eq!(fields[9], e["test"].as_str().unwrap(), "{line}");
    }
    assert!(markdown.contains("paired t, n 3 seeds"), "{markdown}");
    assert!(markdown.contains("[limit_train 96]"), "{markdown}");
    for file in ["epochs.csv", "attacks.csv", "results.tex"] {
        assert!(report.join(file).is_file(), "{file}");
    }

    // The Study screen over the same output folder, through the console's own monitor.
    let sets: Vec<String> = [
        "grid.methods=[pgd-at, trades, fat]",
        "grid.datasets=[synthetic]",
        "grid.seeds=[1, 2, 3]",
    ]
    .map(String::from)
    .to_vec();
    let study_config = config::parse(
        config::DEFAULT_CONFIG,
        &dir.path().join("experiments.yaml"),
        &sets,
    )
    .unwrap();
    let snapshot = Monitor::new(&study_config, &study).scan();
    let saved = SavedState {
        cursor: Some("pgd-at/synthetic/adarat".into()),
        selected: Vec::new(),
    };
    let mut app = App::new(Settings::default(), saved, Vec::new());
    app.update(Msg::Snapshot(snapshot));
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('t'),
    )));
    let screen = screen_text(&app, 400, 60);
    assert_verdict_lines(
        &screen,
        expected.iter().filter(|e| e["limit_train"] == "64"),
    );
    // Compare (every mode of the cursor's method) gives PGD-AT's verdicts under its table.
    app.update(Msg::Key(crossterm::event::KeyEvent::from(
        crossterm::event::KeyCode::Char('4'),
    )));
    let screen = screen_text(&app, 400, 60);
    let pgd = (expected.iter()).filter(|e| e["limit_train"] == "64" && e["method"] == "pgd-at");
    assert_verdict_lines(&screen, pgd);
    assert!(!screen.contains("trades"), "{screen}");
}

#[test]
fn with_one_seed_the_verdict_is_mcnemars_exact_test_on_the_same_test_images_as_scipy_computes_it() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let pgd: Vec<String> = ["baseline", "adarat"]
        .map(|mode| format!("pgd-at/synthetic/{mode}"))
        .to_vec();
    run(dir.path(), &output, &pgd, "4", "64");
    let report = dir.path().join("report");
    let (output_text, report_text) = (output.display().to_string(), report.display().to_string());
    let args = [
        "export",
        "--output",
        &output_text,
        "--out",
        &report_text,
        "--format",
        "json",
        "--format",
        "markdown",
    ];
    let out = adarat(dir.path(), &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let expected = scipy(&[&output]);
    assert_eq!(expected.len(), 2, "clean and FGSM: {expected:#?}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(report.join("results.json")).unwrap())
            .unwrap();
    let row = (json["main"][0]["rows"].as_array().unwrap().iter())
        .find(|r| r["mode"] == "adarat")
        .unwrap();
    let markdown = std::fs::read_to_string(report.join("results.md")).unwrap();
    for e in &expected {
        assert_eq!(e["test"], "mcnemar-exact");
        let column = e["column"].as_str().unwrap();
        let ours = &row["evidence"][column_index(column)];
        assert_same(ours, e, column);
        let evidence: Evidence = serde_json::from_value(ours.clone()).unwrap();
        assert!(markdown.contains(&evidence.summary()), "{markdown}");
    }
    assert!(
        markdown.contains("McNemar exact, n 50 images"),
        "{markdown}"
    );
}

/// Each of scipy's verdicts on the screen, as the console words them.
fn assert_verdict_lines<'a>(screen: &str, expected: impl Iterator<Item = &'a Value>) {
    for e in expected {
        let ours: Evidence = serde_json::from_value(e.clone()).unwrap();
        let line = format!(
            "{} {} vs baseline ({})",
            e["method"].as_str().unwrap(),
            e["mode"].as_str().unwrap(),
            ours.basis()
        );
        assert!(screen.contains(&line), "`{line}` missing:\n{screen}");
        let summary = ours.summary();
        assert!(screen.contains(&summary), "{summary} missing:\n{screen}");
    }
}

fn screen_text(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    let symbols: Vec<&str> = buffer.content().iter().map(|c| c.symbol()).collect();
    symbols
        .chunks(width as usize)
        .map(|line| line.concat())
        .collect::<Vec<_>>()
        .join("\n")
}
