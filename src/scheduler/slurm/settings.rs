//! `scheduler: {slurm: …}`, the Slurm backend's settings (each has a flag of `adarat submit` that
//! overrides it).
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmSettings {
    /// `--partition`; none: the cluster's default partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--time` (Slurm's formats, e.g. `12:00:00` or `2-00:00:00`); none: the partition's limit.
    #[serde(default)]
    pub time: Option<String>,
    /// `--account`; none: the user's default account.
    #[serde(default)]
    pub account: Option<String>,
    /// `--qos`; none: the account's default quality of service.
    #[serde(default)]
    pub qos: Option<String>,
    /// GPUs each job asks for (`--gres=gpu:N`); 0 on a CPU partition.
    #[serde(default = "one")]
    pub gpus_per_job: u32,
    /// Seconds before the time limit at which Slurm warns a job, which then stops at its next
    /// batch and is requeued to resume.
    #[serde(default = "two_minutes")]
    pub signal_seconds: u32,
}

impl Default for SlurmSettings {
    fn default() -> SlurmSettings {
        SlurmSettings {
            partition: None,
            time: None,
            account: None,
            qos: None,
            gpus_per_job: one(),
            signal_seconds: two_minutes(),
        }
    }
}

fn one() -> u32 {
    1
}

fn two_minutes() -> u32 {
    120
}

/// A Slurm option whose value is not in Slurm's syntax: refused before any script is written, so
/// that no value can start a line or another option of the batch script (docs/slurm.md).
#[derive(thiserror::Error, Debug, PartialEq)]
#[error("--{option} (scheduler.slurm.{option}): {value:?} is not {expected}")]
pub struct SlurmOptionError {
    option: &'static str,
    value: String,
    expected: &'static str,
}

impl SlurmSettings {
    /// Checks every option against Slurm's syntax for it.
    pub fn check(&self) -> Result<(), SlurmOptionError> {
        const NAMES: &str = "a comma-separated list of names (letters, digits, `_`, `-`, `.`)";
        const NAME: &str = "a name (letters, digits, `_`, `-`, `.`)";
        const TIME: &str =
            "a time limit in Slurm's formats (M, M:S, H:M:S, D-H, D-H:M, D-H:M:S or UNLIMITED)";
        checked("partition", &self.partition, is_name_list, NAMES)?;
        checked("account", &self.account, is_name, NAME)?;
        checked("qos", &self.qos, is_name_list, NAMES)?;
        checked("time", &self.time, is_time_limit, TIME)
    }
}

fn checked(
    option: &'static str,
    value: &Option<String>,
    valid: fn(&str) -> bool,
    expected: &'static str,
) -> Result<(), SlurmOptionError> {
    match value.as_deref() {
        Some(value) if !valid(value) => Err(SlurmOptionError {
            option,
            value: value.to_string(),
            expected,
        }),
        _ => Ok(()),
    }
}

fn is_name(value: &str) -> bool {
    !value.is_empty()
        && (value.chars()).all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_name_list(value: &str) -> bool {
    value.split(',').all(is_name)
}

/// `minutes`, `minutes:seconds`, `hours:minutes:seconds`, `days-hours`, `days-hours:minutes`,
/// `days-hours:minutes:seconds` (sbatch's `--time`), or no limit.
fn is_time_limit(value: &str) -> bool {
    if matches!(
        value.to_ascii_lowercase().as_str(),
        "unlimited" | "infinite"
    ) {
        return true;
    }
    let numbers = |text: &str, most: usize| {
        let parts: Vec<&str> = text.split(':').collect();
        parts.len() <= most
            && (parts.iter()).all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    };
    match value.split_once('-') {
        Some((days, rest)) => numbers(days, 1) && numbers(rest, 3),
        None => numbers(value, 3),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(option: &str, value: &str) -> SlurmSettings {
        let mut slurm = SlurmSettings::default();
        let value = Some(value.to_string());
        match option {
            "partition" => slurm.partition = value,
            "account" => slurm.account = value,
            "qos" => slurm.qos = value,
            _ => slurm.time = value,
        }
        slurm
    }

    #[test]
    fn slurms_own_syntax_passes() {
        for (option, value) in [
            ("partition", "gpu"),
            ("partition", "gpu-a100,gpu_h100.long"),
            ("account", "proj-123"),
            ("qos", "high"),
            ("time", "30"),
            ("time", "30:00"),
            ("time", "12:00:00"),
            ("time", "2-00"),
            ("time", "2-12:30"),
            ("time", "2-00:00:00"),
            ("time", "UNLIMITED"),
        ] {
            assert_eq!(with(option, value).check(), Ok(()), "{option}={value}");
        }
    }

    #[test]
    fn newlines_spaces_and_other_syntax_are_refused_in_one_line() {
        for option in ["partition", "account", "qos", "time"] {
            for value in [
                "gpu\n#SBATCH --wrap=rm",
                "gpu\nrm -rf ~",
                "gpu a100",
                " gpu",
                "",
                "gpu;id",
                "$(id)",
                "gpu\r",
                "gpu\t",
            ] {
                let error = with(option, value).check().unwrap_err().to_string();
                assert!(
                    error.starts_with(&format!("--{option} (scheduler.slurm.{option}): ")),
                    "{error}"
                );
                assert_eq!(error.lines().count(), 1, "{error}");
            }
        }
        for time in ["1:2:3:4", "1-2-3", "12h", "-1", "1-", ":30", "1-2:3:4:5"] {
            assert!(with("time", time).check().is_err(), "{time}");
        }
        assert!(with("account", "a,b").check().is_err(), "one account");
    }
}
