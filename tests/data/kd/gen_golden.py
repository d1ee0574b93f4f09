#!/usr/bin/python3
"""gen_golden.py — the PyTorch reference for the logit-KD kernel (kernels/kern_kd.h):
writes tests/data/kd/golden-kd.bin, which tests/test_kernels.c (test_kd_golden)
compares kern_kd_teacher/fwd/bwd against.

usage (run by hand, from the repository root; needs torch, e.g. Debian's python3-torch):
    /usr/bin/python3 tests/data/kd/gen_golden.py tests/data/kd/golden-kd.bin

Each case has fixed inputs (a seeded torch.Generator, drawn in fp32 so that the C
test reads exactly the values the reference used) and computes in float64, with
autograd, exactly the formula in kern_kd.h:
    ps = softmax(zs)
    qt = softmax(zt / T), or softmax over the teacher's top-k logits (ties: lower
         index first, i.e. a stable descending sort), 0 elsewhere
    loss[n] = alpha * F.cross_entropy(zs, y, reduction='none')
            + (1 - alpha) * T*T * F.kl_div(F.log_softmax(zs / T), qt, reduction='none').sum(-1)
    grad = d(sum_n loss[n]) / d zs          (the kernel's backward with scale = 1)
T and alpha are fp32 values (0.3 is 0.30000001192...), as the kernel receives them.

File: the golden format of tests/golden_file.h (as tools/golden_ref.py writes it).
Config: cases = number of cases. Tensors per case i (name prefix "c<i>."):
    param f32 [3]      T, alpha, top_k
    zs, zt f32 [N][V]  student and teacher logits
    y     i32 [N]      labels
    qt    f32 [N][V]   (top_k 0) or [N][k]: the teacher's distribution (kern_kd_teacher)
    idx   i32 [N][k]   (top_k k only) the teacher's top-k indices, descending
    loss  f32 [N]      per-token loss
    grad  f32 [N][V]   gradient of the summed loss
"""
import os
import sys

import torch
import torch.nn.functional as F

# the golden file writer of the kernel golden files (tools/golden_ref.py)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tools"))
from golden_ref import write_golden  # noqa: E402

# (N, V, T, alpha, top_k, logit scale, seed); scale 8 gives peaked rows, where
# the soft and hard terms differ most; one case ties two teacher logits.
CASES = [
    (3, 7, 1.0, 0.0, 0, 2.0, 1),
    (4, 11, 2.0, 0.5, 0, 3.0, 2),
    (5, 50, 4.0, 0.3, 0, 8.0, 3),
    (3, 20, 0.5, 0.3, 0, 2.0, 4),
    (4, 33, 2.0, 0.3, 5, 4.0, 5),
    (3, 16, 1.0, 0.0, 1, 3.0, 6),
    (5, 50, 4.0, 0.0, 5, 8.0, 7),
    (4, 9, 0.5, 1.0, 0, 2.0, 8),
    (3, 12, 2.0, 0.5, 3, 2.0, 9),  # ties in the teacher's logits (set below)
]


def f32(x):
    return float(torch.tensor(x, dtype=torch.float32))


def case(N, V, T, alpha, k, scale, seed):
    g = torch.Generator().manual_seed(seed)
    zs = (torch.rand(N, V, generator=g, dtype=torch.float32) * 2 - 1) * scale
    zt = (torch.rand(N, V, generator=g, dtype=torch.float32) * 2 - 1) * scale
    y = torch.randint(0, V, (N,), generator=g, dtype=torch.int64)
    if seed == 9:  # ties: row 0's three largest logits; row 1's 2nd-4th, cut by k = 3
        zt[0, 2] = zt[0, 5] = zt[0, 9] = 3.0
        zt[1, 1] = 4.0
        zt[1, 8] = zt[1, 3] = zt[1, 6] = 3.5  # top-3: 1, 3, 6 (8 left out)
    T, alpha = f32(T), f32(alpha)
    zs64 = zs.double().requires_grad_(True)
    zt64 = zt.double()
    if k > 0:
        order = torch.sort(zt64, dim=-1, descending=True, stable=True).indices[:, :k]
        qk = F.softmax(zt64.gather(-1, order) / T, dim=-1)
        qt_full = torch.zeros_like(zt64).scatter(-1, order, qk)
        qt_out, idx = qk, order.to(torch.int32)
    else:
        qt_full = F.softmax(zt64 / T, dim=-1)
        qt_out, idx = qt_full, None
    ce = F.cross_entropy(zs64, y, reduction="none")
    kl = F.kl_div(F.log_softmax(zs64 / T, dim=-1), qt_full, reduction="none").sum(-1)
    loss = alpha * ce + (1 - alpha) * T * T * kl
    loss.sum().backward()
    t = [("param", torch.tensor([T, alpha, float(k)], dtype=torch.float32)),
         ("zs", zs), ("zt", zt), ("y", y.to(torch.int32)), ("qt", qt_out.float())]
    if idx is not None:
        t.append(("idx", idx))
    t += [("loss", loss.detach().float()), ("grad", zs64.grad.float())]
    return t


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen_golden.py OUT.bin")
    tensors = []
    for i, c in enumerate(CASES):
        tensors += [("c%d.%s" % (i, name), t) for name, t in case(*c)]
    n = write_golden(sys.argv[1], {"cases": len(CASES)}, tensors)
    print("gen_golden: %s: %d bytes, %d cases (torch %s)" % (sys.argv[1], n, len(CASES),
                                                             torch.__version__))


if __name__ == "__main__":
    main()
