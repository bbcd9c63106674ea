//! A split parsed on the host, before its single move to the device.
use super::error::DataError;
use super::Dataset;
use crate::torch_error::first_line;
use tch::{Device, Tensor};

/// Images as one contiguous u8 buffer in `[N, C, H, W]` order, with their labels.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HostSplit {
    pub images: Vec<u8>,
    pub labels: Vec<i64>,
    /// `[C, H, W]`.
    pub shape: [i64; 3],
}

impl HostSplit {
    pub(super) fn image_len(&self) -> usize {
        self.shape.iter().product::<i64>() as usize
    }

    /// Keeps the first `limit` images (all of them when `limit` is `None`).
    pub(super) fn truncated(mut self, limit: Option<usize>) -> Self {
        if let Some(limit) = limit {
            let keep = limit.min(self.labels.len());
            self.labels.truncate(keep);
            self.images.truncate(keep * self.image_len());
        }
        self
    }

    /// One tensor per field, built on the host and moved to `device` once.
    pub(super) fn into_dataset(self, device: Device) -> Result<Dataset, DataError> {
        let count = self.labels.len() as i64;
        let [channels, height, width] = self.shape;
        let on_device = |what: &str, tensor: Tensor| {
            tensor.f_to_device(device).map_err(|err| DataError::Device {
                what: format!("{count} {what}"),
                device: format!("{device:?}"),
                problem: first_line(&err.to_string()),
            })
        };
        let images = Tensor::from_slice(&self.images).view([count, channels, height, width]);
        let labels = Tensor::from_slice(&self.labels);
        Ok(Dataset {
            images: on_device("images", images)?,
            labels: on_device("labels", labels)?,
        })
    }
}
