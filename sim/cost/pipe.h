/* pipe.h — pipeline stages: which layers each holds, and how many
 * micro-batches' activations each keeps at its peak (docs/memory.md §4).
 *
 * Peak in-flight counts follow the schedules as Megatron-LM implements them:
 * AFAB (GPipe) keeps all m micro-batches; 1F1B keeps min(p - stage, m);
 * interleaved 1F1B with v chunks keeps min(2(p - stage - 1) + (v - 1)p + 1, m v)
 * chunk-micro-batches of L/(p v) layers (Narayanan et al. 2021 §2.2; Megatron's
 * num_warmup_microbatches + 1); where a stage's chunks hold different layer
 * counts (account_for_embedding/loss), the peak in layers is found by walking
 * the stage's op order (pipe_sched.c's). ZB-H1 zero-bubble keeps a layer's activations
 * from its F until its weight part W, which on stage s runs s places behind its
 * input part B (pipe_sched.c): min(p, m) on every stage, where 1F1B frees them
 * at B with min(p - stage, m) live (Qi et al. 2023 Table 1: the same peak as
 * 1F1B on stage 0 only); its embedding and head run whole in B and keep the
 * 1F1B counts. With pp = 1 one micro-batch is live at a time (gradient
 * accumulation runs them one after another).
 *
 * DualPipe (DeepSeek-V3 §3.2.1; deepseek-ai/DualPipe dualpipe.py): rank s holds
 * two chunks, stage s of the pipeline fed from rank 0 (chunk 0) and stage
 * pp-1-s of the one fed from rank pp-1 (chunk 1), each as the layer split
 * gives that stage; half the micro-batches go each way. Walking dualpipe.py's
 * op order, every rank holds pp + 1 chunk-micro-batches at its peak (the
 * README's "PP+1"): chunk 0's pp - s and chunk 1's s + 1 at once; ranks 0 and
 * pp-1 hold the embedding and the head (one per chunk). See the DualPipe block
 * below and docs/schedule.md.
 */
#ifndef PS_PIPE_H
#define PS_PIPE_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/model.h"
#include "spec/plan.h"
#include "spec/plan_check.h"

/* Layers held by pipeline stage s (all its chunks; under DualPipe stage s's
 * and stage pp-1-s's of the split). */
int64_t pipe_stage_layers(const model_cfg *m, const plan_cfg *p, int64_t stage);

/* Layers plus one slot each for the embedding / loss when
 * pipeline.account_for_embedding / account_for_loss count them (Megatron-LM's
 * account_for_*_in_pipeline_split): the count pp must divide. */
int64_t pipe_account_layers(const model_cfg *m, const plan_cfg *p);

/* Layer slots per stage under account_for_* (pipe_account_layers / pp, before
 * the embedding's or loss's slot is taken off); 0 when pp does not divide
 * them (plan_check refuses that). */
int64_t pipe_account_slots(const model_cfg *m, const plan_cfg *p);

/* With first_stage_layers / last_stage_layers: the number of middle stages
 * (those neither option sizes), and in *rest the layers left for them to share
 * in equal parts (Megatron-LM's rule; may be negative or not divide when the
 * plan is refused). */
int64_t pipe_middle_split(const model_cfg *m, const plan_cfg *p, int64_t *rest);

/* Megatron-LM's interleaved order (docs/schedule.md): the forwards stage s of
 * pp runs before its first backward, min(2(pp-s-1) + (v-1)pp, m v), and the
 * chunk its k-th forward (or backward, the mirror chunk) runs: micro-batches
 * go through the chunks in groups of pp. pipe_sched.c builds the op order
 * from them; the in-flight counts below walk the same order. */
int64_t pipe_interleaved_warmup(int64_t pp, int64_t v, int64_t mb, int64_t s);
int64_t pipe_op_chunk(int64_t pp, int64_t v, int64_t k, bool backward);

/* The layer split as Megatron-LM builds it (transformer_block.py
 * get_num_layers_to_build; docs/schedule.md "Uneven splits"), for a plan that
 * passed plan_check_cfg. A stage holds, in order of precedence:
 *  - pipeline.layers[s] when given;
 *  - first_stage_layers / last_stage_layers on stage 0 / p-1 when given, the
 *    remaining layers split evenly over the other stages;
 *  - with account_for_embedding / account_for_loss, (L + e + l) / p "layers"
 *    per stage, the embedding and the loss each taking one slot;
 *  - else L / p.
 * Each stage's count splits evenly over its v chunks (virtual stage g = chunk
 * p + stage holds the next run of layers in g order); then the embedding's
 * slot is taken from chunk 0 of stage 0 and the loss's from chunk v-1 of stage
 * p-1, which may be left with no layer (Meta's Llama 3 405B layout). */
int64_t pipe_chunk_layers(const model_cfg *m, const plan_cfg *p, int64_t stage, int64_t chunk);

/* The plan gives its own layer layout (pipeline.layers or an uneven-split
 * option): interleaved chunks then take their own times (step_time.h). */
bool pipe_layout_given(const plan_cfg *p);

/* Layers before virtual stage g (chunk-major: g = chunk p + stage). */
int64_t pipe_virtual_first_layer(const model_cfg *m, const plan_cfg *p, int64_t g);

typedef struct {
    int64_t layer_units;  /* (layer x micro-batch) activation sets held at the peak */
    int64_t inflight;     /* micro-batches (chunk-micro-batches when interleaved) live */
    int64_t first_extra;  /* micro-batches whose embedding tensors are live (stage 0) */
    int64_t last_extra;   /* micro-batches whose head/loss tensors are live (last stage) */
    int64_t stash_units;  /* zero-bubble: (layer x micro-batch) stashes of output gradients
                             live at once, from a B to its W: min(stage + 1, m) micro-batches
                             (B's run up to `stage` places ahead of the W's) of the stage's
                             layers; 0 for the other schedules (DualPipe's queued W's do not
                             coincide with its activation peak: pipe_dualpipe_peak) */
} pipe_inflight;

void pipe_stage_inflight(const model_cfg *m, const plan_cfg *p, int64_t stage,
                         pipe_inflight *out);

/* ---- DualPipe (helper dualpipe; docs/schedule.md "DualPipe") ----
 * What a stage (a pipeline rank) runs, in terms every schedule shares; for a
 * plan without pipeline.schedule: dualpipe these are today's values. */

/* Model chunks a stage holds: v interleaved, 2 DualPipe, else 1. */
static inline int64_t pipe_chunks(const plan_cfg *p) {
    return p->schedule == SCHED_DUALPIPE ? 2 : p->virtual_stages;
}

/* Micro-batches through each chunk of a stage per step: the multiplier of
 * every per-layer, per-micro-batch count over the stage's layers (comm.c,
 * step_time.c). m, or m/2 under DualPipe (half the micro-batches go each way,
 * each through one of the rank's two chunks). */
static inline int64_t pipe_stage_micro_batches(const plan_cfg *p) {
    const int64_t mb = plan_micro_batches(p);
    return p->schedule == SCHED_DUALPIPE && p->pp > 1 ? mb / 2 : mb;
}

/* The stage holds the embedding / the output head and loss: stage 0 / pp-1,
 * and under DualPipe both on both end ranks (rank 0 holds stage 0 of one
 * pipeline and stage pp-1 of the other). */
static inline bool pipe_stage_has_embedding(const plan_cfg *p, int64_t stage) {
    return stage == 0 || (p->schedule == SCHED_DUALPIPE && stage == p->pp - 1);
}
static inline bool pipe_stage_has_head(const plan_cfg *p, int64_t stage) {
    return stage == p->pp - 1 || (p->schedule == SCHED_DUALPIPE && stage == 0);
}

/* DualPipe's memory peak (docs/memory.md §4 "DualPipe: activations and queued W's").
 * dualpipe.py's zero-bubble B's (steps 3, 6, 7; utils.py WeightGradStore) queue
 * their weight-gradient closures, each of which keeps its linear's input and
 * output gradient alive until _weight_chunk pops it; autograd frees the
 * chunk-micro-batch's other saved tensors at B. So a rank holds, at each point
 * of its op order, `sets[c]` chunk-micro-batches of chunk c between F and B
 * (all their saved tensors) and `queued[c]` between a zero-bubble B and its W
 * (their linears' inputs and output gradients). The queue fills in steps 6-7,
 * when most backwards have run, and in step 3 holds one W for one op, while
 * the pp + 1 activation peak is in step 4 with nothing queued: adding the two
 * peaks overstates the rank's memory. Which moment weighs most depends on the
 * bytes of the two kinds of unit (full recompute makes a set small and a
 * queued W large), so the peak is a function of them. */
typedef struct {
    int64_t sets[2];   /* chunk-micro-batches of chunk c between F and B */
    int64_t queued[2]; /* chunk-micro-batches of chunk c whose B ran and whose W is queued */
} pipe_dual_moment;

/* The moment of rank `stage`'s DualPipe step (pp even, >= 2; any m >= 2pp:
 * the moments do not depend on m) where sum_c sets[c] set_bytes[c] +
 * queued[c] queued_bytes[c] is largest, into *at; returns that sum. Closed
 * form of the candidate moments over dualpipe.py's 8 steps, with half_rank
 * h = min(s, pp-1-s), P = pp/2 and phase f = chunk f ^ (s >= P): in phase
 * terms (a0, a1 | q0, q1) step 4's (pp-h, h+1 | 0, 0); step 3's
 * (pp-h-1, h | 0, 1) (after B1, before its W; when P-h-1 > 0); in step 6,
 * after each of its h+1 zero-bubble B's (the last h+1 of the alternating
 * B1 B0 ... sequence); in step 7 after each W + B0. Every other moment
 * holds no more of each kind than one of these (tests/test_sched.c
 * test_dualpipe_peak_walk checks it against a walk of pipe_sched.c's order). */
int64_t pipe_dualpipe_peak(int64_t pp, int64_t stage, const int64_t set_bytes[2],
                           const int64_t queued_bytes[2], pipe_dual_moment *at);

/* The hook for the MoE time model (helper moeplan): true when the schedule
 * runs a forward chunk and a backward chunk of different micro-batches
 * together (DualPipe's F&B, dualpipe.py _forward_backward_chunk), so that one
 * chunk's expert all-to-all dispatch/combine can run behind the other's
 * compute (DeepSeek-V3 §3.2.1, Figure 4). Where it holds, a stage's exposed
 * all-to-all per chunk-micro-batch may be hidden behind the paired chunk's
 * compute, at most that compute (times the cluster's overlap efficiency,
 * like every other overlap, docs/time.md §4); elsewhere all-to-all is exposed
 * unless its own overlap rule hides it. The event simulation runs the pair
 * back to back (F then B of the stage's chunk times), so hiding the
 * all-to-all in the stage's f/b times is all it takes. */
static inline bool pipe_overlaps_fwd_bwd(const plan_cfg *p) {
    return p->schedule == SCHED_DUALPIPE && p->pp > 1;
}

#endif
