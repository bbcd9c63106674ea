//! `adarat run` end to end, through the real binary, the real engine and libtorch.
use crate::common;

use common::{adarat, result_json, stderr, stdout};
use serde_json::Value;

#[test]
fn pgd_at_adarat_on_synthetic_learns_and_writes_a_complete_run_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = adarat(
        dir.path(),
        &[
            "run",
            "pgd-at/synthetic/adarat",
            // Three epochs: the synthetic recipe's first two can stall on some CPUs and seeds
            // (docs/testing.md); after three it was at 48% or more in every run tried.
            "--epochs",
            "3",
            "--limit-test",
            "200",
            "--device",
            "cpu",
            "--offline",
            // AutoAttack's Square spends 5000 queries per robust point: its own test below
            // keeps few robust points.
            "--set",
            "evaluation.final_attacks=[fgsm,pgd10,pgd20,pgd50,cw]",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let folder = dir
        .path()
        .join("output/pgd-at_synthetic_adarat_small-cnn_seed1");
    let result = result_json(&folder);
    // `adarat list` over the synthetic grid names each job's state and device.
    let listed = adarat(dir.path(), &["list", "--set", "grid.datasets=[synthetic]"]);
    let listed = stdout(&listed);
    let line = (listed.lines())
        .find(|l| l.starts_with("pgd-at/synthetic/adarat "))
        .unwrap_or_else(|| panic!("{listed}"));
    assert!(
        line.contains("completed 3/3") && line.ends_with("on cpu"),
        "{line}"
    );
    assert!(
        listed.contains("pgd-at/synthetic/baseline        not run"),
        "{listed}"
    );
    for field in [
        "job",
        "method",
        "dataset",
        "mode",
        "model",
        "seed",
        "protocol",
        "device",
        "status",
        "error",
        "epochs",
        "epochs_done",
        "seconds",
        "epochs_log",
        "final",
    ] {
        assert!(result.get(field).is_some(), "result.json lacks `{field}`");
    }
    assert_eq!(result["job"], "pgd-at/synthetic/adarat");
    assert_eq!(result["status"], "completed");
    assert_eq!(result["epochs_done"], 3);
    assert_eq!(result["protocol"], "default");
    assert_eq!(result["device"], "cpu");
    let epochs = result["epochs_log"].as_array().unwrap();
    assert_eq!(epochs.len(), 3);
    for e in epochs {
        for field in [
            "epoch",
            "lr",
            "train_loss",
            "train_clean_acc",
            "train_adv_acc",
            "test_clean_acc",
            "test_fgsm_acc",
            "test_pgd_acc",
            "ratio_mean",
            "clean_branch_share",
            "seconds",
            "images_per_second",
        ] {
            assert!(e.get(field).is_some(), "epochs_log entry lacks `{field}`");
        }
        assert!(e["train_loss"].as_f64().unwrap().is_finite());
        let share = e["clean_branch_share"]
            .as_f64()
            .expect("AdaRAT reports the clean-only share");
        assert!((0.0..=1.0).contains(&share));
    }
    let last = &epochs[2];
    let clean = last["test_clean_acc"].as_f64().unwrap();
    let pgd = last["test_pgd_acc"].as_f64().unwrap();
    assert!(
        clean > 30.0,
        "the network did not learn: clean accuracy {clean}% is not far above the 10% of chance"
    );
    assert!(
        pgd < clean,
        "PGD accuracy {pgd}% is not below clean accuracy {clean}%"
    );

    let table = &result["final"];
    for field in [
        "clean",
        "fgsm",
        "pgd10",
        "pgd20",
        "pgd50",
        "cw",
        "autoattack",
        "autoattack_preset",
    ] {
        assert!(table.get(field).is_some(), "final lacks `{field}`");
    }
    let pgd20 = table["pgd20"].as_f64().unwrap();
    let pgd50 = table["pgd50"].as_f64().unwrap();
    assert!(pgd50 <= pgd20 + 1.0 && pgd20 < table["clean"].as_f64().unwrap());
    // The per-epoch test saw the 200 test images, the final table synthetic's first 100
    // (`evaluation.datasets.synthetic.final_images`).
    assert_eq!(table["images"], 100);

    let log = std::fs::read_to_string(folder.join("train.log")).unwrap();
    assert!(log.contains("training method: PGD_AT_FixRAT_AdaRAT"));
    assert!(log.contains("epoch   learning_rate   train_time   train_AE_loss"));
    assert!(log.contains("] - 003     0.0100"));
    assert!(log.contains("final robust result:") && log.contains("PGD20 ACC: "));
    for file in ["config.yaml", "events.jsonl", "model.safetensors"] {
        assert!(folder.join(file).is_file(), "{file} missing");
    }
    // A completed run keeps no resume point (its files weigh a model each).
    let leftovers: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("resume"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let events = std::fs::read_to_string(folder.join("events.jsonl")).unwrap();
    assert!(events
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok()));
    assert_eq!(
        events
            .lines()
            .filter(|l| l.contains("\"type\":\"epoch_finished\""))
            .count(),
        3
    );

    // Running the finished job again leaves it as it is; with another configuration it is
    // refused; only --fresh moves the finished run aside.
    let first_run = std::fs::read_to_string(folder.join("result.json")).unwrap();
    let same = adarat(
        dir.path(),
        &[
            "run",
            "pgd-at/synthetic/adarat",
            "--epochs",
            "3",
            "--limit-test",
            "200",
            "--device",
            "cpu",
            "--offline",
            "--set",
            "evaluation.final_attacks=[fgsm,pgd10,pgd20,pgd50,cw]",
        ],
    );
    assert!(same.status.success(), "{}", stderr(&same));
    assert!(
        stderr(&same).contains("already completed") && stderr(&same).contains("--fresh"),
        "{}",
        stderr(&same)
    );
    let shorter = [
        "run",
        "pgd-at/synthetic/adarat",
        "--epochs",
        "1",
        "--limit-train",
        "128",
        "--limit-test",
        "64",
        "--device",
        "cpu",
    ];
    let refused = adarat(dir.path(), &shorter);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("holds a completed run of another configuration"),
        "{}",
        stderr(&refused)
    );
    let archived = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.path().join("output"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("pgd-at_synthetic_adarat_small-cnn_seed1.")
            })
            .map(|e| e.path())
            .collect()
    };
    assert!(archived().is_empty());
    assert_eq!(
        std::fs::read_to_string(folder.join("result.json")).unwrap(),
        first_run,
        "the finished run is untouched"
    );
    let again = adarat(dir.path(), &[&shorter[..], &["--fresh"]].concat());
    assert!(again.status.success(), "{}", stderr(&again));
    let archived = archived();
    assert_eq!(archived.len(), 1);
    assert_eq!(result_json(&archived[0])["epochs_done"], 3);

    let show = adarat(dir.path(), &["show", "pgd-at/synthetic/adarat"]);
    assert!(show.status.success(), "{}", stderr(&show));
    assert!(String::from_utf8_lossy(&show.stdout).contains("peaks: SA"));
}

#[test]
fn the_final_table_of_a_run_has_every_field_autoattack_included() {
    let dir = tempfile::tempdir().unwrap();
    let out = adarat(
        dir.path(),
        &[
            "run",
            "pgd-at/synthetic/baseline",
            "--epochs",
            "1",
            "--limit-train",
            "256",
            "--limit-test",
            "64",
            "--device",
            "cpu",
            "--offline",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // The finished table is printed, AutoAttack's sub-attacks included.
    assert!(
        stderr(&out).contains("AutoAttack (standard)"),
        "{}",
        stderr(&out)
    );
    let folder = dir
        .path()
        .join("output/pgd-at_synthetic_baseline_small-cnn_seed1");
    let table = &result_json(&folder)["final"];
    for field in [
        "clean",
        "fgsm",
        "pgd10",
        "pgd20",
        "pgd50",
        "cw",
        "autoattack",
    ] {
        assert!(
            table[field].is_number(),
            "final.{field} is {}",
            table[field]
        );
    }
    assert_eq!(table["autoattack_preset"], "standard");
    assert_eq!(table["seed"], 1);
    assert_eq!(table["images"], 64);
    let aa = table["autoattack"].as_f64().unwrap();
    assert!(aa <= table["pgd20"].as_f64().unwrap() && aa <= table["clean"].as_f64().unwrap());
    let steps = table["autoattack_steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[3]["accuracy"].as_f64(), Some(aa));
    for attack in ["fgsm", "pgd10", "pgd20", "pgd50", "cw", "autoattack"] {
        assert!(
            table["seconds"][attack].is_number(),
            "no seconds for {attack}"
        );
    }
    // The table is counted from the per-image records, written beside it
    // (docs/run-folder.md#per-imagejson).
    let records = adarat::store::read_per_image(&folder)
        .unwrap()
        .expect("a completed run has per-image.json");
    assert_eq!(records.images(), 64);
    // Clean and every final attack, all of which ran.
    let names: Vec<&str> = std::iter::once("clean")
        .chain(adarat::vocab::FinalAttack::ALL.iter().map(|a| a.as_str()))
        .collect();
    assert_eq!(records.records().count(), names.len());
    let percent = |count: u64| 100.0 * count as f64 / 64.0;
    for &name in &names {
        let bits = records.correct(name).unwrap();
        assert_eq!(bits.len(), 64);
        assert_eq!(
            percent(bits.count()),
            table[name].as_f64().unwrap(),
            "{name}"
        );
    }
    let worst_case = table["worst_case"].as_f64().unwrap();
    let every = (0..64)
        .filter(|&i| {
            names
                .iter()
                .all(|n| records.correct(n).unwrap().get(i) == Some(true))
        })
        .count();
    assert_eq!(percent(every as u64), worst_case);
    for name in names {
        assert!(worst_case <= table[name].as_f64().unwrap(), "{name}");
    }
    assert!(
        stderr(&out).contains(&format!(
            "  {:<32} {worst_case:>8.2}%",
            "worst case (every attack)"
        )),
        "{}",
        stderr(&out)
    );
    // The reference's closing block carries the AutoAttack line.
    let log = std::fs::read_to_string(folder.join("train.log")).unwrap();
    assert!(log.contains(&format!("AA ACC: {aa:05.2}")), "{log}");
    // Progress went to the event log, attack by attack.
    let events = std::fs::read_to_string(folder.join("events.jsonl")).unwrap();
    for needle in [
        r#""type":"final_attack","attack":"pgd50""#,
        r#""attack":"autoattack/apgd-ce""#,
        r#""type":"final_batch""#,
    ] {
        assert!(events.contains(needle), "events.jsonl lacks {needle}");
    }
}

#[test]
fn baseline_and_fixrat_report_their_ratio() {
    let dir = tempfile::tempdir().unwrap();
    for (mode, ratio) in [("baseline", None), ("fixrat", Some(1.0))] {
        let job = format!("pgd-at/synthetic/{mode}");
        let out = adarat(
            dir.path(),
            &[
                "run",
                &job,
                "--epochs",
                "1",
                "--limit-train",
                "256",
                "--limit-test",
                "128",
                "--device",
                "cpu",
                "--set",
                "evaluation.final_attacks=[fgsm]",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let result = result_json(
            &dir.path()
                .join(format!("output/pgd-at_synthetic_{mode}_small-cnn_seed1")),
        );
        let epoch = &result["epochs_log"][0];
        assert_eq!(epoch["ratio_mean"].as_f64(), ratio, "{mode}");
        assert!(epoch["clean_branch_share"].is_null(), "{mode}");
        assert!(result["final"]["fgsm"].is_number() && result["final"]["pgd20"].is_null());
    }
}

#[test]
fn bad_input_gets_one_line_and_exit_status_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "paths: {data: data\n").unwrap();
    for (args, expected) in [
        (
            vec!["run", "pgd-at/cifar10"],
            "not of the form method/dataset/mode",
        ),
        (
            vec!["run", "pgd-at/imagenet/adarat"],
            "unknown dataset `imagenet`",
        ),
        (vec!["run", "st/cifar10/adarat"], "baseline mode only"),
        (
            vec![
                "run",
                "pgd-at/synthetic/adarat",
                "--set",
                "training.epochs=zero",
            ],
            "--set training.epochs=zero",
        ),
        (
            vec!["run", "pgd-at/synthetic/adarat", "--config", "broken.yaml"],
            "broken.yaml",
        ),
        (
            vec!["run", "pgd-at/synthetic/adarat", "--config", "missing.yaml"],
            "missing.yaml",
        ),
        (
            vec!["run", "pgd-at/synthetic/adarat", "--device", "tpu"],
            "device `tpu`",
        ),
        (
            vec!["run", "pgd-at/synthetic/adarat", "--model", "vgg"],
            "unknown model `vgg`",
        ),
        (
            vec!["run", "pgd-at/synthetic/adarat", "--epochs", "0"],
            "at least 1 epoch",
        ),
        (
            vec!["run", "pgd-at/mnist/adarat", "--offline", "--epochs", "1"],
            "mnist",
        ),
        (vec!["show", "output/nothing-here"], "nothing-here"),
    ] {
        let out = adarat(dir.path(), &args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(expected),
            "{args:?}: `{err}` lacks `{expected}`"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn bf16_training_follows_fp32_and_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut losses = Vec::new();
    for precision in ["fp32", "bf16"] {
        let output = format!("out-{precision}");
        let set = format!("training.precision={precision}");
        let out = adarat(
            dir.path(),
            &[
                "run",
                "pgd-at/synthetic/baseline",
                "--epochs",
                "2",
                "--limit-train",
                "256",
                "--limit-test",
                "64",
                "--device",
                "cpu",
                "--output",
                &output,
                "--set",
                &set,
                "--set",
                "evaluation.final_attacks=[fgsm]",
            ],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let folder = dir
            .path()
            .join(&output)
            .join("pgd-at_synthetic_baseline_small-cnn_seed1");
        let config = std::fs::read_to_string(folder.join("config.yaml")).unwrap();
        assert!(
            config.contains(&format!("precision: {precision}")),
            "{config}"
        );
        let result = result_json(&folder);
        let epochs = result["epochs_log"].as_array().unwrap();
        assert!(epochs
            .iter()
            .all(|e| e["test_seconds"].as_f64().unwrap() > 0.0));
        losses.push(
            epochs
                .iter()
                .map(|e| e["train_loss"].as_f64().unwrap())
                .collect::<Vec<_>>(),
        );
    }
    for (fp32, bf16) in losses[0].iter().zip(&losses[1]) {
        assert!(bf16.is_finite() && (fp32 - bf16).abs() < 0.05, "{losses:?}");
    }
}
