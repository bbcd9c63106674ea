//! The teachers of KD-AT and IAD (docs/protocol.md#teachers-of-kd-at-and-iad and Q20), loaded from
//! the finished `pgd-at/<dataset>/baseline` (robust) and `st/<dataset>/baseline` (standard) runs of
//! the student's model and seed in the student's output folder. Planning those runs before their
//! students is the orchestration's (`src/plan.rs`).
use super::MethodError;
use crate::config::JobConfig;
use crate::models::{ModelSpec, Network};
use crate::store::{self, RunStore};
use crate::vocab::TeacherRole;
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
    pub fn load(
        cfg: &JobConfig,
        spec: &ModelSpec,
        device: Device,
    ) -> Result<Teachers, MethodError> {
        let student = cfg.name();
        let load = |role: TeacherRole| -> Result<Network, MethodError> {
            let (_, job) = student
                .teachers()
                .into_iter()
                .find(|(r, _)| *r == role)
                .ok_or(MethodError::NoTeachers {
                    method: cfg.method(),
                })?;
            let folder = RunStore::teacher_folder(cfg, &job);
            let what = format!("its {} {job}", role.describe());
            if !store::holds_completed_run(&folder) {
                return Err(MethodError::TeacherNotRun { what, folder });
            }
            let mut network = match Network::new(spec, device) {
                Ok(network) => network,
                Err(source) => {
                    return Err(MethodError::Network {
                        what,
                        source: Box::new(source),
                    })
                }
            };
            if let Err(source) = network.load(&folder.join(store::MODEL_FILE)) {
                return Err(MethodError::TeacherMismatch {
                    what,
                    model: cfg.model,
                    source: Box::new(source),
                });
            }
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
