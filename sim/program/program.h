/* program.h — an execution plan: the explicit, ordered ops of one or more
 * training steps for each rank role (docs/plan-format.md).
 *
 * The planner lowers a checked plan to a program (program_emit), the replay
 * walks it to predict the memory timeline, the communication bytes and the
 * time (replay.h), and the runtime executes the same ops for real. The runtime
 * reads this header and nothing else of sim/: everything it needs to build
 * and train the model (shapes, batch, precision, optimizer settings, data)
 * is in the program.
 *
 * Flat parameter space. The parameters one role holds are laid out as one
 * flat vector of `flat_elems` elements: the units in order (embedding, layer
 * 0 .. L-1, head), each unit's tensors in the order of docs/plan-format.md §2,
 * then zeros up to `flat_padded` = dp_size * shard_elems. Data-parallel rank
 * r owns the contiguous shard [r * shard_elems, (r + 1) * shard_elems), as
 * DeepSpeed's and FSDP's flat buffers do (states.h); only a sharded buffer
 * holds padding (the last rank's shard ends in it), a whole one is
 * flat_elems long. Under expert parallelism the layers' held routed experts
 * are sharded over the expert-data-parallel group apart from the rest
 * (prog_role.unit_experts; program_shard_index places an element). Collectives name a range [offset, offset + elems) of this
 * space within [0, flat_elems); a unit's range may straddle shards, so its
 * reduce-scatter / all-gather has uneven per-rank counts (program_shard_part).
 *
 * Buffers (prog_buf) are named storage the ops allocate, use and free:
 *   params, grads, master, adam.m, adam.v — the model states, whole or sharded
 *   (program_buf_bytes says which); unit_params[u] — a ZeRO-3 unit gathered for
 *   use; unit_grads[u] — a unit's full gradient before it is reduce-scattered
 *   (ZeRO-2/3). Activations are not buffers: a fwd op saves them and the bwd
 *   op of the same (unit, micro-batch) frees them; their predicted bytes ride
 *   on those ops.
 */
#ifndef PS_PROGRAM_H
#define PS_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cost/comm.h"
#include "base/dtype.h"
#include "base/err.h"
#include "spec/plan.h"

#define PROGRAM_FORMAT_VERSION 1
/* Bounds that keep a program (and its replay) a reasonable size: ops per
 * role, steps, micro-batches per step, and any byte count of one op. */
#define PROGRAM_MAX_OPS (1 << 24)
#define PROGRAM_MAX_STEPS 1000000
#define PROGRAM_MAX_MICRO_BATCHES (1 << 20)
#define PROGRAM_MAX_OP_BYTES (1LL << 50)
/* All byte counts on a role's ops together (so no total of the replay overflows). */
#define PROGRAM_MAX_BYTE_SUM (1LL << 62)
/* Bounds on the header's shapes: widths (hidden, ffn_hidden, head_dim, vocab,
 * seq, micro) and heads, and the tokens of one micro-batch (micro * seq), so
 * that every product the replay and the runtime form fits in int64_t. */
#define PROGRAM_MAX_WIDTH (1 << 24)
#define PROGRAM_MAX_HEADS (1 << 16)
#define PROGRAM_MAX_MB_TOKENS (1 << 24)
/* An op's FLOPs and seconds: 2^24 ops of at most 10^6 s sum to a finite time. */
#define PROGRAM_MAX_OP_FLOPS 1e24
#define PROGRAM_MAX_OP_SECONDS 1e6

/* Memory categories the replay predicts and the runtime's tracked allocator
 * measures (docs/plan-format.md §4). */
typedef enum {
    MEM_PARAMS,
    MEM_GRADS,
    MEM_MASTER,
    MEM_OPTIMIZER,
    MEM_ACTIVATIONS, /* tensors saved for backward (act.h), and a recomputed layer's */
    MEM_BUFFERS,     /* communication buffers: gathered units, unit gradients, buckets */
    MEM_WORKSPACE,   /* transient compute memory: logits, activation gradients, scratch */
    MEM_TEACHER,     /* logit distillation: the frozen teacher's weights and scales */
    MEM_COUNT
} mem_cat;

typedef enum {
    BUF_PARAMS,
    BUF_GRADS,
    BUF_MASTER,
    BUF_ADAM_M,
    BUF_ADAM_V,
    BUF_UNIT_PARAMS, /* with op.unit */
    BUF_UNIT_GRADS,  /* with op.unit */
    BUF_TEACHER,     /* logit distillation: the teacher's weights (program.distill) */
    BUF_COUNT
} prog_buf;

typedef enum {
    OP_ALLOC,     /* buf (unit) of `bytes`, category `cat` */
    OP_FREE,      /* buf (unit); `bytes` repeats what its alloc took */
    OP_ZERO_GRAD, /* set the gradient buffer to zero (step start) */
    OP_FWD,       /* forward of `unit` for micro-batch `mb`, reading parameters from `src`
                     (params, or unit_params[unit] under ZeRO-3); saves `bytes` of activations */
    OP_BWD,       /* backward of `unit` for `mb`: reads `src` as fwd does, writes the unit's
                     gradient to `dst` (grads, accumulating, or unit_grads[unit]); frees what
                     its fwd saved */
    OP_COLL,      /* collective `coll` over `group` on [offset, offset+elems) of src -> dst */
    OP_SEND,      /* pipeline send to `peer` (not emitted before tensor/pipeline support) */
    OP_RECV,      /* pipeline receive from `peer` */
    OP_OPTIM,     /* optimizer step `step` on [offset, offset+elems) of what this rank holds
                     of the optimizer states: ZeRO-0 the flat space, ZeRO >= 1 its shard, so
                     dp rank r updates flat elements r * shard_elems + [offset, offset+elems)
                     (clipped to flat_elems: the padding is not trained; under ep the
                     elements at those places of its buffer, program_shard_index) */
    OP_KIND_COUNT
} prog_kind;

/* Which part of a unit's backward a bwd op runs: all of it, or (zero-bubble
 * pipelines, Qi et al. 2023) the input gradient B, then later the weight
 * gradient W. An input part frees nothing (its forward's activations stay for
 * W); the weight part frees them. */
typedef enum { BWD_ALL, BWD_INPUT, BWD_WEIGHT, BWD_PART_COUNT } prog_bwd_part;

/* The collective kinds an op's tensor-parallel traffic is counted by:
 * COLL_ALL_REDUCE, COLL_REDUCE_SCATTER, COLL_ALL_GATHER. */
#define PROG_TP_COLLS 3

typedef struct {
    prog_kind kind;
    int32_t step;       /* 0-based training step the op belongs to */
    int32_t mb;         /* micro-batch, -1 if none */
    int32_t unit;       /* unit index, -1 if none */
    prog_buf buf;       /* alloc/free: the buffer */
    prog_buf src, dst;  /* coll: source and destination buffers (may be equal: in place) */
    mem_cat cat;        /* alloc: category */
    comm_coll coll;     /* coll */
    comm_group group;   /* coll */
    comm_phase phase;   /* coll: when it runs (comm.h) */
    int32_t peer;       /* send/recv: the other stage */
    bool recompute;     /* bwd: rebuilds the forward first (full recompute) */
    prog_bwd_part part; /* bwd: all, or the zero-bubble input / weight part */
    int64_t offset;     /* coll: first element in the flat space (a range never reaches
                           into the padding: [offset, offset+elems) lies in [0, flat_elems));
                           optim: first element relative to the rank's holding (see OP_OPTIM) */
    int64_t elems;      /* coll / optim: elements in the range */
    int64_t bytes;      /* alloc/free: bytes; fwd: activation bytes saved; bwd: bytes freed;
                           coll: the collective's size S (full range, nccl-tests "size") */
    int64_t transient_bytes; /* fwd/bwd: activation bytes live only during the op
                                (a recomputed layer's tensors) */
    int64_t workspace_bytes; /* fwd/bwd/coll/optim: the most workspace live inside the op
                                (workspace.h: activation gradients, logits, fp32 copies,
                                receive buffers); send/recv: the message's blocks
                                live inside it (a send's stays until it completes,
                                replay.h) */
    int64_t stash_bytes;     /* bwd input part (zero-bubble): workspace it leaves live for
                                its weight part, which frees it and carries the same bytes
                                (the GEMMs' output gradients, workspace.h zb_stash) */
    int64_t sent_bytes;      /* coll: bytes this rank sends (comm_bytes_sent) */
    /* fwd/bwd of a layer under context parallelism (docs/plan-format.md §3, "Context
     * parallelism"): the op passes ring_passes blocks of ring_bytes each to the next
     * rank of the cp ring (GROUP_CP) inside it, and holds buffer_bytes of
     * communication buffers (MEM_BUFFERS) while it runs: the ring's receive blocks;
     * ring_seconds is the passes' transfer time, of which `seconds` holds what the
     * attention does not hide */
    int32_t ring_passes;
    int64_t ring_bytes;
    int64_t buffer_bytes;
    double ring_seconds;
    double flops;            /* fwd/bwd/optim: FLOPs */
    double seconds;          /* predicted duration on the plan's cluster */
    /* fwd/bwd under tensor parallelism: the collectives of group tp inside the
       op (phase: the op's), by kind, indexed by comm_coll (all-reduce,
       reduce-scatter, all-gather): calls, the sum of their sizes S, of what
       this rank sends, and of their predicted seconds, which are part of
       `seconds` (they block the compute stream, as Megatron-LM's do);
       docs/plan-format.md §4 lists them per unit */
    int64_t tp_calls[PROG_TP_COLLS], tp_bytes[PROG_TP_COLLS], tp_sent[PROG_TP_COLLS];
    double tp_seconds[PROG_TP_COLLS];
    /* fwd/bwd of a MoE layer under expert parallelism (ep > 1): the all-to-alls of
       group ep inside the op (dispatch and combine: 2 in a forward, 2 in a backward,
       4 under full recompute), the sum of their sizes S (the whole dispatch buffer,
       experts x expert_capacity x hidden in the activation dtype), of what this rank
       sends ((ep-1)/ep of S) and of their predicted seconds, part of `seconds` */
    int64_t ep_calls, ep_bytes, ep_sent;
    double ep_seconds;
} prog_op;

/* One unit of the flat parameter space. */
typedef struct {
    char name[32];  /* "embed", "layer.0", ..., "head" */
    int64_t offset; /* first element in the flat space */
    int64_t elems;
} prog_unit;

/* The ops of one rank role (pipeline stage x tp rank x cp rank); every
 * data-parallel rank of the role runs the same list on its own shard. */
typedef struct {
    int32_t stage, tp_rank, cp_rank;
    int32_t n_ranks;
    int32_t *ranks;  /* world ranks playing this role, by dp rank */
    int32_t n_units;
    prog_unit *units;
    int64_t flat_elems, flat_padded, shard_elems;
    /* Expert parallelism (ep > 1; program_role_spaces): each layer unit ends in the
       unit_experts elements of its held routed experts (expert_elems over the role's
       layers). The states shard them over the expert-data-parallel group (dp/ep ranks,
       expert_shard each) apart from the rest of the flat space, which shard_elems and
       flat_padded then count (Megatron-Core's distributed optimizer: a dense and an
       expert buffer). 0 without ep: the whole space is sharded over dp x cp. */
    int64_t unit_experts, expert_elems, expert_shard;
    int32_t n_ops;
    prog_op *ops;
} prog_role;

typedef enum { DATA_SYNTHETIC, DATA_TEXT } prog_data_kind;

/* Logit distillation (docs/plan-format.md "Distillation", docs/distillation.md
 * "Running it"): loss = alpha CE + (1 - alpha) T^2 KL(teacher/T || student/T)
 * (kernels/kern_kd.h), the frozen teacher read from `checkpoint` (an rt_ckpt)
 * and run by the inference engine on the last stage's tp group, its weights in
 * `weights` (an inference-engine scheme name: f32, bf16, int8-tensor, ...,
 * int4-block) with blocks of group_size inputs. teacher_bytes: its weights and
 * scales on one tp rank (cost/distill.h), the bytes of BUF_TEACHER. */
typedef struct {
    bool on;
    char teacher_name[64];
    int64_t layers, hidden, heads, kv_heads, head_dim, ffn_hidden, vocab;
    double norm_eps, rope_theta;
    char weights[16];
    int64_t group_size;
    double temperature, alpha;
    int64_t top_k;
    char checkpoint[PS_LOC_FILE_MAX];
    int64_t teacher_bytes;
} prog_distill;
/* The inference-engine schemes a teacher may run in (NULL-terminated). */
extern const char *const program_teacher_schemes[];

typedef struct {
    /* model (the runtime builds exactly this) */
    int64_t layers, hidden, heads, kv_heads, head_dim, ffn_hidden, vocab;
    bool tied_embeddings;
    double norm_eps, rope_theta;
    /* mixture of experts (docs/plan-format.md "Mixture of experts"; experts 0: dense).
     * Every layer is a MoE layer: its MLP is the shared experts, whose widths add up to
     * ffn_hidden (w1, w3, w2 as a dense layer's), plus `experts` routed SwiGLU experts of
     * expert_ffn features, top_k of them per token (router.c), each taking
     * expert_capacity rows per micro-batch and rank (fixed-size slots, moe_permute.c);
     * aux_alpha weighs the load-balancing loss (0: none). ep: the expert-parallel
     * degree, a divisor of dp and of experts (ep consecutive dp ranks share tokens
     * through all-to-alls, each holding experts / ep experts). */
    int64_t experts, top_k, expert_ffn, expert_capacity, ep;
    double aux_alpha;
    /* batch */
    int64_t seq, micro_batch, micro_batches, global_batch;
    /* parallelism */
    int64_t world, dp, tp, pp, cp;
    bool sp; /* sequence parallelism (tp > 1): norm regions sharded along the tokens */
    int zero;
    plan_recompute recompute;
    plan_precision precision;
    /* training */
    int32_t steps;
    uint64_t seed;
    double lr, beta1, beta2, eps, weight_decay;
    prog_data_kind data;
    char data_path[PS_LOC_FILE_MAX]; /* DATA_TEXT: a plain-text file, byte tokens */
    int64_t bucket_bytes;
    bool overlap_dp; /* data-parallel collectives overlap compute (plan overlap.dp; replay.h) */
    bool overlap_pp; /* pipeline transfers hide behind compute (plan overlap.pp; replay.h) */
    prog_distill distill; /* logit distillation (distill.on) */
    /* what it came from */
    char plan_name[128];
    char model_name[64];
    char cluster_name[64];
    int32_t n_roles;
    prog_role *roles;
} program;

/* Lower a checked plan to a program of `steps` training steps. Returns 0, or
 * -1 with err set (a plan the runtime cannot express yet, for instance). */
int program_emit(const plan_spec *plan, int steps, program *out, ps_err *err);

/* Release what program_emit / program_load allocated. */
void program_free(program *p);

/* Bytes of a buffer on one rank of a role (ZeRO decides whole or shard). */
int64_t program_buf_bytes(const program *p, const prog_role *r, prog_buf b, int32_t unit);

/* The elements of the flat space that buffer b (unit u for unit buffers) holds
 * on dp rank `dp_rank`: [*first, *first + return value). The whole space, or
 * the rank's shard, as states.c decides by ZeRO stage (read off
 * program_buf_bytes, so no second copy of that rule); 0 for a buffer the plan
 * does not keep (master weights in fp32). */
int64_t program_buf_held(const program *p, const prog_role *r, prog_buf b, int32_t unit,
                         int32_t dp_rank, int64_t *first);

/* The part of the flat range [offset, offset+elems) that data-parallel rank
 * dp_rank's shard holds: its element count, and in *first (if not NULL) the
 * flat index where it starts. The counts of a reduce-scatter / all-gather on
 * a range that straddles shards (docs/plan-format.md §3). Under expert
 * parallelism the range lies in one segment (program_segment_end): outside
 * the routed experts dp_rank is the rank in dp x cp, inside them the rank in
 * the expert-data-parallel group. */
int64_t program_shard_part(const prog_role *r, int64_t offset, int64_t elems, int32_t dp_rank,
                           int64_t *first);

/* Expert parallelism (docs/plan-format.md "Mixture of experts", ZeRO): set r's
 * unit_experts, expert_elems, expert_shard, shard_elems and flat_padded from its
 * units and the header (ep = 1: the whole space sharded over dp x cp). Returns -1
 * if a layer unit is smaller than the experts it must hold. */
int program_role_spaces(const program *p, prog_role *r);
/* The end of the segment of the flat space holding element i: a layer's held
 * routed experts (*expert true) or a stretch between them; flat_elems without ep. */
int64_t program_segment_end(const prog_role *r, int64_t i, bool *expert);
/* Where flat element i sits in a sharded buffer of data-parallel rank dp_rank:
 * its shard of the dense space first, then its expert-data-parallel rank's
 * (dp_rank / ep) shard of the experts; -1 when the rank does not hold it.
 * Consecutive elements of one segment sit consecutively. */
int64_t program_shard_index(const program *p, const prog_role *r, int32_t dp_rank, int64_t i);

/* Rank roles and the world (program_ranks.c). A program has one role per
 * (pipeline stage, tp rank, cp rank), at index program_role_index =
 * (stage * tp + tp_rank) * cp + cp_rank; a role's ranks[k] is the world rank
 * of data-parallel index k, laid out by the plan's placement (innermost
 * first): program_world_rank. The runtime's groups follow from the roles
 * alone (runtime/rt_group.h), so the JSON needs no placement. */
int64_t program_world_rank(const plan_cfg *p, int64_t dp_i, int64_t tp_i, int64_t pp_i,
                           int64_t cp_i);
int32_t program_role_index(const program *p, int64_t stage, int64_t tp_rank, int64_t cp_rank);

/* Write as JSON (atomically; path NULL, "" or "-": standard output) / read
 * it back, with errors naming file:line:col, the field, what was expected
 * and what was found. */
int program_write_json(const program *p, const char *path, ps_err *err);
int program_load_json(const char *path, program *out, ps_err *err);
/* The same from memory (len bytes, no terminator needed; a fuzzer's input):
 * origin names the text in locations. Every size is bounded before it is
 * allocated, and the ops pass program_check. */
int program_load_text(const char *data, size_t len, const char *origin, program *out,
                      ps_err *err);

/* Check the structural invariants the replay and the runtime rely on
 * (docs/plan-format.md §1, "What the loader checks"): buffers allocated with
 * their header-implied size before use and freed at most once; per step and
 * micro-batch the forward in unit order, then the backward in reverse; one
 * zero_grad before the step's first backward and one optim after its last,
 * over all the rank holds; every gradient element reduced as the ZeRO stage
 * requires before the optim, and updated parameters gathered before they are
 * read; collectives consistent with the header. program_load_* runs it; the
 * emitter's programs pass it. Returns 0, or -1 with err saying what is wrong
 * and *role, *op (either may be NULL) naming where (op -1: the role's list as
 * a whole). */
int program_check(const program *p, int32_t *role, int32_t *op, ps_err *err);

/* Mixture of experts (program_moe.c; docs/plan-format.md "Mixture of experts"). */
static inline bool program_is_moe(const program *p) { return p->experts > 0; }
/* Parameters of one routed expert (SwiGLU: w1, w3 [expert_ffn][hidden], w2
 * [hidden][expert_ffn]) and of the router (experts x hidden). */
int64_t program_expert_elems(const program *p);
/* The activation bytes a MoE layer's forward saves for one micro-batch on top of
 * the layer with its shared-expert MLP: the router's probabilities (fp32), the
 * gate weights (fp32), the chosen experts and their slots (int32), the count per
 * expert (int64), and in the activation dtype the experts' inputs and outputs
 * (experts x capacity x hidden each) and their w1, w3 and SwiGLU outputs (experts x
 * capacity x expert_ffn each). */
int64_t program_moe_saved_bytes(const program *p);
/* The most workspace a MoE layer's fwd (bwd) holds, fp32 and without recompute: the
 * runtime's layer output y (the gradients dy, dx and the norm's input gradient) live
 * when the routed part starts, plus its router logits and dispatch buffer (its
 * gradient buffers: the greatest of the outputs' gradient sent and received, the
 * experts' SwiGLU gradients and input gradients, the input gradients received, the
 * router's probability and logit gradients) — runtime/rt_model.c's moe_fwd/moe_bwd
 * allocation by allocation. */
int64_t program_moe_workspace_bytes(const program *p, bool bwd);
/* The size S of one all-to-all (dispatch or combine): experts x capacity x hidden
 * in the activation dtype; what one rank sends of it is (ep - 1) / ep. */
int64_t program_moe_a2a_bytes(const program *p);

extern const char *const mem_cat_names[MEM_COUNT];   /* "params", "grads", ... */
extern const char *const prog_buf_names[BUF_COUNT];  /* "params", ..., "unit_grads" */
extern const char *const prog_kind_names[OP_KIND_COUNT]; /* "alloc", "free", ... */
extern const char *const prog_bwd_part_names[BWD_PART_COUNT]; /* "all", "input", "weight" */

#endif
