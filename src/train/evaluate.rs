//! The per-epoch test in eval mode: clean, FGSM and PGD-K (docs/protocol.md#the-per-epoch-test). Counts
//! accumulate on the device and are read once per pass.
use crate::attacks::{fgsm, Pgd, RandomStart};
use crate::config::{Augment, JobConfig};
use crate::data::Dataset;
use crate::losses::{correct, cross_entropy};
use crate::models::Network;
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

/// The test set's augmentation: none, or the reference's CIFAR-10 random crop (docs/protocol.md Q3).
pub(crate) fn test_augment(cfg: &JobConfig) -> Augment {
    if cfg.test_random_crop {
        Augment::Crop { pad: 4 }
    } else {
        Augment::None
    }
}

/// A stop request ended the per-epoch test between two batches.
#[derive(Clone, Copy, Debug)]
pub struct Stopped;

/// The per-epoch test of `net`; `stopped` is asked between batches, so a stop lands within one test
/// batch rather than after the whole test set.
pub fn test_epoch(
    net: &Network,
    test: &Dataset,
    cfg: &JobConfig,
    stopped: &dyn Fn() -> bool,
) -> Result<TestMetrics, Stopped> {
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
        if stopped() {
            return Err(Stopped);
        }
        let y = &batch.labels;
        let fgsm_images = fgsm(&eval, &batch.images, y, cfg.attack.epsilon);
        let pgd_images = pgd.run(&eval, &batch.images, &|logits| cross_entropy(logits, y));
        let row = crate::thread_modes::no_grad(|| {
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
    Ok(TestMetrics {
        clean_loss: loss(0),
        clean_acc: acc(1),
        fgsm_loss: loss(2),
        fgsm_acc: acc(3),
        pgd_loss: loss(4),
        pgd_acc: acc(5),
    })
}
