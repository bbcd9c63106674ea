//! Which runs a request needs, in order: KD-AT and IAD learn from finished teacher runs
//! (docs/protocol.md#teachers-of-kd-at-and-iad), so the teachers a job lacks run before it, each run
//! folder once. `adarat run` and the console's queue worker both plan this way.
use crate::config::{ConfigError, JobConfig, JobOverrides, Study};
use crate::store::{self, RunStore};

/// The teacher runs `cfg` still lacks, resolved from `study` with the student's overrides, output
/// folder, model and seed (so they land where the student looks for them), standard teacher first.
pub fn missing_teachers(
    study: &Study,
    cfg: &JobConfig,
    overrides: &JobOverrides,
) -> Result<Vec<JobConfig>, ConfigError> {
    let overrides = JobOverrides {
        model: Some(cfg.model),
        seed: Some(cfg.seed),
        output_dir: Some(cfg.output_dir.clone()),
        ..overrides.clone()
    };
    cfg.name()
        .teachers()
        .into_iter()
        .filter(|(_, job)| !store::holds_completed_run(&RunStore::teacher_folder(cfg, job)))
        .map(|(_, job)| study.resolve(&job, &overrides))
        .collect()
}

/// `jobs` with the teachers each one lacks placed before it, every run folder once: what
/// `adarat run` trains, in order.
pub fn with_missing_teachers(
    study: &Study,
    jobs: Vec<JobConfig>,
    overrides: &JobOverrides,
) -> Result<Vec<JobConfig>, ConfigError> {
    let mut planned: Vec<JobConfig> = Vec::new();
    for cfg in jobs {
        for teacher in missing_teachers(study, &cfg, overrides)? {
            if !planned
                .iter()
                .any(|p| RunStore::folder_of(p) == RunStore::folder_of(&teacher))
            {
                planned.push(teacher);
            }
        }
        if !planned
            .iter()
            .any(|p| RunStore::folder_of(p) == RunStore::folder_of(&cfg))
        {
            planned.push(cfg);
        }
    }
    Ok(planned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::ModelKind;
    use std::path::Path;

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

    /// A finished run as `holds_completed_run` sees it: `result.json` completed, weights present.
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
            assert_eq!(
                RunStore::folder_of(teacher),
                RunStore::teacher_folder(student, &teacher.name())
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
        assert!(!store::holds_completed_run(&robust));
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
