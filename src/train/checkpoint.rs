//! A saved network evaluated on its dataset's test set (`adarat eval`): the device, the data and
//! the checkpoint put together as a run would, then the final table on it.
use super::attack_table::{AttackTable, Evaluation, Interrupted, Progress};
use super::{load_data, model_spec, InputError, StopFlag};
use crate::config::JobConfig;
use crate::data::Dataset;
use crate::models::{ModelSpec, Network};
use std::path::Path;
use tch::Device;

/// A checkpoint on the device of the job it is evaluated as, beside that job's test set.
pub struct Checkpoint {
    net: Network,
    pub spec: ModelSpec,
    pub test: Dataset,
    pub device: Device,
}

impl Checkpoint {
    /// Loads `path` as the network of `cfg` (its model, dataset, device and speed switches); the
    /// official dataset is fetched when `download` allows.
    pub fn load(cfg: &JobConfig, path: &Path, download: bool) -> Result<Checkpoint, InputError> {
        let device = crate::device::resolve(cfg.device)?;
        let data = load_data(cfg, device, download, true)?;
        let spec = model_spec(cfg, &data);
        let mut net = Network::new(&spec, device)?;
        net.load(path)?;
        if cfg.speed.channels_last {
            net.use_channels_last();
        }
        Ok(Checkpoint {
            net,
            spec,
            test: data.test,
            device,
        })
    }

    /// Runs `table` on the test set, telling `progress` each attack and batch; a request on `stop`
    /// ends it within the running attack, and nothing of the table is kept. The table comes with
    /// its per-image records.
    pub fn evaluate(
        &self,
        table: &AttackTable,
        stop: &StopFlag,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Evaluation, Interrupted> {
        let stop = stop.clone();
        let _watch = crate::attacks::interrupt::watch(move || stop.requested());
        table.run(
            &self.net,
            &self.test,
            Default::default(),
            &mut |p: Progress| {
                progress(&p);
                Ok::<(), Interrupted>(())
            },
        )
    }
}
