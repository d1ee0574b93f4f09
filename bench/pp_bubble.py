#!/usr/bin/env python3
"""pp_bubble.py — the measured pipeline bubble of `parasim run` against the
schedule's prediction (docs/runtime.md, "Pipeline parallelism").

Trains tiny-1m (4 layers) as pp = 2 stages on 2 ranks (one thread each), one
run per schedule and micro-batch count, with every rank's events in the
profile (-o). Per step after the first, the bubble is

    (step span - busiest stage's compute) / busiest stage's compute

where the span runs from the first fwd/bwd/send/recv of the step on any rank
to the last one's end, and a stage's compute is its fwd and bwd ops; the
median over the steps is printed next to the schedule's bubble for equal
stages: (p-1)/m for AFAB and 1F1B, (p-1)/(v m) interleaved, and for
zero-bubble ((p-1)(f+b) - (min(m,p)-1) min(w,f,b)) / (m (f+b+w)) with the
measured per-micro-batch times f, b (input part), w (weight part) of the
busiest stage (pipe_sched.c's closed forms, equal to its event simulation), and
the bubble of the replay's timeline of the same ops (each event's
predicted_start/predicted_end: the program's op times on the plan's cluster,
sends and receives included, which the closed forms leave out). The two stages are nearly
uniform (the embedding and the head are small next to a layer at seq 128).
Needs 2 idle cores: oversubscribed ranks spin in MPI and inflate the bubble.

usage: bench/pp_bubble.py BUILD_DIR [STEPS]   (default 8 steps)
"""
import json
import os
import subprocess
import sys
import tempfile


def rank_events(path):
    return [k["events"] for k in json.load(open(path))["rank_profiles"]]


def bubble(path, start="start", end="end"):
    """Median over the steps after the first; start/end name the measured times, or
    predicted_start/predicted_end for the replay's timeline of the same ops."""
    ranks = rank_events(path)
    steps = max(e["step"] for e in ranks[0])  # 1-based; the events cover the first steps
    out = []
    for s in range(2, steps + 1):
        lo, hi, busy = [], [], []
        for evs in ranks:
            ev = [e for e in evs if e["step"] == s and e["kind"] in ("fwd", "bwd", "send", "recv")]
            lo.append(min(e[start] for e in ev))
            hi.append(max(e[end] for e in ev))
            busy.append(sum(e[end] - e[start] for e in ev if e["kind"] in ("fwd", "bwd")))
        out.append((max(hi) - min(lo) - max(busy)) / max(busy))
    out.sort()
    return out[len(out) // 2]


def zb_predicted(path, p, m):
    """The ZB-H1 closed form with the busiest stage's measured f, b, w per micro-batch."""
    best = None
    for evs in rank_events(path):
        ev = [e for e in evs if e["step"] >= 2]
        steps = len({e["step"] for e in ev})
        d = lambda e: e["end"] - e["start"]
        t = [sum(d(e) for e in ev if e["kind"] == "fwd"),
             sum(d(e) for e in ev if e["kind"] == "bwd" and e.get("part") != "weight"),
             sum(d(e) for e in ev if e["kind"] == "bwd" and e.get("part") == "weight")]
        t = [x / (steps * m) for x in t]
        if best is None or sum(t) > sum(best):
            best = t
    f_, b_, w_ = best
    return ((p - 1) * (f_ + b_) - (min(m, p) - 1) * min(w_, f_, b_)) / (m * (f_ + b_ + w_))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    parasim = os.path.join(sys.argv[1], "parasim")
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    p = 2
    cases = [("afab", 1, 4), ("1f1b", 1, 4), ("1f1b", 1, 8), ("interleaved", 2, 4),
             ("interleaved", 2, 8), ("zero-bubble", 1, 4), ("zero-bubble", 1, 8)]
    print("schedule      v  m   measured  closed form  ratio    replay  ratio")
    with tempfile.TemporaryDirectory() as d:
        for sched, v, m in cases:
            out = os.path.join(d, "%s-%d-%d.json" % (sched, v, m))
            cmd = ["mpirun", "-np", "2", "--oversubscribe", parasim, "run",
                   "plans/tiny-1m-cpu.yaml", "--steps", str(steps), "--threads", "1", "--quiet",
                   "--set", "gpus=2", "--set", "parallel.dp=1", "--set", "parallel.pp=2",
                   "--set", "parallel.zero=0", "--set", "batch.global=%d" % m,
                   "--set", "batch.micro=1", "--set", "batch.seq=128",
                   "--set", "train.data=synthetic", "--set", "pipeline.schedule=" + sched,
                   "--set", "pipeline.virtual=%d" % v, "-o", out]
            subprocess.run(cmd, check=True)
            got = bubble(out)
            want = zb_predicted(out, p, m) if sched == "zero-bubble" else (p - 1) / (v * m)
            replay = bubble(out, "predicted_start", "predicted_end")
            print("%-12s %2d %2d %10.3f %12.3f %6.2f %9.3f %6.2f" %
                  (sched, v, m, got, want, got / want, replay, got / replay))


if __name__ == "__main__":
    main()
