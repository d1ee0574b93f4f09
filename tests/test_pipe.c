/* test_pipe.c — stage splits, in-flight micro-batches per schedule, and the
 * heaviest stage (docs/memory.md §4). */
#include "cost/act.h"
#include "cost/comm.h"
#include "cost/pipe.h"
#include "spec/plan_check.h"
#include "time/pipe_sched.h"
#include "tu.h"

static void test_afab_and_1f1b(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b"); /* 32 layers */
    plan_cfg p = tu_cfg(1, 1, 4, 1);
    p.global_batch = 8; /* m = 8 */
    pipe_inflight in;
    for (int64_t s = 0; s < 4; s++) {
        p.schedule = SCHED_AFAB;
        pipe_stage_inflight(&m.cfg, &p, s, &in);
        assert_int_equal(in.inflight, 8);
        assert_int_equal(in.layer_units, 8 * 8);
        p.schedule = SCHED_1F1B;
        pipe_stage_inflight(&m.cfg, &p, s, &in);
        assert_int_equal(in.inflight, 4 - s); /* min(p - s, m) */
        assert_int_equal(in.first_extra, s == 0 ? 4 : 0);
        assert_int_equal(in.last_extra, s == 3 ? 1 : 0);
        assert_int_equal(in.stash_units, 0);
        p.schedule = SCHED_ZERO_BUBBLE; /* ZB-H1: layers live until W, min(p, m) */
        pipe_stage_inflight(&m.cfg, &p, s, &in);
        assert_int_equal(in.inflight, 4);
        assert_int_equal(in.layer_units, 4 * 8);
        assert_int_equal(in.first_extra, s == 0 ? 4 : 0);
        assert_int_equal(in.last_extra, s == 3 ? 1 : 0);
        assert_int_equal(in.stash_units, (s + 1) * 8);
    }
    p.global_batch = 2; /* fewer micro-batches than stages */
    p.schedule = SCHED_1F1B;
    pipe_stage_inflight(&m.cfg, &p, 0, &in);
    assert_int_equal(in.inflight, 2);
}

/* Zero-bubble against the schedule: the layer sets live until W are
 * sched_simulate's per-stage peak_until_w; the stashes, counted by walking
 * the stage's op order (a B keeps one per layer until its W), peak at
 * min(s + 1, m) micro-batches; the embedding and the head keep
 * peak_inflight (they run whole in B). */
static void test_zero_bubble_inflight(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b"); /* 32 layers */
    static const int64_t shapes[][2] = {{2, 4}, {2, 2}, {4, 8}, {4, 4}, {4, 2}, {8, 16}};
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        const int64_t pp = shapes[c][0], mb = shapes[c][1];
        plan_cfg p = tu_cfg(1, 1, pp, 1);
        p.global_batch = mb;
        p.schedule = SCHED_ZERO_BUBBLE;
        double t[PLAN_MAX_STAGES];
        for (int k = 0; k < PLAN_MAX_STAGES; k++) t[k] = 1;
        sched_in si = {.kind = SCHED_ZERO_BUBBLE, .p = pp, .m = mb, .v = 1, .t_f = t, .t_b = t};
        sched_out so;
        assert_int_equal(sched_simulate(&si, NULL, &so), 0);
        for (int64_t s = 0; s < pp; s++) {
            pipe_inflight in;
            pipe_stage_inflight(&m.cfg, &p, s, &in);
            const int64_t L = pipe_stage_layers(&m.cfg, &p, s);
            assert_int_equal(in.layer_units, so.peak_until_w[s] * L);
            assert_int_equal(in.first_extra, s == 0 ? so.peak_inflight[s] : 0);
            assert_int_equal(in.last_extra, s == pp - 1 ? so.peak_inflight[s] : 0);
            sched_op ops[3 * 16];
            assert_int_equal(sched_stage_order(&si, s, ops), 0);
            int64_t kept = 0, peak = 0;
            for (int64_t k = 0; k < 3 * mb; k++) {
                if (ops[k].kind == SCHED_OP_B) kept++;
                if (kept > peak) peak = kept;
                if (ops[k].kind == SCHED_OP_W) kept--;
            }
            assert_int_equal(in.stash_units, peak * L);
        }
    }
}

/* An independent replay of Megatron-LM's interleaved 1F1B on one pipeline
 * rank: forward k runs chunk (k / p) % v, backward k runs chunk v-1-(k/p)%v;
 * warm-up forwards, then steady steps of one forward and one backward, then
 * the remaining backwards. Returns the peak of live chunk-micro-batches, and
 * the peaks of chunk 0 and chunk v-1. */
typedef struct {
    int64_t live[64], all, total, first, last, v;
} replay;

static void replay_step(replay *r, int64_t chunk, int delta) {
    r->live[chunk] += delta;
    r->all += delta;
    if (r->all > r->total) r->total = r->all;
    if (r->live[0] > r->first) r->first = r->live[0];
    if (r->live[r->v - 1] > r->last) r->last = r->live[r->v - 1];
}

static void replay_interleaved(int64_t p, int64_t v, int64_t m, int64_t rank, int64_t *total,
                               int64_t *first_chunk, int64_t *last_chunk) {
    const int64_t n = m * v;
    int64_t warm = 2 * (p - rank - 1) + (v - 1) * p;
    if (warm > n) warm = n;
    replay r;
    memset(&r, 0, sizeof r);
    r.v = v;
    int64_t f = 0, b = 0;
    for (; f < warm; f++) replay_step(&r, (f / p) % v, +1);
    for (; f < n; f++, b++) {
        replay_step(&r, (f / p) % v, +1);
        replay_step(&r, v - 1 - (b / p) % v, -1);
    }
    for (; b < n; b++) replay_step(&r, v - 1 - (b / p) % v, -1);
    assert_int_equal(r.all, 0);
    *total = r.total;
    *first_chunk = r.first;
    *last_chunk = r.last;
}

/* Interleaved: stage 0 holds L (1 + (p-1)/(p v)) layer-activations of
 * micro-batches (Korthikanti et al. 2022 §4.2.3, after Narayanan et al. 2021),
 * and every count agrees with the replay above. */
static void test_interleaved_first_stage(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    const int64_t L = 32;
    struct {
        int64_t p, v;
    } t[] = {{4, 2}, {4, 4}, {8, 2}, {2, 8}};
    for (size_t i = 0; i < 4; i++) {
        plan_cfg p = tu_cfg(1, 1, t[i].p, 1);
        p.schedule = SCHED_INTERLEAVED;
        p.virtual_stages = t[i].v;
        p.global_batch = 4 * t[i].p; /* m = 4p: enough to reach the steady state */
        pipe_inflight in;
        pipe_stage_inflight(&m.cfg, &p, 0, &in);
        /* L (1 + (p-1)/(pv)) = (L/p) * (p v + p - 1) / v */
        int64_t expect = L * (t[i].p * t[i].v + t[i].p - 1) / (t[i].p * t[i].v);
        assert_int_equal(in.layer_units, expect);
    }
    for (int64_t pp = 2; pp <= 8; pp *= 2)
        for (int64_t v = 2; v <= 4; v++)
            for (int64_t mult = 1; mult <= 4; mult++) {
                if (32 % (pp * v)) continue;
                plan_cfg p = tu_cfg(1, 1, pp, 1);
                p.schedule = SCHED_INTERLEAVED;
                p.virtual_stages = v;
                p.global_batch = mult * pp;
                for (int64_t rank = 0; rank < pp; rank++) {
                    int64_t total, first, last;
                    replay_interleaved(pp, v, mult * pp, rank, &total, &first, &last);
                    pipe_inflight in;
                    pipe_stage_inflight(&m.cfg, &p, rank, &in);
                    assert_int_equal(in.inflight, total);
                    if (rank == 0) assert_int_equal(in.first_extra, first);
                    if (rank == pp - 1) assert_int_equal(in.last_extra, last);
                }
            }
}

static void test_uneven_split(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: llama3-405b\ncluster: dgx-h100\ngpus: 4\n"
                           "parallel: {dp: 1, pp: 4}\nbatch: {global: 8, micro: 1, seq: 4096}\n"
                           "pipeline: {layers: [30, 32, 33, 31]}\n"
                           "recompute: full\nprecision: bf16-mixed\noptimizer: adamw\n");
    int64_t expect[4] = {30, 32, 33, 31};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, i), expect[i]);
    free(s);
}

/* A plan of `model` on pp stages (dp 1, one micro-batch per stage) with `pipe` as its
 * pipeline section. */
static plan_spec *split_plan(const char *model, int pp, const char *pipe) {
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "model: %s\ncluster: dgx-h100\ngpus: %d\nparallel: {dp: 1, pp: %d}\n"
             "batch: {global: %d, micro: 1, seq: 4096}\npipeline: %s\n"
             "recompute: full\nprecision: bf16-mixed\noptimizer: adamw\n",
             model, pp, pp, pp, pipe);
    return tu_plan(yaml);
}

/* Megatron-LM's uneven splits, layer counts by hand (transformer_block.py
 * get_num_layers_to_build, transformer_layer.py get_transformer_layer_offset). */
static void test_megatron_splits(void **state) {
    (void)state;
    /* 126 layers over 16 stages, first = last = 7: (126 - 14) / 14 = 8 on each middle stage */
    plan_spec *s = split_plan("llama3-405b", 16, "{first_stage_layers: 7, last_stage_layers: 7}");
    for (int st = 0; st < 16; st++) {
        const int64_t want = st == 0 || st == 15 ? 7 : 8;
        assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, st), want);
        assert_int_equal(pipe_chunk_layers(&s->model.cfg, &s->cfg, st, 0), want);
        /* layers before stage st: 7 + 8 (st - 1) */
        assert_int_equal(pipe_virtual_first_layer(&s->model.cfg, &s->cfg, st),
                         st ? 7 + 8 * (st - 1) : 0);
    }
    free(s);
    /* only the first stage given: the other 3 share 32 - 5 = 27 */
    s = split_plan("llama3-8b", 4, "{first_stage_layers: 5}");
    assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, 0), 5);
    for (int st = 1; st < 4; st++)
        assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, st), 9);
    free(s);
    /* The NeMo / Megatron-Bridge 405B layout: pp 8, v 8, embedding and loss counted: (126 + 2)
     * / 8 = 16 slots per stage, 2 per chunk; chunk 0 of stage 0 keeps 1 layer beside the
     * embedding, chunk 7 of stage 7 1 beside the loss. */
    s = split_plan("llama3-405b", 8,
                   "{schedule: interleaved, virtual: 8, "
                   "account_for_embedding: true, account_for_loss: true}");
    int64_t total = 0;
    for (int st = 0; st < 8; st++) {
        assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, st),
                         st == 0 || st == 7 ? 15 : 16);
        for (int c = 0; c < 8; c++) {
            const int64_t n = pipe_chunk_layers(&s->model.cfg, &s->cfg, st, c);
            assert_int_equal(n, (st == 0 && c == 0) || (st == 7 && c == 7) ? 1 : 2);
            total += n;
        }
    }
    assert_int_equal(total, 126);
    /* virtual stage g = chunk 8 + stage: g 1 starts after stage 0's first chunk (1 layer),
     * g 8 (chunk 1 of stage 0) after 1 + 7 * 2 = 15, the last (g 63) after 125 */
    assert_int_equal(pipe_virtual_first_layer(&s->model.cfg, &s->cfg, 1), 1);
    assert_int_equal(pipe_virtual_first_layer(&s->model.cfg, &s->cfg, 8), 15);
    assert_int_equal(pipe_virtual_first_layer(&s->model.cfg, &s->cfg, 63), 125);
    free(s);
    /* the same layout from the shipped plan of the Megatron-Bridge H100 recipe */
    s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    if (plan_load("plans/llama3-405b-1024xh100-bridge.yaml", NULL, 0, s, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(pipe_chunk_layers(&s->model.cfg, &s->cfg, 0, 0), 1);
    assert_int_equal(pipe_chunk_layers(&s->model.cfg, &s->cfg, 3, 4), 2);
    assert_int_equal(pipe_chunk_layers(&s->model.cfg, &s->cfg, 7, 7), 1);
    free(s);
    /* Meta's Llama 3 405B (§3.3.2): 16 stages, V = 8, one slot per chunk; the first chunk of
     * stage 0 holds only the embedding, the last chunk of stage 15 only the loss */
    s = split_plan("llama3-405b", 16,
                   "{schedule: interleaved, virtual: 8, "
                   "account_for_embedding: true, account_for_loss: true}");
    for (int st = 0; st < 16; st++)
        for (int c = 0; c < 8; c++)
            assert_int_equal(pipe_chunk_layers(&s->model.cfg, &s->cfg, st, c),
                             (st == 0 && c == 0) || (st == 15 && c == 7) ? 0 : 1);
    assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, 0), 7);
    assert_int_equal(pipe_stage_layers(&s->model.cfg, &s->cfg, 15), 7);
    free(s);
    /* pipeline.layers with interleaving: [6, 10, 10, 6] over v = 2, chunks of 3, 5, 5, 3;
     * virtual stages g 0..7 start at 0, 3, 8, 13, 16, 19, 24, 29 */
    s = split_plan("llama3-8b", 4, "{schedule: interleaved, virtual: 2, layers: [6, 10, 10, 6]}");
    static const int64_t starts[8] = {0, 3, 8, 13, 16, 19, 24, 29};
    for (int g = 0; g < 8; g++) {
        assert_int_equal(pipe_virtual_first_layer(&s->model.cfg, &s->cfg, g), starts[g]);
        assert_int_equal(pipe_chunk_layers(&s->model.cfg, &s->cfg, g % 4, g / 4),
                         g % 4 == 0 || g % 4 == 3 ? 3 : 5);
    }
    free(s);
}

/* In-flight layers with uneven chunks, by walking the op order by hand: 126 layers, pp 2,
 * v 2, m 2, embedding and loss counted: 64 slots per stage, chunks of 31, 32 | 32, 31.
 * Stage 0 runs all four forwards before a backward (warm-up min(2 + 2, 4)): 31 + 31 + 32 +
 * 32 = 126. Stage 1 warms up with chunk 0's two (64), the next forward (chunk 1, 31) makes
 * 95, its backward frees 31, and so on: peak 95, not 3 x 32. */
static void test_uneven_chunk_inflight(void **state) {
    (void)state;
    plan_spec *s = split_plan("llama3-405b", 2,
                              "{schedule: interleaved, virtual: 2, "
                              "account_for_embedding: true, account_for_loss: true}");
    pipe_inflight in;
    pipe_stage_inflight(&s->model.cfg, &s->cfg, 0, &in);
    assert_int_equal(in.inflight, 4);
    assert_int_equal(in.layer_units, 126);
    pipe_stage_inflight(&s->model.cfg, &s->cfg, 1, &in);
    assert_int_equal(in.inflight, 3);
    assert_int_equal(in.layer_units, 95);
    free(s);
}

/* The reported memory is the heaviest stage's, not the average. */
static void test_heaviest_stage(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: llama3-70b\ncluster: dgx-h100\ngpus: 32\n"
                           "parallel: {dp: 1, tp: 8, pp: 4, sp: true}\n"
                           "batch: {global: 16, micro: 1, seq: 8192}\n"
                           "recompute: none\nprecision: bf16-mixed\noptimizer: adamw\n");
    eval_stage st[4];
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, st);
    int64_t max = 0, sum = 0;
    for (int i = 0; i < 4; i++) {
        sum += st[i].total;
        if (st[i].total > max) max = st[i].total;
    }
    assert_int_equal(r.heavy.total, max);
    assert_int_equal(r.heaviest, 0); /* 1F1B: stage 0 keeps p micro-batches */
    assert_true(max > sum / 4);
    /* stage 0: 4 in flight x 20 layers, stage 3: 1 x 20 */
    act_bytes ab;
    act_compute(&s->model.cfg, &s->cfg, &ab);
    assert_int_equal(st[0].act_saved, 4 * 20 * ab.layer_saved + 4 * ab.first_stage);
    assert_int_equal(st[3].act_saved, 1 * 20 * ab.layer_saved + ab.last_stage);
    free(s);
}

/* DualPipe's memory and traffic by hand (docs/schedule.md "DualPipe"): Llama 3 70B
 * (80 layers), tp 8, pp 4, 16 micro-batches. Rank s holds stage s and stage 3 - s, 20
 * layers each: a middle rank twice a 1F1B middle stage's parameters, an end rank
 * stage 0's and stage 3's together (layers, embedding, final norm and head), and so
 * twice the states; pp + 1 = 5 chunk-micro-batches of 20 layers in flight on every
 * rank, the end ranks adding the embedding of 4 and the head of 1. Per step a rank
 * runs 8 micro-batches through each of its chunks, 16 x 20 layer passes like a 1F1B
 * stage's 16 x 20: the same tensor-parallel traffic; it sends 8 + 8 activations (the
 * end ranks 8), and all-reduces its gradients with its twin rank once. */
static void test_dualpipe_memory(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: llama3-70b\ncluster: dgx-h100\ngpus: 32\n"
                           "parallel: {dp: 1, tp: 8, pp: 4, sp: true}\n"
                           "batch: {global: 16, micro: 1, seq: 8192}\n"
                           "recompute: none\nprecision: bf16-mixed\noptimizer: adamw\n");
    eval_stage one[4], dual[4];
    eval_result r1, rd;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r1, one);
    plan_cfg p = s->cfg;
    p.schedule = SCHED_DUALPIPE;
    assert_int_equal(plan_check_cfg(&s->model.cfg, &s->cluster.cfg, &p), PLAN_OK);
    eval_plan(&s->model.cfg, &s->cluster.cfg, &p, &rd, dual);
    act_bytes ab;
    act_compute(&s->model.cfg, &s->cfg, &ab);
    for (int k = 0; k < 4; k++) {
        assert_int_equal(dual[k].layers, 40);
        assert_int_equal(dual[k].inflight, 5);
        const int64_t elems = k == 0 || k == 3 ? one[0].param_elems + one[3].param_elems
                                               : 2 * one[1].param_elems;
        assert_int_equal(dual[k].param_elems, elems);
        const int64_t pair = k == 0 || k == 3 ? one[0].params + one[3].params : 2 * one[1].params;
        assert_int_equal(dual[k].params, pair);
        assert_int_equal(dual[k].optimizer,
                         k == 0 || k == 3 ? one[0].optimizer + one[3].optimizer
                                          : 2 * one[1].optimizer);
        const int64_t extra = k == 0 || k == 3 ? 4 * ab.first_stage + ab.last_stage : 0;
        assert_int_equal(dual[k].act_saved, 5 * 20 * ab.layer_saved + extra);
        assert_int_equal(dual[k].comm_bytes[GROUP_TP] > 0, 1);
    }
    /* middle ranks: the tensor-parallel traffic of a 1F1B middle stage */
    assert_int_equal(dual[1].comm_bytes[GROUP_TP], one[1].comm_bytes[GROUP_TP]);
    const int64_t P = comm_p2p_bytes(&s->model.cfg, &p);
    const int64_t gb = dtype_bytes(p.precision.grads);
    /* pp: 16 sends each way on a middle rank (8 per chunk), 8 on an end rank, plus the
     * twin all-reduce over 2 ranks: 2 (2-1)/2 S = S bytes of the rank's gradients */
    assert_int_equal(dual[1].comm_bytes[GROUP_PP], 2 * 16 * P + dual[1].param_elems * gb);
    assert_int_equal(dual[0].comm_bytes[GROUP_PP], 2 * 8 * P + dual[0].param_elems * gb);
    /* mirrored ranks hold the same; the middle ones the most zero-bubble stashes */
    for (int k = 0; k < 2; k++) assert_int_equal(dual[k].total, dual[3 - k].total);
    assert_int_equal(rd.heavy.total, dual[0].total > dual[1].total ? dual[0].total : dual[1].total);
    assert_true(pipe_overlaps_fwd_bwd(&p) && !pipe_overlaps_fwd_bwd(&s->cfg));
    assert_int_equal(pipe_stage_micro_batches(&p), 8);
    assert_int_equal(pipe_stage_micro_batches(&s->cfg), 16);
    free(s);
}

/* DualPipe over an uneven split, by hand: llama3-8b's 32 layers as [7, 9, 10, 6] over pp 4.
 * Rank 0 holds stage 0 (7) and stage 3 (6), rank 1 stages 1 (9) and 2 (10). At the peak rank
 * s holds pp - s sets of its chunk 0 and s + 1 of its chunk 1: rank 0 4 x 7 + 1 x 6 = 34
 * layer sets, rank 1 3 x 9 + 2 x 10 = 47, rank 2 2 x 10 + 3 x 9 = 47, rank 3 1 x 6 + 4 x 7
 * = 34; no zero-bubble stash at that peak (pipe_dualpipe_peak weighs the queued W's). */
static void test_dualpipe_uneven(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(1, 1, 4, 1);
    p.schedule = SCHED_DUALPIPE;
    p.global_batch = 8;
    const int32_t split[4] = {7, 9, 10, 6};
    for (int s = 0; s < 4; s++) p.stage_layers[s] = split[s];
    const int64_t layers[4] = {13, 19, 19, 13}, units[4] = {34, 47, 47, 34},
                  stash[4] = {0, 0, 0, 0};
    for (int64_t s = 0; s < 4; s++) {
        pipe_inflight in;
        pipe_stage_inflight(&m.cfg, &p, s, &in);
        assert_int_equal(pipe_stage_layers(&m.cfg, &p, s), layers[s]);
        assert_int_equal(pipe_chunk_layers(&m.cfg, &p, s, 0), split[s]);
        assert_int_equal(pipe_chunk_layers(&m.cfg, &p, s, 1), split[3 - s]);
        assert_int_equal(in.inflight, 5);
        assert_int_equal(in.layer_units, units[s]);
        assert_int_equal(in.stash_units, stash[s]);
    }
}

/* eval_plan without a stage array looks only at the first and last stage of an
 * even split: it must report what a scan of every stage reports. */
static void test_heaviest_shortcut_matches_scan(void **state) {
    (void)state;
    plan_spec *s = tu_plan("model: gpt3-175b\ncluster: dgx-a100\ngpus: 512\n"
                           "parallel: {dp: 8, tp: 8, pp: 8}\n"
                           "batch: {global: 128, micro: 1, seq: 2048}\n"
                           "recompute: none\nprecision: bf16-mixed\noptimizer: adamw\n");
    static eval_stage st[PLAN_MAX_STAGES];
    const int64_t pps[] = {3, 4, 8, 16, 32, 48, 96};
    int checked = 0;
    for (size_t i = 0; i < sizeof pps / sizeof pps[0]; i++)
        for (int sch = 0; sch < 5; sch++) /* dualpipe included */
            for (int rc = 0; rc < 3; rc++)
                for (int64_t micro = 1; micro <= 4; micro *= 2) {
                    plan_cfg p = s->cfg;
                    p.pp = pps[i];
                    p.tp = 1;
                    p.dp = 1;
                    p.gpus = p.pp;
                    p.micro_batch = micro;
                    p.global_batch = 4 * p.pp * micro;
                    p.schedule = (plan_schedule)sch;
                    p.virtual_stages = sch == SCHED_INTERLEAVED ? 2 : 1;
                    p.recompute = (plan_recompute)rc;
                    if (plan_check_cfg(&s->model.cfg, &s->cluster.cfg, &p) != PLAN_OK) continue;
                    eval_result full, quick;
                    eval_plan(&s->model.cfg, &s->cluster.cfg, &p, &full, st);
                    eval_plan(&s->model.cfg, &s->cluster.cfg, &p, &quick, NULL);
                    assert_int_equal(full.heaviest, quick.heaviest);
                    assert_memory_equal(&full.heavy, &quick.heavy, sizeof full.heavy);
                    assert_true(full.time.step == quick.time.step);
                    checked++;
                }
    assert_true(checked > 100);
    free(s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_afab_and_1f1b), cmocka_unit_test(test_zero_bubble_inflight),
        cmocka_unit_test(test_interleaved_first_stage),
        cmocka_unit_test(test_uneven_split), cmocka_unit_test(test_heaviest_stage),
        cmocka_unit_test(test_megatron_splits), cmocka_unit_test(test_uneven_chunk_inflight),
        cmocka_unit_test(test_heaviest_shortcut_matches_scan),
        cmocka_unit_test(test_dualpipe_memory), cmocka_unit_test(test_dualpipe_uneven),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
