//! The study's vocabulary (docs/protocol.md#vocabulary): methods, datasets, ratio modes, models and job names.
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Defines a closed set of names with their canonical spelling, parsing and serde support.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown {} `{}` (expected one of: {})", $what, s, names.join(", "))
                })
            }
        }
    };
}

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

vocabulary!(
    /// An attack of the final table (docs/protocol.md#the-final-evaluation), in the table's order.
    FinalAttack, "attack" {
        Fgsm => "fgsm", Pgd10 => "pgd10", Pgd20 => "pgd20", Pgd50 => "pgd50", Cw => "cw",
        AutoAttack => "autoattack",
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

impl FromStr for JobName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let [method, dataset, mode] = parts.as_slice() else {
            return Err(format!("job `{s}` is not of the form method/dataset/mode"));
        };
        let job = JobName {
            method: method.parse()?,
            dataset: dataset.parse()?,
            mode: mode.parse()?,
        };
        if job.method == Method::St && job.mode != Mode::Baseline {
            return Err(format!("job `{s}`: st has the baseline mode only"));
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
            .contains("unknown method"));
        assert!("st/cifar10/fixrat".parse::<JobName>().is_err());
    }
}
