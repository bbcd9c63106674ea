//! `experiments.yaml`: the whole study as data (datasets, models, methods and their per-dataset
//! parameters, schedules, evaluation, paths, device and the grid), and the resolved configuration
//! of a job. Every refusal is one line naming the file, the line and what was expected.
mod device;
pub mod job;
mod locate;
mod number;
mod placement;
mod scheduler;
mod study;

pub use device::{DeviceSpec, UnknownDevice};
pub use job::*;
pub use number::{parse_number, NumberError};
pub use placement::{Devices, Placement};
pub use scheduler::SchedulerSection;
pub use study::{ConfigError, JobOverrides, Study};

use serde_yaml::Value;
use std::path::Path;
use study::StudyFile;

/// The repository's `experiments.yaml`, built in for when no file is at hand.
pub const DEFAULT_CONFIG: &str = include_str!("../../experiments.yaml");

/// The study in `path`, or the built-in default when there is none.
pub fn open(path: Option<&Path>, sets: &[String]) -> Result<Study, ConfigError> {
    match path {
        Some(path) => load(path, sets),
        None => parse(DEFAULT_CONFIG, Path::new(BUILT_IN_ORIGIN), sets),
    }
}

/// How errors in the built-in default name their file.
pub const BUILT_IN_ORIGIN: &str = "<built-in experiments.yaml>";

/// Reads and validates a configuration file, with `--set KEY=VALUE` overrides applied.
pub fn load(path: &Path, sets: &[String]) -> Result<Study, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        origin: path.display().to_string(),
        line: None,
        message: format!("cannot read the configuration: {e}"),
    })?;
    parse(&text, path, sets)
}

/// Parses configuration text; `origin` names it in messages and anchors its relative paths.
pub fn parse(text: &str, origin: &Path, sets: &[String]) -> Result<Study, ConfigError> {
    let mut file: StudyFile = serde_yaml::from_str(text).map_err(|e| yaml_error(origin, &e))?;
    if sets.is_empty() {
        return Study::new(file, text.to_string(), origin, Vec::new());
    }
    let mut tree: Value = serde_yaml::from_str(text).map_err(|e| yaml_error(origin, &e))?;
    let mut set_paths = Vec::new();
    // Each override is checked as it is applied, so a refusal names the one `--set` at fault.
    for item in sets {
        let set_error = |message: String| ConfigError {
            origin: format!("--set {item}"),
            line: None,
            message,
        };
        let (key, raw) = item
            .split_once('=')
            .ok_or_else(|| set_error(SetError::NotKeyValue.to_string()))?;
        let value: Value =
            serde_yaml::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
        assign(&mut tree, key, value).map_err(|e| set_error(e.to_string()))?;
        file = serde_yaml::from_value(tree.clone())
            .map_err(|e| set_error(with_hint(e.to_string())))?;
        set_paths.push(key.to_string());
    }
    Study::new(file, text.to_string(), origin, set_paths)
}

/// serde_yaml's message (which names the dotted path) with its position as `file:line`.
fn yaml_error(origin: &Path, e: &serde_yaml::Error) -> ConfigError {
    let message = e.to_string();
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .to_string();
    ConfigError {
        origin: origin.display().to_string(),
        line: e.location().map(|l| l.line()),
        message: with_hint(message),
    }
}

/// serde_yaml's refusal, with where a key of an older study has moved to.
fn with_hint(message: String) -> String {
    // A study written before `scheduler:` (docs/slurm.md#configuration).
    if message.starts_with("unknown field `slurm`") {
        format!("{message}; the Slurm settings are now `scheduler: {{slurm: …}}`")
    } else {
        message
    }
}

/// Why a `--set KEY=VALUE` cannot be applied.
#[derive(thiserror::Error, Debug, PartialEq, Eq)]
enum SetError {
    #[error("expected KEY=VALUE")]
    NotKeyValue,
    #[error("`{0}` is not a dotted path")]
    NotDottedPath(String),
    #[error("`{key}`: `{segment}` is inside a value that is not a mapping")]
    InsideScalar { key: String, segment: String },
}

/// Sets the value at a dotted path, creating missing mappings on the way.
fn assign(tree: &mut Value, key: &str, value: Value) -> Result<(), SetError> {
    let mut node = tree;
    let segments: Vec<&str> = key.split('.').collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(SetError::NotDottedPath(key.to_string()));
    }
    for segment in &segments {
        if node.is_null() {
            *node = Value::Mapping(Default::default());
        }
        let Value::Mapping(map) = node else {
            return Err(SetError::InsideScalar {
                key: key.to_string(),
                segment: segment.to_string(),
            });
        };
        node = map
            .entry(Value::String(segment.to_string()))
            .or_insert(Value::Null);
    }
    *node = value;
    Ok(())
}
