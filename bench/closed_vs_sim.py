#!/usr/bin/env python3
"""closed_vs_sim.py — how far the closed-form pipeline time is from the event
simulation of the same stage times (docs/time.md §6), over random plans.

Draws N plans from a fixed seed (models, degrees, micro-batches, schedules,
even or uneven `pipeline.layers`, overlap, placement, offload; interleaved
plans with an even split, Megatron's first/last_stage_layers or
account_for_embedding/loss, or `pipeline.layers` in multiples of v), runs
`parasim plan --format json` on each, and prints, per schedule and split
kind, the range of time.pipeline_s / time.event_simulation.pipeline_s - 1 and
the worst plan.

usage: bench/closed_vs_sim.py BUILD_DIR [N] [SEED]   (default 600 plans, seed 1)
"""
import json
import random
import subprocess
import sys

MODELS = {"llama3-8b": (32, 8), "llama3-70b": (80, 8), "gpt3-175b": (96, 96), "gpt-1.7b": (24, 24),
          "llama3-405b": (126, 8)}


def parts(rng, total, n, unit):
    """A random split of total into n positive multiples of unit (None if impossible)."""
    if total % unit or total // unit < n:
        return None
    cuts = sorted(rng.sample(range(1, total // unit), n - 1)) if n > 1 else []
    return [(b - a) * unit for a, b in zip([0] + cuts, cuts + [total // unit])]


def interleaved_split(rng, layers, pp, v):
    """An interleaved layout Megatron-LM accepts: (kind, pipeline fields) or None."""
    kind = rng.choice(["even", "account", "first-last", "layers"])
    if kind == "even":
        return (kind, "") if layers % (pp * v) == 0 else None
    if kind == "account":
        slots = layers + 2
        if slots % pp or (slots // pp) % v:
            return None
        return kind, ", account_for_embedding: true, account_for_loss: true"
    if kind == "first-last":
        for _ in range(20):  # first, last multiples of v; the middle stages' share too
            first, last = v * rng.randint(1, 3), v * rng.randint(1, 3)
            rest = layers - first - last
            if pp > 2 and rest > 0 and rest % (pp - 2) == 0 and (rest // (pp - 2)) % v == 0:
                return kind, ", first_stage_layers: %d, last_stage_layers: %d" % (first, last)
        return None
    split = parts(rng, layers, pp, v)
    return (kind, ", layers: %s" % split) if split else None


def plan(rng):
    model = rng.choice(sorted(MODELS))
    layers, kv = MODELS[model]
    pp = rng.choice([2, 3, 4, 6, 8, 12, 16])
    tp = rng.choice([t for t in (1, 2, 4, 8) if kv % t == 0])
    dp = rng.choice([1, 2, 4, 8])
    m = rng.choice([1, 2, 4, 8, 16, 32])
    sched = rng.choice(["1f1b", "zero-bubble", "afab", "interleaved"])
    if sched == "interleaved":  # m a multiple of pp (Megatron-LM's rule)
        v = rng.choice([2, 3, 4, 8])
        m = pp * rng.choice([1, 2, 4])
        split = interleaved_split(rng, layers, pp, v)
        if split is None:
            return None
        even = split[0]
        pipe = "{schedule: interleaved, virtual: %d%s" % (v, split[1])
    else:
        even = layers % pp == 0 and rng.random() < 0.5
        pipe = "{schedule: %s" % sched
        if not even:  # a random split into pp positive parts
            pipe += ", layers: %s" % parts(rng, layers, pp, 1)
        even = "even" if even else "uneven"
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


def draw(rng):
    """A plan; interleaved draws retry until the layers split as Megatron-LM needs."""
    while True:
        p = plan(rng)
        if p:
            return p


def main():
    build = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 600
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    groups, failed = {}, 0
    for _ in range(n):
        sched, split, sets = draw(rng)
        cmd = [build + "/parasim", "plan", "--format", "json"]
        for s in sets:
            cmd += ["--set", s]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:  # an invalid draw (e.g. sp with an odd split): skip it
            failed += 1
            continue
        t = json.loads(r.stdout)["time"]
        err = t["pipeline_s"] / t["event_simulation"]["pipeline_s"] - 1
        groups.setdefault((sched, split), []).append((err, sets))
    print("# %d plans drawn, %d invalid and skipped" % (n, failed))
    print("# %-12s %-10s %6s %10s %10s" % ("schedule", "split", "plans", "min", "max"))
    for (sched, split), v in sorted(groups.items()):
        errs = [e for e, _ in v]
        print("  %-12s %-10s %6d %+9.2f%% %+9.2f%%" % (sched, split, len(v), 100 * min(errs), 100 * max(errs)))
        worst = max(v, key=lambda x: abs(x[0]))
        print("#   worst %+.2f%%: %s" % (100 * worst[0], " ".join("--set '%s'" % s for s in worst[1])))


if __name__ == "__main__":
    main()
