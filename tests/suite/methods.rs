//! ST, FAT, DAT and TRADES: their training attacks on hand-made networks whose behaviour the tests
//! control, TRADES' loss, and one epoch of every method and mode through the real binary.
use crate::common;

use adarat::attacks::{pgd_kl, EarlyStoppedPgd, FoscPgd, Pgd, RandomStart};
use adarat::config::{Augment, RatioConfig};
use adarat::losses::cross_entropy;
use adarat::methods::trades::{kl_term, loss_terms};
use adarat::models::Network;
use adarat::ratio::{barrier_value, Ratio};
use adarat::vocab::Mode;
use common::adarat;
use serde_json::Value;
use std::cell::RefCell;
use tch::{Device, Kind, Reduction, Tensor};

const EPS: f64 = 8.0 / 255.0;
const ALPHA: f64 = 2.0 / 255.0;

/// A differentiable stand-in for a network that records every input it is called with.
struct Recorder<F: Fn(usize, &Tensor) -> Tensor> {
    logits: F,
    inputs: RefCell<Vec<Tensor>>,
}

impl<F: Fn(usize, &Tensor) -> Tensor> Recorder<F> {
    fn new(logits: F) -> Self {
        Recorder {
            logits,
            inputs: RefCell::new(Vec::new()),
        }
    }

    /// The logits of the `k`-th call, `k` counted from 0.
    fn forward(&self, x: &Tensor) -> Tensor {
        let call = self.inputs.borrow().len();
        self.inputs.borrow_mut().push(x.detach().copy());
        (self.logits)(call, x)
    }

    fn take_inputs(&self) -> Vec<Tensor> {
        self.inputs.take()
    }
}

/// Sum of each image's pixels, `[B]`.
fn pixel_sums(x: &Tensor) -> Tensor {
    x.flatten(1, -1).sum_dim_intlist(1, false, Kind::Float)
}

fn same(a: &Tensor, b: &Tensor) -> bool {
    a.equal(b)
}

#[test]
fn fat_returns_the_first_iterate_with_tau_plus_one_misclassifications() {
    let _torch = common::torch_lock();
    const TAU: usize = 2;
    const STEPS: usize = 6;
    // Per sample, which of the iterates x_0..x_5 the network misclassifies, and the iterate FAT
    // returns: the first one at which τ+1 = 3 misclassifications have accumulated, else x_K.
    let wrong: [[bool; STEPS]; 6] = [
        [true, false, true, false, true, false], // 3rd at x_4, not consecutive
        [false, true, true, true, true, true],   // x_3; later ones are ignored
        [true, false, false, false, false, true], // only 2: x_K
        [true, true, true, true, true, true],    // x_2
        [false, false, false, true, true, true], // x_5, the last tested iterate
        [false, false, true, true, false, false], // only 2: x_K
    ];
    let expected: [Option<usize>; 6] = [Some(4), Some(3), None, Some(2), Some(5), None];
    let batch = wrong.len() as i64;
    // Two classes, label 0. The scheduled margin (±1) decides the prediction; a small term linear in
    // the pixels gives a gradient, so every iterate moves.
    let schedule = move |call: usize, x: &Tensor| {
        let margins: Vec<f32> = wrong
            .iter()
            .map(|w| if w[call] { -1.0 } else { 1.0 })
            .collect();
        let margin = Tensor::from_slice(&margins) + pixel_sums(x) * 1e-3;
        Tensor::stack(&[margin.shallow_clone(), margin.zeros_like()], 1)
    };
    let x = Tensor::full([batch, 3, 4, 4], 0.5, (Kind::Float, Device::Cpu));
    let labels = Tensor::zeros([batch], (Kind::Int64, Device::Cpu));
    let attack = EarlyStoppedPgd {
        epsilon: 0.3,
        step_size: 0.01,
        steps: STEPS,
    };

    let net = Recorder::new(schedule);
    tch::manual_seed(7);
    let returned = attack.run(&|x| net.forward(x), &x, &labels, TAU);
    let iterates = net.take_inputs();
    assert_eq!(
        iterates.len(),
        STEPS,
        "one forward per step; x_K is not tested"
    );
    // The same run with a budget no sample reaches returns x_K for every sample.
    tch::manual_seed(7);
    let last = attack.run(&|x| net.forward(x), &x, &labels, 100);
    assert!(same(&net.take_inputs()[0], &iterates[0]), "same start");

    for (i, stop) in expected.iter().enumerate() {
        let i = i as i64;
        let want = match stop {
            Some(s) => iterates[*s].get(i),
            None => last.get(i),
        };
        assert!(
            same(&returned.get(i), &want),
            "sample {i}: expected {stop:?}"
        );
        // No other iterate is the returned one: the iterates are distinct.
        for (k, iterate) in iterates.iter().enumerate() {
            if Some(k) != *stop {
                assert!(
                    !same(&returned.get(i), &iterate.get(i)),
                    "sample {i}, x_{k}"
                );
            }
        }
        // Returned samples keep stepping.
        if let Some(s) = stop {
            for k in s + 1..STEPS {
                assert!(!same(&iterates[k].get(i), &iterates[k - 1].get(i)));
            }
        }
    }
}

/// FOSC per sample, computed here with a CE-sum gradient: `ε‖g‖₁ − ⟨x_k − x, g⟩`.
fn fosc_by_hand(
    logits: &dyn Fn(&Tensor) -> Tensor,
    xk: &Tensor,
    x: &Tensor,
    labels: &Tensor,
) -> Vec<f64> {
    let current = xk.detach().set_requires_grad(true);
    let loss =
        logits(&current).cross_entropy_loss::<Tensor>(labels, None, Reduction::Sum, -100, 0.0);
    let g = Tensor::run_backward(&[loss], &[&current], false, false).remove(0);
    let value = pixel_sums(&g.abs()) * EPS - pixel_sums(&((xk - x) * &g));
    Vec::<f64>::try_from(value.to_kind(Kind::Double)).unwrap()
}

#[test]
fn dat_freezes_exactly_the_samples_whose_fosc_falls_to_the_threshold() {
    let _torch = common::torch_lock();
    const STEPS: usize = 5;
    const THRESHOLD: f64 = 0.3; // c(0) with the reference's values
                                // Logit margin a_i·(Σ pixels − n/2) against class 1: the gradient points the same way at every
                                // pixel and its size grows with a_i, so the FOSC falls as the pixels reach the ε corner, slowly
                                // for a large a_i and at once for a tiny one.
    let scales = Tensor::from_slice(&[1e-3f32, 0.5, 1.0, 2.0, 100.0, 1000.0]);
    let batch = scales.size()[0];
    let x = Tensor::full([batch, 3, 4, 4], 0.5, (Kind::Float, Device::Cpu));
    let half = (x.numel() / batch as usize) as f64 / 2.0;
    let linear = |x: &Tensor| {
        let margin = (pixel_sums(x) - half) * &scales;
        Tensor::stack(&[margin.shallow_clone(), margin.zeros_like()], 1)
    };
    let labels = Tensor::ones([batch], (Kind::Int64, Device::Cpu));
    let attack = FoscPgd {
        epsilon: EPS,
        step_size: ALPHA,
        steps: STEPS,
    };
    let net = Recorder::new(|_, x: &Tensor| linear(x));
    tch::manual_seed(3);
    let returned = attack.run(&|x| net.forward(x), &x, &labels, THRESHOLD);
    let iterates = net.take_inputs();
    assert_eq!(iterates.len(), STEPS + 1, "K+1 gradient evaluations");
    assert!(same(&returned, &iterates[STEPS]));

    // The first iterate x_k (k ≥ 1) at which each sample's FOSC is at most the threshold.
    let mut frozen_at: Vec<Option<usize>> = vec![None; batch as usize];
    for (k, iterate) in iterates.iter().enumerate().skip(1) {
        for (i, fosc) in fosc_by_hand(&linear, iterate, &x, &labels)
            .iter()
            .enumerate()
        {
            if *fosc <= THRESHOLD && frozen_at[i].is_none() {
                frozen_at[i] = Some(k);
            }
        }
    }
    for (i, frozen) in frozen_at.iter().enumerate() {
        let n = i as i64;
        for k in 1..=STEPS {
            let moved = !same(&iterates[k].get(n), &iterates[k - 1].get(n));
            let should_move = frozen.is_none_or(|f| k <= f);
            assert_eq!(
                moved, should_move,
                "sample {i} at step {k}, frozen at {frozen:?}"
            );
        }
    }
    // The case covers every behaviour: frozen after the first step, frozen later, never frozen.
    assert!(frozen_at.contains(&Some(1)), "{frozen_at:?}");
    assert!(
        frozen_at.iter().any(|f| matches!(f, Some(k) if *k > 1)),
        "{frozen_at:?}"
    );
    assert!(frozen_at.contains(&None), "{frozen_at:?}");
}

/// small-cnn after a little plain training, checked to have learned, so that its predictions
/// depend on its input, and a batch of test images.
fn trained_small_cnn() -> (Network, Tensor) {
    let (net, data) = common::trained_small_cnn();
    let batch = data.test.batches(16, false, Augment::None).next().unwrap();
    (net, batch.images)
}

#[test]
fn pgd_kl_raises_the_kl_to_the_clean_prediction_within_the_budget() {
    let _torch = common::torch_lock();
    let (net, x) = trained_small_cnn();
    let eval = |x: &Tensor| net.forward_t(x, false);
    let kl_from_clean = |adversarial: &Tensor| {
        tch::no_grad(|| kl_term(&eval(&x), &eval(adversarial)).double_value(&[]))
    };
    let pgd = |steps| Pgd {
        epsilon: EPS,
        step_size: ALPHA,
        steps,
        start: RandomStart::Uniform,
    };
    tch::manual_seed(11);
    let start = pgd_kl(&pgd(0), &eval, &x);
    tch::manual_seed(11);
    let adversarial = pgd_kl(&pgd(10), &eval, &x);
    let (before, after) = (kl_from_clean(&start), kl_from_clean(&adversarial));
    assert!(
        after > 3.0 * before,
        "KL {before} at the start, {after} after"
    );
    assert!((&adversarial - &x).abs().max().double_value(&[]) <= EPS + 1e-6);
    assert!(
        adversarial.min().double_value(&[]) >= 0.0 && adversarial.max().double_value(&[]) <= 1.0
    );
    assert!(!adversarial.requires_grad());
    // The training left zeroed parameter gradients; the attack added nothing to them.
    for (name, p) in net.parameters() {
        let grad = p.grad();
        assert!(
            !grad.defined() || grad.abs().max().double_value(&[]) == 0.0,
            "{name}"
        );
    }
}

fn host(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(t.to_kind(Kind::Double).view(-1)).unwrap()
}

#[test]
fn trades_kl_matches_the_formula_and_its_gradient_reaches_the_clean_logits() {
    let _torch = common::torch_lock();
    // One sample has a clean probability far below 1e-8, which the target clamp lifts.
    let clean = Tensor::from_slice(&[2.0f32, -1.0, 0.5, 0.0, -40.0, 1.0])
        .view([2, 3])
        .set_requires_grad(true);
    let adversarial = Tensor::from_slice(&[0.5f32, 0.5, 0.2, 1.0, 0.0, -1.0])
        .view([2, 3])
        .set_requires_grad(true);
    let kl = kl_term(&clean, &adversarial);

    let p = host(&clean.softmax(-1, Kind::Float));
    let log_q = host(&adversarial.log_softmax(-1, Kind::Float));
    let by_hand: f64 = p
        .iter()
        .zip(&log_q)
        .map(|(p, lq)| p.max(1e-8) * (p.max(1e-8).ln() - lq))
        .sum::<f64>()
        / 2.0;
    assert!(
        (kl.double_value(&[]) - by_hand).abs() < 1e-6,
        "{kl} vs {by_hand}"
    );

    // d KL / d z_clean = p ⊙ (t − Σ p t) / B with t = log p − log q + 1, where the target is not
    // clamped (p ≥ 1e-8); exactly the part a detached target would lose.
    let grads = Tensor::run_backward(&[&kl], &[&clean, &adversarial], false, false);
    let clean_grad = host(&grads[0]);
    for row in 0..2 {
        let r = row * 3..row * 3 + 3;
        let t: Vec<f64> = r
            .clone()
            .map(|j| p[j].max(1e-8).ln() - log_q[j] + 1.0)
            .collect();
        let active: Vec<bool> = r.clone().map(|j| p[j] >= 1e-8).collect();
        let mean: f64 = r
            .clone()
            .zip(&t)
            .zip(&active)
            .filter(|(_, a)| **a)
            .map(|((j, t), _)| p[j] * t)
            .sum();
        for (n, j) in r.enumerate() {
            let expected = if active[n] {
                p[j] * (t[n] - mean) / 2.0
            } else {
                0.0
            };
            assert!(
                (clean_grad[j] - expected).abs() < 1e-5,
                "∂KL/∂z_clean[{j}]: {} vs {expected}",
                clean_grad[j]
            );
        }
    }
    assert!(clean_grad.iter().any(|g| g.abs() > 1e-3));
}

/// TRADES on CIFAR-10 (docs/protocol.md#default-beta-u-d-and-tau): β 0.03, u 1.5, d 0.7.
const TRADES_RATIO: RatioConfig = RatioConfig {
    beta: 0.03,
    up: 1.5,
    down: 0.7,
    tau: 0.01,
    switch: 0.7,
};

fn trades_ratio(mode: Mode) -> Ratio {
    Ratio::new(mode, Some(TRADES_RATIO), EPS).unwrap()
}

#[test]
fn trades_losses_in_each_mode() {
    let _torch = common::torch_lock();
    const LAMBDA: f64 = 6.0;
    let labels = Tensor::from_slice(&[0i64, 2]);
    let adversarial = Tensor::from_slice(&[0.5f32, 1.0, 0.2, 1.0, 0.0, -1.0]).view([2, 3]);
    let value = |t: &Tensor| t.double_value(&[]);
    // Confident clean logits: CE ≈ 0.33 < 0.7u = 1.05, AdaRAT's barrier branch.
    let confident = Tensor::from_slice(&[2.0f32, 0.5, 0.0, 0.0, 0.5, 2.0]).view([2, 3]);
    let ce = |z: &Tensor| value(&cross_entropy(z, &labels));
    let kl = value(&kl_term(&confident, &adversarial)) * LAMBDA;
    let (ls, la) = (ce(&confident), ce(&adversarial));
    assert!(ls < 1.05 && kl > 0.1);
    let terms = || loss_terms(&confident, &adversarial, &labels, LAMBDA);
    let k = 0.03 / EPS;
    for (mode, expected) in [
        (Mode::Baseline, ls + kl),
        (Mode::FixRat, ls + kl + k * (la - ls)),
        (
            Mode::AdaRat,
            barrier_value(ls, &TRADES_RATIO) + kl + k * (la - ls),
        ),
    ] {
        let loss = value(&trades_ratio(mode).combine(terms()).loss);
        assert!(
            (loss - expected).abs() < 1e-5,
            "{mode}: {loss} vs {expected}"
        );
    }
    let t = terms();
    assert!(
        (value(&t.adversarial) - la).abs() < 1e-6,
        "L_a is CE(f(x'), y)"
    );

    // Uniform clean logits: CE = ln 3 ≥ 1.05, AdaRAT's clean-only branch drops the KL too.
    let uncertain = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu)).set_requires_grad(true);
    let adversarial = adversarial.set_requires_grad(true);
    let terms = loss_terms(&uncertain, &adversarial, &labels, LAMBDA);
    assert!(value(terms.extra.as_ref().unwrap()) > 0.1);
    let weighted = trades_ratio(Mode::AdaRat).combine(terms);
    assert!((value(&weighted.loss) - 3f64.ln()).abs() < 1e-6);
    assert_eq!(value(weighted.clean_only.as_ref().unwrap()), 1.0);
    let grads = Tensor::run_backward(&[&weighted.loss], &[&adversarial], false, false);
    assert_eq!(
        grads[0].abs().max().double_value(&[]),
        0.0,
        "no gradient through the KL"
    );
}

/// One epoch of `method` in each of `modes` on a tiny synthetic set, in one `adarat run`; returns
/// each mode's result.json and train.log.
fn one_epoch_each(method: &str, modes: &[&str]) -> Vec<(String, Value, String)> {
    let dir = tempfile::tempdir().unwrap();
    let jobs: Vec<String> = modes
        .iter()
        .map(|m| format!("{method}/synthetic/{m}"))
        .collect();
    let mut args = vec!["run"];
    args.extend(jobs.iter().map(String::as_str));
    args.extend([
        "--epochs",
        "1",
        "--offline",
        "--device",
        "cpu",
        "--limit-test",
        "32",
        "--set",
        "datasets.synthetic.train_size=160",
        "--set",
        "datasets.synthetic.test_size=64",
        "--set",
        "evaluation.final_attacks=[fgsm]",
    ]);
    let out = adarat(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    modes
        .iter()
        .map(|mode| {
            let folder = dir
                .path()
                .join(format!("output/{method}_synthetic_{mode}_small-cnn_seed1"));
            let result = std::fs::read_to_string(folder.join("result.json")).unwrap();
            let log = std::fs::read_to_string(folder.join("train.log")).unwrap();
            (
                mode.to_string(),
                serde_json::from_str(&result).unwrap(),
                log,
            )
        })
        .collect()
}

/// The fields of the train.log row of epoch 1, after its `[time] - ` prefix.
fn first_epoch_row(log: &str) -> Vec<&str> {
    let line = log.lines().find(|l| l.contains("] - 001 ")).unwrap();
    line.split_once("] - ")
        .unwrap()
        .1
        .split_whitespace()
        .collect()
}

/// Checks a completed one-epoch run of an adversarial method, its ratio fields and its train.log.
fn check_adversarial_run(label: &str, mode: &str, result: &Value, log: &str) {
    assert_eq!(result["status"], "completed", "{label} {mode}");
    assert_eq!(result["epochs_done"], 1);
    let epoch = &result["epochs_log"][0];
    for field in [
        "train_loss",
        "train_clean_loss",
        "train_adv_loss",
        "train_clean_acc",
        "train_adv_acc",
        "test_pgd_acc",
    ] {
        assert!(
            epoch[field].as_f64().is_some_and(f64::is_finite),
            "{label} {mode}: {field}"
        );
    }
    match mode {
        "baseline" => {
            assert!(epoch["ratio_mean"].is_null() && epoch["clean_branch_share"].is_null());
        }
        "fixrat" => assert_eq!(epoch["ratio_mean"].as_f64(), Some(1.0)),
        _ => assert!(!epoch["ratio_mean"].is_null() || !epoch["clean_branch_share"].is_null()),
    }
    assert!(
        result["final"]["fgsm"].is_number(),
        "{label} {mode}: final FGSM"
    );
    let name = match mode {
        "baseline" => label.to_string(),
        "fixrat" => format!("{label}_FixRAT"),
        _ => format!("{label}_FixRAT_AdaRAT"),
    };
    assert!(log.contains(&format!("training method: {name}\n")), "{log}");
    assert!(log.contains("final robust result:"));
    let fields = first_epoch_row(log);
    assert_eq!(
        fields.len(),
        13,
        "{label} {mode}: the AE fields are in the row"
    );
    // The train_AE_loss column is L_a = CE(f(x'), y), whatever the method's loss.
    let ae_loss = epoch["train_adv_loss"].as_f64().unwrap();
    assert_eq!(fields[3], format!("{ae_loss:07.4}"));
}

#[test]
fn st_trains_one_epoch_with_its_own_log_row_and_no_final_evaluation() {
    let runs = one_epoch_each("st", &["baseline"]);
    let (_, result, log) = &runs[0];
    assert_eq!(result["status"], "completed");
    let epoch = &result["epochs_log"][0];
    assert!(epoch["train_loss"].as_f64().is_some_and(f64::is_finite));
    assert!(epoch["ratio_mean"].is_null() && epoch["clean_branch_share"].is_null());
    // Without an attack the adversarial statistics are the clean ones.
    assert_eq!(epoch["train_adv_acc"], epoch["train_clean_acc"]);
    assert_eq!(epoch["train_adv_loss"], epoch["train_clean_loss"]);
    assert!(
        result["final"].is_null(),
        "ST has no final evaluation (docs/protocol.md Q29)"
    );
    assert!(log.contains("training method: ST\n"));
    assert!(log.contains(
        "epoch   learning_rate   train_time   train_clean_loss   train_clean_acc   test_clean_loss"
    ));
    let row = first_epoch_row(log);
    assert_eq!(row.len(), 11);
    let clean_loss = epoch["train_clean_loss"].as_f64().unwrap();
    assert_eq!(row[3], format!("{clean_loss:07.4}"));
    assert!(!log.contains("final robust result:"));
}

#[test]
fn fat_trains_one_epoch_in_each_mode() {
    for (mode, result, log) in one_epoch_each("fat", &["baseline", "fixrat", "adarat"]) {
        check_adversarial_run("FAT", &mode, &result, &log);
    }
}

#[test]
fn dat_trains_one_epoch_in_each_mode() {
    for (mode, result, log) in one_epoch_each("dat", &["baseline", "fixrat", "adarat"]) {
        check_adversarial_run("DAT", &mode, &result, &log);
    }
}

#[test]
fn trades_trains_one_epoch_in_each_mode() {
    for (mode, result, log) in one_epoch_each("trades", &["baseline", "fixrat", "adarat"]) {
        check_adversarial_run("TRADES", &mode, &result, &log);
        let epoch = &result["epochs_log"][0];
        if mode == "baseline" {
            // CE(f(x), y) + λ·KL, the KL being non-negative.
            let (loss, clean) = (
                epoch["train_loss"].as_f64().unwrap(),
                epoch["train_clean_loss"].as_f64().unwrap(),
            );
            assert!(loss >= clean - 1e-6, "{loss} < {clean}");
        }
    }
}
