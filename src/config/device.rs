//! The device grammar, `auto | cpu | cuda | cuda:N`, parsed once where a configuration or a
//! `--device` flag is read. Whether this machine has the device is the engine's question
//! (`crate::device`), asked when a job is about to run.
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// What the grammar allows, as messages spell it.
const GRAMMAR: &str = "auto, cpu, cuda or cuda:N";

/// A device as configured. `cuda` and `cuda:0` name the same device but stay apart, so a run folder
/// records the spelling it was given (docs/run-folder.md#configyaml).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceSpec {
    /// The first CUDA device when there is one, else the CPU.
    Auto,
    Cpu,
    /// `cuda` (None: the first device) or `cuda:N`.
    Cuda(Option<usize>),
}

/// A device outside the grammar.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("device `{0}`: expected {GRAMMAR}")]
pub struct UnknownDevice(pub String);

impl FromStr for DeviceSpec {
    type Err = UnknownDevice;

    fn from_str(text: &str) -> Result<DeviceSpec, UnknownDevice> {
        match text {
            "auto" => Ok(DeviceSpec::Auto),
            "cpu" => Ok(DeviceSpec::Cpu),
            "cuda" => Ok(DeviceSpec::Cuda(None)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(index)) => Ok(DeviceSpec::Cuda(Some(index))),
                _ => Err(UnknownDevice(other.to_string())),
            },
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Auto => f.write_str("auto"),
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(None) => f.write_str("cuda"),
            DeviceSpec::Cuda(Some(index)) => write!(f, "cuda:{index}"),
        }
    }
}

impl Serialize for DeviceSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<DeviceSpec, D::Error> {
        // A visitor, so that the file's parser reports a refusal at the value's line and path.
        struct SpecVisitor;
        impl Visitor<'_> for SpecVisitor {
            type Value = DeviceSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(GRAMMAR)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<DeviceSpec, E> {
                // The key is named already (`device: …`): the message says only what was wrong.
                text.parse()
                    .map_err(|_| E::custom(format!("expected {GRAMMAR}, got `{text}`")))
            }
        }
        deserializer.deserialize_str(SpecVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grammar_round_trips_and_refuses_the_rest() {
        for text in ["auto", "cpu", "cuda", "cuda:0", "cuda:3"] {
            let spec: DeviceSpec = text.parse().unwrap();
            assert_eq!(spec.to_string(), text);
            assert_eq!(serde_yaml::from_str::<DeviceSpec>(text).unwrap(), spec);
        }
        assert_ne!("cuda".parse::<DeviceSpec>(), "cuda:0".parse::<DeviceSpec>());
        assert_eq!(
            "gpu".parse::<DeviceSpec>().unwrap_err().to_string(),
            "device `gpu`: expected auto, cpu, cuda or cuda:N"
        );
        for bad in ["cuda:x", "cuda:", "cuda:-1", "CPU", ""] {
            assert!(bad.parse::<DeviceSpec>().is_err(), "{bad}");
        }
        let e = serde_yaml::from_str::<DeviceSpec>("gpu").unwrap_err();
        assert!(e
            .to_string()
            .starts_with("expected auto, cpu, cuda or cuda:N, got `gpu`"));
    }
}
