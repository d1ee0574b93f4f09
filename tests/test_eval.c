/* test_eval.c — the buffers in "other", offload and the fit decision, against
 * values written out by hand (docs/memory.md §6). */
#include <math.h>

#include "cost/act.h"
#include "cost/distill.h"
#include "cost/moe.h"
#include "cost/params.h"
#include "cost/workspace.h"
#include "time/kernel_time.h"
#include "spec/plan_check.h"
#include "tu.h"

static const char *plan_text(const char *parallel, const char *extra) {
    static char buf[2048];
    snprintf(buf, sizeof buf,
             "model: llama3-8b\ncluster: dgx-h100\ngpus: 8\nparallel: %s\n"
             "batch: {global: 16, micro: 1, seq: 4096}\nrecompute: none\n"
             "precision: bf16-mixed\noptimizer: adamw\n%s\n",
             parallel, extra ? extra : "");
    return buf;
}

static void eval_text(const char *parallel, const char *extra, plan_spec **s, eval_result *r) {
    *s = tu_plan(plan_text(parallel, extra));
    eval_plan(&(*s)->model.cfg, &(*s)->cluster.cfg, &(*s)->cfg, r, NULL);
}

static void test_sums_and_defaults(void **state) {
    (void)state;
    plan_spec *s;
    eval_result r;
    eval_text("{dp: 8, zero: 1}", NULL, &s, &r);
    const eval_stage *h = &r.heavy;
    assert_int_equal(h->buf_comm, 25LL << 20);     /* one DDP bucket */
    assert_int_equal(h->buf_workspace, 32LL << 20); /* cuBLAS on Hopper */
    assert_int_equal(h->reserved, 1LL << 30);       /* dgx-h100.yaml */
    /* op temporaries (docs/memory.md §6): kernels read bf16 here (dgx-h100
     * has no gpu.kernel_dtype), so no op holds fp32 copies of weights,
     * gradients or saved tensors, and the head's forward is the largest
     * working set: the 4096 x 128256 logits in bf16 and their fp32 copy
     * (Megatron-LM's cross entropy calls .float() on them), and the fp32
     * per-token losses (2.94 GiB; with the copies 8.08 GiB, below). */
    const int64_t N = 4096, hid = 4096, V = 128256, head = hid + V * hid;
    assert_int_equal(h->buf_temps, (2 + 4) * N * V + 4 * N);
    const int64_t gpu_temps = h->buf_temps;
    /* the same plan on fp32 kernels: the head's backward is the largest:
     * its parameters widened from bf16 three times (weights, the gradient,
     * the old gradient to add to); the two saved inputs widened (4096 x
     * 4096 fp32 each); int32 labels; the logits' fp32 gradient; the normed
     * input's gradient and the outgoing hidden gradient (fp32) */
    s->cluster.cfg.kernels_fp32 = true;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
    assert_int_equal(h->buf_temps, 12 * head + 2 * 4 * N * hid + 4 * N + 4 * N * V + 8 * N * hid);
    assert_int_equal(h->buf_temps, 8673886208LL); /* 8.08 GiB */
    assert_true(gpu_temps < h->buf_temps);
    assert_int_equal(h->other, h->buf_comm + h->buf_workspace + h->reserved + h->buf_temps);
    assert_int_equal(h->total, h->params + h->grads + h->master + h->optimizer + h->activations +
                                   h->other);
    assert_int_equal(r.capacity_bytes, 81559LL << 20);
    assert_true(r.fits);
    free(s);
    /* no data parallelism: no bucket */
    s = tu_plan("model: llama3-8b\ncluster: dgx-h100\ngpus: 1\nparallel: {dp: 1}\n"
                "batch: {global: 1, micro: 1, seq: 512}\nrecompute: none\n"
                "precision: bf16-mixed\noptimizer: adamw\n");
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
    assert_int_equal(r.heavy.buf_comm, 0);
    free(s);
}

/* ZeRO-3 holds the unit being computed, the prefetched one and one unit's
 * unsharded gradients; Llama 3 8B's largest unit is the output head with the
 * final norm (the untied embedding is h elements smaller). */
static void test_zero3_buffers(void **state) {
    (void)state;
    plan_spec *s;
    eval_result r;
    eval_text("{dp: 8, zero: 3}", NULL, &s, &r);
    assert_int_equal(r.heavy.buf_zero3, (128256LL * 4096 + 4096) * (2 + 2 + 2));
    free(s);
}

static void test_fragmentation_and_fit(void **state) {
    (void)state;
    plan_spec *s;
    eval_result r0, r1;
    eval_text("{dp: 8, zero: 1}", NULL, &s, &r0);
    free(s);
    eval_text("{dp: 8, zero: 1}", "memory: {fragmentation: 0.25}", &s, &r1);
    const eval_stage *a = &r0.heavy;
    int64_t allocated = a->total - a->reserved;
    assert_int_equal(r1.heavy.fragmentation, (int64_t)(0.25 * (double)allocated));
    free(s);
    /* fits is total <= capacity: shrink the GPU around the total */
    char extra[128];
    snprintf(extra, sizeof extra, "memory: {workspace: %lld}",
             (long long)((32LL << 20) + (81559LL << 20) - a->total + 1));
    eval_text("{dp: 8, zero: 1}", extra, &s, &r1);
    assert_false(r1.fits);
    assert_int_equal(r1.heavy.total, (81559LL << 20) + 1);
    free(s);
}

/* Offloaded activations keep two layers' worth on the GPU (the one computing
 * and the one in transfer); the rest is host memory. */
static void test_offload_activations(void **state) {
    (void)state;
    plan_spec *s;
    eval_result r;
    eval_text("{dp: 8, zero: 1}", "offload: activations", &s, &r);
    act_bytes ab;
    act_compute(&s->model.cfg, &s->cfg, &ab);
    assert_int_equal(r.heavy.act_saved, 2 * ab.layer_saved + ab.first_stage + ab.last_stage);
    assert_int_equal(r.heavy.host, 30 * ab.layer_saved);
    /* PCIe traffic matches: one micro-batch in flight, so each of the 2
     * (global 16 / dp 8) sends all but the two layers kept on the device out
     * and back */
    assert_int_equal(r.comm.group_bytes[GROUP_HOST], 2 * 2 * 30 * ab.layer_saved);
    free(s);
    /* two stages of 16 layers, 4 micro-batches (16 / dp 4): stage 0 has two in
     * flight, so every layer goes out; the last stage has one, so all but two */
    s = tu_plan(plan_text("{dp: 4, pp: 2, zero: 1}", "offload: activations"));
    eval_stage *st = calloc(PLAN_MAX_STAGES, sizeof *st);
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, st);
    act_compute(&s->model.cfg, &s->cfg, &ab);
    assert_int_equal(st[0].comm_bytes[GROUP_HOST], 2 * 4 * 16 * ab.layer_saved);
    assert_int_equal(st[1].comm_bytes[GROUP_HOST], 2 * 4 * 14 * ab.layer_saved);
    free(st);
    free(s);
    eval_text("{dp: 8, zero: 1}", "offload: {optimizer: true}", &s, &r);
    assert_int_equal(r.heavy.master + r.heavy.optimizer, 0);
    assert_int_equal(r.heavy.host, 12 * 8030261248LL / 8);
    free(s);
}

/* Context parallelism: ring buffers for K/V and dK/dV, double-buffered. */
static void test_cp_ring(void **state) {
    (void)state;
    plan_spec *s;
    eval_result r;
    eval_text("{dp: 2, cp: 4}", NULL, &s, &r);
    const int64_t kv_block = 2 * (4096 / 4) * 1024 * 2; /* K and V, 1024 tokens, bf16 */
    assert_int_equal(r.heavy.buf_cp, 4 * kv_block);
    free(s);
    /* all-gather: the gathered K/V of the 4 blocks and the full-length dK/dV
     * before their reduce-scatter (TE AttnFuncWithCPAndKVAllGather.backward) */
    eval_text("{dp: 2, cp: 4, cp_algorithm: all-gather}", NULL, &s, &r);
    assert_int_equal(r.heavy.buf_cp, 2 * 4 * kv_block);
    free(s);
}

/* Pending pipeline sends (docs/memory.md §6 "Pipelines"): parasim's runtime
 * holds one message per micro-batch in flight; with pipeline.deallocate_outputs
 * (Megatron-LM deallocate_output_tensor, Llama 3 §3.3.2) only the two in
 * transit. By hand: llama3-8b, pp 4, 1F1B, 8 micro-batches: stage 0 holds 4
 * in flight; a message is 4096 tokens x 4096 x 2 B = 32 MiB, so the op
 * temporaries drop by (4 - 2) x 32 MiB. */
static void test_deallocate_outputs(void **state) {
    (void)state;
    plan_spec *s;
    eval_result a, b;
    const char *par = "{dp: 2, pp: 4}";
    eval_text(par, "pipeline: {schedule: 1f1b}", &s, &a);
    free(s);
    eval_text(par, "pipeline: {schedule: 1f1b, deallocate_outputs: true}", &s, &b);
    eval_stage sa[4], sb[4];
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &b, sb);
    s->cfg.deallocate_outputs = false;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &a, sa);
    assert_int_equal(sa[0].inflight, 4);
    assert_int_equal(sa[0].buf_temps - sb[0].buf_temps, 2 * (4096LL * 4096 * 2));
    /* the last stage holds one micro-batch: nothing changes */
    assert_int_equal(sa[3].inflight, 1);
    assert_int_equal(sa[3].buf_temps, sb[3].buf_temps);
    free(s);
}

/* plan_size_bound (plan_check.h) must dominate what eval computes, for every
 * stage of every valid plan: a grid over models (flash and standard
 * attention, tied embeddings), degrees, ZeRO stages, schedules, recompute and
 * offload. */
static void test_size_bound_dominates(void **state) {
    (void)state;
    const char *models[] = {"llama3-8b", "gpt2-124m", "tiny-1m"};
    const char *scheds[] = {"afab", "1f1b", "zero-bubble", "interleaved", "dualpipe"};
    const char *offloads[] = {"none", "both"};
    eval_stage *stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    plan_spec *s = calloc(1, sizeof *s);
    assert_non_null(stages);
    assert_non_null(s);
    int checked = 0;
    for (int mi = 0; mi < 3; mi++)
        for (int tp = 1; tp <= 4; tp *= 2)
            for (int pp = 1; pp <= 4; pp *= 2)
                for (int ci = 0; ci < 3; ci++) /* cp 1, cp 2 ring, cp 2 all-gather */
                    for (int zero = 0; zero <= 3; zero++)
                        for (int si = 0; si < 5; si++)
                            for (int oi = 0; oi < 2; oi++) {
                                char text[1024];
                                snprintf(text, sizeof text,
                                         "model: %s\ncluster: dgx-h100\n"
                                         "parallel: {dp: 2, tp: %d, pp: %d, cp: %d, zero: %d, "
                                         "cp_algorithm: %s}\n"
                                         "batch: {global: 32, micro: 2, seq: 1024}\n"
                                         "pipeline: {schedule: %s, virtual: %d}\n"
                                         "recompute: %s\nprecision: bf16-mixed\noffload: %s\n",
                                         models[mi], tp, pp, ci ? 2 : 1, zero,
                                         ci == 2 ? "all-gather" : "ring", scheds[si],
                                         si == 3 ? 2 : 1, si == 2 ? "full" : "none",
                                         offloads[oi]);
                                ps_err err = {{0}};
                                if (plan_load_text(text, "grid.yaml", NULL, 0, s, &err)) continue;
                                plan_size size;
                                plan_size_bound(&s->model.cfg, &s->cluster.cfg, &s->cfg, &size);
                                eval_result r;
                                eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, stages);
                                for (int64_t k = 0; k < s->cfg.pp; k++) {
                                    int64_t sent = 0;
                                    for (int g = 0; g < GROUP_COUNT; g++)
                                        sent += stages[k].comm_bytes[g];
                                    if (stages[k].total + stages[k].host > size.memory ||
                                        sent > size.comm)
                                        fail_msg("bound %lld/%lld below stage %lld's %lld/%lld:\n%s",
                                                 (long long)size.memory, (long long)size.comm,
                                                 (long long)k, (long long)stages[k].total,
                                                 (long long)sent, text);
                                }
                                checked++;
                            }
    assert_true(checked > 100);
    free(s);
    free(stages);
}

/* Framework profiles (docs/memory.md "Framework profiles"): what each one's
 * memory constants change, by hand, on Llama 3 8B at b = 1, s = 4096
 * (N = 4096 tokens, V = 128,256, h = 4096, bf16 activations). */
/* llm.c's kernels (plans/frameworks/llmc.yaml kernels:): cuDNN flash attention
 * and no dropout whatever the GPT-2 file says. By hand, GPT-2 1.5B (h 1600,
 * 25 heads, 48 layers), 16 x 1024 tokens, gelu recompute: a layer saves in bf16
 * ln1, atty, residual2, ln2, residual3 (h each), qkvr (3h), fch (4h) = 12h,
 * and in fp32 both LayerNorms' mean and rstd (4 x 4 B) and the attention's
 * log-sum-exp per head (25 x 4 B): train_gpt2.cu fill_in_activation_sizes. */
static void test_framework_kernels(void **state) {
    (void)state;
    const char *text = "model: gpt2-1.5b\ncluster: dgx-h100\ngpus: 8\nparallel: {dp: 8, zero: 1}\n"
                       "batch: {global: 128, micro: 16, seq: 1024}\nframework: llmc\n";
    plan_spec *s = tu_plan(text);
    assert_int_equal(s->model.cfg.attention, ATTN_FLASH);
    assert_true(s->model.cfg.dropout == 0);
    assert_int_equal(s->cfg.recompute, RECOMPUTE_GELU);
    act_bytes a;
    act_compute(&s->model.cfg, &s->cfg, &a);
    const int64_t N = 16 * 1024, h = 1600;
    assert_int_equal(a.layer_saved, N * (12 * h * 2 + 4 * 4 + 25 * 4));
    free(s);
    /* the model file as written: standard attention with dropout saves the
     * scores, the dropout masks and outputs: far more */
    s = tu_plan("model: gpt2-1.5b\ncluster: dgx-h100\ngpus: 8\nparallel: {dp: 8, zero: 1}\n"
                "batch: {global: 128, micro: 16, seq: 1024}\nframework: llmc\n"
                "recompute: gelu\n");
    plan_cfg p = s->cfg;
    model_cfg m = s->model.cfg;
    m.attention = ATTN_STANDARD, m.dropout = 0.1;
    act_bytes b;
    act_compute(&m, &p, &b);
    assert_true(b.layer_saved > 3 * a.layer_saved);
    free(s);
}

static void test_framework_memory(void **state) {
    (void)state;
    const int64_t N = 4096, V = 128256, h = 4096;
    plan_spec *s;
    eval_result base, r;
    eval_text("{dp: 8, zero: 1}", NULL, &s, &base);
    free(s);
    assert_int_equal(base.heavy.buf_comm, 25LL << 20);
    /* Megatron-LM: buckets are views of the gradient buffer (no bucket
     * bytes; its 160 MB bucket only sets the count) and the distributed
     * optimizer reduce-scatters in place (no receive buffer) */
    eval_text("{dp: 8, zero: 1}", "framework: megatron", &s, &r);
    assert_int_equal(s->cfg.bucket_bytes, 160000000);
    assert_int_equal(r.heavy.buf_comm, 0);
    /* the plan's own precision (bf16-mixed) wins over the profile's */
    assert_int_equal(r.heavy.grads, 2 * r.heavy.param_elems);
    free(s);
    /* llm.c: the fused classifier keeps the logits in bf16 (2NV) in place of
     * the fp32 softmax (4NV) */
    eval_text("{dp: 8, zero: 1}", "framework: llmc", &s, &r);
    assert_int_equal(base.heavy.act_saved - r.heavy.act_saved, 2 * N * V);
    /* and its AdamW widens bf16 gradients in registers: no fp32 copy */
    assert_int_equal(ws_optimizer_bytes(&s->cfg, 1000), 0);
    plan_cfg no_fw = s->cfg;
    memset(&no_fw.framework, 0, sizeof no_fw.framework);
    assert_int_equal(ws_optimizer_bytes(&no_fw, 1000), 4000);
    free(s);
    /* torchtitan's chunked loss: nothing vocabulary-wide is saved */
    eval_text("{dp: 8, zero: 1}", "framework: fsdp2", &s, &r);
    assert_int_equal(s->cfg.zero, 1); /* the plan's zero wins over the profile's 3 */
    assert_int_equal(base.heavy.act_saved - r.heavy.act_saved, 4 * N * V);
    free(s);

    /* the head's working set: logits stored (2) and widened to fp32 (4) for
     * all N tokens, for N/8 under the chunked loss, none of its own under the
     * fused classifier (they are the saved tensor); plus 4N per-token losses */
    s = tu_plan(plan_text("{dp: 8, zero: 1}", NULL));
    plan_cfg p = s->cfg;
    ws_bytes w0, wc, wf;
    ws_compute(&s->model.cfg, &p, false, &w0);
    assert_int_equal(w0.head_fwd, 6 * N * V + 4 * N);
    p.framework.loss = FW_LOSS_CHUNKED;
    p.framework.loss_chunks = 8;
    ws_compute(&s->model.cfg, &p, false, &wc);
    assert_int_equal(wc.head_fwd, 6 * (N / 8) * V + 4 * N);
    assert_int_equal(w0.head_bwd - wc.head_bwd, 2 * (N - N / 8) * V);
    p.framework.loss = FW_LOSS_FUSED;
    p.framework.loss_chunks = 0;
    ws_compute(&s->model.cfg, &p, false, &wf);
    assert_int_equal(wf.head_fwd, 4 * N);
    /* backward: labels 4N, the normed input's gradient and the stream (2Nh
     * each); the logits' gradient is written into the logits */
    assert_int_equal(w0.head_bwd - wf.head_bwd, 2 * N * V);
    assert_int_equal(wf.head_bwd, 4 * N + 2 * N * h + 2 * N * h);
    /* PyTorch's F.cross_entropy on fp32 logits (torchtitan 2024): the same
     * forward as fp32-softmax; its backward holds nll_loss's dense fp32
     * gradient and log_softmax's input gradient, 8NV, with the labels */
    ws_bytes wx;
    p.framework.loss = FW_LOSS_CROSS_ENTROPY;
    ws_compute(&s->model.cfg, &p, false, &wx);
    assert_int_equal(wx.head_fwd, 6 * N * V + 4 * N);
    assert_int_equal(wx.head_bwd, 8 * N * V + 4 * N);
    free(s);
    /* the dated profile: fp32 log-softmax saved, as Megatron's fp32 softmax */
    eval_text("{dp: 8, zero: 3}", "framework: fsdp2-2024-12", &s, &r);
    assert_int_equal(s->cfg.framework.loss, FW_LOSS_CROSS_ENTROPY);
    assert_string_equal(s->framework_name, "fsdp2-2024-12");
    free(s);
    eval_text("{dp: 8, zero: 3}", "framework: fsdp2", &s, &base);
    assert_int_equal(r.heavy.act_saved - base.heavy.act_saved, 4 * N * V);
    free(s);
}

/* The profile's plan: map gives defaults; what the plan writes (or --set
 * gives) wins, mappings merge key by key; no framework: no change at all. */
static void test_framework_defaults(void **state) {
    (void)state;
    const char *bare = "model: llama3-8b\ncluster: dgx-h100\nparallel: {dp: 8}\n"
                       "batch: {global: 16, micro: 1, seq: 4096}\n";
    char yaml[512];
    snprintf(yaml, sizeof yaml, "%sframework: megatron\n", bare);
    plan_spec *s = tu_plan(yaml);
    assert_string_equal(s->precision_name, "bf16-fp32grad");
    assert_string_equal(s->framework_name, "megatron");
    assert_non_null(strstr(s->framework_source, "NVIDIA/Megatron-LM @ d98e8a64ddf3"));
    assert_non_null(strstr(s->framework_path, "plans/frameworks/megatron.yaml"));
    assert_true(s->cfg.framework.grad_bucket_none);
    free(s);
    /* --set wins too */
    plan_spec *o = calloc(1, sizeof *o);
    ps_err err = {{0}};
    const plan_override ov[] = {{"precision=fp32"}};
    assert_int_equal(plan_load_text(yaml, "set.yaml", ov, 1, o, &err), 0);
    assert_string_equal(o->precision_name, "fp32");
    free(o);
    /* a mapping merges: the plan's workspace, the profile's bucket */
    snprintf(yaml, sizeof yaml, "%sframework: deepspeed\nmemory: {workspace: 64 MiB}\n", bare);
    s = tu_plan(yaml);
    assert_int_equal(s->cfg.workspace_bytes, 64LL << 20);
    assert_int_equal(s->cfg.bucket_bytes, 1000000000);
    assert_string_equal(s->precision_name, "bf16-mixed");
    free(s);
    /* parallel merges: dp from the plan, zero from the profile */
    snprintf(yaml, sizeof yaml, "%sframework: fsdp2\n", bare);
    s = tu_plan(yaml);
    assert_int_equal(s->cfg.zero, 3);
    assert_int_equal(s->cfg.dp, 8);
    assert_true(s->cfg.framework.param_copy_transient);
    assert_int_equal(s->cfg.framework.loss, FW_LOSS_CHUNKED);
    assert_int_equal(s->cfg.framework.loss_chunks, 8);
    free(s);
    /* framework: null is no framework */
    snprintf(yaml, sizeof yaml, "%sprecision: bf16-mixed\nframework: null\n", bare);
    s = tu_plan(yaml);
    assert_string_equal(s->framework_name, "");
    plan_framework none;
    memset(&none, 0, sizeof none);
    assert_int_equal(s->cfg.framework.grad_bucket_none, none.grad_bucket_none);
    assert_int_equal(s->cfg.framework.param_copy_transient, 0);
    assert_int_equal(s->cfg.framework.optimizer_grad_copy_none, 0);
    assert_int_equal(s->cfg.framework.loss, 0);
    free(s);
}

/* A recompute's working set is live only inside a layer's backward: the
 * closed form counts the forward ops' working set only beyond it (GPT 1.7B,
 * standard attention, full recompute, micro-batch 4 on A100s: the forward's
 * transient copies of every saved tensor no longer add to the backward's
 * rebuilt ones). */
static void test_recompute_working_set_not_in_forward(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 8\n"
                           "parallel: {dp: 8, zero: 1}\nbatch: {global: 32, micro: 4, seq: 2048}\n"
                           "recompute: full\nprecision: bf16-mixed\noptimizer: adamw\n");
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
    ws_bytes w;
    ws_compute(&s->model.cfg, &s->cfg, false, &w);
    const eval_stage *h = &r.heavy;
    assert_true(h->act_working > 0);
    assert_true(w.layer_fwd > w.layer_bwd); /* full recompute: the forward's copies win */
    const int64_t bwd = w.layer_bwd, fwd = ws_stage_other_ops(&w, true, 24, true);
    int64_t other = w.layer_fwd; /* every op but a layer's backward, by hand */
    const int64_t ops[4] = {w.embed_fwd, w.embed_bwd, w.head_fwd, w.head_bwd};
    for (int i = 0; i < 4; i++) other = ops[i] > other ? ops[i] : other;
    assert_int_equal(fwd, other);
    /* no ZeRO receive buffer or optimizer copy exceeds it here */
    const int64_t want = bwd > fwd - h->act_working ? bwd : fwd - h->act_working;
    assert_int_equal(h->buf_temps, want);
    assert_true(h->act_saved + h->act_working + h->buf_temps < h->act_saved + h->act_working + fwd);
    free(s);
}

/* DeepSeek-V3's published layout (plans/deepseek-v3-2048xh800.yaml; DeepSeek-V3
 * §3.2: pp 16, ep 64, ZeRO-1, dp 128, tp 1 on 2,048 H800s) is valid and fits
 * in 80 GB, with memory per category (docs/memory.md §10). A middle stage
 * holds 4 MoE layers: per layer, by hand, MLA 187,105,280 weights + 2,048
 * latent-norm and 2 x 7,168 norm weights, the router 256 x 7,168 + 256 bias,
 * one shared expert 3 x 7,168 x 2,048 = 44,040,192: 232,997,120 elements
 * sharded over dp = 128; and 256/64 = 4 routed experts of 44,040,192,
 * sharded over edp = 128/64 = 2. The ep all-to-all: 4,096 tokens x top-8
 * copies of 7,168 bf16 per micro-batch, over 8 nodes of 8 ranks with at most
 * 4 nodes per token. */
/* ZeRO-3 of a MoE model (docs/memory.md §10), Qwen3-30B-A3B on 8 H100s,
 * by hand. A MoE layer's dense part: q 2,048 x 4,096, k and v 2,048 x 512
 * each, o 4,096 x 2,048, q/k norms 2 x 128, two norms of 2,048 and the router
 * 2,048 x 128: 19,140,864. The edge: the embedding, or the final norm and
 * the untied head, 2,048 + 151,936 x 2,048 = 311,166,976. With ep 2 (edp 4)
 * a unit also gathers the rank's 64 experts, 64 x 3 x 2,048 x 768 =
 * 301,989,888: 321,130,752 elements, 2 gathered (bf16) and one gradient
 * unit: 6 bytes each. With ep 8 (edp 1) the experts stay resident: the edge
 * is the largest unit. With reshard_after_forward false the stage's dense
 * part stays gathered: 48 x 19,140,864 + 311,164,928 + 311,166,976 =
 * 1,541,093,376 x 2 bytes, plus the edge's gradients. */
static void test_moe_zero3_buffers(void **state) {
    (void)state;
    static const char *const base =
        "model: qwen3-30b-a3b\ncluster: dgx-h100\ngpus: 8\n"
        "batch: {global: 64, micro: 1, seq: 4096}\nrecompute: full\nprecision: bf16-mixed\n";
    char text[512];
    const char *parallel[3] = {"parallel: {dp: 8, ep: 2, zero: 3}\n",
                               "parallel: {dp: 8, ep: 8, zero: 3}\n",
                               "parallel: {dp: 8, ep: 8, zero: 3}\nzero3: {reshard_after_forward: false}\n"};
    const int64_t expect[3] = {(19140864LL + 301989888LL) * 6, 311166976LL * 6,
                               1541093376LL * 2 + 311166976LL * 2};
    for (int i = 0; i < 3; i++) {
        snprintf(text, sizeof text, "%s%s", base, parallel[i]);
        plan_spec *s = tu_plan(text);
        eval_result r;
        eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
        assert_int_equal(r.heavy.buf_zero3, expect[i]);
        free(s);
    }
}

static void test_moe_deepseek_v3_layout(void **state) {
    (void)state;
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_non_null(s);
    if (plan_load("plans/deepseek-v3-2048xh800.yaml", NULL, 0, s, &err)) fail_msg("%s", err.msg);
    const plan_cfg *p = &s->cfg;
    assert_int_equal(p->ep, 64);
    assert_int_equal(p->pp * p->dp * p->tp * p->cp, 2048);
    eval_stage *st = calloc(16, sizeof *st);
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, p, &r, st);
    assert_true(r.fits);
    assert_true(r.heavy.total <= 80LL * 1000 * 1000 * 1000);
    const int64_t dense = 187105280LL + 2048 + 2 * 7168 + 256 * 7168 + 256 + 44040192LL;
    const int64_t expert = 3LL * 7168 * 2048;
    assert_int_equal(st[1].moe_layers, 4);
    assert_int_equal(st[1].dense_layers, 0);
    assert_int_equal(st[1].expert_elems, 4 * 4 * expert);
    assert_int_equal(st[1].param_elems, 4 * dense + 4 * 4 * expert);
    assert_int_equal(st[1].params, (4 * dense + 4 * 4 * expert) * 2);
    assert_int_equal(st[1].grads, (4 * dense + 4 * 4 * expert) * 2);
    const int64_t shard = (4 * dense + 127) / 128 + 4 * 4 * expert / 2;
    assert_int_equal(st[1].master, shard * 4);
    assert_int_equal(st[1].optimizer, shard * 8);
    /* stage 0: the 3 dense layers and the embedding, no experts */
    assert_int_equal(st[0].dense_layers, 3);
    assert_int_equal(st[0].expert_elems, 0);
    /* the last stage: 2 MoE layers and the MTP module's MoE layer; the final
     * norm, the head and, for the MTP module, a copy of the word embedding
     * (129,280 x 7,168 = 926,679,040 each); the module's own norms (3 x 7,168)
     * and projection (2 x 7,168^2) */
    assert_int_equal(st[15].moe_layers, 3);
    assert_int_equal(st[15].param_elems, 7168 + 2 * 926679040LL + 3 * dense + 3 * 7168 +
                                             2LL * 7168 * 7168 + 3 * 4 * expert);
    /* every category is in the total */
    for (int i = 0; i < 16; i++)
        assert_int_equal(st[i].total, st[i].params + st[i].grads + st[i].master +
                                          st[i].optimizer + st[i].activations + st[i].other);
    /* the all-to-all rows of the heaviest stage: per micro-batch and MoE layer
     * 2 forward and 4 backward calls (full recompute replays the forward's) */
    const double d = 4 * (1 - pow(0.75, 8)); /* distinct nodes per token, of M = 4 */
    const int64_t inter = llround(4096 * d * 7 / 8 * 7168 * 2);
    const int64_t intra = llround(4096.0 * 8 * 7 / 8 * 7168 * 2);
    int64_t calls = 0;
    for (int i = 0; i < r.comm.n; i++) {
        const comm_entry *e = &r.comm.e[i];
        if (e->group != GROUP_EP) continue;
        assert_int_equal(e->coll, COLL_ALL_TO_ALL);
        assert_int_equal(e->bytes_per_call, 4096LL * 8 * 7168 * 2);
        assert_int_equal(e->bytes_sent, e->calls * (inter + intra));
        calls += e->calls;
    }
    const int64_t moe_layers = st[r.heaviest].moe_layers;
    assert_int_equal(calls, 120 * moe_layers * (2 + 4));
    /* on the critical path under 1F1B: exposed, none hidden */
    assert_true(r.time.exposed[GROUP_EP] > 0);
    assert_true(r.time.hidden[GROUP_EP] == 0);
    free(st);
    free(s);
}

/* The same layout under DualPipe (docs/memory.md §4 "DualPipe: activations and
 * queued W's"), middle rank 7 (h = 7, P = 8; chunks of 4 MoE layers, stages 7
 * and 8 of the split). Without recomputation the peak is step 4's: 9 sets of
 * chunk 0 and 8 of chunk 1 (68 layer sets), nothing queued, so no stash in the
 * op temporaries. Under full recompute a set keeps only the layer input while
 * a queued W keeps its linears' inputs and output gradients: the peak is
 * step 6's end, 8 chunk-micro-batches queued (32 MoE layers) and no set. By
 * hand per MoE layer (T = 4,096, 32,768 rows, h 7,168, f_e 2,048, one shared
 * expert, 256 experts, bf16): inputs MLA 209,715,200 (test_act.c) + 2 x
 * (4,096 x 7,168 + 32,768 x 9,216 + 4,096 x 2,048) = 889,192,448; gradients
 * MLA 545,783,808 + 2 x (4,096 x 256 + 32,768 x 11,264 + 4,096 x 11,264) =
 * 1,378,353,152. */
static void test_moe_deepseek_v3_dualpipe(void **state) {
    (void)state;
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_non_null(s);
    if (plan_load("plans/deepseek-v3-2048xh800.yaml", NULL, 0, s, &err)) fail_msg("%s", err.msg);
    plan_cfg p = s->cfg;
    p.schedule = SCHED_DUALPIPE;
    p.recompute = RECOMPUTE_NONE;
    assert_int_equal(plan_check_cfg(&s->model.cfg, &s->cluster.cfg, &p), PLAN_OK);
    eval_stage *st = calloc(16, sizeof *st), *full = calloc(16, sizeof *st);
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &p, &r, st);
    model_cfg attn = s->model.cfg;
    attn.ffn_hidden = 0;
    act_bytes aa;
    act_compute(&attn, &p, &aa);
    moe_layout l;
    moe_layout_compute(&s->model.cfg, &p, 8, &l);
    const int64_t moe_saved = aa.layer_saved + moe_act_mlp_bytes(&s->model.cfg, &p, &l);
    assert_int_equal(st[7].act_saved, (9 * 4 + 8 * 4) * moe_saved);
    p.recompute = RECOMPUTE_FULL;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &p, &r, full);
    assert_int_equal(full[7].act_saved, 32 * 889192448LL);
    /* the queued output gradients are the op temporaries' growth over the
     * step-4 peak's (the layers' own working sets are the same here) */
    assert_int_equal(full[7].buf_temps - st[7].buf_temps, 32 * 1378353152LL);
    free(st);
    free(full);
    free(s);
}

/* Zero-bubble (not DualPipe) on DeepSeek-V3 (docs/memory.md §6 "Zero-bubble's
 * stash"): stage s keeps min(s + 1, m) micro-batches' GEMM output gradients
 * from B to W, each MoE layer's at its own widths. Stages 1-14 hold 4 MoE
 * layers each (first_stage_layers 3, last 2), so stage 7 holds one set more
 * than stage 6. Per token, bf16 gradients (2 bytes): MLA's q_a 1536, q_b
 * 128 x 192, kv_a 512 + 64, kv_b 128 x 256, o 7168 = 66,624; the router's
 * logits 256; the shared expert's w1/w3 and w2 outputs 2 x 2048 + 7168 =
 * 11,264; and per routed row (8 x 4096 rows, dropless, imbalance 1) the
 * same 11,264. (Before: every layer at the dense layer's 2h + 2f + q + 2kv
 * = 124,928 per token, q = kv = 128 x 192, and no routed rows.) */
static void test_moe_zero_bubble_stash(void **state) {
    (void)state;
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_non_null(s);
    if (plan_load("plans/deepseek-v3-2048xh800.yaml", NULL, 0, s, &err)) fail_msg("%s", err.msg);
    plan_cfg p = s->cfg;
    p.schedule = SCHED_ZERO_BUBBLE;
    assert_int_equal(plan_check_cfg(&s->model.cfg, &s->cluster.cfg, &p), PLAN_OK);
    eval_stage *st = calloc(16, sizeof *st);
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &p, &r, st);
    assert_int_equal(st[6].moe_layers, 4);
    assert_int_equal(st[7].moe_layers, 4);
    assert_int_equal(st[7].dense_layers, 0);
    const int64_t layer = 2 * (4096LL * (66624 + 256 + 11264) + 8 * 4096LL * 11264);
    assert_int_equal(layer, 1378353152LL);
    assert_int_equal(st[7].buf_temps - st[6].buf_temps, 4 * layer);
    free(st);
    free(s);
}


/* ---- Logit distillation (docs/distillation.md "Planner") ----
 * The student tiny-1m (4 layers, h 128, vocab 256) on 2 ranks of local-cpu,
 * the teacher tiny-50m (8 layers, h 768, 12 heads of 64, kv_heads 4, ffn 2048,
 * SwiGLU, untied, vocab 256) in f32; micro 4 x seq 256: N = 1024 tokens. */
static plan_spec *distill_plan(const char *parallel, const char *distill) {
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "model: tiny-1m\ncluster: local-cpu\nparallel: %s\n"
             "batch: {global: 16, micro: 4, seq: 256}\nprecision: fp32\noptimizer: adamw\n%s%s\n",
             parallel, distill ? "distill: " : "", distill ? distill : "");
    return tu_plan(buf);
}

static void test_distill_shared(void **state) {
    (void)state;
    plan_spec *plain = distill_plan("{dp: 2}", NULL);
    plan_spec *s = distill_plan("{dp: 2}", "{teacher: tiny-50m, weights: f32}");
    eval_result a, r;
    eval_plan_spec(plain, &a, NULL);
    eval_plan_spec(s, &r, NULL);
    const eval_stage *h = &r.heavy;
    assert_true(r.distill.set && !a.distill.set);
    /* teacher weights, f32: 50,737,920 parameters x 4 B (tiny-50m.yaml's count) */
    assert_int_equal(h->teacher_weights, 50737920LL * 4);
    /* its forward for N = 1024 tokens (docs/memory.md §8 activations): per token
     * 4 B x (3h + 2q + 2 kv_heads d + 2f) = 4 (2304 + 1536 + 512 + 4096) = 33,792 B,
     * and the fp32 logits 1024 x 256 x 4 = 1 MiB */
    assert_int_equal(h->teacher_forward, 1024LL * 33792 + 1024LL * 256 * 4);
    assert_int_equal(h->teacher_forward, 35651584);
    /* KD saved tensors of the one micro-batch in flight: qs and qt, 2 x 1024 x 256 x 4 B */
    assert_int_equal(h->kd_saved, 2LL * 1024 * 256 * 4);
    assert_int_equal(r.distill.kd_per_micro, 2097152);
    /* all three on top of the plain plan's total (no fragmentation on local-cpu) */
    assert_int_equal(h->total - a.heavy.total, h->teacher_weights + h->teacher_forward + h->kd_saved);
    /* teacher FLOPs: per token 2 x (8 layers x (768^2 + 2 x 768 x 256 + 768^2 + 3 x 768 x
     * 2048) + 256 x 768) = 2 x 50,528,256 = 101,056,512, plus the attention forward
     * 8 x 4 x 256 x 768 = 6,291,456: 107,347,968 x 4096 tokens per step */
    assert_float_equal(r.distill.flops_teacher_per_step, 107347968.0 * 4096, 1);
    /* as executed (HFU): flash attention computes the causal half of the
     * square, 101,056,512 + 6,291,456 / 2 = 104,202,240 per token */
    assert_float_equal(r.distill.flops_teacher_hardware_per_step, 104202240.0 * 4096, 1);
    /* MFU stays on the student's FLOPs; HFU adds the teacher's */
    assert_float_equal(r.flops_model_per_step, a.flops_model_per_step, 0);
    assert_float_equal(r.flops_hardware_per_step,
                        a.flops_hardware_per_step + r.distill.flops_teacher_hardware_per_step, 1);
    const double peak = 100e9 * 2; /* local-cpu fp32 peak x 2 ranks */
    assert_float_equal(r.time.mfu, r.flops_model_per_step / (r.time.step * peak), 1e-9);
    assert_float_equal(r.time.hfu, r.flops_hardware_per_step / (r.time.step * peak), 1e-9);
    /* time: the teacher's forward joins each micro-batch's forward, and its
     * forward is its layers' plus the embedding's and the head's (kernel_time) */
    kt_part layer, first, last;
    kt_layer(&s->teacher.cfg, &s->cluster.cfg, &s->cfg, &layer);
    kt_first(&s->teacher.cfg, &s->cluster.cfg, &s->cfg, &first);
    kt_last(&s->teacher.cfg, &s->cluster.cfg, &s->cfg, &last);
    assert_float_equal(h->teacher_fwd_s, 8 * layer.fwd + first.fwd + last.fwd, 1e-9);
    assert_float_equal(h->time.f, a.heavy.time.f + h->teacher_fwd_s, 1e-9);
    assert_true(r.time.step > a.time.step);
    free(plain);
    free(s);
}

/* top_k keeps the teacher's k (index, value) pairs: 8 B each instead of the
 * 4 B x ceil(V/tp) of qt; qs stays. */
static void test_distill_top_k(void **state) {
    (void)state;
    plan_spec *all = distill_plan("{dp: 2}", "{teacher: tiny-50m, weights: f32}");
    plan_spec *k8 = distill_plan("{dp: 2}", "{teacher: tiny-50m, weights: f32, top_k: 8}");
    eval_result a, r;
    eval_plan_spec(all, &a, NULL);
    eval_plan_spec(k8, &r, NULL);
    /* qs 1024 x 256 x 4 = 1 MiB; top-8: 1024 x 8 x 8 = 64 KiB */
    assert_int_equal(r.distill.kd_per_micro, 1048576 + 65536);
    /* the saving: 1024 x (256 x 4 - 8 x 8) = 983,040 B per micro-batch */
    assert_int_equal(r.distill.topk_saving, 983040);
    assert_int_equal(a.heavy.total - r.heavy.total, 983040);
    free(all);
    free(k8);
}

/* The KD loss's tensor-parallel collectives in a head forward (runtime/rt_tp.c): tp 2,
 * N = 4 x 256 = 1024 tokens per rank, ceil(256 / 2) = 128 vocabulary rows each.
 * Full distribution: the teacher's max and sum, the student's max, sum and KL, 5
 * all-reduces of 1024 x 4 B; top-8: the teacher's rows all-gathered (S = 1024 x 128 x
 * 2 x 4 B = 1 MiB) and the student's 3; alpha 1: the teacher's part only. */
static void test_distill_tp_calls(void **state) {
    (void)state;
    const struct {
        const char *distill;
        int n;
        comm_tp_call want[2];
    } c[] = {
        {"{teacher: tiny-50m, weights: f32, alpha: 0.5}", 1, {{COLL_ALL_REDUCE, 5, 4096}}},
        {"{teacher: tiny-50m, weights: f32, top_k: 8}", 2,
         {{COLL_ALL_GATHER, 1, 1048576}, {COLL_ALL_REDUCE, 3, 4096}}},
        {"{teacher: tiny-50m, weights: f32, alpha: 1}", 1, {{COLL_ALL_REDUCE, 2, 4096}}},
    };
    for (size_t k = 0; k < sizeof c / sizeof *c; k++) {
        plan_spec *s = distill_plan("{dp: 1, tp: 2}", c[k].distill);
        comm_tp_call got[2];
        assert_int_equal(distill_tp_calls(&s->model.cfg, &s->cfg, got), c[k].n);
        for (int j = 0; j < c[k].n; j++) {
            assert_int_equal(got[j].coll, c[k].want[j].coll);
            assert_int_equal(got[j].calls, c[k].want[j].calls);
            assert_int_equal(got[j].bytes_per_call, c[k].want[j].bytes_per_call);
        }
        free(s);
    }
    plan_spec *s = distill_plan("{dp: 2}", "{teacher: tiny-50m, weights: f32}");
    comm_tp_call got[2];
    assert_int_equal(distill_tp_calls(&s->model.cfg, &s->cfg, got), 0); /* tp 1: none */
    free(s);
}

/* shared under pp = 2: each stage holds 4 of the teacher's 8 layers, the
 * first the embedding, the last the head; the logits and the KD tensors
 * only on the last stage. */
static void test_distill_pp(void **state) {
    (void)state;
    plan_spec *s = distill_plan("{dp: 1, pp: 2}", "{teacher: tiny-50m, weights: f32}");
    eval_stage st[2];
    eval_result r;
    eval_plan_spec(s, &r, st);
    /* a layer: 6,291,456 matmul weights + 2 norms of 768 = 6,292,992 x 4 B =
     * 25,171,968 B; the vocabulary matrix 256 x 768 x 4 = 786,432 B; the final
     * norm's 768 x 4 = 3,072 B stays on every stage (docs/distillation.md) */
    const int64_t stage_w = 4 * 25171968LL + 786432 + 3072;
    assert_int_equal(st[0].teacher_weights, stage_w);
    assert_int_equal(st[1].teacher_weights, stage_w);
    assert_int_equal(st[0].teacher_forward, 1024LL * 33792);
    assert_int_equal(st[1].teacher_forward, 1024LL * 33792 + 1024LL * 256 * 4);
    assert_int_equal(st[0].kd_saved, 0);
    assert_int_equal(st[1].kd_saved, 2097152); /* the last stage: one micro-batch in flight */
    /* the forward time: 4 layers on each stage, the embedding on the first, the head on the last */
    kt_part layer, first, last;
    kt_layer(&s->teacher.cfg, &s->cluster.cfg, &s->cfg, &layer);
    kt_first(&s->teacher.cfg, &s->cluster.cfg, &s->cfg, &first);
    kt_last(&s->teacher.cfg, &s->cluster.cfg, &s->cfg, &last);
    assert_float_equal(st[0].teacher_fwd_s, 4 * layer.fwd + first.fwd, 1e-9);
    assert_float_equal(st[1].teacher_fwd_s, 4 * layer.fwd + last.fwd, 1e-9);
    free(s);
}

/* separate: the teacher on 4 GPUs of its own (tp 4, the largest that divides 4
 * and splits tiny-50m: 12 heads, 4 kv heads, ffn 2048), the step the longest
 * of the student's, the teacher's and the transfer. */
static void test_distill_separate(void **state) {
    (void)state;
    plan_spec *plain = distill_plan("{dp: 2}", NULL);
    plan_spec *s = distill_plan("{dp: 2}", "{teacher: tiny-50m, weights: f32, placement: separate, "
                                           "gpus: 4}");
    eval_result a, r;
    eval_plan_spec(plain, &a, NULL);
    eval_plan_spec(s, &r, NULL);
    const eval_distill *d = &r.distill;
    assert_int_equal(d->layout.tp, 4);
    assert_int_equal(d->layout.dp, 1);
    assert_int_equal(d->layout.tokens, 1024);
    /* nothing of the teacher on the student's GPUs but the KD tensors */
    assert_int_equal(r.heavy.teacher_weights, 0);
    assert_int_equal(r.heavy.teacher_forward, 0);
    assert_int_equal(r.heavy.total - a.heavy.total, 2097152);
    /* a teacher GPU: 8 x 6,291,456 / 4 linear weights, 8 x 2 x 768 norms, the
     * embedding and head 64 x 768 each (256 / 4 rows), the final norm 768:
     * 12,694,272 x 4 B */
    assert_int_equal(d->teacher_weights, 12694272LL * 4);
    /* its forward at tp 4: 4 B x (2304 + 1536/4 x 2 + 1 x 64 x 2 + 4096/4) per token... */
    assert_int_equal(d->teacher_forward, 1024LL * 4 * (3 * 768 + 2 * 192 + 2 * 64 + 2 * 512) +
                                             1024LL * 64 * 4);
    assert_int_equal(d->teacher_total, d->teacher_weights + d->teacher_forward + (32LL << 20));
    assert_true(d->teacher_fits);
    /* transfer: 4096 tokens x 256 x 4 B = 4 MiB, over min(4 teacher GPUs, 2
     * student ranks) = 2 streams of 2 MiB on the intra-node link (2 + 4 GPUs <=
     * 8 per node): 1 us + 2 MiB / (5 GB/s x its efficiency) */
    assert_float_equal(d->transfer_bytes_per_step, 4194304.0, 0);
    assert_false(d->inter_node);
    const cluster_cfg *c = &s->cluster.cfg;
    assert_float_equal(d->transfer_s,
                        c->intra_latency_s + 2097152.0 / (c->intra_bytes_per_s * c->eff.intra),
                        1e-12);
    /* the teacher's step: ceil(16 / (4 x 1)) = 4 forwards of its 8 layers at tp 4 */
    assert_int_equal(d->teacher_micro_batches, 4);
    plan_cfg q;
    distill_teacher_plan(&s->teacher.cfg, c, &s->cfg, &q);
    assert_int_equal(q.tp, 4);
    assert_int_equal(q.cp, 1);
    kt_part layer, first, last;
    kt_layer(&s->teacher.cfg, c, &q, &layer);
    kt_first(&s->teacher.cfg, c, &q, &first);
    kt_last(&s->teacher.cfg, c, &q, &last);
    assert_true(d->teacher_s > 4 * (8 * layer.fwd + first.fwd + last.fwd)); /* + its tp all-reduces */
    /* the step: the longest of the three; what passes the student's is exposed */
    assert_float_equal(d->student_step_s, a.time.step, 1e-9);
    const double step = fmax(a.time.step, fmax(d->teacher_s, d->transfer_s));
    assert_float_equal(r.time.step, step, 1e-9);
    assert_float_equal(d->exposed_s, step - a.time.step, 1e-9);
    /* MFU on the student's FLOPs and GPUs; HFU with the teacher's over both groups */
    assert_float_equal(r.time.mfu, a.flops_model_per_step / (step * 100e9 * 2), 1e-9);
    assert_float_equal(r.time.hfu, (a.flops_hardware_per_step + d->flops_teacher_hardware_per_step) /
                                        (step * 100e9 * 6), 1e-9);
    /* top-k: 4096 x 8 pairs x 8 B to each of the student's tp = 1 ranks */
    s->cfg.distill.top_k = 8;
    eval_plan_spec(s, &r, NULL);
    assert_float_equal(r.distill.transfer_bytes_per_step, 4096.0 * 8 * 8, 0);
    /* the plan fits only where the teacher's GPUs fit too: one teacher GPU (tp 1)
     * holds 193.55 MiB of weights, more than the student's total */
    s->cfg.distill.top_k = 0;
    s->cfg.distill.gpus = 1;
    eval_plan_spec(s, &r, NULL);
    assert_int_equal(r.distill.layout.tp, 1);
    assert_int_equal(r.distill.teacher_weights, 50737920LL * 4);
    s->cluster.cfg.gpu_memory_bytes = 200LL << 20;
    eval_plan_spec(s, &r, NULL);
    assert_true(r.heavy.total <= r.capacity_bytes);
    assert_false(r.distill.teacher_fits);
    assert_false(r.fits);
    s->cluster.cfg.gpu_memory_bytes = 3LL << 30;
    s->cfg.distill.gpus = 4;
    /* across nodes: the NIC, at 1 GB/s x its efficiency */
    s->cfg.distill.top_k = 0;
    s->cluster.cfg.gpus_per_node = 4, s->cluster.cfg.nodes = 2;
    eval_plan_spec(s, &r, NULL);
    assert_true(r.distill.inter_node);
    assert_float_equal(r.distill.transfer_s,
                        c->inter_latency_s + 2097152.0 / (c->inter_bytes_per_s * c->eff.inter),
                        1e-12);
    free(plain);
    free(s);
}

/* The teacher's own weight scheme (quantized included): infer's bytes. */
static void test_distill_quantized_teacher(void **state) {
    (void)state;
    plan_spec *s = distill_plan("{dp: 2}", "{teacher: tiny-50m, weights: int8-row}");
    eval_result r;
    eval_plan_spec(s, &r, NULL);
    /* int8-row: the linear weights 1 B each + an fp32 scale per output row
     * (8 x (768 + 256 + 256 + 768 + 2048 + 2048 + 768) rows = 8 x 6,912);
     * the rest (norms, embedding, head: 8 x 1,536 + 2 x 196,608 + 768) in
     * bf16 (docs/memory.md §8) */
    const int64_t linear = 8 * 6291456LL, rows = 8 * 6912LL, rest = 8 * 1536 + 2 * 196608 + 768;
    assert_int_equal(r.heavy.teacher_weights, linear + 4 * rows + 2 * rest);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sums_and_defaults), cmocka_unit_test(test_recompute_working_set_not_in_forward),   cmocka_unit_test(test_zero3_buffers),
        cmocka_unit_test(test_fragmentation_and_fit), cmocka_unit_test(test_offload_activations),
        cmocka_unit_test(test_cp_ring),           cmocka_unit_test(test_deallocate_outputs),
        cmocka_unit_test(test_size_bound_dominates),
        cmocka_unit_test(test_moe_deepseek_v3_layout),
        cmocka_unit_test(test_moe_deepseek_v3_dualpipe),
        cmocka_unit_test(test_moe_zero_bubble_stash),
        cmocka_unit_test(test_moe_zero3_buffers),
        cmocka_unit_test(test_distill_shared), cmocka_unit_test(test_distill_top_k), cmocka_unit_test(test_distill_tp_calls),
        cmocka_unit_test(test_distill_pp), cmocka_unit_test(test_distill_separate),
        cmocka_unit_test(test_distill_quantized_teacher),
        cmocka_unit_test(test_framework_memory), cmocka_unit_test(test_framework_kernels), cmocka_unit_test(test_framework_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
