//! The teachers of KD-AT and IAD (docs/protocol.md#teachers-of-kd-at-and-iad and Q20): the
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
            let what = format!("its {} {job}", role.describe());
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
            if cfg.channels_last {
                network.use_channels_last();
            }
            Ok(network)
        };
        Ok(Teachers {
            robust: load(Role::Robust)?,
            standard: load(Role::Standard)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ModelKind;

    fn plan(output: &Path, jobs: &[&str], model: Option<ModelKind>) -> Vec<JobConfig> {
        let study = crate::config::open(None, &[]).unwrap();
        let overrides = JobOverrides {
            model,
            output_dir: Some(output.to_path_buf()),
            ..Default::default()
        };
        let configs = jobs
            .iter()
            .map(|job| study.resolve(&job.parse().unwrap(), &overrides).unwrap())
            .collect();
        with_missing_teachers(&study, configs, &overrides).unwrap()
    }

    fn names(plan: &[JobConfig]) -> Vec<&str> {
        plan.iter().map(|cfg| cfg.job.as_str()).collect()
    }

    /// A finished run as `is_finished` sees it: `result.json` completed, weights present.
    fn finish(folder: &Path) {
        std::fs::create_dir_all(folder).unwrap();
        let result = serde_json::json!({
            "job": "pgd-at/synthetic/baseline", "method": "pgd-at", "dataset": "synthetic",
            "mode": "baseline", "model": "small-cnn", "seed": 1, "protocol": "default",
            "device": "cpu", "status": "completed", "error": null, "epochs": 1, "epochs_done": 1,
            "seconds": 1.0, "epochs_log": [], "peaks": null, "final": null
        });
        std::fs::write(folder.join(store::RESULT_FILE), result.to_string()).unwrap();
        std::fs::write(folder.join(store::MODEL_FILE), b"weights").unwrap();
    }

    #[test]
    fn missing_teachers_come_first_and_each_run_folder_once() {
        let dir = tempfile::tempdir().unwrap();
        let jobs = [
            "kd-at/synthetic/baseline",
            "iad/synthetic/adarat",
            "pgd-at/synthetic/baseline",
        ];
        let planned = plan(dir.path(), &jobs, None);
        assert_eq!(
            names(&planned),
            [
                "st/synthetic/baseline",
                "pgd-at/synthetic/baseline",
                "kd-at/synthetic/baseline",
                "iad/synthetic/adarat"
            ]
        );
        // The teachers' folders are where the student looks for them.
        let student = &planned[2];
        for teacher in &planned[..2] {
            let job: JobName = teacher.job.parse().unwrap();
            assert_eq!(
                teacher.output_dir.join(RunStore::folder_name(teacher)),
                teacher_folder(student, &job)
            );
        }
        // A job without teachers plans nothing more.
        assert_eq!(
            names(&plan(dir.path(), &["pgd-at/synthetic/adarat"], None)),
            ["pgd-at/synthetic/adarat"]
        );
    }

    #[test]
    fn a_finished_teacher_is_reused_and_an_unfinished_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let robust = dir.path().join("pgd-at_synthetic_baseline_small-cnn_seed1");
        finish(&robust);
        let planned = plan(dir.path(), &["iad/synthetic/fixrat"], None);
        assert_eq!(
            names(&planned),
            ["st/synthetic/baseline", "iad/synthetic/fixrat"]
        );
        // Weights without a completed run do not make a teacher.
        std::fs::remove_file(robust.join(store::RESULT_FILE)).unwrap();
        assert!(!is_finished(&robust));
        assert_eq!(plan(dir.path(), &["iad/synthetic/fixrat"], None).len(), 3);
    }

    #[test]
    fn teachers_share_the_students_model_and_seed() {
        let dir = tempfile::tempdir().unwrap();
        let planned = plan(
            dir.path(),
            &["kd-at/synthetic/adarat"],
            Some(ModelKind::PreActResNet18),
        );
        assert_eq!(planned.len(), 3);
        for cfg in &planned {
            assert_eq!(cfg.model, ModelKind::PreActResNet18);
            assert_eq!(cfg.seed, planned[2].seed);
            assert_eq!(cfg.output_dir, dir.path());
        }
    }
}
