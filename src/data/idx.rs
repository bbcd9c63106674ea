//! MNIST and Fashion-MNIST in the IDX format: a big-endian magic (0x00000803 for u8 images of 3 dimensions,
//! 0x00000801 for u8 labels), the dimensions as big-endian u32, then the bytes. Files may be gzipped.
use super::error::DataError;
use super::host::HostSplit;
use flate2::read::MultiGzDecoder;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// The magic and the three dimensions of an images file; the magic and the count of a labels file.
const IMAGES_HEADER_BYTES: u64 = 16;
const LABELS_HEADER_BYTES: u64 = 8;

/// The image and label files of one split, by their official names (without `.gz`), and how many
/// images the official files hold.
#[derive(Debug)]
pub(crate) struct IdxPair {
    pub images: &'static str,
    pub labels: &'static str,
    count: u64,
}

/// One official file: its name (without `.gz`), the published MD5 of its `.gz` and its size unpacked.
#[derive(Debug)]
pub(crate) struct IdxFile {
    pub name: &'static str,
    pub gz_md5: &'static str,
    pub size: u64,
}

/// Where an IDX dataset lives, where it comes from, and its published checksums.
#[derive(Debug)]
pub(crate) struct IdxSet {
    /// Folder under the data folder.
    pub folder: &'static str,
    /// Folders a system package installs the files into, searched after the data folder.
    pub system_folders: &'static [&'static str],
    /// Debian package that ships the files, if any.
    pub debian_package: Option<&'static str>,
    pub train: IdxPair,
    pub test: IdxPair,
    pub classes: i64,
    /// Pixels of one image in the official files.
    image_pixels: u64,
    /// Base addresses the `.gz` files are fetched from, tried in order.
    pub mirrors: &'static [&'static str],
    /// Published MD5 of each `.gz` file, in the order train images, train labels, test images, test labels.
    md5s: [&'static str; 4],
}

const OFFICIAL_TRAIN: IdxPair = IdxPair {
    images: "train-images-idx3-ubyte",
    labels: "train-labels-idx1-ubyte",
    count: 60_000,
};
const OFFICIAL_TEST: IdxPair = IdxPair {
    images: "t10k-images-idx3-ubyte",
    labels: "t10k-labels-idx1-ubyte",
    count: 10_000,
};

pub(crate) const MNIST: IdxSet = IdxSet {
    folder: "mnist",
    system_folders: &[],
    debian_package: None,
    train: OFFICIAL_TRAIN,
    test: OFFICIAL_TEST,
    classes: 10,
    image_pixels: 28 * 28,
    // The original site now answers with an authentication wall; torchvision's mirror comes first.
    mirrors: &[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ],
    md5s: [
        "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "d53e105ee54ea40749a09fcbcd1e9432",
        "9fb629c4189551a2d022fa330f9573f3",
        "ec29112dd5afa0611ce80d1b7f02629c",
    ],
};

pub(crate) const FASHION_MNIST: IdxSet = IdxSet {
    folder: "fashion-mnist",
    system_folders: &["/usr/share/datasets/fashion-mnist"],
    debian_package: Some("dataset-fashion-mnist"),
    train: OFFICIAL_TRAIN,
    test: OFFICIAL_TEST,
    classes: 10,
    image_pixels: 28 * 28,
    mirrors: &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    md5s: [
        "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "25c81989df183df01b3e8a0aad5dffbe",
        "bef4ecab320f06d8554ea6380940ec79",
        "bb300cfdad3c16e7a12a480ee83cd310",
    ],
};

impl IdxSet {
    /// The four official file names.
    pub(super) fn file_names(&self) -> [&'static str; 4] {
        self.files().map(|file| file.name)
    }

    /// The four official files, in the order of `md5s`, with their published sums and their sizes
    /// (which follow from the counts their headers hold).
    pub(super) fn files(&self) -> [IdxFile; 4] {
        let [train_images, train_labels, test_images, test_labels] = self.md5s;
        let images = |pair: &IdxPair, gz_md5| IdxFile {
            name: pair.images,
            gz_md5,
            size: IMAGES_HEADER_BYTES + pair.count * self.image_pixels,
        };
        let labels = |pair: &IdxPair, gz_md5| IdxFile {
            name: pair.labels,
            gz_md5,
            size: LABELS_HEADER_BYTES + pair.count,
        };
        [
            images(&self.train, train_images),
            labels(&self.train, train_labels),
            images(&self.test, test_images),
            labels(&self.test, test_labels),
        ]
    }

    /// The first folder holding all four files: the data folder's, then the system package's.
    pub(super) fn find_folder(&self, data_dir: &Path) -> Option<PathBuf> {
        std::iter::once(data_dir.join(self.folder))
            .chain(self.system_folders.iter().map(PathBuf::from))
            .find(|folder| self.missing_files(folder).is_empty())
    }

    /// The official names of the files `folder` lacks (in neither plain nor gzipped form).
    pub(super) fn missing_files(&self, folder: &Path) -> Vec<&'static str> {
        self.file_names()
            .into_iter()
            .filter(|name| locate(folder, name).is_none())
            .collect()
    }
}

/// `folder/name`, or `folder/name.gz` when only the gzipped file is there.
fn locate(folder: &Path, name: &str) -> Option<PathBuf> {
    [name.to_string(), format!("{name}.gz")]
        .into_iter()
        .map(|file| folder.join(file))
        .find(|path| path.is_file())
}

/// Reads one split (images and labels) of the IDX files in `folder`, keeping the first `limit` images.
pub(crate) fn read_split(
    folder: &Path,
    pair: &IdxPair,
    classes: i64,
    limit: Option<usize>,
) -> Result<HostSplit, DataError> {
    let find = |name: &str| {
        locate(folder, name).ok_or_else(|| {
            DataError::read(
                folder.join(name),
                std::io::Error::new(std::io::ErrorKind::NotFound, "neither plain nor .gz found"),
            )
        })
    };
    let images_path = find(pair.images)?;
    let labels_path = find(pair.labels)?;
    let images = parse_images(&read_maybe_gzipped(&images_path)?)
        .map_err(|problem| DataError::malformed(&images_path, problem))?;
    let labels = parse_labels(&read_maybe_gzipped(&labels_path)?, classes)
        .map_err(|problem| DataError::malformed(&labels_path, problem))?;
    if images.count != labels.len() {
        return Err(DataError::malformed(
            &labels_path,
            format!(
                "holds {} labels but {} holds {} images",
                labels.len(),
                images_path.display(),
                images.count
            ),
        ));
    }
    let split = HostSplit {
        images: images.pixels,
        labels,
        shape: [1, images.rows, images.cols],
    };
    Ok(split.truncated(limit))
}

/// The whole file, decompressed when it starts with the gzip magic.
fn read_maybe_gzipped(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = fs::read(path).map_err(|err| DataError::read(path, err))?;
    if !raw.starts_with(&GZIP_MAGIC) {
        return Ok(raw);
    }
    let mut plain = Vec::with_capacity(raw.len() * 4);
    MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut plain)
        .map_err(|err| DataError::malformed(path, format!("broken gzip stream: {err}")))?;
    Ok(plain)
}

#[derive(Debug)]
struct IdxImages {
    count: usize,
    rows: i64,
    cols: i64,
    pixels: Vec<u8>,
}

/// Reads the big-endian u32 at `index` (0 = magic) of the header.
fn header_word(bytes: &[u8], index: usize) -> Result<u32, String> {
    bytes
        .get(4 * index..4 * index + 4)
        .map(|word| u32::from_be_bytes([word[0], word[1], word[2], word[3]]))
        .ok_or_else(|| format!("truncated: {} bytes, shorter than its header", bytes.len()))
}

fn check_magic(bytes: &[u8], expected: u32, what: &str) -> Result<(), String> {
    let magic = header_word(bytes, 0)?;
    if magic == expected {
        Ok(())
    } else {
        Err(format!(
            "magic number {magic:#010x} is not that of IDX {what} ({expected:#010x})"
        ))
    }
}

/// Checks that the payload after a `header_words`-word header has exactly `expected` bytes.
fn payload(bytes: &[u8], header_words: usize, expected: usize) -> Result<&[u8], String> {
    let body = &bytes[4 * header_words..];
    match body.len().cmp(&expected) {
        std::cmp::Ordering::Equal => Ok(body),
        std::cmp::Ordering::Less => Err(format!(
            "truncated: the header promises {expected} data bytes but only {} follow",
            body.len()
        )),
        std::cmp::Ordering::Greater => Err(format!(
            "{} bytes follow the {expected} data bytes the header promises",
            body.len() - expected
        )),
    }
}

fn parse_images(bytes: &[u8]) -> Result<IdxImages, String> {
    check_magic(bytes, IMAGES_MAGIC, "u8 images")?;
    let count = header_word(bytes, 1)? as usize;
    let rows = header_word(bytes, 2)? as usize;
    let cols = header_word(bytes, 3)? as usize;
    if rows == 0 || cols == 0 {
        return Err(format!("images of {rows}×{cols} pixels"));
    }
    let expected = count
        .checked_mul(rows * cols)
        .ok_or_else(|| format!("header dimensions {count}×{rows}×{cols} are absurd"))?;
    let pixels = payload(bytes, 4, expected)?.to_vec();
    Ok(IdxImages {
        count,
        rows: rows as i64,
        cols: cols as i64,
        pixels,
    })
}

fn parse_labels(bytes: &[u8], classes: i64) -> Result<Vec<i64>, String> {
    check_magic(bytes, LABELS_MAGIC, "u8 labels")?;
    let count = header_word(bytes, 1)? as usize;
    let labels = payload(bytes, 2, count)?;
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, &label)| i64::from(label) >= classes)
    {
        return Err(format!("label {index} is {label}, outside 0..{classes}"));
    }
    Ok(labels.iter().map(|&label| i64::from(label)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|word| word.to_be_bytes()).collect()
    }

    #[test]
    fn the_official_file_sizes() {
        for set in [&MNIST, &FASHION_MNIST] {
            let sizes: Vec<(&str, u64)> = set.files().iter().map(|f| (f.name, f.size)).collect();
            assert_eq!(
                sizes,
                [
                    ("train-images-idx3-ubyte", 47_040_016),
                    ("train-labels-idx1-ubyte", 60_008),
                    ("t10k-images-idx3-ubyte", 7_840_016),
                    ("t10k-labels-idx1-ubyte", 10_008),
                ]
            );
        }
    }

    #[test]
    fn images_come_back_with_their_dimensions() {
        let mut bytes = header(&[IMAGES_MAGIC, 2, 2, 3]);
        bytes.extend(0..12u8);
        let images = parse_images(&bytes).unwrap();
        assert_eq!((images.count, images.rows, images.cols), (2, 2, 3));
        assert_eq!(images.pixels, (0..12u8).collect::<Vec<_>>());
    }

    #[test]
    fn header_problems_are_described() {
        assert!(parse_images(&[0, 0]).unwrap_err().contains("truncated"));
        let labels_as_images = header(&[LABELS_MAGIC, 1, 1, 1]);
        assert!(parse_images(&labels_as_images)
            .unwrap_err()
            .contains("magic"));
        let mut too_long = header(&[LABELS_MAGIC, 1]);
        too_long.extend([3, 4]);
        assert!(parse_labels(&too_long, 10)
            .unwrap_err()
            .contains("1 bytes follow"));
        let mut out_of_range = header(&[LABELS_MAGIC, 2]);
        out_of_range.extend([3, 10]);
        assert!(parse_labels(&out_of_range, 10)
            .unwrap_err()
            .contains("label 1 is 10"));
    }
}
