//! The evaluation section: `evaluation.datasets.<d>` over `evaluation`, each value checked where
//! it was written.
use super::layers::{most_specific, Located};
use super::{ConfigError, Study};
use crate::config::job::{AutoAttackPreset, EvaluationConfig, Protocol};
use crate::vocab::{FinalAttack, JobName};

impl Study {
    /// `reference_preset`: the AutoAttack of the method's research code, the default under
    /// `protocol: reference` (quirk Q27).
    pub(super) fn evaluation(
        &self,
        job: &JobName,
        reference_preset: AutoAttackPreset,
    ) -> Result<EvaluationConfig, ConfigError> {
        let section = &self.file.evaluation;
        let dataset = section.datasets.get(&job.dataset);
        let dataset_layer = format!("evaluation.datasets.{}", job.dataset);
        // A key every file sets in `evaluation`: the dataset's value if it has one, else the section's.
        macro_rules! evaluation {
            ($key:ident) => {
                most_specific(
                    stringify!($key),
                    [(dataset_layer.as_str(), dataset.and_then(|d| d.$key.clone()))],
                )
                .unwrap_or_else(|| {
                    Located::at("evaluation", stringify!($key), section.$key.clone())
                })
            };
        }
        // A key optional at both levels.
        macro_rules! optional {
            ($key:ident) => {
                most_specific(
                    stringify!($key),
                    [
                        ("evaluation", section.$key),
                        (dataset_layer.as_str(), dataset.and_then(|d| d.$key)),
                    ],
                )
            };
        }
        let batch_size = evaluation!(batch_size);
        if batch_size.value == 0 {
            return Err(self.error(&batch_size.path, "expected a positive batch size, got 0"));
        }
        let names = evaluation!(final_attacks);
        let final_attacks = names
            .value
            .iter()
            .map(|a| a.parse::<FinalAttack>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|unknown| self.error(&names.path, unknown))?;
        let cw_steps = evaluation!(cw_steps);
        if cw_steps.value == 0 {
            return Err(self.error(&cw_steps.path, "expected at least 1 step, got 0"));
        }
        let cw_margin = self.non_negative(evaluation!(cw_margin))?;
        let final_images = optional!(final_images);
        if let Some(Located { value: 0, path }) = &final_images {
            return Err(self.error(path, "expected at least 1 image, got 0"));
        }
        let autoattack = optional!(autoattack).map_or(
            match self.file.protocol {
                Protocol::Reference => reference_preset,
                Protocol::Default => AutoAttackPreset::Standard,
            },
            |preset| preset.value,
        );
        Ok(EvaluationConfig {
            batch_size: batch_size.value,
            final_attacks,
            autoattack,
            cw_steps: cw_steps.value,
            cw_margin,
            final_images: final_images.map(|images| images.value),
        })
    }
}
