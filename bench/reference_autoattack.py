"""Standard AutoAttack composed from torchattacks 3.5.1's sub-attacks, timed the way `adarat bench --suites eval`
times adarat's (src/bench/eval.rs).

FOLDER holds spec.json (the model spec, epsilon, batch_size, seed), model.safetensors (PyTorch state_dict
names) and data.safetensors (x in [0, 1], y). The sub-attacks take fra31/auto-attack's standard settings, not
torchattacks' `AutoAttack(version='standard')` defaults (which run 10 iterations): APGD-CE and APGD-T with 100
iterations and one restart, APGD-T and FAB-T against the 9 classes ranked after the true one, FAB-T with 100
iterations, Square with 5000 queries, p_init 0.8 and its schedule not rescaled. As fra31 (and adarat), each
sub-attack runs, batch by batch, only on the points every earlier one left robust, starting from the correctly
classified ones. Prints one JSON object: clean and robust accuracy (%), seconds per sub-attack and in all.
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from reference_models import build, read_safetensors  # noqa: E402

import torchattacks  # noqa: E402

assert torchattacks.__version__ == "3.5.1", torchattacks.__version__

TARGETS = 9


def sub_attacks(model, eps, seed):
    return [
        ("apgd-ce", torchattacks.APGD(model, norm="Linf", eps=eps, steps=100, n_restarts=1, loss="ce", seed=seed)),
        ("apgd-t", torchattacks.APGDT(model, norm="Linf", eps=eps, steps=100, n_restarts=1,
                                      n_classes=TARGETS + 1, seed=seed)),
        ("fab-t", torchattacks.FAB(model, norm="Linf", eps=eps, steps=100, n_restarts=1, multi_targeted=True,
                                   n_classes=TARGETS + 1, seed=seed)),
        ("square", torchattacks.Square(model, norm="Linf", eps=eps, n_queries=5000, n_restarts=1, p_init=0.8,
                                       loss="margin", resc_schedule=False, seed=seed)),
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("folder")
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    device = torch.device(args.device)
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    spec = json.load(open(os.path.join(args.folder, "spec.json")))
    model = build(spec["model"])
    model.load_state_dict(read_safetensors(os.path.join(args.folder, "model.safetensors")), strict=True)
    model = model.to(device).eval()
    data = read_safetensors(os.path.join(args.folder, "data.safetensors"))
    x_all, y_all = data["x"].to(device), data["y"].to(device)
    eps, batch = spec["epsilon"], spec["batch_size"]
    attacks = sub_attacks(model, eps, spec["seed"])
    seconds = {name: 0.0 for name, _ in attacks}
    clean = robust = 0
    for start in range(0, len(y_all), batch):
        x, y = x_all[start:start + batch], y_all[start:start + batch]
        with torch.no_grad():
            left = model(x).argmax(1) == y
        clean += int(left.sum())
        for name, attack in attacks:
            indices = left.nonzero().flatten()
            if len(indices) == 0:
                break
            sync()
            started = time.time()
            adversarial = attack(x[indices], y[indices])
            sync()
            seconds[name] += time.time() - started
            with torch.no_grad():
                distance = (adversarial - x[indices]).abs().flatten(1).amax(1)
                fooled = (model(adversarial).argmax(1) != y[indices]) & (distance <= eps + 1e-5)
            left[indices[fooled]] = False
        robust += int(left.sum())
    n = len(y_all)
    print(json.dumps({"clean": 100.0 * clean / n, "robust": 100.0 * robust / n, "seconds": seconds,
                      "total": sum(seconds.values()), "images": n, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
