//! The one error type of the data layer: every variant prints as a single line naming the file at fault.
use crate::lock::LockError;
use crate::vocab::DatasetKind;
use std::io;
use std::path::PathBuf;

#[derive(thiserror::Error, Debug)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

    /// The file exists but is not what its format promises (bad magic, truncated, inconsistent).
    #[error("{}: {problem}", path.display())]
    Malformed { path: PathBuf, problem: String },

    /// An official dataset is absent (and could not be downloaded): `instructions` says what to put where.
    #[error("dataset {dataset} not found: {instructions}")]
    Missing {
        dataset: DatasetKind,
        instructions: String,
    },

    #[error("{} has MD5 {actual} but the published checksum is {expected}", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    /// An archive entry that could land outside the data folder, is not a plain file or folder, or is
    /// not one of the dataset's files.
    #[error("{}: refusing entry `{entry}`: {problem}", archive.display())]
    UnsafeArchive {
        archive: PathBuf,
        entry: String,
        problem: &'static str,
    },

    /// A download, or what it unpacks to, went past the most the dataset can need (not the dataset, or
    /// a decompression bomb): refused there, before it could fill the disk. `what` is `is` or
    /// `unpacks to`.
    #[error("{}: {what} more than {most} bytes, more than the dataset can need", path.display())]
    TooLarge {
        path: PathBuf,
        what: &'static str,
        most: u64,
    },

    /// The lock that keeps a dataset to one download per data folder could not be taken.
    #[error("cannot take the download lock: {0}")]
    Lock(#[from] LockError),

    /// Moving a split onto the device failed (for example out of memory).
    #[error("cannot place {what} on {device}: {problem}")]
    Device {
        what: String,
        device: String,
        problem: String,
    },
}

impl DataError {
    pub(crate) fn read(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Read {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn write(path: impl Into<PathBuf>, source: io::Error) -> Self {
        DataError::Write {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn too_large(path: impl Into<PathBuf>, what: &'static str, most: u64) -> Self {
        DataError::TooLarge {
            path: path.into(),
            what,
            most,
        }
    }

    pub(crate) fn malformed(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        DataError::Malformed {
            path: path.into(),
            problem: problem.into(),
        }
    }
}
