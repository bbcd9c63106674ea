//! The teachers of KD-AT and IAD (product.md section 4, reference-behaviour.md 6.5 and Q20): the
//! finished `pgd-at/<dataset>/baseline` run (robust teacher) and `st/<dataset>/baseline` run
//! (standard teacher) of the student's model and seed, in the student's output folder.
use crate::config::{JobConfig, JobOverrides, Study};
use crate::models::{ModelSpec, Network};
use crate::store::{self, result::Status, RunStore};
use crate::vocab::{JobName, Method, Mode};
use std::path::{Path, PathBuf};
use tch::Device;

/// What a teacher is to its student.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Robust,
    Standard,
}

impl Role {
    fn describe(self) -> &'static str {
        match self {
            Role::Robust => "robust teacher",
            Role::Standard => "standard teacher",
        }
    }

    fn method(self) -> Method {
        match self {
            Role::Robust => Method::PgdAt,
            Role::Standard => Method::St,
        }
    }
}

/// Whether a method learns from teachers.
pub fn needs_teachers(method: Method) -> bool {
    matches!(method, Method::KdAt | Method::Iad)
}

/// The teacher jobs of a job, the standard teacher first (the order `adarat run` trains them in);
/// none for a method without teachers.
pub fn teacher_jobs(job: &JobName) -> Vec<(Role, JobName)> {
    if !needs_teachers(job.method) {
        return Vec::new();
    }
    [Role::Standard, Role::Robust]
        .into_iter()
        .map(|role| {
            let teacher = JobName {
                method: role.method(),
                dataset: job.dataset,
                mode: Mode::Baseline,
            };
            (role, teacher)
        })
        .collect()
}

fn job_name(cfg: &JobConfig) -> JobName {
    JobName {
        method: cfg.method,
        dataset: cfg.dataset,
        mode: cfg.mode,
    }
}

/// The run folder of `cfg`'s teacher `job`: same output folder, model and seed as the student.
pub fn teacher_folder(cfg: &JobConfig, job: &JobName) -> PathBuf {
    // One naming rule for every run folder: the teacher's folder is the student's with the
    // teacher's method and mode.
    let teacher = JobConfig {
        method: job.method,
        mode: job.mode,
        ..cfg.clone()
    };
    cfg.output_dir.join(RunStore::folder_name(&teacher))
}

/// A run folder holds a finished teacher: its run completed and its final weights are there.
pub fn is_finished(folder: &Path) -> bool {
    folder.join(store::MODEL_FILE).is_file()
        && store::read_result(&folder.join(store::RESULT_FILE))
            .is_ok_and(|result| result.status == Status::Completed)
}

/// The teacher runs `cfg` still lacks, resolved from `study` with the student's overrides, output
/// folder, model and seed (so they land where the student looks for them), standard teacher first.
pub fn missing_teachers(
    study: &Study,
    cfg: &JobConfig,
    overrides: &JobOverrides,
) -> Result<Vec<JobConfig>, String> {
    let overrides = JobOverrides {
        model: Some(cfg.model),
        seed: Some(cfg.seed),
        output_dir: Some(cfg.output_dir.clone()),
        ..overrides.clone()
    };
    teacher_jobs(&job_name(cfg))
        .into_iter()
        .filter(|(_, job)| !is_finished(&teacher_folder(cfg, job)))
        .map(|(_, job)| study.resolve(&job, &overrides).map_err(|e| e.to_string()))
        .collect()
}

/// `jobs` with the teachers each one lacks placed before it, every run folder once: what
/// `adarat run` trains, in order.
pub fn with_missing_teachers(
    study: &Study,
    jobs: Vec<JobConfig>,
    overrides: &JobOverrides,
) -> Result<Vec<JobConfig>, String> {
    let folder = |cfg: &JobConfig| cfg.output_dir.join(RunStore::folder_name(cfg));
    let mut planned: Vec<JobConfig> = Vec::new();
    for cfg in jobs {
        for teacher in missing_teachers(study, &cfg, overrides)? {
            if !planned.iter().any(|p| folder(p) == folder(&teacher)) {
                planned.push(teacher);
            }
        }
        if !planned.iter().any(|p| folder(p) == folder(&cfg)) {
            planned.push(cfg);
        }
    }
    Ok(planned)
}

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
        let student = job_name(cfg);
        let load = |role: Role| -> Result<Network, String> {
            let (_, job) = teacher_jobs(&student)
                .into_iter()
                .find(|(r, _)| *r == role)
                .ok_or_else(|| format!("{} learns from no teachers", cfg.method))?;
            let folder = teacher_folder(cfg, &job);
            let what = format!("{student}: its {} {job}", role.describe());
            if !is_finished(&folder) {
                return Err(format!(
                    "{what} has no finished run in {} (adarat run trains it first)",
                    folder.display()
                ));
            }
            let mut network = Network::new(spec, device).map_err(|e| format!("{what}: {e}"))?;
            network
                .load(&folder.join(store::MODEL_FILE))
                .map_err(|e| format!("{what} does not fit the student's {}: {e}", cfg.model))?;
            Ok(network)
        };
        Ok(Teachers {
            robust: load(Role::Robust)?,
            standard: load(Role::Standard)?,
        })
    }
}
