//! A run folder's name (docs/run-folder.md#run-folder-names): `<method>_<dataset>_<mode>_<model>_seed<S>`,
//! written and read back here only.
use crate::config::JobConfig;
use crate::vocab::{JobName, ModelKind};
use std::fmt;
use std::str::FromStr;

/// What a run folder's name says: the job, its network and its seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RunName {
    pub job: JobName,
    pub model: ModelKind,
    pub seed: u64,
}

impl RunName {
    pub fn of(cfg: &JobConfig) -> RunName {
        RunName {
            job: cfg.name(),
            model: cfg.model,
            seed: cfg.seed,
        }
    }
}

impl fmt::Display for RunName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let JobName {
            method,
            dataset,
            mode,
        } = self.job;
        write!(
            f,
            "{method}_{dataset}_{mode}_{}_seed{}",
            self.model, self.seed
        )
    }
}

/// Not a run folder's name (an archived run's `<name>.<time>`, a lock folder, a stray file).
#[derive(thiserror::Error, Debug, PartialEq)]
#[error("`{0}` is not a run folder name (<method>_<dataset>_<mode>_<model>_seed<S>)")]
pub struct NotARunName(String);

impl FromStr for RunName {
    type Err = NotARunName;

    fn from_str(name: &str) -> Result<RunName, NotARunName> {
        let not = || NotARunName(name.to_string());
        // No name of the vocabulary contains `_`.
        let [method, dataset, mode, model, seed] = name.split('_').collect::<Vec<_>>()[..] else {
            return Err(not());
        };
        Ok(RunName {
            job: JobName {
                method: method.parse().map_err(|_| not())?,
                dataset: dataset.parse().map_err(|_| not())?,
                mode: mode.parse().map_err(|_| not())?,
            },
            model: model.parse().map_err(|_| not())?,
            seed: seed
                .strip_prefix("seed")
                .and_then(|s| s.parse().ok())
                .ok_or_else(not)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{DatasetKind, Method, Mode};

    #[test]
    fn every_name_reads_back_as_what_it_was_made_from() {
        for &method in Method::ALL {
            for &model in ModelKind::ALL {
                let name = RunName {
                    job: JobName {
                        method,
                        dataset: DatasetKind::Cifar100,
                        mode: Mode::AdaRat,
                    },
                    model,
                    seed: 42,
                };
                assert_eq!(name.to_string().parse(), Ok(name));
            }
        }
        assert_eq!(
            "trades_cifar10_adarat_resnet18_seed1"
                .parse::<RunName>()
                .unwrap()
                .to_string(),
            "trades_cifar10_adarat_resnet18_seed1"
        );
    }

    #[test]
    fn other_folders_are_not_runs() {
        for name in [
            "trades_cifar10_adarat_resnet18_seed1.20261201-061427",
            ".locks",
            "report",
            "trades_cifar10_adarat_resnet18_seedx",
            "trades_cifar10_fancy_resnet18_seed1",
        ] {
            assert!(name.parse::<RunName>().is_err(), "{name}");
        }
    }
}
