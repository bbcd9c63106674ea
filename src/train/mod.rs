//! One run of a job: seeding, data, model, the epochs of training with the per-epoch test, the
//! final evaluation, and the run folder kept current after every epoch (docs/architecture.md#the-life-of-a-job).
pub mod attack_table;
mod checkpoint;
pub mod cuda_graph;
mod epochs;
mod error;
pub mod evaluate;
mod final_eval;
mod ledger;
pub mod precision;
mod resume;

pub use checkpoint::Checkpoint;
pub use error::{Failure, InputError, ResumeFileError, RunError, StopPoint};

use crate::config::JobConfig;
use crate::data::{self, DataRequest, Splits};
use crate::methods::{self, TrainingMethod};
use crate::models::{ModelSpec, Network};
use crate::optim::Sgd;
use crate::ratio::Ratio;
use crate::store::events::{Event, Observer};
use crate::store::result::RunResult;
use crate::store::RunStore;
use crate::streams::{self, Purpose};
use crate::vocab::Status;
use error::catching_panics;
use resume::Trainee;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::Device;

/// Asks a run to stop at the next batch boundary; shared with signal handlers.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// The flag itself, for `signal_hook::flag::register`.
    pub fn shared(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Start over even if an unfinished run of the same configuration exists.
    pub fresh: bool,
    /// Fetch a missing official dataset.
    pub download: bool,
    /// Draw download progress bars on stderr.
    pub progress: bool,
    pub stop: StopFlag,
}

/// Everything a running job holds.
struct Run<'a> {
    cfg: &'a JobConfig,
    stop: StopFlag,
    store: RunStore,
    observer: &'a mut dyn Observer,
    net: Network,
    data: Splits,
    method: Box<dyn TrainingMethod>,
    ratio: Ratio,
    sgd: Sgd,
    result: RunResult,
    started_at: String,
    clock: Instant,
    seconds_before: f64,
    /// A capture failed once: the rest of the run trains eagerly.
    graphs_failed: bool,
}

/// Runs (or resumes) a job to the end and returns its result; the run folder is current after
/// every epoch.
pub fn run(
    cfg: &JobConfig,
    options: RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunResult, RunError> {
    let device = checked_device(cfg)?;
    // Loading draws nothing from torch's generator (synthetic data has its own streams).
    let data =
        load_data(cfg, device, options.download, options.progress).map_err(InputError::from)?;
    run_on(cfg, device, data, options, observer)
}

/// [`run`] on data already on the job's device (`adarat bench` brings its own images).
pub fn run_with_data(
    cfg: &JobConfig,
    data: Splits,
    options: RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunResult, RunError> {
    let device = checked_device(cfg)?;
    run_on(cfg, device, data, options, observer)
}

/// The job's device, once the job is known to be runnable.
fn checked_device(cfg: &JobConfig) -> Result<Device, InputError> {
    methods::check(cfg)?;
    Ok(crate::device::resolve(cfg.device)?)
}

fn run_on(
    cfg: &JobConfig,
    device: Device,
    data: Splits,
    options: RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunResult, RunError> {
    // Whatever an earlier job on this thread left (docs/architecture.md#errors-and-exit-statuses).
    crate::thread_modes::reset();
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(cfg.speed.cudnn_benchmark);
    }
    let ratio = Ratio::new(cfg.mode, cfg.ratio, cfg.attack.epsilon).map_err(InputError::from)?;
    let spec = model_spec(cfg, &data);
    // Teachers are built and loaded before the seeding, as the reference does (section 1), so
    // the student starts as it would in any other method.
    let mut method = methods::build(cfg, &spec, device).map_err(InputError::from)?;
    let ratio = ratio.with_barrier_at_threshold(method.barrier_at_threshold());
    // Seed before anything random happens, model initialisation included (docs/protocol.md Q6, fixed),
    // from the run's initialisation stream (docs/protocol.md#random-streams).
    tch::manual_seed(streams::torch_seed(cfg.seed, Purpose::Initialisation, 0));
    let mut net = Network::new(&spec, device).map_err(InputError::from)?;
    if cfg.speed.channels_last {
        net.use_channels_last();
    }
    method.initialise(&net).map_err(InputError::from)?;
    let mut sgd = Sgd::new(net.parameters(), cfg.momentum, cfg.weight_decay);
    let trainee = Trainee {
        net: &mut net,
        sgd: &mut sgd,
        method: method.as_mut(),
    };
    let (store, result) = resume::open(cfg, options.fresh, device, trainee)?;
    let seconds_before = result.seconds;
    let mut run = Run {
        cfg,
        stop: options.stop.clone(),
        store,
        observer,
        net,
        data,
        method,
        ratio,
        sgd,
        result,
        started_at: timestamp(),
        clock: Instant::now(),
        seconds_before,
        graphs_failed: false,
    };
    // Once the job runs, a file that cannot be written (a full disk) fails the job, not the input,
    // and so does an error inside libtorch (out of memory), which tch raises as a panic.
    let outcome = catching_panics(|| run.train()).map_err(|e| match e {
        RunError::Store(e) => RunError::Failed(e.into()),
        other => other,
    });
    let status = match &outcome {
        Ok(()) => Status::Completed,
        Err(RunError::Failed(_)) => Status::Failed,
        Err(RunError::Stopped(_)) => Status::Stopped,
        Err(_) => return outcome.map(|()| run.result),
    };
    let error = match &outcome {
        Err(RunError::Failed(failure)) => Some(failure.to_string()),
        _ => None,
    };
    if status != Status::Completed {
        run.result.status = status;
        run.result.error = error.clone();
        run.result.seconds = run.seconds_before + run.clock.elapsed().as_secs_f64();
        if let Err(source) = run.store.write_result(&run.result) {
            // The committed resume point and the last result.json stay as they were.
            let reason = error.unwrap_or_else(|| "stopped".into());
            return Err(Failure::Unrecorded { reason, source }.into());
        }
    }
    // The outcome stands even if the event log cannot take its last line.
    let logged = run.emit(Event::Ended { status, error });
    outcome?;
    logged?;
    Ok(run.result)
}

/// The job's data on `device`; a missing official dataset is fetched when `download` allows.
pub fn load_data(
    cfg: &JobConfig,
    device: Device,
    download: bool,
    progress: bool,
) -> Result<Splits, data::DataError> {
    data::load(&DataRequest {
        kind: cfg.dataset,
        data_dir: &cfg.data_dir,
        device,
        limit_train: cfg.limit_train,
        limit_test: cfg.limit_test,
        synthetic: cfg.synthetic,
        download,
        mirror: cfg.mirror.as_deref(),
        progress,
    })
}

/// The job's network for its data's image shape and class count.
pub fn model_spec(cfg: &JobConfig, data: &Splits) -> ModelSpec {
    let [in_channels, height, width] = data.shape;
    ModelSpec {
        kind: cfg.model,
        in_channels,
        height,
        width,
        classes: data.classes,
        dropout: cfg.dropout,
    }
}

fn timestamp() -> String {
    chrono::Local::now().format("%Y/%m/%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::JobOverrides;

    /// Runs of different seeds train and are tested on the same `synthetic` images, as on a real
    /// dataset, so that their results pair up image by image (docs/protocol.md#random-streams).
    #[test]
    fn the_synthetic_data_is_the_same_for_every_seed() {
        let study = crate::config::open(None, &[]).unwrap();
        let job = "pgd-at/synthetic/adarat".parse().unwrap();
        let images = |seed| {
            let overrides = JobOverrides {
                seed: Some(seed),
                limit_train: Some(30),
                limit_test: Some(30),
                ..Default::default()
            };
            let cfg = study.resolve(&job, &overrides).unwrap();
            let data = load_data(&cfg, Device::Cpu, false, false).unwrap();
            let bytes = |t: &tch::Tensor| Vec::<u8>::try_from(&t.flatten(0, -1)).unwrap();
            (bytes(&data.train.images), bytes(&data.test.images))
        };
        let (train, test) = images(1);
        assert_eq!((&train, &test), (&images(2).0, &images(2).1));
        assert_ne!(train[..test.len()], test[..], "the splits are distinct");
    }
}
