//! The CIFAR-10 and CIFAR-100 binary versions: fixed-size records of label byte(s) then 3072 pixel bytes,
//! the red, green and blue planes one after the other, each 32×32 row-major, i.e. already CHW.
use super::error::DataError;
use super::host::HostSplit;
use std::fs;
use std::path::Path;

const IMAGE_SHAPE: [i64; 3] = [3, 32, 32];
const IMAGE_BYTES: usize = 3 * 32 * 32;

/// Where a CIFAR dataset lives and how its records are laid out.
#[derive(Debug)]
pub(crate) struct CifarLayout {
    /// Folder under the data folder, as the official archive unpacks it.
    pub folder: &'static str,
    pub train_files: &'static [&'static str],
    pub test_file: &'static str,
    /// Records in each training file and in the test file; the official files' sizes follow.
    train_file_records: u64,
    test_file_records: u64,
    /// The official archive's other files, which adarat does not read: accepted, not installed.
    pub archive_companions: &'static [&'static str],
    pub classes: i64,
    /// Label bytes before the pixels; the class is the last of them (CIFAR-100: coarse, then fine).
    label_bytes: usize,
    /// Number of classes of each label byte, to catch a file of the other CIFAR.
    label_ranges: &'static [u8],
    pub url: &'static str,
    pub md5: &'static str,
}

pub(crate) const CIFAR10: CifarLayout = CifarLayout {
    folder: "cifar-10-batches-bin",
    train_files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test_file: "test_batch.bin",
    train_file_records: 10_000,
    test_file_records: 10_000,
    archive_companions: &["batches.meta.txt", "readme.html"],
    classes: 10,
    label_bytes: 1,
    label_ranges: &[10],
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    md5: "c32a1d4ab5d03f1284b67883e8d87530",
};

pub(crate) const CIFAR100: CifarLayout = CifarLayout {
    folder: "cifar-100-binary",
    train_files: &["train.bin"],
    test_file: "test.bin",
    train_file_records: 50_000,
    test_file_records: 10_000,
    archive_companions: &["coarse_label_names.txt", "fine_label_names.txt"],
    classes: 100,
    label_bytes: 2,
    label_ranges: &[20, 100],
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    md5: "03b5dce01913d631647c71ecec9e9cb8",
};

impl CifarLayout {
    fn record_bytes(&self) -> usize {
        self.label_bytes + IMAGE_BYTES
    }

    /// Each file of the dataset with its official size in bytes.
    pub(super) fn sized_files(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let bytes = |records: u64| records * self.record_bytes() as u64;
        (self.train_files.iter())
            .map(move |&name| (name, bytes(self.train_file_records)))
            .chain([(self.test_file, bytes(self.test_file_records))])
    }

    pub(super) fn all_files(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.train_files.iter().copied().chain([self.test_file])
    }

    /// The files of this dataset that `folder` lacks.
    pub(super) fn missing_files(&self, folder: &Path) -> Vec<&'static str> {
        self.all_files()
            .filter(|name| !folder.join(name).is_file())
            .collect()
    }
}

/// Reads `files` of `folder` in order, stopping once `limit` images are in.
pub(crate) fn read_split(
    layout: &CifarLayout,
    folder: &Path,
    files: &[&str],
    limit: Option<usize>,
) -> Result<HostSplit, DataError> {
    let mut split = HostSplit {
        images: Vec::new(),
        labels: Vec::new(),
        shape: IMAGE_SHAPE,
    };
    for name in files {
        if limit.is_some_and(|limit| split.labels.len() >= limit) {
            break;
        }
        let path = folder.join(name);
        let bytes = fs::read(&path).map_err(|err| DataError::read(&path, err))?;
        parse_records(layout, &bytes, &mut split)
            .map_err(|problem| DataError::malformed(&path, problem))?;
    }
    Ok(split.truncated(limit))
}

/// Appends the records of one file to `split`.
fn parse_records(layout: &CifarLayout, bytes: &[u8], split: &mut HostSplit) -> Result<(), String> {
    let record = layout.record_bytes();
    if bytes.is_empty() {
        return Err("file is empty".to_string());
    }
    if !bytes.len().is_multiple_of(record) {
        return Err(format!(
            "truncated or not a CIFAR binary file: {} bytes is not a whole number of {record}-byte records",
            bytes.len()
        ));
    }
    split.images.reserve(bytes.len() / record * IMAGE_BYTES);
    for (index, chunk) in bytes.chunks_exact(record).enumerate() {
        let (label_bytes, pixels) = chunk.split_at(layout.label_bytes);
        for (&label, &range) in label_bytes.iter().zip(layout.label_ranges) {
            if label >= range {
                return Err(format!(
                    "record {index} has label {label}, outside 0..{range} (is this the other CIFAR?)"
                ));
            }
        }
        let class = label_bytes[layout.label_bytes - 1];
        split.labels.push(i64::from(class));
        split.images.extend_from_slice(pixels);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_split() -> HostSplit {
        HostSplit {
            images: Vec::new(),
            labels: Vec::new(),
            shape: IMAGE_SHAPE,
        }
    }

    #[test]
    fn the_official_file_sizes() {
        // The CIFAR page: "each file should be exactly 30730000 bytes long" (10,000 records).
        let sizes: Vec<u64> = CIFAR10.sized_files().map(|(_, size)| size).collect();
        assert_eq!(sizes, [30_730_000; 6]);
        assert_eq!(
            CIFAR100.sized_files().collect::<Vec<_>>(),
            [("train.bin", 50_000 * 3074), ("test.bin", 10_000 * 3074)]
        );
    }

    #[test]
    fn cifar100_uses_the_fine_label() {
        let mut record = vec![7u8, 93];
        record.extend((0..IMAGE_BYTES).map(|i| (i % 251) as u8));
        let mut split = empty_split();
        parse_records(&CIFAR100, &record, &mut split).unwrap();
        assert_eq!(split.labels, vec![93]);
        assert_eq!(split.images, record[2..].to_vec());
    }

    #[test]
    fn partial_records_and_bad_labels_are_refused() {
        let mut split = empty_split();
        let partial = vec![1u8; CIFAR10.record_bytes() + 10];
        assert!(parse_records(&CIFAR10, &partial, &mut split)
            .unwrap_err()
            .contains("truncated"));
        let mut bad_label = vec![0u8; CIFAR10.record_bytes()];
        bad_label[0] = 10;
        assert!(parse_records(&CIFAR10, &bad_label, &mut split)
            .unwrap_err()
            .contains("label 10"));
        let mut coarse_too_big = vec![0u8; CIFAR100.record_bytes()];
        coarse_too_big[0] = 20;
        assert!(parse_records(&CIFAR100, &coarse_too_big, &mut split).is_err());
    }
}
