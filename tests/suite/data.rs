//! The data layer on small files written in the official formats: readers, refusals, the
//! missing-dataset message, device augmentation and the synthetic dataset; and downloads from a mirror
//! on 127.0.0.1 (of files of the official sizes, which compress to little): what they install, what
//! they refuse, and one download when two processes want the same dataset.
use crate::common;

use adarat::config::job::{Augment, SyntheticSize};
use adarat::data::{augment_batch, load, DataError, DataRequest, Dataset, Splits};
use adarat::vocab::DatasetKind;
use flate2::write::GzEncoder;
use flate2::Compression;
use md5::{Digest, Md5};
use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tch::{Device, Kind, Tensor};

const CIFAR_IMAGE: usize = 3 * 32 * 32;

fn request(kind: DatasetKind, data_dir: &Path) -> DataRequest<'_> {
    DataRequest {
        kind,
        data_dir,
        device: Device::Cpu,
        limit_train: None,
        limit_test: None,
        synthetic: SyntheticSize {
            train: 100,
            test: 50,
        },
        download: false,
        mirror: None,
        progress: false,
    }
}

fn bytes_of(tensor: &Tensor) -> Vec<u8> {
    Vec::<u8>::try_from(&tensor.flatten(0, -1)).unwrap()
}

fn floats_of(tensor: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&tensor.flatten(0, -1)).unwrap()
}

fn longs_of(tensor: &Tensor) -> Vec<i64> {
    Vec::<i64>::try_from(&tensor.flatten(0, -1)).unwrap()
}

/// A recognisable pixel: its record, channel, row and column can be told apart.
fn cifar_pixel(record: usize, channel: usize, row: usize, col: usize) -> u8 {
    ((record * 31 + channel * 71 + row * 7 + col) % 256) as u8
}

/// CIFAR records with the given label bytes, numbered from `first_record`.
fn cifar_records(first_record: usize, labels: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (offset, label_bytes) in labels.iter().enumerate() {
        bytes.extend_from_slice(label_bytes);
        for channel in 0..3 {
            for row in 0..32 {
                for col in 0..32 {
                    bytes.push(cifar_pixel(first_record + offset, channel, row, col));
                }
            }
        }
    }
    bytes
}

fn write_cifar10(data_dir: &Path) -> PathBuf {
    let folder = data_dir.join("cifar-10-batches-bin");
    fs::create_dir_all(&folder).unwrap();
    for batch in 1..=5 {
        let first = (batch - 1) * 2;
        let labels: [&[u8]; 2] = [&[(first % 10) as u8], &[((first + 1) % 10) as u8]];
        fs::write(
            folder.join(format!("data_batch_{batch}.bin")),
            cifar_records(first, &labels),
        )
        .unwrap();
    }
    fs::write(
        folder.join("test_batch.bin"),
        cifar_records(100, &[&[9], &[0], &[4]]),
    )
    .unwrap();
    folder
}

fn idx_images(count: u32, rows: u32, cols: u32, pixels: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in [0x0803, count, rows, cols] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend_from_slice(pixels);
    bytes
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for word in [0x0801, labels.len() as u32] {
        bytes.extend(word.to_be_bytes());
    }
    bytes.extend_from_slice(labels);
    bytes
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An MNIST folder of 3×4 images: training files plain, test files gzipped.
fn write_mnist(data_dir: &Path) -> PathBuf {
    let folder = data_dir.join("mnist");
    fs::create_dir_all(&folder).unwrap();
    let train_pixels: Vec<u8> = (0..5 * 12).map(|i| i as u8).collect();
    let test_pixels: Vec<u8> = (0..2 * 12).map(|i| 200 - i as u8).collect();
    fs::write(
        folder.join("train-images-idx3-ubyte"),
        idx_images(5, 3, 4, &train_pixels),
    )
    .unwrap();
    fs::write(
        folder.join("train-labels-idx1-ubyte"),
        idx_labels(&[3, 1, 4, 1, 5]),
    )
    .unwrap();
    fs::write(
        folder.join("t10k-images-idx3-ubyte.gz"),
        gzipped(&idx_images(2, 3, 4, &test_pixels)),
    )
    .unwrap();
    fs::write(
        folder.join("t10k-labels-idx1-ubyte.gz"),
        gzipped(&idx_labels(&[9, 2])),
    )
    .unwrap();
    folder
}

fn load_err(kind: DatasetKind, data_dir: &Path) -> DataError {
    load(&request(kind, data_dir)).unwrap_err()
}

/// The error is one line and names `file`.
fn assert_names(err: &DataError, file: &Path) {
    let message = err.to_string();
    assert!(!message.contains('\n'), "not one line: {message}");
    assert!(
        message.contains(&file.display().to_string()),
        "`{message}` does not name {}",
        file.display()
    );
}

#[test]
fn cifar10_comes_back_pixel_for_pixel_in_chw() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let splits = load(&request(DatasetKind::Cifar10, dir.path())).unwrap();
    assert_eq!((splits.classes, splits.shape), (10, [3, 32, 32]));
    assert_eq!(splits.train.images.size(), [10, 3, 32, 32]);
    assert_eq!(splits.train.images.kind(), Kind::Uint8);
    assert_eq!(splits.train.labels.kind(), Kind::Int64);
    assert_eq!(
        longs_of(&splits.train.labels),
        (0..10).collect::<Vec<i64>>()
    );
    assert_eq!(longs_of(&splits.test.labels), vec![9, 0, 4]);
    let train = bytes_of(&splits.train.images);
    for (record, image) in train.chunks_exact(CIFAR_IMAGE).enumerate() {
        for (channel, row, col) in [(0, 0, 0), (1, 5, 9), (2, 31, 30), (0, 17, 31)] {
            assert_eq!(
                image[channel * 1024 + row * 32 + col],
                cifar_pixel(record, channel, row, col)
            );
        }
    }
    let test = bytes_of(&splits.test.images);
    assert_eq!(test[2 * CIFAR_IMAGE + 1024 + 32], cifar_pixel(102, 1, 1, 0));
}

#[test]
fn limits_take_the_first_images() {
    let dir = tempfile::tempdir().unwrap();
    write_cifar10(dir.path());
    let mut req = request(DatasetKind::Cifar10, dir.path());
    req.limit_train = Some(3);
    req.limit_test = Some(1);
    let splits = load(&req).unwrap();
    assert_eq!(longs_of(&splits.train.labels), vec![0, 1, 2]);
    assert_eq!(splits.test.len(), 1);
    assert_eq!(
        bytes_of(&splits.train.images.get(2))[..3],
        [
            cifar_pixel(2, 0, 0, 0),
            cifar_pixel(2, 0, 0, 1),
            cifar_pixel(2, 0, 0, 2)
        ]
    );
}

#[test]
fn cifar100_uses_fine_labels() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("cifar-100-binary");
    fs::create_dir_all(&folder).unwrap();
    fs::write(
        folder.join("train.bin"),
        cifar_records(0, &[&[3, 99], &[19, 42]]),
    )
    .unwrap();
    fs::write(folder.join("test.bin"), cifar_records(7, &[&[0, 7]])).unwrap();
    let splits = load(&request(DatasetKind::Cifar100, dir.path())).unwrap();
    assert_eq!(splits.classes, 100);
    assert_eq!(longs_of(&splits.train.labels), vec![99, 42]);
    assert_eq!(longs_of(&splits.test.labels), vec![7]);
    assert_eq!(
        bytes_of(&splits.test.images)[2048 + 64 + 3],
        cifar_pixel(7, 2, 2, 3)
    );
}

#[test]
fn idx_reads_plain_and_gzipped_files() {
    let dir = tempfile::tempdir().unwrap();
    write_mnist(dir.path());
    let splits = load(&request(DatasetKind::Mnist, dir.path())).unwrap();
    assert_eq!((splits.classes, splits.shape), (10, [1, 3, 4]));
    assert_eq!(splits.train.images.size(), [5, 1, 3, 4]);
    assert_eq!(
        bytes_of(&splits.train.images),
        (0..60).map(|i| i as u8).collect::<Vec<_>>()
    );
    assert_eq!(longs_of(&splits.train.labels), vec![3, 1, 4, 1, 5]);
    assert_eq!(
        bytes_of(&splits.test.images),
        (0..24).map(|i| 200 - i as u8).collect::<Vec<_>>()
    );
    assert_eq!(longs_of(&splits.test.labels), vec![9, 2]);
}

#[test]
fn broken_idx_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_mnist(dir.path());
    let images = folder.join("train-images-idx3-ubyte");
    let labels = folder.join("train-labels-idx1-ubyte");
    let good_images = fs::read(&images).unwrap();
    let good_labels = fs::read(&labels).unwrap();

    let mut wrong_magic = good_images.clone();
    wrong_magic[3] = 0x01;
    fs::write(&images, &wrong_magic).unwrap();
    let err = load_err(DatasetKind::Mnist, dir.path());
    assert!(matches!(err, DataError::Malformed { .. }));
    assert_names(&err, &images);
    assert!(err.to_string().contains("magic"));

    fs::write(&images, &good_images[..good_images.len() - 5]).unwrap();
    let err = load_err(DatasetKind::Mnist, dir.path());
    assert_names(&err, &images);
    assert!(err.to_string().contains("truncated"));

    fs::write(&images, &good_images).unwrap();
    fs::write(&labels, idx_labels(&[1, 2, 3])).unwrap();
    let err = load_err(DatasetKind::Mnist, dir.path());
    assert_names(&err, &labels);
    assert!(err.to_string().contains("3 labels"));

    fs::write(&labels, idx_labels(&[1, 2, 10, 3, 4])).unwrap();
    let err = load_err(DatasetKind::Mnist, dir.path());
    assert_names(&err, &labels);
    assert!(err.to_string().contains("outside 0..10"));

    fs::write(&labels, &good_labels).unwrap();
    let gz_labels = folder.join("t10k-labels-idx1-ubyte.gz");
    let good_gz = fs::read(&gz_labels).unwrap();
    fs::write(&gz_labels, &good_gz[..good_gz.len() / 2]).unwrap();
    let err = load_err(DatasetKind::Mnist, dir.path());
    assert_names(&err, &gz_labels);
}

#[test]
fn broken_cifar_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let folder = write_cifar10(dir.path());
    let batch = folder.join("data_batch_3.bin");
    let good = fs::read(&batch).unwrap();

    fs::write(&batch, &good[..good.len() - 1]).unwrap();
    let err = load_err(DatasetKind::Cifar10, dir.path());
    assert!(matches!(err, DataError::Malformed { .. }));
    assert_names(&err, &batch);
    assert!(err.to_string().contains("truncated"));

    let mut bad_label = good.clone();
    bad_label[0] = 12;
    fs::write(&batch, &bad_label).unwrap();
    let err = load_err(DatasetKind::Cifar10, dir.path());
    assert_names(&err, &batch);
    assert!(err.to_string().contains("label 12"));
}

#[test]
fn a_missing_dataset_says_which_files_to_put_where() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_err(DatasetKind::Cifar10, dir.path());
    assert!(matches!(err, DataError::Missing { .. }));
    let message = err.to_string();
    assert!(!message.contains('\n'), "{message}");
    let folder = dir.path().join("cifar-10-batches-bin");
    assert!(message.contains(&folder.display().to_string()), "{message}");
    for file in ["data_batch_1.bin", "data_batch_5.bin", "test_batch.bin"] {
        assert!(message.contains(file), "{message}");
    }
    assert!(
        message.contains("https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"),
        "{message}"
    );

    let message = load_err(DatasetKind::Cifar100, dir.path()).to_string();
    assert!(message.contains("cifar-100-binary") && message.contains("train.bin"));

    let message = load_err(DatasetKind::Mnist, dir.path()).to_string();
    assert!(!message.contains('\n'), "{message}");
    assert!(message.contains(&dir.path().join("mnist").display().to_string()));
    for file in [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ] {
        assert!(message.contains(file), "{message}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Batches and augmentation.

/// Pixel `offset` of image `image`: never 0, distinct within an image.
fn numbered_pixel(image: i64, offset: i64) -> u8 {
    (1 + (image * 31 + offset) % 255) as u8
}

/// `count` images of `[1, 5, 6]` whose pixels are all non-zero and tell image, row and column apart.
fn numbered_dataset(count: i64) -> Dataset {
    let pixels: Vec<u8> = (0..count * 30)
        .map(|i| numbered_pixel(i / 30, i % 30))
        .collect();
    Dataset {
        images: Tensor::from_slice(&pixels).view([count, 1, 5, 6]),
        labels: Tensor::arange(count, (Kind::Int64, Device::Cpu)),
    }
}

/// Pixel (row, col) of a `[C, H, W]` image read from a window of the zero-padded image at `(top, left)`,
/// mirrored when `mirrored`.
fn window_pixel(
    image: &[u8],
    [height, width]: [usize; 2],
    pad: usize,
    (top, left, mirrored): (usize, usize, bool),
    (row, col): (usize, usize),
) -> u8 {
    let col = if mirrored { width - 1 - col } else { col };
    let (y, x) = (row + top, col + left);
    if y < pad || x < pad || y >= height + pad || x >= width + pad {
        0
    } else {
        image[(y - pad) * width + (x - pad)]
    }
}

/// The window `(top, left, mirrored)` that explains `output`, if any.
fn explaining_window(
    image: &[u8],
    output: &[u8],
    size: [usize; 2],
    pad: usize,
    mirrors: bool,
) -> Option<(usize, usize, bool)> {
    let [height, width] = size;
    let candidates = (0..=2 * pad)
        .flat_map(|top| (0..=2 * pad).map(move |left| (top, left)))
        .flat_map(|(top, left)| [(top, left, false), (top, left, true)])
        .filter(|&(_, _, mirrored)| mirrors || !mirrored);
    candidates.into_iter().find(|&window| {
        (0..height).all(|row| {
            (0..width).all(|col| {
                output[row * width + col] == window_pixel(image, size, pad, window, (row, col))
            })
        })
    })
}

fn augmented_bytes(images: &Tensor, augment: Augment) -> Vec<u8> {
    let floats = floats_of(&augment_batch(images, augment));
    floats
        .iter()
        .map(|value| {
            let scaled = value * 255.0;
            assert!((scaled - scaled.round()).abs() < 1e-3);
            scaled.round() as u8
        })
        .collect()
}

#[test]
fn without_padding_augmentation_is_only_scaling() {
    let _torch = common::torch_lock();
    let dataset = numbered_dataset(4);
    let expected = dataset.images.to_kind(Kind::Float) / 255.0;
    for augment in [Augment::None, Augment::Crop { pad: 0 }] {
        let out = augment_batch(&dataset.images, augment);
        assert_eq!(out.kind(), Kind::Float);
        assert_eq!(floats_of(&out), floats_of(&expected));
    }
}

#[test]
fn crops_are_shifted_windows_of_the_padded_image() {
    let _torch = common::torch_lock();
    tch::manual_seed(7);
    let dataset = numbered_dataset(64);
    let input = bytes_of(&dataset.images);
    let output = augmented_bytes(&dataset.images, Augment::Crop { pad: 2 });
    let mut tops = [0usize; 5];
    for (image, out) in input.chunks_exact(30).zip(output.chunks_exact(30)) {
        let (top, _, _) = explaining_window(image, out, [5, 6], 2, false)
            .expect("a crop must be an unmirrored window of the padded image");
        tops[top] += 1;
    }
    assert!(tops.iter().all(|&count| count > 0), "offsets {tops:?}");
}

#[test]
fn crop_flip_mirrors_about_half_of_the_samples() {
    let _torch = common::torch_lock();
    tch::manual_seed(11);
    let dataset = numbered_dataset(200);
    let input = bytes_of(&dataset.images);
    let output = augmented_bytes(&dataset.images, Augment::CropFlip { pad: 3 });
    assert_eq!(output.len(), input.len());
    let mut mirrored = 0;
    for (image, out) in input.chunks_exact(30).zip(output.chunks_exact(30)) {
        let (_, _, flipped) = explaining_window(image, out, [5, 6], 3, true)
            .expect("every output must be a (mirrored) window of the padded image");
        mirrored += usize::from(flipped);
    }
    assert!((60..=140).contains(&mirrored), "{mirrored} of 200 mirrored");

    // With no shift possible, a mirrored sample is exactly the image reversed left-right.
    let flipped_only = augmented_bytes(&dataset.images, Augment::CropFlip { pad: 0 });
    for (image, out) in input.chunks_exact(30).zip(flipped_only.chunks_exact(30)) {
        let reversed: Vec<u8> = image
            .chunks_exact(6)
            .flat_map(|row| row.iter().rev().copied())
            .collect();
        assert!(out == image || out == reversed.as_slice());
    }
}

#[test]
fn crops_keep_the_shape_of_colour_batches() {
    let _torch = common::torch_lock();
    let images = Tensor::ones([8, 3, 32, 32], (Kind::Uint8, Device::Cpu)) * 200;
    let out = augment_batch(&images, Augment::CropFlip { pad: 4 });
    assert_eq!(out.size(), [8, 3, 32, 32]);
    let max = out.max().double_value(&[]);
    assert!((max - 200.0 / 255.0).abs() < 1e-6);
}

#[test]
fn batches_cover_the_dataset_once_with_a_partial_last_batch() {
    let _torch = common::torch_lock();
    let dataset = numbered_dataset(10);
    assert_eq!((dataset.len(), dataset.is_empty()), (10, false));
    let batches = dataset.batches(4, false, Augment::None);
    assert_eq!(batches.len(), 3);
    let collected: Vec<_> = batches.collect();
    let sizes: Vec<i64> = collected.iter().map(|b| b.labels.size()[0]).collect();
    assert_eq!(sizes, [4, 4, 2]);
    let labels: Vec<i64> = collected.iter().flat_map(|b| longs_of(&b.labels)).collect();
    assert_eq!(labels, (0..10).collect::<Vec<_>>());
    assert_eq!(collected[2].images.size(), [2, 1, 5, 6]);
    assert_eq!(collected[2].images.kind(), Kind::Float);
}

#[test]
fn shuffled_batches_are_a_permutation_with_images_following_labels() {
    let _torch = common::torch_lock();
    tch::manual_seed(3);
    let dataset = numbered_dataset(23);
    let mut batches = dataset.batches(5, true, Augment::None);
    assert_eq!(batches.len(), 5);
    let mut seen = Vec::new();
    for batch in batches.by_ref() {
        let labels = longs_of(&batch.labels);
        let firsts = floats_of(&batch.images.select(3, 0).select(2, 0).select(1, 0));
        for (label, first) in labels.iter().zip(firsts) {
            assert_eq!((first * 255.0).round() as u8, numbered_pixel(*label, 0));
        }
        seen.extend(labels);
    }
    assert_eq!(batches.len(), 0);
    assert_ne!(seen, (0..23).collect::<Vec<_>>(), "not shuffled");
    seen.sort();
    assert_eq!(seen, (0..23).collect::<Vec<_>>());
}

#[test]
fn an_empty_dataset_has_no_batches() {
    let _torch = common::torch_lock();
    let dataset = numbered_dataset(0);
    assert!(dataset.is_empty());
    assert_eq!(
        dataset
            .batches(8, true, Augment::CropFlip { pad: 4 })
            .count(),
        0
    );
}

// ---------------------------------------------------------------------------------------------------
// The synthetic dataset.

fn synthetic(train: usize, test: usize) -> Splits {
    let mut req = request(DatasetKind::Synthetic, Path::new("/nonexistent"));
    req.synthetic = SyntheticSize { train, test };
    load(&req).unwrap()
}

/// Per-class mean images `[10, 3072]` of a split.
fn class_means(dataset: &Dataset) -> Vec<Vec<f64>> {
    let pixels = bytes_of(&dataset.images);
    let labels = longs_of(&dataset.labels);
    let mut sums = vec![vec![0.0; CIFAR_IMAGE]; 10];
    let mut counts = [0.0; 10];
    for (image, &label) in pixels.chunks_exact(CIFAR_IMAGE).zip(&labels) {
        counts[label as usize] += 1.0;
        for (sum, &pixel) in sums[label as usize].iter_mut().zip(image) {
            *sum += f64::from(pixel) / 255.0;
        }
    }
    for (sum, count) in sums.iter_mut().zip(counts) {
        sum.iter_mut().for_each(|value| *value /= count);
    }
    sums
}

#[test]
fn synthetic_is_deterministic_with_the_right_shapes() {
    let _torch = common::torch_lock();
    let first = synthetic(120, 40);
    let again = synthetic(120, 40);
    assert_eq!((first.classes, first.shape), (10, [3, 32, 32]));
    assert_eq!(first.train.images.size(), [120, 3, 32, 32]);
    assert_eq!(first.test.images.size(), [40, 3, 32, 32]);
    assert_eq!(bytes_of(&first.train.images), bytes_of(&again.train.images));
    assert_eq!(bytes_of(&first.test.images), bytes_of(&again.test.images));
    // The splits are drawn from streams of their own.
    assert_ne!(
        bytes_of(&first.train.images.narrow(0, 0, 40)),
        bytes_of(&first.test.images)
    );
    let labels = longs_of(&first.train.labels);
    for class in 0..10 {
        assert_eq!(labels.iter().filter(|&&l| l == class).count(), 12);
    }
}

#[test]
fn synthetic_limits_take_the_first_images() {
    let _torch = common::torch_lock();
    let full = synthetic(50, 20);
    let mut req = request(DatasetKind::Synthetic, Path::new("/nonexistent"));
    req.synthetic = SyntheticSize {
        train: 50,
        test: 20,
    };
    req.limit_train = Some(7);
    let limited = load(&req).unwrap();
    assert_eq!(limited.train.len(), 7);
    assert_eq!(
        bytes_of(&limited.train.images),
        bytes_of(&full.train.images.narrow(0, 0, 7))
    );
}

#[test]
fn synthetic_classes_are_learnable_and_an_epsilon_adversary_hurts() {
    let _torch = common::torch_lock();
    let splits = synthetic(2000, 1000);
    let means = class_means(&splits.train);
    let epsilon = 8.0 / 255.0;

    // Class means are far apart compared with ε.
    for a in 0..10 {
        for b in a + 1..10 {
            let distance = means[a]
                .iter()
                .zip(&means[b])
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f64::max);
            assert!(distance > 4.0 * epsilon, "classes {a} and {b}: {distance}");
        }
    }

    // Nearest class mean, clean and under the worst L∞ perturbation of size ε (exact for this linear rule,
    // ignoring the [0,1] box): x stays right while for every k, margin_k > 2ε‖μ_y − μ_k‖₁.
    let pixels = bytes_of(&splits.test.images);
    let labels = longs_of(&splits.test.labels);
    let (mut clean, mut robust) = (0usize, 0usize);
    for (image, &label) in pixels.chunks_exact(CIFAR_IMAGE).zip(&labels) {
        let image: Vec<f64> = image.iter().map(|&p| f64::from(p) / 255.0).collect();
        let distance =
            |mean: &Vec<f64>| -> f64 { image.iter().zip(mean).map(|(x, m)| (x - m).powi(2)).sum() };
        let own = &means[label as usize];
        let own_distance = distance(own);
        let margins: Vec<(f64, f64)> = (0..10)
            .filter(|&k| k != label as usize)
            .map(|k| {
                let l1: f64 = own.iter().zip(&means[k]).map(|(a, b)| (a - b).abs()).sum();
                (distance(&means[k]) - own_distance, 2.0 * epsilon * l1)
            })
            .collect();
        if margins.iter().all(|&(margin, _)| margin > 0.0) {
            clean += 1;
        }
        if margins.iter().all(|&(margin, attack)| margin > attack) {
            robust += 1;
        }
    }
    let (clean, robust) = (clean as f64 / 1000.0, robust as f64 / 1000.0);
    println!("nearest class mean: clean {clean:.3}, under ε = 8/255 {robust:.3}");
    assert!(clean > 0.9, "clean accuracy {clean}");
    // This is the best an ε-adversary can do against the ideal linear rule; against a network trained for a
    // few epochs it does much more, but even here a share of the images must be within reach.
    assert!(robust < clean - 0.05, "robust {robust} vs clean {clean}");
    assert!(robust > 0.5, "robust {robust}");
}

// ---------------------------------------------------------------------------------------------------
// The Debian package.

#[test]
fn fashion_mnist_from_the_debian_package() {
    if !common::system::installed(&[common::system::Need::FashionMnist]) {
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let splits = load(&request(DatasetKind::FashionMnist, empty.path())).unwrap();
    assert_eq!((splits.classes, splits.shape), (10, [1, 28, 28]));
    assert_eq!((splits.train.len(), splits.test.len()), (60_000, 10_000));
    let labels = longs_of(&splits.test.labels);
    assert!(labels.iter().all(|&label| (0..10).contains(&label)));
    assert_eq!(labels.iter().filter(|&&label| label == 9).count(), 1000);
}

// ---------------------------------------------------------------------------------------------------
// Downloading from a mirror, for real: a local HTTP server.

/// A mirror on 127.0.0.1 at a free port: serves the files put in it (404 for others), a thread per
/// request, and counts the requests for each path. While held it answers no data file (only
/// `MD5SUMS`) until released, or until a second request for the same file proves two transfers.
struct Mirror {
    port: u16,
    state: Arc<MirrorState>,
}

#[derive(Default)]
struct MirrorState {
    files: Mutex<HashMap<String, Vec<u8>>>,
    requests: Mutex<HashMap<String, usize>>,
    held: AtomicBool,
    closed: AtomicBool,
}

impl Mirror {
    fn serve() -> Mirror {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(MirrorState::default());
        let serving = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if serving.closed.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let serving = Arc::clone(&serving);
                    std::thread::spawn(move || serving.answer(stream));
                }
            }
        });
        Mirror { port, state }
    }

    /// Puts `bytes` at `<folder>/<name>`, as they are.
    fn put(&self, folder: &str, name: &str, bytes: &[u8]) {
        let mut files = self.state.files.lock().unwrap();
        files.insert(format!("/{folder}/{name}"), bytes.to_vec());
    }

    /// Puts `bytes` at `<folder>/<name>` and `sum` for them in `<folder>/MD5SUMS`.
    fn publish_with_sum(&self, folder: &str, name: &str, bytes: &[u8], sum: &str) {
        self.put(folder, name, bytes);
        let mut files = self.state.files.lock().unwrap();
        let sums = files.entry(format!("/{folder}/MD5SUMS")).or_default();
        sums.extend(format!("{sum}  {name}\n").as_bytes());
    }

    /// Puts `bytes` at `<folder>/<name>` and their MD5 in `<folder>/MD5SUMS`.
    fn publish(&self, folder: &str, name: &str, bytes: &[u8]) {
        self.publish_with_sum(folder, name, bytes, &format!("{:x}", Md5::digest(bytes)));
    }

    fn url(&self, folder: &str) -> String {
        format!("http://127.0.0.1:{}/{folder}", self.port)
    }

    fn requests(&self, folder: &str, name: &str) -> usize {
        self.state.requests(&format!("/{folder}/{name}"))
    }

    fn hold(&self) {
        self.state.held.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        self.state.held.store(false, Ordering::SeqCst);
    }
}

impl MirrorState {
    fn requests(&self, path: &str) -> usize {
        self.requests
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Reads one GET request and answers it, closing the connection.
    fn answer(&self, stream: TcpStream) {
        let mut reader = BufReader::new(&stream);
        let mut request_line = String::new();
        let _ = reader.read_line(&mut request_line);
        // The headers, up to the empty line ("\r\n").
        let mut header = String::new();
        while reader.read_line(&mut header).is_ok_and(|read| read > 2) {
            header.clear();
        }
        let path = request_line.split_whitespace().nth(1).unwrap_or("/");
        *self
            .requests
            .lock()
            .unwrap()
            .entry(path.to_string())
            .or_default() += 1;
        while self.held.load(Ordering::SeqCst)
            && !path.ends_with("/MD5SUMS")
            && self.requests(path) < 2
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let file = self.files.lock().unwrap().get(path).cloned();
        let (status, body) = match file {
            Some(body) => ("200 OK", body),
            None => ("404 Not Found", Vec::new()),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = (&stream)
            .write_all(head.as_bytes())
            .and_then(|()| (&stream).write_all(&body));
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
        self.release();
        // Wakes the thread waiting for a connection, which then sees that the mirror is closed.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A tar.gz holding each `(path, contents)` as a regular file, paths written verbatim into the header.
fn tar_gz(entries: &[(&str, &[u8])], extra: impl FnOnce(&mut TarGzBuilder)) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (path, contents) in entries {
        append_declared(&mut builder, path, contents.len() as u64, *contents);
    }
    extra(&mut builder);
    builder.into_inner().unwrap().finish().unwrap()
}

type TarGzBuilder = tar::Builder<GzEncoder<Vec<u8>>>;

/// A regular-file entry at `path` (written verbatim) whose header declares `size` bytes, followed by
/// `contents`, whatever their length.
fn append_declared(builder: &mut TarGzBuilder, path: &str, size: u64, contents: impl Read) {
    let mut header = tar::Header::new_old();
    let name = &mut header.as_old_mut().name;
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_size(size);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    builder.append(&header, contents).unwrap();
}

fn link_entry(builder: &mut TarGzBuilder, kind: tar::EntryType, target: &str) {
    let mut header = tar::Header::new_gnu();
    header.set_path("cifar-10-batches-bin/link").unwrap();
    if !target.is_empty() {
        header.set_link_name(target).unwrap();
    }
    header.set_size(0);
    header.set_entry_type(kind);
    header.set_cksum();
    builder.append(&header, &[][..]).unwrap();
}

/// Every path under `dir`, relative to it.
fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            for inner in listing(&path) {
                found.push(path.strip_prefix(dir).unwrap().join(inner));
            }
        }
    }
    found.sort();
    found
}

/// What a data folder holds once a download of `kind` into it has taken its lock.
fn download_lock(kind: &str) -> [PathBuf; 2] {
    [
        ".locks".into(),
        format!(".locks/download-{kind}.lock").into(),
    ]
}

const CIFAR10_ARCHIVE: &str = "cifar-10-binary.tar.gz";
const CIFAR10_FILES: [&str; 6] = [
    "data_batch_1.bin",
    "data_batch_2.bin",
    "data_batch_3.bin",
    "data_batch_4.bin",
    "data_batch_5.bin",
    "test_batch.bin",
];
/// Each official CIFAR-10 file holds 10,000 records of 3,073 bytes.
const CIFAR10_FILE_RECORDS: usize = 10_000;

/// A CIFAR-10 file of the official size: black images labelled 0, 1, ..., 9, 0, ...
fn official_size_cifar10_file() -> Vec<u8> {
    let mut bytes = vec![0u8; CIFAR10_FILE_RECORDS * (1 + CIFAR_IMAGE)];
    for (record, chunk) in bytes.chunks_exact_mut(1 + CIFAR_IMAGE).enumerate() {
        chunk[0] = (record % 10) as u8;
    }
    bytes
}

/// The four MNIST `.gz` files with the official sizes unpacked: black images labelled 0, 1, ..., 9,
/// 0, ...
fn official_size_mnist_gz_files() -> Vec<(&'static str, Vec<u8>)> {
    let split = |count: usize| {
        let labels: Vec<u8> = (0..count).map(|index| (index % 10) as u8).collect();
        let pixels = vec![0u8; count * 28 * 28];
        (
            gzipped(&idx_images(count as u32, 28, 28, &pixels)),
            gzipped(&idx_labels(&labels)),
        )
    };
    let (train_images, train_labels) = split(60_000);
    let (test_images, test_labels) = split(10_000);
    vec![
        ("train-images-idx3-ubyte.gz", train_images),
        ("train-labels-idx1-ubyte.gz", train_labels),
        ("t10k-images-idx3-ubyte.gz", test_images),
        ("t10k-labels-idx1-ubyte.gz", test_labels),
    ]
}

/// Loads `kind` into a fresh data folder from `mirror`'s `folder`, which must fail: the one-line
/// message, and what the data folder holds after.
fn refused_download(kind: DatasetKind, mirror: &Mirror, folder: &str) -> (String, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let url = mirror.url(folder);
    let mut req = request(kind, dir.path());
    req.download = true;
    req.mirror = Some(&url);
    let err = load(&req).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{folder}: {err}");
    let message = err.to_string();
    assert!(!message.contains('\n'), "{folder}: {message}");
    assert!(message.contains(&url), "{folder}: {message}");
    (message, listing(dir.path()))
}

#[test]
fn data_download_fetches_from_a_mirror_checks_its_sum_and_refuses_an_escaping_entry() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Mirror::serve();
    let file = official_size_cifar10_file();
    let paths: Vec<String> = (CIFAR10_FILES.iter())
        .chain(&["batches.meta.txt", "readme.html"])
        .map(|name| format!("cifar-10-batches-bin/{name}"))
        .collect();
    let entries: Vec<(&str, &[u8])> = (paths.iter().zip(CIFAR10_FILES))
        .map(|(path, _)| (path.as_str(), file.as_slice()))
        .chain([
            (paths[6].as_str(), &b"airplane\n"[..]),
            (paths[7].as_str(), b"<p>"),
        ])
        .collect();
    let good = tar_gz(&entries, |_| {});
    mirror.publish("good", CIFAR10_ARCHIVE, &good);
    mirror.publish_with_sum("badsum", CIFAR10_ARCHIVE, &good, &"0".repeat(32));
    mirror.publish(
        "escape",
        CIFAR10_ARCHIVE,
        &tar_gz(&[("../escaped.bin", b"outside")], |_| {}),
    );

    let download = |folder: &str, data: &str| {
        common::adarat(
            dir.path(),
            &[
                "data",
                "download",
                "cifar10",
                "--set",
                &format!("paths.data={data}"),
                "--set",
                &format!("paths.mirror={}", mirror.url(folder)),
            ],
        )
    };

    // A folder already holding a note and a stale batch: the download replaces the batch only.
    let data_dir = dir.path().join("work/good");
    let folder = data_dir.join("cifar-10-batches-bin");
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("notes.txt"), "mine").unwrap();
    fs::write(folder.join("data_batch_1.bin"), cifar_records(0, &[&[7]])).unwrap();
    let out = download("good", "work/good");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("cifar10: downloaded in"));
    let mut expected: Vec<PathBuf> = download_lock("cifar10").into();
    expected.push("cifar-10-batches-bin".into());
    for name in CIFAR10_FILES.iter().chain(&["notes.txt"]) {
        expected.push(Path::new("cifar-10-batches-bin").join(name));
    }
    expected.sort();
    assert_eq!(
        listing(&data_dir),
        expected,
        "the six official files beside the note, not the archive's other files"
    );
    let splits = load(&request(DatasetKind::Cifar10, &data_dir)).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (50_000, 10_000));
    assert_eq!(
        longs_of(&splits.train.labels.narrow(0, 0, 12)),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    );
    // Present already: nothing is fetched again.
    let out = download("good", "work/good");
    assert!(common::stdout(&out).contains("cifar10: already there"));
    assert_eq!(mirror.requests("good", CIFAR10_ARCHIVE), 1);

    let out = download("badsum", "work/badsum");
    assert_eq!(out.status.code(), Some(2));
    let text = common::stderr(&out);
    assert!(
        text.contains("MD5") && text.contains(&mirror.url("badsum")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(
        listing(&dir.path().join("work/badsum")),
        download_lock("cifar10"),
        "nothing is left of a refused download"
    );

    let out = download("escape", "work/escape");
    assert_eq!(out.status.code(), Some(2));
    let text = common::stderr(&out);
    assert!(text.contains("escaped.bin"), "{text}");
    assert!(!dir.path().join("work/escaped.bin").exists());
    assert!(!dir.path().join("escaped.bin").exists());
    assert_eq!(
        listing(&dir.path().join("work/escape")),
        download_lock("cifar10"),
        "an archive with an escaping entry installs nothing"
    );
}

#[test]
fn unsafe_archive_entries_are_refused_and_nothing_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("evil");
    let absolute = dir.path().join("absolute-evil");
    let absolute_name = absolute.display().to_string();
    let mirror = Mirror::serve();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("parent", tar_gz(&[("../evil", b"escaped")], |_| {})),
        (
            "nested-parent",
            tar_gz(&[("cifar-10-batches-bin/../../evil", b"escaped")], |_| {}),
        ),
        (
            "absolute",
            tar_gz(&[(absolute_name.as_str(), b"escaped")], |_| {}),
        ),
        (
            "symlink",
            tar_gz(&[], |builder| {
                link_entry(builder, tar::EntryType::Symlink, "../../evil")
            }),
        ),
        (
            "hard-link",
            tar_gz(&[], |builder| {
                link_entry(builder, tar::EntryType::Link, "/etc/passwd")
            }),
        ),
        (
            "fifo",
            tar_gz(&[], |builder| link_entry(builder, tar::EntryType::Fifo, "")),
        ),
    ];
    for (case, archive) in cases {
        mirror.publish(case, CIFAR10_ARCHIVE, &archive);
        let (message, left) = refused_download(DatasetKind::Cifar10, &mirror, case);
        assert!(message.contains("refusing entry"), "{case}: {message}");
        assert!(!outside.exists(), "{case}: wrote outside the data folder");
        assert!(!absolute.exists(), "{case}: wrote to an absolute path");
        assert_eq!(left, download_lock("cifar10"), "{case}");
    }
}

#[test]
fn an_archive_with_a_stray_or_misfit_file_or_a_bomb_installs_nothing() {
    let mirror = Mirror::serve();
    let file = official_size_cifar10_file();
    let in_folder = |name: &str| format!("cifar-10-batches-bin/{name}");
    let paths: Vec<String> = CIFAR10_FILES.iter().map(|name| in_folder(name)).collect();
    let official: Vec<(&str, &[u8])> = (paths.iter())
        .map(|path| (path.as_str(), file.as_slice()))
        .collect();
    let test_batch = &official[5..];
    let one_record = cifar_records(0, &[&[3]]);
    // CIFAR-10's tar stream may hold 6 × (512 + 30,730,240) bytes and a mebibyte besides.
    let past_the_stream_cap = 186 << 20;
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        (
            "stray",
            tar_gz(test_batch, |builder| {
                append_declared(builder, &in_folder("stray.bin"), 1, &b"x"[..])
            }),
            "refusing entry `cifar-10-batches-bin/stray.bin`: not a file of the dataset".into(),
        ),
        (
            "misfit",
            tar_gz(&[(&in_folder("test_batch.bin"), &one_record)], |_| {}),
            "holds 3073 bytes, but the dataset's test_batch.bin has 30730000".into(),
        ),
        (
            "lacking",
            tar_gz(&official[..5], |_| {}),
            "holds no test_batch.bin".into(),
        ),
        (
            "bomb-header",
            tar_gz(&[], |builder| {
                append_declared(builder, &in_folder("data_batch_1.bin"), 1 << 40, &[][..])
            }),
            "holds 1099511627776 bytes".into(),
        ),
        (
            "bomb-stream",
            tar_gz(test_batch, |builder| {
                // A GNU long name, which the tar reader gathers before the entry it names.
                let mut header = tar::Header::new_gnu();
                header.set_size(past_the_stream_cap);
                header.set_entry_type(tar::EntryType::GNULongName);
                header.set_cksum();
                let name = std::io::repeat(b'a').take(past_the_stream_cap);
                builder.append(&header, name).unwrap();
            }),
            "cifar-10-binary.tar.gz: unpacks to more than".into(),
        ),
    ];
    for (case, archive, problem) in cases {
        mirror.publish(case, CIFAR10_ARCHIVE, &archive);
        let (message, left) = refused_download(DatasetKind::Cifar10, &mirror, case);
        assert!(message.contains(&problem), "{case}: {message}");
        assert_eq!(left, download_lock("cifar10"), "{case}");
    }
}

#[test]
fn a_gzip_file_of_the_wrong_size_or_sum_or_a_bomb_installs_nothing() {
    let mirror = Mirror::serve();
    let files = official_size_mnist_gz_files();
    let (last, _) = files[3];
    // Random bytes do not compress: more than t10k-labels' 10,008 bytes can be as a gzip file.
    let mut state = 1u64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    let cases: Vec<(&str, Vec<u8>, Option<&str>, &str)> = vec![
        (
            "bomb",
            gzipped(&vec![0; 4 << 20]),
            None,
            "t10k-labels-idx1-ubyte.gz: unpacks to more than 10008 bytes",
        ),
        (
            "misfit",
            gzipped(&idx_labels(&[1, 2, 3])),
            None,
            "unpacks to 11 bytes, but the dataset's t10k-labels-idx1-ubyte has 10008",
        ),
        (
            "oversized",
            noise,
            None,
            "t10k-labels-idx1-ubyte.gz: is more than 75554 bytes",
        ),
        (
            "badsum",
            files[3].1.clone(),
            Some("00000000000000000000000000000000"),
            "t10k-labels-idx1-ubyte.gz has MD5",
        ),
    ];
    for (case, last_file, sum, problem) in cases {
        // The first three files are good: the refusal of the last one installs none of them.
        for (name, bytes) in &files[..3] {
            mirror.publish(case, name, bytes);
        }
        match sum {
            Some(sum) => mirror.publish_with_sum(case, last, &last_file, sum),
            None => mirror.publish(case, last, &last_file),
        }
        let (message, left) = refused_download(DatasetKind::Mnist, &mirror, case);
        assert!(message.contains(problem), "{case}: {message}");
        assert_eq!(left, download_lock("mnist"), "{case}");
        assert_eq!(mirror.requests(case, last), 1, "{case}");
    }
}

#[test]
fn two_downloads_of_one_dataset_into_one_data_folder_transfer_each_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let mirror = Mirror::serve();
    let files = official_size_mnist_gz_files();
    for (name, bytes) in &files {
        mirror.publish("mnist", name, bytes);
    }
    let mirror_setting = format!("paths.mirror={}", mirror.url("mnist"));
    let args = [
        "data",
        "download",
        "mnist",
        "--set",
        "paths.data=data",
        "--set",
        &mirror_setting,
    ];
    // The first download holds its first file until the second has found the dataset locked.
    mirror.hold();
    let first = common::adarat_command(dir.path(), &args).spawn().unwrap();
    common::wait_for("the first download to ask for a file", || {
        mirror.requests("mnist", files[0].0) > 0
    });
    let mut second = common::adarat_command(dir.path(), &args).spawn().unwrap();
    let mut second_stderr = BufReader::new(second.stderr.take().unwrap());
    let mut waiting = String::new();
    second_stderr.read_line(&mut waiting).unwrap();
    mirror.release();
    let first = first.wait_with_output().unwrap();
    let second_out = second.wait_with_output().unwrap();
    let mut rest = String::new();
    second_stderr.read_to_string(&mut rest).unwrap();

    assert!(
        waiting.starts_with("mnist: another process is downloading it into"),
        "{waiting}{rest}"
    );
    assert!(first.status.success(), "{}", common::stderr(&first));
    assert!(second_out.status.success(), "{waiting}{rest}");
    for (name, _) in &files {
        assert_eq!(mirror.requests("mnist", name), 1, "{name}");
    }
    let data_dir = dir.path().join("data");
    let mut expected: Vec<PathBuf> = download_lock("mnist").into();
    expected.push("mnist".into());
    for (name, _) in &files {
        expected.push(Path::new("mnist").join(name.trim_end_matches(".gz")));
    }
    expected.sort();
    assert_eq!(listing(&data_dir), expected);
    let splits = load(&request(DatasetKind::Mnist, &data_dir)).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (60_000, 10_000));
}
