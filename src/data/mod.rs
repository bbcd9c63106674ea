//! Datasets in their official formats, held on the training device as u8.
