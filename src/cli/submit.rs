//! `adarat submit` (a Slurm job array of `adarat run` tasks) and `adarat data download` (the official
//! datasets fetched where there is internet, before compute nodes need them). docs/slurm.md.
use super::exit::CliError;
use super::{config_path, load_study, planned, JobArgs};
use crate::config::{JobConfig, SlurmDefaults};
use crate::data::{self, DataRequest};
use crate::lock;
use crate::slurm::SlurmTask;
use crate::store::{self, RunStore};
use crate::vocab::DatasetKind;
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub(super) struct SubmitArgs {
    #[command(flatten)]
    job: JobArgs,
    /// The partition (default: the configuration's `slurm.partition`, else Slurm's default).
    #[arg(long, value_name = "P")]
    partition: Option<String>,
    /// The time limit, e.g. 12:00:00 (default: `slurm.time`, else the partition's).
    #[arg(long, value_name = "T")]
    time: Option<String>,
    /// The account (default: `slurm.account`, else yours).
    #[arg(long, value_name = "A")]
    account: Option<String>,
    /// The quality of service (default: `slurm.qos`, else the account's).
    #[arg(long, value_name = "Q")]
    qos: Option<String>,
    /// GPUs per job (default: `slurm.gpus_per_job`, 1); 0 on a CPU partition.
    #[arg(long, value_name = "N")]
    gpus_per_job: Option<u32>,
    /// Write the batch scripts and print the sbatch commands; submit nothing.
    #[arg(long)]
    dry_run: bool,
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
    let slurm = SlurmDefaults {
        partition: args.partition.or_else(|| study.slurm().partition.clone()),
        time: args.time.or_else(|| study.slurm().time.clone()),
        account: args.account.or_else(|| study.slurm().account.clone()),
        qos: args.qos.or_else(|| study.slurm().qos.clone()),
        gpus_per_job: args.gpus_per_job.unwrap_or(study.slurm().gpus_per_job),
        signal_seconds: study.slurm().signal_seconds,
    };
    slurm.check().map_err(|e| CliError::input(e.to_string()))?;
    // Tasks on several hosts share the output folder: its locks must hold across them.
    crate::lock::check_shared_locking(&output_dir)?;
    // What Slurm still has waiting or running from earlier submissions, by run folder.
    let on_slurm: HashMap<String, SlurmTask> = (crate::slurm::poll(&output_dir)
        .unwrap_or_default())
    .into_iter()
    .filter(|(_, task)| task.is_active())
    .collect();
    let (configs, skipped) = to_submit(configs, &output_dir, &on_slurm);
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
    let earlier_tasks: HashMap<String, String> = (on_slurm.into_iter())
        .map(|(folder, task)| (folder, task.id))
        .collect();
    let request = crate::slurm::SubmitRequest {
        configs: &configs,
        common_args: common_args(
            &args.job,
            &output_dir,
            config_path(&args.job.config).map(absolute),
        ),
        output_dir: &output_dir,
        slurm: &slurm,
        dry_run: args.dry_run,
        earlier_tasks: &earlier_tasks,
    };
    for array in crate::slurm::submit(&request)? {
        let jobs: Vec<&str> = array.tasks.iter().map(|t| t.job.as_str()).collect();
        let after = array
            .dependency
            .as_deref()
            .map(|d| format!(" --dependency={d} --kill-on-invalid-dep=yes"))
            .unwrap_or_default();
        match &array.array {
            Some(id) => println!(
                "submitted array {id}: {} ({})",
                jobs.join(", "),
                array.script.display()
            ),
            None => println!(
                "sbatch{after} {}   # {}",
                array.script.display(),
                jobs.join(", ")
            ),
        }
    }
    Ok(())
}

/// The planned runs to submit, and those left out with why: a second submit of the same
/// selection, or of a larger one, submits only what is neither completed, nor running in a process
/// (on any host sharing the output folder), nor waiting or running on Slurm
/// (docs/slurm.md#submitting-again). A student whose teacher runs outside Slurm is left out too:
/// no Slurm dependency can wait for it.
fn to_submit(
    configs: Vec<JobConfig>,
    output_dir: &Path,
    on_slurm: &HashMap<String, SlurmTask>,
) -> (Vec<JobConfig>, Vec<(JobConfig, String)>) {
    let mut submit = Vec::new();
    let mut skipped: Vec<(JobConfig, String)> = Vec::new();
    let mut outside_slurm: Vec<PathBuf> = Vec::new();
    for cfg in configs {
        let name = RunStore::folder_name(&cfg);
        let teacher_outside = (cfg.name().teachers().iter())
            .map(|(_, teacher)| RunStore::teacher_folder(&cfg, teacher))
            .find(|folder| outside_slurm.contains(folder));
        let why = if let Some(task) = on_slurm.get(&name) {
            let state = task.state.to_lowercase();
            Some(format!("already on Slurm as task {} ({state})", task.id))
        } else if let Some(who) = lock::holder(&store::run_lock_path(output_dir, &name)).who() {
            outside_slurm.push(RunStore::folder_of(&cfg));
            Some(format!("running in {who}"))
        } else if let Some(done) = store::completed_run(&cfg) {
            Some(if done.same_configuration {
                "completed".to_string()
            } else {
                "completed with another configuration (adarat run --fresh moves it aside and trains this one)".to_string()
            })
        } else {
            teacher_outside.map(|teacher| {
                format!(
                    "its teacher {} runs outside Slurm; submit it again once that has completed",
                    teacher.display()
                )
            })
        };
        match why {
            Some(why) => skipped.push((cfg, why)),
            None => submit.push(cfg),
        }
    }
    (submit, skipped)
}

/// What every task's `adarat run` takes besides its job: the shared output folder, the study and
/// the command line's changes to it, offline (a compute node downloads nothing).
fn common_args(
    args: &JobArgs,
    output_dir: &std::path::Path,
    config: Option<PathBuf>,
) -> Vec<String> {
    let mut common = vec!["--output".to_string(), output_dir.display().to_string()];
    if let Some(config) = config {
        common.extend(["--config".to_string(), config.display().to_string()]);
    }
    for set in &args.config.sets {
        common.extend(["--set".to_string(), set.clone()]);
    }
    let numbers = [
        ("--epochs", args.epochs),
        ("--limit-train", args.limit_train),
        ("--limit-test", args.limit_test),
    ];
    for (flag, value) in numbers {
        if let Some(value) = value {
            common.extend([flag.to_string(), value.to_string()]);
        }
    }
    if let Some(device) = &args.device {
        common.extend(["--device".to_string(), device.clone()]);
    }
    common.push("--offline".to_string());
    common
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
            seed: 0,
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
