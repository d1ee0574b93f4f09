/* comm.h — bytes each GPU sends per training step, per group and per
 * collective (docs/memory.md §5; docs/comm.md).
 *
 * A collective on n ranks over a buffer of S bytes (S = the full, unsharded
 * size, as nccl-tests reports "size") sends, per rank, with ring algorithms:
 * all-reduce 2(n-1)/n S, reduce-scatter and all-gather (n-1)/n S, broadcast and
 * reduce S — the factors nccl-tests uses for busbw. The buffer is split into
 * n equal chunks (ceil), so bytes are whole numbers.
 */
#ifndef PS_COMM_H
#define PS_COMM_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/model.h"
#include "spec/plan.h"

/* The four parallel groups, then the host link (PCIe) that offload uses,
 * then the expert layers' groups of a MoE model (cost/moe.h; docs/memory.md
 * §8): expert parallel (the all-to-all) and expert data parallel (the expert
 * weights' gradient reduction). A dense model has no traffic in the last two. */
typedef enum {
    GROUP_DP,
    GROUP_TP,
    GROUP_PP,
    GROUP_CP,
    GROUP_HOST,
    GROUP_EP,
    GROUP_EDP,
    GROUP_COUNT
} comm_group;
typedef enum {
    COLL_ALL_REDUCE,
    COLL_REDUCE_SCATTER,
    COLL_ALL_GATHER,
    COLL_BROADCAST,
    COLL_REDUCE,
    COLL_SEND,
    COLL_ALL_TO_ALL /* MoE dispatch / combine: bytes_per_call is one rank's buffer S */
} comm_coll;

/* When a collective runs (docs/time.md §4 decides what hides it). */
typedef enum {
    COMM_FWD,    /* during a micro-batch's forward */
    COMM_BWD,    /* during a micro-batch's backward */
    COMM_GRADS,  /* once per step, when the last backward has produced the gradients */
    COMM_PARAMS, /* once per step, after the optimizer (updated-parameter gather) */
    COMM_P2P     /* at a pipeline stage boundary, per micro-batch */
} comm_phase;

typedef struct {
    comm_group group;
    comm_coll coll;
    comm_phase phase;
    const char *what;       /* e.g. "gradients", "layer outputs (fwd)" */
    int64_t group_size;     /* ranks in the collective */
    int64_t calls;          /* per step */
    int64_t bytes_per_call; /* S */
    int64_t bytes_sent;     /* per GPU per step, all calls */
} comm_entry;

#define COMM_MAX_ENTRIES 32

typedef struct {
    comm_entry e[COMM_MAX_ENTRIES];
    int n;
    int64_t group_bytes[GROUP_COUNT];
} comm_list;

/* Bytes of one pipeline send: a micro-batch's activation at a stage boundary
 * (b s h in the activation dtype; / tp under SP), or its gradient. */
int64_t comm_p2p_bytes(const model_cfg *m, const plan_cfg *p);

/* Bytes one rank sends for one call. */
int64_t comm_bytes_sent(comm_coll coll, int64_t n, int64_t bytes);

typedef struct {
    int64_t stage;
    int64_t layers;        /* on this stage */
    int64_t rank_params;   /* elements held by this (stage, tp rank) before ZeRO */
    int64_t units;         /* ZeRO-3 gather units on this stage (layers + embedding/head) */
    int64_t tied_rows_params; /* elements of the word embedding shared first<->last stage */
    int64_t offload_bytes;    /* activations one micro-batch moves to the host and back */
    /* MoE (cost/moe.h): routed-expert elements this rank holds (not in
     * rank_params; ZeRO over edp), the stage's MoE layers, and the layout's
     * all-to-all volumes (NULL for a dense model) */
    int64_t expert_params;
    int64_t moe_layers;
    const struct moe_layout_s *moe;
    int64_t expert_units; /* ZeRO-3 gather units of the routed experts (comm_zero3_expert_units) */
} comm_stage_info;

void comm_stage(const model_cfg *m, const plan_cfg *p, const comm_stage_info *s, comm_list *out);

/* ZeRO-3 gather units of a stage of `layers` layers holding stage_bytes of
 * parameters (docs/time.md §4.1): without a `zero3:` section or with
 * unit: layer, one per layer plus the embedding (first stage) and the head
 * (last); unit: param, one per weight matrix (ZERO3_MATRICES_PER_LAYER per
 * layer); unit: bucket, ceil(stage_bytes / bucket). At least 1. */
int64_t comm_zero3_units(const plan_cfg *p, int64_t layers, bool first, bool last,
                         int64_t stage_bytes);

/* ZeRO-3 gather units of the routed experts of a MoE stage (docs/memory.md
 * §10 "ZeRO-3 / FSDP of a MoE model"): the rank's experts of each MoE layer
 * are gathered over edp apart from the layer's other parameters (FSDP2:
 * NeMo AutoModel fully_shard(block.mlp.experts, mesh=ep_shard_mesh);
 * torchtitan a per-parameter edp mesh inside the block's unit): one unit per
 * MoE layer; unit: param, ZERO3_EXPERT_MATRICES per MoE layer (the grouped
 * up and down weights of the rank's experts); unit: bucket,
 * ceil(expert_bytes / bucket). At least 1. */
#define ZERO3_EXPERT_MATRICES 2
int64_t comm_zero3_expert_units(const plan_cfg *p, int64_t moe_layers, int64_t expert_bytes);

/* Context parallelism: the blocks one layer passes around the cp ring for one
 * micro-batch (each act_kv_block_bytes): forward cp-1 K/V passes; backward
 * cp-1 K/V and cp-1 dK/dV passes, and the forward's cp-1 again when full
 * recomputation replays the layer. 0 when cp = 1 (docs/memory.md §5). */
int64_t comm_cp_passes(const plan_cfg *p, bool backward);

/* The tensor-parallel collectives inside one unit's forward or backward of
 * one micro-batch: tp_comm's entries seen per op (the execution plan puts
 * them on its fwd/bwd ops; tests/test_program.c holds the two to each other).
 * Fills out with (collective, calls, S per call) and returns how many. */
typedef enum { COMM_UNIT_EMBED, COMM_UNIT_LAYER, COMM_UNIT_HEAD } comm_unit;
typedef struct {
    comm_coll coll;
    int64_t calls, bytes_per_call;
} comm_tp_call;
#define COMM_TP_UNIT_MAX 4
int comm_tp_unit(const model_cfg *m, const plan_cfg *p, comm_unit u, bool bwd,
                 comm_tp_call out[COMM_TP_UNIT_MAX]);

/* Copy the entries in use and the totals (cheaper than the whole struct). */
void comm_list_copy(comm_list *dst, const comm_list *src);

extern const char *const comm_group_names[GROUP_COUNT];
extern const char *const comm_coll_names[];

#endif
