//! The study's vocabulary (docs/protocol.md#vocabulary): methods, datasets, ratio modes, models and job names.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A name outside its closed set, e.g. `unknown method `pgdat` (expected one of: st, pgd-at, …)`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown {what} `{name}` (expected one of: {})", expected.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub name: String,
    pub expected: Vec<&'static str>,
}

/// Defines a closed set of names with their canonical spelling (and any other accepted ones after
/// `|`), parsing and serde support. Used beside this module for other closed sets of names.
macro_rules! vocabulary {
    (
        $(#[$doc:meta])* $name:ident, $what:literal {
            $($(#[$variant_doc:meta])* $variant:ident => $text:literal $(| $alias:literal)*),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord,
            ::serde::Serialize, ::serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$variant_doc])* #[serde(rename = $text $(, alias = $alias)*)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::vocab::UnknownName;
            fn from_str(s: &str) -> Result<Self, $crate::vocab::UnknownName> {
                match s {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err($crate::vocab::UnknownName {
                        what: $what,
                        name: s.to_string(),
                        expected: $name::ALL.iter().map(|v| v.as_str()).collect(),
                    }),
                }
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary!(
    /// A training method of the study (docs/protocol.md#methods).
    Method, "method" {
        St => "st", PgdAt => "pgd-at", Fat => "fat", Dat => "dat", Trades => "trades",
        KdAt => "kd-at", Iad => "iad", Generalist => "generalist",
    }
);

vocabulary!(
    /// A dataset: the study's two and three small ones for quick work.
    DatasetKind, "dataset" {
        Cifar10 => "cifar10", Cifar100 => "cifar100", FashionMnist => "fashion-mnist",
        Mnist => "mnist", Synthetic => "synthetic",
    }
);

vocabulary!(
    /// How the regulariser is weighted against the standard loss (docs/protocol.md#fixrat-and-adarat).
    Mode, "mode" { Baseline => "baseline", FixRat => "fixrat", AdaRat => "adarat" }
);

vocabulary!(
    /// A network architecture (docs/protocol.md#models).
    ModelKind, "model" {
        ResNet18 => "resnet18", Wrn34_10 => "wrn-34-10", PreActResNet18 => "preact-resnet18",
        SmallCnn => "small-cnn",
    }
);

/// What the readers of the final table show of one of its attacks.
#[derive(Debug)]
pub struct FinalAttackInfo {
    /// In reports, sanity flags and the Compare screen: `PGD-50`.
    pub label: &'static str,
    /// Where a row's name is narrow (the Compare screen): `AA`.
    pub short: &'static str,
    /// The research code's log column (`train.log`, the run's attack list): `PGD50`.
    pub reference: &'static str,
    /// A column of the paper's main table (docs/report.md).
    pub main_table: bool,
    /// Part of the research code's attack table that `adarat bench` times (bench/reference.py).
    pub bench: bool,
}

/// Defines the final attacks as a [`vocabulary!`] whose every name carries its [`FinalAttackInfo`].
macro_rules! final_attacks {
    (
        $(#[$doc:meta])* $name:ident {
            $($variant:ident => $text:literal $info:tt),+ $(,)?
        }
    ) => {
        vocabulary!($(#[$doc])* $name, "attack" { $($variant => $text),+ });

        impl $name {
            pub fn info(self) -> &'static FinalAttackInfo {
                match self { $($name::$variant => &FinalAttackInfo $info),+ }
            }
        }
    };
}

final_attacks!(
    /// An attack of the final table (docs/protocol.md#the-final-evaluation), in the table's order,
    /// which is also result.json's and train.log's. Adding one: a line here, and its file in
    /// `attacks/` with its arm in `attacks::final_table_attack` (docs/architecture.md).
    FinalAttack {
        Fgsm => "fgsm" { label: "FGSM", short: "FGSM", reference: "FGSM", main_table: true, bench: true },
        Pgd10 => "pgd10" { label: "PGD-10", short: "PGD-10", reference: "PGD10", main_table: false, bench: true },
        Pgd20 => "pgd20" { label: "PGD-20", short: "PGD-20", reference: "PGD20", main_table: true, bench: true },
        Pgd50 => "pgd50" { label: "PGD-50", short: "PGD-50", reference: "PGD50", main_table: true, bench: true },
        Cw => "cw" { label: "CW", short: "CW", reference: "CW", main_table: true, bench: true },
        AutoAttack => "autoattack" { label: "AutoAttack", short: "AA", reference: "AA", main_table: true, bench: false },
    }
);

vocabulary!(
    /// Where a run stands, as `result.json` records it (docs/run-folder.md#resultjson).
    Status, "status" {
        Running => "running", Completed => "completed", Stopped => "stopped", Failed => "failed",
    }
);

/// A job: `method/dataset/mode`, e.g. `trades/cifar10/adarat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobName {
    pub method: Method,
    pub dataset: DatasetKind,
    pub mode: Mode,
}

impl fmt::Display for JobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.method, self.dataset, self.mode)
    }
}

/// One run of a grid job: the job with one of the study's seeds (`grid.seeds`); runs that differ
/// only in seed form one group of the study's tables (docs/report.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SeededJob {
    pub job: JobName,
    pub seed: u64,
}

impl fmt::Display for SeededJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} seed {}", self.job, self.seed)
    }
}

/// Why a text is not a job name.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum JobNameError {
    #[error("job `{0}` is not of the form method/dataset/mode")]
    Shape(String),
    #[error(transparent)]
    Unknown(#[from] UnknownName),
    #[error("job `{0}`: st has the baseline mode only")]
    StBaselineOnly(String),
}

impl FromStr for JobName {
    type Err = JobNameError;
    fn from_str(s: &str) -> Result<Self, JobNameError> {
        let parts: Vec<&str> = s.split('/').collect();
        let [method, dataset, mode] = parts.as_slice() else {
            return Err(JobNameError::Shape(s.to_string()));
        };
        let job = JobName {
            method: method.parse()?,
            dataset: dataset.parse()?,
            mode: mode.parse()?,
        };
        if job.method == Method::St && job.mode != Mode::Baseline {
            return Err(JobNameError::StBaselineOnly(s.to_string()));
        }
        Ok(job)
    }
}

/// Written and read as its name, `method/dataset/mode` (result.json's `job`).
impl Serialize for JobName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for JobName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl Method {
    /// Whether the method distils from finished teacher runs (KD-AT and IAD).
    pub fn learns_from_teachers(self) -> bool {
        matches!(self, Method::KdAt | Method::Iad)
    }
}

/// What a teacher is to its student (docs/protocol.md#teachers-of-kd-at-and-iad).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeacherRole {
    /// The finished `pgd-at/<dataset>/baseline` run.
    Robust,
    /// The finished `st/<dataset>/baseline` run.
    Standard,
}

impl TeacherRole {
    pub fn describe(self) -> &'static str {
        match self {
            TeacherRole::Robust => "robust teacher",
            TeacherRole::Standard => "standard teacher",
        }
    }

    fn method(self) -> Method {
        match self {
            TeacherRole::Robust => Method::PgdAt,
            TeacherRole::Standard => Method::St,
        }
    }
}

impl JobName {
    /// The job's teacher jobs, the standard teacher first (the order they are trained in); none
    /// for a method without teachers.
    pub fn teachers(&self) -> Vec<(TeacherRole, JobName)> {
        if !self.method.learns_from_teachers() {
            return Vec::new();
        }
        [TeacherRole::Standard, TeacherRole::Robust]
            .into_iter()
            .map(|role| {
                let teacher = JobName {
                    method: role.method(),
                    dataset: self.dataset,
                    mode: Mode::Baseline,
                };
                (role, teacher)
            })
            .collect()
    }
}

vocabulary!(
    /// Number format of the training step (evaluations are always fp32).
    Precision, "precision" {
        /// Everything in fp32 (on CUDA, convolutions may use TF32 as libtorch allows by default).
        Fp32 => "fp32",
        /// The training step's forward passes under bf16 autocast; see `train::precision`.
        Bf16 => "bf16",
    }
);

impl Default for Precision {
    /// What a file that names no precision trains in.
    fn default() -> Precision {
        Precision::Fp32
    }
}

vocabulary!(
    /// How a run is evaluated (docs/protocol.md#protocol-default-and-protocol-reference).
    Protocol, "protocol" {
        /// Best-practice evaluation: deterministic test set, standard AutoAttack.
        Default => "default",
        /// The research code's evaluation: CIFAR-10 test crops, torchattacks 3.5.1 AutoAttack.
        Reference => "reference",
    }
);

vocabulary!(
    /// The strength of the final table's AutoAttack.
    AutoAttackPreset, "AutoAttack preset" {
        /// Croce & Hein 2020: 100 iterations, Square without `resc_schedule`.
        Standard => "standard",
        /// torchattacks 3.5.1 defaults, as the reference calls it (docs/protocol.md Q27).
        Torchattacks351 => "torchattacks-3.5.1",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_round_trip_and_refuse_nonsense() {
        let job: JobName = "pgd-at/cifar10/adarat".parse().unwrap();
        assert_eq!(job.method, Method::PgdAt);
        assert_eq!(job.to_string(), "pgd-at/cifar10/adarat");
        assert!("pgd-at/cifar10".parse::<JobName>().is_err());
        assert!("pgdat/cifar10/adarat"
            .parse::<JobName>()
            .unwrap_err()
            .to_string()
            .contains("unknown method"));
        assert!("st/cifar10/fixrat".parse::<JobName>().is_err());
    }

    #[test]
    fn configuration_names_keep_their_file_spellings() {
        assert_eq!(Precision::default(), Precision::Fp32);
        assert_eq!("bf16".parse(), Ok(Precision::Bf16));
        assert_eq!(Protocol::Reference.to_string(), "reference");
        assert_eq!(
            serde_yaml::from_str::<AutoAttackPreset>("torchattacks-3.5.1").unwrap(),
            AutoAttackPreset::Torchattacks351
        );
        assert_eq!(
            serde_json::to_string(&AutoAttackPreset::Standard).unwrap(),
            "\"standard\""
        );
        assert_eq!(
            "weak".parse::<AutoAttackPreset>().unwrap_err().to_string(),
            "unknown AutoAttack preset `weak` (expected one of: standard, torchattacks-3.5.1)"
        );
    }
}
