//! The training batches' statistics: each step writes one row on the device, and the ledger reads the
//! pending rows back in one transfer per flush, not one host sync per batch (a CUDA graph's step must
//! not read anything back).
use super::error::Failure;
use crate::store::events::{BatchSample, Event};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

const FLUSH_BATCHES: usize = 16;
const FLUSH_INTERVAL: Duration = Duration::from_millis(1000);

/// The columns of a step's statistics row, in order. A statistic that does not apply to the step
/// (no ratio in baseline, no teacher outside KD-AT and IAD) is NaN in the row and None once read.
#[derive(Clone, Copy)]
enum Column {
    Loss,
    StandardLoss,
    AdversarialLoss,
    CleanCorrect,
    AdversarialCorrect,
    Ratio,
    CleanOnly,
    TeacherCorrect,
}

const COLUMNS: usize = Column::TeacherCorrect as usize + 1;

/// A step's statistics as scalar tensors on the device, before they are read.
pub(super) struct StepTensors<'a> {
    /// The weighted loss that was minimised.
    pub loss: &'a Tensor,
    pub standard_loss: &'a Tensor,
    pub adversarial_loss: &'a Tensor,
    pub clean_correct: Tensor,
    pub adversarial_correct: Tensor,
    pub ratio: Option<&'a Tensor>,
    /// 1 when AdaRAT took the clean-only branch.
    pub clean_only: Option<&'a Tensor>,
    pub teacher_correct: Option<&'a Tensor>,
}

impl StepTensors<'_> {
    /// The row, on the device; `none` is a NaN scalar there, made once per epoch.
    pub(super) fn row(&self, none: &Tensor) -> Tensor {
        let scalar = |t: &Tensor| t.detach().to_kind(Kind::Float).view([]);
        let or_none = |t: Option<&Tensor>| t.map_or_else(|| none.shallow_clone(), scalar);
        let mut row: Vec<Tensor> = (0..COLUMNS).map(|_| none.shallow_clone()).collect();
        row[Column::Loss as usize] = scalar(self.loss);
        row[Column::StandardLoss as usize] = scalar(self.standard_loss);
        row[Column::AdversarialLoss as usize] = scalar(self.adversarial_loss);
        row[Column::CleanCorrect as usize] = scalar(&self.clean_correct);
        row[Column::AdversarialCorrect as usize] = scalar(&self.adversarial_correct);
        row[Column::Ratio as usize] = or_none(self.ratio);
        row[Column::CleanOnly as usize] = or_none(self.clean_only);
        row[Column::TeacherCorrect as usize] = or_none(self.teacher_correct);
        Tensor::stack(&row, 0)
    }
}

/// A step's statistics, read back.
struct StepStats {
    loss: f64,
    standard_loss: f64,
    adversarial_loss: f64,
    clean_correct: f64,
    adversarial_correct: f64,
    ratio: Option<f64>,
    clean_only: Option<bool>,
    teacher_correct: Option<f64>,
}

impl StepStats {
    fn read(row: &[f64]) -> StepStats {
        let value = |column: Column| row[column as usize];
        let optional = |column: Column| Some(value(column)).filter(|v| !v.is_nan());
        let clean_only = optional(Column::CleanOnly).map(|v| v > 0.5);
        StepStats {
            loss: value(Column::Loss),
            standard_loss: value(Column::StandardLoss),
            adversarial_loss: value(Column::AdversarialLoss),
            clean_correct: value(Column::CleanCorrect),
            adversarial_correct: value(Column::AdversarialCorrect),
            // On AdaRAT's clean-only branch the ratio is not a slope worth averaging.
            ratio: optional(Column::Ratio).filter(|_| clean_only != Some(true)),
            clean_only,
            teacher_correct: optional(Column::TeacherCorrect),
        }
    }
}

/// Sums over an epoch's batches, for its record.
#[derive(Default)]
pub(super) struct EpochTotals {
    pub batches: usize,
    pub images: usize,
    loss: f64,
    standard_loss: f64,
    adversarial_loss: f64,
    clean_correct: f64,
    adversarial_correct: f64,
    ratio_sum: f64,
    ratio_batches: usize,
    clean_only_batches: usize,
    /// Correct robust-teacher predictions on the adversarial examples; None without a teacher.
    teacher_correct: Option<f64>,
}

impl EpochTotals {
    fn add(&mut self, images: usize, stats: &StepStats) {
        self.batches += 1;
        self.images += images;
        self.loss += stats.loss;
        self.standard_loss += stats.standard_loss;
        self.adversarial_loss += stats.adversarial_loss;
        self.clean_correct += stats.clean_correct;
        self.adversarial_correct += stats.adversarial_correct;
        if let Some(ratio) = stats.ratio {
            self.ratio_sum += ratio;
            self.ratio_batches += 1;
        }
        if stats.clean_only == Some(true) {
            self.clean_only_batches += 1;
        }
        if let Some(correct) = stats.teacher_correct {
            *self.teacher_correct.get_or_insert(0.0) += correct;
        }
    }

    fn per_batch(&self, sum: f64) -> f64 {
        sum / self.batches.max(1) as f64
    }

    fn percent_of_images(&self, count: f64) -> f64 {
        100.0 * count / self.images.max(1) as f64
    }

    pub(super) fn mean_loss(&self) -> f64 {
        self.per_batch(self.loss)
    }

    pub(super) fn mean_standard_loss(&self) -> f64 {
        self.per_batch(self.standard_loss)
    }

    pub(super) fn mean_adversarial_loss(&self) -> f64 {
        self.per_batch(self.adversarial_loss)
    }

    pub(super) fn clean_accuracy(&self) -> f64 {
        self.percent_of_images(self.clean_correct)
    }

    pub(super) fn adversarial_accuracy(&self) -> f64 {
        self.percent_of_images(self.adversarial_correct)
    }

    /// The mean ratio over the batches that had one.
    pub(super) fn mean_ratio(&self) -> Option<f64> {
        (self.ratio_batches > 0).then(|| self.ratio_sum / self.ratio_batches as f64)
    }

    /// The share of batches on AdaRAT's clean-only branch.
    pub(super) fn clean_only_share(&self) -> f64 {
        self.per_batch(self.clean_only_batches as f64)
    }

    pub(super) fn teacher_accuracy(&self) -> Option<f64> {
        self.teacher_correct.map(|c| self.percent_of_images(c))
    }
}

/// Statistics rows waiting on the device, and the epoch's totals of those already read.
pub(super) struct BatchLedger {
    /// (images in the batch, its row).
    pending: Vec<(usize, Tensor)>,
    last_flush: Instant,
    pub totals: EpochTotals,
}

impl BatchLedger {
    pub(super) fn new() -> BatchLedger {
        BatchLedger {
            pending: Vec::new(),
            last_flush: Instant::now(),
            totals: EpochTotals::default(),
        }
    }

    pub(super) fn push(&mut self, images: usize, row: Tensor) {
        self.pending.push((images, row));
    }

    pub(super) fn due(&self) -> bool {
        self.pending.len() >= FLUSH_BATCHES || self.last_flush.elapsed() >= FLUSH_INTERVAL
    }

    /// Reads the pending rows in one transfer and turns them into the `Batches` event.
    pub(super) fn flush(&mut self, epoch: usize) -> Result<Option<Event>, Failure> {
        let seconds = self.last_flush.elapsed().as_secs_f64();
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(None);
        }
        let images = self.pending.iter().map(|(size, _)| size).sum();
        let rows: Vec<Tensor> = self
            .pending
            .iter()
            .map(|(_, row)| row.shallow_clone())
            .collect();
        let values: Vec<f64> =
            Vec::try_from(Tensor::stack(&rows, 0).to_kind(Kind::Double).view(-1))
                .map_err(Failure::Statistics)?;
        let mut samples = Vec::with_capacity(rows.len());
        for ((size, _), row) in self.pending.drain(..).zip(values.chunks(COLUMNS)) {
            let stats = StepStats::read(row);
            let batch = self.totals.batches + 1;
            if !stats.loss.is_finite() {
                return Err(Failure::NonFiniteLoss {
                    loss: stats.loss,
                    epoch,
                    batch,
                });
            }
            self.totals.add(size, &stats);
            samples.push(BatchSample {
                epoch,
                batch,
                loss: stats.loss,
                clean_loss: stats.standard_loss,
                adv_loss: stats.adversarial_loss,
                clean_acc: 100.0 * stats.clean_correct / size as f64,
                adv_acc: 100.0 * stats.adversarial_correct / size as f64,
                ratio: stats.ratio,
                clean_only: stats.clean_only,
            });
        }
        Ok(Some(Event::Batches {
            samples,
            images,
            seconds,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn scalar(value: f64) -> Tensor {
        Tensor::from(value as f32)
    }

    #[test]
    fn rows_are_read_back_by_name_and_summed() {
        let none = Tensor::full([], f64::NAN, (Kind::Float, Device::Cpu));
        let (loss, standard, adversarial) = (scalar(1.5), scalar(1.0), scalar(2.0));
        let (ratio, clean_only, teacher) = (scalar(0.25), scalar(0.0), scalar(3.0));
        let mut ledger = BatchLedger::new();
        let with_everything = StepTensors {
            loss: &loss,
            standard_loss: &standard,
            adversarial_loss: &adversarial,
            clean_correct: scalar(4.0),
            adversarial_correct: scalar(2.0),
            ratio: Some(&ratio),
            clean_only: Some(&clean_only),
            teacher_correct: Some(&teacher),
        };
        ledger.push(8, with_everything.row(&none));
        let baseline = StepTensors {
            ratio: None,
            clean_only: None,
            teacher_correct: None,
            clean_correct: scalar(8.0),
            adversarial_correct: scalar(0.0),
            ..with_everything
        };
        ledger.push(8, baseline.row(&none));
        let Some(Event::Batches {
            samples, images, ..
        }) = ledger.flush(1).unwrap()
        else {
            panic!("expected a Batches event");
        };
        assert_eq!(images, 16);
        assert_eq!(samples[0].ratio, Some(0.25));
        assert_eq!(samples[0].clean_only, Some(false));
        assert_eq!(samples[0].clean_acc, 50.0);
        assert_eq!(samples[1].ratio, None);
        assert_eq!(samples[1].clean_only, None);
        assert_eq!(samples[1].batch, 2);
        let totals = &ledger.totals;
        assert_eq!(totals.mean_loss(), 1.5);
        assert_eq!(totals.clean_accuracy(), 75.0);
        assert_eq!(totals.adversarial_accuracy(), 12.5);
        assert_eq!(totals.mean_ratio(), Some(0.25));
        assert_eq!(totals.clean_only_share(), 0.0);
        assert_eq!(totals.teacher_accuracy(), Some(100.0 * 3.0 / 16.0));
    }

    #[test]
    fn a_non_finite_loss_fails_with_its_epoch_and_batch() {
        let none = Tensor::full([], f64::NAN, (Kind::Float, Device::Cpu));
        let (loss, finite) = (scalar(f64::INFINITY), scalar(1.0));
        let mut ledger = BatchLedger::new();
        let step = |loss| StepTensors {
            loss,
            standard_loss: &finite,
            adversarial_loss: &finite,
            clean_correct: scalar(1.0),
            adversarial_correct: scalar(1.0),
            ratio: None,
            clean_only: None,
            teacher_correct: None,
        };
        ledger.push(4, step(&finite).row(&none));
        ledger.push(4, step(&loss).row(&none));
        let error = ledger.flush(3).unwrap_err().to_string();
        assert_eq!(error, "non-finite loss (inf) at epoch 3, batch 2");
    }
}
