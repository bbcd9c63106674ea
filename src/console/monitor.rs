//! Reads the output folder into [`Snapshot`]s: `result.json` of every grid job (re-read only when it
//! changes), the run locks that say which process runs what, the queue file, and the growing
//! `events.jsonl` of each running job (read incrementally from where the last pass stopped).
use super::snapshot::{FinalStep, JobRow, JobState, Live, Phase, Queued, Snapshot, LIVE_WINDOW};
use crate::config::{JobConfig, JobOverrides, Study};
use crate::lock::{self, Holder};
use crate::scheduler::{self, Scheduler, Task};
use crate::store::events::{BatchSample, Event};
use crate::store::per_image::PerImage;
use crate::store::result::RunResult;
use crate::store::{read_result, RunName, RunStore, StoreError, EVENTS_FILE, RESULT_FILE};
use crate::vocab::{DatasetKind, SeededJob, Status};
use crate::worker::{self, queue};
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The console adds this dataset after the study's, so that a job runs at once on any machine.
pub const TRY_DATASET: DatasetKind = DatasetKind::Synthetic;

/// How many recent log lines a live view keeps.
const LOG_LINES: usize = 50;

/// A run of the grid and where it lives.
struct Watched {
    run: SeededJob,
    folder: PathBuf,
    lock: PathBuf,
    /// Why the job's configuration does not resolve, if it does not.
    unresolvable: Option<String>,
}

pub struct Monitor {
    output_dir: PathBuf,
    datasets: Vec<DatasetKind>,
    seeds: Vec<u64>,
    /// The seed of a queue entry that names none: the study's `seed`, as the worker resolves it.
    default_seed: u64,
    watched: Vec<Watched>,
    results: HashMap<PathBuf, CachedResult>,
    tails: HashMap<PathBuf, Tail>,
    /// The study's scheduler (none when its `scheduler:` section is refused, which a problem
    /// line says); what it last said of the tasks submitted from this output folder, by run folder
    /// name, and when it was asked.
    scheduler: Result<Box<dyn Scheduler>, String>,
    remote: HashMap<String, Task>,
    remote_asked: Option<Instant>,
}

/// How often the scheduler is asked: a shared cluster's controller is not polled a few times a
/// second.
const REMOTE_INTERVAL: Duration = Duration::from_secs(5);

struct CachedResult {
    stamp: (SystemTime, u64),
    result: Result<Arc<RunResult>, Arc<StoreError>>,
    /// `config.yaml` and `per-image.json`, read with the result: what the Study screen groups
    /// runs by and compares them on.
    config: Option<Arc<JobConfig>>,
    per_image: Option<Arc<PerImage>>,
}

impl Monitor {
    pub fn new(study: &Study, output_dir: &Path) -> Monitor {
        let mut datasets = study.grid_datasets().to_vec();
        for dataset in std::iter::once(TRY_DATASET).chain(datasets_with_runs(output_dir)) {
            if !datasets.contains(&dataset) {
                datasets.push(dataset);
            }
        }
        let seeds = study.seeds();
        let runs = (study.grid_over(&datasets).into_iter())
            .flat_map(|job| seeds.iter().map(move |&seed| SeededJob { job, seed }));
        let watched = runs
            .map(|run| {
                let overrides = JobOverrides {
                    output_dir: Some(output_dir.to_path_buf()),
                    seed: Some(run.seed),
                    ..Default::default()
                };
                match study.resolve(&run.job, &overrides) {
                    Ok(cfg) => {
                        let name = RunStore::folder_name(&cfg);
                        Watched {
                            run,
                            folder: output_dir.join(&name),
                            lock: crate::store::run_lock_path(output_dir, &name),
                            unresolvable: None,
                        }
                    }
                    Err(e) => Watched {
                        run,
                        folder: PathBuf::new(),
                        lock: PathBuf::new(),
                        unresolvable: Some(e.to_string()),
                    },
                }
            })
            .collect();
        Monitor {
            output_dir: output_dir.to_path_buf(),
            datasets,
            seeds,
            default_seed: study.seed(),
            watched,
            results: HashMap::new(),
            tails: HashMap::new(),
            scheduler: scheduler::from_study(study, &[]).map_err(|e| e.to_string()),
            remote: HashMap::new(),
            remote_asked: None,
        }
    }

    /// One pass over the output folder.
    pub fn scan(&mut self) -> Snapshot {
        if let (Ok(scheduler), true) = (
            &self.scheduler,
            (self.remote_asked).is_none_or(|at| at.elapsed() >= REMOTE_INTERVAL),
        ) {
            self.remote = scheduler.poll(&self.output_dir).unwrap_or_default();
            self.remote_asked = Some(Instant::now());
        }
        let queue_file = queue::read(&self.output_dir);
        let queue = queue_file.as_ref().cloned().unwrap_or_default();
        let mut snapshot = Snapshot {
            datasets: self.datasets.clone(),
            seeds: self.seeds.clone(),
            queue: queue
                .jobs
                .iter()
                .filter_map(|e| {
                    let run = SeededJob {
                        job: e.job.parse().ok()?,
                        seed: e.seed.unwrap_or(self.default_seed),
                    };
                    let waiting = e.waiting.clone();
                    Some(Queued { run, waiting })
                })
                .collect(),
            paused: queue.paused,
            worker: worker::worker_pid(&self.output_dir).map(|pid| pid.unwrap_or(0)),
            scheduler: self.scheduler.as_ref().ok().map(|s| s.label()),
            ..Snapshot::default()
        };
        let mut running = Vec::new();
        for index in 0..self.watched.len() {
            let row = self.row(index, &queue);
            if row.state == JobState::Run(Status::Running) {
                running.push(index);
            }
            snapshot.jobs.push(row);
        }
        self.tails
            .retain(|folder, _| running.iter().any(|&i| &snapshot.jobs[i].folder == folder));
        for index in running {
            let row = &snapshot.jobs[index];
            let tail = self
                .tails
                .entry(row.folder.clone())
                .or_insert_with(|| Tail::new(row.run()));
            tail.read_new(&row.folder.join(EVENTS_FILE));
            snapshot.live.push(tail.live(row));
        }
        match queue_file {
            Err(error) => snapshot.problems.push(error.to_string()),
            Ok(queue) => snapshot.problems.extend(queue.notice),
        }
        if let Err(refused) = &self.scheduler {
            snapshot.problems.push(refused.clone());
        }
        snapshot
    }

    fn row(&mut self, index: usize, queue: &queue::Queue) -> JobRow {
        let watched = &self.watched[index];
        let name = watched.run.job.to_string();
        let seed = Some(watched.run.seed);
        let mut row = JobRow {
            job: watched.run.job,
            seed: watched.run.seed,
            folder: watched.folder.clone(),
            state: JobState::NotRun,
            result: None,
            config: None,
            per_image: None,
            error: watched.unresolvable.clone(),
            owner: None,
            remote: None,
        };
        if watched.unresolvable.is_some() {
            return row;
        }
        let holder = lock::holder(&watched.lock);
        let folder = watched.folder.clone();
        // A failure without a run folder counts until a result is written after it: a run that
        // completed later (perhaps in another process) is completed. Failures are timed to the
        // second, so within one second the failure counts.
        let seconds = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
        };
        let mut written = None;
        if let Some(cached) = self.read(&folder) {
            match &cached.result {
                Ok(result) => row.result = Some(result.clone()),
                Err(error) => row.error = Some(format!("unreadable: {error}")),
            }
            row.config = cached.config.clone();
            row.per_image = cached.per_image.clone();
            written = seconds(cached.stamp.0).ok();
        }
        let failure = queue.failure(&name, seed).filter(|f| {
            let at = f.time().and_then(|t| seconds(t).ok());
            written.is_none_or(|written| at.is_none_or(|at| at >= written))
        });
        // A run in this folder's queue is the queue's, whatever the scheduler is: the queue's own
        // state and reason say more than a local scheduler's task would.
        let queued = queue.contains(&name, seed);
        if !queued {
            row.remote = (folder.file_name())
                .and_then(|name| self.remote.get(name.to_string_lossy().as_ref()))
                .cloned();
        }
        row.state = if let Holder::Held(owner) = holder {
            row.owner = owner;
            JobState::Run(Status::Running)
        } else if queued {
            JobState::Queued
        } else if let Some(failure) = failure {
            row.error = Some(failure.error.clone());
            JobState::Run(Status::Failed)
        } else {
            match row.result.as_ref().map(|r| r.status) {
                None => JobState::NotRun,
                Some(Status::Failed) => {
                    row.error = row.result.as_ref().and_then(|r| r.error.clone());
                    JobState::Run(Status::Failed)
                }
                Some(status @ (Status::Completed | Status::Stopped)) => JobState::Run(status),
                // No process holds the run, yet it says running: it died without saying so.
                Some(Status::Running) => {
                    row.error = Some(
                        "interrupted: its process ended without stopping cleanly; queue it to \
                         resume"
                            .to_string(),
                    );
                    JobState::Run(Status::Stopped)
                }
            }
        };
        row
    }

    /// `result.json` of a folder, with the files read beside it, re-read only when its
    /// modification time or length changed.
    fn read(&mut self, folder: &Path) -> Option<&CachedResult> {
        let path = folder.join(RESULT_FILE);
        let Ok(meta) = std::fs::metadata(&path) else {
            self.results.remove(folder);
            return None;
        };
        let stamp = (
            meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            meta.len(),
        );
        let cached = self.results.get(folder).filter(|c| c.stamp == stamp);
        if cached.is_none() {
            let result = read_result(&path).map(Arc::new).map_err(Arc::new);
            let config = crate::store::read_config(folder).map(Arc::new);
            // Written before the result says completed, so read with the result that does.
            let per_image = (crate::store::read_per_image(folder).ok().flatten()).map(Arc::new);
            self.results.insert(
                folder.to_path_buf(),
                CachedResult {
                    stamp,
                    result,
                    config,
                    per_image,
                },
            );
        }
        self.results.get(folder)
    }
}

/// Datasets of the run folders already in the output folder (`<method>_<dataset>_<mode>_<model>_seed<S>`),
/// so that runs made with `adarat run` on datasets outside the grid show in the console too.
fn datasets_with_runs(output_dir: &Path) -> Vec<DatasetKind> {
    let Ok(entries) = std::fs::read_dir(output_dir) else {
        return Vec::new();
    };
    let mut found: Vec<DatasetKind> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.parse::<RunName>().ok().map(|run| run.job.dataset)
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

/// The running job's event log, read so far.
struct Tail {
    run: SeededJob,
    offset: u64,
    /// A line whose end has not been written yet.
    partial: String,
    device: String,
    phase: Phase,
    epoch: usize,
    epochs: usize,
    batch: usize,
    batches_per_epoch: usize,
    lr: f64,
    samples: VecDeque<BatchSample>,
    /// (images, seconds) of the latest `Batches` events of this epoch, for the throughput.
    recent_rates: VecDeque<(usize, f64)>,
    log: VecDeque<String>,
    final_step: Option<FinalStep>,
}

/// How many `Batches` events the images/s average spans.
const RATE_EVENTS: usize = 8;

impl Tail {
    fn new(run: SeededJob) -> Tail {
        Tail {
            run,
            offset: 0,
            partial: String::new(),
            device: String::new(),
            phase: Phase::Starting,
            epoch: 0,
            epochs: 0,
            batch: 0,
            batches_per_epoch: 0,
            lr: 0.0,
            samples: VecDeque::new(),
            recent_rates: VecDeque::new(),
            log: VecDeque::new(),
            final_step: None,
        }
    }

    /// Reads what was appended since the last call; starts over if the file was replaced by a
    /// shorter one (a new run in the folder).
    fn read_new(&mut self, path: &Path) {
        let Ok(mut file) = File::open(path) else {
            return;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            *self = Tail::new(self.run);
        }
        if len == self.offset || file.seek(SeekFrom::Start(self.offset)).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return;
        }
        self.offset += bytes.len() as u64;
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let text = std::mem::take(&mut self.partial);
        let mut lines = text.split('\n').peekable();
        while let Some(line) = lines.next() {
            if lines.peek().is_none() {
                self.partial = line.to_string();
            } else if let Ok(event) = serde_json::from_str::<Event>(line) {
                self.apply(event);
            }
        }
    }

    fn say(&mut self, line: String) {
        self.log.push_back(line);
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
    }

    fn apply(&mut self, event: Event) {
        match event {
            Event::Started {
                epochs,
                first_epoch,
                batches_per_epoch,
                device,
                ..
            } => {
                self.epochs = epochs;
                self.batches_per_epoch = batches_per_epoch;
                self.phase = Phase::Starting;
                let resuming = if first_epoch > 1 {
                    format!(", resuming at epoch {first_epoch}")
                } else {
                    String::new()
                };
                self.say(format!("started: {epochs} epochs on {device}{resuming}"));
                self.device = device;
            }
            Event::EpochStarted { epoch, lr } => {
                self.epoch = epoch;
                self.lr = lr;
                self.batch = 0;
                self.phase = Phase::Training;
                self.recent_rates.clear();
            }
            Event::Batches {
                samples,
                images,
                seconds,
            } => {
                if let Some(last) = samples.last() {
                    self.batch = last.batch;
                }
                self.samples.extend(samples);
                while self.samples.len() > LIVE_WINDOW {
                    self.samples.pop_front();
                }
                if seconds > 0.0 {
                    self.recent_rates.push_back((images, seconds));
                    while self.recent_rates.len() > RATE_EVENTS {
                        self.recent_rates.pop_front();
                    }
                }
            }
            Event::Testing { epoch } => {
                self.phase = Phase::Testing;
                self.say(format!("epoch {epoch}: testing"));
            }
            Event::EpochFinished { record: r } => {
                let mut line = format!(
                    "epoch {}/{}: loss {:.4}, test SA {:.2}% FGSM {:.2}% PGD {:.2}%, {:.0} img/s",
                    r.epoch,
                    self.epochs,
                    r.train_loss,
                    r.test_clean_acc,
                    r.test_fgsm_acc,
                    r.test_pgd_acc,
                    r.images_per_second
                );
                if let Some(share) = r.clean_branch_share {
                    line += &format!(", clean-only {:.0}%", 100.0 * share);
                }
                self.say(line);
            }
            Event::FinalStarted => {
                self.phase = Phase::FinalEvaluation;
                self.say("final evaluation on the test set".to_string());
            }
            Event::FinalAttack {
                attack,
                batch,
                batches,
            } => {
                self.final_step = Some(FinalStep {
                    attack,
                    batch,
                    batches,
                });
            }
            Event::FinalBatch {
                images_done,
                images,
                table,
            } => self.say(format!(
                "final, {images_done}/{images} images: {}",
                accuracies(&table)
            )),
            Event::FinalFinished { table } => {
                self.final_step = None;
                self.say(format!("final: {}", accuracies(&table)));
                for flag in &table.flags {
                    self.say(format!("warning: {flag}"));
                }
            }
            Event::Warning { message } => self.say(format!("warning: {message}")),
            Event::Ended { status, error } => {
                let word = serde_json::to_value(status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                self.say(match error {
                    Some(error) => format!("{word}: {error}"),
                    None => word,
                });
            }
        }
    }

    fn images_per_second(&self) -> Option<f64> {
        let (images, seconds) = self
            .recent_rates
            .iter()
            .fold((0usize, 0.0), |(i, s), &(images, seconds)| {
                (i + images, s + seconds)
            });
        (seconds > 0.0).then(|| images as f64 / seconds)
    }

    fn live(&self, row: &JobRow) -> Live {
        let epochs_log = row
            .result
            .as_ref()
            .map(|r| r.epochs_log.clone())
            .unwrap_or_default();
        let images_per_second = self.images_per_second();
        Live {
            run: self.run,
            pid: row.owner.as_ref().map_or(0, |o| o.pid),
            device: self.device.clone(),
            phase: self.phase,
            epoch: self.epoch,
            epochs: self.epochs,
            batch: self.batch,
            batches_per_epoch: self.batches_per_epoch,
            lr: self.lr,
            samples: self.samples.iter().cloned().collect(),
            eta_seconds: eta(
                &epochs_log,
                self.epoch,
                self.epochs,
                self.batch,
                self.batches_per_epoch,
            ),
            epochs_log,
            images_per_second,
            log: self.log.iter().cloned().collect(),
            final_step: self.final_step.clone(),
        }
    }
}

/// `FGSM 55.10%, PGD10 50.02%, …` for the attacks a table has.
fn accuracies(table: &crate::store::result::FinalTable) -> String {
    let attacks: Vec<String> = table
        .attacks()
        .iter()
        .filter_map(|(name, value)| value.map(|v| format!("{name} {v:.2}%")))
        .collect();
    attacks.join(", ")
}

/// Time left: the mean wall time of the epochs this run finished (training and test, from the
/// epochs' end times), times the epochs left, less the share of the current epoch already done.
fn eta(
    log: &[crate::store::result::EpochRecord],
    epoch: usize,
    epochs: usize,
    batch: usize,
    batches_per_epoch: usize,
) -> Option<f64> {
    let ends: Vec<i64> = log
        .iter()
        .filter_map(|r| {
            chrono::NaiveDateTime::parse_from_str(&r.finished_at, "%Y/%m/%d %H:%M:%S")
                .ok()
                .map(|t| t.and_utc().timestamp())
        })
        .collect();
    let per_epoch = match ends.as_slice() {
        [first, .., last] if ends.len() >= 2 => (last - first) as f64 / (ends.len() - 1) as f64,
        // One epoch measured: its training time stands for the whole epoch.
        _ => log.last()?.seconds,
    };
    let current_left = if epoch > log.len() && batches_per_epoch > 0 {
        1.0 - batch.min(batches_per_epoch) as f64 / batches_per_epoch as f64
    } else {
        0.0
    };
    let later = epochs.saturating_sub(epoch.max(log.len())) as f64;
    Some(per_epoch.max(0.0) * (later + current_left))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::FinalAttack;

    fn record(epoch: usize, finished_at: &str) -> crate::store::result::EpochRecord {
        crate::store::result::EpochRecord {
            epoch,
            lr: 0.1,
            train_loss: 1.0,
            train_clean_acc: 50.0,
            train_adv_acc: 30.0,
            test_clean_acc: 50.0,
            test_fgsm_acc: 40.0,
            test_pgd_acc: 30.0,
            ratio_mean: None,
            clean_branch_share: None,
            seconds: 8.0,
            images_per_second: 100.0,
            test_seconds: 1.0,
            train_clean_loss: 1.0,
            train_adv_loss: 1.0,
            test_clean_loss: 1.0,
            test_fgsm_loss: 1.0,
            test_pgd_loss: 1.0,
            finished_at: finished_at.to_string(),
            train_teacher_acc: None,
            test_st_clean_acc: None,
            test_st_pgd_acc: None,
        }
    }

    #[test]
    fn datasets_of_existing_run_folders_are_found_and_archives_are_not() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "pgd-at_fashion-mnist_adarat_small-cnn_seed1",
            "pgd-at_mnist_baseline_small-cnn_seed3.20261125-101010",
            "queue.json",
        ] {
            std::fs::create_dir(dir.path().join(name)).unwrap();
        }
        assert_eq!(datasets_with_runs(dir.path()), [DatasetKind::FashionMnist]);
    }

    #[test]
    fn the_final_evaluation_is_followed_attack_by_attack() {
        use crate::store::result::FinalTable;
        let mut tail = Tail::new(SeededJob {
            job: "pgd-at/synthetic/adarat".parse().unwrap(),
            seed: 1,
        });
        tail.apply(Event::FinalStarted);
        tail.apply(Event::FinalAttack {
            attack: "autoattack/square".into(),
            batch: 2,
            batches: 4,
        });
        assert_eq!(tail.phase, Phase::FinalEvaluation);
        assert_eq!(
            tail.final_step,
            Some(FinalStep {
                attack: "autoattack/square".into(),
                batch: 2,
                batches: 4
            })
        );
        let partial = FinalTable {
            accuracies: [(FinalAttack::Fgsm, 55.5), (FinalAttack::AutoAttack, 41.0)]
                .into_iter()
                .collect(),
            ..FinalTable::default()
        };
        tail.apply(Event::FinalBatch {
            images_done: 64,
            images: 128,
            table: partial.clone(),
        });
        assert_eq!(
            tail.log.back().map(String::as_str),
            Some("final, 64/128 images: FGSM 55.50%, AA 41.00%")
        );
        tail.apply(Event::FinalFinished {
            table: FinalTable {
                flags: vec!["AutoAttack is far below PGD-20".into()],
                ..partial
            },
        });
        assert_eq!(tail.final_step, None);
        let last: Vec<&String> = tail.log.iter().rev().take(2).collect();
        assert_eq!(last[1], "final: FGSM 55.50%, AA 41.00%");
        assert_eq!(last[0], "warning: AutoAttack is far below PGD-20");
    }

    #[test]
    fn a_damaged_queue_notice_reaches_the_problems() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(queue::queue_path(dir.path()), "{ damaged").unwrap();
        let study = crate::config::open(None, &[]).unwrap();
        let mut monitor = Monitor::new(&study, dir.path());
        let problems = monitor.scan().problems;
        assert!(
            problems.len() == 1 && problems[0].contains("queue.json"),
            "{problems:?}"
        );
        queue::modify(dir.path(), |_| ()).unwrap();
        let problems = monitor.scan().problems;
        assert!(
            problems.len() == 1 && problems[0].contains("moved to"),
            "{problems:?}"
        );
    }

    #[test]
    fn eta_uses_the_wall_time_between_epoch_ends() {
        let log = [
            record(1, "2026/01/01 10:00:00"),
            record(2, "2026/01/01 10:00:10"),
            record(3, "2026/01/01 10:00:20"),
        ];
        // Epoch 4 of 10, half done: 6.5 epochs of 10 s.
        assert_eq!(eta(&log, 4, 10, 50, 100), Some(65.0));
        // One epoch finished: its 8 s of training stand for an epoch.
        assert_eq!(eta(&log[..1], 2, 3, 0, 100), Some(16.0));
        assert_eq!(eta(&[], 1, 3, 10, 100), None);
    }
}
