#!/usr/bin/env python3
"""fit_efficiency.py — refit the GEMM efficiency curve of a cluster spec against
the published cases declared `use: fit` (docs/accuracy.md §2), and the
leave-one-family-out check of that fit.

The GEMM curve is held to a saturating shape, eff(d) = e_max d / (d + d_half) at
the smallest GEMM dimension d (two numbers, so it cannot chase individual
cases). The overlap efficiency is not fitted: the spec's value is kept.
Coordinate search minimises the sum of squared relative errors that
`bench/calibrate --tsv` reports for the rows that are declared `use: fit`, load,
and run on the spec's cluster; held-out rows never enter the fit.

With --d-half D the shape is held at d_half = D and only e_max is fitted (for a
GPU with too few published cases to pin the shape down: a new ceiling on the
same curve).

--lofo: for every family that has fitted rows, redo the whole fit (dgx-a100
free; every other cluster with fitted rows at the A100 fit's d_half; dgx-h200
carries dgx-h100's curve) without that family's rows, in a copy of
plans/clusters under a temporary PARASIM_DATA, and report the error of that
family's rows (fitted and held-out) under that fit. A cluster left with no fitted
rows gets the refit A100 curve. Families with no fitted rows are unaffected by
construction (their figure is the committed one). Also refits on all fitted rows
and prints the curve beside the committed one. Prints TSV; never touches the
tree. Deterministic.

usage: bench/fit_efficiency.py [--d-half D] BUILD_DIR CLUSTER.yaml FILE.yaml...
       bench/fit_efficiency.py --lofo BUILD_DIR FILE.yaml...
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

DIMS = [64, 128, 256, 512, 1024, 2048, 4096]
SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FREE_CLUSTER = "dgx-a100"
FOLLOWS = {"dgx-h200": "dgx-h100"}  # same die: carries the fitted curve of the other


def calibrate(build, files, data=None):
    """Rows of `calibrate --tsv` as dicts (exit status 1 = some row failed: still read)."""
    env = dict(os.environ)
    if data:
        env["PARASIM_DATA"] = data
    out = subprocess.run([os.path.join(build, "bench", "calibrate"), "--tsv"] + files,
                         capture_output=True, text=True, env=env)
    if out.returncode not in (0, 1):
        sys.exit("calibrate failed: " + out.stderr)
    lines = out.stdout.splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, l.split("\t"))) for l in lines[1:]]


def curve_line(emax, dhalf):
    return "gemm: [%s]" % ", ".join("[%d, %.3f]" % (d, emax * d / (d + dhalf)) for d in DIMS)


def set_gemm(path, line):
    text = open(path).read()
    open(path, "w").write(re.sub(r"gemm: \[\[.*\]\]", line, text))


def get_gemm(path):
    m = re.search(r"gemm: \[\[.*\]\]", open(path).read())
    return m.group(0) if m else None


def fit_rows(rows, cluster, exclude=None):
    return [r for r in rows if r["use"] == "fit" and r["status"] == "ok" and
            r["cluster"] == cluster and r["family"] != exclude and r["metric"] != "none"]


def fit(build, spec, files, fixed_dhalf=None, exclude=None, data=None):
    """Fit spec's curve; returns (e_max, d_half, rms, n) or None when no row is left."""
    cluster = re.search(r"^name: *(\S+)", open(spec).read(), re.M).group(1)
    rows = fit_rows(calibrate(build, files, data), cluster, exclude)
    if not rows:
        return None
    used = sorted({r["file"] for r in rows})
    names = {(r["file"], r["case"]) for r in rows}

    def errors(x):
        set_gemm(spec, curve_line(x[0], x[1]))
        return [float(r["error"]) for r in calibrate(build, used, data)
                if (r["file"], r["case"]) in names and r["status"] == "ok"]

    def cost(x):
        if not (0 < x[0] <= 1 and 0 < x[1]):
            return 1e9
        return sum(e * e for e in errors(x))

    x = [0.75, fixed_dhalf or 64.0]
    free = 1 if fixed_dhalf else 2
    scale = [1.0, 400.0]
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
    set_gemm(spec, curve_line(x[0], x[1]))
    return x[0], x[1], (best / len(names)) ** 0.5, len(names)


def fit_all(build, files, data, exclude=None):
    """The whole procedure in data/plans/clusters; returns {cluster: result}."""
    clusters = os.path.join(data, "plans", "clusters")
    rows = calibrate(build, files, data)
    fitted = sorted({r["cluster"] for r in rows if r["use"] == "fit" and r["status"] == "ok"})
    out = {}
    a100 = fit(build, os.path.join(clusters, FREE_CLUSTER + ".yaml"), files, None, exclude, data)
    out[FREE_CLUSTER] = a100
    a100_line = get_gemm(os.path.join(clusters, FREE_CLUSTER + ".yaml"))
    for c in fitted:
        if c == FREE_CLUSTER:
            continue
        spec = os.path.join(clusters, c + ".yaml")
        r = fit(build, spec, files, a100[1] if a100 else 102.1, exclude, data)
        if r is None:  # nothing left to fit this GPU: the (refit) A100 curve applies
            set_gemm(spec, a100_line)
        out[c] = r
    for c, src in FOLLOWS.items():
        line = get_gemm(os.path.join(clusters, src + ".yaml"))
        if line and os.path.exists(os.path.join(clusters, c + ".yaml")):
            set_gemm(os.path.join(clusters, c + ".yaml"), line)
    return out


def describe(res):
    parts = []
    for c in sorted(res):
        r = res[c]
        parts.append("%s: %s" % (c, "no fitted rows left (A100 curve)" if r is None else
                                 "e_max %.3f, d_half %.1f (%d rows)" % (r[0], r[1], r[3])))
    return "; ".join(parts)


def summary(rows, none="-"):
    """The error summary of rows, as text: [rows with an error, mean |error|,
    max |error|, rows that failed to load] (`none` for the mean and max when no
    row has an error)."""
    errs = [abs(float(r["error"])) for r in rows if r["status"] == "ok" and r["metric"] != "none"]
    failed = sum(r["status"] != "ok" for r in rows)
    if not errs:
        return ["0", none, none, "%d" % failed]
    return ["%d" % len(errs), "%.1f%%" % (100 * sum(errs) / len(errs)), "%.1f%%" % (100 * max(errs)),
            "%d" % failed]


def stats(rows):
    return "\t".join(summary(rows))


def lofo_data(build, files, base=None):
    """The leave-one-family-out check as data: {"refit", "committed_curves",
    "refit_curves": text; "families": [{"family", "fitted" (count), "own"
    (summary of the family's rows, committed fit), "again" (summary under the
    fit without the family; None without fitted rows), "fit" (that fit,
    described; None without fitted rows)}]}. `base`: the rows of `calibrate`
    on `files` when the caller has them already."""
    files = [os.path.abspath(f) for f in files]
    if base is None:
        base = calibrate(build, files)
    families = []
    for r in base:
        if r["family"] not in families:
            families.append(r["family"])
    tmp = tempfile.mkdtemp(prefix="parasim-lofo-")
    try:
        def fresh():
            shutil.rmtree(os.path.join(tmp, "plans"), ignore_errors=True)
            shutil.copytree(os.path.join(SRC, "plans", "clusters"), os.path.join(tmp, "plans", "clusters"))

        fresh()
        res = fit_all(build, files, tmp)
        out = {"refit": describe(res), "families": []}
        out["committed_curves"] = "; ".join("%s: %s" % (c, re.sub(r"^gemm: ", "", get_gemm(
            os.path.join(SRC, "plans", "clusters", c + ".yaml")) or "default"))
            for c in sorted(res))
        out["refit_curves"] = "; ".join("%s: %s" % (c, re.sub(r"^gemm: ", "", get_gemm(
            os.path.join(tmp, "plans", "clusters", c + ".yaml")) or "default"))
            for c in sorted(res))
        for fam in families:
            own = [r for r in base if r["family"] == fam]
            nfit = sum(r["use"] == "fit" for r in own)
            row = {"family": fam, "fitted": nfit, "own": summary(own), "again": None, "fit": None}
            if nfit:
                fresh()
                res = fit_all(build, files, tmp, exclude=fam)
                row["again"] = summary([r for r in calibrate(build, files, tmp) if r["family"] == fam])
                row["fit"] = describe(res)
            out["families"].append(row)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def lofo(build, files):
    d = lofo_data(build, files)
    print("#refit\t%s" % d["refit"])
    print("#committed_curves\t%s" % d["committed_curves"])
    print("#refit_curves\t%s" % d["refit_curves"])
    print("family\tfitted_rows\trows\tcommitted_mean\tcommitted_max\tfailed\t"
          "lofo_rows\tlofo_mean\tlofo_max\tlofo_failed\tfit_without_it")
    for f in d["families"]:
        if f["fitted"] == 0:
            print("%s\t0\t%s\t(same: no fitted rows)\t\t\t\t" % (f["family"], "\t".join(f["own"])))
        else:
            print("%s\t%d\t%s\t%s\t%s" % (f["family"], f["fitted"], "\t".join(f["own"]),
                                          "\t".join(f["again"]), f["fit"]))


def main():
    args = sys.argv[1:]
    if args and args[0] == "--lofo":
        if len(args) < 3:
            sys.exit(__doc__)
        lofo(args[1], args[2:])
        return
    fixed = None
    if args and args[0] == "--d-half":
        fixed, args = float(args[1]), args[2:]
    if len(args) < 3:
        sys.exit(__doc__)
    r = fit(args[0], args[1], args[2:], fixed)
    if r is None:
        sys.exit("no row declared use: fit on this cluster in the files given")
    print("e_max %.3f d_half %.1f; rms %.2f%% over %d cases" % (r[0], r[1], 100 * r[2], r[3]))


if __name__ == "__main__":
    main()
