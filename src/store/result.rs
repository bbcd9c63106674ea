//! `result.json` (docs/run-folder.md#resultjson): field names are an interface other tools read.
use crate::config::Protocol;
use crate::vocab::{DatasetKind, FinalAttack, JobName, Method, Mode, ModelKind, Status};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub job: JobName,
    pub method: Method,
    pub dataset: DatasetKind,
    pub mode: Mode,
    pub model: ModelKind,
    pub seed: u64,
    pub protocol: Protocol,
    pub device: String,
    pub status: Status,
    pub error: Option<String>,
    pub epochs: usize,
    pub epochs_done: usize,
    /// Wall time of the run so far, training and testing.
    pub seconds: f64,
    pub epochs_log: Vec<EpochRecord>,
    /// Where test clean (SA) and PGD (RA) accuracy peaked, the study's central question.
    pub peaks: Option<Peaks>,
    #[serde(rename = "final")]
    pub final_table: Option<FinalTable>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-indexed.
    pub epoch: usize,
    pub lr: f64,
    pub train_loss: f64,
    pub train_clean_acc: f64,
    pub train_adv_acc: f64,
    pub test_clean_acc: f64,
    pub test_fgsm_acc: f64,
    pub test_pgd_acc: f64,
    /// Mean slope on `L_s` over the batches that used it (FixRAT: 1; AdaRAT: mean H' on the barrier
    /// branch); null in baseline or when every batch took AdaRAT's clean-only branch.
    pub ratio_mean: Option<f64>,
    /// Share of batches on AdaRAT's clean-only branch; null outside AdaRAT.
    pub clean_branch_share: Option<f64>,
    /// Training loop wall time (test excluded).
    pub seconds: f64,
    pub images_per_second: f64,
    /// Wall time of the per-epoch test (clean, FGSM and PGD-K over the test set).
    #[serde(default)]
    pub test_seconds: f64,
    /// The unweighted batch means of `L_s` and `L_a`, as the reference logs them (`train_clean_loss`,
    /// `train_AE_loss`).
    pub train_clean_loss: f64,
    pub train_adv_loss: f64,
    pub test_clean_loss: f64,
    pub test_fgsm_loss: f64,
    pub test_pgd_loss: f64,
    /// Local time the epoch ended, `YYYY/MM/DD HH:MM:SS` (the train.log prefix).
    pub finished_at: String,
    /// KD-AT and IAD: the robust teacher's accuracy on the training adversarial examples (%, the
    /// reference's `teacher` column); null for other methods.
    #[serde(default)]
    pub train_teacher_acc: Option<f64>,
    /// Generalist: clean and PGD-K test accuracy of the ST teacher `T_st` (the reference's
    /// `Natural` and `PGD20` columns, 6.7); null for other methods.
    #[serde(default)]
    pub test_st_clean_acc: Option<f64>,
    #[serde(default)]
    pub test_st_pgd_acc: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peak {
    pub epoch: usize,
    pub value: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    pub test_clean_acc: Peak,
    pub test_pgd_acc: Peak,
}

impl Peaks {
    /// The first epoch reaching the highest value of each curve.
    pub fn of(records: &[EpochRecord]) -> Option<Peaks> {
        let best = |value: fn(&EpochRecord) -> f64| {
            records
                .iter()
                .fold(None, |best: Option<Peak>, r| match best {
                    Some(p) if p.value >= value(r) => Some(p),
                    _ => Some(Peak {
                        epoch: r.epoch,
                        value: value(r),
                    }),
                })
        };
        Some(Peaks {
            test_clean_acc: best(|r| r.test_clean_acc)?,
            test_pgd_acc: best(|r| r.test_pgd_acc)?,
        })
    }
}

/// The final attack table; an attack that was not run is null.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FinalTable {
    pub clean: Option<f64>,
    /// One key per final attack, after `clean`.
    #[serde(flatten)]
    pub accuracies: AttackAccuracies,
    /// The accuracy over the images correct clean and under every attack that ran (the AND of
    /// their per-image records); null when no attack ran, and in results from before it was kept.
    #[serde(default)]
    pub worst_case: Option<f64>,
    pub autoattack_preset: Option<String>,
    /// Robust accuracy after each AutoAttack sub-attack, in the order they ran.
    #[serde(default)]
    pub autoattack_steps: Vec<SubAttackRow>,
    /// The images evaluated, the L∞ budget and the seed of every attack's randomness.
    #[serde(default)]
    pub images: Option<usize>,
    #[serde(default)]
    pub epsilon: Option<f64>,
    #[serde(default)]
    pub seed: Option<u64>,
    /// Wall seconds each attack took, by name (`fgsm`, …, `autoattack`).
    #[serde(default)]
    pub seconds: BTreeMap<String, f64>,
    /// Signs of gradient masking that reviewers check for (empty when none).
    #[serde(default)]
    pub flags: Vec<String>,
}

/// The accuracy (%) under each final attack that ran. Written as one key per attack of the
/// vocabulary (its name), in the vocabulary's order, null for an attack not run; read back from
/// any subset of those keys.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AttackAccuracies(BTreeMap<FinalAttack, f64>);

impl FromIterator<(FinalAttack, f64)> for AttackAccuracies {
    fn from_iter<I: IntoIterator<Item = (FinalAttack, f64)>>(iter: I) -> AttackAccuracies {
        AttackAccuracies(iter.into_iter().collect())
    }
}

impl Serialize for AttackAccuracies {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(FinalAttack::ALL.len()))?;
        for attack in FinalAttack::ALL {
            map.serialize_entry(attack.as_str(), &self.0.get(attack))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for AttackAccuracies {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> serde::de::Visitor<'de> for Keys {
            type Value = AttackAccuracies;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("accuracies by final attack")
            }

            // Beside `clean` in the table, so any key that names no attack belongs to no one
            // (the table never refused unknown keys).
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AttackAccuracies, A::Error> {
                let mut accuracies = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.parse::<FinalAttack>() {
                        Ok(attack) => {
                            if let Some(accuracy) = map.next_value::<Option<f64>>()? {
                                accuracies.insert(attack, accuracy);
                            }
                        }
                        Err(_) => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(AttackAccuracies(accuracies))
            }
        }
        deserializer.deserialize_map(Keys)
    }
}

/// The robust accuracy (%) once an AutoAttack sub-attack has run, and its wall time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubAttackRow {
    pub attack: String,
    pub accuracy: f64,
    pub seconds: f64,
}

impl FinalTable {
    /// The attacks' accuracies under the reference's names, in its order.
    pub fn attacks(&self) -> Vec<(&'static str, Option<f64>)> {
        (FinalAttack::ALL.iter())
            .map(|attack| (attack.info().reference, self.accuracy(*attack)))
            .collect()
    }

    /// The accuracy under one attack; None when it was not run.
    pub fn accuracy(&self, attack: FinalAttack) -> Option<f64> {
        self.accuracies.0.get(&attack).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `result.json` as adarat writes it: an attack not run is null, keys in this order.
    const WRITTEN: &str = r#"{
  "job": "pgd-at/cifar10/adarat",
  "method": "pgd-at",
  "dataset": "cifar10",
  "mode": "adarat",
  "model": "resnet18",
  "seed": 1,
  "protocol": "default",
  "device": "cuda:0",
  "status": "completed",
  "error": null,
  "epochs": 1,
  "epochs_done": 1,
  "seconds": 12.5,
  "epochs_log": [
    {
      "epoch": 1,
      "lr": 0.1,
      "train_loss": 1.25,
      "train_clean_acc": 50.0,
      "train_adv_acc": 45.68,
      "test_clean_acc": 60.0,
      "test_fgsm_acc": 40.0,
      "test_pgd_acc": 35.0,
      "ratio_mean": 0.75,
      "clean_branch_share": null,
      "seconds": 10.0,
      "images_per_second": 5000.0,
      "test_seconds": 1.5,
      "train_clean_loss": 1.1,
      "train_adv_loss": 1.4,
      "test_clean_loss": 0.9,
      "test_fgsm_loss": 1.2,
      "test_pgd_loss": 1.3,
      "finished_at": "2024/05/29 10:00:00",
      "train_teacher_acc": null,
      "test_st_clean_acc": null,
      "test_st_pgd_acc": null
    }
  ],
  "peaks": {
    "test_clean_acc": {
      "epoch": 1,
      "value": 60.0
    },
    "test_pgd_acc": {
      "epoch": 1,
      "value": 35.0
    }
  },
  "final": {
    "clean": 61.0,
    "fgsm": 40.0,
    "pgd10": 35.5,
    "pgd20": 35.0,
    "pgd50": null,
    "cw": 33.25,
    "autoattack": 30.0,
    "worst_case": 28.5,
    "autoattack_preset": "standard",
    "autoattack_steps": [
      {
        "attack": "apgd-ce",
        "accuracy": 31.0,
        "seconds": 2.0
      },
      {
        "attack": "apgd-t",
        "accuracy": 30.0,
        "seconds": 3.5
      }
    ],
    "images": 100,
    "epsilon": 0.03137254901960784,
    "seed": 1,
    "seconds": {
      "autoattack": 5.5,
      "cw": 0.5,
      "fgsm": 0.1,
      "pgd10": 0.25,
      "pgd20": 0.5
    },
    "flags": [
      "AutoAttack is far below PGD-20"
    ]
  }
}"#;

    #[test]
    fn a_written_result_json_round_trips_byte_for_byte() {
        let result: RunResult = serde_json::from_str(WRITTEN).unwrap();
        assert_eq!(serde_json::to_string_pretty(&result).unwrap(), WRITTEN);
        let table = result.final_table.unwrap();
        assert_eq!(table.accuracy(FinalAttack::Pgd10), Some(35.5));
        assert_eq!(table.accuracy(FinalAttack::Pgd50), None);
        assert_eq!(table.worst_case, Some(28.5));
    }

    #[test]
    fn a_final_table_from_before_the_worst_case_reads_without_it() {
        let without = WRITTEN.replace("    \"worst_case\": 28.5,\n", "");
        assert_ne!(without, WRITTEN);
        let result: RunResult = serde_json::from_str(&without).unwrap();
        let table = result.final_table.unwrap();
        assert_eq!(table.worst_case, None);
        assert_eq!(table.accuracy(FinalAttack::AutoAttack), Some(30.0));
    }

    #[test]
    fn a_final_table_without_attacks_reads_as_none_run() {
        let table: FinalTable = serde_json::from_str(r#"{"clean": 50.0}"#).unwrap();
        assert_eq!(table.clean, Some(50.0));
        assert!(FinalAttack::ALL
            .iter()
            .all(|a| table.accuracy(*a).is_none()));
    }
}
