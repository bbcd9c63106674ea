//! Batches cut, shuffled and augmented on the device: no per-sample loop and no trip to the host.
use super::Dataset;
use crate::config::job::Augment;
use tch::{Kind, Tensor};

/// One batch: images f32 `[B, C, H, W]` in [0,1], labels i64 `[B]`.
#[derive(Debug)]
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

/// The batches of one pass over a [`Dataset`]; see [`Dataset::batches`].
#[derive(Debug)]
pub struct Batches {
    images: Tensor,
    labels: Tensor,
    /// A permutation of the indices on the device when shuffling; in order otherwise.
    order: Option<Tensor>,
    batch_size: i64,
    next_start: i64,
    count: i64,
    augment: Augment,
}

impl Batches {
    pub(crate) fn new(
        dataset: &Dataset,
        batch_size: usize,
        shuffle: bool,
        augment: Augment,
    ) -> Self {
        assert!(batch_size > 0, "the batch size must be positive");
        let count = dataset.len() as i64;
        let device = dataset.images.device();
        Batches {
            images: dataset.images.shallow_clone(),
            labels: dataset.labels.shallow_clone(),
            order: shuffle.then(|| Tensor::randperm(count, (Kind::Int64, device))),
            batch_size: batch_size as i64,
            next_start: 0,
            count,
            augment,
        }
    }
}

impl Iterator for Batches {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        if self.next_start >= self.count {
            return None;
        }
        let start = self.next_start;
        let size = self.batch_size.min(self.count - start);
        self.next_start += size;
        let (images, labels) = match &self.order {
            Some(order) => {
                let picked = order.narrow(0, start, size);
                (
                    self.images.index_select(0, &picked),
                    self.labels.index_select(0, &picked),
                )
            }
            None => (
                self.images.narrow(0, start, size),
                self.labels.narrow(0, start, size),
            ),
        };
        Some(Batch {
            images: augment_batch(&images, self.augment),
            labels,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.count - self.next_start).max(0);
        let batches = ((left + self.batch_size - 1) / self.batch_size) as usize;
        (batches, Some(batches))
    }
}

impl ExactSizeIterator for Batches {}

/// Augments u8 images `[B, C, H, W]` on their device and converts them to f32 in [0,1] (pixel/255).
///
/// `Crop{pad}` / `CropFlip{pad}` match torchvision's `RandomCrop(H, padding=pad)` (zero fill), followed for
/// `CropFlip` by `RandomHorizontalFlip(0.5)`, drawing offsets and flips from torch's RNG on the device.
pub fn augment_batch(images: &Tensor, augment: Augment) -> Tensor {
    let moved = match augment {
        Augment::None => images.shallow_clone(),
        Augment::Crop { pad } => random_crop(images, pad, false),
        Augment::CropFlip { pad } => random_crop(images, pad, true),
    };
    moved.to_kind(Kind::Float) / 255.0
}

/// Zero-pads by `pad`, then takes for each sample an H×W window at an offset drawn uniformly in
/// [0, 2·pad]², mirrored left-right for a random half of the samples when `flip`; all in one gather.
fn random_crop(images: &Tensor, pad: i64, flip: bool) -> Tensor {
    let size = images.size();
    let [batch, channels, height, width] = [size[0], size[1], size[2], size[3]];
    let options = (Kind::Int64, images.device());
    // A negative padding would crop the border away; there is nothing sensible to do but not pad.
    let pad = pad.max(0);
    let padded = images.constant_pad_nd([pad, pad, pad, pad]);

    let top = Tensor::randint(2 * pad + 1, [batch, 1], options);
    let left = Tensor::randint(2 * pad + 1, [batch, 1], options);
    let rows = top + Tensor::arange(height, options).view([1, height]);
    let columns = Tensor::arange(width, options).view([1, width]);
    let columns = if flip {
        // A mirrored sample reads column W-1-j of its window: j + m·(W-1-2j) with m ∈ {0, 1}.
        let mirrored = Tensor::randint(2, [batch, 1], options);
        &columns + mirrored * (columns.neg() * 2 + (width - 1))
    } else {
        columns
    };
    let columns = left + columns;

    let samples = Tensor::arange(batch, options).view([batch, 1, 1, 1]);
    let planes = Tensor::arange(channels, options).view([1, channels, 1, 1]);
    padded.index(&[
        Some(samples),
        Some(planes),
        Some(rows.view([batch, 1, height, 1])),
        Some(columns.view([batch, 1, 1, width])),
    ])
}
