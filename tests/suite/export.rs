//! `adarat export` over hand-built run folders: every number checked against values computed here
//! from the same inputs, groups that differ kept apart, bad input refused with one line.
use crate::common::system::{self, Need};
use crate::common::{adarat, run_python, stderr, stdout};
use serde_json::{json, Value};
use std::path::Path;

/// A completed run's `result.json`: its final table and three epochs with given test SA and RA.
fn write_run(
    output: &Path,
    job: &str,
    seed: u64,
    epochs: usize,
    finals: [f64; 6],
    curve: [(f64, f64); 3],
) {
    let [method, dataset, mode] = job.split('/').collect::<Vec<_>>()[..] else {
        panic!("{job}");
    };
    let folder = output.join(format!("{method}_{dataset}_{mode}_resnet18_seed{seed}"));
    std::fs::create_dir_all(&folder).unwrap();
    let epochs_log: Vec<Value> = (curve.iter().enumerate())
        .map(|(i, (sa, ra))| {
            json!({"epoch": i + 1, "lr": 0.1, "train_loss": 1.0, "train_clean_acc": 50.0,
                   "train_adv_acc": 30.0, "test_clean_acc": sa, "test_fgsm_acc": 40.0,
                   "test_pgd_acc": ra, "ratio_mean": null, "clean_branch_share": null,
                   "seconds": 1.0, "images_per_second": 100.0, "test_seconds": 0.5,
                   "train_clean_loss": 1.0, "train_adv_loss": 1.2, "test_clean_loss": 1.0,
                   "test_fgsm_loss": 1.1, "test_pgd_loss": 1.3, "finished_at": "2026/12/01 10:00:00"})
        })
        .collect();
    let peak = |pick: fn(&(f64, f64)) -> f64| {
        let (index, best) = (curve.iter().enumerate()).fold((0, f64::MIN), |(bi, bv), (i, c)| {
            if pick(c) > bv {
                (i, pick(c))
            } else {
                (bi, bv)
            }
        });
        json!({"epoch": index + 1, "value": best})
    };
    let [clean, fgsm, pgd20, pgd50, cw, aa] = finals;
    let result = json!({
        "job": job, "method": method, "dataset": dataset, "mode": mode, "model": "resnet18",
        "seed": seed, "protocol": "default", "device": "cuda:0", "status": "completed",
        "error": null, "epochs": epochs, "epochs_done": epochs, "seconds": 10.0,
        "epochs_log": epochs_log,
        "peaks": {"test_clean_acc": peak(|c| c.0), "test_pgd_acc": peak(|c| c.1)},
        "final": {"clean": clean, "fgsm": fgsm, "pgd10": pgd20 + 1.0, "pgd20": pgd20, "pgd50": pgd50,
                  "cw": cw, "autoattack": aa, "autoattack_preset": "standard",
                  "autoattack_steps": [], "images": 10000, "epsilon": 0.031372549,
                  "seed": seed, "seconds": {}, "flags": []}
    });
    std::fs::write(folder.join("result.json"), result.to_string()).unwrap();
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

fn sample_sd(values: &[f64]) -> f64 {
    let m = mean(values);
    (values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (values.len() - 1) as f64).sqrt()
}

#[test]
fn export_averages_seeds_marks_the_best_gives_deltas_and_keeps_differing_runs_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (laptop, cluster) = (dir.path().join("laptop"), dir.path().join("cluster"));
    // Baseline: three seeds, two on the cluster.
    let base_clean = [80.0, 82.0, 84.0];
    let base_aa = [40.0, 41.0, 45.0];
    for (i, seed) in [1, 2, 3].into_iter().enumerate() {
        let output = if seed == 1 { &laptop } else { &cluster };
        let finals = [base_clean[i], 50.0, 45.0, 44.0, 43.0, base_aa[i]];
        write_run(
            output,
            "pgd-at/cifar10/baseline",
            seed,
            120,
            finals,
            [(60.0, 30.0), (70.0, 42.0), (75.0, 40.0)],
        );
    }
    // AdaRAT: two seeds, better clean, about the same AutoAttack.
    let ada_clean = [86.0, 87.0];
    let ada_aa = [42.0, 43.0];
    for (i, seed) in [1, 2].into_iter().enumerate() {
        let finals = [ada_clean[i], 52.0, 47.0, 46.0, 45.0, ada_aa[i]];
        write_run(
            &laptop,
            "pgd-at/cifar10/adarat",
            seed,
            120,
            finals,
            [(70.0, 35.0), (80.0, 41.0), (78.0, 44.0)],
        );
    }
    // An AdaRAT run of 2 epochs: another experiment, never averaged with the 120-epoch ones.
    let short = laptop.join("short");
    write_run(
        &short,
        "pgd-at/cifar10/adarat",
        3,
        2,
        [30.0, 20.0, 15.0, 14.0, 13.0, 10.0],
        [(20.0, 10.0), (30.0, 15.0), (30.0, 15.0)],
    );
    std::fs::rename(
        short.join("pgd-at_cifar10_adarat_resnet18_seed3"),
        laptop.join("pgd-at_cifar10_adarat_resnet18_seed3"),
    )
    .unwrap();
    // A damaged result.json is named and left out.
    let damaged = cluster.join("trades_cifar10_adarat_resnet18_seed1");
    std::fs::create_dir_all(&damaged).unwrap();
    std::fs::write(damaged.join("result.json"), "{ not json").unwrap();

    let out = dir.path().join("report");
    let args = [
        "export",
        "--output",
        laptop.to_str().unwrap(),
        "--output",
        cluster.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
        "--format",
        "markdown",
        "--format",
        "csv",
        "--format",
        "latex",
        "--format",
        "tensorboard",
    ];
    let run = adarat(dir.path(), &args);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("trades_cifar10_adarat_resnet18_seed1: unreadable"),
        "{}",
        stderr(&run)
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let rows = report["main"][0]["rows"].as_array().unwrap();
    assert_eq!(report["main"][0]["dataset"], "cifar10");
    assert_eq!(
        rows.len(),
        3,
        "baseline, AdaRAT, and the 2-epoch AdaRAT apart: {rows:#?}"
    );
    let close = |a: &Value, b: f64| (a.as_f64().unwrap() - b).abs() < 1e-9;

    let base = &rows[0];
    assert_eq!(
        (base["mode"].as_str(), base["seeds"].clone()),
        (Some("baseline"), json!([1, 2, 3]))
    );
    assert!(close(&base["cells"][0]["mean"], mean(&base_clean)));
    assert!(close(&base["cells"][0]["sd"], sample_sd(&base_clean)));
    assert!(close(&base["cells"][5]["mean"], mean(&base_aa)));
    assert_eq!(base["cells"][5]["n"], 3);

    let ada = rows
        .iter()
        .find(|r| r["mode"] == "adarat" && r["apart"] == "epochs 120")
        .unwrap();
    assert!(close(&ada["cells"][0]["mean"], mean(&ada_clean)));
    assert!(close(
        &ada["delta"][0],
        mean(&ada_clean) - mean(&base_clean)
    ));
    assert!(close(&ada["delta"][5], mean(&ada_aa) - mean(&base_aa)));
    assert_eq!(
        base["delta"][0],
        Value::Null,
        "no Δ for the baseline itself"
    );
    // Best per method and column: AdaRAT's clean and AutoAttack (42.5 > 42.0), never the 2-epoch run.
    assert_eq!(ada["best"][0], true);
    assert_eq!(ada["best"][5], true);
    assert_eq!(base["best"][0], false);
    let short_row = rows.iter().find(|r| r["apart"] == "epochs 2").unwrap();
    assert_eq!(short_row["seeds"], json!([3]));
    assert_eq!(
        short_row["cells"][0]["sd"],
        Value::Null,
        "one seed has no sd"
    );
    let notes = report["main"][0]["notes"].to_string();
    assert!(notes.contains("never averaged"), "{notes}");

    // Peaks: per seed, then averaged; the distance in epochs between the SA and RA peaks.
    let peaks = report["peaks"].as_array().unwrap();
    let base_peaks = peaks.iter().find(|p| p["mode"] == "baseline").unwrap();
    assert!(close(&base_peaks["sa_epoch"]["mean"], 3.0));
    assert!(close(&base_peaks["ra_epoch"]["mean"], 2.0));
    assert!(close(&base_peaks["distance"]["mean"], 1.0));
    assert!(close(&base_peaks["last_ra"]["mean"], 40.0));
    let ada_peaks = peaks
        .iter()
        .find(|p| p["mode"] == "adarat" && p["apart"] == "epochs 120")
        .unwrap();
    assert!(close(&ada_peaks["distance"]["mean"], 1.0));

    // Markdown: the same numbers as people read them.
    let markdown = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        markdown.contains("| pgd-at | baseline | 3 | 82.00 ± 2.00 |"),
        "{markdown}"
    );
    assert!(markdown.contains("**86.50 ± 0.71** (+4.50)"), "{markdown}");
    assert!(markdown.contains("AutoAttack: standard."), "{markdown}");
    assert_eq!(stdout(&run).matches("| pgd-at | baseline |").count(), 1);

    // CSV in tidy long form, read by pandas without options.
    let checked = run_python(
        "export_csv.py",
        &[&out.join("epochs.csv"), &out.join("attacks.csv")],
    );
    let lines: Vec<&str> = checked.lines().collect();
    let run_columns = "'run', 'job', 'method', 'dataset', 'mode', 'model', 'seed', 'protocol', \
                       'epochs', 'epsilon', 'autoattack', 'images', 'group'";
    assert_eq!(
        lines[0],
        format!("[{run_columns}, 'epoch', 'metric', 'value']")
    );
    assert_eq!(lines[1], format!("[{run_columns}, 'attack', 'accuracy']"));
    // 6 runs × 3 epochs × 7 metrics (ratio and clean-only share are null); 6 runs × 7 attacks.
    assert_eq!(lines[2], "126 42");
    // Grouped by mode and group, pandas averages what the main table averages.
    for mean in [
        "(('adarat', 'epochs 120'), 86.5)",
        "(('adarat', 'epochs 2'), 30.0)",
        "(('baseline', ''), 82.0)",
    ] {
        assert!(lines[3].contains(mean), "{mean}: {}", lines[3]);
    }

    // TensorBoard: each run's per-epoch scalars, read back by the tensorboard package.
    let events = out.join("tensorboard/pgd-at_cifar10_baseline_resnet18_seed1");
    let read = run_python("tensorboard_events.py", &[&events]);
    let lines: Vec<&str> = read.lines().filter(|l| !l.contains("TensorFlow")).collect();
    assert_eq!(
        lines[0],
        "['test/clean_acc', 'test/fgsm_acc', 'test/pgd_acc', 'train/adv_acc', 'train/clean_acc', 'train/loss', 'train/lr']",
        "{read}"
    );
    assert_eq!(
        lines[1], "test/clean_acc [(1, 60.0), (2, 70.0), (3, 75.0)]",
        "{read}"
    );
    assert_eq!(
        lines[2], "test/pgd_acc [(1, 30.0), (2, 42.0), (3, 40.0)]",
        "{read}"
    );

    // LaTeX: a booktabs document whose rows have as many cells as the header.
    let latex = std::fs::read_to_string(out.join("results.tex")).unwrap();
    for needed in [
        "\\usepackage{booktabs}",
        "\\toprule",
        "\\midrule",
        "\\bottomrule",
        "\\end{document}",
    ] {
        assert!(latex.contains(needed), "{needed}");
    }
    assert_eq!(latex.matches('{').count(), latex.matches('}').count());
    // Two groups of one job are told apart in the peaks table too.
    assert!(
        latex.contains("pgd-at/cifar10/adarat [epochs 2]"),
        "{latex}"
    );
    for line in latex.lines().filter(|l| l.starts_with("pgd-at ")) {
        assert_eq!(line.matches(" & ").count(), 8, "{line}");
    }
}

#[test]
fn st_has_peaks_and_curves_and_dashes_for_the_attack_table_it_never_has() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    for seed in [1, 2] {
        write_run(
            &output,
            "st/cifar10/baseline",
            seed,
            3,
            [0.0; 6],
            [(60.0, 0.0), (80.0, 0.0), (90.0, 0.0)],
        );
        // ST has no final attack table by design (it trains teachers).
        let path = output.join(format!(
            "st_cifar10_baseline_resnet18_seed{seed}/result.json"
        ));
        let mut result: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        result["final"] = Value::Null;
        std::fs::write(&path, result.to_string()).unwrap();
    }
    let out = dir.path().join("report");
    let (output_text, out_text) = (output.display().to_string(), out.display().to_string());
    let run = adarat(
        dir.path(),
        &[
            "export",
            "--output",
            &output_text,
            "--out",
            &out_text,
            "--format",
            "json",
        ],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(
        !stderr(&run).contains("st_cifar10"),
        "ST is not left out: {}",
        stderr(&run)
    );
    let markdown = stdout(&run);
    assert!(
        markdown.contains("| st | baseline | 2 | — | — |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("| st/cifar10/baseline | 2 | 3.0 ± 0.0 | 90.00 ± 0.00 |"),
        "{markdown}"
    );
    assert!(
        markdown.contains("no final attack table by design"),
        "{markdown}"
    );
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(report["skipped"], json!([]));
    assert_eq!(report["peaks"][0]["method"], "st");
}

#[test]
fn the_exported_latex_compiles_with_pdflatex() {
    if !system::installed(&[Need::Latex]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    for (mode, clean) in [("baseline", 82.0), ("adarat", 86.0)] {
        let finals = [clean, 50.0, 45.0, 44.0, 43.0, 40.0];
        let curve = [(60.0, 30.0), (70.0, 42.0), (75.0, 40.0)];
        write_run(
            &output,
            &format!("pgd-at/cifar10/{mode}"),
            1,
            3,
            finals,
            curve,
        );
    }
    let args = [
        "export", "--output", "output", "--out", "report", "--format", "latex",
    ];
    let run = adarat(dir.path(), &args);
    assert!(run.status.success(), "{}", stderr(&run));
    let out = dir.path().join("report");
    let pdflatex = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "-halt-on-error", "results.tex"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        pdflatex.status.success(),
        "pdflatex:\n{}",
        stdout(&pdflatex)
    );
    assert!(out.join("results.pdf").is_file());
}

#[test]
fn export_refuses_an_empty_folder_and_unknown_filters_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("empty")).unwrap();
    for (args, wanted) in [
        (
            vec!["export", "--output", "empty"],
            "no completed run in empty",
        ),
        (
            vec!["export", "--output", "nowhere"],
            "nowhere: no such output folder",
        ),
        (
            vec!["export", "--output", "empty", "--methods", "pgd"],
            "pgd",
        ),
        (
            vec!["export", "--output", "empty", "--format", "docx"],
            "format `docx`",
        ),
    ] {
        let out = adarat(dir.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let text = stderr(&out);
        assert!(
            text.contains(wanted) && text.lines().count() == 1,
            "{args:?}: {text}"
        );
    }
}

#[test]
fn export_plots_draws_each_figure_as_a_png_and_an_svg_that_decode() {
    if !system::installed(&[Need::Font]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    // Baseline SA peaks at epoch 2 in both seeds (mean 71.0); AdaRAT's at epoch 3 (mean 79.0).
    for (seed, shift) in [(1, -1.0), (2, 1.0)] {
        let finals = [82.0 + shift, 60.0, 45.0, 44.0, 43.0, 40.0 + shift];
        let base = [(60.0, 30.0), (71.0 + shift, 42.0), (70.0, 40.0)];
        write_run(&output, "pgd-at/cifar10/baseline", seed, 3, finals, base);
        let ada = [(62.0, 31.0), (70.0, 40.0), (79.0 + shift, 41.0)];
        write_run(&output, "pgd-at/cifar10/adarat", seed, 3, finals, ada);
        // AdaRAT records its ratio and clean-only share per epoch.
        let folder = output.join(format!("pgd-at_cifar10_adarat_resnet18_seed{seed}"));
        let mut result: Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("result.json")).unwrap())
                .unwrap();
        for record in result["epochs_log"].as_array_mut().unwrap() {
            record["ratio_mean"] = json!(2.5);
            record["clean_branch_share"] = json!(0.25);
        }
        std::fs::write(folder.join("result.json"), result.to_string()).unwrap();
    }
    let out = dir.path().join("report");
    let run = adarat(
        dir.path(),
        &["export", "--output", "output", "--out", "report", "--plots"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    let checked = run_python("figures_check.py", &[&out.join("figures")]);
    let lines: Vec<&str> = checked.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "barrier.png",
            "barrier.svg",
            "curves-pgd-at-cifar10.png",
            "curves-pgd-at-cifar10.svg",
            "ratio-pgd-at-cifar10.png",
            "ratio-pgd-at-cifar10.svg",
            "tradeoff-cifar10.png",
            "tradeoff-cifar10.svg",
        ],
        "{checked}"
    );
    let line = |name: &str| *lines.iter().find(|l| l.starts_with(name)).unwrap();
    assert_eq!(
        line("curves-pgd-at-cifar10.png"),
        "curves-pgd-at-cifar10.png 1200x480"
    );
    assert_eq!(line("tradeoff-cifar10.png"), "tradeoff-cifar10.png 800x600");
    let curves = line("curves-pgd-at-cifar10.svg");
    assert!(
        curves.starts_with("curves-pgd-at-cifar10.svg 1200x480 "),
        "{curves}"
    );
    // The peaks of the mean curves, marked with their epochs and values.
    for wanted in [
        "peak 2: 71.0",
        "peak 3: 79.0",
        "test SA (clean)",
        "test RA (PGD)",
        "baseline",
        "adarat",
    ] {
        assert!(curves.contains(wanted), "{wanted}: {curves}");
    }
    let ratio = line("ratio-pgd-at-cifar10.svg");
    assert!(
        ratio.contains("mean ratio") && ratio.contains("clean-only"),
        "{ratio}"
    );
    // No AdaRAT run folder has a config.yaml: the barrier is the study's (u 1.1, d 0.4, τ 0.01
    // for PGD-AT on CIFAR-10).
    let barrier = line("barrier.svg");
    assert!(barrier.contains("u 1.1, d 0.4, τ 0.01"), "{barrier}");
    let tradeoff = line("tradeoff-cifar10.svg");
    assert!(tradeoff.contains("clean vs AutoAttack"), "{tradeoff}");
}

#[test]
fn export_plots_without_a_font_writes_the_tables_and_says_how_to_get_figures() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("output");
    let curve = [(60.0, 30.0), (70.0, 42.0), (75.0, 40.0)];
    write_run(
        &output,
        "pgd-at/cifar10/baseline",
        1,
        3,
        [82.0, 60.0, 45.0, 44.0, 43.0, 40.0],
        curve,
    );
    let run = crate::common::adarat_command(
        dir.path(),
        &["export", "--output", "output", "--out", "report", "--plots"],
    )
    .env("ADARAT_FONT", "/no/such/font.ttf")
    .output()
    .unwrap();
    assert_eq!(run.status.code(), Some(2));
    let text = stderr(&run);
    assert!(
        text.lines().count() == 1
            && text.contains("tables written, no figures")
            && text.contains("ADARAT_FONT"),
        "{text}"
    );
    assert!(dir.path().join("report/results.md").is_file());
}
