//! One run of a job: seeding, data, model, the epochs of training with the per-epoch test, the
//! final evaluation, and the run folder kept current after every epoch.
pub mod attack_table;
pub mod cuda_graph;
pub mod evaluate;
pub mod precision;

use crate::config::JobConfig;
use crate::data::{self, Batch, DataRequest, Splits};
use crate::faults::StepPoint;
use crate::losses::correct;
use crate::methods::{self, TrainingMethod};
use crate::models::{ModelSpec, Network};
use crate::optim::{schedule, Sgd};
use crate::ratio::Ratio;
use crate::store::events::{BatchSample, Event, Observer};
use crate::store::result::{EpochRecord, FinalTable, Peaks, RunResult, Status};
use crate::store::{
    train_log, Opening, PointPart, ResumePoint, RunStore, StoreError, FINAL_PROGRESS_FILE,
};
use crate::vocab::Method;
use attack_table::{AttackTable, Progress, Tally};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tch::{Device, Kind, Tensor};

#[derive(thiserror::Error, Debug)]
pub enum RunError {
    /// The job cannot start: bad data, device, checkpoint or method.
    #[error("{0}")]
    Input(String),
    /// The job started and failed (non-finite loss, ...); `result.json` says so.
    #[error("{0}")]
    Failed(String),
    /// A stop was requested (a signal, the console's `x`); the run is resumable.
    #[error("{0}")]
    Stopped(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

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

/// Each epoch draws from its own seed, so a resumed run sees the same randomness as an
/// uninterrupted one.
fn epoch_seed(seed: u64, epoch: usize) -> i64 {
    (seed as i64)
        .wrapping_mul(1_000_003)
        .wrapping_add(epoch as i64 + 1)
}

/// Per-batch scalars that stay on the device until a flush: one host sync per flush, not per batch.
struct BatchLedger {
    pending: Vec<(usize, Tensor)>,
    last_flush: Instant,
    totals: EpochTotals,
}

#[derive(Default)]
struct EpochTotals {
    batches: usize,
    images: usize,
    loss: f64,
    clean_loss: f64,
    adv_loss: f64,
    clean_correct: f64,
    adv_correct: f64,
    ratio_sum: f64,
    ratio_batches: usize,
    clean_only_batches: usize,
    /// Correct robust-teacher predictions on the adversarial examples; None without a teacher.
    teacher_correct: Option<f64>,
}

const FLUSH_BATCHES: usize = 16;
/// Eager steps of each epoch before its step is captured: cuDNN's autotuning, the gradients' and the
/// momentum buffers' first allocation all happen outside the graph.
const EAGER_STEPS_BEFORE_CAPTURE: usize = 2;
const FLUSH_INTERVAL: Duration = Duration::from_millis(1000);

impl BatchLedger {
    fn new() -> BatchLedger {
        BatchLedger {
            pending: Vec::new(),
            last_flush: Instant::now(),
            totals: EpochTotals::default(),
        }
    }

    fn due(&self) -> bool {
        self.pending.len() >= FLUSH_BATCHES || self.last_flush.elapsed() >= FLUSH_INTERVAL
    }

    /// Reads the pending rows in one transfer and turns them into the `Batches` event.
    fn flush(&mut self, epoch: usize) -> Result<Option<Event>, String> {
        let seconds = self.last_flush.elapsed().as_secs_f64();
        self.last_flush = Instant::now();
        if self.pending.is_empty() {
            return Ok(None);
        }
        let images = self.pending.iter().map(|(size, _)| size).sum();
        let rows: Vec<Tensor> = self
            .pending
            .iter()
            .map(|(_, row)| row.shallow_clone())
            .collect();
        let values: Vec<f64> =
            Vec::try_from(Tensor::stack(&rows, 0).to_kind(Kind::Double).view(-1))
                .map_err(|e| format!("reading batch statistics: {e}"))?;
        let mut samples = Vec::with_capacity(rows.len());
        for ((size, _), v) in self.pending.drain(..).zip(values.chunks(ROW)) {
            let t = &mut self.totals;
            t.batches += 1;
            let batch = t.batches;
            if !v[0].is_finite() {
                return Err(format!(
                    "non-finite loss ({}) at epoch {epoch}, batch {batch}",
                    v[0]
                ));
            }
            t.images += size;
            t.loss += v[0];
            t.clean_loss += v[1];
            t.adv_loss += v[2];
            t.clean_correct += v[3];
            t.adv_correct += v[4];
            let clean_only = (!v[6].is_nan()).then_some(v[6] > 0.5);
            let ratio = (!v[5].is_nan() && clean_only != Some(true)).then_some(v[5]);
            if let Some(r) = ratio {
                t.ratio_sum += r;
                t.ratio_batches += 1;
            }
            if clean_only == Some(true) {
                t.clean_only_batches += 1;
            }
            if !v[7].is_nan() {
                *t.teacher_correct.get_or_insert(0.0) += v[7];
            }
            samples.push(BatchSample {
                epoch,
                batch,
                loss: v[0],
                clean_loss: v[1],
                adv_loss: v[2],
                clean_acc: 100.0 * v[3] / size as f64,
                adv_acc: 100.0 * v[4] / size as f64,
                ratio,
                clean_only,
            });
        }
        Ok(Some(Event::Batches {
            samples,
            images,
            seconds,
        }))
    }
}

/// loss, L_s, L_a, clean correct, adversarial correct, ratio (NaN: none), clean-only (NaN: none),
/// teacher correct (NaN: none).
const ROW: usize = 8;

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
    let device = crate::device::resolve(cfg.device).map_err(|e| RunError::Input(e.to_string()))?;
    methods::check(cfg).map_err(RunError::Input)?;
    // Loading draws nothing from torch's generator (synthetic data has its own, seeded).
    let data = load_data(cfg, device, options.download, options.progress)
        .map_err(|e| RunError::Input(e.to_string()))?;
    run_with_data(cfg, data, options, observer)
}

/// [`run`] on data already on the job's device (`adarat bench` brings its own images).
pub fn run_with_data(
    cfg: &JobConfig,
    data: Splits,
    options: RunOptions,
    observer: &mut dyn Observer,
) -> Result<RunResult, RunError> {
    // Whatever an earlier job on this thread left (docs/architecture.md#errors-and-exit-statuses).
    crate::modes::reset();
    let device = crate::device::resolve(cfg.device).map_err(|e| RunError::Input(e.to_string()))?;
    methods::check(cfg).map_err(RunError::Input)?;
    if device.is_cuda() {
        tch::Cuda::cudnn_set_benchmark(cfg.speed.cudnn_benchmark);
    }
    let ratio = Ratio::new(cfg.mode, cfg.ratio, cfg.attack.epsilon)
        .map_err(RunError::Input)?
        .with_barrier_at_threshold(cfg.method() == Method::Generalist);
    let spec = model_spec(cfg, &data);
    // Teachers are built and loaded before the seeding, as the reference does (section 1), so
    // the student starts as it would in any other method.
    let mut method = methods::build(cfg, &spec, device).map_err(RunError::Input)?;
    // Seed before anything random happens, model initialisation included (docs/protocol.md Q6, fixed).
    tch::manual_seed(cfg.seed as i64);
    let mut net = Network::new(&spec, device).map_err(|e| RunError::Input(e.to_string()))?;
    if cfg.speed.channels_last {
        net.use_channels_last();
    }
    method.initialise(&net).map_err(RunError::Input)?;
    let mut sgd = Sgd::new(net.parameters(), cfg.momentum, cfg.weight_decay);

    let (store, opening) = RunStore::open(cfg, options.fresh)?;
    let started_at = timestamp();
    let result = match opening {
        Opening::Resume { mut result, point } => {
            if let Some(file) = point.file(PointPart::Weights) {
                net.load(&store.path(&file))
                    .map_err(|e| RunError::Input(e.to_string()))?;
            }
            if let Some(file) = point.file(PointPart::Optimizer) {
                let path = store.path(&file);
                let saved = read_tensors(&path)?;
                sgd.restore_momentum(saved)
                    .map_err(|e| RunError::Input(format!("{}: {e}", path.display())))?;
            }
            if let Some(file) = point.file(PointPart::Method) {
                let path = store.path(&file);
                let saved = read_tensors(&path)?;
                method
                    .restore_state(saved)
                    .map_err(|e| RunError::Input(format!("{}: {e}", path.display())))?;
            }
            result.epochs_log.truncate(point.epochs_done);
            result.epochs_done = point.epochs_done;
            result.status = Status::Running;
            result.error = None;
            result.final_table = None;
            *result
        }
        Opening::Fresh | Opening::Archived(_) => new_result(cfg, device),
    };
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
        started_at,
        clock: Instant::now(),
        seconds_before,
        graphs_failed: false,
    };
    // Once the job runs, a file that cannot be written (a full disk) fails the job, not the input,
    // and so does an error inside libtorch (out of memory), which tch raises as a panic.
    let outcome = catching_panics(|| run.train()).map_err(|e| match e {
        RunError::Store(e) => RunError::Failed(e.to_string()),
        other => other,
    });
    let (status, error) = match &outcome {
        Ok(()) => (Status::Completed, None),
        Err(RunError::Failed(message)) => (Status::Failed, Some(message.clone())),
        Err(RunError::Stopped(_)) => (Status::Stopped, None),
        Err(_) => return outcome.map(|()| run.result),
    };
    if status != Status::Completed {
        run.result.status = status;
        run.result.error = error.clone();
        run.result.seconds = run.seconds_before + run.clock.elapsed().as_secs_f64();
        if let Err(e) = run.store.write_result(&run.result) {
            // The committed resume point and the last result.json stay as they were.
            let reason = error.unwrap_or_else(|| "stopped".into());
            return Err(RunError::Failed(format!(
                "{reason}; result.json could not be updated either: {e}"
            )));
        }
    }
    // The outcome stands even if the event log cannot take its last line.
    let logged = run.emit(Event::Ended { status, error });
    outcome?;
    logged.map_err(|e| RunError::Failed(e.to_string()))?;
    Ok(run.result)
}

/// Runs `job`, turning a panic into an error with its message: tch raises libtorch's errors (out of
/// memory among them) as panics. The default hook's report is replaced meanwhile by this message,
/// which names where the panic happened.
fn catching_panics<T>(job: impl FnOnce() -> Result<T, RunError>) -> Result<T, RunError> {
    static WHERE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut place) = WHERE.lock() {
            *place = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()));
        }
    }));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
    std::panic::set_hook(previous);
    outcome.unwrap_or_else(|panic| {
        let place = WHERE
            .lock()
            .ok()
            .and_then(|mut p| p.take())
            .unwrap_or_default();
        Err(RunError::Failed(format!(
            "{} (at {place})",
            panic_message(panic.as_ref())
        )))
    })
}

/// The first line of a panic's message; for a libtorch error, the first line of libtorch's own.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown error");
    // tch's unwrap prints `Torch("<libtorch message>\nException raised from ...")` on one line.
    match text.split_once("Torch(\"") {
        Some((_, libtorch)) => {
            let first = libtorch.split("\\n").next().unwrap_or(libtorch);
            format!("libtorch: {}", first.trim_end_matches("\")").trim())
        }
        None => text.lines().next().unwrap_or(text).trim().to_string(),
    }
}

/// The tally of a final evaluation a stop interrupted, to go on from; an unreadable one is
/// reported and the evaluation starts over (it costs time, never a wrong table).
fn read_final_progress(path: &std::path::Path) -> Tally {
    let Ok(bytes) = std::fs::read(path) else {
        return Tally::default();
    };
    serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        eprintln!(
            "{}: unreadable ({e}); the final evaluation starts over",
            path.display()
        );
        Tally::default()
    })
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
        seed: cfg.seed,
        download,
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

fn read_tensors(path: &std::path::Path) -> Result<Vec<(String, Tensor)>, RunError> {
    Tensor::read_safetensors(path).map_err(|e| RunError::Input(format!("{}: {e}", path.display())))
}

fn timestamp() -> String {
    chrono::Local::now().format("%Y/%m/%d %H:%M:%S").to_string()
}

fn new_result(cfg: &JobConfig, device: Device) -> RunResult {
    RunResult {
        job: cfg.job.clone(),
        method: cfg.method().to_string(),
        dataset: cfg.dataset.to_string(),
        mode: cfg.mode.to_string(),
        model: cfg.model.to_string(),
        seed: cfg.seed,
        protocol: serde_plain(&cfg.protocol),
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

/// A unit enum's serde name (`default`, `reference`).
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl Run<'_> {
    fn emit(&mut self, event: Event) -> Result<(), RunError> {
        self.store.append_events(std::slice::from_ref(&event))?;
        self.observer.observe(&event);
        Ok(())
    }

    /// Ends the run here when a stop was requested: the last completed epoch is the resume point.
    fn check_stop(&self, epoch: usize, batch: usize) -> Result<(), RunError> {
        if !self.stop.requested() {
            return Ok(());
        }
        let done = self.result.epochs_done;
        Err(RunError::Stopped(format!(
            "stopped at epoch {epoch}, batch {batch}; resumes after epoch {done}"
        )))
    }

    fn train(&mut self) -> Result<(), RunError> {
        let cfg = self.cfg;
        let first_epoch = self.result.epochs_done;
        let batches_per_epoch = self.data.train.len().div_ceil(cfg.batch_size);
        self.emit(Event::Started {
            job: cfg.job.clone(),
            epochs: cfg.epochs,
            first_epoch: first_epoch + 1,
            batches_per_epoch,
            device: self.result.device.clone(),
        })?;
        self.store.write_result(&self.result)?;
        for epoch in first_epoch..cfg.epochs {
            self.epoch(epoch)?;
        }
        if cfg.method() != Method::St && !cfg.evaluation.final_attacks.is_empty() {
            self.check_stop(cfg.epochs, 0)?;
            self.emit(Event::FinalStarted)?;
            let table = self.final_table()?;
            self.result.final_table = Some(table.clone());
            self.emit(Event::FinalFinished { table })?;
        }
        self.evaluated()
            .save(&self.store.path(crate::store::MODEL_FILE))
            .map_err(|e| RunError::Failed(e.to_string()))?;
        self.result.status = Status::Completed;
        self.result.seconds = self.seconds_before + self.clock.elapsed().as_secs_f64();
        self.write_reports()?;
        self.store.remove_resume_point();
        Ok(())
    }

    fn epoch(&mut self, epoch: usize) -> Result<(), RunError> {
        let cfg = self.cfg;
        tch::manual_seed(epoch_seed(cfg.seed, epoch));
        let lr = schedule::learning_rate(&cfg.lr_schedule, cfg.learning_rate, epoch);
        if cfg.reset_momentum_each_epoch {
            self.sgd.reset_momentum();
        }
        self.emit(Event::EpochStarted {
            epoch: epoch + 1,
            lr,
        })?;
        let started = Instant::now();
        let mut ledger = BatchLedger::new();
        let device = self.data.train.labels.device();
        let none = Tensor::full([], f64::NAN, (Kind::Float, device));
        // Captured afresh each epoch: the learning rate and the methods' epoch schedules are constants in it.
        let mut graph: Option<cuda_graph::StepGraph> = None;
        let use_graph = cfg.speed.cuda_graphs
            && device.is_cuda()
            && self.method.capturable()
            && !self.graphs_failed;
        for (index, batch) in self
            .data
            .train
            .batches(cfg.batch_size, true, cfg.augment)
            .enumerate()
        {
            self.check_stop(epoch + 1, index + 1)?;
            crate::faults::out_of_memory(StepPoint::Batch, device);
            let row = match graph.as_mut() {
                Some(g) if g.fits(&batch) => g.replay(&batch).map_err(RunError::Failed)?,
                _ if use_graph && index == EAGER_STEPS_BEFORE_CAPTURE => {
                    match cuda_graph::StepGraph::capture(&batch, |b| self.step(b, epoch, lr, &none))
                    {
                        Ok(mut captured) => {
                            let row = captured.replay(&batch).map_err(RunError::Failed)?;
                            graph = Some(captured);
                            row
                        }
                        Err(reason) => {
                            eprintln!("adarat: CUDA graphs off for this run ({reason}); training goes on eagerly");
                            self.graphs_failed = true;
                            self.step(&batch, epoch, lr, &none)
                        }
                    }
                }
                _ => self.step(&batch, epoch, lr, &none),
            };
            self.method
                .after_step(&mut self.net, &batch, epoch, lr)
                .map_err(RunError::Failed)?;
            ledger.pending.push((batch.labels.size()[0] as usize, row));
            if ledger.due() {
                if let Some(event) = ledger.flush(epoch + 1).map_err(RunError::Failed)? {
                    self.emit(event)?;
                }
            }
        }
        if let Some(event) = ledger.flush(epoch + 1).map_err(RunError::Failed)? {
            self.emit(event)?;
        }
        let seconds = started.elapsed().as_secs_f64();
        self.check_stop(epoch + 1, ledger.totals.batches)?;
        self.emit(Event::Testing { epoch: epoch + 1 })?;
        let test_started = Instant::now();
        let test = evaluate::test_epoch(self.evaluated(), &self.data.test, cfg);
        let test_seconds = test_started.elapsed().as_secs_f64();
        let alongside = self
            .method
            .tested_alongside()
            .map(|net| evaluate::test_epoch(net, &self.data.test, cfg));
        let t = &ledger.totals;
        let batches = t.batches.max(1) as f64;
        let images = t.images.max(1) as f64;
        let record = EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: t.loss / batches,
            train_clean_acc: 100.0 * t.clean_correct / images,
            train_adv_acc: 100.0 * t.adv_correct / images,
            test_clean_acc: test.clean_acc,
            test_fgsm_acc: test.fgsm_acc,
            test_pgd_acc: test.pgd_acc,
            ratio_mean: (t.ratio_batches > 0).then(|| t.ratio_sum / t.ratio_batches as f64),
            clean_branch_share: (cfg.mode == crate::vocab::Mode::AdaRat)
                .then(|| t.clean_only_batches as f64 / batches),
            seconds,
            images_per_second: t.images as f64 / seconds.max(1e-9),
            test_seconds,
            train_teacher_acc: t.teacher_correct.map(|c| 100.0 * c / images),
            test_st_clean_acc: alongside.as_ref().map(|m| m.clean_acc),
            test_st_pgd_acc: alongside.as_ref().map(|m| m.pgd_acc),
            train_clean_loss: t.clean_loss / batches,
            train_adv_loss: t.adv_loss / batches,
            test_clean_loss: test.clean_loss,
            test_fgsm_loss: test.fgsm_loss,
            test_pgd_loss: test.pgd_loss,
            finished_at: timestamp(),
        };
        self.result.epochs_log.push(record.clone());
        self.result.epochs_done = epoch + 1;
        self.result.peaks = Peaks::of(&self.result.epochs_log);
        self.result.seconds = self.seconds_before + self.clock.elapsed().as_secs_f64();
        // The point's files, then the reports, then the commit: a kill between leaves the previous
        // point committed and its files whole, and a rerun retrains this epoch.
        let point = self.write_resume_point(epoch + 1)?;
        self.write_reports()?;
        self.store.commit_resume_point(&point)?;
        crate::faults::kill_after_epoch(epoch + 1);
        self.emit(Event::EpochFinished { record })
    }

    /// One training step on `batch`: the method's losses (in the job's precision), the ratio, backward
    /// and the SGD update. Returns the batch's statistics row on the device; reads nothing back, so it
    /// can be captured in a CUDA graph.
    fn step(&mut self, batch: &Batch, epoch: usize, lr: f64, none: &Tensor) -> Tensor {
        let device = batch.labels.device();
        self.sgd.zero_grad();
        let step = precision::in_precision(self.cfg.precision, device, || {
            crate::faults::out_of_memory(StepPoint::Autocast, device);
            self.method.losses(&self.net, batch, epoch)
        });
        let (standard, adversarial) = (
            step.terms.standard.detach(),
            step.terms.adversarial.detach(),
        );
        let weighted = self.ratio.combine(step.terms);
        weighted.loss.backward();
        self.sgd.step(lr);
        crate::modes::no_grad(|| {
            let scalar = |t: &Tensor| t.to_kind(Kind::Float).view([]);
            let or_none =
                |t: &Option<Tensor>| t.as_ref().map_or_else(|| none.shallow_clone(), scalar);
            Tensor::stack(
                &[
                    scalar(&weighted.loss.detach()),
                    scalar(&standard),
                    scalar(&adversarial),
                    correct(&step.clean_logits, &batch.labels),
                    correct(&step.adversarial_logits, &batch.labels),
                    or_none(&weighted.ratio),
                    or_none(&weighted.clean_only),
                    or_none(&step.teacher_correct),
                ],
                0,
            )
        })
    }

    /// Writes the files of the point after `epochs_done` epochs (not yet committed).
    fn write_resume_point(&mut self, epochs_done: usize) -> Result<ResumePoint, RunError> {
        let momentum = if self.cfg.reset_momentum_each_epoch {
            Vec::new()
        } else {
            self.sgd.momentum_buffers()
        };
        let parts = [
            (PointPart::Weights, self.net.state_dict()),
            (PointPart::Optimizer, momentum),
            (PointPart::Method, self.method.resume_state()),
        ];
        let mut point = ResumePoint {
            epochs_done,
            ..Default::default()
        };
        for (part, tensors) in parts {
            if part == PointPart::Weights || !tensors.is_empty() {
                let (name, md5) = self.store.write_point_part(part, epochs_done, &tensors)?;
                point.files.insert(name, md5);
            }
        }
        Ok(point)
    }

    /// The final attack table of the evaluated network, its progress in the events; a stop request
    /// ends it before the next attack (a rerun goes on from the next batch not done).
    fn final_table(&mut self) -> Result<FinalTable, RunError> {
        let table = AttackTable::for_job(self.cfg);
        let progress_file = self.store.path(FINAL_PROGRESS_FILE);
        let from = read_final_progress(&progress_file);
        // `self.evaluated()`, borrowing only the fields it needs, so the observer can be borrowed too.
        let net = self.method.evaluated().unwrap_or(&self.net);
        let (store, observer, stop) = (&self.store, &mut *self.observer, &self.stop);
        let mut failure = None;
        let outcome = table.run(net, &self.data.test, from, &mut |progress| {
            let event = match progress {
                Progress::Attack {
                    attack,
                    batch,
                    batches,
                } => {
                    if stop.requested() {
                        failure = Some(RunError::Stopped(format!(
                            "stopped in the final evaluation at batch {batch}; it goes on from there when run again"
                        )));
                        return Err(String::new());
                    }
                    Event::FinalAttack {
                        attack,
                        batch,
                        batches,
                    }
                }
                Progress::Batch {
                    images_done,
                    images,
                    table,
                    tally,
                } => {
                    let bytes = serde_json::to_vec(&tally).unwrap_or_default();
                    if let Err(e) = crate::store::write_atomically(&progress_file, &bytes) {
                        failure = Some(RunError::Failed(e.to_string()));
                        return Err(String::new());
                    }
                    Event::FinalBatch {
                        images_done,
                        images,
                        table: *table,
                    }
                }
            };
            if let Err(e) = store.append_events(std::slice::from_ref(&event)) {
                failure = Some(e.into());
                return Err(String::new());
            }
            observer.observe(&event);
            Ok(())
        });
        match (outcome, failure) {
            (Ok(table), _) => {
                // Done: nothing to go on from any more.
                let _ = std::fs::remove_file(&progress_file);
                Ok(table)
            }
            (Err(_), Some(failure)) => Err(failure),
            (Err(message), None) => Err(RunError::Failed(message)),
        }
    }

    /// The network that is tested, finally evaluated and saved (Generalist: its global model).
    fn evaluated(&self) -> &Network {
        self.method.evaluated().unwrap_or(&self.net)
    }

    fn write_reports(&self) -> Result<(), RunError> {
        self.store.write_result(&self.result)?;
        let log = train_log::render(
            self.cfg,
            &self.started_at,
            &self.result.epochs_log,
            self.result.final_table.as_ref(),
        );
        self.store.write_train_log(&log)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_final_progress_file_starts_the_evaluation_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(crate::store::FINAL_PROGRESS_FILE);
        assert_eq!(read_final_progress(&path), Tally::default());
        std::fs::write(
            &path,
            br#"{"key": "x", "batches": 3, "images": 12, "correct": {"#,
        )
        .unwrap();
        assert_eq!(read_final_progress(&path).batches(), 0);
        std::fs::write(
            &path,
            br#"{"key":"k","batches":3,"images":12,"correct":{},"sub_attacks":{},"seconds":{}}"#,
        )
        .unwrap();
        assert_eq!(read_final_progress(&path).batches(), 3);
    }
}
