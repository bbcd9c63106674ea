//! `slurm:`, the defaults of `adarat submit` (each has a command-line flag that overrides it).
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlurmDefaults {
    /// `--partition`; none: the cluster's default partition.
    #[serde(default)]
    pub partition: Option<String>,
    /// `--time` (Slurm's formats, e.g. `12:00:00` or `2-00:00:00`); none: the partition's limit.
    #[serde(default)]
    pub time: Option<String>,
    /// `--account`; none: the user's default account.
    #[serde(default)]
    pub account: Option<String>,
    /// GPUs each job asks for (`--gres=gpu:N`); 0 on a CPU partition.
    #[serde(default = "one")]
    pub gpus_per_job: u32,
    /// Seconds before the time limit at which Slurm warns a job, which then stops at its next
    /// batch and is requeued to resume.
    #[serde(default = "two_minutes")]
    pub signal_seconds: u32,
}

impl Default for SlurmDefaults {
    fn default() -> SlurmDefaults {
        SlurmDefaults {
            partition: None,
            time: None,
            account: None,
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
