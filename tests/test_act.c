/* test_act.c — activation memory per layer against Korthikanti et al. 2022
 * Table 2 and a by-hand count for the Llama block (docs/memory.md §3); the op
 * working set against the runtime's measured peaks and by-hand counts
 * (docs/memory.md §6). */
#include "cost/act.h"
#include "cost/workspace.h"
#include "tu.h"

/* GPT-3 175B, s = 2048, b = 1, t = 8, fp16 (Korthikanti et al. 2022 §4, Table 2). */
static const int64_t S = 2048, B = 1, H = 12288, A = 96, T = 8;

static plan_cfg gpt3_cfg(int64_t tp, bool sp, plan_recompute rc) {
    plan_cfg p = tu_cfg(1, tp, 1, 1);
    plan_precision_preset("fp16-mixed", &p.precision);
    p.seq = S;
    p.micro_batch = B;
    p.sp = sp;
    p.recompute = rc;
    return p;
}

/* The paper omits the per-token LayerNorm statistics (mean and 1/sigma in fp32
 * for each of the two norms): 16 bytes per token, sequence-split under SP. */
static int64_t ln_stats(bool sp) { return 16 * S * B / (sp ? T : 1); }

static void check_row(const char *row, int64_t tp, bool sp, plan_recompute rc, int64_t table,
                      int64_t stats) {
    model_spec m = tu_model("gpt3-175b");
    plan_cfg p = gpt3_cfg(tp, sp, rc);
    act_bytes a;
    act_compute(&m.cfg, &p, &a);
    if (a.layer_saved != table + stats)
        fail_msg("%s: %lld bytes per layer, Table 2 gives %lld (+%lld statistics)", row,
                 (long long)a.layer_saved, (long long)table, (long long)stats);
}

static void test_korthikanti_table2(void **state) {
    (void)state;
    const int64_t sbh = S * B * H, as2b = A * S * S * B;
    /* sbh(34 + 5as/h) */
    check_row("no parallelism", 1, false, RECOMPUTE_NONE, 34 * sbh + 5 * as2b, ln_stats(false));
    /* sbh(10 + 24/t + 5as/(ht)) */
    check_row("tensor parallel", T, false, RECOMPUTE_NONE, 10 * sbh + 24 * sbh / T + 5 * as2b / T,
              ln_stats(false));
    /* sbh(34/t + 5as/(ht)) */
    check_row("tensor + sequence parallel", T, true, RECOMPUTE_NONE, 34 * sbh / T + 5 * as2b / T,
              ln_stats(true));
    /* sbh(10 + 24/t) */
    check_row("tensor parallel + selective", T, false, RECOMPUTE_SELECTIVE, 10 * sbh + 24 * sbh / T,
              ln_stats(false));
    /* sbh(34/t) */
    check_row("tensor + sequence parallel + selective", T, true, RECOMPUTE_SELECTIVE, 34 * sbh / T,
              ln_stats(true));
    /* sbh(2): only the layer input is kept */
    check_row("full recompute", T, false, RECOMPUTE_FULL, 2 * sbh, 0);
}

/* The statistics are the only tensors outside the paper's terms. */
static void test_stats_are_the_difference(void **state) {
    (void)state;
    model_spec m = tu_model("gpt3-175b");
    plan_cfg p = gpt3_cfg(1, false, RECOMPUTE_NONE);
    act_tensor t[ACT_MAX_TENSORS];
    int n = act_layer_tensors(&m.cfg, t);
    int64_t stats = 0, scores = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].stat) stats += act_tensor_bytes(&m.cfg, &p, &t[i]);
        if (t[i].score) scores += act_tensor_bytes(&m.cfg, &p, &t[i]);
    }
    assert_int_equal(stats, ln_stats(false));
    assert_int_equal(scores, 5 * A * S * S * B);
}

/* Llama block, bf16, by hand: per token the two norm inputs (2h each), q/k/v
 * linear input (2h), w1/w3 input (2h), q (2h), attention output (2h), k and v
 * (2 kv each), w1 out, w3 out, w2 input (2f each), flash log-sum-exp (4 per
 * head) and two fp32 1/rms: 12h + 4kv + 6f + 4a + 8 bytes. */
static void test_llama_block(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    const int64_t h = 4096, kv = 1024, f = 14336, a = 32, s = 8192, b = 2;
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.seq = s;
    p.micro_batch = b;
    act_bytes ab;
    act_compute(&m.cfg, &p, &ab);
    assert_int_equal(ab.layer_full, s * b * (12 * h + 4 * kv + 6 * f + 4 * a + 8));
    assert_int_equal(ab.layer_saved, ab.layer_full);

    /* TP 4 without SP: replicated 8h + 8 (norm inputs, linear inputs, stats); the rest / t */
    p = tu_cfg(1, 4, 1, 1);
    p.seq = s;
    p.micro_batch = b;
    act_compute(&m.cfg, &p, &ab);
    assert_int_equal(ab.layer_full, s * b * (8 * h + 8 + (4 * h + 4 * kv + 6 * f + 4 * a) / 4));
    /* with SP everything is split */
    p.sp = true;
    act_compute(&m.cfg, &p, &ab);
    assert_int_equal(ab.layer_full, s * b * (12 * h + 4 * kv + 6 * f + 4 * a + 8) / 4);
    /* selective recompute frees nothing with flash attention (no score matrix) */
    p.recompute = RECOMPUTE_SELECTIVE;
    act_compute(&m.cfg, &p, &ab);
    assert_int_equal(ab.layer_saved, ab.layer_full);
    assert_int_equal(ab.layer_working, 0);
    /* full recompute: keep the (sequence-split) input, rebuild the rest one layer at a time */
    p.recompute = RECOMPUTE_FULL;
    act_compute(&m.cfg, &p, &ab);
    assert_int_equal(ab.layer_saved, s * b * 2 * h / 4);
    assert_int_equal(ab.layer_saved + ab.layer_working, ab.layer_full);
}

/* A custom policy: the names given, as plan_load sets them. */
static plan_cfg with_custom(plan_cfg p, const char *const *names) {
    p.recompute = RECOMPUTE_CUSTOM;
    p.recompute_tensors = 0;
    for (int i = 0; names[i]; i++) {
        const int id = act_name_find(names[i]);
        assert_true(id >= 0);
        p.recompute_tensors |= 1u << id;
    }
    return p;
}

static void check_policy(const model_cfg *m, plan_cfg p, plan_recompute rc, int64_t saved,
                         int64_t working) {
    act_bytes ab;
    p.recompute = rc;
    act_compute(m, &p, &ab);
    if (ab.layer_saved != saved || ab.layer_working != working)
        fail_msg("%s: saved %lld, working %lld; by hand %lld, %lld", plan_recompute_names[rc],
                 (long long)ab.layer_saved, (long long)ab.layer_working, (long long)saved,
                 (long long)working);
}

/* Llama 3 8B (h = q = 4096, kv = 1024, f = 14336, 32 heads), bf16, bytes per
 * token per layer, by hand from the table (docs/memory.md §3, "Recompute
 * policies"); none = 12h + 4kv + 6f + 4a + 8 = 139,400.
 * op (torchtitan): keeps the input 2h, wq's q 2h, wv's v 2kv, the flash output
 *   2h and lse 4a, w1's output 2f, and caches w2's output 2h: 8h + 2kv + 2f +
 *   4a = 63,616; rebuilds both norms' outputs and 1/rms 2 x (2h + 4), k 2kv,
 *   mlp_norm.input 2h, w3's output and w2's input 4f: 6h + 2kv + 4f + 8 = 83,976.
 * gelu (llm.c -r 1): rebuilds w2's input (silu(w1) * w3) 2f = 28,672.
 * gelu+norm (-r 2): and both norm outputs (the linear inputs) 4h: 45,056. */
static void test_policies_llama(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    const int64_t h = 4096, kv = 1024, f = 14336, a = 32, s = 4096, b = 2, tok = s * b;
    const int64_t all = 12 * h + 4 * kv + 6 * f + 4 * a + 8;
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.seq = s;
    p.micro_batch = b;
    check_policy(&m.cfg, p, RECOMPUTE_OP, tok * (8 * h + 2 * kv + 2 * f + 4 * a),
                 tok * (6 * h + 2 * kv + 4 * f + 8));
    assert_int_equal(8 * h + 2 * kv + 2 * f + 4 * a, 63616);
    assert_int_equal(6 * h + 2 * kv + 4 * f + 8, 83976);
    check_policy(&m.cfg, p, RECOMPUTE_GELU, tok * (all - 2 * f), tok * 2 * f);
    check_policy(&m.cfg, p, RECOMPUTE_GELU_NORM, tok * (all - 2 * f - 4 * h), tok * (2 * f + 4 * h));
    static const char *const mlp_inner[] = {"w3.out", "w2.input", NULL};
    check_policy(&m.cfg, with_custom(p, mlp_inner), RECOMPUTE_CUSTOM, tok * (all - 4 * f),
                 tok * 4 * f);
    /* tp 4 with SP: the table's tensors are split; torchtitan also caches
     * w2's mm output (a partial sum over every token: 2h, whole) and the
     * reduce-scatters after wo and w2 (2h / 4 each) */
    p = tu_cfg(1, 4, 1, 1);
    p.seq = s;
    p.micro_batch = b;
    p.sp = true;
    check_policy(&m.cfg, p, RECOMPUTE_OP, tok * ((6 * h + 2 * kv + 2 * f + 4 * a + 4 * h) / 4 + 2 * h),
                 tok * (6 * h + 2 * kv + 4 * f + 8) / 4);
    /* without SP the norm inputs and statistics stay whole; no reduce-scatter */
    p.sp = false;
    check_policy(&m.cfg, p, RECOMPUTE_OP, tok * (4 * h + (4 * h + 2 * kv + 2 * f + 4 * a) / 4),
                 tok * (6 * h + 8 + (2 * kv + 4 * f) / 4));
}

/* GPT-2 124M (h 768, 12 heads, f 4h, LayerNorm, standard attention, dropout
 * 0.1), s = 1024, bf16, per token per layer: none = 34h + 5as + 16 (Table 2 +
 * the LayerNorm statistics) = 87,568.
 * gelu (llm.c -r 1): the GeLU output, fc2's input, 8h: 81,424 kept.
 * gelu+norm (-r 2): and the two LayerNorm outputs (qkv's and fc1's inputs) 4h,
 *   statistics kept: 78,352.
 * op: keeps the input, q, v, the PV output 2h each, fc1's output 8h, and QK^T's
 *   output in place of the softmax 2as: 16h + 2as = 36,864; rebuilds the rest,
 *   18h + 5as + 16 = 75,280 (softmax, dropout mask and output 5as; k, both norm
 *   outputs and mlp_norm.input 8h; the statistics 16; both residual dropout
 *   masks 2h; the GeLU output 8h). */
static void test_policies_gpt2(void **state) {
    (void)state;
    model_spec m = tu_model("gpt2-124m");
    const int64_t h = 768, a = 12, s = 1024, tok = s;
    const int64_t all = 34 * h + 5 * a * s + 16;
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.seq = s;
    assert_int_equal(all, 87568);
    check_policy(&m.cfg, p, RECOMPUTE_NONE, tok * all, 0);
    check_policy(&m.cfg, p, RECOMPUTE_GELU, tok * (all - 8 * h), tok * 8 * h);
    check_policy(&m.cfg, p, RECOMPUTE_GELU_NORM, tok * (all - 12 * h), tok * 12 * h);
    check_policy(&m.cfg, p, RECOMPUTE_OP, tok * (16 * h + 2 * a * s), tok * (18 * h + 5 * a * s + 16));
    assert_int_equal(16 * h + 2 * a * s, 36864);
    assert_int_equal(18 * h + 5 * a * s + 16, 75280);
    /* the score tensors as a custom list are Megatron's selective */
    static const char *const scores[] = {"attn.softmax", "attn.dropout.mask", "attn.dropout.out",
                                         NULL};
    check_policy(&m.cfg, with_custom(p, scores), RECOMPUTE_CUSTOM, tok * (34 * h + 16),
                 tok * 5 * a * s);
    check_policy(&m.cfg, p, RECOMPUTE_SELECTIVE, tok * (34 * h + 16), tok * 5 * a * s);
}

/* Which ops each policy replays, and the names a model's layer has. */
static void test_policy_ops(void **state) {
    (void)state;
    model_spec llama = tu_model("llama3-8b"), gpt2 = tu_model("gpt2-124m");
    plan_cfg p = tu_cfg(1, 1, 1, 1);
#define B(op_) (1u << (op_))
    p.recompute = RECOMPUTE_OP; /* wq, wv, flash, w1, w2 saved */
    assert_int_equal(act_replay_ops(&llama.cfg, &p),
                     B(ACT_OP_NORM1) | B(ACT_OP_K) | B(ACT_OP_ROPE) | B(ACT_OP_O) |
                         B(ACT_OP_RESID1) | B(ACT_OP_NORM2) | B(ACT_OP_GATE) | B(ACT_OP_ACT) |
                         B(ACT_OP_RESID2));
    /* GPT-2: fc2 is the 6th linear, replayed; softmax from QK^T's cached output */
    assert_int_equal(act_replay_ops(&gpt2.cfg, &p),
                     B(ACT_OP_NORM1) | B(ACT_OP_K) | B(ACT_OP_SOFTMAX) | B(ACT_OP_O) |
                         B(ACT_OP_RESID1) | B(ACT_OP_NORM2) | B(ACT_OP_ACT) | B(ACT_OP_DOWN) |
                         B(ACT_OP_RESID2));
    p.recompute = RECOMPUTE_GELU_NORM;
    assert_int_equal(act_replay_ops(&gpt2.cfg, &p), B(ACT_OP_ACT) | B(ACT_OP_NORM1) | B(ACT_OP_NORM2));
    static const char *const k_only[] = {"attn.k", NULL}, *const resid[] = {"mlp_norm.input", NULL};
    p = with_custom(p, k_only);
    assert_int_equal(act_replay_ops(&llama.cfg, &p), B(ACT_OP_K) | B(ACT_OP_ROPE));
    p = with_custom(p, resid);
    assert_int_equal(act_replay_ops(&llama.cfg, &p), B(ACT_OP_O) | B(ACT_OP_RESID1));
#undef B
    assert_true(act_layer_has(&llama.cfg, AN_W3_OUT));
    assert_false(act_layer_has(&llama.cfg, AN_GELU_INPUT));
    assert_int_equal(act_name_find("attn.lse"), AN_ATTN_LSE);
    assert_int_equal(act_name_find("attn.LSE"), -1);
    char buf[512];
    assert_string_equal(act_layer_names(&gpt2.cfg, buf, sizeof buf),
                        "attn_norm.input, attn_norm.stats, qkv.input, attn.q, attn.k(expanded), "
                        "attn.softmax, attn.dropout.mask, attn.dropout.out, attn.v(expanded), "
                        "o.input, attn.resid_dropout.mask, mlp_norm.input, mlp_norm.stats, "
                        "fc1.input, gelu.input, fc2.input, mlp.resid_dropout.mask");
}

/* Context parallelism divides the tokens each rank holds. */
static void test_cp_divides_sequence(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(1, 1, 1, 4);
    p.seq = 32768;
    act_bytes ab;
    act_compute(&m.cfg, &p, &ab);
    assert_int_equal(ab.layer_full, 32768 / 4 * (12 * 4096 + 4 * 1024 + 6 * 14336 + 4 * 32 + 8));
}

/* Last stage: final norm input + 1/rms, head input, fp32 softmax of the loss
 * over a vocab split by tp (padded), int64 labels; first stage: int64 ids. */
static void test_stage_extras(void **state) {
    (void)state;
    model_spec m = tu_model("gpt2-124m");
    plan_cfg p = tu_cfg(1, 2, 1, 1);
    p.seq = 1024;
    p.micro_batch = 4;
    act_bytes ab;
    act_compute(&m.cfg, &p, &ab);
    const int64_t tok = 1024 * 4, h = 768, vpad = 50258;
    /* GPT-2 has dropout 0.1: the embedding output's dropout mask, 1 byte per element */
    assert_int_equal(ab.first_stage, tok * 8 + tok * h);
    assert_int_equal(ab.last_stage, tok * (2 * h + 8) + tok * 2 * h + tok * (vpad / 2) * 4 + tok * 8);
}

/* tiny-1m (h 128, q 128, kv 64, f 512, V 256), micro 4 x seq 256 = 1,024 tokens on one rank. */
static plan_cfg tiny_cfg(const char *precision, plan_recompute rc, int64_t tp, int64_t cp) {
    plan_cfg p = tu_cfg(1, tp, 1, cp);
    plan_precision_preset(precision, &p.precision);
    p.micro_batch = 4, p.seq = 256, p.global_batch = 4;
    p.recompute = rc;
    return p;
}

static int64_t tiny_peak(const char *precision, plan_recompute rc) {
    model_spec m = tu_model("tiny-1m");
    plan_cfg p = tiny_cfg(precision, rc, 1, 1);
    ws_bytes w;
    ws_compute(&m.cfg, &p, true, &w);
    return ws_stage_compute(&w, true, m.cfg.layers, true);
}

/* The peak workspace `parasim run plans/tiny-1m-cpu.yaml --set gpus=1 --set
 * parallel.dp=1 --threads 1` measures (runtime/rt_mem.c), in each precision
 * and recompute mode: fp32 7.00 MiB, N(2h + 3f) fp32 elements (the two
 * hidden gradient streams and the MLP's three f-wide gradients, which the
 * runtime reported as unpredicted before workspace.c); bf16-mixed 18.38 MiB. */
static void test_workspace_measured(void **state) {
    (void)state;
    assert_int_equal(tiny_peak("fp32", RECOMPUTE_NONE), 1024 * (2 * 128 + 3 * 512) * 4);
    assert_int_equal(tiny_peak("fp32", RECOMPUTE_NONE), 7340032);
    assert_int_equal(tiny_peak("bf16-mixed", RECOMPUTE_NONE), 19269632);
    assert_int_equal(tiny_peak("fp32", RECOMPUTE_FULL), 9986048);
    assert_int_equal(tiny_peak("bf16-mixed", RECOMPUTE_FULL), 29231104);
}

/* Each op by hand, fp32 (no widened copies), N = 1,024 tokens. */
static void test_workspace_ops_by_hand(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    const int64_t N = 1024, h = 128, f = 512, V = 256;
    plan_cfg p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 1);
    ws_bytes w;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.embed_fwd, 4 * N * h);              /* the output stream */
    assert_int_equal(w.embed_bwd, 4 * N + 4 * N * h);      /* int32 ids, the incoming gradient */
    assert_int_equal(w.attn_scratch, 2 * 64 * 256 * 4);    /* one block's scores and gradient */
    assert_int_equal(w.layer_fwd, 4 * N * h);              /* the output stream (> scratch) */
    assert_int_equal(w.layer_bwd, 4 * N * (2 * h + 3 * f)); /* streams, dg, da, db */
    assert_int_equal(w.head_fwd, 4 * N * V + 4 * N);       /* logits, losses */
    assert_int_equal(w.head_bwd, 4 * N + 4 * N * V + 8 * N * h);
    assert_int_equal(w.stream_fwd, 4 * N * h);
    assert_int_equal(w.stream_bwd, 4 * N * h);
    /* bf16 gradients: the optimizer widens its range, a reduce-scatter its part twice */
    assert_int_equal(ws_optimizer_bytes(&p, 1000), 0);
    assert_int_equal(ws_reduce_scatter_bytes(&p, true, 1000), 4032); /* 4,000 rounded up to 64 */
    plan_precision_preset("bf16-mixed", &p.precision);
    assert_int_equal(ws_optimizer_bytes(&p, 1000), 4000);
    assert_int_equal(ws_reduce_scatter_bytes(&p, true, 1000), 2048 + 8000);
}

/* Zero-bubble's split backward (runtime/rt_model.c): B keeps every GEMM's
 * output gradient for W -- dy and dx_mid (h wide), da and db (f), dq (q),
 * dk and dv (kv) -- and W holds, besides, the fp32 copies of the gradient
 * (and of the old gradient it adds into) and of its four GEMM inputs. By
 * hand for tiny-1m, N = 1,024: fp32 has no copies; bf16-mixed widens
 * P_l = 2h + (2q + 2kv) h + 3 f h gradients twice and N (2h + q + f)
 * activations. The runtime measured the stash on the test model (64
 * tokens, h 64, f 160, q 64, kv 32): 4 x 64 x 576 = 147,456 bytes per
 * layer and micro-batch (tests/test_run.c, zero-bubble). */
static void test_workspace_zero_bubble(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    const int64_t N = 1024, h = 128, q = 128, kv = 64, f = 512;
    const int64_t Pl = 2 * h + (2 * q + 2 * kv) * h + 3 * f * h;
    plan_cfg p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 1);
    ws_bytes w;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.zb_stash, 4 * N * (2 * h + 2 * f + q + 2 * kv));
    assert_int_equal(w.layer_bwd_w, 0);
    p = tiny_cfg("bf16-mixed", RECOMPUTE_NONE, 1, 1);
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.zb_stash, 4 * N * (2 * h + 2 * f + q + 2 * kv)); /* fp32 gradients */
    assert_int_equal(w.layer_bwd_w, 2 * 4 * Pl + 4 * N * (2 * h + q + f));
    ws_compute(&m.cfg, &p, false, &w); /* kernels that read bf16: bf16 gradients, no copies */
    assert_int_equal(w.zb_stash, 2 * N * (2 * h + 2 * f + q + 2 * kv));
    assert_int_equal(w.layer_bwd_w, 0);
}

/* DualPipe's queued W of one layer (workspace.c zb_queued): its linears'
 * inputs and output gradients. tiny-1m (N = 1,024, bf16 kernels): inputs
 * 2 (N h + N q) attention (q/k/v's normed input, o's input) and 2 (N h + N f)
 * MLP (w1/w3's, w2's); gradients split zb_stash. DeepSeek-V3 (MLA; tp 1, N =
 * 4,096, bf16): inputs 2 N (h + r_q + r_kv + n_h d_v) = 2 x 4,096 x (7,168 +
 * 1,536 + 512 + 16,384) = 209,715,200; gradients of q_a (1,536), q_b (128 x
 * 192), kv_a (512 + 64), kv_b (128 x 256), o (7,168): 2 x 4,096 x 66,624 =
 * 545,783,808; the dense MLP (f 18,432): inputs 2 x 4,096 x (7,168 + 18,432)
 * = 209,715,200, gradients 2 x 4,096 x (2 x 18,432 + 7,168) = 360,710,144. */
static void test_workspace_dualpipe_queued(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    const int64_t N = 1024, h = 128, q = 128, f = 512;
    plan_cfg p = tiny_cfg("bf16-mixed", RECOMPUTE_NONE, 1, 1);
    ws_bytes w;
    ws_compute(&m.cfg, &p, false, &w);
    assert_int_equal(w.grad_elem, 2);
    assert_int_equal(w.zb_attn_grads + w.zb_mlp_grads, w.zb_stash);
    assert_int_equal(w.zb_mlp_grads, 2 * N * (2 * f + h));
    assert_int_equal(w.zb_attn_inputs, 2 * (N * h + N * q));
    assert_int_equal(w.zb_mlp_inputs, 2 * (N * h + N * f));
    ws_compute(&m.cfg, &p, true, &w); /* fp32 kernels: fp32 gradients, inputs stored bf16 */
    assert_int_equal(w.grad_elem, 4);
    assert_int_equal(w.zb_attn_grads + w.zb_mlp_grads, w.zb_stash);
    assert_int_equal(w.zb_mlp_inputs, 2 * (N * h + N * f));
    model_spec d = tu_model("deepseek-v3");
    p = tu_cfg(1, 1, 1, 1);
    p.seq = 4096;
    ws_compute(&d.cfg, &p, false, &w);
    assert_int_equal(w.zb_attn_inputs, 209715200);
    assert_int_equal(w.zb_attn_grads, 545783808);
    assert_int_equal(w.zb_mlp_inputs, 209715200);
    assert_int_equal(w.zb_mlp_grads, 360710144);
}

/* Per-rank widths: tensor parallelism halves the MLP's gradients (f/t),
 * context parallelism the tokens (b s / c). */
static void test_workspace_per_rank(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    const int64_t h = 128, f = 512, V = 256;
    ws_bytes w;
    plan_cfg p = tiny_cfg("fp32", RECOMPUTE_NONE, 2, 1);
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.layer_bwd, 4 * 1024 * (2 * h + 3 * f / 2));
    /* logits, losses, the vocab-parallel loss's per-token maximum, target
     * logit and sum of exponentials (fp32, rt_tp.c) */
    assert_int_equal(w.head_fwd, 4 * 1024 * (V / 2) + 4 * 1024 + 3 * 4 * 1024);
    p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 2);
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.layer_bwd, 4 * 512 * (2 * h + 3 * f));
    /* a stage without the embedding or the head */
    assert_int_equal(ws_stage_compute(&w, false, 2, false), w.layer_bwd);
    assert_int_equal(ws_stage_compute(&w, false, 0, true), w.head_bwd);
}

/* tp 2 + sp, bf16-mixed, fp32 kernels (the CPU runtime), N = 1,024 tokens,
 * Nl = 512 per rank in the norm regions; per rank q = 64, kv = 32, f = 256,
 * a layer's Pl = 2h + 3 x 64 h (q, k, v, o: 64 + 32 + 32 + 64 = 192 h) +
 * 3 f h = 123,136 parameters. A layer's backward peaks when the
 * up-projections' input gradient is re-gathered for the weight gradients
 * (rt_model.c layer_backward, rt_tp.c rt_tp_all_gather): the weights' and
 * gradients' fp32 copies, the incoming stream (Nl h fp32), fp32 copies of
 * every saved tensor (x, xn1, x_mid, xn2: Nl h each; q, o: N q; k, v: N kv;
 * a, b, g: N f), the two norms' weight gradients (2h fp32), dx_mid (Nl h),
 * da and db (2 N f), dxn2 (N h), the gathered xn2 (N h) and the gather's
 * bf16 staging copies (its Nl h input and N h output). */
static void test_workspace_tp_sp_by_hand(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    const int64_t N = 1024, Nl = 512, h = 128, q = 64, kv = 32, f = 256, V = 128;
    const int64_t Pl = 2 * h + 192 * h + 3 * f * h;
    assert_int_equal(Pl, 123136);
    plan_cfg p = tiny_cfg("bf16-mixed", RECOMPUTE_NONE, 2, 1);
    p.sp = true;
    ws_bytes w;
    ws_compute(&m.cfg, &p, true, &w);
    const int64_t saved = 4 * Nl * h + 2 * N * q + 2 * N * kv + 3 * N * f;
    assert_int_equal(w.layer_bwd, 8 * Pl + 4 * Nl * h + 4 * saved + 4 * 2 * h + 4 * Nl * h +
                                      4 * 2 * N * f + 4 * N * h + 4 * N * h +
                                      2 * (Nl + N) * h);
    assert_int_equal(w.layer_bwd, 10030080);
    /* the head's forward: the weights' fp32 copy (final norm + 128 vocabulary
     * rows), the input's and the normed input's copies, the logits (bf16 and
     * fp32), the losses, the gathered normed input (N h fp32) and, the
     * larger of the two moments after it, the gather's bf16 staging (Nl h +
     * N h) over the loss's per-token statistics (3 N fp32) */
    assert_int_equal(w.head_fwd, 4 * (h + V * h) + 2 * 4 * Nl * h + (2 + 4) * N * V + 4 * N +
                                     4 * N * h + 2 * (Nl + N) * h);
    assert_int_equal(w.stream_fwd, 2 * Nl * h);
    assert_int_equal(w.stream_bwd, 4 * Nl * h);

    /* The same plan on kernels that read bf16 (a GPU cluster): no fp32
     * copies of weights, gradients or saved tensors, no staging copies,
     * activation gradients in bf16. The layer's backward peaks with dg, da
     * and db live (a tie with the moment xn2 is re-gathered beside dxn2):
     * the incoming stream and dx_mid (Nl h each), the norms' weight
     * gradients (fp32), 3 N f. */
    ws_compute(&m.cfg, &p, false, &w);
    assert_int_equal(w.layer_bwd, 2 * 2 * Nl * h + 4 * 2 * h + 2 * 3 * N * f);
    assert_int_equal(w.layer_bwd, 1836032);
    /* the head still holds the logits and their fp32 copy (Megatron-LM's
     * cross entropy widens them), the losses, the gathered normed input
     * (bf16) and the loss's per-token statistics */
    assert_int_equal(w.head_fwd, (2 + 4) * N * V + 4 * N + 2 * N * h + 3 * 4 * N);
    assert_int_equal(w.stream_bwd, 2 * Nl * h);
    /* the optimizer's gradient copy stays (Megatron-LM's main grads are
     * fp32); a reduce-scatter keeps its receive buffer only */
    assert_int_equal(ws_optimizer_bytes(&p, 1000), 4000);
    assert_int_equal(ws_reduce_scatter_bytes(&p, false, 1000), 2048);
}

/* Context parallelism: ring attention's block kernel keeps, per thread, a
 * block's scores and their gradient (2 x 64 x T) and a block of output rows
 * (64 x d_h), T = s/c keys of one rank. tiny-1m (d_h 32), one sequence of 256
 * tokens, fp32: cp 2 holds N = 128 tokens, T = 128: 4 (2·64·128 + 64·32) =
 * 73,728 bytes, above the output stream (4·128·128 = 65,536), so the layer's
 * forward peaks at attention; cp 4: N = T = 64, 4 (2·64·64 + 64·32) = 40,960
 * above 32,768. */
/* A pipeline message's block: a forward's is the activation alone; a bf16
 * gradient under fp32 kernels sits beside the fp32 stream it converts
 * (tiny-1m, 256 tokens x 128: 2 x 32,768 + 4 x 32,768 bytes); in fp32 the
 * message is the stream itself. */
static void test_workspace_p2p(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    ws_bytes w;
    plan_cfg p = tiny_cfg("bf16-mixed", RECOMPUTE_NONE, 1, 1);
    p.micro_batch = 1, p.global_batch = 1;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.stream_bwd, 4 * 256 * 128);
    assert_int_equal(ws_p2p_bytes(&w, 2 * 256 * 128, false), 65536);
    assert_int_equal(ws_p2p_bytes(&w, 2 * 256 * 128, true), 65536 + 131072);
    p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 1);
    p.micro_batch = 1, p.global_batch = 1;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(ws_p2p_bytes(&w, 4 * 256 * 128, true), 131072);
}

static void test_workspace_ring(void **state) {
    (void)state;
    model_spec m = tu_model("tiny-1m");
    ws_bytes w;
    plan_cfg p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 2);
    p.micro_batch = 1, p.global_batch = 1;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.layer_fwd, 73728);
    p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 4);
    p.micro_batch = 1, p.global_batch = 1;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.layer_fwd, 40960);
    /* without cp the causal kernel's scratch, 2·64·256·4 = 131,072 */
    p = tiny_cfg("fp32", RECOMPUTE_NONE, 1, 1);
    p.micro_batch = 1, p.global_batch = 1;
    ws_compute(&m.cfg, &p, true, &w);
    assert_int_equal(w.layer_fwd, 131072);
}

/* A block the runtime does not build (GPT-2 124M: GeLU, standard attention),
 * fp32, 1,024 tokens: the two streams, then attention is the largest moment:
 * dout, dq and the expanded dk, dv (4 x N h fp32) and the fp32 gradients of
 * the 12 x 1,024 scores and probabilities per token. */
static void test_workspace_standard_attention(void **state) {
    (void)state;
    model_spec m = tu_model("gpt2-124m");
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    plan_precision_preset("fp32", &p.precision);
    p.seq = 1024;
    ws_bytes w;
    ws_compute(&m.cfg, &p, true, &w);
    const int64_t N = 1024, h = 768;
    assert_int_equal(w.layer_bwd, 8 * N * h + 16 * N * h + 8 * N * 12 * 1024);
}

/* Standard attention on kernels that read the storage dtype (GPU
 * frameworks): with dropout one score-sized tensor beyond the saved ones
 * (the pre-softmax scores in forward; in backward PyTorch frees each node's
 * saved tensors once it has run), without dropout two (dP and dS beside the
 * saved softmax output); parasim's fp32 CPU kernels keep their two fp32
 * gradients. GPT 1.7B, micro-batch 4 x 2,048: N = 8,192 tokens, 24 heads,
 * T = 2,048 keys, bf16: 1 x 2 x 8,192 x 24 x 2,048 = 805,306,368 bytes. */
static void test_workspace_standard_attention_gpu(void **state) {
    (void)state;
    model_spec m = tu_model("gpt-1.7b");
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    plan_precision_preset("bf16-mixed", &p.precision);
    p.seq = 2048;
    p.micro_batch = 4;
    ws_bytes w;
    ws_compute(&m.cfg, &p, false, &w);
    assert_int_equal(w.attn_scratch, 805306368LL);
    m.cfg.dropout = 0;
    ws_compute(&m.cfg, &p, false, &w);
    assert_int_equal(w.attn_scratch, 2 * 805306368LL);
    m.cfg.dropout = 0.1;
    ws_compute(&m.cfg, &p, true, &w); /* fp32 kernels: two fp32 gradients */
    assert_int_equal(w.attn_scratch, 2 * 4 * 8192LL * 24 * 2048);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_korthikanti_table2), cmocka_unit_test(test_stats_are_the_difference),
        cmocka_unit_test(test_llama_block),        cmocka_unit_test(test_cp_divides_sequence),
        cmocka_unit_test(test_policies_llama),     cmocka_unit_test(test_policies_gpt2),
        cmocka_unit_test(test_policy_ops),
        cmocka_unit_test(test_stage_extras),       cmocka_unit_test(test_workspace_measured),
        cmocka_unit_test(test_workspace_ops_by_hand), cmocka_unit_test(test_workspace_zero_bubble), cmocka_unit_test(test_workspace_dualpipe_queued), cmocka_unit_test(test_workspace_tp_sp_by_hand),
        cmocka_unit_test(test_workspace_per_rank),
        cmocka_unit_test(test_workspace_ring), cmocka_unit_test(test_workspace_p2p), cmocka_unit_test(test_workspace_standard_attention),
        cmocka_unit_test(test_workspace_standard_attention_gpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
