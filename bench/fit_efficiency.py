#!/usr/bin/env python3
"""fit_efficiency.py — refit the efficiency block of a cluster spec against
published cases (docs/accuracy.md §2). The GEMM curve is held to a saturating
shape, eff(d) = e_max d / (d + d_half) at the smallest GEMM dimension d (two
numbers, so it cannot chase individual cases). The overlap efficiency is not
fitted (too few published cases overlap communication to pin it down): the
spec's value is kept.
Coordinate search minimises the sum of squared relative step-time errors that
bench/calibrate reports, then rewrites the spec's `gemm:` and `overlap:` lines.

With --d-half D the shape is held at d_half = D and only e_max is fitted (for
a GPU with too few published cases to pin the shape down: a new ceiling on the
same curve).

usage: bench/fit_efficiency.py [--d-half D] BUILD_DIR CLUSTER.yaml FILE.yaml...
"""
import re
import subprocess
import sys

args = sys.argv[1:]
fixed_dhalf = None
if args and args[0] == "--d-half":
    fixed_dhalf, args = float(args[1]), args[2:]
build, cluster, files = args[0], args[1], args[2:]
dims = [64, 128, 256, 512, 1024, 2048, 4096]
text = open(cluster).read()


def curve(emax, dhalf):
    return [emax * d / (d + dhalf) for d in dims]


def write(x):
    pts = ", ".join("[%d, %.3f]" % (d, f) for d, f in zip(dims, curve(x[0], x[1])))
    t = re.sub(r"gemm: \[\[.*\]\]", "gemm: [%s]" % pts, text)
    t = re.sub(r"overlap: [0-9.]+", "overlap: %.3f" % x[2], t)
    open(cluster, "w").write(t)


def errors():
    out = subprocess.run([build + "/bench/calibrate"] + files, capture_output=True, text=True,
                         check=True).stdout
    return [float(m.group(1)) / 100 for m in re.finditer(r" ([+-][0-9.]+)% ", out)]


def cost(x):
    if not (0 < x[0] <= 1 and 0 < x[1] and 0 < x[2] <= 1):
        return 1e9
    write(x)
    return sum(e * e for e in errors())


x = [0.75, fixed_dhalf or 64.0, float(re.search(r"overlap: ([0-9.]+)", text).group(1))]
free = 1 if fixed_dhalf else 2
scale = [1.0, 400.0, 1.0]
best = cost(x)
step = 0.05
while step > 0.0005:
    improved = False
    for i in range(free):
        for d in (step, -step):
            y = list(x)
            y[i] = y[i] + d * scale[i]
            c = cost(y)
            if c < best:
                best, x, improved = c, y, True
    if not improved:
        step /= 2
write(x)
errs = errors()
print("e_max %.3f d_half %.1f overlap %.3f; rms %.2f%% over %d cases" %
      (x[0], x[1], x[2], 100 * (best / len(errs)) ** 0.5, len(errs)))
