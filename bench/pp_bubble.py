#!/usr/bin/env python3
"""pp_bubble.py — the measured pipeline bubble of `parasim run` against the
schedule's prediction (docs/runtime.md, "Pipeline parallelism").

Trains tiny-1m (4 layers) as pp = 2 stages on 2 ranks (one thread each), one
run per schedule and micro-batch count, with every rank's events in the
profile (-o). Per step after the first, the bubble is

    (step span - busiest stage's compute) / busiest stage's compute

where the span runs from the first fwd/bwd of the step on any rank to the
last one's end (a receive posted early, before the step's first forward, is
a wait for the previous step's end, not the pipeline's), and a stage's compute is its fwd and bwd ops; the
median over the steps is printed next to the schedule's bubble for equal
stages: (p-1)/m for AFAB and 1F1B, (p-1)/(v m) interleaved, and for
zero-bubble ((p-1)(f+b) - (min(m,p)-1) min(w,f,b)) / (m (f+b+w)) with the
measured per-micro-batch times f, b (input part), w (weight part) of the
busiest stage (pipe_sched.c's closed forms, equal to its event simulation), and
the bubble of the replay's timeline of the same ops (each event's
predicted_start/predicted_end: the program's op times on the plan's cluster,
sends and receives included, which the closed forms leave out). The plans say
overlap.pp false, as the CPU runtime runs: a receive copies its message on the
receiving core (Open MPI's shared-memory single copy), so a transfer holds the
receiving stage for its time instead of hiding behind compute. The two stages are nearly
uniform (the embedding and the head are small next to a layer at seq 128).
Needs 2 idle cores: oversubscribed ranks spin in MPI and inflate the bubble.

usage: bench/pp_bubble.py BUILD_DIR [STEPS [RUNS]]   (default 4 steps, 7 runs per case)
"""
import json
import os
import subprocess
import sys
import tempfile


def rank_events(path):
    return [k["events"] for k in json.load(open(path))["rank_profiles"]]


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def step_bubbles(ranks, steps, start="start", end="end"):
    """Per step of steps: (span - busiest rank's fwd/bwd time) / that time, the span from
    the step's first fwd/bwd on any rank to the last one's end. ranks: each rank's events
    (a profile's, or a replay's timeline), with "step", "kind" and the start/end keys."""
    out = []
    for s in steps:
        lo, hi, busy = [], [], []
        for evs in ranks:
            ev = [e for e in evs if e["step"] == s and e["kind"] in ("fwd", "bwd")]
            lo.append(min(e[start] for e in ev))
            hi.append(max(e[end] for e in ev))
            busy.append(sum(e[end] - e[start] for e in ev))
        out.append((max(hi) - min(lo) - max(busy)) / max(busy))
    return out


def bubble(path, start="start", end="end"):
    """The bubble of each step after the first that the profile's events cover
    (RUN_PROFILE_EVENT_STEPS: 3); start/end name the measured times, or
    predicted_start/predicted_end for the replay's timeline of the same ops."""
    ranks = rank_events(path)
    last = max(e["step"] for e in ranks[0])  # 1-based; the events cover the first steps
    return step_bubbles(ranks, range(2, last + 1), start, end)


def receive_time(profiles):
    """What a receive costs once its message is there: the lower quartile of the measured
    receives (most of them, or at least a quarter, find their message sent; the others'
    times are mostly the wait, which the replay models itself). Each rank's clock has its
    own origin, so a receive is not matched with its send across ranks."""
    t = sorted(e["end"] - e["start"] for k in profiles for e in k["events"]
               if e["kind"] == "recv" and e["step"] >= 2)
    return t[len(t) // 4]


def replay_measured(parasim, sets, steps, path, d):
    """The bubble of the replay (parasim replay) of the run's own program with every op
    the profile timed taking its measured time: the schedule's event simulation fed
    the real op costs, so that only the model of the schedule is tested, not the
    cluster's op costs. A receive's measured time includes its wait for the send, which
    the replay models itself, and a send's measured time is only its posting (MPI_Isend):
    every send and receive takes receive_time's estimate instead (with overlap.pp false a
    message can be taken from its send's start, and the receive holds its stage for its
    seconds after that)."""
    prog, rep = os.path.join(d, "prog.json"), os.path.join(d, "replay.json")
    subprocess.run([parasim, "emit", "plans/tiny-1m-cpu.yaml", "--steps", str(steps)] + sets +
                   ["-o", prog], check=True)
    program = json.load(open(prog))
    profiles = json.load(open(path))["rank_profiles"]
    recv = receive_time(profiles)
    for k in profiles:
        ops = program["roles"][k["role"]]["ops"]
        for e in k["events"]:
            o = ops[e["op"]]
            if "seconds" in o:
                o["seconds"] = recv if o["op"] in ("send", "recv") else e["end"] - e["start"]
    json.dump(program, open(prog, "w"))
    subprocess.run([parasim, "replay", prog, "--format", "json", "-o", rep], check=True)
    roles = json.load(open(rep))["roles"]
    last = max(e["step"] for e in profiles[0]["events"])
    # the replay counts steps from 0: the profile's steps 2..last are its 1..last-1
    return step_bubbles([r["timeline"] for r in roles], range(1, last))


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
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 7
    p = 2
    cases = [("afab", 1, 4), ("1f1b", 1, 4), ("1f1b", 1, 8), ("interleaved", 2, 4),
             ("interleaved", 2, 8), ("zero-bubble", 1, 4), ("zero-bubble", 1, 8)]
    print("# medians over %d runs x steps 2..3 (the profile's events)" % runs)
    print("schedule      v  m   measured  closed form  ratio    replay  ratio  "
          "replay (measured op times)  ratio")
    with tempfile.TemporaryDirectory() as d:
        for sched, v, m in cases:
            out = os.path.join(d, "%s-%d-%d.json" % (sched, v, m))
            sets = ["--set", "gpus=2", "--set", "parallel.dp=1", "--set", "parallel.pp=2",
                    "--set", "parallel.zero=0", "--set", "batch.global=%d" % m,
                    "--set", "batch.micro=1", "--set", "batch.seq=128",
                    "--set", "train.data=synthetic", "--set", "pipeline.schedule=" + sched,
                    "--set", "pipeline.virtual=%d" % v, "--set", "overlap.pp=false"]
            cmd = ["mpirun", "-np", "2", "--oversubscribe", parasim, "run",
                   "plans/tiny-1m-cpu.yaml", "--steps", str(steps), "--threads", "1", "--quiet"
                   ] + sets + ["-o", out]
            got, want, replay, real = [], [], [], []
            for _ in range(runs):
                subprocess.run(cmd, check=True)
                got += bubble(out)
                want.append(zb_predicted(out, p, m) if sched == "zero-bubble"
                            else (p - 1) / (v * m))
                replay += bubble(out, "predicted_start", "predicted_end")
                real += replay_measured(parasim, sets, steps, out, d)
            got, want, replay, real = median(got), median(want), median(replay), median(real)
            print("%-12s %2d %2d %10.3f %12.3f %6.2f %9.3f %6.2f %27.3f %6.2f" %
                  (sched, v, m, got, want, got / want, replay, got / replay, real, got / real))


if __name__ == "__main__":
    main()
