#!/usr/bin/python3
"""golden_ref.py — the PyTorch reference for the C runtime's model: writes a
golden file of parameters, logits, loss, gradients and three AdamW steps that
the C side must reproduce.

usage: /usr/bin/python3 tools/golden_ref.py OUT.bin
       (Debian's python3-torch; 1.13 on CPU, fp32, one thread)

Model (Llama-style decoder, no biases, untied embeddings):
  x = wte[tokens]                                  wte [V, h]
  per layer:
    xn = rmsnorm(x) * attn_norm      rmsnorm(x) = x / sqrt(mean(x^2, -1) + 1e-5)
    q = xn wq^T [H*D, h], k = xn wk^T [KVH*D, h], v = xn wv^T [KVH*D, h]
    RoPE on q and k, "rotate half" (Hugging Face Llama): pair (x[i], x[i+D/2])
      for i < D/2, angle = t * 10000^(-2i/D), t = 0..T-1;
      (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin).
      cos/sin are computed in float64 and rounded once to fp32.
    causal softmax attention, scale 1/sqrt(D), GQA: query head j reads
      kv head j // (H/KVH)
    x = x + o wo^T                                 wo [h, H*D]
    xn2 = rmsnorm(x) * mlp_norm
    x = x + (silu(xn2 w1^T) * (xn2 w3^T)) w2^T     w1, w3 [f, h], w2 [h, f]
  logits = (rmsnorm(x) * final_norm) lm_head^T     lm_head [V, h]
  loss = mean cross-entropy over all B*T tokens
Optimizer: torch.optim.AdamW(lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
  weight_decay=0.1) on every parameter (norm weights and embeddings included).

Flat parameter order (the C runtime's flat vector), each tensor row-major:
  wte; per layer: attn_norm, wq, wk, wv, wo, mlp_norm, w1, w3, w2;
  final_norm, lm_head.

Golden config: L=2 h=64 H=4 KVH=2 D=16 f=128 V=64 B=2 T=16, seed 1234.
Initialisation, drawn after torch.manual_seed(1234) in flat order, one
tensor at a time: matrices normal(0, 0.02); wo and w2 normal(0, 0.02/sqrt(2L));
norm weights 1 + normal(0, 0.1). Then the token stream: torch.randint(0, V,
(B, T+1)); tokens = stream[:, :T], targets = stream[:, 1:].

Tensors recorded (fp32 unless noted):
  params       [P]        flat, the order above, at init
  tokens       [B, T]     int32
  targets      [B, T]     int32
  logits       [B, T, V]  at init
  loss         [1]        at init
  grads        [P]        d loss / d params at init, flat
  losses       [4]        loss at init and after AdamW steps 1, 2, 3 (same batch)
  params.step1 [P]        after the first AdamW step
  params.step3 [P]        after the third

File format (all little-endian), read by tests/golden_file.c:
  char    magic[8] = "PSGOLDEN"
  int32   version = 1
  int32   n_config
  n_config x { char name[16] (NUL-padded); int64 value }   L h H KVH D f V B T
  int32   n_tensors
  n_tensors x {
    char  name[32] (NUL-padded)
    int32 dtype   (0 = f32, 1 = i32)
    int32 ndim    (1..4)
    int64 dims[4] (unused = 1)
    data: prod(dims) elements of 4 bytes, row-major
  }
"""
import math
import struct
import sys

import torch
import torch.nn.functional as F

EPS = 1e-5
THETA = 10000.0

GOLDEN_CFG = dict(L=2, h=64, H=4, KVH=2, D=16, f=128, V=64, B=2, T=16)
GOLDEN_SEED = 1234

LAYER_TENSORS = ("attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w1", "w3", "w2")


def param_shapes(L, h, H, KVH, D, f, V):
    """(name, shape, kind) in flat order; kind: 'mat', 'out' (wo, w2), 'norm'."""
    out = [("wte", (V, h), "mat")]
    for i in range(L):
        p = "layers.%d." % i
        out += [(p + "attn_norm", (h,), "norm"),
                (p + "wq", (H * D, h), "mat"),
                (p + "wk", (KVH * D, h), "mat"),
                (p + "wv", (KVH * D, h), "mat"),
                (p + "wo", (h, H * D), "out"),
                (p + "mlp_norm", (h,), "norm"),
                (p + "w1", (f, h), "mat"),
                (p + "w3", (f, h), "mat"),
                (p + "w2", (h, f), "out")]
    out += [("final_norm", (h,), "norm"), ("lm_head", (V, h), "mat")]
    return out


def rope_tables(T, D):
    """cos, sin [T, D/2] for angle t * THETA^(-2i/D), computed in float64."""
    i = torch.arange(D // 2, dtype=torch.float64)
    inv_freq = THETA ** (-2.0 * i / D)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rmsnorm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, cos, sin):
    """x [B, T, nh, D]; pairs (x[i], x[i + D/2])."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c = cos[None, :, None, :]
    s = sin[None, :, None, :]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


class Llama(torch.nn.Module):
    def __init__(self, L, h, H, KVH, D, f, V, max_T):
        super().__init__()
        assert H * D == h and H % KVH == 0 and D % 2 == 0
        self.L, self.h, self.H, self.KVH, self.D, self.f, self.V = L, h, H, KVH, D, f, V
        self.shapes = param_shapes(L, h, H, KVH, D, f, V)
        # ParameterList keeps the flat order explicit (names with dots are not
        # allowed in a ParameterDict).
        self.plist = torch.nn.ParameterList(
            [torch.nn.Parameter(torch.empty(s, dtype=torch.float32)) for _, s, _ in self.shapes])
        self.index = {n: k for k, (n, _, _) in enumerate(self.shapes)}
        cos, sin = rope_tables(max_T, D)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        mask = torch.ones(max_T, max_T, dtype=torch.bool).triu(1)  # True = masked (future)
        self.register_buffer("mask", mask, persistent=False)

    def p(self, name):
        return self.plist[self.index[name]]

    @torch.no_grad()
    def init_weights(self):
        """In flat order, one tensor at a time, from the global generator."""
        std_out = 0.02 / math.sqrt(2 * self.L)
        for (name, shape, kind), t in zip(self.shapes, self.plist):
            if kind == "mat":
                t.normal_(0.0, 0.02)
            elif kind == "out":
                t.normal_(0.0, std_out)
            else:
                t.copy_(1.0 + torch.empty(shape).normal_(0.0, 0.1))

    def attention(self, x, i):
        B, T, _ = x.shape
        H, KVH, D = self.H, self.KVH, self.D
        pre = "layers.%d." % i
        q = F.linear(x, self.p(pre + "wq")).view(B, T, H, D)
        k = F.linear(x, self.p(pre + "wk")).view(B, T, KVH, D)
        v = F.linear(x, self.p(pre + "wv")).view(B, T, KVH, D)
        cos, sin = self.cos[:T], self.sin[:T]
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        # GQA: query head j uses kv head j // (H/KVH)
        rep = H // KVH
        k = k.repeat_interleave(rep, dim=2)
        v = v.repeat_interleave(rep, dim=2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))          # [B, H, T, D]
        att = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(D))
        att = att.masked_fill(self.mask[:T, :T], float("-inf"))
        att = torch.softmax(att, dim=-1)
        o = torch.matmul(att, v).transpose(1, 2).reshape(B, T, H * D)
        return F.linear(o, self.p(pre + "wo"))

    def mlp(self, x, i):
        pre = "layers.%d." % i
        a = F.linear(x, self.p(pre + "w1"))
        b = F.linear(x, self.p(pre + "w3"))
        return F.linear(F.silu(a) * b, self.p(pre + "w2"))

    def forward(self, tokens):
        x = F.embedding(tokens, self.p("wte"))
        for i in range(self.L):
            pre = "layers.%d." % i
            x = x + self.attention(rmsnorm(x, self.p(pre + "attn_norm")), i)
            x = x + self.mlp(rmsnorm(x, self.p(pre + "mlp_norm")), i)
        return F.linear(rmsnorm(x, self.p("final_norm")), self.p("lm_head"))

    def loss(self, tokens, targets):
        logits = self.forward(tokens)
        return logits, F.cross_entropy(logits.reshape(-1, self.V), targets.reshape(-1))

    def flat(self, grads=False):
        ts = [(t.grad if grads else t).detach().reshape(-1) for t in self.plist]
        return torch.cat(ts).clone()


def make_optimizer(model, **kw):
    return torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8,
                             weight_decay=0.1, **kw)


# --- golden file ----------------------------------------------------------------

MAGIC = b"PSGOLDEN"
VERSION = 1
DT_F32, DT_I32 = 0, 1


def write_golden(path, cfg, tensors):
    out = bytearray()
    out += MAGIC
    out += struct.pack("<ii", VERSION, len(cfg))
    for name, val in cfg.items():
        nb = name.encode()
        assert len(nb) < 16
        out += nb.ljust(16, b"\0") + struct.pack("<q", val)
    out += struct.pack("<i", len(tensors))
    for name, t in tensors:
        nb = name.encode()
        assert len(nb) < 32
        t = t.detach().contiguous()
        if t.dtype == torch.float32:
            dt, fmt = DT_F32, "<f4"
        elif t.dtype == torch.int32:
            dt, fmt = DT_I32, "<i4"
        else:
            raise TypeError("%s: dtype %s" % (name, t.dtype))
        assert 1 <= t.dim() <= 4
        dims = list(t.shape) + [1] * (4 - t.dim())
        out += nb.ljust(32, b"\0") + struct.pack("<ii4q", dt, t.dim(), *dims)
        out += t.numpy().astype(fmt).tobytes()
    with open(path, "wb") as fp:
        fp.write(out)
    return len(out)


def golden(path):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(GOLDEN_SEED)
    c = GOLDEN_CFG
    B, T, V = c["B"], c["T"], c["V"]
    model = Llama(c["L"], c["h"], c["H"], c["KVH"], c["D"], c["f"], V, max_T=T)
    model.init_weights()
    stream = torch.randint(0, V, (B, T + 1))
    tokens, targets = stream[:, :T].contiguous(), stream[:, 1:].contiguous()

    opt = make_optimizer(model, foreach=False)
    params0 = model.flat()
    logits, loss = model.loss(tokens, targets)
    logits0, loss0 = logits.detach().clone(), loss.detach().clone()
    losses = [loss.item()]
    loss.backward()
    grads0 = model.flat(grads=True)
    opt.step()
    params1 = model.flat()
    for step in (2, 3, 4):
        opt.zero_grad(set_to_none=True)
        _, loss = model.loss(tokens, targets)
        losses.append(loss.item())
        if step == 4:
            break
        loss.backward()
        opt.step()
    params3 = model.flat()

    tensors = [
        ("params", params0),
        ("tokens", tokens.to(torch.int32)),
        ("targets", targets.to(torch.int32)),
        ("logits", logits0),
        ("loss", loss0.reshape(1)),
        ("grads", grads0),
        ("losses", torch.tensor(losses, dtype=torch.float32)),
        ("params.step1", params1),
        ("params.step3", params3),
    ]
    n = write_golden(path, c, tensors)
    print("golden_ref: %s: %d bytes, %d params, losses %s (ln V = %.6f)"
          % (path, n, params0.numel(), " ".join("%.6f" % v for v in losses), math.log(V)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: golden_ref.py OUT.bin")
    golden(sys.argv[1])
