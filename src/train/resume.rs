//! Resuming (docs/run-folder.md#resumejson-and-the-resume-point-files): a job's run folder is
//! opened fresh or at its last committed epoch, whose weights, SGD momentum and method state are
//! loaded back; after every epoch the next point's files are written.
use super::error::{InputError, ResumeFileError, RunError};
use crate::config::JobConfig;
use crate::methods::TrainingMethod;
use crate::models::Network;
use crate::optim::Sgd;
use crate::store::result::RunResult;
use crate::store::{Opening, PointPart, ResumePoint, RunStore, StoreError};
use crate::vocab::Status;
use std::path::Path;
use tch::{Device, Tensor};

/// What a run trains, and carries from one epoch to the next.
pub(super) struct Trainee<'a> {
    pub net: &'a mut Network,
    pub sgd: &'a mut Sgd,
    pub method: &'a mut dyn TrainingMethod,
}

/// The job's run folder, and its result so far: new, or that of the resume point, whose state is
/// loaded into `trainee`.
pub(super) fn open(
    cfg: &JobConfig,
    fresh: bool,
    device: Device,
    trainee: Trainee,
) -> Result<(RunStore, RunResult), RunError> {
    let (store, opening) = RunStore::open(cfg, fresh)?;
    let result = match opening {
        Opening::Resume { mut result, point } => {
            restore(&store, &point, trainee)?;
            result.epochs_log.truncate(point.epochs_done);
            result.epochs_done = point.epochs_done;
            result.status = Status::Running;
            result.error = None;
            result.final_table = None;
            *result
        }
        Opening::Fresh | Opening::Archived(_) => new_result(cfg, device),
    };
    Ok((store, result))
}

fn restore(store: &RunStore, point: &ResumePoint, trainee: Trainee) -> Result<(), InputError> {
    if let Some(file) = point.file(PointPart::Weights) {
        trainee.net.load(&store.path(&file))?;
    }
    if let Some(file) = point.file(PointPart::Optimizer) {
        restore_part(&store.path(&file), |saved| {
            Ok(trainee.sgd.restore_momentum(saved)?)
        })?;
    }
    if let Some(file) = point.file(PointPart::Method) {
        restore_part(&store.path(&file), |saved| {
            Ok(trainee.method.restore_state(saved)?)
        })?;
    }
    Ok(())
}

/// Reads the tensors of one file of the point and hands them to `restore`.
fn restore_part(
    path: &Path,
    restore: impl FnOnce(Vec<(String, Tensor)>) -> Result<(), ResumeFileError>,
) -> Result<(), InputError> {
    Tensor::read_safetensors(path)
        .map_err(ResumeFileError::Unreadable)
        .and_then(restore)
        .map_err(|source| InputError::ResumeFile {
            path: path.to_path_buf(),
            source,
        })
}

/// Writes the files of the point after `epochs_done` epochs (not yet committed).
pub(super) fn write_point(
    store: &RunStore,
    cfg: &JobConfig,
    trainee: Trainee,
    epochs_done: usize,
) -> Result<ResumePoint, StoreError> {
    let momentum = if cfg.reset_momentum_each_epoch {
        Vec::new()
    } else {
        trainee.sgd.momentum_buffers()
    };
    let parts = [
        (PointPart::Weights, trainee.net.state_dict()),
        (PointPart::Optimizer, momentum),
        (PointPart::Method, trainee.method.resume_state()),
    ];
    let mut point = ResumePoint {
        epochs_done,
        ..Default::default()
    };
    for (part, tensors) in parts {
        if part == PointPart::Weights || !tensors.is_empty() {
            let (name, md5) = store.write_point_part(part, epochs_done, &tensors)?;
            point.files.insert(name, md5);
        }
    }
    Ok(point)
}

fn new_result(cfg: &JobConfig, device: Device) -> RunResult {
    RunResult {
        job: cfg.name(),
        method: cfg.method(),
        dataset: cfg.dataset,
        mode: cfg.mode,
        model: cfg.model,
        seed: cfg.seed,
        protocol: cfg.protocol,
        device: crate::device::name(device),
        status: Status::Running,
        error: None,
        epochs: cfg.epochs,
        epochs_done: 0,
        seconds: 0.0,
        epochs_log: Vec::new(),
        peaks: None,
        final_table: None,
    }
}
