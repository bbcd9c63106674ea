//! What `adarat run` shows on stderr: a progress bar per epoch and one line per finished epoch.
use crate::store::events::{Event, Observer};
use crate::store::result::{FinalTable, RunResult};
use crate::vocab::FinalAttack;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::fmt::Write;

/// `eprintln!` that never panics: a job's output may go to a pipe whose reader (the queue worker)
/// is gone, and a progress line that cannot be written must not end the run.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}
pub(super) use say;

pub(super) struct ProgressBars {
    bar: Option<ProgressBar>,
    epochs: usize,
    batches_per_epoch: usize,
}

impl ProgressBars {
    pub(super) fn new() -> ProgressBars {
        ProgressBars {
            bar: None,
            epochs: 0,
            batches_per_epoch: 0,
        }
    }

    pub(super) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// The bar over the final evaluation's batches, named after the attack running.
    fn final_bar(&mut self, attack: &str, batch: usize, batches: usize) {
        let bar = self.bar.get_or_insert_with(|| {
            let bar =
                ProgressBar::with_draw_target(Some(batches as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "final [{bar:30}] batch {pos}/{len} {msg} ({elapsed})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar
        });
        bar.set_length(batches as u64);
        bar.set_position(batch as u64);
        bar.set_message(attack.to_string());
    }

    fn println(&self, line: String) {
        match &self.bar {
            // A hidden bar (stderr is not a terminal, e.g. the worker's log) prints nothing.
            Some(bar) if !bar.is_hidden() => bar.println(line),
            _ => say!("{line}"),
        }
    }
}

impl Observer for ProgressBars {
    fn observe(&mut self, event: &Event) {
        match event {
            Event::Started {
                job,
                epochs,
                first_epoch,
                batches_per_epoch,
                device,
            } => {
                self.epochs = *epochs;
                self.batches_per_epoch = *batches_per_epoch;
                let from = if *first_epoch > 1 {
                    format!(", resuming at epoch {first_epoch}")
                } else {
                    String::new()
                };
                say!("{job}: {epochs} epochs on {device}{from}");
            }
            Event::EpochStarted { epoch, lr } => {
                self.finish();
                let bar = ProgressBar::with_draw_target(
                    Some(self.batches_per_epoch as u64),
                    ProgressDrawTarget::stderr(),
                );
                bar.set_style(
                    ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} batches {msg} ({eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{epoch}/{} lr {lr:.4}", self.epochs));
                self.bar = Some(bar);
            }
            Event::Batches { samples, .. } => {
                if let (Some(bar), Some(last)) = (&self.bar, samples.last()) {
                    bar.set_position(last.batch as u64);
                    let mut msg = format!("loss {:.4}", last.loss);
                    match (last.ratio, last.clean_only) {
                        (_, Some(true)) => msg += " ratio clean-only",
                        (Some(r), _) => {
                            let _ = write!(msg, " ratio {r:.3}");
                        }
                        _ => {}
                    }
                    bar.set_message(msg);
                }
            }
            Event::Testing { .. } => {
                if let Some(bar) = &self.bar {
                    bar.set_message("testing");
                }
            }
            Event::EpochFinished { record: r } => {
                let mut line = format!(
                    "epoch {:>3}/{}  loss {:.4}  train clean {:5.2}% adv {:5.2}%  test clean {:5.2}% fgsm {:5.2}% pgd {:5.2}%  {:.1} s, {:.0} img/s",
                    r.epoch, self.epochs, r.train_loss, r.train_clean_acc, r.train_adv_acc, r.test_clean_acc,
                    r.test_fgsm_acc, r.test_pgd_acc, r.seconds, r.images_per_second
                );
                if let Some(ratio) = r.ratio_mean {
                    let _ = write!(line, "  ratio {ratio:.3}");
                }
                if let Some(share) = r.clean_branch_share {
                    let _ = write!(line, "  clean-only {:.0}%", 100.0 * share);
                }
                self.println(line);
            }
            Event::FinalStarted => {
                self.finish();
                say!("final evaluation on the test set...");
            }
            Event::FinalAttack {
                attack,
                batch,
                batches,
            } => self.final_bar(attack, *batch, *batches),
            Event::FinalBatch { .. } => {}
            Event::FinalFinished { table } => {
                self.finish();
                say!("{}", attack_table(table).trim_end());
            }
            Event::Warning { message } => self.println(format!("warning: {message}")),
            Event::Ended { .. } => {}
        }
    }
}

/// `adarat eval`'s progress: the same bar as the final evaluation of `adarat run`.
pub(super) struct EvalProgress(ProgressBars);

impl EvalProgress {
    pub(super) fn new() -> EvalProgress {
        EvalProgress(ProgressBars::new())
    }

    pub(super) fn update(&mut self, progress: &crate::train::attack_table::Progress) {
        if let crate::train::attack_table::Progress::Attack {
            attack,
            batch,
            batches,
        } = progress
        {
            self.0.final_bar(attack, *batch, *batches);
        }
    }

    pub(super) fn finish(&mut self) {
        self.0.finish();
    }
}

/// The final table as text: accuracy and time per attack, AutoAttack's sub-attacks, the flags.
pub(super) fn attack_table(table: &FinalTable) -> String {
    let mut out = String::new();
    let images = table
        .images
        .map_or_else(String::new, |n| format!(" on {n} images"));
    let epsilon = table
        .epsilon
        .map_or_else(String::new, |e| format!(", ε {e:.6}"));
    let seed = table
        .seed
        .map_or_else(String::new, |s| format!(", seed {s}"));
    let _ = writeln!(out, "attack table{images}{epsilon}{seed}");
    let _ = writeln!(
        out,
        "  {:<32} {:>9} {:>10}",
        "attack", "accuracy", "seconds"
    );
    let seconds = |name: &str| {
        table
            .seconds
            .get(name)
            .map_or_else(String::new, |s| format!("{s:.1}"))
    };
    // `attacks()` lists the final attacks in `FinalAttack`'s order, under the reference's names.
    let keys = std::iter::once("clean").chain(FinalAttack::ALL.iter().map(|a| a.as_str()));
    let rows = std::iter::once(("clean", table.clean)).chain(table.attacks());
    for (key, (name, value)) in keys.zip(rows) {
        let Some(value) = value else { continue };
        let name = match (key, &table.autoattack_preset) {
            ("autoattack", Some(preset)) => format!("AutoAttack ({preset})"),
            _ => name.to_string(),
        };
        let _ = writeln!(out, "  {name:<32} {value:>8.2}% {:>10}", seconds(key));
    }
    for step in &table.autoattack_steps {
        let _ = writeln!(
            out,
            "    after {:<24} {:>8.2}% {:>10.1}",
            step.attack, step.accuracy, step.seconds
        );
    }
    if let Some(value) = table.worst_case {
        let _ = writeln!(out, "  {:<32} {value:>8.2}%", "worst case (every attack)");
    }
    for flag in &table.flags {
        let _ = writeln!(out, "  warning: {flag}");
    }
    out
}

/// One line: status, epochs and the headline numbers.
pub(super) fn summary(result: &RunResult) -> String {
    let mut line = format!("{} {}/{}", result.status, result.epochs_done, result.epochs);
    if let Some(last) = result.epochs_log.last() {
        let _ = write!(
            line,
            "  SA {:.2}  RA(pgd) {:.2}",
            last.test_clean_acc, last.test_pgd_acc
        );
    }
    let pgd20 = FinalAttack::Pgd20;
    if let Some(value) = result.final_table.as_ref().and_then(|f| f.accuracy(pgd20)) {
        let _ = write!(line, "  final {} {value:.2}", pgd20.info().label);
    }
    if let Some(error) = &result.error {
        let _ = write!(line, "  ({error})");
    }
    line
}

/// The per-epoch table and the final attacks of a run.
pub(super) fn report(result: &RunResult) -> String {
    let mut out = format!(
        "{}  {}  model {}  seed {}  on {}\n",
        result.job,
        summary(result),
        result.model,
        result.seed,
        result.device
    );
    out += "epoch      lr   loss  tr-clean  tr-adv   clean    fgsm     pgd   ratio  clean-only   img/s\n";
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    for r in &result.epochs_log {
        let share = r.clean_branch_share.map(|s| 100.0 * s);
        let _ = writeln!(
            out,
            "{:>5} {:>7.4} {:>6.3} {:>9.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7} {:>11} {:>7.0}",
            r.epoch,
            r.lr,
            r.train_loss,
            r.train_clean_acc,
            r.train_adv_acc,
            r.test_clean_acc,
            r.test_fgsm_acc,
            r.test_pgd_acc,
            opt(r.ratio_mean, 3),
            opt(share, 0),
            r.images_per_second
        );
    }
    if let Some(peaks) = &result.peaks {
        let _ = writeln!(
            out,
            "peaks: SA {:.2} at epoch {}, RA {:.2} at epoch {}",
            peaks.test_clean_acc.value,
            peaks.test_clean_acc.epoch,
            peaks.test_pgd_acc.value,
            peaks.test_pgd_acc.epoch
        );
    }
    if let Some(table) = &result.final_table {
        out += &attack_table(table);
    }
    out
}
