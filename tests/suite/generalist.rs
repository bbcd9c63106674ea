//! Generalist (docs/protocol.md#generalist): its schedules, the order of its per-batch updates, the
//! communication resets, its resume state, and whole runs of the three modes through the binary.
use crate::common;

use adarat::config::{self, JobConfig, JobOverrides, MethodParams, RatioConfig, Study};
use adarat::data::Batch;
use adarat::methods::generalist::Generalist;
use adarat::methods::{MethodError, TrainingMethod};
use adarat::models::{ModelSpec, Network};
use adarat::optim::schedule::learning_rate;
use adarat::optim::sgd::Sgd;
use adarat::ratio::{LossTerms, Ratio};
use adarat::vocab::{Mode, ModelKind};
use common::{adarat, adarat_command, result_json, TINY};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn study() -> Study {
    config::parse(
        config::DEFAULT_CONFIG,
        Path::new("/study/experiments.yaml"),
        &[],
    )
    .unwrap()
}

fn job(name: &str) -> JobConfig {
    study()
        .resolve(&name.parse().unwrap(), &JobOverrides::default())
        .unwrap()
}

fn spec() -> ModelSpec {
    ModelSpec {
        kind: ModelKind::SmallCnn,
        in_channels: 3,
        height: 32,
        width: 32,
        classes: 10,
        dropout: 0.0,
    }
}

/// A synthetic job whose learners communicate from 1-indexed epoch `start` on, every epoch.
fn synthetic_job(start: usize) -> JobConfig {
    let mut cfg = job("generalist/synthetic/baseline");
    if let MethodParams::Generalist(params) = &mut cfg.params {
        params.communication_start = start;
        params.communication_period = 1;
    }
    cfg
}

struct Setup {
    method: Generalist,
    at_learner: Network,
    at_optimizer: Sgd,
}

fn setup(cfg: &JobConfig) -> Setup {
    tch::manual_seed(3);
    let MethodParams::Generalist(params) = &cfg.params else {
        panic!("{} is not a generalist job", cfg.job);
    };
    let mut method = Generalist::new(cfg, params, &spec(), Device::Cpu).unwrap();
    let at_learner = Network::new(&spec(), Device::Cpu).unwrap();
    method.initialise(&at_learner).unwrap();
    let at_optimizer = Sgd::new(at_learner.parameters(), 0.9, 5e-4);
    Setup {
        method,
        at_learner,
        at_optimizer,
    }
}

fn batch() -> Batch {
    Batch {
        images: Tensor::rand([8, 3, 32, 32], (Kind::Float, Device::Cpu)),
        labels: Tensor::randint(10, [8], (Kind::Int64, Device::Cpu)),
    }
}

/// One training step as the run loop takes it: the AT learner's baseline loss and step, then the
/// method's own updates.
fn train_step(s: &mut Setup, epoch: usize) {
    let batch = batch();
    s.at_optimizer.zero_grad();
    let step = s.method.losses(&s.at_learner, &batch, epoch);
    step.terms.baseline.backward();
    s.at_optimizer.step(0.1);
    s.method
        .after_step(&mut s.at_learner, &batch, epoch, 0.1)
        .unwrap();
}

fn state(net: &Network) -> Vec<Tensor> {
    net.state_dict()
        .into_iter()
        .map(|(_, t)| t.copy())
        .collect()
}

/// The state of the ST learner, read from the method's resume state.
fn st_learner_state(method: &Generalist) -> Vec<Tensor> {
    method
        .resume_state()
        .into_iter()
        .filter(|(name, _)| name.starts_with("st_learner."))
        .map(|(_, t)| t)
        .collect()
}

fn all_equal(a: &[Tensor], b: &[Tensor]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.equal(y))
}

#[test]
fn the_learning_rate_follows_generalists_piecewise_linear_schedule() {
    let _torch = common::torch_lock();
    let cfg = job("generalist/cifar10/adarat");
    let lr = |epoch_one_indexed: usize| {
        learning_rate(&cfg.lr_schedule, cfg.learning_rate, epoch_one_indexed - 1)
    };
    for (epoch, expected) in [
        (1, 0.1),
        (40, 0.1),
        (60, 0.055),
        (80, 0.01),
        (100, 0.0055),
        (120, 0.001),
    ] {
        assert!(
            (lr(epoch) - expected).abs() < 1e-12,
            "epoch {epoch}: {} ≠ {expected}",
            lr(epoch)
        );
    }
    assert!(
        !cfg.reset_momentum_each_epoch,
        "optimizers are created once"
    );
}

#[test]
fn the_global_model_is_an_ema_of_the_at_teacher_while_beta_mix_is_one() {
    let _torch = common::torch_lock();
    let mut s = setup(&synthetic_job(75));
    let initial = state(&s.at_learner);
    train_step(&mut s, 0);
    let stepped = state(&s.at_learner);
    // First updates: decay (0+1)/(0+10) = 0.1. T_at = 0.1·θ0 + 0.9·θ1; T_mix = 0.1·θ0 + 0.9·T_at.
    let global = state(s.method.evaluated().unwrap());
    let names = s.at_learner.state_dict();
    let mut checked = 0;
    for (((name, _), (g, t0)), t1) in names.iter().zip(global.iter().zip(&initial)).zip(&stepped) {
        if !t0.is_floating_point() {
            continue;
        }
        let at_teacher = t0 * 0.1 + t1 * 0.9;
        let expected = t0 * 0.1 + at_teacher * 0.9;
        let gap = (g - expected).abs().max().double_value(&[]);
        assert!(gap < 1e-6, "{name}: off by {gap}");
        checked += 1;
    }
    assert!(checked > 0);
    assert!(
        !all_equal(&global, &stepped),
        "no communication before epoch 75"
    );
}

#[test]
fn below_one_beta_mix_blends_the_at_and_st_teachers() {
    let _torch = common::torch_lock();
    let mut cfg = synthetic_job(75);
    if let MethodParams::Generalist(params) = &mut cfg.params {
        params.mix_points = vec![(0.0, 0.25)];
    }
    let mut s = setup(&cfg);
    let initial = state(&s.at_learner);
    train_step(&mut s, 0);
    let (at, st) = (state(&s.at_learner), st_learner_state(&s.method));
    let global = state(s.method.evaluated().unwrap());
    let names = s.at_learner.state_dict();
    for ((name, _), (((g, t0), a), b)) in names
        .iter()
        .zip(global.iter().zip(&initial).zip(&at).zip(&st))
    {
        if !t0.is_floating_point() {
            continue;
        }
        // T_at, T_st after one update (decay 0.1), then T_mix from 0.25·T_at + 0.75·T_st.
        let at_teacher = t0 * 0.1 + a * 0.9;
        let st_teacher = t0 * 0.1 + b * 0.9;
        let expected = t0 * 0.1 + (at_teacher * 0.25 + st_teacher * 0.75) * 0.9;
        let gap = (g - expected).abs().max().double_value(&[]);
        assert!(gap < 1e-6, "{name}: off by {gap}");
    }
    assert!(
        !all_equal(&at, &st),
        "the two learners took different steps"
    );
}

#[test]
fn communication_resets_both_learners_to_the_global_model() {
    let _torch = common::torch_lock();
    let mut s = setup(&synthetic_job(1));
    train_step(&mut s, 0);
    let global = state(s.method.evaluated().unwrap());
    assert!(all_equal(&state(&s.at_learner), &global));
    assert!(all_equal(&st_learner_state(&s.method), &global));

    // Outside the communication epochs the learners keep their own weights.
    let mut s = setup(&synthetic_job(75));
    train_step(&mut s, 73); // epoch 74
    let global = state(s.method.evaluated().unwrap());
    assert!(!all_equal(&state(&s.at_learner), &global));
    assert!(!all_equal(&st_learner_state(&s.method), &global));
}

#[test]
fn the_resume_state_restores_every_model_momentum_and_counter() {
    let _torch = common::torch_lock();
    let cfg = synthetic_job(75);
    let mut s = setup(&cfg);
    train_step(&mut s, 0);
    train_step(&mut s, 0);
    let saved = s.method.resume_state();
    assert!(saved.iter().any(|(n, _)| n.starts_with("st_momentum.")));
    assert!(saved.iter().any(|(n, _)| n == "global.updates"));

    let mut restored = setup(&cfg).method;
    restored
        .restore_state(saved.iter().map(|(n, t)| (n.clone(), t.copy())).collect())
        .unwrap();
    let again = restored.resume_state();
    assert_eq!(saved.len(), again.len());
    for ((name, a), (other, b)) in saved.iter().zip(&again) {
        assert_eq!(name, other);
        assert!(a.equal(b), "{name} differs after restoring");
    }

    let mut incomplete = saved;
    incomplete.retain(|(n, _)| n != "at_teacher.updates");
    let error = restored.restore_state(incomplete).unwrap_err();
    assert!(
        matches!(&error, MethodError::MissingState { key } if key == "at_teacher.updates"),
        "{error}"
    );
}

#[test]
fn a_clean_loss_exactly_at_the_switch_takes_generalists_barrier_branch() {
    let _torch = common::torch_lock();
    // u = 1 and switch 0.5 make the threshold exactly 0.5 in f32 and f64.
    let cfg = RatioConfig {
        beta: 0.04,
        up: 1.0,
        down: 0.2,
        tau: 0.01,
        switch: 0.5,
    };
    let clean_only = |generalist: bool, standard: f32| {
        let ratio = Ratio::new(Mode::AdaRat, Some(cfg), 0.031)
            .unwrap()
            .with_barrier_at_threshold(generalist);
        let terms = LossTerms {
            standard: Tensor::from(standard),
            adversarial: Tensor::from(1.0f32),
            baseline: Tensor::from(1.0f32),
            extra: None,
        };
        ratio.combine(terms).clean_only.unwrap().double_value(&[])
    };
    assert_eq!(
        clean_only(true, 0.5),
        0.0,
        "Generalist: L_s ≤ 0.7u → barrier"
    );
    assert_eq!(
        clean_only(false, 0.5),
        1.0,
        "main scripts: L_s ≥ 0.7u → clean only"
    );
    assert_eq!(clean_only(true, 0.5001), 1.0);
    assert_eq!(clean_only(false, 0.4999), 0.0);
}

#[test]
fn generalist_runs_in_all_three_modes() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "run",
        "generalist/synthetic/baseline",
        "generalist/synthetic/fixrat",
        "generalist/synthetic/adarat",
        "--epochs",
        "1",
    ];
    args.extend(TINY);
    let out = adarat(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for mode in ["baseline", "fixrat", "adarat"] {
        let folder = dir.path().join(format!(
            "output/generalist_synthetic_{mode}_small-cnn_seed1"
        ));
        let result = result_json(&folder);
        assert_eq!(result["status"], "completed", "{mode}");
        assert_eq!(result["epochs_done"], 1, "{mode}");
        let epoch = &result["epochs_log"][0];
        for field in ["train_loss", "train_clean_loss", "train_adv_loss"] {
            let value = epoch[field].as_f64().unwrap();
            assert!(value.is_finite() && value > 0.0, "{mode} {field}: {value}");
        }
        for field in ["test_clean_acc", "test_fgsm_acc", "test_pgd_acc"] {
            assert!(epoch[field].is_number(), "{mode} {field}");
        }
        for field in ["test_st_clean_acc", "test_st_pgd_acc"] {
            assert!(
                epoch[field].is_number(),
                "{mode} {field}: the ST teacher is tested too"
            );
        }
        let log = std::fs::read_to_string(folder.join("train.log")).unwrap();
        assert!(
            log.starts_with("Epoch\tNatural\tPGD20\tema_Natural\tema_PGD20\tTime\t\n1.000000\t"),
            "{mode}: {log}"
        );
        assert!(log.contains("\n1000001.000000\t"), "{mode}: {log}");
        for attack in ["fgsm", "pgd10"] {
            assert!(result["final"][attack].is_number(), "{mode} {attack}");
        }
        match mode {
            "baseline" => {
                assert!(epoch["ratio_mean"].is_null());
                assert!(epoch["clean_branch_share"].is_null());
            }
            "fixrat" => assert_eq!(epoch["ratio_mean"], 1.0),
            _ => {
                let share = epoch["clean_branch_share"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&share));
                assert!(epoch["ratio_mean"].is_number() || share == 1.0);
            }
        }
    }
    // One epoch has no communication, so the saved global model is not the AT learner. The learner is
    // the resume point's weights, which a completed run removes: the same run killed after its epoch
    // (runs repeat exactly on one thread) still has them.
    let mut killed = vec!["run", "generalist/synthetic/baseline", "--epochs", "1"];
    killed.extend(TINY);
    killed.extend(["--output", "killed"]);
    let out = adarat_command(dir.path(), &killed)
        .env("ADARAT_FAULT_KILL_AFTER_EPOCH", "1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let name = "generalist_synthetic_baseline_small-cnn_seed1";
    let read = |path: std::path::PathBuf| Tensor::read_safetensors(path).unwrap();
    let model = read(
        dir.path()
            .join("output")
            .join(name)
            .join("model.safetensors"),
    );
    let point = dir.path().join("killed").join(name);
    let at_learner = read(point.join("resume-e0001.safetensors"));
    let weight = |tensors: &[(String, Tensor)]| {
        tensors
            .iter()
            .find(|(n, _)| n == "classifier.fc3.weight")
            .map(|(_, t)| t.copy())
            .unwrap()
    };
    assert!(!weight(&model).equal(&weight(&at_learner)));
    assert!(point.join("resume-method-e0001.safetensors").exists());
}
