//! The data layer on small files written in the official formats: readers, refusals, safe installation,
//! the missing-dataset message, device augmentation and the synthetic dataset. All offline.
use crate::common;

use adarat::config::job::{Augment, SyntheticSize};
use adarat::data::{
    augment_batch, install_archive, install_gzip, load, md5_hex, DataError, DataRequest, Dataset,
    Splits,
};
use adarat::vocab::DatasetKind;
use flate2::write::GzEncoder;
use flate2::Compression;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
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
        seed: 0,
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
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
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
// Installing archives.

/// A tar.gz holding each `(path, contents)` as a regular file, paths written verbatim into the header.
fn tar_gz(entries: &[(&str, &[u8])], extra: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in entries {
        let mut header = tar::Header::new_old();
        let name = &mut header.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, *contents).unwrap();
    }
    extra(&mut builder);
    gzipped(&builder.into_inner().unwrap())
}

fn link_entry(builder: &mut tar::Builder<Vec<u8>>, kind: tar::EntryType, target: &str) {
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

fn write_archive(dir: &Path, bytes: &[u8]) -> (PathBuf, String) {
    let archive = dir.join("archive.tar.gz");
    fs::write(&archive, bytes).unwrap();
    let md5 = md5_hex(&archive).unwrap();
    (archive, md5)
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

#[test]
fn a_verified_archive_installs_into_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (archive, md5) = write_archive(
        dir.path(),
        &tar_gz(
            &[
                ("cifar-10-batches-bin/test_batch.bin", b"records"),
                ("./cifar-10-batches-bin/readme.html", b"<p>"),
            ],
            |_| {},
        ),
    );
    install_archive(&archive, &md5.to_uppercase(), &data_dir).unwrap();
    assert_eq!(
        fs::read(data_dir.join("cifar-10-batches-bin/test_batch.bin")).unwrap(),
        b"records"
    );
    assert_eq!(
        listing(&data_dir),
        [
            "cifar-10-batches-bin",
            "cifar-10-batches-bin/readme.html",
            "cifar-10-batches-bin/test_batch.bin"
        ]
        .map(PathBuf::from)
    );

    // A second archive merges into the folder that is already there.
    let (archive, md5) = write_archive(
        dir.path(),
        &tar_gz(
            &[("cifar-10-batches-bin/data_batch_1.bin", b"more")],
            |_| {},
        ),
    );
    install_archive(&archive, &md5, &data_dir).unwrap();
    assert_eq!(listing(&data_dir).len(), 4);
}

#[test]
fn a_checksum_mismatch_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let (archive, _) = write_archive(
        dir.path(),
        &tar_gz(&[("cifar-10-batches-bin/test_batch.bin", b"x")], |_| {}),
    );
    let err = install_archive(&archive, "0123456789abcdef0123456789abcdef", &data_dir).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    assert_names(&err, &archive);
    assert!(listing(&data_dir).is_empty());
}

#[test]
fn unsafe_archive_entries_are_refused_and_nothing_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let outside = dir.path().join("evil");
    let absolute = dir.path().join("absolute-evil");
    let absolute_name = absolute.display().to_string();
    let good: (&str, &[u8]) = ("cifar-10-batches-bin/test_batch.bin", b"fine");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("parent", tar_gz(&[good, ("../evil", b"escaped")], |_| {})),
        (
            "nested parent",
            tar_gz(
                &[good, ("cifar-10-batches-bin/../../evil", b"escaped")],
                |_| {},
            ),
        ),
        (
            "absolute",
            tar_gz(&[good, (absolute_name.as_str(), b"escaped")], |_| {}),
        ),
        (
            "symlink",
            tar_gz(&[good], |builder| {
                link_entry(builder, tar::EntryType::Symlink, "../../evil")
            }),
        ),
        (
            "hard link",
            tar_gz(&[good], |builder| {
                link_entry(builder, tar::EntryType::Link, "/etc/passwd")
            }),
        ),
        (
            "fifo",
            tar_gz(&[good], |builder| {
                link_entry(builder, tar::EntryType::Fifo, "")
            }),
        ),
    ];
    for (case, bytes) in cases {
        let (archive, md5) = write_archive(dir.path(), &bytes);
        let err = install_archive(&archive, &md5, &data_dir).unwrap_err();
        assert!(
            matches!(err, DataError::UnsafeArchive { .. }),
            "{case}: {err}"
        );
        assert_names(&err, &archive);
        assert!(!outside.exists(), "{case}: wrote outside the data folder");
        assert!(!absolute.exists(), "{case}: wrote to an absolute path");
        assert!(
            listing(&data_dir).is_empty(),
            "{case}: left {:?}",
            listing(&data_dir)
        );
    }
}

#[test]
fn a_verified_gzip_file_is_unpacked_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let download = dir.path().join("train-labels-idx1-ubyte.gz");
    fs::write(&download, gzipped(&idx_labels(&[1, 2, 3]))).unwrap();
    let md5 = md5_hex(&download).unwrap();
    let destination = dir.path().join("data/mnist/train-labels-idx1-ubyte");

    let err =
        install_gzip(&download, "00000000000000000000000000000000", &destination).unwrap_err();
    assert!(matches!(err, DataError::Checksum { .. }));
    assert!(!destination.exists());

    install_gzip(&download, &md5, &destination).unwrap();
    assert_eq!(fs::read(&destination).unwrap(), idx_labels(&[1, 2, 3]));
    assert_eq!(listing(&dir.path().join("data/mnist")).len(), 1);
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

fn synthetic(seed: u64, train: usize, test: usize) -> Splits {
    let mut req = request(DatasetKind::Synthetic, Path::new("/nonexistent"));
    req.seed = seed;
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
fn synthetic_is_deterministic_per_seed_with_the_right_shapes() {
    let _torch = common::torch_lock();
    let first = synthetic(5, 120, 40);
    let again = synthetic(5, 120, 40);
    let other = synthetic(6, 120, 40);
    assert_eq!((first.classes, first.shape), (10, [3, 32, 32]));
    assert_eq!(first.train.images.size(), [120, 3, 32, 32]);
    assert_eq!(first.test.images.size(), [40, 3, 32, 32]);
    assert_eq!(bytes_of(&first.train.images), bytes_of(&again.train.images));
    assert_eq!(bytes_of(&first.test.images), bytes_of(&again.test.images));
    assert_ne!(bytes_of(&first.train.images), bytes_of(&other.train.images));
    assert_ne!(
        bytes_of(&first.train.images),
        bytes_of(&first.test.images)[..]
    );
    let labels = longs_of(&first.train.labels);
    for class in 0..10 {
        assert_eq!(labels.iter().filter(|&&l| l == class).count(), 12);
    }
}

#[test]
fn synthetic_limits_take_the_first_images() {
    let _torch = common::torch_lock();
    let full = synthetic(2, 50, 20);
    let mut req = request(DatasetKind::Synthetic, Path::new("/nonexistent"));
    req.seed = 2;
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
    let splits = synthetic(1, 2000, 1000);
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

/// Python's `http.server` on 127.0.0.1 at a free port, serving `root`; killed when dropped.
struct HttpServer {
    child: std::process::Child,
    port: u16,
}

impl HttpServer {
    fn serve(root: &Path) -> HttpServer {
        use std::io::BufRead;
        let mut child = std::process::Command::new(common::python())
            .args([
                "-u",
                "-m",
                "http.server",
                "0",
                "--bind",
                "127.0.0.1",
                "--directory",
            ])
            .arg(root)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        // "Serving HTTP on 127.0.0.1 port 43127 (http://127.0.0.1:43127/) ..."
        let port = line
            .split_whitespace()
            .skip_while(|w| *w != "port")
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("http.server said: {line}"));
        HttpServer { child, port }
    }

    fn url(&self, folder: &str) -> String {
        format!("http://127.0.0.1:{}/{folder}", self.port)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A CIFAR-10 archive as the official one is laid out, from `files`, and its MD5.
fn cifar10_archive(entries: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let bytes = tar_gz(entries, |_| {});
    let dir = tempfile::tempdir().unwrap();
    let (_, md5) = write_archive(dir.path(), &bytes);
    (bytes, md5)
}

/// A mirror folder holding `cifar-10-binary.tar.gz` and an `MD5SUMS` naming `md5` for it.
fn mirror_folder(root: &Path, name: &str, archive: &[u8], md5: &str) {
    let folder = root.join(name);
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("cifar-10-binary.tar.gz"), archive).unwrap();
    fs::write(
        folder.join("MD5SUMS"),
        format!("{md5}  cifar-10-binary.tar.gz\n"),
    )
    .unwrap();
}

#[test]
fn data_download_fetches_from_a_mirror_checks_its_sum_and_refuses_an_escaping_entry() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let batches: Vec<(String, Vec<u8>)> = (1..=5)
        .map(|b| {
            let name = format!("cifar-10-batches-bin/data_batch_{b}.bin");
            (
                name,
                cifar_records(b * 2, &[&[b as u8], &[(b + 1) as u8 % 10]]),
            )
        })
        .chain([(
            "cifar-10-batches-bin/test_batch.bin".to_string(),
            cifar_records(100, &[&[3], &[7]]),
        )])
        .collect();
    let entries: Vec<(&str, &[u8])> = batches
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.as_slice()))
        .collect();
    let (good, good_md5) = cifar10_archive(&entries);
    mirror_folder(&root, "good", &good, &good_md5);
    mirror_folder(&root, "badsum", &good, &"0".repeat(32));
    let mut escaping = entries.clone();
    escaping.push(("../escaped.bin", b"outside"));
    let (evil, evil_md5) = cifar10_archive(&escaping);
    mirror_folder(&root, "escape", &evil, &evil_md5);
    let server = HttpServer::serve(&root);

    let download = |mirror: &str, data: &str| {
        common::adarat(
            dir.path(),
            &[
                "data",
                "download",
                "cifar10",
                "--set",
                &format!("paths.data={data}"),
                "--set",
                &format!("paths.mirror={}", server.url(mirror)),
            ],
        )
    };

    let out = download("good", "work/good");
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(common::stdout(&out).contains("cifar10: downloaded in"));
    let data_dir = dir.path().join("work/good");
    assert_eq!(
        listing(&data_dir.join("cifar-10-batches-bin")).len(),
        6,
        "the six official files, nothing else"
    );
    let splits = load(&request(DatasetKind::Cifar10, &data_dir)).unwrap();
    assert_eq!((splits.train.len(), splits.test.len()), (10, 2));
    // Present already: nothing is fetched again.
    let out = download("good", "work/good");
    assert!(common::stdout(&out).contains("cifar10: already there"));

    let out = download("badsum", "work/badsum");
    assert_eq!(out.status.code(), Some(2));
    let text = common::stderr(&out);
    assert!(
        text.contains("MD5") && text.contains(&server.url("badsum")),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        listing(&dir.path().join("work/badsum")).is_empty(),
        "nothing is left of a refused download"
    );

    let out = download("escape", "work/escape");
    assert_eq!(out.status.code(), Some(2));
    let text = common::stderr(&out);
    assert!(text.contains("escaped.bin"), "{text}");
    assert!(!dir.path().join("work/escaped.bin").exists());
    assert!(!dir.path().join("escaped.bin").exists());
    assert!(
        !dir.path().join("work/escape/cifar-10-batches-bin").exists(),
        "an archive with an escaping entry installs nothing"
    );
}
