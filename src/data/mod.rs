//! Datasets in their official formats, held on the training device as u8 (docs/protocol.md#data-loading-and-augmentation).
//!
//! [`load`] finds (or downloads) the files of a dataset, parses them on the host into one buffer per split and
//! moves each split to the device once. [`Dataset::batches`] then cuts batches, shuffles and augments them on
//! the device, so a training epoch never goes back to the host for data.
mod cifar;
mod download;
mod error;
mod host;
mod idx;
mod loader;
mod synthetic;

pub use download::md5_hex;
pub use error::DataError;
pub use loader::{augment_batch, Batch, Batches};
pub use synthetic::{SYNTHETIC_CLASSES, SYNTHETIC_SHAPE};

use crate::config::job::{Augment, SyntheticSize};
use crate::vocab::DatasetKind;
use host::HostSplit;
use std::path::Path;
use tch::{Device, Tensor};

/// One split on the device: `images` u8 `[N, C, H, W]`, `labels` i64 `[N]`.
#[derive(Debug)]
pub struct Dataset {
    pub images: Tensor,
    pub labels: Tensor,
}

/// The training and test splits of a dataset, with its number of classes and image shape `[C, H, W]`.
#[derive(Debug)]
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    pub classes: i64,
    pub shape: [i64; 3],
}

/// What to load and where to put it.
#[derive(Clone, Copy, Debug)]
pub struct DataRequest<'a> {
    pub kind: DatasetKind,
    /// The folder holding the official files (`cifar-10-batches-bin/`, `mnist/`, ...).
    pub data_dir: &'a Path,
    pub device: Device,
    /// Keep only the first N training / test images.
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    /// Sizes of the generated `synthetic` dataset.
    pub synthetic: SyntheticSize,
    /// Whether a missing official dataset may be fetched from its official address.
    pub download: bool,
    /// Where downloads come from instead of the official addresses (`paths.mirror`): a base URL
    /// holding the official file names, and optionally an `MD5SUMS` for them (docs/slurm.md#data).
    pub mirror: Option<&'a str>,
    /// Whether a download shows a progress bar on stderr.
    pub progress: bool,
}

/// Whether `kind`'s official files are all in `data_dir` (or, for MNIST, where a system package puts
/// them), so a job can load it without downloading: what `adarat submit` checks before compute
/// nodes, which usually have no internet, need it.
pub fn is_present(kind: DatasetKind, data_dir: &Path) -> bool {
    match kind {
        DatasetKind::Cifar10 => cifar::CIFAR10
            .missing_files(&data_dir.join(cifar::CIFAR10.folder))
            .is_empty(),
        DatasetKind::Cifar100 => cifar::CIFAR100
            .missing_files(&data_dir.join(cifar::CIFAR100.folder))
            .is_empty(),
        DatasetKind::Mnist => idx::MNIST.find_folder(data_dir).is_some(),
        DatasetKind::FashionMnist => idx::FASHION_MNIST.find_folder(data_dir).is_some(),
        DatasetKind::Synthetic => true,
    }
}

/// Reads (or generates) both splits of `req.kind` and places them on `req.device`.
pub fn load(req: &DataRequest) -> Result<Splits, DataError> {
    let (train, test, classes) = match req.kind {
        DatasetKind::Cifar10 => load_cifar(&cifar::CIFAR10, req)?,
        DatasetKind::Cifar100 => load_cifar(&cifar::CIFAR100, req)?,
        DatasetKind::Mnist => load_idx(&idx::MNIST, req)?,
        DatasetKind::FashionMnist => load_idx(&idx::FASHION_MNIST, req)?,
        DatasetKind::Synthetic => {
            let size = req.synthetic;
            let train_count = req.limit_train.map_or(size.train, |n| n.min(size.train));
            let test_count = req.limit_test.map_or(size.test, |n| n.min(size.test));
            let (train, test) = synthetic::generate_splits(train_count, test_count);
            (train, test, SYNTHETIC_CLASSES)
        }
    };
    let shape = train.shape;
    Ok(Splits {
        train: train.into_dataset(req.device)?,
        test: test.into_dataset(req.device)?,
        classes,
        shape,
    })
}

fn load_cifar(
    layout: &cifar::CifarLayout,
    req: &DataRequest,
) -> Result<(HostSplit, HostSplit, i64), DataError> {
    let folder = req.data_dir.join(layout.folder);
    if !layout.missing_files(&folder).is_empty() {
        download::fetch_cifar(layout, req)?;
    }
    let train = cifar::read_split(layout, &folder, layout.train_files, req.limit_train)?;
    let test = cifar::read_split(layout, &folder, &[layout.test_file], req.limit_test)?;
    Ok((train, test, layout.classes))
}

fn load_idx(
    set: &idx::IdxSet,
    req: &DataRequest,
) -> Result<(HostSplit, HostSplit, i64), DataError> {
    let folder = match set.find_folder(req.data_dir) {
        Some(folder) => folder,
        None => download::fetch_idx(set, req)?,
    };
    let train = idx::read_split(&folder, &set.train, set.classes, req.limit_train)?;
    let test = idx::read_split(&folder, &set.test, set.classes, req.limit_test)?;
    if train.shape != test.shape {
        return Err(DataError::Malformed {
            path: folder,
            problem: format!(
                "training images are {:?} (C,H,W) but test images are {:?}",
                train.shape, test.shape
            ),
        });
    }
    Ok((train, test, set.classes))
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.size().first().map_or(0, |&n| n as usize)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `count` images (all of them when None or beyond the end), sharing storage.
    pub fn first(&self, count: Option<usize>) -> Dataset {
        let count = count.map_or(self.len(), |n| n.min(self.len()));
        Dataset {
            images: self.images.narrow(0, 0, count as i64),
            labels: self.labels.narrow(0, 0, count as i64),
        }
    }

    /// Batches in order or shuffled (torch's global RNG, `randperm` on the device), the last one partial,
    /// each augmented on the device and converted to f32 in [0,1] (pixel/255).
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn batches(&self, batch_size: usize, shuffle: bool, augment: Augment) -> Batches {
        Batches::new(self, batch_size, shuffle, augment)
    }
}
