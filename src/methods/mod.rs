//! Training methods (reference-behaviour.md section 6). A method crafts a batch's adversarial
//! examples and returns its losses; the ratio mode is applied afterwards by [`crate::ratio`], the
//! same way for every method.
pub mod distillation;
pub mod iad;
pub mod kd_at;
pub mod pgd_at;
pub mod teachers;

use crate::attacks::cross_entropy;
use crate::config::{BnMode, JobConfig};
use crate::data::Batch;
use crate::models::{ModelSpec, Network};
use crate::ratio::LossTerms;
use crate::vocab::Method;
use tch::{Device, Kind, Tensor};
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

pub trait TrainingMethod {
    /// Crafts the batch's adversarial examples and computes the losses of epoch `epoch` (0-indexed).
    fn losses(&mut self, net: &Network, batch: &Batch, epoch: usize) -> StepLosses;
}

/// Whether this version trains the job's method; checks jobs up front, loading nothing.
pub fn check(cfg: &JobConfig) -> Result<(), String> {
    match cfg.method {
        Method::PgdAt | Method::KdAt | Method::Iad => Ok(()),
        other => Err(unavailable(other)),
    }
}

fn unavailable(method: Method) -> String {
    format!("method {method} is not available in this version of adarat yet (pgd-at, kd-at and iad are)")
}

/// The method of a job whose network is `spec` on `device` (teachers are loaded here, so before
/// the student's seeding, as the reference does), or a message saying why it cannot run.
pub fn build(
    cfg: &JobConfig,
    spec: &ModelSpec,
    device: Device,
) -> Result<Box<dyn TrainingMethod>, String> {
    match cfg.method {
        Method::PgdAt => Ok(Box::new(pgd_at::PgdAt::new(cfg))),
        Method::KdAt => Ok(Box::new(kd_at::KdAt::new(
            cfg,
            Teachers::load(cfg, spec, device)?,
        )?)),
        Method::Iad => Ok(Box::new(iad::Iad::new(
            cfg,
            Teachers::load(cfg, spec, device)?,
        )?)),
        other => Err(unavailable(other)),
    }
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

/// Whether the training attack sees the network in train mode (quirk Q2).
pub(crate) fn attack_in_train_mode(cfg: &JobConfig) -> bool {
    cfg.attack.bn_mode == BnMode::Train
}

/// Number of correct predictions, kept on the device.
pub fn correct(logits: &Tensor, labels: &Tensor) -> Tensor {
    logits.argmax(-1, false).eq_tensor(labels).sum(Kind::Float)
}
