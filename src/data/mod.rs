//! TEMPORARY STUB (replaced by the data branch).
use crate::config::{Augment, SyntheticSize};
use crate::vocab::DatasetKind;
use std::path::Path;
use tch::{Device, Kind, Tensor};

pub struct Dataset {
    pub images: Tensor,
    pub labels: Tensor,
}
pub struct Splits {
    pub train: Dataset,
    pub test: Dataset,
    pub classes: i64,
    pub shape: [i64; 3],
}
pub struct DataRequest<'a> {
    pub kind: DatasetKind,
    pub data_dir: &'a Path,
    pub device: Device,
    pub limit_train: Option<usize>,
    pub limit_test: Option<usize>,
    pub synthetic: SyntheticSize,
    pub seed: u64,
    pub download: bool,
    pub progress: bool,
}
#[derive(thiserror::Error, Debug)]
pub enum DataError {
    #[error("{0}")]
    Msg(String),
}
pub struct Batch {
    pub images: Tensor,
    pub labels: Tensor,
}

fn make(n: i64, device: Device) -> Dataset {
    let labels = Tensor::randint(10, [n], (Kind::Int64, device));
    let base = labels.view([n, 1, 1, 1]).to_kind(Kind::Float) * 25.0;
    let images = (base.expand([n, 3, 32, 32], false)
        + Tensor::rand([n, 3, 32, 32], (Kind::Float, device)) * 5.0)
        .to_kind(Kind::Uint8);
    Dataset { images, labels }
}

pub fn load(req: &DataRequest) -> Result<Splits, DataError> {
    tch::manual_seed(req.seed as i64);
    Ok(Splits {
        train: make(
            req.limit_train.unwrap_or(req.synthetic.train) as i64,
            req.device,
        ),
        test: make(
            req.limit_test.unwrap_or(req.synthetic.test) as i64,
            req.device,
        ),
        classes: 10,
        shape: [3, 32, 32],
    })
}

pub struct Batches {
    batches: std::vec::IntoIter<Batch>,
}
impl Iterator for Batches {
    type Item = Batch;
    fn next(&mut self) -> Option<Batch> {
        self.batches.next()
    }
}
impl ExactSizeIterator for Batches {}
impl Dataset {
    pub fn len(&self) -> usize {
        self.labels.size()[0] as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn batches(&self, batch_size: usize, shuffle: bool, _augment: Augment) -> Batches {
        let n = self.len() as i64;
        let idx = if shuffle {
            Tensor::randperm(n, (Kind::Int64, self.labels.device()))
        } else {
            Tensor::arange(n, (Kind::Int64, self.labels.device()))
        };
        let mut out = vec![];
        let mut s = 0;
        while s < n {
            let e = (s + batch_size as i64).min(n);
            let i = idx.narrow(0, s, e - s);
            out.push(Batch {
                images: self.images.index_select(0, &i).to_kind(Kind::Float) / 255.0,
                labels: self.labels.index_select(0, &i),
            });
            s = e;
        }
        Batches {
            batches: out.into_iter(),
        }
    }
}
