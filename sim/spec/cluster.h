/* cluster.h — the hardware a plan runs on: one GPU kind, nodes of it, and the
 * two link levels (inside a node, between nodes). */
#ifndef PS_CLUSTER_H
#define PS_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/dtype.h"
#include "base/err.h"
#include "spec/ynode.h"

#define CLUSTER_GEMM_POINTS 12
#define CLUSTER_ATTN_KERNELS 4
#define CLUSTER_KERNEL_NAME 16
/* links.collectives: one bus-bandwidth efficiency per collective, in cost/comm.h's
 * comm_coll order (all_reduce, reduce_scatter, all_gather, broadcast, reduce,
 * send_recv, all_to_all; time/coll_time.c checks the order) */
#define CLUSTER_COLLS 7
extern const char *const cluster_coll_names[CLUSTER_COLLS + 1]; /* NULL-terminated */

/* A named fused-attention kernel's measured efficiency on this GPU by
 * sequence length (gpu.efficiency.attention_kernels; docs/time.md §1): a plan
 * picks one with kernels.attention. Forward and backward are separate curves
 * of [sequence length, fraction of peak], log-log interpolated, flat beyond
 * their ends. */
typedef struct {
    char name[CLUSTER_KERNEL_NAME];
    int fwd_n, bwd_n;
    double fwd_seq[CLUSTER_GEMM_POINTS], fwd[CLUSTER_GEMM_POINTS];
    double bwd_seq[CLUSTER_GEMM_POINTS], bwd[CLUSTER_GEMM_POINTS];
} cluster_attn_kernel;

/* Achieved fractions of the datasheet numbers (docs/time.md §1): a GEMM's
 * efficiency as a function of its smallest dimension (its arithmetic
 * intensity; log-interpolated),
 * flash attention's forward and backward, memory-bound kernels, and each
 * link's bus bandwidth as nccl-tests measures it. */
typedef struct {
    int gemm_n;
    double gemm_dim[CLUSTER_GEMM_POINTS], gemm_frac[CLUSTER_GEMM_POINTS];
    double gemm_slope[CLUSTER_GEMM_POINTS]; /* log-log slope into point i (cluster_eff_prepare) */
    double attn_fwd, attn_bwd;
    int attn_kernel_n; /* named attention kernels (a plan's kernels.attention) */
    cluster_attn_kernel attn_kernel[CLUSTER_ATTN_KERNELS];
    double hbm;
    /* efficiency.optimizer: the optimizer step's share of the HBM bandwidth (0, the field
     * absent: hbm's; docs/time.md §2) -- a fused multi-tensor update streams the states at
     * its own rate, and a CPU's caches serve a layer's small tensors but not the states */
    double optimizer;
    double intra, inter, host;
    /* links.collectives: each collective's share of the link's bus bandwidth (1 when not
     * given): an MPI or NCCL implementation runs its collectives at different busbw
     * (nccl-tests), e.g. a CPU reduction that sums on the cores (docs/time.md §3) */
    double coll[CLUSTER_COLLS];
    double overlap; /* share of overlapped communication that actually hides */
} cluster_eff;

typedef struct {
    int64_t gpu_memory_bytes;   /* device memory */
    int64_t gpu_reserved_bytes; /* not available to the allocator: CUDA context, NCCL */
    double peak_flops_per_s[DT_COUNT]; /* dense peak by math dtype (0 = not given) */
    double hbm_bytes_per_s;
    int64_t gpus_per_node, nodes;
    double intra_bytes_per_s, intra_latency_s; /* per GPU, per direction */
    double inter_bytes_per_s, inter_latency_s; /* per GPU, per direction */
    double host_bytes_per_s, host_latency_s;   /* GPU <-> host memory (PCIe), per GPU */
    /* ---- groups that span nodes (helper zero3; docs/time.md §3) ----
     * links.nics_per_node: the inter-node NICs of a node, shared by the ranks
     * on it (0, the default: one per GPU, DGX); links.ring_latency:
     * nccl prices an inter-node ring's steps as NCCL's tuning model does (the
     * intra-node steps at the intra-node latency, the node crossings at the
     * inter-node one; tree all-reduce logarithmic in nodes); per_step (the
     * default) prices every step at the inter-node latency. */
    int64_t nics_per_node;
    bool ring_latency_nccl;
    cluster_eff eff;
    /* gpu.kernel_dtype: true when kernels compute in fp32, widening every
     * 16-bit tensor to an fp32 copy per op (parasim's CPU runtime); false
     * (the field absent) when they read the storage dtype, as cuBLAS and
     * Megatron-LM's bf16 kernels do (docs/memory.md §6) */
    bool kernels_fp32;
} cluster_cfg;

typedef struct {
    char name[64];
    char gpu_name[64];
    char source[256];
    char path[PS_LOC_FILE_MAX];
    cluster_cfg cfg;
    ps_loc self, gpus_per_node, nodes, memory;
} cluster_spec;

static inline int64_t cluster_gpus(const cluster_cfg *c) { return c->gpus_per_node * c->nodes; }

/* The default efficiencies (docs/time.md §1), used for any not given. */
void cluster_eff_default(cluster_eff *e);
/* Recompute the derived slopes after changing the GEMM curve. */
void cluster_eff_prepare(cluster_eff *e);
/* The log-log slope of a curve's segment into point i (i >= 1):
 * log(y[i] / y[i-1]) / log(x[i] / x[i-1]). */
double cluster_curve_slope(const double *x, const double *y, int i);

int cluster_from_node(const ynode *root, const char *path, cluster_spec *out, ps_err *err);
int cluster_load_file(const char *path, cluster_spec *out, ps_err *err);

#endif
