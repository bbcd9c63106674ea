//! `adarat submit` (the study's scheduler: Slurm job arrays of `adarat run` tasks, or the local
//! queue) and `adarat data download` (the official datasets fetched where there is internet, before
//! compute nodes need them). docs/slurm.md.
use super::exit::CliError;
use super::{config_path, load_study, planned, JobArgs};
use crate::data::{self, DataRequest};
use crate::scheduler::{self, Request};
use crate::vocab::DatasetKind;
use clap::Args;
use serde_yaml::Value;
use std::collections::HashMap;
use std::path::PathBuf;

/// The flags below are the Slurm backend's settings (`scheduler: {slurm: …}`), given here.
#[derive(Args, Debug)]
pub(super) struct SubmitArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Slurm's partition (default: `scheduler.slurm.partition`, else Slurm's default).
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    /// Slurm's time limit, e.g. 12:00:00 (default: `scheduler.slurm.time`, else the partition's).
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// Slurm's account (default: `scheduler.slurm.account`, else yours).
    #[arg(long, value_name = "A")]
    account: Option<String>,
    /// Slurm's quality of service (default: `scheduler.slurm.qos`, else the account's).
    #[arg(long, value_name = "Q")]
    qos: Option<String>,
    /// GPUs per Slurm job (default: `scheduler.slurm.gpus_per_job`, 1); 0 on a CPU partition.
    #[arg(long, value_name = "N")]
    gpus_per_job: Option<u32>,
    /// Write what would be sent (Slurm: the batch scripts and the sbatch commands); send nothing.
    #[arg(long)]
    dry_run: bool,
}

impl SubmitArgs {
    /// The flags given, as settings of the study's backend.
    fn settings(&self) -> Vec<(&'static str, Value)> {
        let text = [
            ("partition", &self.partition),
            ("time", &self.time),
            ("account", &self.account),
            ("qos", &self.qos),
        ];
        let mut settings: Vec<(&'static str, Value)> = (text.into_iter())
            .filter_map(|(key, value)| Some((key, Value::from(value.clone()?))))
            .collect();
        if let Some(gpus) = self.gpus_per_job {
            settings.push(("gpus_per_job", Value::from(gpus)));
        }
        settings
    }
}

pub(super) fn submit(args: SubmitArgs) -> Result<(), CliError> {
    let (study, configs) = planned(&args.job)?;
    let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
    let output_dir = absolute(
        args.job
            .config
            .output
            .clone()
            .unwrap_or_else(|| study.output_dir()),
    );
    let scheduler = scheduler::from_study(&study, &args.settings())?;
    scheduler.check(&output_dir)?;
    // What the backend still has waiting or running from earlier submissions, by run folder.
    let active: HashMap<String, scheduler::Task> = (scheduler.poll(&output_dir))
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, task)| task.active)
        .collect();
    let (configs, skipped) =
        scheduler::to_submit(scheduler.as_ref(), configs, &output_dir, &active);
    for (cfg, why) in &skipped {
        println!("skipped {} seed {}: {why}", cfg.job, cfg.seed);
    }
    if configs.is_empty() {
        println!("nothing to submit");
        return Ok(());
    }
    // Compute nodes usually have no internet: 44 tasks must not each fail on a missing file.
    let mut missing: Vec<DatasetKind> = Vec::new();
    for cfg in &configs {
        if !data::is_present(cfg.dataset, &cfg.data_dir) && !missing.contains(&cfg.dataset) {
            missing.push(cfg.dataset);
        }
    }
    if let Some(first) = configs.first().filter(|_| !missing.is_empty()) {
        let names: Vec<String> = missing.iter().map(ToString::to_string).collect();
        return Err(CliError::input(format!(
            "{} not in {} (the tasks would not find it): fetch it here first with `adarat data download {}`",
            names.join(", "),
            first.data_dir.display(),
            names.join(" ")
        )));
    }
    let request = Request {
        configs: &configs,
        output_dir: &output_dir,
        study: config_path(&args.job.config).map(absolute),
        sets: args.job.config.sets.clone(),
        run_args: run_args(&args.job),
        dry_run: args.dry_run,
        earlier_tasks: (active.into_iter())
            .map(|(folder, task)| (folder, task.id))
            .collect(),
    };
    for sent in scheduler.submit(&request)? {
        let jobs = sent.jobs.join(", ");
        match &sent.id {
            Some(id) => println!("submitted {id}: {jobs} ({})", sent.detail),
            None => println!("{}   # {jobs}", sent.detail),
        }
    }
    Ok(())
}

/// What every `adarat run` of the submission takes besides its job and the study: the command
/// line's run options.
fn run_args(args: &JobArgs) -> Vec<String> {
    let mut run_args = Vec::new();
    let numbers = [
        ("--epochs", args.epochs),
        ("--limit-train", args.limit_train),
        ("--limit-test", args.limit_test),
    ];
    for (flag, value) in numbers {
        if let Some(value) = value {
            run_args.extend([flag.to_string(), value.to_string()]);
        }
    }
    if let Some(device) = &args.device {
        run_args.extend(["--device".to_string(), device.clone()]);
    }
    run_args
}

#[derive(Args, Debug)]
pub(super) struct DownloadArgs {
    /// cifar10, cifar100, mnist or fashion-mnist.
    #[arg(required = true, value_name = "DATASET")]
    datasets: Vec<String>,
    #[command(flatten)]
    config: super::ConfigArgs,
}

/// Fetches each dataset into the study's data folder (progress bar, MD5 against the published sum,
/// an unpacking that cannot write outside the folder), then reads it once to prove it whole.
pub(super) fn download(args: DownloadArgs) -> Result<(), CliError> {
    let study = load_study(&args.config)?;
    let kinds = (args.datasets.iter())
        .map(|name| name.parse::<DatasetKind>().map_err(CliError::input))
        .collect::<Result<Vec<_>, CliError>>()?;
    let data_dir = study.data_dir();
    for kind in kinds {
        if kind == DatasetKind::Synthetic {
            println!("synthetic: generated, nothing to download");
            continue;
        }
        let present = data::is_present(kind, &data_dir);
        let request = DataRequest {
            kind,
            data_dir: &data_dir,
            device: tch::Device::Cpu,
            limit_train: Some(1),
            limit_test: Some(1),
            synthetic: crate::config::SyntheticSize { train: 0, test: 0 },
            download: true,
            mirror: study.mirror(),
            progress: true,
        };
        data::load(&request).map_err(CliError::input)?;
        let what = if present {
            "already there"
        } else {
            "downloaded"
        };
        println!("{kind}: {what} in {}", data_dir.display());
    }
    Ok(())
}
