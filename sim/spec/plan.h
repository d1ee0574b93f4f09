/* plan.h — a parallelism plan: how one training step of a model is laid out
 * on a cluster (docs/specs.md describes the YAML).
 *
 * plan_cfg holds only numbers and enums so that sweeps can vary it cheaply;
 * plan_spec adds the loaded model and cluster, and where each field was
 * written for errors.
 */
#ifndef PS_PLAN_H
#define PS_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "spec/cluster.h"
#include "base/dtype.h"
#include "spec/model.h"

/* SCHED_DUALPIPE (helper dualpipe): DeepSeek's DualPipe, two pipelines fed from
 * both ends, each rank holding stage s and stage pp-1-s (cost/pipe.h,
 * docs/schedule.md "DualPipe"). */
typedef enum {
    SCHED_AFAB,
    SCHED_1F1B,
    SCHED_INTERLEAVED,
    SCHED_ZERO_BUBBLE,
    SCHED_DUALPIPE
} plan_schedule;
/* Recompute policies over the saved-tensor table (cost/act.h, docs/memory.md §3):
 * none, selective (Megatron-LM: the attention core), full (the layer input
 * kept), op (torchtitan's op-level selective AC), gelu / gelu+norm (llm.c
 * -r 1 / -r 2), custom (a list of tensor names: plan_cfg.recompute_tensors). */
typedef enum {
    RECOMPUTE_NONE,
    RECOMPUTE_SELECTIVE,
    RECOMPUTE_FULL,
    RECOMPUTE_OP,
    RECOMPUTE_GELU,
    RECOMPUTE_GELU_NORM,
    RECOMPUTE_CUSTOM
} plan_recompute;
typedef enum { OPT_ADAMW, OPT_SGD, OPT_SGD_MOMENTUM } plan_optimizer;
/* Context-parallel attention algorithm (`parallel.cp_algorithm`; docs/time.md §3,
 * docs/memory.md §3): ring passes K/V blocks cp-1 times behind the attention
 * core (Megatron-LM / TE cp_comm_type p2p); all-gather gathers the whole K/V
 * once per layer, exposed, and reduce-scatters dK/dV (Llama 3 §3.3.2; TE
 * cp_comm_type all_gather). */
typedef enum { CP_RING, CP_ALL_GATHER } plan_cp_algorithm;

#define PLAN_MAX_STAGES 256
/* Bounds on a plan's numbers (docs/specs.md "Limits"): far above any real
 * run, small enough that the products the formulas form fit in 64 bits; what
 * bounded inputs can still make too large, plan_check refuses (too-large). */
#define PLAN_GPUS_MAX (1LL << 24)   /* gpus, dp */
#define PLAN_DEGREE_MAX (1LL << 16) /* tp, cp */
#define PLAN_BATCH_MAX (1LL << 24)  /* batch.global, batch.micro (sequences) */
#define PLAN_SEQ_MAX (1LL << 24)    /* batch.seq (tokens) */
#define PLAN_BUFFER_MAX (1LL << 40) /* memory.bucket, memory.workspace (bytes) */
#define PLAN_SIZE_MAX (1LL << 60)   /* per-GPU memory and per-step communication bounds */
/* Parallel groups in comm_group order (comm.h): dp, tp, pp, cp. */
#define PLAN_GROUPS 4
enum { GROUP_ORDER_DP, GROUP_ORDER_TP, GROUP_ORDER_PP, GROUP_ORDER_CP };

typedef struct {
    ps_dtype params, grads, master, optimizer, activations;
} plan_precision;

/* Framework profile constants (`framework:`, plans/frameworks/NAME.yaml,
 * sim/spec/framework_load.h; docs/memory.md "Framework profiles"): what the
 * memory model reads about how a real implementation lays out the same plan.
 * All zero (no `framework:`) is parasim's model as it was before profiles. */
typedef enum {
    FW_LOSS_FP32_SOFTMAX, /* the loss saves an fp32 softmax over the vocabulary (Megatron-LM) */
    FW_LOSS_FUSED,        /* the classifier writes the logits' gradient in place (llm.c) */
    FW_LOSS_CHUNKED,      /* lm head + loss + their backward run chunk by chunk (torchtitan) */
    FW_LOSS_CROSS_ENTROPY /* PyTorch F.cross_entropy on logits widened to fp32: saves the fp32
                             log-softmax; its backward is not in place (torchtitan 2024) */
} plan_fw_loss;
typedef struct {
    bool grad_bucket_none;   /* no communication bucket beside the gradients (in-place collectives) */
    bool param_copy_transient; /* the fp32 parameters are the master; 16-bit copies are transient */
    bool optimizer_grad_copy_none; /* the optimizer reads 16-bit gradients in its kernel */
    uint8_t loss;            /* plan_fw_loss */
    int32_t loss_chunks;     /* FW_LOSS_CHUNKED: chunks the tokens are split into (>= 1) */
    /* kernels.attention: 0 the model's, 1 standard, 2 flash (framework_attention_names):
     * the kernel the framework runs whatever the model file says */
    uint8_t attention;
    bool no_dropout;         /* kernels.dropout: none (the framework has no dropout) */
} plan_framework;

/* ---- ZeRO-3 / FSDP execution: the `zero3:` section (helper zero3; docs/time.md §4.1) ----
 * Absent (set = false): today's model, one gather per layer unit, the first
 * unit exposed and everything else hideable. */
typedef enum { ZERO3_UNIT_LAYER, ZERO3_UNIT_PARAM, ZERO3_UNIT_BUCKET } plan_zero3_unit;
/* Weight matrices of one Megatron-style layer (fused QKV, attention output,
 * fused up/gate, down): what a per-parameter gather (`unit: param`) issues. */
#define ZERO3_MATRICES_PER_LAYER 4
#define ZERO3_PREFETCH_MAX 64
typedef struct {
    bool set;                   /* the section was given */
    plan_zero3_unit unit;       /* what one collective moves: a layer, a weight matrix, a bucket */
    int64_t bucket_bytes;       /* unit: bucket (DeepSpeed stage3_prefetch_bucket_size) */
    int64_t prefetch;           /* units gathered ahead of the one computing; 0: nothing overlaps */
    bool reshard_after_forward; /* false: the forward's gather stays for the backward */
    bool recompute_gather;      /* a full-recompute replay gathers its unit again */
    double launch_s;            /* per collective: host hook/launch time the GPU waits for */
    double launch_per_rank_s;   /* per collective and rank of the group: list-form gathers */
    bool copy_out;              /* each gathered unit is copied once on the compute stream */
} plan_zero3;

/* ---- Logit distillation: the `distill:` section (helper planner; docs/specs.md
 * "distill", docs/distillation.md "Planner"). Absent (set = false): plain
 * training. The teacher's model is plan_spec.teacher; cost/distill.h and
 * time/distill_time.h cost it. */
typedef enum { DISTILL_SHARED, DISTILL_SEPARATE } plan_distill_placement;
extern const char *const plan_distill_placement_names[]; /* "shared", "separate", NULL */
#define DISTILL_GPUS_MAX PLAN_GPUS_MAX
#define DISTILL_TEMPERATURE_MAX 1000.0
typedef struct {
    bool set;              /* the section was given */
    uint8_t placement;     /* plan_distill_placement */
    int32_t weights;       /* the teacher's weight scheme: cost/infer.h infer_weights */
    int64_t group_size;    /* as `parasim infer --group-size` (0: the scheme's default) */
    int64_t gpus;          /* separate: the teacher's GPUs (0 under shared) */
    int64_t top_k;         /* 0: every vocabulary logit; else the teacher's top-k only */
    double temperature;    /* T > 0 */
    double alpha;          /* weight of the label cross-entropy, [0, 1] */
} plan_distill;

/* MoE token dispatcher (moe.dispatcher; helper moeacc). */
typedef enum { MOE_DISPATCHER_ALLTOALL, MOE_DISPATCHER_DEEPEP } plan_moe_dispatcher;
extern const char *const plan_moe_dispatcher_names[]; /* "alltoall", "deepep" */

typedef struct {
    int64_t gpus;
    int64_t dp, tp, pp, cp;
    int zero; /* 0..3 */
    bool sp;  /* sequence parallelism (needs tp > 1) */
    int64_t global_batch, micro_batch, seq; /* sequences, sequences per dp rank, tokens */
    plan_schedule schedule;
    int64_t virtual_stages; /* model chunks per pipeline rank (interleaved) */
    int32_t stage_layers[PLAN_MAX_STAGES]; /* explicit split; all 0 = even */
    /* Megatron-LM's uneven splits (cost/pipe.h; docs/schedule.md "Uneven splits"):
     * layers of the first / last stage, 0 = not given (the rest split evenly over
     * the middle stages), and the embedding / the loss counted as one layer each. */
    int32_t first_stage_layers, last_stage_layers;
    bool account_for_embedding, account_for_loss;
    plan_recompute recompute;
    uint32_t recompute_tensors; /* custom: bit i recomputes act_tensor_names[i] (cost/act.h) */
    plan_precision precision;
    plan_optimizer optimizer;
    bool offload_optimizer, offload_activations;
    int64_t bucket_bytes;    /* gradient-communication bucket */
    int64_t workspace_bytes; /* GEMM / kernel workspaces */
    double fragmentation;    /* allocator reserve as a fraction of allocated bytes */
    /* Rank layout, innermost (consecutive ranks) first, as comm_group values;
     * default tp, cp, dp, pp (Megatron-LM's order; docs/time.md §3). */
    uint8_t placement[PLAN_GROUPS];
    /* Which communication hides behind compute (docs/time.md §4). */
    bool overlap_dp, overlap_tp, overlap_pp;
    plan_framework framework; /* profile constants; all zero without `framework:` */
    plan_zero3 zero3; /* the `zero3:` section (helper zero3) */
    /* kernels.attention: 1 + the index of the cluster's named attention kernel
     * (cluster.h cluster_attn_kernel); 0 = the cluster's flat attention
     * efficiency (docs/time.md §1) */
    int32_t attn_kernel;
    /* kernels.grad_accumulation_fusion: false (Megatron-LM's
     * --no-gradient-accumulation-fusion): each weight gradient is written in
     * the activation dtype and added into the gradient buffer by a separate
     * pass per micro-batch (docs/time.md §2); false here = fused, the default */
    bool grad_acc_unfused;
    /* kernels.elementwise: eager (PyTorch eager mode, no torch.compile): RMSNorm,
     * RoPE and SwiGLU run as torchtitan writes them, one kernel per PyTorch op
     * (docs/time.md §2); false = each is one fused kernel, the default */
    bool eager_elementwise;
    /* context parallelism (helper longctx): plan_cp_algorithm; 0 = ring, today's model */
    uint8_t cp_algorithm;
    /* `pipeline.deallocate_outputs` (helper longctx): a stage frees the block of
     * a send once the send completes (Megatron-LM deallocate_pipeline_outputs;
     * Llama 3 §3.3.2), instead of holding it until a later send or receive finds
     * it done (parasim's runtime, rt_pipe.c); false = today's model */
    bool deallocate_outputs;
    /* `pipeline.partition_messages` (helper longctx): without SP, each tp rank
     * sends 1/tp of a stage-boundary message and the receiver all-gathers it
     * over tp (DeepSpeed PipelineEngine is_pipe_partitioned /
     * is_grad_partitioned); false = today's model */
    bool partition_messages;
    /* ---- Mixture of experts (`parallel.ep`, `parallel.etp`, the `moe:` section;
     * docs/specs.md "Expert parallelism"). Ignored for a dense model.
     * ep: expert-parallel degree, the routed experts split over ep ranks of the
     * dp x cp x tp ranks of a stage (Megatron-Core's MoE parallel folding: the
     * expert layers use etp x ep x edp = tp x cp x dp); etp: expert tensor
     * parallel degree, 0 = the same as tp (Megatron-Core's default); the
     * expert-data-parallel degree edp = tp*cp*dp / (etp*ep) shards (ZeRO) and
     * reduces the expert weights. */
    int64_t ep, etp;
    double moe_capacity_factor; /* tokens an expert takes, over its even share; 0 = dropless */
    double moe_imbalance;       /* dropless: the busiest expert rank's tokens over the mean (>= 1) */
    int64_t moe_node_limit;     /* node-limited routing (DeepSeek-V3 §2.1.2): at most M nodes per token; 0 = none */
    bool moe_aux_loss;          /* the router's load-balancing loss (Switch, Fedus et al. 2021 eq. 4) */
    /* ---- MoE token dispatcher (helper moeacc; `moe.dispatcher`): how the
     * all-to-all crosses nodes (cost/moe.c a2a_split). alltoall: NCCL's
     * all-to-all, each token copy straight to its expert's rank; deepep:
     * DeepEP's normal kernels (Megatron-Core --moe-token-dispatcher-type flex
     * --moe-flex-dispatcher-backend deepep), a token sent once over the
     * network per target node and forwarded over NVLink. */
    plan_moe_dispatcher moe_dispatcher;
    /* `moe.pad_to_capacity` (Megatron-LM --moe-pad-expert-input-to-capacity): each
     * expert's input is padded to its capacity C = ceil(cf T k / E), or T when
     * dropless, so every all-to-all moves E x C rows whatever the routing (what the
     * CPU runtime executes; cost/moe.c) */
    bool moe_pad;
    plan_distill distill; /* the `distill:` section (helper planner) */
} plan_cfg;

/* The expert tensor-parallel degree in effect (etp 0 = tp). */
static inline int64_t plan_etp(const plan_cfg *p) { return p->etp > 0 ? p->etp : p->tp; }

typedef struct {
    ps_loc self, gpus, parallel, dp, tp, pp, cp, zero, sp, global, micro, seq, schedule,
        virtual_stages, stage_layers, recompute, precision, placement;
    ps_loc first_stage_layers, last_stage_layers, account_for_embedding, account_for_loss;
    ps_loc cp_algorithm, deallocate_outputs, partition_messages;
    /* mixture of experts (helper moeplan): parallel.ep, parallel.etp, the moe: section's fields */
    ps_loc ep, etp, moe_capacity_factor, moe_imbalance, moe_node_limit, moe_pad;
} plan_locs;

/* Training settings the runtime uses (the `train:` section; docs/specs.md).
 * The closed form does not depend on them; the execution plan carries them
 * (program.h). */
typedef struct {
    int32_t steps;          /* optimizer steps to run (default 10) */
    uint64_t seed;          /* initialisation and synthetic data (default 1234) */
    double lr;              /* AdamW learning rate, constant (default 1e-3) */
    double beta1, beta2;    /* AdamW betas (default 0.9, 0.95) */
    double eps;             /* AdamW epsilon (default 1e-8) */
    double weight_decay;    /* decoupled weight decay (default 0.1) */
    char data[PS_LOC_FILE_MAX]; /* "synthetic", or a text file or directory, as written */
} plan_train;

/* The defaults above. */
void plan_train_defaults(plan_train *t);

typedef struct {
    char name[128];
    char path[PS_LOC_FILE_MAX];
    char precision_name[32]; /* preset name, or "custom" */
    model_spec model;
    cluster_spec cluster;
    plan_cfg cfg;
    plan_train train;
    plan_locs locs;
    bool gpus_derived; /* no gpus: given; gpus = dp*tp*pp*cp (locs.gpus = locs.parallel) */
    /* `framework:` (empty name: none): the profile, its file, and where its values come from */
    char framework_name[64];
    char framework_path[PS_LOC_FILE_MAX];
    char framework_source[256];
    /* `distill:` (cfg.distill.set): the teacher model, the runtime's teacher
     * checkpoint path as written (empty: none), and where each field was
     * written ("(default)" locations when left out) */
    model_spec teacher;
    char distill_checkpoint[PS_LOC_FILE_MAX];
    struct {
        ps_loc self, teacher, weights, group_size, placement, gpus, temperature, alpha, top_k,
            checkpoint;
    } distill_locs;
} plan_spec;

/* A command-line override "key.path=value"; value is parsed as YAML. */
typedef struct {
    const char *text;
} plan_override;

/* Tokens of one micro-batch held by one rank: b * s / cp (docs/memory.md §3). */
static inline int64_t plan_tokens_per_rank(const plan_cfg *p) {
    return p->micro_batch * (p->seq / p->cp);
}

/* Load a plan from a file (or, with path NULL, the built-in default plan),
 * apply overrides in order, load its model and cluster, and check it. */
int plan_load(const char *path, const plan_override *overrides, int n_overrides,
              plan_spec *out, ps_err *err);

/* The same from YAML text; origin names it in errors. Model and cluster
 * paths are resolved relative to the current directory. */
int plan_load_text(const char *text, const char *origin, const plan_override *overrides,
                   int n_overrides, plan_spec *out, ps_err *err);

/* Decode a parsed plan document (taking ownership of root) and load its
 * model and cluster; check it only when asked (a sweep's base plan holds
 * fields the sweep will replace). origin names the document. */
int plan_load_node(ynode *root, const char *origin, bool check, plan_spec *out, ps_err *err);

/* Resolve a named precision preset (bf16-mixed, fp16-mixed, bf16-fp32grad, fp32).
 * Returns 0 on success, -1 for an unknown name. */
int plan_precision_preset(const char *name, plan_precision *out);

/* The built-in default plan text (YAML), also shown by `parasim plan --help`. */
extern const char plan_default_yaml[];

/* Set the defaults of the fields a plan may leave out (plan_load does this;
 * sweeps that build plan_cfg by hand call it first). */
void plan_cfg_defaults(plan_cfg *c);

extern const char *const plan_group_names[]; /* "dp", "tp", "pp", "cp", NULL */

/* Short names of plan fields for tables, CSV and explanations. */
const char *plan_offload_name(const plan_cfg *p); /* none, optimizer, activations, both */
const char *plan_overlap_name(const plan_cfg *p, char *buf, int len); /* "dp+pp", or "-" */
const char *plan_placement_name(const plan_cfg *p, char *buf, int len); /* "tp-cp-dp-pp" */
extern const char *const plan_zero3_unit_names[]; /* "layer", "param", "bucket" */
extern const char *const plan_schedule_names[], *const plan_recompute_names[],
    *const plan_optimizer_names[];
/* The policies a `recompute:` scalar may name (plan_recompute_names less
 * "custom", which is written as a list of tensor names). */
extern const char *const plan_recompute_policy_names[];
extern const char *const plan_cp_algorithm_names[]; /* "ring", "all-gather", NULL */

#endif
