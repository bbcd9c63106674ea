//! `adarat export`: the study's tables from its run folders (docs/report.md).
use super::exit::CliError;
use super::{load_study, ConfigArgs};
use crate::report::{self, tables::Filter, Format};
use crate::vocab::{DatasetKind, Method};
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub(super) struct ExportArgs {
    /// markdown, latex, csv or json; repeatable (default: markdown).
    #[arg(long = "format", value_name = "F")]
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
    /// Output folders to read runs from; repeatable (default: the configuration's).
    #[arg(long = "output", value_name = "DIR")]
    outputs: Vec<PathBuf>,
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
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
    let outputs = if args.outputs.is_empty() {
        let config = ConfigArgs {
            config: args.config.clone(),
            sets: args.sets.clone(),
            output: None,
        };
        vec![load_study(&config)?.output_dir()]
    } else {
        args.outputs.clone()
    };
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
    let exported = report::export(&outputs, &filter, &formats, &out).map_err(CliError::input)?;
    print!("{}", exported.markdown);
    for (folder, why) in &exported.skipped {
        super::progress::say!("adarat: left out {}: {why}", folder.display());
    }
    for file in &exported.files {
        println!("wrote {}", file.display());
    }
    Ok(())
}
