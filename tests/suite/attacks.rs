//! Attacks on a real network: budget and range, input-only gradients, the network's mode and state
//! left as they were, and PGD stronger than FGSM.
use crate::common;

use adarat::attacks::{fgsm, Apgd, Cw, FabTargeted, Pgd, RandomStart, Square};
use adarat::config::Augment;
use adarat::data::Splits;
use adarat::losses::cross_entropy;
use adarat::models::{ModelSpec, Network};
use adarat::optim::sgd::Sgd;
use adarat::vocab::ModelKind;
use tch::{Device, Kind, Tensor};

const EPS: f64 = 8.0 / 255.0;

fn synthetic(train: usize, test: usize) -> Splits {
    common::synthetic_splits(train, test)
}

/// Plain training, checked to have learned, so that attacks have a loss to raise.
fn trained() -> (Network, Splits) {
    common::trained_small_cnn()
}

fn linf(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn assert_in_budget(adversarial: &Tensor, x: &Tensor, eps: f64, what: &str) {
    assert!(
        linf(adversarial, x) <= eps + 1e-6,
        "{what}: ‖x' − x‖∞ = {}",
        linf(adversarial, x)
    );
    assert!(
        adversarial.min().double_value(&[]) >= 0.0 && adversarial.max().double_value(&[]) <= 1.0,
        "{what}: out of [0, 1]"
    );
    assert!(linf(adversarial, x) > 0.0, "{what}: did not move");
}

#[test]
fn every_attack_stays_in_the_budget_and_the_image_range() {
    let _torch = common::torch_lock();
    let (net, data) = trained();
    let batch = data.test.batches(128, false, Augment::None).next().unwrap();
    let (x, y) = (&batch.images, &batch.labels);
    for train_mode in [false, true] {
        let logits = |z: &Tensor| net.forward_t(z, train_mode);
        assert_in_budget(&fgsm(&logits, x, y, EPS), x, EPS, "fgsm");
        for start in [
            RandomStart::Uniform,
            RandomStart::UniformUnclipped,
            RandomStart::None,
        ] {
            let pgd = Pgd {
                epsilon: EPS,
                step_size: 2.0 / 255.0,
                steps: 5,
                start,
            };
            let adversarial = pgd.run(&logits, x, &|z| cross_entropy(z, y));
            assert_in_budget(
                &adversarial,
                x,
                EPS,
                &format!("pgd {start:?} train={train_mode}"),
            );
        }
    }
    // The final table's attacks, on the network in eval mode.
    let logits = |z: &Tensor| net.forward_t(z, false);
    let apgd = Apgd::new(EPS, 10);
    let cw = Cw {
        epsilon: EPS,
        step_size: 2.0 / 255.0,
        steps: 5,
        margin: 50.0,
    };
    let square = Square {
        queries: 50,
        ..Square::new(EPS, false)
    };
    for (name, adversarial) in [
        ("cw", cw.run(&logits, x, y)),
        ("apgd-ce", apgd.run_ce(&logits, x, y)),
        ("apgd-t", apgd.run_targeted(&logits, x, y, 9)),
        ("fab-t", FabTargeted::new(EPS, 10).run(&logits, x, y)),
        ("square", square.run(&logits, x, y)),
    ] {
        assert_in_budget(&adversarial, x, EPS, name);
    }
    // A budget at the edge of the image range still clips.
    let big = fgsm(&|z: &Tensor| net.forward_t(z, false), x, y, 0.5);
    assert_in_budget(&big, x, 0.5, "fgsm ε=0.5");
}

#[test]
fn attacks_differentiate_the_input_only() {
    let _torch = common::torch_lock();
    let (net, data) = trained();
    let batch = data.test.batches(64, false, Augment::None).next().unwrap();
    let mut sgd = Sgd::new(net.parameters(), 0.9, 0.0);
    sgd.zero_grad();
    let pgd = Pgd {
        epsilon: EPS,
        step_size: 2.0 / 255.0,
        steps: 3,
        start: RandomStart::Uniform,
    };
    let _ = pgd.run(&|z| net.forward_t(z, false), &batch.images, &|z| {
        cross_entropy(z, &batch.labels)
    });
    let _ = fgsm(
        &|z| net.forward_t(z, false),
        &batch.images,
        &batch.labels,
        EPS,
    );
    for (name, p) in net.parameters() {
        let g = p.grad();
        assert!(
            !g.defined() || g.abs().sum(Kind::Float).double_value(&[]) == 0.0,
            "{name} received a gradient"
        );
    }
}

#[test]
fn the_final_table_leaves_the_network_and_its_batch_norm_state_as_they_were() {
    let _torch = common::torch_lock();
    use adarat::config::AutoAttackPreset;
    use adarat::train::attack_table::AttackTable;
    use adarat::vocab::FinalAttack;
    let data = synthetic(64, 8);
    tch::manual_seed(0);
    // A network with BatchNorm, on small images to stay quick.
    let spec = ModelSpec::new(ModelKind::ResNet18, 3, 32, 32, data.classes);
    let net = Network::new(&spec, Device::Cpu).unwrap();
    for batch in data.train.batches(32, true, Augment::None) {
        let _ = tch::no_grad(|| net.forward_t(&batch.images, true));
    }
    let before: Vec<(String, Tensor)> = net
        .state_dict()
        .into_iter()
        .map(|(name, t)| (name, t.copy()))
        .collect();
    // A large budget: AutoAttack breaks every point early and Square has nothing left to query.
    let table = AttackTable {
        attacks: vec![
            FinalAttack::Fgsm,
            FinalAttack::Pgd10,
            FinalAttack::Cw,
            FinalAttack::AutoAttack,
        ],
        epsilon: 64.0 / 255.0,
        step_size: 2.0 / 255.0,
        cw_steps: 2,
        cw_margin: 50.0,
        autoattack: AutoAttackPreset::Torchattacks351,
        seed: 1,
        batch_size: 8,
        augment: Augment::None,
        images: None,
    };
    let result = table
        .run(&net, &data.test, Default::default(), &mut |_| {
            Ok::<(), adarat::train::attack_table::Interrupted>(())
        })
        .unwrap()
        .table;
    assert_eq!(result.images, Some(8));
    assert!(result
        .accuracy(adarat::vocab::FinalAttack::AutoAttack)
        .is_some());
    for (name, tensor) in net.state_dict() {
        let original = &before.iter().find(|(n, _)| *n == name).unwrap().1;
        assert!(
            tensor.equal(original),
            "{name} changed during the evaluation"
        );
    }
    for (name, p) in net.parameters() {
        let g = p.grad();
        assert!(
            !g.defined() || g.abs().sum(Kind::Float).double_value(&[]) == 0.0,
            "{name} received a gradient"
        );
    }
}

#[test]
fn pgd_reaches_a_higher_loss_than_fgsm_on_a_trained_model() {
    let _torch = common::torch_lock();
    let (net, data) = trained();
    let logits = |z: &Tensor| net.forward_t(z, false);
    let (mut clean, mut fgsm_loss, mut pgd_loss) = (0.0, 0.0, 0.0);
    for batch in data.test.batches(128, false, Augment::None) {
        let (x, y) = (&batch.images, &batch.labels);
        let pgd = Pgd {
            epsilon: EPS,
            step_size: 2.0 / 255.0,
            steps: 10,
            start: RandomStart::Uniform,
        };
        let loss =
            |images: &Tensor| tch::no_grad(|| cross_entropy(&logits(images), y).double_value(&[]));
        clean += loss(x);
        fgsm_loss += loss(&fgsm(&logits, x, y, EPS));
        pgd_loss += loss(&pgd.run(&logits, x, &|z| cross_entropy(z, y)));
    }
    assert!(
        fgsm_loss > clean,
        "FGSM loss {fgsm_loss} not above clean {clean}"
    );
    assert!(
        pgd_loss > fgsm_loss,
        "PGD loss {pgd_loss} not above FGSM {fgsm_loss}"
    );
}

/// Counts the network's forward passes, and asks the attack to stop once `limit` have run.
struct Budget {
    calls: std::rc::Rc<std::cell::Cell<usize>>,
    _watch: adarat::attacks::interrupt::Watch,
}

impl Budget {
    fn stopping_after(limit: usize) -> Budget {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let seen = calls.clone();
        Budget {
            calls,
            _watch: adarat::attacks::interrupt::watch(move || seen.get() >= limit),
        }
    }

    fn calls(&self) -> usize {
        self.calls.get()
    }
}

#[test]
fn a_stop_request_ends_each_long_attack_within_a_few_forward_passes() {
    let _torch = common::torch_lock();
    let (net, data) = trained();
    let batch = data.test.batches(16, false, Augment::None).next().unwrap();
    let (x, y) = (&batch.images, &batch.labels);
    // Uninterrupted, APGD-CE makes one forward pass per iteration, 100 of them.
    let forwards = std::cell::Cell::new(0);
    let counting = |z: &Tensor| {
        forwards.set(forwards.get() + 1);
        net.forward_t(z, false)
    };
    let _ = Apgd::new(EPS, 100).run_ce(&counting, x, y);
    assert!(forwards.get() >= 100, "{}", forwards.get());

    type Attack<'a> = Box<dyn Fn(adarat::attacks::Logits) -> Tensor + 'a>;
    let attacks: Vec<(&str, Attack)> = vec![
        ("apgd-ce", Box::new(|l| Apgd::new(EPS, 100).run_ce(l, x, y))),
        (
            "apgd-t",
            Box::new(|l| Apgd::new(EPS, 100).run_targeted(l, x, y, 9)),
        ),
        (
            "fab-t",
            Box::new(|l| FabTargeted::new(EPS, 100).run(l, x, y)),
        ),
        ("square", Box::new(|l| Square::new(EPS, false).run(l, x, y))),
    ];
    for (name, attack) in attacks {
        let budget = Budget::stopping_after(5);
        let counting = |z: &Tensor| {
            budget.calls.set(budget.calls() + 1);
            net.forward_t(z, false)
        };
        let _ = attack(&counting);
        // Square asks between chunks of 16 queries; the others every iteration.
        assert!(
            budget.calls() <= 5 + 20,
            "{name}: {} forward passes",
            budget.calls()
        );
    }
}

#[test]
fn a_stop_during_autoattack_drops_the_batch_it_was_on() {
    let _torch = common::torch_lock();
    // (A stop between batches, and the resumed table, are tested through the binary in
    // worker::a_stopped_final_evaluation_goes_on_from_its_last_batch_and_gives_the_same_table.)
    use adarat::config::AutoAttackPreset;
    use adarat::train::attack_table::{AttackTable, Interrupted, Progress};
    use adarat::vocab::FinalAttack;
    let (net, data) = trained();
    let table = AttackTable {
        attacks: vec![FinalAttack::Pgd10, FinalAttack::AutoAttack],
        epsilon: EPS,
        step_size: 2.0 / 255.0,
        cw_steps: 2,
        cw_margin: 50.0,
        autoattack: AutoAttackPreset::Standard,
        seed: 1,
        batch_size: 8,
        augment: Augment::None,
        images: Some(16),
    };
    // The stop comes once AutoAttack has started on the first batch, after its PGD-10.
    let asked = std::rc::Rc::new(std::cell::Cell::new(false));
    let stop = asked.clone();
    let _watch = adarat::attacks::interrupt::watch(move || stop.get());
    let mut batches_done = 0;
    let outcome = table.run(&net, &data.test, Default::default(), &mut |progress| {
        match progress {
            Progress::Attack { attack, batch, .. }
                if batch == 1 && attack == "autoattack/apgd-ce" =>
            {
                asked.set(true)
            }
            Progress::Batch { .. } => batches_done += 1,
            Progress::Attack { .. } => {}
        }
        Ok::<(), Interrupted>(())
    });
    assert_eq!(outcome.unwrap_err(), Interrupted { batch: 1 });
    assert_eq!(batches_done, 0, "the batch is dropped, its PGD-10 with it");
}
