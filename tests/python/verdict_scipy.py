"""The verdict as scipy computes it from run folders: for every FixRAT/AdaRAT group, against the
baseline of the same method and `limit_train`, the paired t-test over the seeds both have (mean
difference, 95 % t interval with n - 1 degrees of freedom, ttest_rel's two-sided p) for clean
accuracy and each final attack; with one seed in common, McNemar's exact test (binomtest at 1/2)
over the per-image records, with the Wald interval. Prints one JSON list."""
import glob
import json
import math
import os
import re
import sys

import numpy as np
from scipy import stats

runs = []
for output in sys.argv[1:]:
    for folder in sorted(glob.glob(os.path.join(output, "*_seed*"))):
        with open(os.path.join(folder, "result.json")) as f:
            result = json.load(f)
        with open(os.path.join(folder, "config.yaml")) as f:
            limit = re.search(r"^limit_train: (\S+)$", f.read(), re.M).group(1)
        records = None
        path = os.path.join(folder, "per-image.json")
        if os.path.exists(path):
            with open(path) as f:
                records = json.load(f)
        runs.append((result, limit, folder, records))


def value(result, column):
    table = result["final"]
    return table["clean"] if column == "clean" else table.get(column)


def bits(records, column):
    hex_text = records["correct"][column]
    data = bytes.fromhex(hex_text)
    return [(data[i // 8] >> (i % 8)) & 1 == 1 for i in range(records["images"])]


def finite(x):
    return None if x is None or math.isnan(x) else float(x)


out = []
for result, limit, _, _ in runs:
    if result["mode"] == "baseline":
        continue
    mine = [r for r in runs if (r[0]["method"], r[0]["mode"], r[1]) == (result["method"], result["mode"], limit)]
    if mine[0][0] is not result:
        continue
    base = {r[0]["seed"]: r for r in runs
            if (r[0]["method"], r[0]["mode"], r[1]) == (result["method"], "baseline", limit)}
    pairs = [(m, base[m[0]["seed"]]) for m in mine if m[0]["seed"] in base]
    for column in ["clean"] + [k for k in ("fgsm", "pgd10", "pgd20", "pgd50", "cw", "autoattack")]:
        if any(value(m[0], column) is None for m, _ in pairs):
            continue
        entry = {"method": result["method"], "mode": result["mode"], "limit_train": limit, "column": column}
        if len(pairs) >= 2:
            a = np.array([value(m[0], column) for m, _ in pairs])
            b = np.array([value(p[0], column) for _, p in pairs])
            d = a - b
            n = len(d)
            test = stats.ttest_rel(a, b)
            half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n)
            entry.update(test="paired-t", n=n, delta=float(d.mean()), ci=[float(d.mean() - half), float(d.mean() + half)],
                         p=finite(test.pvalue))
        elif len(pairs) == 1 and pairs[0][0][3] is not None and pairs[0][1][3] is not None:
            ta, tb = bits(pairs[0][0][3], column), bits(pairs[0][1][3], column)
            images = len(ta)
            b_ = sum(1 for x, y in zip(ta, tb) if x and not y)
            c_ = sum(1 for x, y in zip(ta, tb) if y and not x)
            p = 1.0 if b_ + c_ == 0 else stats.binomtest(min(b_, c_), b_ + c_, 0.5).pvalue
            delta = 100.0 * (b_ - c_) / images
            z = stats.norm.ppf(0.975)
            half = z * 100.0 * math.sqrt((b_ + c_) - (b_ - c_) ** 2 / images) / images
            entry.update(test="mcnemar-exact", n=images, delta=delta, ci=[delta - half, delta + half], p=float(p))
        else:
            continue
        out.append(entry)
print(json.dumps(out))
