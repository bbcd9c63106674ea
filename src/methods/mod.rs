//! Training methods (docs/protocol.md#methods). A method crafts a batch's adversarial
//! examples and returns its losses; the ratio mode is applied afterwards by [`crate::ratio`], the
//! same way for every method.
pub mod dat;
pub mod distillation;
pub mod fat;
pub mod generalist;
pub mod iad;
pub mod kd_at;
pub mod pgd_at;
pub mod st;
pub mod teachers;
pub mod trades;

use crate::attacks::{Pgd, RandomStart};
use crate::config::{BnMode, JobConfig, MethodParams};
use crate::data::Batch;
use crate::losses::cross_entropy;
use crate::models::{ModelSpec, Network};
use crate::ratio::LossTerms;
use crate::store::train_log::Layout;
use tch::{Device, Tensor};
use teachers::Teachers;

/// What a method computed for one training batch.
pub struct StepLosses {
    pub terms: LossTerms,
    /// Train-mode logits from before the update, for the epoch's training accuracies.
    pub clean_logits: Tensor,
    pub adversarial_logits: Tensor,
    /// How many of the batch's adversarial examples the robust teacher classifies correctly
    /// (KD-AT's `teacher` statistic, section 7), on the device; None without a teacher.
    pub teacher_correct: Option<Tensor>,
}

/// A training method: its batches' losses, and through the hooks with defaults what else its
/// research code does differently from the main scripts' PGD-AT.
pub trait TrainingMethod {
    /// Crafts the batch's adversarial examples and computes the losses of epoch `epoch` (0-indexed).
    fn losses(&mut self, net: &Network, batch: &Batch, epoch: usize) -> StepLosses;

    /// The table its `train.log` holds, as its research code writes it.
    fn train_log(&self) -> Layout;

    /// Whether a standard loss exactly at AdaRAT's switch takes the barrier branch rather than the
    /// clean-only one, as the main scripts' `L_s ≥ switch·u` does (docs/protocol.md Q19).
    fn barrier_at_threshold(&self) -> bool {
        false
    }

    /// Whether the run ends with the final attack table (the job's `final_attacks`).
    fn attacked_finally(&self) -> bool {
        true
    }

    /// Sets the method's own networks from the freshly built `net`, before any resume.
    fn initialise(&mut self, _net: &Network) -> Result<(), MethodError> {
        Ok(())
    }

    /// Work after the run's optimizer step on `net` with learning rate `lr` (Generalist's ST
    /// learner, EMA teachers and communication, section 6.7).
    fn after_step(
        &mut self,
        _net: &mut Network,
        _batch: &Batch,
        _epoch: usize,
        _lr: f64,
    ) -> Result<(), MethodError> {
        Ok(())
    }

    /// The network that the per-epoch test and the final evaluation see and that is saved as the
    /// run's model; None: the trained `net` itself.
    fn evaluated(&self) -> Option<&Network> {
        None
    }

    /// A second network tested after each epoch beside the evaluated one (Generalist's ST
    /// teacher, 6.7); None for the other methods.
    fn tested_alongside(&self) -> Option<&Network> {
        None
    }

    /// Whether [`TrainingMethod::losses`] may be captured in a CUDA graph and replayed: it reads nothing
    /// back to the host and changes no host-side state from batch to batch.
    fn capturable(&self) -> bool {
        true
    }

    /// The method's own state that a resumed run needs, saved at each epoch end.
    fn resume_state(&self) -> Vec<(String, Tensor)> {
        Vec::new()
    }

    /// Restores what [`TrainingMethod::resume_state`] saved.
    fn restore_state(&mut self, _saved: Vec<(String, Tensor)>) -> Result<(), MethodError> {
        Ok(())
    }
}

/// Why a method cannot be built, or cannot go on (docs/architecture.md#errors-and-exit-statuses).
#[derive(thiserror::Error, Debug)]
pub enum MethodError {
    #[error("{job}: generalist needs at least one mix point")]
    NoMixPoints { job: String },
    #[error("fat needs one more τ than boundaries, got {taus:?} and {boundaries:?}")]
    FatSchedule {
        taus: Vec<usize>,
        boundaries: Vec<usize>,
    },
    #[error("{method} learns from no teachers")]
    NoTeachers { method: crate::vocab::Method },
    /// `what` names the teacher: "its robust teacher pgd-at/cifar10/baseline".
    #[error("{what} has no finished run in {} (adarat run trains it first)", folder.display())]
    TeacherNotRun {
        what: String,
        folder: std::path::PathBuf,
    },
    #[error("{what} does not fit the student's {model}: {source}")]
    TeacherMismatch {
        what: String,
        model: crate::vocab::ModelKind,
        source: Box<crate::models::ModelError>,
    },
    /// A network the method keeps beside the trained one (teachers, Generalist's learners).
    #[error("{what}: {source}")]
    Network {
        what: String,
        source: Box<crate::models::ModelError>,
    },
    #[error("resume state lacks `{key}`")]
    MissingState { key: String },
    #[error("resume state `{key}`: {source}")]
    StateMismatch { key: String, source: tch::TchError },
    #[error(transparent)]
    Momentum(#[from] crate::optim::MomentumError),
}

/// Whether this version trains the job's method; checks jobs up front, loading nothing.
pub fn check(cfg: &JobConfig) -> Result<(), MethodError> {
    match &cfg.params {
        MethodParams::Generalist(params) if params.mix_points.is_empty() => {
            Err(MethodError::NoMixPoints {
                job: cfg.job.clone(),
            })
        }
        _ => Ok(()),
    }
}

/// The method of a job whose network is `spec` on `device` (teachers are loaded here, so before
/// the student's seeding, as the reference does), or a message saying why it cannot run.
pub fn build(
    cfg: &JobConfig,
    spec: &ModelSpec,
    device: Device,
) -> Result<Box<dyn TrainingMethod>, MethodError> {
    Ok(match &cfg.params {
        MethodParams::St => Box::new(st::St),
        MethodParams::PgdAt => Box::new(pgd_at::PgdAt::new(cfg)),
        MethodParams::Fat(params) => Box::new(fat::Fat::new(cfg, params)?),
        MethodParams::Dat(params) => Box::new(dat::Dat::new(cfg, *params)),
        MethodParams::Trades(params) => Box::new(trades::Trades::new(cfg, *params)),
        MethodParams::KdAt(params) => Box::new(kd_at::KdAt::new(
            cfg,
            *params,
            Teachers::load(cfg, spec, device)?,
        )),
        MethodParams::Iad(params) => Box::new(iad::Iad::new(
            cfg,
            *params,
            Teachers::load(cfg, spec, device)?,
        )),
        MethodParams::Generalist(params) => {
            Box::new(generalist::Generalist::new(cfg, params, spec, device)?)
        }
    })
}

/// Clean and adversarial train-mode forwards (in this order, as the reference) and their CE losses,
/// the `L_s` and `L_a` shared by the CE-based methods.
pub(crate) fn clean_and_adversarial_ce(
    net: &Network,
    batch: &Batch,
    adversarial: &Tensor,
) -> (Tensor, Tensor, Tensor, Tensor) {
    let clean_logits = net.forward_t(&batch.images, true);
    let adversarial_logits = net.forward_t(adversarial, true);
    let standard = cross_entropy(&clean_logits, &batch.labels);
    let adversarial_loss = cross_entropy(&adversarial_logits, &batch.labels);
    (clean_logits, adversarial_logits, standard, adversarial_loss)
}

/// The step of the methods whose losses are PGD-AT's with their own adversarial examples (PGD-AT,
/// FAT, DAT; sections 6.1 to 6.3): `L_s = CE(f(x), y)`, `L_a = CE(f(x'), y)`, baseline `L_a`.
pub(crate) fn cross_entropy_step(net: &Network, batch: &Batch, adversarial: &Tensor) -> StepLosses {
    let (clean_logits, adversarial_logits, standard, adversarial_loss) =
        clean_and_adversarial_ce(net, batch, adversarial);
    StepLosses {
        terms: LossTerms::adversarial_baseline(standard, adversarial_loss),
        clean_logits,
        adversarial_logits,
        teacher_correct: None,
    }
}

/// The job's training PGD (4.1): its ε, α and K from a uniform random start.
pub(crate) fn training_pgd(cfg: &JobConfig) -> Pgd {
    Pgd {
        epsilon: cfg.attack.epsilon,
        step_size: cfg.attack.step_size,
        steps: cfg.attack.steps,
        start: RandomStart::Uniform,
    }
}

/// PGD-CE training examples (4.1), crafted with the network in train or eval mode.
pub(crate) fn pgd_ce_examples(attack: &Pgd, net: &Network, train: bool, batch: &Batch) -> Tensor {
    attack.run(&|x| net.forward_t(x, train), &batch.images, &|logits| {
        cross_entropy(logits, &batch.labels)
    })
}

/// Whether the training attack sees the network in train mode (docs/protocol.md Q2).
pub(crate) fn attack_in_train_mode(cfg: &JobConfig) -> bool {
    cfg.attack.bn_mode == BnMode::Train
}
