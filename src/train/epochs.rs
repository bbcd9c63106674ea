//! The epoch loop: each epoch's training steps (eager, or replayed from a CUDA graph), the per-epoch
//! test, the epoch's record, and the resume point committed after it.
use super::error::{Failure, RunError, StopPoint};
use super::ledger::{BatchLedger, EpochTotals, StepTensors};
use super::resume::{self, Trainee};
use super::{cuda_graph, evaluate, precision, Run};
use crate::data::Batch;
use crate::faults::StepPoint;
use crate::losses::correct;
use crate::models::Network;
use crate::optim::schedule;
use crate::store::events::Event;
use crate::store::result::{EpochRecord, Peaks};
use crate::store::{train_log, MODEL_FILE};
use crate::streams::{self, Purpose};
use crate::vocab::{Mode, Status};
use std::time::Instant;
use tch::{Kind, Tensor};

/// Eager steps of each epoch before its step is captured: cuDNN's autotuning, the gradients' and the
/// momentum buffers' first allocation all happen outside the graph.
const EAGER_STEPS_BEFORE_CAPTURE: usize = 2;

impl Run<'_> {
    pub(super) fn emit(&mut self, event: Event) -> Result<(), RunError> {
        self.store
            .append_events(std::slice::from_ref(&event))
            .map_err(Failure::from)?;
        self.observer.observe(&event);
        Ok(())
    }

    /// Ends the run here when a stop was requested: the last completed epoch is the resume point.
    fn check_stop(&self, epoch: usize, batch: usize) -> Result<(), StopPoint> {
        if !self.stop.requested() {
            return Ok(());
        }
        Err(self.stopped_at(epoch, batch))
    }

    fn stopped_at(&self, epoch: usize, batch: usize) -> StopPoint {
        StopPoint::Training {
            epoch,
            batch,
            resumes_after: self.result.epochs_done,
        }
    }

    /// The remaining epochs, the final evaluation, the model file and the reports.
    pub(super) fn train(&mut self) -> Result<(), RunError> {
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
        self.store
            .write_result(&self.result)
            .map_err(Failure::from)?;
        for epoch in first_epoch..cfg.epochs {
            self.epoch(epoch)?;
        }
        if self.method.attacked_finally() && !cfg.evaluation.final_attacks.is_empty() {
            self.check_stop(cfg.epochs, 0)?;
            self.emit(Event::FinalStarted)?;
            let table = self.final_table()?;
            self.result.final_table = Some(table.clone());
            self.emit(Event::FinalFinished { table })?;
        }
        self.evaluated()
            .save(&self.store.path(MODEL_FILE))
            .map_err(Failure::SavingModel)?;
        self.result.status = Status::Completed;
        self.result.seconds = self.seconds_before + self.clock.elapsed().as_secs_f64();
        self.write_reports()?;
        self.store.remove_resume_point();
        Ok(())
    }

    /// One epoch: its training pass, the per-epoch test, its record and the resume point after it.
    fn epoch(&mut self, epoch: usize) -> Result<(), RunError> {
        let lr = self.start_epoch(epoch)?;
        let started = Instant::now();
        let totals = self.train_pass(epoch, lr)?;
        let seconds = started.elapsed().as_secs_f64();
        let record = self.test(epoch, lr, &totals, seconds)?;
        self.commit_epoch(epoch, record)
    }

    /// The epoch's seed, learning rate (returned) and momentum, announced.
    fn start_epoch(&mut self, epoch: usize) -> Result<f64, RunError> {
        let cfg = self.cfg;
        // Each epoch its own stream, so a resumed run draws what an uninterrupted one would
        // (docs/protocol.md#random-streams).
        tch::manual_seed(streams::torch_seed(cfg.seed, Purpose::Epoch, epoch as u64));
        let lr = schedule::learning_rate(&cfg.lr_schedule, cfg.learning_rate, epoch);
        if cfg.reset_momentum_each_epoch {
            self.sgd.reset_momentum();
        }
        self.emit(Event::EpochStarted {
            epoch: epoch + 1,
            lr,
        })?;
        Ok(lr)
    }

    /// The epoch's training steps and the method's work after each, their statistics flushed as
    /// events a few times a second; returns the epoch's totals.
    fn train_pass(&mut self, epoch: usize, lr: f64) -> Result<EpochTotals, RunError> {
        let cfg = self.cfg;
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
                Some(g) if g.fits(&batch) => g.replay(&batch).map_err(Failure::Graph)?,
                _ if use_graph && index == EAGER_STEPS_BEFORE_CAPTURE => {
                    self.captured_step(&batch, epoch, lr, &none, &mut graph)?
                }
                _ => self.step(&batch, epoch, lr, &none),
            };
            self.method
                .after_step(&mut self.net, &batch, epoch, lr)
                .map_err(Failure::Method)?;
            ledger.push(batch.labels.size()[0] as usize, row);
            if ledger.due() {
                if let Some(event) = ledger.flush(epoch + 1)? {
                    self.emit(event)?;
                }
            }
        }
        if let Some(event) = ledger.flush(epoch + 1)? {
            self.emit(event)?;
        }
        Ok(ledger.totals)
    }

    /// The step on `batch` captured into `graph` and replayed; when it cannot be captured, CUDA
    /// graphs are off for the rest of the run and the step runs eagerly.
    fn captured_step(
        &mut self,
        batch: &Batch,
        epoch: usize,
        lr: f64,
        none: &Tensor,
        graph: &mut Option<cuda_graph::StepGraph>,
    ) -> Result<Tensor, RunError> {
        match cuda_graph::StepGraph::capture(batch, |b| self.step(b, epoch, lr, none)) {
            Ok(mut captured) => {
                let row = captured.replay(batch).map_err(Failure::Graph)?;
                *graph = Some(captured);
                Ok(row)
            }
            Err(reason) => {
                self.graphs_failed = true;
                self.emit(Event::Warning {
                    message: format!(
                        "CUDA graphs off for this run ({reason}); training goes on eagerly"
                    ),
                })?;
                Ok(self.step(batch, epoch, lr, none))
            }
        }
    }

    /// The per-epoch test after `seconds` of training with totals `t`, and the epoch's record.
    fn test(
        &mut self,
        epoch: usize,
        lr: f64,
        t: &EpochTotals,
        seconds: f64,
    ) -> Result<EpochRecord, RunError> {
        let cfg = self.cfg;
        self.check_stop(epoch + 1, t.batches)?;
        self.emit(Event::Testing { epoch: epoch + 1 })?;
        let test_started = Instant::now();
        // A stop in the test ends the run as one in the epoch's training would: the epoch is redone.
        let stopped = || self.stop.requested();
        let stop_here = |_: evaluate::Stopped| self.stopped_at(epoch + 1, t.batches);
        let test = evaluate::test_epoch(self.evaluated(), &self.data.test, cfg, &stopped)
            .map_err(stop_here)?;
        let test_seconds = test_started.elapsed().as_secs_f64();
        let alongside = (self.method.tested_alongside())
            .map(|net| evaluate::test_epoch(net, &self.data.test, cfg, &stopped))
            .transpose()
            .map_err(stop_here)?;
        Ok(EpochRecord {
            epoch: epoch + 1,
            lr,
            train_loss: t.mean_loss(),
            train_clean_acc: t.clean_accuracy(),
            train_adv_acc: t.adversarial_accuracy(),
            test_clean_acc: test.clean_acc,
            test_fgsm_acc: test.fgsm_acc,
            test_pgd_acc: test.pgd_acc,
            ratio_mean: t.mean_ratio(),
            clean_branch_share: (cfg.mode == Mode::AdaRat).then(|| t.clean_only_share()),
            seconds,
            images_per_second: t.images as f64 / seconds.max(1e-9),
            test_seconds,
            train_teacher_acc: t.teacher_accuracy(),
            test_st_clean_acc: alongside.as_ref().map(|m| m.clean_acc),
            test_st_pgd_acc: alongside.as_ref().map(|m| m.pgd_acc),
            train_clean_loss: t.mean_standard_loss(),
            train_adv_loss: t.mean_adversarial_loss(),
            test_clean_loss: test.clean_loss,
            test_fgsm_loss: test.fgsm_loss,
            test_pgd_loss: test.pgd_loss,
            finished_at: super::timestamp(),
        })
    }

    /// `record` into the result, then the resume point after the epoch committed.
    fn commit_epoch(&mut self, epoch: usize, record: EpochRecord) -> Result<(), RunError> {
        self.result.epochs_log.push(record.clone());
        self.result.epochs_done = epoch + 1;
        self.result.peaks = Peaks::of(&self.result.epochs_log);
        self.result.seconds = self.seconds_before + self.clock.elapsed().as_secs_f64();
        // The point's files, then the reports, then the commit: a kill between leaves the previous
        // point committed and its files whole, and a rerun retrains this epoch.
        let trainee = Trainee {
            net: &mut self.net,
            sgd: &mut self.sgd,
            method: self.method.as_mut(),
        };
        let point = resume::write_point(&self.store, self.cfg, trainee, epoch + 1)
            .map_err(Failure::from)?;
        self.write_reports()?;
        self.store
            .commit_resume_point(&point)
            .map_err(Failure::from)?;
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
        crate::thread_modes::no_grad(|| {
            StepTensors {
                loss: &weighted.loss,
                standard_loss: &standard,
                adversarial_loss: &adversarial,
                clean_correct: correct(&step.clean_logits, &batch.labels),
                adversarial_correct: correct(&step.adversarial_logits, &batch.labels),
                ratio: weighted.ratio.as_ref(),
                clean_only: weighted.clean_only.as_ref(),
                teacher_correct: step.teacher_correct.as_ref(),
            }
            .row(none)
        })
    }

    /// The network that is tested, finally evaluated and saved (Generalist: its global model).
    pub(super) fn evaluated(&self) -> &Network {
        self.method.evaluated().unwrap_or(&self.net)
    }

    pub(super) fn write_reports(&self) -> Result<(), Failure> {
        self.store.write_result(&self.result)?;
        let log = train_log::render(
            self.cfg,
            self.method.train_log(),
            &self.started_at,
            &self.result.epochs_log,
            self.result.final_table.as_ref(),
        );
        self.store.write_train_log(&log)?;
        Ok(())
    }
}
