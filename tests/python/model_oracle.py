"""A PyTorch oracle: the reference architectures load adarat's checkpoints with a strict
load_state_dict and reproduce its eval-mode logits, train-mode logits and BatchNorm state."""
import json, os, sys
import torch
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_models import build, read_safetensors

torch.set_num_threads(1)

def worst(a, b):
    return (a.double() - b.double()).abs().max().item()

folder = sys.argv[1]
failures = []
for spec in json.load(open(folder + "/specs.json")):
    kind = spec["kind"]
    model = build(spec)
    model.load_state_dict(read_safetensors("%s/%s-initial.safetensors" % (folder, kind)), strict=True)
    io = read_safetensors("%s/%s-io.safetensors" % (folder, kind))
    model.eval()
    with torch.no_grad():
        eval_error = worst(model(io["x"]), io["eval_logits"])
    model.train()
    with torch.no_grad():
        train_error = worst(model(io["x"]), io["train_logits"])
    after = read_safetensors("%s/%s-after.safetensors" % (folder, kind))
    ours = model.state_dict()
    state_error = max(worst(ours[name], after[name]) for name in ours)
    print("%s: eval %.2e, train %.2e, state %.2e" % (kind, eval_error, train_error, state_error))
    if max(eval_error, train_error, state_error) > 1e-4:
        failures.append(kind)
if failures:
    sys.exit("mismatch: " + ", ".join(failures))
