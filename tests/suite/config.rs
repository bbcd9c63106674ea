//! experiments.yaml: the study's defaults, resolution, overrides and refusals.
use adarat::config::{
    self, AutoAttackPreset, BnMode, DeviceSpec, JobOverrides, LrSchedule, MethodParams, Study,
    TradesParams,
};
use adarat::vocab::{JobName, Method, ModelKind};
use std::path::Path;

const ORIGIN: &str = "/study/experiments.yaml";

fn study() -> Study {
    config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &[]).unwrap()
}

fn job(name: &str) -> JobName {
    name.parse().unwrap()
}

fn resolve(study: &Study, name: &str) -> config::JobConfig {
    study.resolve(&job(name), &JobOverrides::default()).unwrap()
}

/// The default file with `from` replaced by `to`, parsed; the error's text.
fn refusal(from: &str, to: &str) -> String {
    assert!(
        config::DEFAULT_CONFIG.contains(from),
        "`{from}` is not in the default file"
    );
    let text = config::DEFAULT_CONFIG.replacen(from, to, 1);
    config::parse(&text, Path::new(ORIGIN), &[])
        .unwrap_err()
        .to_string()
}

fn line_of(needle: &str) -> usize {
    config::DEFAULT_CONFIG
        .lines()
        .position(|l| l.contains(needle))
        .unwrap()
        + 1
}

#[test]
fn the_grid_is_eight_methods_by_two_datasets_by_three_modes_with_st_baseline_only() {
    let grid = study().grid();
    assert_eq!(grid.len(), 7 * 2 * 3 + 2);
    assert!(grid.contains(&job("trades/cifar100/adarat")));
    assert!(grid.contains(&job("st/cifar10/baseline")));
    assert!(grid.iter().all(|j| j.dataset.as_str().starts_with("cifar")));
}

#[test]
fn grid_seeds_default_to_the_study_seed_and_are_checked() {
    assert_eq!(study().seeds(), [1]);
    let with = |seeds: &str| {
        let sets = [format!("grid.seeds={seeds}")];
        config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets)
    };
    assert_eq!(with("[3, 1, 2]").unwrap().seeds(), [3, 1, 2]);
    let empty = with("[]").unwrap_err().to_string();
    assert!(
        empty.contains("grid.seeds") && empty.contains("at least one seed"),
        "{empty}"
    );
    let twice = with("[1, 2, 1]").unwrap_err().to_string();
    assert!(twice.contains("seed 1 is listed twice"), "{twice}");
    let text = with("[-1]").unwrap_err().to_string();
    assert!(text.contains("grid.seeds"), "{text}");
}

#[test]
fn pgd_at_cifar10_has_the_reference_values() {
    let c = resolve(&study(), "pgd-at/cifar10/adarat");
    assert_eq!(c.model, ModelKind::ResNet18);
    assert_eq!(
        (
            c.epochs,
            c.batch_size,
            c.learning_rate,
            c.momentum,
            c.weight_decay
        ),
        (120, 128, 0.1, 0.9, 5e-4)
    );
    assert_eq!(
        c.lr_schedule,
        LrSchedule::Step {
            milestones: vec![60, 90, 110],
            factors: vec![0.1, 0.01, 0.005]
        }
    );
    assert_eq!(
        (c.attack.epsilon, c.attack.step_size, c.attack.steps),
        (8.0 / 255.0, 2.0 / 255.0, 10)
    );
    assert_eq!(c.attack.bn_mode, BnMode::Train);
    assert!(c.reset_momentum_each_epoch);
    let r = c.ratio.unwrap();
    assert_eq!(
        (r.beta, r.up, r.down, r.tau, r.switch),
        (0.04, 1.1, 0.4, 0.01, 0.7)
    );
    assert_eq!(c.evaluation.autoattack, AutoAttackPreset::Standard);
    assert!(!c.test_random_crop);
    assert_eq!(c.seed, 1);
    assert_eq!(c.data_dir, Path::new("/study/data"));
    assert_eq!(c.output_dir, Path::new("/study/output"));
}

#[test]
fn per_method_and_per_dataset_defaults() {
    let s = study();
    let trades = resolve(&s, "trades/cifar100/adarat");
    let r = trades.ratio.unwrap();
    assert_eq!((r.beta, r.up, r.down), (0.04, 2.3, 1.2));
    assert_eq!(
        (trades.model, trades.dropout, trades.weight_decay),
        (ModelKind::Wrn34_10, 0.3, 7e-4)
    );
    assert_eq!(
        trades.params,
        MethodParams::Trades(TradesParams { lambda: 6.0 })
    );
    assert_eq!(trades.method(), Method::Trades);
    let trades10 = resolve(&s, "trades/cifar10/fixrat").ratio.unwrap();
    assert_eq!(
        (trades10.beta, trades10.up, trades10.down),
        (0.03, 1.5, 0.7)
    );

    let g = resolve(&s, "generalist/cifar10/adarat");
    assert_eq!((g.attack.epsilon, g.attack.step_size), (0.031, 0.007));
    assert_eq!(g.attack.bn_mode, BnMode::Eval);
    assert!(!g.reset_momentum_each_epoch);
    assert!(matches!(g.lr_schedule, LrSchedule::PiecewiseLinear { .. }));
    let g100 = resolve(&s, "generalist/cifar100/adarat");
    assert_eq!(
        (g100.model, g100.dropout, g100.weight_decay),
        (ModelKind::Wrn34_10, 0.0, 7e-4)
    );
    assert_eq!(
        (g100.ratio.unwrap().up, g100.ratio.unwrap().down),
        (2.0, 0.8)
    );

    let st = resolve(&s, "st/cifar100/baseline");
    assert_eq!(st.weight_decay, 5e-4);
    assert!(st.ratio.is_none());
    assert_eq!(resolve(&s, "iad/cifar100/adarat").attack.steps, 10);
    let kd = resolve(&s, "kd-at/cifar100/fixrat").ratio.unwrap();
    assert_eq!((kd.beta, kd.up, kd.down), (0.05, 1.4, 0.8));

    // Beyond the study: each method's CIFAR-10 ratio values, the dataset's own budget and model.
    let syn = resolve(&s, "pgd-at/synthetic/adarat");
    assert_eq!(syn.model, ModelKind::SmallCnn);
    assert_eq!(syn.dropout, 0.5);
    assert_eq!((syn.learning_rate, syn.batch_size), (0.01, 32));
    assert_eq!((syn.ratio.unwrap().up, syn.ratio.unwrap().down), (1.1, 0.4));
    let fm = resolve(&s, "trades/fashion-mnist/adarat");
    assert_eq!(
        (fm.attack.epsilon, fm.attack.step_size, fm.attack.steps),
        (0.1, 0.01, 10)
    );
    assert_eq!(fm.ratio.unwrap().up, 1.5);
    assert_eq!(resolve(&s, "pgd-at/mnist/baseline").attack.steps, 40);
}

#[test]
fn the_reference_protocol_crops_cifar10_tests_and_uses_torchattacks_autoattack() {
    let text = config::DEFAULT_CONFIG.replacen("protocol: default", "protocol: reference", 1);
    let s = config::parse(&text, Path::new(ORIGIN), &[]).unwrap();
    let c = resolve(&s, "pgd-at/cifar10/adarat");
    assert!(c.test_random_crop);
    assert_eq!(c.evaluation.autoattack, AutoAttackPreset::Torchattacks351);
    assert!(!resolve(&s, "pgd-at/cifar100/adarat").test_random_crop);
    assert!(!resolve(&s, "generalist/cifar10/adarat").test_random_crop);
    // Generalist's own script evaluates with the fra31 copy it bundles, at standard strength.
    for dataset in ["cifar10", "cifar100"] {
        let generalist = resolve(&s, &format!("generalist/{dataset}/adarat"));
        assert_eq!(generalist.evaluation.autoattack, AutoAttackPreset::Standard);
    }
    assert_eq!(
        resolve(&s, "kd-at/cifar100/baseline").evaluation.autoattack,
        AutoAttackPreset::Torchattacks351
    );
    // A preset written in the file is every method's.
    let text = text.replacen(
        "# autoattack: standard ",
        "autoattack: torchattacks-3.5.1 ",
        1,
    );
    let s = config::parse(&text, Path::new(ORIGIN), &[]).unwrap();
    assert_eq!(
        resolve(&s, "generalist/cifar10/adarat")
            .evaluation
            .autoattack,
        AutoAttackPreset::Torchattacks351
    );
}

#[test]
fn the_evaluation_has_a_layer_per_dataset() {
    let s = study();
    // The quick start's table runs on 100 test images; the study's on the whole test set.
    assert_eq!(
        resolve(&s, "pgd-at/synthetic/adarat")
            .evaluation
            .final_images,
        Some(100)
    );
    let cifar = resolve(&s, "pgd-at/cifar10/adarat").evaluation;
    assert_eq!((cifar.final_images, cifar.batch_size), (None, 256));
    let sets = [
        "evaluation.final_images=1000",
        "evaluation.datasets.cifar100={final_attacks: [pgd20], batch_size: 64}",
    ]
    .map(String::from);
    let s = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets).unwrap();
    let c100 = resolve(&s, "trades/cifar100/fixrat").evaluation;
    assert_eq!(
        (c100.final_attacks.len(), c100.batch_size, c100.final_images),
        (1, 64, Some(1000))
    );
    let c10 = resolve(&s, "trades/cifar10/fixrat").evaluation;
    assert_eq!((c10.final_attacks.len(), c10.batch_size), (6, 256));
    assert_eq!(
        resolve(&s, "pgd-at/synthetic/adarat")
            .evaluation
            .final_images,
        Some(100)
    );
    // Refusals name the value's own path.
    let e = refusal(
        "synthetic: {final_images: 100}",
        "synthetic: {final_images: 0}",
    );
    assert!(
        e.starts_with(&format!(
            "{ORIGIN}:{}: evaluation.datasets.synthetic.final_images: expected at least 1 image",
            line_of("synthetic: {final_images: 100}")
        )),
        "{e}"
    );
    let e = refusal("synthetic: {final_images: 100}", "synthetic: {cw_steps: 0}");
    assert!(e.contains("evaluation.datasets.synthetic.cw_steps"), "{e}");
    let e = refusal(
        "synthetic: {final_images: 100}",
        "synthetic: {final_imgs: 100}",
    );
    assert!(e.contains("unknown field `final_imgs`"), "{e}");
    let e = refusal(
        "synthetic: {final_images: 100}",
        "cifar1000: {final_images: 100}",
    );
    assert!(e.contains("cifar1000"), "{e}");
}

#[test]
fn command_line_overrides_apply() {
    let overrides = JobOverrides {
        epochs: Some(3),
        model: Some(ModelKind::PreActResNet18),
        seed: Some(7),
        device: Some(DeviceSpec::Cpu),
        limit_train: Some(100),
        limit_test: Some(50),
        output_dir: Some("/elsewhere".into()),
    };
    let c = study()
        .resolve(&job("pgd-at/cifar10/baseline"), &overrides)
        .unwrap();
    assert_eq!(
        (c.epochs, c.model, c.seed, c.device),
        (3, ModelKind::PreActResNet18, 7, DeviceSpec::Cpu)
    );
    assert_eq!((c.limit_train, c.limit_test), (Some(100), Some(50)));
    assert_eq!(c.output_dir, Path::new("/elsewhere"));
}

#[test]
fn set_overrides_values_by_dotted_path() {
    let sets = vec![
        "training.epochs=3".to_string(),
        "methods.pgd-at.datasets.cifar10.beta=0.05".to_string(),
        "datasets.synthetic.epsilon=4/255".to_string(),
    ];
    let s = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets).unwrap();
    assert_eq!(resolve(&s, "pgd-at/cifar10/adarat").epochs, 3);
    assert_eq!(
        resolve(&s, "pgd-at/cifar10/adarat").ratio.unwrap().beta,
        0.05
    );
    assert_eq!(
        resolve(&s, "pgd-at/cifar100/adarat").ratio.unwrap().beta,
        0.05
    );
    assert_eq!(
        resolve(&s, "trades/cifar10/adarat").ratio.unwrap().beta,
        0.03
    );
    assert_eq!(
        resolve(&s, "pgd-at/synthetic/adarat").attack.epsilon,
        4.0 / 255.0
    );

    let unknown = config::parse(
        config::DEFAULT_CONFIG,
        Path::new(ORIGIN),
        &["training.epoch=3".into()],
    )
    .unwrap_err();
    assert!(
        unknown.to_string().contains("--set training.epoch=3")
            && unknown.to_string().contains("unknown field `epoch`")
    );
    let bad = config::parse(
        config::DEFAULT_CONFIG,
        Path::new(ORIGIN),
        &["training.epochs".into()],
    )
    .unwrap_err();
    assert!(bad.to_string().contains("expected KEY=VALUE"));
    let impossible = config::parse(
        config::DEFAULT_CONFIG,
        Path::new(ORIGIN),
        &["methods.pgd-at.settings.down=2".into()],
    );
    assert!(impossible
        .unwrap_err()
        .to_string()
        .contains("greater than down"));
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_their_line() {
    let e = refusal("  learning_rate: 0.1", "  lerning_rate: 0.1");
    assert!(
        e.starts_with(&format!("{ORIGIN}:{}:", line_of("learning_rate: 0.1"))),
        "{e}"
    );
    assert!(e.contains("unknown field `lerning_rate`"), "{e}");

    let e = refusal("  batch_size: 128", "  batch_size: lots");
    assert!(
        e.starts_with(&format!("{ORIGIN}:{}:", line_of("batch_size: 128"))),
        "{e}"
    );
    assert!(e.contains("training.batch_size"), "{e}");

    let e = refusal("protocol: default", "protocol: sloppy");
    assert!(
        e.contains(&format!(":{}:", line_of("protocol: default"))) && e.contains("protocol"),
        "{e}"
    );
    assert!(
        refusal("epsilon: 8/255, step_size", "epsilon: 8/0, step_size").contains("divides by zero")
    );
}

#[test]
fn impossible_values_are_refused_with_their_line() {
    for (from, to, path) in [
        (
            "cifar100: {beta: 0.05, up: 1.5, down: 0.7}",
            "cifar100: {beta: 0.05, up: 0.6, down: 0.7}",
            "methods.pgd-at.datasets.cifar100.up",
        ),
        ("  epochs: 120", "  epochs: 0", "training.epochs"),
        (
            "  batch_size: 128",
            "  batch_size: 0",
            "training.batch_size",
        ),
        ("  momentum: 0.9", "  momentum: 1.5", "training.momentum"),
        ("  switch: 0.7", "  switch: 0", "training.switch"),
        ("  tau: 0.01", "  tau: -1", "training.tau"),
        (
            "wrn-34-10:       {dropout: 0.3}",
            "wrn-34-10:       {dropout: 1.3}",
            "models.wrn-34-10.dropout",
        ),
        ("device: auto", "device: gpu", "device"),
        (
            "final_attacks: [fgsm,",
            "final_attacks: [fgsn,",
            "evaluation.final_attacks",
        ),
        (
            "settings: {beta: 0.04, up: 1.1, down: 0.4}",
            "settings: {beta: -0.04, up: 1.1, down: 0.4}",
            "methods.pgd-at.settings.beta",
        ),
    ] {
        let e = refusal(from, to);
        let expected_line = line_of(from);
        assert!(
            e.starts_with(&format!("{ORIGIN}:{expected_line}: {path}:")),
            "{from} → {e}"
        );
    }
    assert!(refusal(
        "cifar10:       {model: resnet18, weight_decay: 5e-4, epsilon: 8/255",
        "cifar10:       {model: resnet18, weight_decay: 5e-4, epsilon: 0"
    )
    .contains("datasets.cifar10.epsilon: expected a value greater than 0"));
    assert!(
        refusal("milestones: [60, 90, 110]", "milestones: [60, 110, 90]").contains("increasing")
    );
    assert!(refusal(
        "  methods: [st, pgd-at, fat, dat, trades, kd-at, iad, generalist]",
        "  methods: []"
    )
    .contains("grid.methods"));
    assert!(
        refusal("    modes: [baseline]\n", "    modes: [baseline, adarat]\n")
            .contains("st has the baseline mode only")
    );
    assert!(refusal("params: {lambda: 6}", "params: {lamda: 6}").contains("methods.trades.params"));
}

#[test]
fn jobs_outside_a_methods_modes_are_refused() {
    let text = config::DEFAULT_CONFIG.replacen(
        "  pgd-at:\n    modes: [baseline, fixrat, adarat]",
        "  pgd-at:\n    modes: [baseline]",
        1,
    );
    let s = config::parse(&text, Path::new(ORIGIN), &[]).unwrap();
    let e = s
        .resolve(&job("pgd-at/cifar10/adarat"), &JobOverrides::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("mode `adarat` is not allowed for pgd-at"), "{e}");
}

#[test]
fn resolved_configurations_round_trip_through_yaml() {
    let s = study();
    for j in s.grid() {
        let c = s.resolve(&j, &JobOverrides::default()).unwrap();
        let text = serde_yaml::to_string(&c).unwrap();
        let back: config::JobConfig = serde_yaml::from_str(&text).unwrap();
        assert_eq!(back, c, "{j}");
    }
}

/// A fixed-seed xorshift, enough to mutate files reproducibly.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn hundreds_of_mutated_files_never_panic() {
    let lines: Vec<&str> = config::DEFAULT_CONFIG.lines().collect();
    let garbage = [
        "{",
        "]",
        ": :",
        "- x",
        "8/0",
        "-1",
        "1e999",
        "~",
        "\"",
        "!!binary AAAA",
        "&a *a",
        "\t",
        "nan",
        "",
    ];
    let mut rng = Rng(0x5eed);
    let (mut refused, mut accepted) = (0, 0);
    for _ in 0..400 {
        let mut mutated: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        for _ in 0..1 + rng.next(3) {
            let i = rng.next(mutated.len());
            match rng.next(4) {
                0 => {
                    mutated.remove(i);
                }
                1 => {
                    let line = mutated[i].clone();
                    mutated.insert(i, line);
                }
                2 => {
                    if let Some(colon) = mutated[i].find(": ") {
                        let head = mutated[i][..colon + 2].to_string();
                        mutated[i] = format!("{head}{}", garbage[rng.next(garbage.len())]);
                    }
                }
                _ => mutated.insert(i, garbage[rng.next(garbage.len())].to_string()),
            }
        }
        let text = mutated.join("\n");
        let outcome =
            std::panic::catch_unwind(|| config::parse(&text, Path::new(ORIGIN), &[]).map(|_| ()));
        match outcome {
            Ok(Ok(())) => accepted += 1,
            Ok(Err(e)) => {
                assert!(e.to_string().starts_with(ORIGIN), "{e}");
                refused += 1;
            }
            Err(_) => panic!("parsing panicked on:\n{text}"),
        }
    }
    println!("mutated configurations: {refused} refused, {accepted} accepted, 0 panics");
    assert!(refused > 100);
}

#[test]
fn speed_switches_default_on_and_precision_is_layered() {
    let s = study();
    let c = resolve(&s, "pgd-at/cifar10/adarat");
    assert_eq!(c.precision, config::Precision::Fp32);
    assert!(c.speed.cudnn_benchmark && c.speed.channels_last && c.speed.cuda_graphs);

    let sets = vec![
        "datasets.cifar100.precision=bf16".to_string(),
        "cuda_graphs=false".to_string(),
    ];
    let s = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets).unwrap();
    assert_eq!(
        resolve(&s, "pgd-at/cifar100/adarat").precision,
        config::Precision::Bf16
    );
    assert_eq!(
        resolve(&s, "pgd-at/cifar10/adarat").precision,
        config::Precision::Fp32
    );
    assert!(!resolve(&s, "pgd-at/cifar10/adarat").speed.cuda_graphs);

    let e = refusal("  precision: fp32", "  precision: fp16");
    assert!(
        e.starts_with(&format!("{ORIGIN}:{}:", line_of("precision: fp32"))),
        "{e}"
    );
    assert!(e.contains("unknown variant `fp16`"), "{e}");
    // A file from before these switches still loads, with them on and fp32.
    let old = config::DEFAULT_CONFIG
        .lines()
        .filter(|l| {
            ![
                "cudnn_benchmark:",
                "channels_last:",
                "cuda_graphs:",
                "precision:",
            ]
            .iter()
            .any(|key| l.trim_start().starts_with(key))
        })
        .collect::<Vec<_>>()
        .join("\n");
    let s = config::parse(&old, Path::new(ORIGIN), &[]).unwrap();
    let c = resolve(&s, "trades/cifar10/fixrat");
    assert_eq!(c.precision, config::Precision::Fp32);
    assert!(c.speed.cudnn_benchmark && c.speed.channels_last && c.speed.cuda_graphs);
}

#[test]
fn only_speed_switches_and_the_device_leave_a_run_the_same_run() {
    let s = study();
    let a = resolve(&s, "pgd-at/cifar10/adarat");
    let mut b = a.clone();
    b.speed.cuda_graphs = false;
    b.speed.channels_last = false;
    b.speed.cudnn_benchmark = false;
    b.device = config::DeviceSpec::Cuda(Some(3));
    assert!(a.same_run_as(&b));
    let mut c = a.clone();
    c.precision = config::Precision::Bf16;
    assert!(!a.same_run_as(&c));
    let mut d = a.clone();
    d.epochs = 3;
    assert!(!a.same_run_as(&d));
}

#[test]
fn config_yaml_records_the_method_after_the_job_and_refuses_another_methods_params() {
    let c = resolve(&study(), "trades/cifar10/adarat");
    let text = serde_yaml::to_string(&c).unwrap();
    assert!(
        text.starts_with("job: trades/cifar10/adarat\nmethod: trades\ndataset: cifar10\n"),
        "{text}"
    );
    assert!(text.contains("params: !trades\n  lambda: 6.0\n"), "{text}");
    let other = text.replacen("method: trades", "method: fat", 1);
    let e = serde_yaml::from_str::<config::JobConfig>(&other).unwrap_err();
    assert!(
        e.to_string()
            .contains("method `fat` with the parameters of trades"),
        "{e}"
    );
    let without = text.replacen("method: trades\n", "", 1);
    assert!(serde_yaml::from_str::<config::JobConfig>(&without).is_err());
}

#[test]
fn devices_are_parsed_where_they_are_read() {
    let sets = ["device=cuda:1".to_string()];
    let s = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets).unwrap();
    let c = resolve(&s, "pgd-at/cifar10/adarat");
    assert_eq!(c.device, DeviceSpec::Cuda(Some(1)));
    assert!(serde_yaml::to_string(&c)
        .unwrap()
        .contains("\ndevice: cuda:1\n"));
    assert_eq!(
        resolve(&study(), "pgd-at/cifar10/adarat").device,
        DeviceSpec::Auto
    );
    let e = refusal("device: auto", "device: cuda:x");
    assert!(
        e.starts_with(&format!(
            "{ORIGIN}:{}: device: expected auto, cpu, cuda or cuda:N, got `cuda:x`",
            line_of("device: auto")
        )),
        "{e}"
    );
}

#[test]
fn set_refuses_paths_it_cannot_follow() {
    let refused = |set: &str| {
        config::parse(
            config::DEFAULT_CONFIG,
            Path::new(ORIGIN),
            &[set.to_string()],
        )
        .unwrap_err()
        .to_string()
    };
    assert_eq!(
        refused("training..epochs=3"),
        "--set training..epochs=3: `training..epochs` is not a dotted path"
    );
    assert_eq!(
        refused("seed.value=3"),
        "--set seed.value=3: `seed.value`: `value` is inside a value that is not a mapping"
    );
}

#[test]
fn a_refused_set_is_named_alone_among_several() {
    let sets = ["training.epochs=3", "evaluation.autoattack=fast", "seed=2"].map(String::from);
    let e = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets).unwrap_err();
    let message = e.to_string();
    assert!(
        message.starts_with("--set evaluation.autoattack=fast: unknown variant `fast`"),
        "{message}"
    );
}

#[test]
fn the_queue_section_places_jobs_on_devices() {
    let s = study();
    assert_eq!(s.placement(), &config::Placement::default());
    let sets = ["queue.devices=[cpu, cpu]", "queue.jobs_per_device=2"].map(String::from);
    let s = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &sets).unwrap();
    assert_eq!(s.placement().slots(0), ["cpu", "cpu", "cpu", "cpu"]);
    let bad = ["queue.jobs_per_device=0".to_string()];
    let e = config::parse(config::DEFAULT_CONFIG, Path::new(ORIGIN), &bad).unwrap_err();
    assert!(e.to_string().contains("at least 1 job per device"), "{e}");
}
