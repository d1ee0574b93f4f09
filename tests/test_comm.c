/* test_comm.c — communication volume per GPU per step (docs/memory.md §5).
 * Expected values are written out from the ring algorithms' definitions
 * (nccl-tests busbw factors) and the ZeRO paper's 2Ψ/2Ψ/3Ψ. */
#include <string.h>

#include "cost/comm.h"
#include "cost/moe.h"
#include "tu.h"

static const int64_t N8B = 8030261248LL;

static void test_ring_factors(void **state) {
    (void)state;
    assert_int_equal(comm_bytes_sent(COLL_ALL_REDUCE, 4, 1000), 2 * 3 * 250);
    assert_int_equal(comm_bytes_sent(COLL_REDUCE_SCATTER, 4, 1000), 3 * 250);
    assert_int_equal(comm_bytes_sent(COLL_ALL_GATHER, 8, 800), 7 * 100);
    assert_int_equal(comm_bytes_sent(COLL_BROADCAST, 8, 800), 800);
    assert_int_equal(comm_bytes_sent(COLL_ALL_REDUCE, 1, 800), 0);
    assert_int_equal(comm_bytes_sent(COLL_ALL_REDUCE, 3, 10), 2 * 2 * 4); /* chunks of ceil(10/3) */
}

static comm_list dp_run(int zero, int64_t micro_batches) {
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.zero = zero;
    p.global_batch = 8 * micro_batches;
    comm_stage_info si = {.stage = 0, .layers = 32, .rank_params = N8B, .units = 34};
    comm_list l;
    comm_stage(&m.cfg, &p, &si, &l);
    return l;
}

/* Naive DP and ZeRO-1/2 move 2Ψ per step in 2-byte elements (7/8 each way at
 * d = 8); ZeRO-3 moves 3Ψ per micro-batch. */
static void test_dp_volumes(void **state) {
    (void)state;
    const int64_t psi_bytes = 2 * N8B, share = 7 * (psi_bytes / 8);
    assert_int_equal(dp_run(0, 1).group_bytes[GROUP_DP], 2 * share);
    assert_int_equal(dp_run(1, 1).group_bytes[GROUP_DP], 2 * share);
    assert_int_equal(dp_run(2, 1).group_bytes[GROUP_DP], 2 * share);
    assert_int_equal(dp_run(3, 1).group_bytes[GROUP_DP], 3 * share);
    /* with 4 micro-batches: DP/ZeRO-1 reduce once, ZeRO-2 reduce-scatters every
     * micro-batch, ZeRO-3 gathers and scatters every micro-batch */
    assert_int_equal(dp_run(0, 4).group_bytes[GROUP_DP], 2 * share);
    assert_int_equal(dp_run(1, 4).group_bytes[GROUP_DP], 2 * share);
    assert_int_equal(dp_run(2, 4).group_bytes[GROUP_DP], 4 * share + share);
    assert_int_equal(dp_run(3, 4).group_bytes[GROUP_DP], 4 * 3 * share);
    comm_list z3 = dp_run(3, 4);
    assert_int_equal(z3.e[0].calls, 4 * 34); /* one gather per unit per micro-batch */
}

/* TP without SP: 4 all-reduces of s*b*h per layer per micro-batch (2 forward,
 * 2 backward), plus the embedding output (first stage) and the head's input
 * gradient and 3 fp32 loss reductions (last stage). */
static void test_tp_volumes(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(1, 8, 1, 1);
    p.seq = 4096;
    p.global_batch = 2; /* m = 2 */
    comm_stage_info si = {.stage = 0, .layers = 32, .rank_params = 1, .units = 34};
    comm_list l;
    comm_stage(&m.cfg, &p, &si, &l);
    const int64_t S = 4096 * 4096 * 2, ar = 2 * 7 * (S / 8), tokens = 4096;
    const int64_t loss = 2 * 7 * ((tokens * 4 + 7) / 8);
    assert_int_equal(l.group_bytes[GROUP_TP], 2 * (4 * 32 + 2) * ar + 2 * 3 * loss);

    /* SP: each all-reduce becomes reduce-scatter + all-gather (same bytes), plus
     * the backward re-gather of the sequence-sharded q/k/v and w1 inputs, and
     * the fp32 all-reduce of the norm weights' gradients (2h per layer, h for
     * the final norm) per backward. */
    p.sp = true;
    comm_stage(&m.cfg, &p, &si, &l);
    const int64_t half = 7 * (S / 8);
    const int64_t norms = 2 * 32 * 2 * 7 * (2 * 4096 * 4 / 8) + 2 * 2 * 7 * (4096 * 4 / 8);
    assert_int_equal(l.group_bytes[GROUP_TP], 2 * (4 * 32 + 2) * 2 * half + 2 * (2 * 32 + 1) * half +
                                                  2 * 3 * loss + norms);
    /* full recompute replays the two forward collectives per layer */
    p.sp = false;
    p.recompute = RECOMPUTE_FULL;
    comm_stage(&m.cfg, &p, &si, &l);
    assert_int_equal(l.group_bytes[GROUP_TP], 2 * (6 * 32 + 2) * ar + 2 * 3 * loss);
}

/* PP: a middle stage sends m activations forward and m gradients backward;
 * interleaving multiplies by v. CP: 3 (cp-1) K/V-sized blocks per layer. */
static void test_pp_cp_volumes(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(1, 1, 4, 1);
    p.global_batch = 8;
    p.seq = 4096;
    const int64_t P = 4096 * 4096 * 2;
    comm_stage_info mid = {.stage = 1, .layers = 8, .rank_params = 1, .units = 8};
    comm_list l;
    comm_stage(&m.cfg, &p, &mid, &l);
    assert_int_equal(l.group_bytes[GROUP_PP], 2 * 8 * P);
    comm_stage_info last = {.stage = 3, .layers = 8, .rank_params = 1, .units = 9};
    comm_stage(&m.cfg, &p, &last, &l);
    assert_int_equal(l.group_bytes[GROUP_PP], 8 * P);
    p.schedule = SCHED_INTERLEAVED;
    p.virtual_stages = 2;
    comm_stage(&m.cfg, &p, &mid, &l);
    assert_int_equal(l.group_bytes[GROUP_PP], 2 * 2 * 8 * P);

    plan_cfg c = tu_cfg(1, 1, 1, 4);
    c.seq = 32768;
    comm_stage_info one = {.stage = 0, .layers = 32, .rank_params = 1, .units = 34};
    comm_stage(&m.cfg, &c, &one, &l);
    const int64_t kv_block = 2 * (32768 / 4) * 1024 * 2;
    assert_int_equal(l.group_bytes[GROUP_CP], 3 * 3 * 32 * kv_block);
}

/* CP all-gather (Llama 3 §3.3.2; TE AttnFuncWithCPAndKVAllGather): per layer
 * and micro-batch one all-gather of the cp K/V blocks forward, one again and a
 * reduce-scatter of dK/dV backward: 3 (cp-1) blocks sent per layer, the ring's
 * bytes in 3 calls instead of 3 (cp-1); full recompute adds one gather. */
static void test_cp_all_gather_volumes(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg c = tu_cfg(1, 1, 1, 4);
    c.seq = 32768;
    c.cp_algorithm = CP_ALL_GATHER;
    comm_stage_info one = {.stage = 0, .layers = 32, .rank_params = 1, .units = 34};
    comm_list l;
    comm_stage(&m.cfg, &c, &one, &l);
    const int64_t kv_block = 2 * (32768 / 4) * 1024 * 2;
    assert_int_equal(l.group_bytes[GROUP_CP], 3 * 3 * 32 * kv_block);
    int n = 0;
    for (int i = 0; i < l.n; i++) {
        if (l.e[i].group != GROUP_CP) continue;
        n++;
        assert_int_equal(l.e[i].calls, 32);
        assert_int_equal(l.e[i].bytes_per_call, 4 * kv_block);
        assert_true(l.e[i].coll == (n == 3 ? COLL_REDUCE_SCATTER : COLL_ALL_GATHER));
    }
    assert_int_equal(n, 3);
    c.recompute = RECOMPUTE_FULL;
    comm_stage(&m.cfg, &c, &one, &l);
    assert_int_equal(l.group_bytes[GROUP_CP], 4 * 3 * 32 * kv_block);
}

/* DeepSpeed's partitioned pipeline messages (pipeline.partition_messages;
 * engine.py is_pipe_partitioned): without SP a middle stage of tp 8 sends 1/8
 * of each 32 MiB message (4096 tokens x 4096 x 2 B) and all-gathers every
 * received one over tp: 7/8 of 32 MiB per message, 8 micro-batches each way. */
static void test_pp_partitioned_messages(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(1, 8, 4, 1);
    p.global_batch = 8;
    p.seq = 4096;
    const int64_t P = 4096 * 4096 * 2;
    comm_stage_info mid = {.stage = 1, .layers = 8, .rank_params = 1, .units = 8};
    comm_list a, b;
    comm_stage(&m.cfg, &p, &mid, &a);
    p.partition_messages = true;
    comm_stage(&m.cfg, &p, &mid, &b);
    assert_int_equal(a.group_bytes[GROUP_PP], 2 * 8 * P);
    assert_int_equal(b.group_bytes[GROUP_PP], 2 * 8 * (P / 8));
    assert_int_equal(b.group_bytes[GROUP_TP] - a.group_bytes[GROUP_TP], 2 * 8 * 7 * (P / 8));
    /* the first stage receives no activations: only the gradients' gathers */
    comm_stage_info first = {.stage = 0, .layers = 8, .rank_params = 1, .units = 9};
    p.partition_messages = false;
    comm_stage(&m.cfg, &p, &first, &a);
    p.partition_messages = true;
    comm_stage(&m.cfg, &p, &first, &b);
    assert_int_equal(b.group_bytes[GROUP_TP] - a.group_bytes[GROUP_TP], 8 * 7 * (P / 8));
    /* with SP the message is sequence-split already: nothing changes */
    p.sp = true;
    comm_stage(&m.cfg, &p, &mid, &b);
    p.partition_messages = false;
    comm_stage(&m.cfg, &p, &mid, &a);
    assert_int_equal(a.group_bytes[GROUP_TP], b.group_bytes[GROUP_TP]);
    assert_int_equal(a.group_bytes[GROUP_PP], b.group_bytes[GROUP_PP]);
}

/* Tied embeddings across pipeline stages: one all-reduce of the embedding
 * gradient between first and last stage (2 ranks: each sends the buffer once). */
static void test_tied_embedding_sync(void **state) {
    (void)state;
    model_spec m = tu_model("llama3.2-1b");
    plan_cfg p = tu_cfg(1, 1, 2, 1);
    comm_stage_info first = {.stage = 0, .layers = 8, .rank_params = 1, .units = 9,
                             .tied_rows_params = 128256LL * 2048};
    comm_list l;
    comm_stage(&m.cfg, &p, &first, &l);
    const int64_t P = 2048 * 2048 * 2;
    assert_int_equal(l.group_bytes[GROUP_PP], P + 2 * (128256LL * 2048 * 2) / 2);
}

/* ---- zero3: section (helper zero3; docs/time.md §4.1) ---- */

/* Units: one per layer plus embedding and head (the default and unit:
 * layer), four weight matrices per layer (unit: param), or the stage's bytes
 * in buckets (unit: bucket), at least one. */
static void test_zero3_units(void **state) {
    (void)state;
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    assert_int_equal(comm_zero3_units(&p, 32, true, true, 1000), 34);
    p.zero3.set = true;
    assert_int_equal(comm_zero3_units(&p, 32, true, true, 1000), 34);
    p.zero3.unit = ZERO3_UNIT_PARAM;
    assert_int_equal(comm_zero3_units(&p, 32, true, false, 1000), 4 * 32 + 1);
    p.zero3.unit = ZERO3_UNIT_BUCKET, p.zero3.bucket_bytes = 300;
    assert_int_equal(comm_zero3_units(&p, 32, true, true, 1000), 4); /* ceil(1000 / 300) */
    assert_int_equal(comm_zero3_units(&p, 0, false, false, 0), 1);
}

/* recompute_gather under full recompute adds a third gather per unit and
 * micro-batch (4 x Psi with the reduce-scatter); reshard_after_forward: false
 * drops the backward gather (2 x Psi). Without the section neither applies. */
static void test_zero3_gathers(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.zero = 3;
    p.global_batch = 8 * 2; /* 2 micro-batches */
    p.recompute = RECOMPUTE_FULL;
    comm_stage_info si = {.stage = 0, .layers = 32, .rank_params = N8B, .units = 34};
    const int64_t share = 7 * (2 * N8B / 8);
    comm_list l;
    p.zero3.recompute_gather = true; /* ignored: the section is not set */
    comm_stage(&m.cfg, &p, &si, &l);
    assert_int_equal(l.group_bytes[GROUP_DP], 2 * 3 * share);
    p.zero3.set = true;
    comm_stage(&m.cfg, &p, &si, &l);
    assert_int_equal(l.group_bytes[GROUP_DP], 2 * 4 * share);
    assert_string_equal(l.e[1].what, "parameters (recompute)");
    assert_int_equal(l.e[1].phase, COMM_BWD);
    assert_int_equal(l.e[1].calls, 2 * 34);
    p.recompute = RECOMPUTE_SELECTIVE; /* nothing replays the layer: no extra gather */
    comm_stage(&m.cfg, &p, &si, &l);
    assert_int_equal(l.group_bytes[GROUP_DP], 2 * 3 * share);
    p.zero3.reshard_after_forward = false;
    comm_stage(&m.cfg, &p, &si, &l);
    assert_int_equal(l.group_bytes[GROUP_DP], 2 * 2 * share);
}

/* MoE all-to-all (docs/memory.md §10), a small case by hand: hidden 512,
 * bf16 (1,024 bytes per token copy), 8 experts, top-2, one micro-batch of
 * 1,024 tokens per rank: 2,048 copies, S = 2 MiB per dispatch. */
static model_cfg small_moe(void) {
    model_spec ms = tu_model("llama3-8b");
    model_cfg m = ms.cfg;
    m.layers = 4, m.hidden = 512, m.heads = 8, m.kv_heads = 8, m.head_dim = 64;
    m.experts = 8, m.experts_per_token = 2, m.expert_ffn_hidden = 256, m.dense_layers = 1;
    m.shared_experts = 0;
    return m;
}

/* DeepEP's dispatcher (moe.dispatcher: deepep) without a node limit: a token
 * crosses the network once per other node its experts land on. ep 4 on nodes
 * of 2, k = 2: 2 (1 - 1/4) = 1.5 distinct nodes, half of them the other node:
 * 0.75 network sends per token (plain NCCL: 1 of the 2 copies, 1.0). And it
 * sends a token once per destination rank: 4 (1 - (3/4)^2) = 1.75 distinct
 * ranks per token, not 2 copies; NVLink carries those the receiving GPU does
 * not keep, 1,024 x 1.75 x 1/2 = 896 tokens. Inside one node: 1,024 x 1.75 x 3/4
 * = 1,344 tokens (the plain all-to-all 2,048 x 3/4 = 1,536). */
static void test_moe_deepep_dispatch(void **state) {
    (void)state;
    const model_cfg m = small_moe();
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.seq = 1024, p.ep = 4;
    p.moe_dispatcher = MOE_DISPATCHER_DEEPEP;
    moe_layout l;
    moe_layout_compute(&m, &p, 2, &l);
    assert_int_equal(l.a2a_inter, 768 * 1024);
    assert_int_equal(l.a2a_intra, 896 * 1024);
    assert_int_equal(l.a2a_bytes, 2048 * 1024);
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.a2a_inter, 0);
    assert_int_equal(l.a2a_intra, 1344 * 1024);
    /* one expert per token: its one copy goes to one rank either way */
    model_cfg m1 = m;
    m1.experts_per_token = 1;
    moe_layout_compute(&m1, &p, 8, &l);
    assert_int_equal(l.a2a_intra, 1024 * 3 / 4 * 1024);
    /* a node limit still bounds the nodes: M = 1 as the plain test's */
    p.moe_node_limit = 1;
    moe_layout_compute(&m, &p, 2, &l);
    assert_int_equal(l.a2a_inter, 512 * 1024);
}

/* Saved bytes of one MoE layer's MLP (moe_act_mlp_bytes), T = 1,024 tokens,
 * 8 experts, k = 2, h 512, f_e 256, SwiGLU, bf16, 2,048 rows:
 * router 1,024 x 8 x (4 + 1) + 1,024 x 2 x 4 = 49,152; permutation indices
 * 2,048 x 8 x 2 = 32,768; experts 2,048 x (512 + 512 + 256) x 2 + 2,048 x 4
 * (probabilities) = 5,251,072 (fc2's output is not kept: the probabilities
 * weight the activation). Dropping the activation's output (gelu policies,
 * Megatron's moe_act) takes 2,048 x 256 x 2 off. */
static void test_moe_act_mlp_bytes(void **state) {
    (void)state;
    const model_cfg m = small_moe();
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.seq = 1024, p.ep = 4;
    moe_layout l;
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.rows, 2048);
    assert_int_equal(moe_act_mlp_bytes(&m, &p, &l), 49152 + 32768 + 5251072);
    p.recompute = RECOMPUTE_GELU_NORM;
    assert_int_equal(moe_act_mlp_bytes(&m, &p, &l), 49152 + 32768 + 5251072 - 2048 * 256 * 2);
}

/* DualPipe's queued W of one MoE layer's MLP (moe_zb_queued_bytes), the
 * layout above (T = 1,024, 2,048 rows, h 512, f_e 256, 8 experts, bf16):
 * inputs 2 x (1,024 x 512 (the normed input of the router) + 2,048 x (512 +
 * 256) (w1/w3's, w2's)) = 4,194,304; gradients 2 x (1,024 x 8 (router
 * logits) + 2,048 x (2 x 256 + 512)) = 4,210,688. One shared expert (f_s
 * 256 on 1,024 tokens) adds w2's input 2 x 1,024 x 256 = 524,288 and the
 * gradients 2 x 1,024 x (2 x 256 + 512) = 2,097,152. */
static void test_moe_zb_queued_bytes(void **state) {
    (void)state;
    model_cfg m = small_moe();
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.seq = 1024, p.ep = 4;
    moe_layout l;
    moe_layout_compute(&m, &p, 8, &l);
    int64_t in, g;
    moe_zb_queued_bytes(&m, &p, &l, 2, &in, &g);
    assert_int_equal(in, 4194304);
    assert_int_equal(g, 4210688);
    m.shared_experts = 1;
    moe_zb_queued_bytes(&m, &p, &l, 2, &in, &g);
    assert_int_equal(in, 4194304 + 524288);
    assert_int_equal(g, 4210688 + 2097152);
}

/* ZeRO-3 of a MoE model (docs/memory.md §10), by hand: small_moe on dp 8,
 * ep 4 (edp 2), 2 micro-batches, a stage of 4 layers (1 dense, 3 MoE). The
 * rank's experts, 2 x 3 x 512 x 256 = 786,432 elements per MoE layer,
 * 2,359,296 in all (4,718,592 bf16 bytes), gather over edp 2 one unit per MoE
 * layer, forward and backward, and reduce-scatter their gradients: per
 * collective and micro-batch each rank sends half the buffer, 2,359,296 B;
 * 3 collectives x 2 micro-batches = 14,155,776 B. The dense part
 * (1,000,000 elements, 6 units) goes over dp 8: 3 x 2 x 7/8 x 2,000,000 B. */
static void test_moe_zero3_comm(void **state) {
    (void)state;
    const model_cfg m = small_moe();
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.seq = 1024, p.ep = 4, p.zero = 3;
    p.global_batch = 16;
    moe_layout l;
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.edp, 2);
    assert_int_equal(l.expert_elems, 786432);
    assert_int_equal(comm_zero3_expert_units(&p, 3, 2359296 * 2), 3);
    comm_stage_info si = {.stage = 1, .layers = 4, .rank_params = 1000000, .units = 4,
                          .expert_params = 3 * l.expert_elems, .moe_layers = 3, .moe = &l,
                          .expert_units = 3};
    comm_list cl;
    comm_stage(&m, &p, &si, &cl);
    assert_int_equal(cl.group_bytes[GROUP_EDP], 14155776);
    assert_int_equal(cl.group_bytes[GROUP_DP], 3 * 2 * 7 * 2000000 / 8);
    int found = 0;
    for (int i = 0; i < cl.n; i++) {
        const comm_entry *e = &cl.e[i];
        if (e->group != GROUP_EDP || e->coll != COLL_ALL_GATHER || e->phase != COMM_FWD) continue;
        assert_int_equal(e->calls, 2 * 3); /* one per MoE layer and micro-batch */
        assert_int_equal(e->bytes_per_call, 4718592 / 3);
        found++;
    }
    assert_int_equal(found, 1);
    /* zero3: {unit: param, reshard_after_forward: false}: the grouped up and
     * down weights per MoE layer (6 units), and no backward gather */
    p.zero3.set = true, p.zero3.unit = ZERO3_UNIT_PARAM, p.zero3.reshard_after_forward = false;
    p.zero3.prefetch = 1;
    si.expert_units = comm_zero3_expert_units(&p, 3, 4718592);
    assert_int_equal(si.expert_units, 6);
    comm_stage(&m, &p, &si, &cl);
    assert_int_equal(cl.group_bytes[GROUP_EDP], 2 * 2 * 2359296);
    for (int i = 0; i < cl.n; i++)
        if (cl.e[i].group == GROUP_EDP) assert_int_equal(cl.e[i].bytes_per_call, 786432 * 2 / 2);
    /* unit: bucket of 1 MB: ceil(4,718,592 / 1,000,000) = 5 */
    p.zero3.unit = ZERO3_UNIT_BUCKET, p.zero3.bucket_bytes = 1000000;
    assert_int_equal(comm_zero3_expert_units(&p, 3, 4718592), 5);
    /* ep = 8: edp = 1, the experts stay whole on their rank: nothing over edp */
    p.ep = 8;
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.edp, 1);
    si.expert_params = 3 * l.expert_elems;
    comm_stage(&m, &p, &si, &cl);
    assert_int_equal(cl.group_bytes[GROUP_EDP], 0);
}

/* The entry of a stage's list named `what` (NULL when absent). */
static const comm_entry *find(const comm_list *l, const char *what) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->e[i].what, what)) return &l->e[i];
    return NULL;
}

/* Review fixes, by hand (docs/memory.md §10): a capacity factor below 1 drops
 * (1 - cf) of the copies before the dispatch, so the all-to-all carries cf of
 * them and the busiest rank's time factor is relative to that; with sequence
 * parallelism a MoE layer without shared experts has no tp-split MLP, so its
 * layer adds one sequence gather/scatter (attention), not two; DualPipe's
 * twin-stage all-reduce carries the experts' gradient shard too. */
static void test_moe_review_fixes(void **state) {
    (void)state;
    model_cfg m = small_moe();
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.seq = 1024, p.ep = 4;
    moe_layout l;
    p.moe_capacity_factor = 0.5;
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.a2a_bytes, 2048 * 1024 / 2); /* 1,024 of the 2,048 copies */
    assert_float_equal(l.factor, 0.5, 1e-12);      /* the busiest rank: min(1, ep, cf) */
    assert_float_equal(l.a2a_factor, 1.0, 1e-12);  /* = the kept mean */
    p.moe_capacity_factor = 2; /* at or above 1 nothing is dropped under uniform routing */
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.a2a_bytes, 2048 * 1024);
    p.moe_capacity_factor = 0;
    /* tp 2 with SP, 2 micro-batches, a stage of 4 layers of which 3 MoE: the
     * forward's sequence gathers are 2 x (1 dense x 2 + 3 MoE x 1 + the head's 1) = 12 */
    plan_cfg q = tu_cfg(4, 2, 1, 1);
    q.sp = true, q.seq = 1024, q.global_batch = 8, q.ep = 4;
    moe_layout_compute(&m, &q, 8, &l);
    comm_stage_info si = {.stage = 0, .layers = 4, .rank_params = 1000, .units = 4,
                          .moe_layers = 3, .moe = &l};
    comm_list out;
    comm_stage(&m, &q, &si, &out);
    const comm_entry *g = find(&out, "sequence gather (forward)");
    assert_non_null(g);
    assert_int_equal(g->calls, 2 * (1 * 2 + 3 * 1 + 1));
    m.shared_experts = 1; /* a shared expert is a tp-split MLP: two halves again */
    comm_stage(&m, &q, &si, &out);
    assert_int_equal(find(&out, "sequence gather (forward)")->calls, 2 * (4 * 2 + 1));
    m.shared_experts = 0;
    /* DualPipe (pp 4, ZeRO-1 over dp 8, ep 4 so edp 2): 1,000 dense elements
     * sharded 8 ways (125) and 600 expert elements 2 ways (300), bf16 */
    plan_cfg d = tu_cfg(8, 1, 4, 1);
    d.seq = 1024, d.ep = 4, d.zero = 1, d.schedule = SCHED_DUALPIPE, d.global_batch = 64;
    moe_layout_compute(&m, &d, 8, &l);
    comm_stage_info ds = {.stage = 1, .layers = 2, .rank_params = 1000, .units = 2,
                          .expert_params = 600, .moe_layers = 2, .moe = &l};
    comm_stage(&m, &d, &ds, &out);
    const comm_entry *tw = find(&out, "DualPipe twin-stage gradients");
    assert_non_null(tw);
    assert_int_equal(tw->bytes_per_call, (125 + 300) * 2);
}

static void test_moe_all_to_all(void **state) {
    (void)state;
    const model_cfg m = small_moe();
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.seq = 1024, p.ep = 4;
    moe_layout l;
    /* one node of 8: every copy that leaves the rank crosses NVLink, 3/4 of them */
    moe_layout_compute(&m, &p, 8, &l);
    assert_int_equal(l.tokens, 1024);
    assert_int_equal(l.edp, 2);
    assert_int_equal(l.experts_per_rank, 2);
    assert_int_equal(l.a2a_bytes, 2048 * 1024);
    assert_int_equal(l.a2a_intra, 2048 * 3 / 4 * 1024);
    assert_int_equal(l.a2a_inter, 0);
    assert_int_equal(comm_bytes_sent(COLL_ALL_TO_ALL, 4, l.a2a_bytes), 3 * 512 * 1024);
    /* nodes of 2 GPUs: an ep group of 4 spans 2 nodes; 1/4 of the copies stay,
     * 1/4 go to the node's other GPU, 1/2 to the other node */
    moe_layout_compute(&m, &p, 2, &l);
    assert_int_equal(l.ep_per_node, 2);
    assert_int_equal(l.ep_nodes, 2);
    assert_int_equal(l.a2a_intra, 2048 / 4 * 1024);
    assert_int_equal(l.a2a_inter, 2048 / 2 * 1024);
    /* node-limited routing, M = 1: each token crosses IB at most once, to the
     * other node half the time (1,024 x 1/2 sends); every copy but the one
     * its receiving GPU keeps is forwarded over NVLink (2,048 x 1/2) */
    p.moe_node_limit = 1;
    moe_layout_compute(&m, &p, 2, &l);
    assert_int_equal(l.a2a_inter, 1024 / 2 * 1024);
    assert_int_equal(l.a2a_intra, 2048 / 2 * 1024);
    /* M = 2: two experts on 2 nodes touch 2 (1 - 1/4) = 1.5 distinct nodes */
    p.moe_node_limit = 2;
    moe_layout_compute(&m, &p, 2, &l);
    assert_float_equal(moe_nodes_per_token(2, 2), 1.5, 1e-12);
    assert_int_equal(l.a2a_inter, 1024 * 3 / 2 / 2 * 1024);
    /* the stage's entries: 3 MoE layers (the first is dense), 2 micro-batches,
     * forward dispatch + combine, backward their gradients (and under full
     * recompute the replayed forward's) */
    p.moe_node_limit = 0;
    p.global_batch = 16; /* 2 micro-batches per rank */
    moe_layout_compute(&m, &p, 8, &l);
    comm_stage_info si = {.stage = 0, .layers = 4, .rank_params = 1000, .units = 4,
                          .expert_params = 3 * l.expert_elems, .moe_layers = 3, .moe = &l};
    comm_list cl;
    comm_stage(&m, &p, &si, &cl);
    const int64_t per_call = 2048 * 3 / 4 * 1024;
    assert_int_equal(cl.group_bytes[GROUP_EP], (2 + 2) * 2 * 3 * per_call);
    p.recompute = RECOMPUTE_FULL;
    comm_stage(&m, &p, &si, &cl);
    assert_int_equal(cl.group_bytes[GROUP_EP], (2 + 4) * 2 * 3 * per_call);
    /* expert gradients reduce over edp = 2: an all-reduce of 2 (n-1)/n of the
     * experts' bf16 gradients (2 experts x 3 matrices 512 x 256, 3 layers) */
    p.recompute = RECOMPUTE_NONE;
    comm_stage(&m, &p, &si, &cl);
    assert_int_equal(l.expert_elems, 2 * 3 * 512 * 256);
    assert_int_equal(cl.group_bytes[GROUP_EDP], 2 * 3 * 2 * 3 * 512 * 256 * 2 / 2);
    /* a dense model has neither group */
    model_spec d = tu_model("llama3-8b");
    comm_stage_info dsi = {.stage = 0, .layers = 32, .rank_params = N8B, .units = 34};
    comm_stage(&d.cfg, &p, &dsi, &cl);
    assert_int_equal(cl.group_bytes[GROUP_EP], 0);
    assert_int_equal(cl.group_bytes[GROUP_EDP], 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_factors),  cmocka_unit_test(test_dp_volumes),
        cmocka_unit_test(test_tp_volumes),    cmocka_unit_test(test_pp_cp_volumes),
        cmocka_unit_test(test_tied_embedding_sync),
        cmocka_unit_test(test_zero3_units),   cmocka_unit_test(test_zero3_gathers),
        cmocka_unit_test(test_cp_all_gather_volumes), cmocka_unit_test(test_pp_partitioned_messages),
        cmocka_unit_test(test_moe_all_to_all), cmocka_unit_test(test_moe_review_fixes),
        cmocka_unit_test(test_moe_zero3_comm),
        cmocka_unit_test(test_moe_deepep_dispatch),
        cmocka_unit_test(test_moe_act_mlp_bytes),
        cmocka_unit_test(test_moe_zb_queued_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
