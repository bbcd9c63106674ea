//! The command line (README, "Command line"). Whatever goes wrong ends with one line on stderr and
//! the exit status `exit` gives it.
mod exit;
mod export;
mod progress;
mod signals;
mod submit;

use exit::{CliError, ExitStatus};

use crate::config::{self, DeviceSpec, JobConfig, JobOverrides, Study};
use crate::store::{self, RunStore};
use crate::train::{self, RunError, RunOptions};
use crate::vocab::{FinalAttack, JobName, ModelKind};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "adarat",
    version,
    about = "Adversarial-training console and runner for the AdaRAT study"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    /// With no command: the console, on this configuration.
    #[command(flatten)]
    console: ConfigArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train jobs one after another, headless (e.g. `adarat run pgd-at/cifar10/adarat`).
    Run(RunArgs),
    /// The final attack table (clean accuracy and the attacks of --attacks) of a safetensors checkpoint
    /// with PyTorch names, e.g. `adarat eval model.safetensors --dataset cifar10 --model resnet18`.
    Eval(EvalArgs),
    /// Images/s of PGD-AT training, the per-epoch test and the attack table, next to
    /// bench/reference.py (the research code's loop in PyTorch) on the same device.
    Bench(BenchArgs),
    /// List the jobs of the grid with the state of their runs.
    List(ConfigArgs),
    /// Print a run's per-epoch table and final attacks (a run folder or a job name).
    Show {
        run: String,
        /// The seed of a job's run (default: the configuration's first seed).
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Submit jobs to the study's scheduler (`scheduler:`; Slurm by default, as a job array), one
    /// `adarat run` task per job, teachers first
    /// (e.g. `adarat submit pgd-at/cifar10/adarat --partition gpu --time 12:00:00`).
    Submit(submit::SubmitArgs),
    /// The study's tables from its run folders: the main table (mean ± sd over seeds), the verdict
    /// against each baseline (Δ, 95 % interval, p) and the peaks, in the formats of --format (e.g.
    /// `adarat export --format latex`).
    Export(export::ExportArgs),
    /// Datasets in their official formats.
    #[command(subcommand)]
    Data(DataCommand),
    /// Queue jobs for the queue worker of the output folder, as the console's enter does, and
    /// start a worker when none runs (e.g. `adarat queue kd-at/cifar10/adarat --seed 1,2,3`).
    /// Completed runs are left as they are unless --fresh.
    Queue(QueueArgs),
    /// The console's queue worker (started by the console, detached from the terminal).
    #[command(hide = true)]
    Worker {
        #[arg(long, value_name = "DIR")]
        output: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum DataCommand {
    /// Fetch datasets into the study's data folder (on a login node, before `adarat submit`).
    Download(submit::DownloadArgs),
}

#[derive(Args, Debug)]
struct ConfigArgs {
    /// The study configuration; `./experiments.yaml`, else the built-in default.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override any configuration value by its dotted path, e.g. `training.epochs=3`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Output folder for runs (default: the configuration's `paths.output`).
    #[arg(long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// Jobs and what the command line changes of their configuration (`adarat run`, `adarat submit`).
#[derive(Args, Debug)]
struct JobArgs {
    /// Jobs as method/dataset/mode.
    #[arg(required = true, value_name = "JOB")]
    jobs: Vec<String>,
    #[command(flatten)]
    config: ConfigArgs,
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    #[arg(long, value_name = "M")]
    model: Option<String>,
    /// Seeds, comma-separated (`--seed 1,2,3`): each job runs once per seed (default: the
    /// configuration's `grid.seeds`, else its `seed`).
    #[arg(long, value_name = "S", value_delimiter = ',')]
    seed: Vec<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "D")]
    device: Option<String>,
    /// Train on the first N training images only.
    #[arg(long, value_name = "N")]
    limit_train: Option<usize>,
    /// Test on the first N test images only.
    #[arg(long, value_name = "N")]
    limit_test: Option<usize>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Start over: an earlier run in the job's folder, unfinished or completed, is moved aside
    /// (never deleted). Without it an unfinished run resumes and a completed one is left as it is.
    #[arg(long)]
    fresh: bool,
    /// Never download a missing dataset; say where to put it instead.
    #[arg(long)]
    offline: bool,
}

#[derive(Args, Debug)]
struct QueueArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Jobs as method/dataset/mode.
    #[arg(required = true, value_name = "JOB")]
    jobs: Vec<String>,
    /// Seeds, comma-separated (default: the configuration's `grid.seeds`, else its `seed`).
    #[arg(long, value_name = "S", value_delimiter = ',')]
    seed: Vec<u64>,
    /// Train completed runs again: each is moved aside when it starts.
    #[arg(long)]
    fresh: bool,
}

#[derive(Args, Debug)]
struct EvalArgs {
    /// The weights: safetensors under the reference's PyTorch state_dict names.
    #[arg(value_name = "CHECKPOINT")]
    checkpoint: PathBuf,
    /// Its test set is evaluated: cifar10, cifar100, fashion-mnist, mnist or synthetic.
    #[arg(long, value_name = "D")]
    dataset: String,
    /// The checkpoint's architecture: resnet18, wrn-34-10, preact-resnet18 or small-cnn.
    #[arg(long, value_name = "M")]
    model: String,
    #[arg(long, value_name = "LIST", help = attacks_help())]
    attacks: Option<String>,
    /// L∞ budget (default: the dataset's), e.g. 8/255.
    #[arg(long, value_name = "E")]
    epsilon: Option<String>,
    /// PGD and CW step (default: the dataset's), e.g. 2/255.
    #[arg(long, value_name = "A")]
    step_size: Option<String>,
    /// standard (default) or torchattacks-3.5.1.
    #[arg(long, value_name = "PRESET")]
    autoattack: Option<String>,
    /// Seeds every attack's randomness (default: the configuration's seed).
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Evaluate the first N test images only.
    #[arg(long, value_name = "N")]
    limit_test: Option<usize>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "D")]
    device: Option<String>,
    /// Images per batch (default: the configuration's evaluation batch size).
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,
    /// Print the table as one JSON object, shaped like `final` in result.json.
    #[arg(long)]
    json: bool,
    /// With --json: add `per_image`, which test images stayed correct under each attack, as in a
    /// run folder's per-image.json.
    #[arg(long)]
    per_image: bool,
    /// Never download a missing dataset; say where to put it instead.
    #[arg(long)]
    offline: bool,
    #[command(flatten)]
    config: ConfigArgs,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, value_name = "D", default_value = "auto")]
    device: String,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// The Python (with torch) for bench/reference.py: default $ADARAT_PYTHON, else .venv/bin/python,
    /// else python3.
    #[arg(long, value_name = "PATH")]
    python: Option<PathBuf>,
    /// The reference script.
    #[arg(long, value_name = "FILE", default_value = "bench/reference.py")]
    reference: PathBuf,
    /// Comma-separated: main (each model's training, test and attack table), ablation (from the
    /// reference to adarat one change at a time), scaling (training on 1 000, 10 000 and 60 000 images),
    /// eval (standard AutoAttack on a trained checkpoint next to torchattacks' sub-attacks).
    #[arg(long, value_name = "LIST", default_value = "main")]
    suites: String,
    /// Tiny sizes, small-cnn only: checks that the bench runs; its figures mean little.
    #[arg(long)]
    quick: bool,
}

pub fn main() -> ExitCode {
    crate::native::posix::keep_freed_memory();
    let cli = Cli::parse();
    let outcome = match cli.command {
        Some(Command::Run(args)) => run(args),
        Some(Command::Eval(args)) => eval(args),
        Some(Command::Bench(args)) => bench(args),
        Some(Command::List(args)) => list(&args),
        Some(Command::Show { run, seed, config }) => show(&run, seed, &config),
        Some(Command::Submit(args)) => submit::submit(args),
        Some(Command::Export(args)) => export::export(args),
        Some(Command::Data(DataCommand::Download(args))) => submit::download(args),
        Some(Command::Queue(args)) => queue(&args),
        Some(Command::Worker { output }) => worker(&output),
        None => console(&cli.console),
    };
    let status = match outcome {
        Ok(()) => ExitStatus::Success,
        Err(error) => {
            progress::say!("adarat: {error}");
            error.exit_status()
        }
    };
    exit::record(status);
    ExitCode::from(status.code())
}

/// `--device`, parsed where it is read; None: the configuration's.
fn parse_device(device: Option<&str>) -> Result<Option<DeviceSpec>, CliError> {
    device
        .map(str::parse::<DeviceSpec>)
        .transpose()
        .map_err(CliError::input)
}

fn load_study(args: &ConfigArgs) -> Result<Study, CliError> {
    config::open(config_path(args).as_deref(), &args.sets).map_err(CliError::input)
}

/// `--config`, else `./experiments.yaml` when there is one; None means the built-in default.
fn config_path(args: &ConfigArgs) -> Option<PathBuf> {
    args.config
        .clone()
        .or_else(|| Some(PathBuf::from("experiments.yaml")).filter(|p| p.exists()))
}

/// The study and the jobs of the command line resolved from it, each with the teachers it lacks
/// before it, every one checked before the first starts.
/// The seeds given on the command line, else the study's (`grid.seeds`, else `seed`).
fn seeds(study: &Study, given: &[u64]) -> Vec<u64> {
    match given {
        [] => study.seeds(),
        given => given.to_vec(),
    }
}

fn planned(args: &JobArgs) -> Result<(Study, Vec<JobConfig>), CliError> {
    let study = load_study(&args.config)?;
    let model = args
        .model
        .as_deref()
        .map(str::parse::<ModelKind>)
        .transpose()
        .map_err(CliError::input)?;
    let device = parse_device(args.device.as_deref())?;
    let overrides = JobOverrides {
        epochs: args.epochs,
        model,
        seed: None,
        device,
        limit_train: args.limit_train,
        limit_test: args.limit_test,
        output_dir: args.config.output.clone(),
    };
    let jobs = (args.jobs.iter())
        .map(|name| name.parse::<JobName>().map_err(CliError::input))
        .collect::<Result<Vec<JobName>, CliError>>()?;
    let seeds = seeds(&study, &args.seed);
    // Seed by seed: the modes of a method compare after the first seed already.
    let mut configs = Vec::new();
    for &seed in &seeds {
        let overrides = JobOverrides {
            seed: Some(seed),
            ..overrides.clone()
        };
        for job in &jobs {
            configs.push(study.resolve(job, &overrides).map_err(CliError::input)?);
        }
    }
    // KD-AT and IAD learn from finished teachers: the missing ones run first (docs/protocol.md#teachers-of-kd-at-and-iad).
    let configs =
        crate::plan::with_missing_teachers(&study, configs, &overrides).map_err(CliError::input)?;
    for cfg in &configs {
        crate::methods::check(cfg).map_err(CliError::input)?;
    }
    Ok((study, configs))
}

fn run(args: RunArgs) -> Result<(), CliError> {
    let (_, configs) = planned(&args.job)?;
    let mut checked: Vec<&Path> = Vec::new();
    for cfg in &configs {
        crate::device::resolve(cfg.device).map_err(CliError::input)?;
        // Once per output folder: a planned student and its teachers share one.
        if !checked.contains(&cfg.output_dir.as_path()) {
            crate::lock::check_lock_support(&cfg.output_dir)?;
            checked.push(&cfg.output_dir);
        }
    }
    let configs = if args.fresh {
        configs
    } else {
        not_completed(configs)?
    };
    let options = RunOptions {
        fresh: args.fresh,
        download: !args.offline,
        progress: true,
        stop: Default::default(),
    };
    signals::install(&options.stop)
        .map_err(|e| CliError::input(format!("installing signal handlers: {e}")))?;
    let mut failed = Vec::new();
    for cfg in &configs {
        let mut observer = progress::ProgressBars::new();
        match train::run(cfg, options.clone(), &mut observer) {
            Ok(result) => {
                observer.finish();
                let folder = RunStore::folder_of(cfg);
                progress::say!(
                    "{}: {} -> {}",
                    cfg.job,
                    progress::summary(&result),
                    folder.display()
                );
            }
            // Completed by another process since the plan was made: left as it is.
            Err(RunError::Store(store::StoreError::Completed { folder })) => {
                observer.finish();
                progress::say!("{}: already completed in {}", cfg.job, folder.display());
            }
            Err(RunError::Failed(failure)) => {
                observer.finish();
                progress::say!("adarat: {}: failed: {failure}", cfg.job);
                failed.push(cfg.job.clone());
            }
            Err(source) => {
                observer.finish();
                return Err(CliError::Job {
                    job: cfg.job.clone(),
                    source: Box::new(source),
                });
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CliError::JobsFailed(failed))
    }
}

/// The planned runs without those completed already, which are said and left as they are (a
/// second `adarat run`, a requeued Slurm task). A completed run of another configuration is
/// refused before anything runs: only `--fresh` moves a finished run aside.
fn not_completed(configs: Vec<JobConfig>) -> Result<Vec<JobConfig>, CliError> {
    let mut left = Vec::new();
    for cfg in configs {
        match store::completed_run(&cfg) {
            None => left.push(cfg),
            Some(done) if done.same_configuration => progress::say!(
                "{}: already completed ({}) in {}; --fresh trains it again",
                cfg.job,
                progress::summary(&done.result),
                done.folder.display()
            ),
            Some(done) => {
                return Err(CliError::input(format!(
                    "{}: {} holds a completed run of another configuration; --fresh moves it aside and trains this one",
                    cfg.job,
                    done.folder.display()
                )))
            }
        }
    }
    Ok(left)
}

fn bench(args: BenchArgs) -> Result<(), CliError> {
    let suites = args
        .suites
        .split(',')
        .map(str::parse)
        .collect::<Result<Vec<crate::bench::Suite>, _>>()
        .map_err(CliError::input)?;
    let device = args.device.parse().map_err(CliError::input)?;
    crate::device::resolve(device).map_err(CliError::input)?;
    if !args.reference.is_file() {
        return Err(CliError::input(format!(
            "{}: no such file (run adarat bench from the repository, or pass --reference)",
            args.reference.display()
        )));
    }
    let python = args.python.clone().unwrap_or_else(|| {
        std::env::var_os("ADARAT_PYTHON")
            .map(PathBuf::from)
            .or_else(|| Some(PathBuf::from(".venv/bin/python")).filter(|p| p.exists()))
            .unwrap_or_else(|| PathBuf::from("python3"))
    });
    let options = crate::bench::BenchOptions {
        device,
        python,
        reference: args.reference,
        suites,
        quick: args.quick,
    };
    let report = crate::bench::run(&options, &mut |step| progress::say!("bench: {step}"))?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", crate::bench::render(&report));
    }
    Ok(())
}

/// `--attacks`' help: the final attacks of the vocabulary (no closing period, as clap writes a
/// one-sentence doc comment).
fn attacks_help() -> String {
    let names: Vec<&str> = FinalAttack::ALL.iter().map(|a| a.as_str()).collect();
    format!(
        "Comma-separated attacks (default: the configuration's final attacks), of {}",
        names.join(", ")
    )
}

/// `adarat eval`: the dataset's defaults come from the configuration (as for a PGD-AT job on it),
/// the command line overrides them.
fn eval(args: EvalArgs) -> Result<(), CliError> {
    use crate::train::attack_table::{AttackTable, Interrupted};
    if args.per_image && !args.json {
        return Err(CliError::input(
            "--per-image: the records are part of the JSON object; add --json",
        ));
    }
    let study = load_study(&args.config)?;
    let dataset: crate::vocab::DatasetKind = args.dataset.parse().map_err(CliError::input)?;
    let model: ModelKind = args.model.parse().map_err(CliError::input)?;
    let job = JobName {
        method: crate::vocab::Method::PgdAt,
        dataset,
        mode: crate::vocab::Mode::Baseline,
    };
    let overrides = JobOverrides {
        model: Some(model),
        device: parse_device(args.device.as_deref())?,
        // Only the test split is evaluated.
        limit_train: Some(1),
        limit_test: args.limit_test,
        // Seeds the attacks only: no dataset depends on the seed (docs/protocol.md#random-streams).
        seed: args.seed,
        ..Default::default()
    };
    let cfg = study.resolve(&job, &overrides).map_err(CliError::input)?;
    let mut table = AttackTable::for_job(&cfg);
    let number = |flag: &str, text: &Option<String>, default: f64| match text {
        Some(text) => config::parse_number(text)
            .ok()
            .filter(|v| *v > 0.0 && v.is_finite())
            .ok_or_else(|| {
                CliError::input(format!(
                    "--{flag} {text}: expected a positive number such as 8/255"
                ))
            }),
        None => Ok(default),
    };
    table.epsilon = number("epsilon", &args.epsilon, table.epsilon)?;
    table.step_size = number("step-size", &args.step_size, table.step_size)?;
    if let Some(list) = &args.attacks {
        table.attacks = list
            .split(',')
            .map(|name| {
                name.trim()
                    .parse()
                    .map_err(|e| CliError::input(format!("--attacks: {e}")))
            })
            .collect::<Result<_, _>>()?;
    }
    if let Some(preset) = &args.autoattack {
        table.autoattack = preset
            .parse()
            .map_err(|e| CliError::input(format!("--autoattack {preset}: {e}")))?;
    }
    match args.batch_size {
        Some(0) => {
            return Err(CliError::input(
                "--batch-size 0: expected a positive number",
            ))
        }
        Some(size) => table.batch_size = size,
        None => {}
    }
    let checkpoint =
        train::Checkpoint::load(&cfg, &args.checkpoint, !args.offline).map_err(CliError::input)?;
    progress::say!(
        "{}: {} on {} ({} test images, ε {:.6}) on {}",
        args.checkpoint.display(),
        model,
        dataset,
        checkpoint.test.first(table.images).len(),
        table.epsilon,
        crate::device::name(checkpoint.device)
    );
    // SIGTERM or ctrl-c ends the evaluation within the attack running.
    let stop = train::StopFlag::default();
    signals::install(&stop)
        .map_err(|e| CliError::input(format!("installing signal handlers: {e}")))?;
    let mut bar = progress::EvalProgress::new();
    let result = checkpoint.evaluate(&table, &stop, &mut |p| bar.update(p));
    bar.finish();
    let result = result.map_err(|Interrupted { batch }| {
        CliError::Stopped(format!(
            "stopped at test batch {batch}: eval keeps no partial table; run it again to start over"
        ))
    })?;
    let text = if args.json {
        let json = EvalJson {
            table: &result.table,
            per_image: args.per_image.then_some(&result.per_image),
        };
        serde_json::to_string_pretty(&json).unwrap_or_default() + "\n"
    } else {
        progress::attack_table(&result.table)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(())
}

/// `adarat eval --json`'s object: the table, and with `--per-image` its per-image records
/// (docs/run-folder.md#per-imagejson).
#[derive(serde::Serialize)]
struct EvalJson<'a> {
    #[serde(flatten)]
    table: &'a store::result::FinalTable,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_image: Option<&'a store::per_image::PerImage>,
}

/// `adarat list`: every run of the grid as the console sees it (docs/architecture.md#the-monitor):
/// its result, the process or scheduler task that runs it, why a queued one waits, why one failed.
fn list(args: &ConfigArgs) -> Result<(), CliError> {
    use crate::console::{monitor::Monitor, snapshot::JobState};
    use std::fmt::Write as _;
    let study = load_study(args)?;
    let output_dir = args.output.clone().unwrap_or_else(|| study.output_dir());
    let snapshot = Monitor::new(&study, &output_dir).scan();
    let grid = study.grid_datasets();
    // A closed pipe (`adarat list | head`) ends the listing quietly.
    let mut out = std::io::stdout().lock();
    for problem in &snapshot.problems {
        let _ = writeln!(out, "{problem}");
    }
    // The console's own try-out dataset is listed only where it holds runs, queued or submitted.
    let rows = (snapshot.jobs.iter()).filter(|row| {
        grid.contains(&row.job.dataset) || row.state != JobState::NotRun || row.remote.is_some()
    });
    for row in rows {
        let mut state = match (&row.result, row.state) {
            (_, JobState::Queued) | (None, _) => row.state.as_str().to_string(),
            (Some(result), JobState::Run(status)) if status != result.status => {
                format!("{status} ({})", progress::summary(result))
            }
            (Some(result), _) => format!("{}  on {}", progress::summary(result), result.device),
        };
        if let Some(owner) = &row.owner {
            let _ = write!(state, "  {owner}");
        }
        let waiting = (snapshot.queue.iter())
            .find(|queued| queued.run == row.run())
            .and_then(|queued| queued.waiting.as_ref());
        if let Some(waiting) = waiting {
            let _ = write!(state, "  ({waiting})");
        }
        if let Some(task) = row.remote.as_ref().filter(|task| task.active) {
            let (backend, id) = (task.backend, &task.id);
            let _ = write!(state, "  {backend} {id} {}", task.state.to_lowercase());
            if let Some(reason) = &task.reason {
                let _ = write!(state, " ({reason})");
            }
            if !task.after.is_empty() {
                let _ = write!(state, " after {}", task.after.join(", "));
            }
        }
        let error = row.result.as_ref().and_then(|r| r.error.as_ref());
        if let Some(why) = row.error.as_ref().filter(|e| Some(*e) != error) {
            let _ = write!(state, "  ({why})");
        }
        // With one seed the seed goes without saying.
        let seed = match snapshot.seeds.len() {
            1 => String::new(),
            _ => format!("seed {:<4} ", row.seed),
        };
        if writeln!(out, "{:<32} {seed}{state}", row.job.to_string()).is_err() {
            break;
        }
    }
    Ok(())
}

fn show(run: &str, seed: Option<u64>, args: &ConfigArgs) -> Result<(), CliError> {
    let folder = if Path::new(run).is_dir() {
        PathBuf::from(run)
    } else {
        let job: JobName = run
            .parse()
            .map_err(|e| CliError::input(format!("{run}: neither a run folder nor a job ({e})")))?;
        let study = load_study(args)?;
        let overrides = JobOverrides {
            output_dir: args.output.clone(),
            seed: seed.or_else(|| study.seeds().first().copied()),
            ..Default::default()
        };
        let cfg = study.resolve(&job, &overrides).map_err(CliError::input)?;
        RunStore::folder_of(&cfg)
    };
    let result = store::read_result(&folder.join(store::RESULT_FILE)).map_err(CliError::input)?;
    // A closed pipe is not an error worth reporting.
    let _ = std::io::stdout().write_all(progress::report(&result).as_bytes());
    Ok(())
}

fn worker(output: &Path) -> Result<(), CliError> {
    crate::lock::check_lock_support(output)?;
    let stop = train::StopFlag::default();
    signals::install(&stop)
        .map_err(|e| CliError::input(format!("installing signal handlers: {e}")))?;
    Ok(crate::worker::serve(output, &stop)?)
}

/// What carries the console's commands out on `study` (from `args`): the same for the console
/// and `adarat queue`.
fn control_of(study: &Study, args: &ConfigArgs) -> crate::console::control::Control {
    let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
    crate::console::control::Control {
        output_dir: absolute(args.output.clone().unwrap_or_else(|| study.output_dir())),
        config: config_path(args).map(absolute),
        sets: args.sets.clone(),
        placement: study.placement().clone(),
    }
}

/// `adarat queue`: the runs of the jobs and seeds to the worker's queue, as the console's enter
/// queues them; completed runs are said and left out unless `--fresh`.
fn queue(args: &QueueArgs) -> Result<(), CliError> {
    use crate::console::control::Outcome;
    let study = load_study(&args.config)?;
    let control = control_of(&study, &args.config);
    let seeds = seeds(&study, &args.seed);
    let mut runs = Vec::new();
    for job in &args.jobs {
        let job: JobName = job.parse().map_err(CliError::input)?;
        for &seed in &seeds {
            let overrides = JobOverrides {
                output_dir: Some(control.output_dir.clone()),
                seed: Some(seed),
                ..Default::default()
            };
            let cfg = study.resolve(&job, &overrides).map_err(CliError::input)?;
            match store::completed_run(&cfg).filter(|_| !args.fresh) {
                Some(done) => progress::say!(
                    "{job} seed {seed}: already completed in {}; --fresh trains it again",
                    done.folder.display()
                ),
                None => runs.push(crate::vocab::SeededJob { job, seed }),
            }
        }
    }
    if runs.is_empty() {
        return Ok(());
    }
    let outcome = control
        .enqueue(&runs, args.fresh)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if let Outcome::Enqueued { added, notice } = outcome {
        // A damaged queue file moved aside, by this enqueue or just before it.
        if let Some(notice) = notice {
            progress::say!("adarat: {notice}");
        }
        println!(
            "queued {} run(s) ({} waiting already) in {}",
            added.len(),
            runs.len() - added.len(),
            control.output_dir.display()
        );
    }
    Ok(())
}

/// The console on the study, its queue worker and runs in the study's output folder.
fn console(args: &ConfigArgs) -> Result<(), CliError> {
    use std::io::IsTerminal;
    let study = load_study(args)?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::input(
            "the console needs a terminal; in scripts use `adarat run`, `adarat queue`, `adarat list` or `adarat show`",
        ));
    }
    let control = control_of(&study, args);
    let output_dir = control.output_dir.clone();
    crate::lock::check_lock_support(&output_dir)?;
    let monitor = crate::console::monitor::Monitor::new(&study, &output_dir);
    match crate::console::event_loop::run(monitor, control) {
        Ok(farewell) => {
            if let Some(line) = farewell {
                println!("{line}");
            }
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}
