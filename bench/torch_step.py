#!/usr/bin/python3
"""torch_step.py — PyTorch's training-step time for the runtime's model, the
baseline for the C runtime's speed on CPU.

Builds the model of tools/golden_ref.py (same module: Llama-style, RMSNorm,
RoPE, GQA, SwiGLU, untied embeddings, no biases) in fp32, and times full steps
on random tokens: zero_grad, forward, cross-entropy, backward, AdamW step
(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1, torch's default
implementation). Attention is explicit masked softmax (matmul, masked_fill,
softmax, matmul): PyTorch 1.13 has no scaled_dot_product_attention.
Prints the median step time and tokens/s over --steps timed steps after
--warmup untimed ones.

usage: /usr/bin/python3 bench/torch_step.py --layers 6 --hidden 384 --heads 6 \\
         --kv-heads 2 --ffn 1024 --vocab 256 --batch 8 --seq 256 --threads 2 \\
         --steps 10 --warmup 2 [--json]
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

# torch, and with it tools/golden_ref.py, is imported in main() after the
# thread count is known: Debian's torch does its GEMMs in OpenBLAS (pthreads),
# whose pool torch.set_num_threads does not size, so OPENBLAS_NUM_THREADS and
# OMP_NUM_THREADS must be set before the library loads.

ATTENTION = "explicit masked softmax (matmul + masked_fill + softmax + matmul; no SDPA in torch %s)"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=384)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--ffn", type=int, default=1024)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="also print one JSON object")
    a = ap.parse_args()
    if a.hidden % a.heads or a.heads % a.kv_heads or (a.hidden // a.heads) % 2:
        ap.error("need hidden %% heads == 0, heads %% kv-heads == 0 and an even head size")
    if min(a.layers, a.ffn, a.vocab, a.batch, a.seq, a.threads, a.steps) < 1 or a.warmup < 0:
        ap.error("sizes, --threads and --steps must be positive")

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(a.threads)
    import torch
    import torch.nn.functional as F
    sys.dont_write_bytecode = True  # no tools/__pycache__ in the source tree
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
    from golden_ref import Llama, make_optimizer

    torch.set_num_threads(a.threads)
    m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    blas = m.group(1) if m else "?"
    if blas == "generic":  # Debian: the libblas.so.3 alternative, OpenBLAS here
        blas = "generic (system libblas.so.3)"
    torch.manual_seed(a.seed)
    D = a.hidden // a.heads
    model = Llama(a.layers, a.hidden, a.heads, a.kv_heads, D, a.ffn, a.vocab, max_T=a.seq)
    model.init_weights()
    n_params = sum(p.numel() for p in model.parameters())
    opt = make_optimizer(model)
    stream = torch.randint(0, a.vocab, (a.batch, a.seq + 1))
    tokens, targets = stream[:, :-1].contiguous(), stream[:, 1:].contiguous()

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(tokens)
        loss = F.cross_entropy(logits.reshape(-1, a.vocab), targets.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times, losses = [], []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    tok = a.batch * a.seq
    res = {
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "attention": ATTENTION % torch.__version__,
        "dtype": "float32",
        "blas": blas,
        "config": {"layers": a.layers, "hidden": a.hidden, "heads": a.heads, "kv_heads": a.kv_heads,
                   "head_dim": D, "ffn": a.ffn, "vocab": a.vocab, "batch": a.batch, "seq": a.seq},
        "params": n_params,
        "steps": a.steps,
        "warmup": a.warmup,
        "step_ms_median": med * 1e3,
        "step_ms_min": min(times) * 1e3,
        "step_ms_max": max(times) * 1e3,
        "tokens_per_s": tok / med,
        "loss_first": losses[0],
        "loss_last": losses[-1],
    }
    print("torch %s, %d threads (torch.get_num_threads(); OMP/OPENBLAS_NUM_THREADS=%d), fp32, BLAS %s"
          % (res["torch_version"], res["threads"], a.threads, blas))
    print("attention: %s" % res["attention"])
    print("model: L=%d h=%d H=%d KVH=%d D=%d f=%d V=%d, %d params; batch %d x seq %d = %d tokens/step"
          % (a.layers, a.hidden, a.heads, a.kv_heads, D, a.ffn, a.vocab, n_params, a.batch, a.seq, tok))
    print("step (fwd + bwd + AdamW), %d timed after %d warmup: median %.1f ms (min %.1f, max %.1f), "
          "%.0f tokens/s" % (a.steps, a.warmup, res["step_ms_median"], res["step_ms_min"],
                             res["step_ms_max"], res["tokens_per_s"]))
    if a.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
