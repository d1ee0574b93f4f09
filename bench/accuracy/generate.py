#!/usr/bin/env python3
"""generate.py — docs/accuracy.md from bench/accuracy/template.md and the
rows of bench/calibrate and fit_efficiency.lofo_data (bench/fit_efficiency.py)
on every file in bench/published/ (bench/accuracy.sh calls it; never edit docs/accuracy.md by
hand). Deterministic: the same tree gives the same bytes.

Each line of the template that is exactly `@@NAME@@` is replaced by a generated
block: FILES (each file, its declaration and source), ROWS (every row of every
file), SETS (fitted and held-out, overall and per family), LOFO
(leave-one-family-out), CURVES (committed vs refit GEMM curves), MEMORY
(published peak memory rows), NOFIT (published runs predicted not to fit),
FAILED (rows that did not load).

usage: bench/accuracy/generate.py BUILD_DIR TEMPLATE.md > docs/accuracy.md
"""
import glob
import os
import re
import sys

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(SRC, "bench"))
import fit_efficiency  # noqa: E402

GIB_FMT = "%.2f GiB"


def pct(x):
    return ("%+.1f%%" % (100 * x)).replace("-", "−")


def cell(r, key):
    v = float(r[key])
    return "%.3f" % v if r["metric"] == "mfu" else "%.3f s" % v


def field(text, key):
    m = re.search(r"^%s: *(.*)$" % key, text, re.M)
    return m.group(1).strip().strip('"') if m else ""


def files_block(files):
    out = ["| file | default use | default family | source |", "|---|---|---|---|"]
    for f in files:
        t = open(f).read()
        src = field(t, "source")
        if len(src) > 240:
            src = src[:240].rsplit(" ", 1)[0] + " …"
        out.append("| `%s` | %s | %s | %s |" % (os.path.basename(f), field(t, "use") or "per case",
                                             field(t, "family") or "per case", src.replace("|", "/")))
    return out


def rows_block(rows):
    out = []
    for f in sorted({r["file"] for r in rows}, key=[r["file"] for r in rows].index):
        out += ["", "**`%s`**" % os.path.basename(f), "",
                "| case | use | family | published | predicted | error | fits |",
                "|---|---|---|---:|---:|---:|---|"]
        for r in rows:
            if r["file"] != f:
                continue
            if r["status"] != "ok":
                out.append("| %s | %s | %s | | | **did not load** | |" % (r["case"], r["use"], r["family"]))
            elif r["metric"] == "none":
                out.append("| %s | %s | %s | – | – | (memory only) | %s |" % (r["case"], r["use"], r["family"], r["fits"]))
            else:
                out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                    r["case"], r["use"], r["family"], cell(r, "published"), cell(r, "predicted"),
                    pct(float(r["error"])), r["fits"]))
    return out[1:]


def stat(rows):
    return "| %s |" % " | ".join(fit_efficiency.summary(rows, none="–"))


def sets_block(rows):
    out = ["| set | family | rows | mean \\|error\\| | max \\|error\\| | failed to load |",
           "|---|---|---:|---:|---:|---:|"]
    for use, label in (("fit", "fitted"), ("held_out", "held out")):
        sub = [r for r in rows if r["use"] == use]
        out.append("| **%s** | **all** %s" % (label, stat(sub)))
        fams = []
        for r in sub:
            if r["family"] not in fams:
                fams.append(r["family"])
        for fam in sorted(fams):
            out.append("| %s | %s %s" % (label, fam, stat([r for r in sub if r["family"] == fam])))
    return out


def lofo_block(lofo):
    out = ["| family | fitted rows | rows | error, committed fit (mean / max) | error, fit without the family (mean / max) | that fit |",
           "|---|---:|---:|---:|---:|---|"]
    for f in lofo["families"]:
        own = f["own"]
        if f["fitted"] == 0:
            out.append("| %s | 0 | %s | %s / %s | same (no fitted rows to leave out) | |" % (f["family"], own[0], own[1], own[2]))
        else:
            out.append("| %s | %d | %s | %s / %s | %s / %s | %s |" % (f["family"], f["fitted"], own[0], own[1], own[2],
                                                                   f["again"][1], f["again"][2], f["fit"]))
    return out


def curves_block(lofo):
    return ["- refit on every fitted row now: " + lofo["refit"],
            "- committed `gemm:` points: " + lofo["committed_curves"],
            "- refit `gemm:` points: " + lofo["refit_curves"]]


def memory_block(rows):
    mem = [r for r in rows if r["memory_by"] != "-"]
    out = ["| file | case | measured as | on | published | predicted | error |",
           "|---|---|---|---|---:|---:|---:|"]
    for r in mem:
        out.append("| `%s` | %s | %s | %s stage | %s | %s | %s |" % (
            os.path.basename(r["file"]), r["case"], r["memory_by"], r["memory_stage"],
            GIB_FMT % float(r["memory_published_gib"]),
            GIB_FMT % float(r["memory_predicted_gib"]), pct(float(r["memory_error"]))))
    e = [abs(float(r["memory_error"])) for r in mem]
    if e:
        out += ["", "Mean |error| %.1f%%, max %.1f%% over %d rows." % (100 * sum(e) / len(e), 100 * max(e), len(e))]
    if not mem:
        out = ["No row with a published peak memory loads on this tree (see the rows that did not load below)."]
    return out


def nofit_block(rows):
    bad = [r for r in rows if r["status"] == "ok" and r["fits"] == "no"]
    if not bad:
        return ["None."]
    return ["- `%s` %s" % (os.path.basename(r["file"]), r["case"]) for r in bad]


def failed_block(rows):
    bad = [r for r in rows if r["status"] != "ok"]
    if not bad:
        return ["None."]
    return ["- `%s` %s: %s" % (os.path.basename(r["file"]), r["case"],
                               r["message"].replace(SRC + "/", "")) for r in bad]


def main():
    build, template = sys.argv[1], sys.argv[2]
    os.chdir(SRC)
    files = sorted(glob.glob("bench/published/*.yaml"))
    rows = fit_efficiency.calibrate(build, files)
    lofo = fit_efficiency.lofo_data(build, files, base=rows)
    blocks = {"FILES": files_block(files), "ROWS": rows_block(rows), "SETS": sets_block(rows),
              "LOFO": lofo_block(lofo), "CURVES": curves_block(lofo), "MEMORY": memory_block(rows),
              "NOFIT": nofit_block(rows), "FAILED": failed_block(rows)}
    out = []
    for line in open(template).read().splitlines():
        m = re.fullmatch(r"@@([A-Z]+)@@", line.strip())
        out += blocks[m.group(1)] if m else [line]
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
