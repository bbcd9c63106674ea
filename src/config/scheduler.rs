//! `scheduler:`: the backend that `adarat submit` and the console's `S` send runs to, as one key
//! naming it over a mapping of its settings (`scheduler: {slurm: {partition: gpu}}`). The
//! backend reads its own settings when it is built (by the scheduler module, above this one), so a new
//! backend adds nothing here (docs/architecture.md#how-to-add).
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;

/// The backend adarat submits to when the study names none.
const DEFAULT_BACKEND: &str = "slurm";

#[derive(Clone, Debug, PartialEq)]
pub struct SchedulerSection {
    /// The backend's name (`slurm`, `local`).
    pub backend: String,
    /// Its settings, always a mapping (empty when none are given).
    pub settings: Value,
}

impl Default for SchedulerSection {
    fn default() -> SchedulerSection {
        SchedulerSection {
            backend: DEFAULT_BACKEND.to_string(),
            settings: Value::Mapping(Mapping::new()),
        }
    }
}

impl<'de> Deserialize<'de> for SchedulerSection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entries = BTreeMap::<String, Value>::deserialize(deserializer)?;
        let mut entries = entries.into_iter();
        let (Some((backend, settings)), None) = (entries.next(), entries.next()) else {
            return Err(D::Error::custom(
                "scheduler: expected one backend and its settings, e.g. `scheduler: {slurm: {partition: gpu}}`",
            ));
        };
        let settings = match settings {
            Value::Null => Value::Mapping(Mapping::new()),
            Value::Mapping(map) => Value::Mapping(map),
            _ => {
                return Err(D::Error::custom(format!(
                    "scheduler.{backend}: expected a mapping of its settings"
                )))
            }
        };
        Ok(SchedulerSection { backend, settings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_backend_with_a_mapping_of_settings() {
        let section: SchedulerSection = serde_yaml::from_str("slurm: {partition: gpu}").unwrap();
        assert_eq!(section.backend, "slurm");
        assert_eq!(section.settings["partition"], Value::from("gpu"));
        let bare: SchedulerSection = serde_yaml::from_str("local:").unwrap();
        assert_eq!(bare.settings, Value::Mapping(Mapping::new()));
        for refused in ["{}", "{slurm: {}, local: {}}", "slurm: gpu"] {
            assert!(
                serde_yaml::from_str::<SchedulerSection>(refused).is_err(),
                "{refused}"
            );
        }
    }
}
