//! `queue:`, where the queue worker may run jobs: the devices it uses and how many jobs share one
//! (docs/architecture.md#processes-and-who-owns-what). `adarat run` ignores it; its jobs run one
//! after another on the job's own `device`.
use super::device::DeviceSpec;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// The queue's devices and how many jobs each runs at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Placement {
    #[serde(default)]
    pub devices: Devices,
    #[serde(default = "one", deserialize_with = "at_least_one")]
    pub jobs_per_device: usize,
}

impl Default for Placement {
    fn default() -> Placement {
        Placement {
            devices: Devices::Auto,
            jobs_per_device: 1,
        }
    }
}

fn one() -> usize {
    1
}

fn at_least_one<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    match usize::deserialize(deserializer)? {
        0 => Err(de::Error::custom(
            "expected at least 1 job per device, got 0",
        )),
        n => Ok(n),
    }
}

/// `auto` (every visible GPU, else the CPU) or a list such as `[cuda:0, cuda:2]`. A device listed
/// twice runs twice as many jobs (`[cpu, cpu]`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Devices {
    #[default]
    Auto,
    Listed(Vec<DeviceSpec>),
}

impl Serialize for Devices {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Devices::Auto => serializer.serialize_str("auto"),
            Devices::Listed(devices) => devices.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Devices {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Devices, D::Error> {
        struct DevicesVisitor;
        const EXPECTED: &str = "auto or a list of devices such as [cuda:0, cuda:2]";
        impl<'de> Visitor<'de> for DevicesVisitor {
            type Value = Devices;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Devices, E> {
                match text {
                    "auto" => Ok(Devices::Auto),
                    _ => Err(E::custom(format!("expected {EXPECTED}, got `{text}`"))),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Devices, A::Error> {
                let mut devices = Vec::new();
                while let Some(device) = seq.next_element::<DeviceSpec>()? {
                    if device == DeviceSpec::Auto {
                        return Err(de::Error::custom(
                            "`auto` stands alone (devices: auto), not in a list",
                        ));
                    }
                    devices.push(device);
                }
                if devices.is_empty() {
                    return Err(de::Error::custom(format!("expected {EXPECTED}, got []")));
                }
                Ok(Devices::Listed(devices))
            }
        }
        deserializer.deserialize_any(DevicesVisitor)
    }
}

impl Placement {
    /// The device of each slot the worker fills, given this machine's CUDA device count:
    /// interleaved, so that N jobs on N devices land one per device before any device takes two.
    pub fn slots(&self, cuda_devices: usize) -> Vec<String> {
        let devices: Vec<String> = match &self.devices {
            Devices::Auto if cuda_devices == 0 => vec!["cpu".to_string()],
            Devices::Auto => (0..cuda_devices).map(|i| format!("cuda:{i}")).collect(),
            Devices::Listed(listed) => listed
                .iter()
                .map(|d| match d {
                    DeviceSpec::Cuda(None) => "cuda:0".to_string(),
                    other => other.to_string(),
                })
                .collect(),
        };
        (0..self.jobs_per_device)
            .flat_map(|_| devices.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placement(yaml: &str) -> Result<Placement, String> {
        serde_yaml::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn slots_interleave_devices_and_auto_falls_back_to_the_cpu() {
        let auto = Placement::default();
        assert_eq!(auto.slots(0), ["cpu"]);
        assert_eq!(auto.slots(2), ["cuda:0", "cuda:1"]);
        let two = placement("{devices: [cuda, cuda:2], jobs_per_device: 2}").unwrap();
        assert_eq!(two.slots(0), ["cuda:0", "cuda:2", "cuda:0", "cuda:2"]);
        assert_eq!(
            placement("{devices: [cpu, cpu]}").unwrap().slots(4),
            ["cpu", "cpu"]
        );
        let round_trip: Placement =
            serde_yaml::from_str(&serde_yaml::to_string(&two).unwrap()).unwrap();
        assert_eq!(round_trip, two);
    }

    #[test]
    fn bad_placements_are_refused_with_what_was_expected() {
        for (yaml, expected) in [
            ("{devices: gpu}", "got `gpu`"),
            ("{devices: []}", "got []"),
            ("{devices: [cuda:0, auto]}", "stands alone"),
            ("{devices: [tpu]}", "got `tpu`"),
            ("{jobs_per_device: 0}", "at least 1"),
            ("{slots: 2}", "unknown field"),
        ] {
            let error = placement(yaml).unwrap_err();
            assert!(error.contains(expected), "{yaml}: {error}");
        }
    }
}
