//! `adarat export`: the study's tables from its run folders (docs/report.md).
use super::exit::CliError;
use super::{load_study, ConfigArgs};
use crate::report::{self, figures::Barrier, tables::Filter, Format};
use crate::vocab::{DatasetKind, Method};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    #[arg(long = "format", value_name = "F", help = formats_help())]
    formats: Vec<String>,
    /// Where the files go (default: `report/` in the first output folder).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Only these datasets (comma-separated).
    #[arg(long, value_name = "LIST")]
    datasets: Option<String>,
    /// Only these methods (comma-separated).
    #[arg(long, value_name = "LIST")]
    methods: Option<String>,
    /// Figures too, as PNG and SVG in `figures/`: SA and RA curves, ratio, barrier, trade-off.
    #[arg(long)]
    plots: bool,
    /// Output folders to read runs from; repeatable (default: the configuration's).
    #[arg(long = "output", value_name = "DIR")]
    outputs: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// `--format`'s help: the formats of the vocabulary (no closing period, as clap writes a
/// one-sentence doc comment).
fn formats_help() -> String {
    let names: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
    format!("{}; repeatable (default: markdown)", names.join(", "))
}

fn list<T: std::str::FromStr>(text: &Option<String>) -> Result<Vec<T>, CliError>
where
    T::Err: std::fmt::Display,
{
    (text.iter())
        .flat_map(|t| t.split(','))
        .map(|item| item.trim().parse::<T>().map_err(CliError::input))
        .collect()
}

pub(super) fn export(args: ExportArgs) -> Result<(), CliError> {
    let formats = if args.formats.is_empty() {
        vec![Format::Markdown]
    } else {
        (args.formats.iter())
            .map(|f| f.parse::<Format>().map_err(CliError::input))
            .collect::<Result<Vec<_>, _>>()?
    };
    let filter = Filter {
        datasets: list::<DatasetKind>(&args.datasets)?,
        methods: list::<Method>(&args.methods)?,
    };
    let config = ConfigArgs {
        config: args.config.clone(),
        sets: args.sets.clone(),
        output: None,
    };
    // The study names the output folder when none is given, and the barrier to draw when no
    // exported AdaRAT run has its own; with output folders given, a study that does not load only
    // costs that fallback.
    let (study, outputs) = if args.outputs.is_empty() {
        let study = load_study(&config)?;
        let output = study.output_dir();
        (Some(study), vec![output])
    } else {
        (load_study(&config).ok(), args.outputs.clone())
    };
    let plots = args
        .plots
        .then(|| study.as_ref().and_then(Barrier::of_study));
    if let Some(missing) = outputs.iter().find(|dir| !dir.is_dir()) {
        return Err(CliError::input(format!(
            "{}: no such output folder",
            missing.display()
        )));
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| outputs[0].join("report"));
    let exported =
        report::export(&outputs, &filter, &formats, plots, &out).map_err(CliError::input)?;
    print!("{}", exported.markdown);
    for (folder, why) in &exported.skipped {
        super::progress::say!("adarat: left out {}: {why}", folder.display());
    }
    for file in &exported.files {
        println!("wrote {}", file.display());
    }
    match exported.figures_failed {
        Some(error) => Err(CliError::input(format!(
            "tables written, no figures: {error}"
        ))),
        None => Ok(()),
    }
}
