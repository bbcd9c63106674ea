"""The attack table of torchattacks 3.5.1 on a checkpoint and images prepared by adarat's parity test.

FOLDER holds spec.json (the model spec and the attack settings), model.safetensors (PyTorch state_dict
names) and data.safetensors (x in [0, 1], y). Writes FOLDER/torchattacks.json with the accuracies (%)
and seconds of each attack, FOLDER/fgsm.safetensors with torchattacks' FGSM images, and
FOLDER/pytorch.safetensors, the loaded model's state_dict saved from PyTorch. torchattacks
has no CW∞ (its CW is L2), so CW is the reference's attack (docs/protocol.md#cw-infinity) written here.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import build, read_safetensors, write_safetensors  # noqa: E402

import torchattacks  # noqa: E402

assert torchattacks.__version__ == "3.5.1", torchattacks.__version__


def reference_cw(model, x, y, eps, alpha, steps, margin, classes):
    """AdaRAT's cw.CW_Attack: PGD ascent on −max(0, z_y − max_{j≠y} z_j + κ), unclipped start."""
    adv = x + torch.empty_like(x).uniform_(-eps, eps)
    one_hot = torch.nn.functional.one_hot(y, classes).float()
    for _ in range(steps):
        adv = adv.detach().requires_grad_(True)
        z = model(adv)
        true = (one_hot * z).sum(1)
        other = ((1 - one_hot) * z - one_hot * 1000).max(1)[0]
        loss = -torch.clamp(true - other + margin, min=0).mean()
        grad, = torch.autograd.grad(loss, [adv])
        adv = adv.detach() + alpha * grad.sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
    return adv.detach()


def main(folder):
    # One thread, as every process of the test suite: its tests run side by side.
    torch.set_num_threads(1)
    spec = json.load(open(os.path.join(folder, "spec.json")))
    model = build(spec["model"])
    model.load_state_dict(read_safetensors(os.path.join(folder, "model.safetensors")), strict=True)
    model.eval()
    data = read_safetensors(os.path.join(folder, "data.safetensors"))
    x, y = data["x"], data["y"]
    eps, alpha = spec["epsilon"], spec["step_size"]

    def accuracy(images):
        with torch.no_grad():
            return 100.0 * (model(images).argmax(1) == y).float().mean().item()

    torch.manual_seed(spec["seed"])
    attacks = {
        "fgsm": lambda: torchattacks.FGSM(model, eps=eps)(x, y),
        "pgd10": lambda: torchattacks.PGD(model, eps=eps, alpha=alpha, steps=10, random_start=True)(x, y),
        "pgd20": lambda: torchattacks.PGD(model, eps=eps, alpha=alpha, steps=20, random_start=True)(x, y),
        "pgd50": lambda: torchattacks.PGD(model, eps=eps, alpha=alpha, steps=50, random_start=True)(x, y),
        "cw": lambda: reference_cw(model, x, y, eps, alpha, spec["cw_steps"], spec["cw_margin"],
                                   spec["model"]["classes"]),
        # The reference's call: every default but eps (its eps default is 8/255 anyway).
        "autoattack": lambda: torchattacks.AutoAttack(model, norm="Linf", eps=eps, version="standard",
                                                      n_classes=10, seed=spec["seed"])(x, y),
    }
    result = {"clean": accuracy(x), "seconds": {}}
    for name, attack in attacks.items():
        if name not in spec["attacks"]:
            continue
        started = time.time()
        images = attack()
        result["seconds"][name] = time.time() - started
        result[name] = accuracy(images)
        if name == "fgsm":
            write_safetensors(os.path.join(folder, "fgsm.safetensors"), {"x": images})
    # A checkpoint saved from PyTorch, for adarat to evaluate in turn.
    write_safetensors(os.path.join(folder, "pytorch.safetensors"), model.state_dict())
    json.dump(result, open(os.path.join(folder, "torchattacks.json"), "w"), indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
