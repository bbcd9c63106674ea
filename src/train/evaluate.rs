//! Evaluation in eval mode: the per-epoch test (clean, FGSM, PGD-K; reference-behaviour.md 7) and
//! the final attack table (section 8). Counts accumulate on the device and are read once per pass.
use crate::attacks::{cross_entropy, fgsm, Pgd, RandomStart};
use crate::config::{Augment, JobConfig};
use crate::data::Dataset;
use crate::methods::correct;
use crate::models::Network;
use crate::store::result::FinalTable;
use tch::{Kind, Tensor};

/// Test-set metrics of one epoch: losses are unweighted means over batches, accuracies percentages
/// over all images, as the reference computes them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TestMetrics {
    pub clean_loss: f64,
    pub clean_acc: f64,
    pub fgsm_loss: f64,
    pub fgsm_acc: f64,
    pub pgd_loss: f64,
    pub pgd_acc: f64,
}

/// The test set's augmentation: none, or the reference's CIFAR-10 random crop (quirk Q3).
fn test_augment(cfg: &JobConfig) -> Augment {
    if cfg.test_random_crop {
        Augment::Crop { pad: 4 }
    } else {
        Augment::None
    }
}

pub fn test_epoch(net: &Network, test: &Dataset, cfg: &JobConfig) -> TestMetrics {
    let eval = |x: &Tensor| net.forward_t(x, false);
    let pgd = Pgd {
        epsilon: cfg.attack.epsilon,
        step_size: cfg.attack.step_size,
        steps: cfg.attack.steps,
        start: RandomStart::Uniform,
    };
    // [clean loss, clean correct, fgsm loss, fgsm correct, pgd loss, pgd correct], summed on the device.
    let mut sums = Tensor::zeros([6], (Kind::Float, test.labels.device()));
    let mut batches = 0usize;
    for batch in test.batches(cfg.evaluation.batch_size, false, test_augment(cfg)) {
        let y = &batch.labels;
        let fgsm_images = fgsm(&eval, &batch.images, y, cfg.attack.epsilon);
        let pgd_images = pgd.run(&eval, &batch.images, &|logits| cross_entropy(logits, y));
        let row = tch::no_grad(|| {
            let mut row = Vec::with_capacity(6);
            for images in [&batch.images, &fgsm_images, &pgd_images] {
                let logits = eval(images);
                row.push(cross_entropy(&logits, y).to_kind(Kind::Float));
                row.push(correct(&logits, y));
            }
            Tensor::stack(&row, 0)
        });
        sums += row;
        batches += 1;
    }
    let sums: Vec<f64> = Vec::try_from(sums.to_kind(Kind::Double)).unwrap_or_default();
    let images = test.len().max(1) as f64;
    let batches = batches.max(1) as f64;
    let loss = |i: usize| sums.get(i).copied().unwrap_or(f64::NAN) / batches;
    let acc = |i: usize| 100.0 * sums.get(i).copied().unwrap_or(f64::NAN) / images;
    TestMetrics {
        clean_loss: loss(0),
        clean_acc: acc(1),
        fgsm_loss: loss(2),
        fgsm_acc: acc(3),
        pgd_loss: loss(4),
        pgd_acc: acc(5),
    }
}

/// The final attacks this version runs (AutoAttack arrives with the attack-table work).
pub const FINAL_ATTACKS: [&str; 5] = ["fgsm", "pgd10", "pgd20", "pgd50", "cw"];

/// The CW∞ loss with margin κ (reference 4.6): `−mean(max(0, z_y − max_{j≠y} z_j + κ))`.
fn cw_loss(logits: &Tensor, labels: &Tensor, margin: f64) -> Tensor {
    let classes = logits.size()[1];
    let one_hot = labels.one_hot(classes).to_kind(logits.kind());
    let true_logit = (logits * &one_hot).sum_dim_intlist(-1, false, logits.kind());
    let others = logits * (-&one_hot + 1.0) - &one_hot * 1000.0;
    let other = others.amax([-1i64].as_slice(), false);
    -(true_logit - other + margin)
        .clamp_min(0.0)
        .mean(logits.kind())
}

/// Runs `cfg.evaluation.final_attacks` on the test set in eval mode; attacks not available are null.
pub fn final_table(net: &Network, test: &Dataset, cfg: &JobConfig) -> FinalTable {
    let eval = |x: &Tensor| net.forward_t(x, false);
    let eps = cfg.attack.epsilon;
    let pgd = |steps, start| Pgd {
        epsilon: eps,
        step_size: cfg.attack.step_size,
        steps,
        start,
    };
    let wanted = |name: &str| cfg.evaluation.final_attacks.iter().any(|a| a == name);
    let mut correct_counts = Tensor::zeros(
        [1 + FINAL_ATTACKS.len() as i64],
        (Kind::Float, test.labels.device()),
    );
    for batch in test.batches(cfg.evaluation.batch_size, false, test_augment(cfg)) {
        let (x, y) = (&batch.images, &batch.labels);
        let mut row = vec![tch::no_grad(|| correct(&eval(x), y))];
        for name in FINAL_ATTACKS {
            if !wanted(name) {
                row.push(Tensor::zeros([], (Kind::Float, x.device())));
                continue;
            }
            let adversarial = match name {
                "fgsm" => fgsm(&eval, x, y, eps),
                "pgd10" => pgd(10, RandomStart::Uniform).run(&eval, x, &|z| cross_entropy(z, y)),
                "pgd20" => pgd(20, RandomStart::Uniform).run(&eval, x, &|z| cross_entropy(z, y)),
                "pgd50" => pgd(50, RandomStart::Uniform).run(&eval, x, &|z| cross_entropy(z, y)),
                _ => pgd(cfg.evaluation.cw_steps, RandomStart::UniformUnclipped).run(
                    &eval,
                    x,
                    &|z| cw_loss(z, y, cfg.evaluation.cw_margin),
                ),
            };
            row.push(tch::no_grad(|| correct(&eval(&adversarial), y)));
        }
        correct_counts += Tensor::stack(&row, 0);
    }
    let counts: Vec<f64> = Vec::try_from(correct_counts.to_kind(Kind::Double)).unwrap_or_default();
    let acc = |i: usize| counts.get(i).map(|c| 100.0 * c / test.len().max(1) as f64);
    let attack = |i: usize| {
        if wanted(FINAL_ATTACKS[i - 1]) {
            acc(i)
        } else {
            None
        }
    };
    FinalTable {
        clean: acc(0),
        fgsm: attack(1),
        pgd10: attack(2),
        pgd20: attack(3),
        pgd50: attack(4),
        cw: attack(5),
        autoattack: None,
        autoattack_preset: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cw_loss_by_hand() {
        // Sample 0: true logit 3, best other 1 → −max(0, 3 − 1 + 50) = −52.
        // Sample 1: true logit 0, best other 100 → −max(0, 0 − 100 + 50) = 0.
        let logits = Tensor::from_slice(&[3.0f64, 1.0, -2.0, 0.0, 100.0, 5.0]).view([2, 3]);
        let labels = Tensor::from_slice(&[0i64, 0]);
        let loss = cw_loss(&logits, &labels, 50.0);
        assert!((loss.double_value(&[]) - (-52.0 / 2.0)).abs() < 1e-12);
    }
}
