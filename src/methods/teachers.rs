//! The teachers of KD-AT and IAD (docs/protocol.md#teachers-of-kd-at-and-iad and Q20), loaded from
//! the finished `pgd-at/<dataset>/baseline` (robust) and `st/<dataset>/baseline` (standard) runs of
//! the student's model and seed in the student's output folder. Planning those runs before their
//! students is the orchestration's (`src/plan.rs`).
use crate::config::JobConfig;
use crate::models::{ModelSpec, Network};
use crate::store::{self, RunStore};
use crate::vocab::{JobName, TeacherRole};
use tch::Device;

/// Both teachers, loaded; they only ever run in eval mode under no-grad.
pub struct Teachers {
    pub robust: Network,
    pub standard: Network,
}

impl Teachers {
    /// Loads `cfg`'s teachers into networks of the student's `spec` on `device`. A teacher without
    /// a finished run, or whose checkpoint does not fit the student's network, is one line naming
    /// the job and the file.
    pub fn load(cfg: &JobConfig, spec: &ModelSpec, device: Device) -> Result<Teachers, String> {
        let student = JobName {
            method: cfg.method(),
            dataset: cfg.dataset,
            mode: cfg.mode,
        };
        let load = |role: TeacherRole| -> Result<Network, String> {
            let (_, job) = student
                .teachers()
                .into_iter()
                .find(|(r, _)| *r == role)
                .ok_or_else(|| format!("{} learns from no teachers", cfg.method()))?;
            let folder = RunStore::teacher_folder(cfg, &job);
            let what = format!("its {} {job}", role.describe());
            if !store::holds_completed_run(&folder) {
                return Err(format!(
                    "{what} has no finished run in {} (adarat run trains it first)",
                    folder.display()
                ));
            }
            let mut network = Network::new(spec, device).map_err(|e| format!("{what}: {e}"))?;
            network
                .load(&folder.join(store::MODEL_FILE))
                .map_err(|e| format!("{what} does not fit the student's {}: {e}", cfg.model))?;
            if cfg.speed.channels_last {
                network.use_channels_last();
            }
            Ok(network)
        };
        Ok(Teachers {
            robust: load(TeacherRole::Robust)?,
            standard: load(TeacherRole::Standard)?,
        })
    }
}
