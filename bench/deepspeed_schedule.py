#!/usr/bin/env python3
"""deepspeed_schedule.py — DeepSpeed's pipeline TrainSchedule played step by step.

DeepSpeed's PipelineEngine (microsoft/DeepSpeed deepspeed/runtime/pipe/schedule.py,
TrainSchedule) runs 2(m + p - 1) steps per batch; in each, a stage does one forward or
one backward (even stages forward on even steps, odd stages on odd steps), and the
activations of a forward are sent at the start of the stage's next (backward) step,
after it receives that step's gradient. Sends and receives are blocking
(deepspeed/runtime/pipe/p2p.py: dist.send / dist.recv), modelled here as rendezvous:
both ends wait for each other, then spend `xfer` seconds.

Used for bench/published/mtnlg2022-530b.yaml: with the per-stage forward and
backward times parasim predicts for MT-NLG 530B (tp 8, pp 35, full recompute) the
schedule takes what the 1F1B closed form does (48.1 s vs 48.1 s at 240 micro-batches),
so DeepSpeed's schedule adds no bubble of its own.

usage: python3 bench/deepspeed_schedule.py
"""
def even(x): return x%2==0
class TS:
    def __init__(s, m, P, st): s.m, s.P, s.st = m, P, st
    def valid(s, mb): return 0 <= mb < s.m
    def step_to_mb(s, k):
        st = s.st
        if even(k) and even(st): return (k//2 - st//2, True)
        if (not even(k)) and (not even(st)): return ((k-1)//2 - st//2, True)
        if even(k) and not even(st): # even_step_backward_id
            base = k//2 - s.P + (st+1)//2
            return (int(base), False)
        # odd step, even stage: odd_step_backward_id
        base = ((k-1)//2) - s.P + 1 + st//2
        return (int(base), False)
    def steps(s):
        prev = -1
        total = 2*(s.m + s.P - 1)
        for k in range(total):
            mb, fw = s.step_to_mb(k)
            cmds = []
            if fw:
                if s.valid(prev) and s.st > 0: cmds.append(('SG', prev, s.st-1))
                if s.valid(mb) and s.st > 0: cmds.append(('RA', mb, s.st-1))
            else:
                if s.valid(mb) and s.st < s.P-1: cmds.append(('RG', mb, s.st+1))
                if s.valid(prev) and s.st < s.P-1: cmds.append(('SA', prev, s.st+1))
            if s.valid(mb): cmds.append(('F' if fw else 'B', mb, None))
            prev = mb
            yield from cmds
def run(m, P, tf, tb, xfer):
    progs = [list(TS(m, P, st).steps()) for st in range(P)]
    pc = [0]*P; t = [0.0]*P
    # sanity: each stage must run m F and m B
    for st in range(P):
        assert sum(1 for c in progs[st] if c[0]=='F')==m and sum(1 for c in progs[st] if c[0]=='B')==m, st
    match = {'SA':'RA','RA':'SA','SG':'RG','RG':'SG'}
    done = False
    while not done:
        done = True; moved = False
        for st in range(P):
            while pc[st] < len(progs[st]):
                op, mb, peer = progs[st][pc[st]]
                if op in ('F','B'):
                    t[st] += tf[st] if op=='F' else tb[st]; pc[st]+=1; moved=True; continue
                # need peer at matching op
                if pc[peer] < len(progs[peer]):
                    pop, pmb, ppeer = progs[peer][pc[peer]]
                    if pop == match[op] and pmb == mb and ppeer == st:
                        tt = max(t[st], t[peer]) + xfer
                        t[st] = t[peer] = tt; pc[st]+=1; pc[peer]+=1; moved=True; continue
                break
        for st in range(P):
            if pc[st] < len(progs[st]): done = False
        if not done and not moved:
            print("deadlock", pc[:5]); return None
    return max(t)
if __name__ == '__main__':
    P=35
    for m, obs in ((240, 60.1), (192, 50.2), (160, 44.4)):
        # parasim plan --format json on the case (bench/published/mtnlg2022-530b.yaml, before
        # framework: deepspeed): memory.stages[].time forward_s, backward_s + weight_grad_s
        tf=[0.04346]*P; tb=[0.12374]*P
        tf[0], tb[0] = 0.04439, 0.12405
        tf[-1], tb[-1] = 0.04614, 0.12955
        T = run(m, P, tf, tb, 0.0005)  # a 10 MiB partitioned message over a 22 GB/s NIC
        ideal = (m + P - 1) * (tf[-1]+tb[-1])
        print(m, "deepspeed-sim %.2f s" % T, "1f1b ideal %.2f" % ideal, "published", obs)
