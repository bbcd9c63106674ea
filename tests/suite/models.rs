//! The models layer: architectures, state_dict names, BatchNorm state, dropout, gradients, checkpoints.
use crate::common;

use adarat::models::{ModelError, ModelSpec, Network};
use adarat::vocab::ModelKind;
use std::path::Path;
use tch::{Device, Kind, Tensor};

const ALL_KINDS: [ModelKind; 4] = [
    ModelKind::ResNet18,
    ModelKind::Wrn34_10,
    ModelKind::PreActResNet18,
    ModelKind::SmallCnn,
];

fn spec(kind: ModelKind, shape: [i64; 3], classes: i64) -> ModelSpec {
    let [channels, height, width] = shape;
    ModelSpec::new(kind, channels, height, width, classes)
}

fn network(kind: ModelKind, shape: [i64; 3], classes: i64) -> Network {
    Network::new(&spec(kind, shape, classes), Device::Cpu).unwrap()
}

fn batch(size: i64, shape: [i64; 3]) -> Tensor {
    let [channels, height, width] = shape;
    Tensor::rand([size, channels, height, width], (Kind::Float, Device::Cpu))
}

/// The smallest input each network is quick with on a CPU (small-cnn needs at least 16×16).
fn quick_shape(kind: ModelKind) -> [i64; 3] {
    match kind {
        ModelKind::SmallCnn => [1, 16, 16],
        _ => [3, 8, 8],
    }
}

/// The TRADES SmallCNN starts with a zero last layer, which makes its logits constant and blocks every
/// gradient to the input; give it some weights so that dropout and gradients can be observed.
fn wake_up_last_layer(net: &Network) {
    for (name, tensor) in net.state_dict() {
        if name.starts_with("classifier.fc3.") {
            tch::no_grad(|| {
                let _ = tensor.shallow_clone().uniform_(-0.1, 0.1);
            });
        }
    }
}

fn state_of(net: &Network, name: &str) -> Tensor {
    net.state_dict()
        .into_iter()
        .find(|(candidate, _)| candidate == name)
        .unwrap_or_else(|| panic!("no state tensor {name}"))
        .1
}

fn names(net: &Network) -> Vec<String> {
    net.state_dict().into_iter().map(|(name, _)| name).collect()
}

fn count_with_prefix(names: &[String], prefix: &str) -> usize {
    names.iter().filter(|name| name.starts_with(prefix)).count()
}

fn assert_states_equal(a: &Network, b: &Network) {
    let (a, b) = (a.state_dict(), b.state_dict());
    assert_eq!(a.len(), b.len());
    for ((name_a, tensor_a), (name_b, tensor_b)) in a.iter().zip(&b) {
        assert_eq!(name_a, name_b);
        assert_eq!(tensor_a.kind(), tensor_b.kind(), "{name_a}");
        assert!(tensor_a.equal(tensor_b), "{name_a} differs");
    }
}

fn snapshot(net: &Network) -> Vec<(String, Tensor)> {
    net.state_dict()
        .into_iter()
        .map(|(name, tensor)| (name, tensor.copy()))
        .collect()
}

#[test]
fn parameter_counts_match_the_reference() {
    let _torch = common::torch_lock();
    for (kind, classes, expected) in [
        (ModelKind::ResNet18, 10, 11_173_962),
        (ModelKind::ResNet18, 100, 11_220_132),
        (ModelKind::Wrn34_10, 10, 46_160_474),
        (ModelKind::Wrn34_10, 100, 46_218_164),
        (ModelKind::PreActResNet18, 10, 11_171_146),
    ] {
        let net = network(kind, [3, 32, 32], classes);
        assert_eq!(
            net.parameter_count(),
            expected,
            "{kind} with {classes} classes"
        );
    }
    // conv 320 + 9,248 + 18,496 + 36,928; fc 1024·200+200, 200·200+200, 200·10+10.
    assert_eq!(
        network(ModelKind::SmallCnn, [1, 28, 28], 10).parameter_count(),
        312_202
    );
    // 3×32×32 leaves a 5×5 map: fc1 takes 64·5·5 inputs.
    let colour = network(ModelKind::SmallCnn, [3, 32, 32], 10);
    assert_eq!(
        state_of(&colour, "classifier.fc1.weight").size(),
        [200, 64 * 5 * 5]
    );
    assert_eq!(
        state_of(&colour, "feature_extractor.conv1.weight").size(),
        [32, 3, 3, 3]
    );
}

#[test]
fn every_model_gives_logits_for_colour_and_grey_inputs() {
    let _torch = common::torch_lock();
    tch::manual_seed(1);
    for kind in ALL_KINDS {
        for (shape, classes) in [([3, 32, 32], 10), ([1, 28, 28], 100), ([3, 32, 32], 7)] {
            let net = network(kind, shape, classes);
            let batch_size = if kind == ModelKind::Wrn34_10 { 1 } else { 2 };
            let logits = tch::no_grad(|| net.forward_t(&batch(batch_size, shape), false));
            assert_eq!(logits.size(), [batch_size, classes], "{kind} {shape:?}");
            assert_eq!(logits.kind(), Kind::Float);
        }
    }
}

#[test]
fn resnet18_state_dict_names() {
    let _torch = common::torch_lock();
    let names = names(&network(ModelKind::ResNet18, [3, 32, 32], 10));
    assert_eq!(names.len(), 122);
    for name in [
        "conv1.weight",
        "bn1.weight",
        "bn1.bias",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.num_batches_tracked",
        "layer1.0.conv1.weight",
        "layer1.0.bn1.running_var",
        "layer1.1.conv2.weight",
        "layer1.1.bn2.num_batches_tracked",
        "layer2.0.shortcut.0.weight",
        "layer2.0.shortcut.1.running_mean",
        "layer4.0.shortcut.1.num_batches_tracked",
        "layer4.1.bn2.bias",
        "linear.weight",
        "linear.bias",
    ] {
        assert!(
            names.iter().any(|candidate| candidate == name),
            "missing {name}"
        );
    }
    assert_eq!(count_with_prefix(&names, "layer1."), 24);
    for stage in ["layer2.", "layer3.", "layer4."] {
        assert_eq!(count_with_prefix(&names, stage), 30, "{stage}");
    }
    assert_eq!(count_with_prefix(&names, "layer1.0.shortcut"), 0);
    assert_eq!(count_with_prefix(&names, "layer2.1.shortcut"), 0);
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn wrn_state_dict_names() {
    let _torch = common::torch_lock();
    let names = names(&network(ModelKind::Wrn34_10, [3, 32, 32], 10));
    assert_eq!(names.len(), 191);
    for name in [
        "conv1.weight",
        "block1.layer.0.bn1.weight",
        "block1.layer.0.bn1.num_batches_tracked",
        "block1.layer.0.conv1.weight",
        "block1.layer.0.bn2.running_var",
        "block1.layer.0.conv2.weight",
        "block1.layer.0.convShortcut.weight",
        "block2.layer.0.convShortcut.weight",
        "block3.layer.0.convShortcut.weight",
        "block3.layer.4.conv2.weight",
        "bn1.weight",
        "bn1.num_batches_tracked",
        "fc.weight",
        "fc.bias",
    ] {
        assert!(
            names.iter().any(|candidate| candidate == name),
            "missing {name}"
        );
    }
    for group in ["block1.", "block2.", "block3."] {
        assert_eq!(count_with_prefix(&names, group), 5 * 12 + 1, "{group}");
    }
    assert_eq!(
        names
            .iter()
            .filter(|name| name.contains("convShortcut"))
            .count(),
        3
    );
    assert_eq!(
        names
            .iter()
            .filter(|name| name.contains("sub_block"))
            .count(),
        0
    );
}

#[test]
fn preact_resnet18_state_dict_names() {
    let _torch = common::torch_lock();
    let names = names(&network(ModelKind::PreActResNet18, [3, 32, 32], 10));
    assert_eq!(names.len(), 102);
    for name in [
        "conv1.weight",
        "layer1.0.bn1.weight",
        "layer1.0.conv1.weight",
        "layer1.0.bn2.num_batches_tracked",
        "layer1.0.conv2.weight",
        "layer2.0.shortcut.0.weight",
        "layer4.1.bn2.running_mean",
        "linear.weight",
        "linear.bias",
    ] {
        assert!(
            names.iter().any(|candidate| candidate == name),
            "missing {name}"
        );
    }
    assert_eq!(count_with_prefix(&names, "layer1."), 24);
    for stage in ["layer2.", "layer3.", "layer4."] {
        assert_eq!(count_with_prefix(&names, stage), 25, "{stage}");
    }
    // The Generalist file has no stem BN and no final BN.
    assert_eq!(count_with_prefix(&names, "bn"), 0);
}

#[test]
fn small_cnn_state_dict_names() {
    let _torch = common::torch_lock();
    let names = names(&network(ModelKind::SmallCnn, [1, 28, 28], 10));
    let expected: Vec<String> = ["classifier.fc1", "classifier.fc2", "classifier.fc3"]
        .iter()
        .chain(&[
            "feature_extractor.conv1",
            "feature_extractor.conv2",
            "feature_extractor.conv3",
            "feature_extractor.conv4",
        ])
        .flat_map(|layer| [format!("{layer}.bias"), format!("{layer}.weight")])
        .collect();
    assert_eq!(names, expected);
}

#[test]
fn parameters_are_the_trainable_part_of_the_state() {
    let _torch = common::torch_lock();
    let net = network(ModelKind::ResNet18, [3, 32, 32], 10);
    let parameters = net.parameters();
    assert_eq!(parameters.len(), 62);
    assert!(parameters.iter().all(|(_, tensor)| tensor.requires_grad()));
    let buffers: Vec<String> = net
        .state_dict()
        .into_iter()
        .filter(|(_, tensor)| !tensor.requires_grad())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(buffers.len(), 60);
    assert!(buffers.iter().all(|name| name.ends_with("running_mean")
        || name.ends_with("running_var")
        || name.ends_with("num_batches_tracked")));
    let counter = state_of(&net, "bn1.num_batches_tracked");
    assert_eq!((counter.kind(), counter.size()), (Kind::Int64, vec![]));
}

#[test]
fn initialisation_follows_the_reference() {
    let _torch = common::torch_lock();
    tch::manual_seed(2);
    let max_abs = |tensor: &Tensor| tensor.abs().max().double_value(&[]);
    let std = |tensor: &Tensor| tensor.std(true).double_value(&[]);

    // ResNet-18: PyTorch defaults, U(±1/√fan_in) for conv and linear.
    let resnet = network(ModelKind::ResNet18, [3, 32, 32], 10);
    let stem = state_of(&resnet, "conv1.weight");
    assert!(max_abs(&stem) <= 1.0 / 27f64.sqrt());
    assert!(max_abs(&stem) > 0.9 / 27f64.sqrt());
    let bound = 1.0 / 512f64.sqrt();
    assert!(max_abs(&state_of(&resnet, "linear.bias")) <= bound);
    assert!(max_abs(&state_of(&resnet, "linear.weight")) <= bound);
    assert!(max_abs(&state_of(&resnet, "linear.weight")) > 0.9 * bound);
    assert_eq!(
        state_of(&resnet, "bn1.weight")
            .sum(Kind::Float)
            .double_value(&[]),
        64.0
    );
    assert_eq!(max_abs(&state_of(&resnet, "bn1.bias")), 0.0);
    assert_eq!(max_abs(&state_of(&resnet, "bn1.running_mean")), 0.0);
    assert_eq!(
        state_of(&resnet, "bn1.running_var").min().double_value(&[]),
        1.0
    );
    assert_eq!(
        state_of(&resnet, "bn1.num_batches_tracked").int64_value(&[]),
        0
    );

    // WRN: conv N(0, √(2/(k·k·out))), linear bias 0, linear weight U(±1/√640).
    let wrn = network(ModelKind::Wrn34_10, [3, 32, 32], 10);
    let conv = state_of(&wrn, "block1.layer.0.conv1.weight");
    let expected = (2.0 / (9.0 * 160.0f64)).sqrt();
    assert!(
        (std(&conv) / expected - 1.0).abs() < 0.03,
        "{} vs {expected}",
        std(&conv)
    );
    let shortcut = state_of(&wrn, "block2.layer.0.convShortcut.weight");
    let expected = (2.0 / 320.0f64).sqrt();
    assert!((std(&shortcut) / expected - 1.0).abs() < 0.03);
    assert_eq!(max_abs(&state_of(&wrn, "fc.bias")), 0.0);
    assert!(max_abs(&state_of(&wrn, "fc.weight")) <= 1.0 / 640f64.sqrt());

    // SmallCNN: conv He-normal (fan_in), conv biases 0, fc3 all zero.
    let small = network(ModelKind::SmallCnn, [1, 28, 28], 10);
    let conv = state_of(&small, "feature_extractor.conv4.weight");
    let expected = (2.0 / (64.0 * 9.0f64)).sqrt();
    assert!((std(&conv) / expected - 1.0).abs() < 0.05);
    assert_eq!(
        max_abs(&state_of(&small, "feature_extractor.conv1.bias")),
        0.0
    );
    assert_eq!(max_abs(&state_of(&small, "classifier.fc3.weight")), 0.0);
    assert_eq!(max_abs(&state_of(&small, "classifier.fc3.bias")), 0.0);
    assert!(max_abs(&state_of(&small, "classifier.fc1.bias")) > 0.0);
}

#[test]
fn train_mode_updates_batch_norm_state_and_eval_mode_changes_nothing() {
    let _torch = common::torch_lock();
    tch::manual_seed(3);
    let shape = [3, 16, 16];
    let net = network(ModelKind::ResNet18, shape, 10);
    let x = batch(4, shape);

    let before = snapshot(&net);
    let first = tch::no_grad(|| net.forward_t(&x, false));
    let second = tch::no_grad(|| net.forward_t(&x, false));
    assert!(first.equal(&second), "eval mode must be deterministic");
    for (name, tensor) in &before {
        assert!(
            tensor.equal(&state_of(&net, name)),
            "eval mode changed {name}"
        );
    }

    let _ = net.forward_t(&x, true);
    // The stem BN sees conv1(x): running stats move 10% of the way to the batch mean and the unbiased
    // batch variance, as in PyTorch.
    let stem = x.conv2d(&state_of(&net, "conv1.weight"), None::<Tensor>, 1, 1, 1, 1);
    let batch_mean = stem.mean_dim(&[0i64, 2, 3][..], false, Kind::Float);
    let batch_var = stem.var_dim(&[0i64, 2, 3][..], true, false);
    let expected_mean = &batch_mean * 0.1;
    let expected_var = batch_var * 0.1 + 0.9;
    assert!(state_of(&net, "bn1.running_mean").allclose(&expected_mean, 1e-4, 1e-6, false));
    assert!(state_of(&net, "bn1.running_var").allclose(&expected_var, 1e-4, 1e-6, false));

    let _ = net.forward_t(&x, true);
    for (name, tensor) in net.state_dict() {
        if name.ends_with("num_batches_tracked") {
            assert_eq!(tensor.int64_value(&[]), 2, "{name}");
        }
        if name.ends_with("running_mean") || name.ends_with("running_var") {
            let old = &before.iter().find(|(old, _)| *old == name).unwrap().1;
            assert!(!tensor.equal(old), "{name} did not move");
        }
    }
    // Parameters are untouched by forwards.
    for (name, tensor) in net.parameters() {
        let old = &before.iter().find(|(old, _)| *old == name).unwrap().1;
        assert!(tensor.equal(old), "{name} changed");
    }
}

#[test]
fn dropout_is_active_in_train_mode_only() {
    let _torch = common::torch_lock();
    tch::manual_seed(4);
    for kind in [ModelKind::Wrn34_10, ModelKind::SmallCnn] {
        let shape = quick_shape(kind);
        let x = batch(2, shape);
        let net = network(kind, shape, 10);
        wake_up_last_layer(&net);
        let train = || tch::no_grad(|| net.forward_t(&x, true));
        let eval = || tch::no_grad(|| net.forward_t(&x, false));
        assert!(
            !train().equal(&train()),
            "{kind}: train-mode forwards should differ"
        );
        assert!(
            eval().equal(&eval()),
            "{kind}: eval-mode forwards should agree"
        );

        // Without dropout, train-mode forwards agree: the difference above is dropout's.
        let no_dropout = ModelSpec {
            dropout: 0.0,
            ..spec(kind, shape, 10)
        };
        let net = Network::new(&no_dropout, Device::Cpu).unwrap();
        wake_up_last_layer(&net);
        let train = || tch::no_grad(|| net.forward_t(&x, true));
        assert!(train().equal(&train()), "{kind} without dropout");
    }
}

#[test]
fn input_gradients_flow_in_both_modes() {
    let _torch = common::torch_lock();
    tch::manual_seed(5);
    for kind in ALL_KINDS {
        let shape = quick_shape(kind);
        let net = network(kind, shape, 10);
        wake_up_last_layer(&net);
        for train in [true, false] {
            let x = batch(2, shape).set_requires_grad(true);
            let labels = Tensor::from_slice(&[3i64, 7]);
            let loss = net.forward_t(&x, train).cross_entropy_for_logits(&labels);
            let gradients = Tensor::run_backward(&[&loss], &[&x], false, false);
            assert_eq!(gradients[0].size(), x.size(), "{kind}");
            let magnitude = gradients[0].abs().sum(Kind::Float).double_value(&[]);
            assert!(magnitude > 0.0, "{kind} train={train}: zero input gradient");
        }
    }
}

#[test]
fn checkpoints_round_trip_exactly() {
    let _torch = common::torch_lock();
    tch::manual_seed(6);
    let folder = tempfile::tempdir().unwrap();
    for kind in ALL_KINDS {
        let shape = quick_shape(kind);
        let x = batch(2, shape);
        let net = network(kind, shape, 10);
        wake_up_last_layer(&net);
        // Non-trivial BN state: running statistics moved, num_batches_tracked = 1.
        let _ = tch::no_grad(|| net.forward_t(&x, true));
        let path = folder.path().join(format!("{kind}.safetensors"));
        net.save(&path).unwrap();

        let mut fresh = network(kind, shape, 10);
        fresh.load(&path).unwrap();
        assert_states_equal(&net, &fresh);
        let logits = tch::no_grad(|| net.forward_t(&x, false));
        assert!(
            logits.equal(&tch::no_grad(|| fresh.forward_t(&x, false))),
            "{kind}"
        );
    }
    // Only the checkpoints are left behind: the temporary files were renamed.
    let mut files: Vec<String> = std::fs::read_dir(folder.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "preact-resnet18.safetensors",
            "resnet18.safetensors",
            "small-cnn.safetensors",
            "wrn-34-10.safetensors"
        ]
    );
}

/// The refusal's message: one line, naming the file.
fn refusal(net: &mut Network, path: &Path) -> String {
    let before = snapshot(net);
    let message = net.load(path).unwrap_err().to_string();
    assert!(!message.contains('\n'), "{message}");
    let file_name = path.file_name().unwrap().to_string_lossy();
    assert!(message.contains(file_name.as_ref()), "{message}");
    // A refused load leaves the network as it was.
    for (name, tensor) in before {
        assert!(
            tensor.equal(&state_of(net, &name)),
            "{name} changed by a refused load"
        );
    }
    message
}

#[test]
fn loading_refuses_checkpoints_that_do_not_fit() {
    let _torch = common::torch_lock();
    tch::manual_seed(7);
    let folder = tempfile::tempdir().unwrap();
    let mut net = network(ModelKind::ResNet18, [3, 32, 32], 10);
    let state = net.state_dict();
    let write = |name: &str, tensors: &[(String, Tensor)]| {
        let path = folder.path().join(name);
        Tensor::write_safetensors(tensors, &path).unwrap();
        path
    };

    let without_linear_bias: Vec<_> = state
        .iter()
        .filter(|(name, _)| name != "linear.bias")
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    let message = refusal(
        &mut net,
        &write("missing.safetensors", &without_linear_bias),
    );
    assert!(message.contains("lacks tensor `linear.bias`"), "{message}");

    let mut with_extra: Vec<_> = state
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    with_extra.push((
        "fc.weight".to_string(),
        Tensor::zeros([10, 512], (Kind::Float, Device::Cpu)),
    ));
    let message = refusal(&mut net, &write("unexpected.safetensors", &with_extra));
    assert!(
        message.contains("`fc.weight`") && message.contains("does not have"),
        "{message}"
    );

    let cifar100 = network(ModelKind::ResNet18, [3, 32, 32], 100);
    let path = folder.path().join("cifar100.safetensors");
    cifar100.save(&path).unwrap();
    let message = refusal(&mut net, &path);
    assert!(
        message.contains("`linear.bias`") && message.contains("[100]") && message.contains("[10]"),
        "{message}"
    );

    let float_counter: Vec<_> = state
        .iter()
        .map(|(name, tensor)| {
            let tensor = if name == "bn1.num_batches_tracked" {
                tensor.to_kind(Kind::Float)
            } else {
                tensor.shallow_clone()
            };
            (name.clone(), tensor)
        })
        .collect();
    let message = refusal(
        &mut net,
        &write("float-counter.safetensors", &float_counter),
    );
    assert!(
        message.contains("`bn1.num_batches_tracked`")
            && message.contains("F32")
            && message.contains("I64"),
        "{message}"
    );

    // Another architecture entirely.
    let wrong_net = network(ModelKind::PreActResNet18, [3, 32, 32], 10);
    let path = folder.path().join("preact.safetensors");
    wrong_net.save(&path).unwrap();
    let message = refusal(&mut net, &path);
    assert!(
        message.contains("lacks tensor `bn1.bias`") && message.contains("other missing tensors"),
        "{message}"
    );
}

#[test]
fn loading_refuses_damaged_and_foreign_files() {
    let _torch = common::torch_lock();
    let folder = tempfile::tempdir().unwrap();
    let mut net = network(ModelKind::SmallCnn, [1, 28, 28], 10);
    let good = folder.path().join("good.safetensors");
    net.save(&good).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let write = |name: &str, contents: &[u8]| {
        let path = folder.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path
    };

    let message = refusal(
        &mut net,
        &write("truncated.safetensors", &bytes[..bytes.len() / 2]),
    );
    assert!(message.contains("truncated"), "{message}");
    let message = refusal(
        &mut net,
        &write("one-byte-short.safetensors", &bytes[..bytes.len() - 1]),
    );
    assert!(message.contains("truncated"), "{message}");
    let header_length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let message = refusal(
        &mut net,
        &write("header-cut.safetensors", &bytes[..8 + header_length / 2]),
    );
    assert!(
        message.contains("not a valid safetensors file"),
        "{message}"
    );
    let message = refusal(
        &mut net,
        &write(
            "text.safetensors",
            b"this is a text file, not a checkpoint\n",
        ),
    );
    assert!(
        message.contains("not a valid safetensors file"),
        "{message}"
    );
    let message = refusal(&mut net, &write("empty.safetensors", b""));
    assert!(message.contains("only 0 bytes"), "{message}");
    let mut json_array = 2u64.to_le_bytes().to_vec();
    json_array.extend_from_slice(b"[]");
    let message = refusal(&mut net, &write("array-header.safetensors", &json_array));
    assert!(message.contains("not a JSON object"), "{message}");
    let message = refusal(&mut net, &folder.path().join("absent.safetensors"));
    assert!(message.contains("cannot read checkpoint"), "{message}");
}

#[test]
fn saving_into_a_missing_folder_fails_cleanly() {
    let _torch = common::torch_lock();
    let net = network(ModelKind::SmallCnn, [1, 28, 28], 10);
    let folder = tempfile::tempdir().unwrap();
    let path = folder
        .path()
        .join("no-such-folder")
        .join("model.safetensors");
    let message = net.save(&path).unwrap_err().to_string();
    assert!(
        message.starts_with("cannot write checkpoint") && !message.contains('\n'),
        "{message}"
    );
}

#[test]
fn copy_from_copies_the_whole_state() {
    let _torch = common::torch_lock();
    tch::manual_seed(8);
    let shape = [3, 16, 16];
    let student = network(ModelKind::ResNet18, shape, 10);
    let _ = tch::no_grad(|| student.forward_t(&batch(4, shape), true));
    // An EMA teacher may run without dropout; the state is the same.
    let mut teacher = Network::new(
        &ModelSpec {
            dropout: 0.5,
            ..spec(ModelKind::ResNet18, shape, 10)
        },
        Device::Cpu,
    )
    .unwrap();
    teacher.copy_from(&student).unwrap();
    assert_states_equal(&student, &teacher);

    let other = network(ModelKind::ResNet18, shape, 100);
    let message = teacher.copy_from(&other).unwrap_err().to_string();
    assert!(
        message.contains("100 classes") && message.contains("10 classes"),
        "{message}"
    );
}

#[test]
fn impossible_specs_and_inputs_are_refused() {
    let _torch = common::torch_lock();
    let refuse = |spec: ModelSpec| match Network::new(&spec, Device::Cpu) {
        Err(err @ ModelError::InvalidSpec(_)) => err.to_string(),
        Err(other) => panic!("wrong error {other}"),
        Ok(_) => panic!("{spec:?} was accepted"),
    };
    let message = refuse(spec(ModelKind::SmallCnn, [3, 8, 8], 10));
    assert!(message.contains("at least 16×16"), "{message}");
    assert!(refuse(spec(ModelKind::SmallCnn, [1, 15, 28], 10)).contains("15×28"));
    assert!(Network::new(&spec(ModelKind::SmallCnn, [1, 16, 16], 10), Device::Cpu).is_ok());
    assert!(
        refuse(spec(ModelKind::ResNet18, [3, 32, 32], 0)).contains("classes must be at least 1")
    );
    assert!(refuse(spec(ModelKind::ResNet18, [0, 32, 32], 10)).contains("in_channels"));
    let full_dropout = ModelSpec {
        dropout: 1.0,
        ..spec(ModelKind::Wrn34_10, [3, 32, 32], 10)
    };
    assert!(refuse(full_dropout).contains("dropout"));
    let nan_dropout = ModelSpec {
        dropout: f64::NAN,
        ..spec(ModelKind::SmallCnn, [1, 28, 28], 10)
    };
    assert!(refuse(nan_dropout).contains("dropout"));

    let absent_gpu = Network::new(
        &spec(ModelKind::SmallCnn, [1, 28, 28], 10),
        Device::Cuda(99),
    );
    assert!(matches!(
        absent_gpu,
        Err(ModelError::UnavailableDevice { .. })
    ));

    let net = network(ModelKind::SmallCnn, [1, 28, 28], 10);
    let message = net
        .f_forward_t(&batch(2, [3, 28, 28]), false)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("[2, 3, 28, 28]") && message.contains("[batch, 1, 28, 28]"),
        "{message}"
    );
    assert!(net
        .f_forward_t(&Tensor::zeros([28, 28], (Kind::Float, Device::Cpu)), false)
        .is_err());
}

#[test]
fn reference_pytorch_models_agree_with_ours() {
    let _torch = common::torch_lock();
    tch::manual_seed(9);
    let folder = tempfile::tempdir().unwrap();
    let specs: Vec<ModelSpec> = [
        (ModelKind::ResNet18, [3, 32, 32], 10),
        // The reference pools the final map whole (4×4 and 8×8 at 32×32); WRN is checked at 16×16 for speed.
        (ModelKind::Wrn34_10, [3, 16, 16], 100),
        (ModelKind::PreActResNet18, [3, 32, 32], 10),
        (ModelKind::SmallCnn, [1, 28, 28], 10),
    ]
    .into_iter()
    // No dropout, so that the train-mode logits are comparable.
    .map(|(kind, shape, classes)| ModelSpec {
        dropout: 0.0,
        ..spec(kind, shape, classes)
    })
    .collect();
    for spec in &specs {
        let net = Network::new(spec, Device::Cpu).unwrap();
        wake_up_last_layer(&net);
        let file = |what: &str| {
            folder
                .path()
                .join(format!("{}-{what}.safetensors", spec.kind))
        };
        net.save(&file("initial")).unwrap();
        let x = batch(2, [spec.in_channels, spec.height, spec.width]);
        let eval_logits = tch::no_grad(|| net.forward_t(&x, false));
        let train_logits = tch::no_grad(|| net.forward_t(&x, true));
        net.save(&file("after")).unwrap();
        let io = [
            ("x", x),
            ("eval_logits", eval_logits),
            ("train_logits", train_logits),
        ];
        Tensor::write_safetensors(&io, file("io")).unwrap();
    }
    std::fs::write(
        folder.path().join("specs.json"),
        serde_json::to_string(&specs).unwrap(),
    )
    .unwrap();
    let stdout = common::run_python("model_oracle.py", &[folder.path()]);
    eprintln!("{stdout}");
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[test]
fn channels_last_weights_compute_the_same_and_save_the_same_checkpoint() {
    let _torch = common::torch_lock();
    let folder = tempfile::tempdir().unwrap();
    for kind in ALL_KINDS {
        tch::manual_seed(8);
        let shape = quick_shape(kind);
        let x = batch(4, shape);
        let nchw = network(kind, shape, 10);
        wake_up_last_layer(&nchw);
        let mut nhwc = network(kind, shape, 10);
        nhwc.copy_from(&nchw).unwrap();
        nhwc.use_channels_last();
        let conv = nhwc
            .state_dict()
            .into_iter()
            .find(|(_, t)| t.dim() == 4 && t.size()[1] > 1 && t.size()[2] > 1)
            .unwrap()
            .1;
        assert!(
            !conv.is_contiguous(),
            "{kind}: the conv weights are NHWC in memory"
        );
        assert_states_equal(&nchw, &nhwc);

        let logits = |net: &Network| tch::no_grad(|| net.forward_t(&x, false));
        let gap = (logits(&nchw) - logits(&nhwc))
            .abs()
            .max()
            .double_value(&[]);
        assert!(gap < 1e-4, "{kind}: logits differ by {gap}");

        let (a, b) = (folder.path().join("a"), folder.path().join("b"));
        nchw.save(&a).unwrap();
        nhwc.save(&b).unwrap();
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{kind}"
        );
        let mut loaded = network(kind, shape, 10);
        loaded.use_channels_last();
        loaded.load(&b).unwrap();
        assert_states_equal(&nchw, &loaded);
    }
}
