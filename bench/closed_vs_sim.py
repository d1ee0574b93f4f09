#!/usr/bin/env python3
"""closed_vs_sim.py — how far the closed-form pipeline time is from the event
simulation of the same stage times (docs/time.md §6), over random plans.

Draws N plans from a fixed seed (models, degrees, micro-batches, schedules,
even or uneven `pipeline.layers`, overlap, placement, offload), runs
`parasim plan --format json` on each, and prints, per schedule and split
kind, the range of time.pipeline_s / time.event_simulation.pipeline_s - 1 and
the worst plan.

usage: bench/closed_vs_sim.py BUILD_DIR [N] [SEED]   (default 600 plans, seed 1)
"""
import json
import random
import subprocess
import sys

MODELS = {"llama3-8b": (32, 8), "llama3-70b": (80, 8), "gpt3-175b": (96, 96), "gpt-1.7b": (24, 24)}


def plan(rng):
    model = rng.choice(sorted(MODELS))
    layers, kv = MODELS[model]
    pp = rng.choice([2, 3, 4, 6, 8, 12, 16])
    tp = rng.choice([t for t in (1, 2, 4, 8) if kv % t == 0])
    dp = rng.choice([1, 2, 4, 8])
    m = rng.choice([1, 2, 4, 8, 16, 32])
    sched = rng.choice(["1f1b", "zero-bubble", "afab"])
    even = layers % pp == 0 and rng.random() < 0.5
    pipe = "{schedule: %s" % sched
    if not even:  # a random split into pp positive parts
        cuts = sorted(rng.sample(range(1, layers), pp - 1))
        pipe += ", layers: %s" % [b - a for a, b in zip([0] + cuts, cuts + [layers])]
    sets = [
        "model=" + model, "cluster=" + rng.choice(["dgx-a100", "dgx-h100"]),
        "gpus=%d" % (dp * tp * pp),
        "parallel={dp: %d, tp: %d, pp: %d, zero: %d, sp: %s}"
        % (dp, tp, pp, rng.choice([0, 1, 2, 3]), "true" if tp > 1 and rng.random() < 0.5 else "false"),
        "batch={global: %d, micro: 1, seq: 2048}" % (m * dp), "pipeline=" + pipe + "}",
        "recompute=" + rng.choice(["none", "selective", "full"]),
        "overlap={dp: %s, tp: %s, pp: %s}" % tuple(rng.choice(["true", "false"]) for _ in range(3)),
        "placement=[%s]" % ", ".join(rng.sample(["tp", "cp", "dp", "pp"], 4)),
        "offload=" + rng.choice(["none", "activations", "optimizer"]),
    ]
    return sched, even, sets


def main():
    build = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    groups, failed = {}, 0
    for _ in range(n):
        sched, even, sets = plan(rng)
        cmd = [build + "/parasim", "plan", "--format", "json"]
        for s in sets:
            cmd += ["--set", s]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:  # an invalid draw (e.g. sp with an odd split): skip it
            failed += 1
            continue
        t = json.loads(r.stdout)["time"]
        err = t["pipeline_s"] / t["event_simulation"]["pipeline_s"] - 1
        groups.setdefault((sched, "even" if even else "uneven"), []).append((err, sets))
    print("# %d plans drawn, %d invalid and skipped" % (n, failed))
    print("# %-12s %-7s %6s %10s %10s" % ("schedule", "split", "plans", "min", "max"))
    for (sched, split), v in sorted(groups.items()):
        errs = [e for e, _ in v]
        print("  %-12s %-7s %6d %+9.2f%% %+9.2f%%" % (sched, split, len(v), 100 * min(errs), 100 * max(errs)))
        worst = max(v, key=lambda x: abs(x[0]))
        print("#   worst %+.2f%%: %s" % (100 * worst[0], " ".join("--set '%s'" % s for s in worst[1])))


if __name__ == "__main__":
    main()
