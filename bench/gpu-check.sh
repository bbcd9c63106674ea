#!/usr/bin/env bash
# The GPU check: everything that only a GPU can show, in one command sized to finish in about 8 minutes on one
# H200, with a release binary built elsewhere (README, "Performance"; docs/testing.md#the-gpu-check).
#
#   bench/gpu-check.sh [BINARY]        default: target/release/adarat
#
# 1. every method × mode on `synthetic` for one short epoch on CUDA with CUDA graphs, a job failing if a graph
#    fell back to eager (a `warning` event) or the run was not on CUDA;
# 2. a final table with standard AutoAttack on CUDA (1 000 test images);
# 3. `adarat bench --suites main,eval`: training, per-epoch test and attack table next to bench/reference.py, and
#    standard AutoAttack next to torchattacks' sub-attacks (bench/reference_autoattack.py);
# then one table of it all on stdout, also written to $OUT/gpu-check.txt when $OUT is set.
#
# It needs Python with torch (the machine's, or ADARAT_PYTHON) for libtorch's libraries and the references;
# torchattacks 3.5.1 for the eval reference: importable, or beside this repository in
# .venv/lib/python*/site-packages (copy that folder along when the machine cannot install it).
# GPU_CHECK_SMOKE=1 runs the same steps on the CPU with small-cnn and `bench --quick`: it checks the script, not
# the GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/release/adarat}
PY=${ADARAT_PYTHON:-$(command -v python3 || command -v python)}
WORK=$(mktemp -d /tmp/adarat-gpu-check.XXXXXX)
export ADARAT_PYTHON=$PY PYTHONUNBUFFERED=1

TORCH_LIB=$("$PY" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))') || {
    echo "gpu-check: $PY has no torch" >&2
    exit 2
}
export LD_LIBRARY_PATH=$TORCH_LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
if ! "$PY" -c 'import torchattacks' 2>/dev/null; then
    for site in .venv/lib/python*/site-packages; do
        if [ -d "$site/torchattacks" ]; then
            mkdir -p "$WORK/py" && ln -s "$PWD/$site/torchattacks" "$WORK/py/torchattacks"
            export PYTHONPATH=$WORK/py${PYTHONPATH:+:$PYTHONPATH}
        fi
    done
fi

if [ "${GPU_CHECK_SMOKE:-}" = 1 ]; then
        # A 2-core CPU is far slower than the GPU the time limits are set for.
    DEVICE=cpu MODEL=small-cnn QUICK=--quick FINAL_IMAGES=50 SLOWER=4
else
    DEVICE=cuda MODEL=resnet18 QUICK= FINAL_IMAGES=1000 SLOWER=1
fi
step() { echo "== $(date +%H:%M:%S) $*" >&2; }
SMALL=(--set datasets.synthetic.train_size=1024 --set datasets.synthetic.test_size=256)

step "1/3 every method and mode, one epoch on CUDA with CUDA graphs"
JOBS=()
for method in st pgd-at fat dat trades kd-at iad generalist; do
    for mode in baseline fixrat adarat; do
        [ "$method" = st ] && [ "$mode" != baseline ] && continue
        JOBS+=("$method/synthetic/$mode")
    done
done
timeout $((200 * SLOWER)) "$BIN" run "${JOBS[@]}" --device $DEVICE --model $MODEL --epochs 1 --offline --output "$WORK/methods" \
    "${SMALL[@]}" --set cuda_graphs=true --set "evaluation.final_attacks=[fgsm]" >"$WORK/methods.log" 2>&1
echo "exit $?" >>"$WORK/methods.log"

step "2/3 a final table with standard AutoAttack on CUDA"
timeout $((150 * SLOWER)) "$BIN" run pgd-at/synthetic/adarat --device $DEVICE --model $MODEL --epochs 3 --offline \
    --output "$WORK/final" --set datasets.synthetic.train_size=4096 --set datasets.synthetic.test_size=1000 \
    --set evaluation.datasets.synthetic.final_images=$FINAL_IMAGES >"$WORK/final.log" 2>&1
echo "exit $?" >>"$WORK/final.log"

step "3/3 adarat bench --suites main,eval"
timeout $((270 * SLOWER)) "$BIN" bench --device $DEVICE --suites main,eval --json --python "$PY" $QUICK >"$WORK/bench.json" \
    2>"$WORK/bench.log"
echo "exit $?" >>"$WORK/bench.log"

"$PY" - "$WORK" "$MODEL" "${JOBS[@]}" <<'EOF' | tee "$WORK/gpu-check.txt"
import json, os, subprocess, sys

work, model, jobs = sys.argv[1], sys.argv[2], sys.argv[3:]
rows = []
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True).stdout.strip()
except OSError:
    gpu = "no nvidia-smi"
rows.append(("GPU", gpu))


def run_of(folder, job):
    method, dataset, mode = job.split("/")
    path = os.path.join(folder, f"{method}_{dataset}_{mode}_{model}_seed1")
    try:
        result = json.load(open(os.path.join(path, "result.json")))
    except OSError:
        return None, [], path
    events = [json.loads(line) for line in open(os.path.join(path, "events.jsonl")) if line.strip()]
    warnings = [e["message"] for e in events if e.get("type") == "warning"]
    return result, warnings, path


failed = 0
for job in jobs:
    result, warnings, _ = run_of(os.path.join(work, "methods"), job)
    if result is None:
        verdict, failed = "FAILED: no result (see methods.log)", failed + 1
    elif result["status"] != "completed" or (model == "resnet18" and not result["device"].startswith("cuda")) \
            or warnings:
        verdict, failed = f"FAILED: {result['status']} on {result['device']} {'; '.join(warnings)}", failed + 1
    else:
        e = result["epochs_log"][-1]
        graphs = "CUDA graphs kept" if result["device"].startswith("cuda") else "eager (no graphs off CUDA)"
        verdict = f"ok on {result['device']}, {graphs}: {e['images_per_second']:.0f} img/s, test SA {e['test_clean_acc']:.1f}"
    rows.append((job, verdict))

result, warnings, _ = run_of(os.path.join(work, "final"), "pgd-at/synthetic/adarat")
if result and result.get("final"):
    table = result["final"]
    steps = ", ".join(f"{s['attack']} {s['seconds']:.1f} s" for s in table.get("autoattack_steps", []))
    rows.append(("final table, standard AutoAttack",
                 f"clean {table['clean']:.1f}, PGD-20 {table['pgd20']:.1f}, AA {table['autoattack']:.1f} "
                 f"on {table['images']} images in {table['seconds'].get('autoattack', 0):.1f} s ({steps})"))
else:
    rows.append(("final table, standard AutoAttack", "FAILED (see final.log)"))
    failed += 1

try:
    bench = json.load(open(os.path.join(work, "bench.json")))
    for case in bench["cases"]:
        ref = "-" if case["reference"] is None else f"{case['reference']:.1f}"
        ratio = "-" if case["ratio"] is None else f"x{case['ratio']:.2f}"
        extra = f", {case['tflops']:.0f} TFLOP/s" if case.get("tflops") else ""
        note = f" ({case['note']})" if case.get("note") and "robust" in case["note"] else ""
        rows.append((case["name"], f"{case['ours']:.1f} vs {ref} {case['unit']} {ratio}{extra}{note}"))
except (OSError, ValueError, KeyError) as error:
    rows.append(("bench", f"FAILED: {error} (see bench.log)"))
    failed += 1

width = max(len(name) for name, _ in rows)
for name, verdict in rows:
    print(f"{name:<{width}}  {verdict}")
print(f"{failed} failed; logs in {work}")
sys.exit(1 if failed else 0)
EOF
status=${PIPESTATUS[0]}
if [ -n "${OUT:-}" ]; then
    cp "$WORK/gpu-check.txt" "$WORK/bench.json" "$OUT/" 2>/dev/null
    tail -c 20000 "$WORK/methods.log" >"$OUT/methods.log"
    tail -c 20000 "$WORK/bench.log" >"$OUT/bench.log"
fi
exit "$status"
