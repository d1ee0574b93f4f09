/* published.h — published training measurements kept as calibration and
 * validation cases (the YAML files in bench/published/; docs/accuracy.md).
 *
 * A case names a model (a models/ name, or an inline GPT-style shape), a
 * parallel layout, batch, recompute and schedule, and what was measured:
 * TFLOP/s per GPU (counted with the paper's own FLOP formula), iteration
 * time, tokens per second, MFU, and/or a peak memory with how it was read.
 * Every case is declared, before any fitting, as fitted (`use: fit`) or held
 * out (`use: held_out`) and belongs to a family (the paper or framework it
 * comes from), in the case or as the file's default. published_plan turns a
 * case into a checked plan; a case's `plan:` map and `framework:` (and the
 * file's) are passed verbatim into the plan text, so plan fields published.c
 * does not know reach the plan.
 */
#ifndef PS_PUBLISHED_H
#define PS_PUBLISHED_H

#include <stdbool.h>

#include "base/err.h"
#include "spec/plan.h"
#include "spec/ynode.h"

typedef enum {
    PUB_TFLOPS_EQ3,
    PUB_STEP_TIME,
    PUB_MFU,
    PUB_TOKENS_PER_S,         /* whole job */
    PUB_TOKENS_PER_S_PER_GPU,
    PUB_NO_TIME               /* the case publishes only a peak memory */
} published_kind;

typedef enum { PUB_USE_FIT, PUB_USE_HELD_OUT } published_use;

/* How a published peak memory was read: torch.cuda.max_memory_allocated,
 * torch.cuda.max_memory_reserved (the caching allocator's segments), or the
 * device as nvidia-smi shows it (also the CUDA context and NCCL buffers). */
typedef enum { PUB_MEM_NONE = -1, PUB_MEM_ALLOCATED, PUB_MEM_RESERVED, PUB_MEM_DEVICE } published_mem;

#define PUBLISHED_FAMILY_MAX 32

typedef struct {
    char name[64];
    char family[PUBLISHED_FAMILY_MAX];
    published_use use;
    published_kind kind;
    double value;         /* TFLOP/s per GPU, seconds, tokens/s or a fraction, as printed */
    double step_s;        /* the measured step time it implies (0 for MFU and memory-only) */
    published_mem mem;    /* PUB_MEM_NONE when no peak memory is published */
    double mem_bytes;     /* the published peak */
    bool mem_last_stage;  /* read on the last pipeline stage (Megatron logs the last rank),
                             not the maximum over all GPUs */
} published_case;

/* NULL-terminated: "fit", "held_out"; the known families; how memory was read;
 * on which GPU ("heaviest": the maximum over all, the default; "last": the
 * last rank, i.e. the last pipeline stage). */
extern const char *const published_use_names[], *const published_family_names[],
    *const published_mem_names[], *const published_mem_stage_names[];

/* Cases in a published file: the root's "cases" list (NULL when absent). */
const ynode *published_cases(const ynode *root, int *n, ps_err *err);

/* Build and check the plan of case `c` (an item of published_cases) on the
 * file's cluster; fills info with the published figure. info->name is set
 * (or left empty) before anything can fail, so a caller can report the row. */
int published_plan(const ynode *root, const ynode *c, const char *path, plan_spec *out,
                   published_case *info, ps_err *err);

/* The predicted peak comparable with a published one read as `mem`, from the
 * heaviest stage's total (eval.h): allocated leaves out the allocator's
 * fragmentation and what lies outside the allocator, reserved leaves out only
 * the latter, the device view is the total. */
int64_t published_predicted_memory(published_mem mem, int64_t total, int64_t outside_allocator,
                                   int64_t fragmentation);

/* Narayanan et al. 2021 eq. (3): FLOPs per step counting full recomputation,
 * 96 B s l h^2 (1 + s/(6h) + V/(16 l h)). */
double published_flops_eq3(double B, double s, double l, double h, double V);

#endif
