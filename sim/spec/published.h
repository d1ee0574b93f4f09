/* published.h — published training measurements kept as calibration and
 * validation cases (the YAML files in bench/published/; docs/accuracy.md).
 *
 * A case names a model (a models/ name, or an inline GPT-style shape), a
 * parallel layout, batch, recompute and schedule, and what the paper
 * measured: TFLOP/s per GPU (counted with the paper's own FLOP formula),
 * iteration time, or MFU. published_plan turns a case into a checked plan;
 * published_time gives the measured step time in seconds, derived from
 * TFLOP/s with the paper's formula where that is what was printed.
 */
#ifndef PS_PUBLISHED_H
#define PS_PUBLISHED_H

#include "base/err.h"
#include "spec/plan.h"
#include "spec/ynode.h"

typedef enum { PUB_TFLOPS_EQ3, PUB_STEP_TIME, PUB_MFU } published_kind;

typedef struct {
    char name[64];
    published_kind kind;
    double value;    /* TFLOP/s per GPU, seconds or a fraction, as printed */
    double step_s;   /* the measured step time it implies */
} published_case;

/* Cases in a published file: the root's "cases" list (NULL when absent). */
const ynode *published_cases(const ynode *root, int *n, ps_err *err);

/* Build and check the plan of case `c` (an item of published_cases) on the
 * file's cluster; fills info with the published figure. */
int published_plan(const ynode *root, const ynode *c, const char *path, plan_spec *out,
                   published_case *info, ps_err *err);

/* Narayanan et al. 2021 eq. (3): FLOPs per step counting full recomputation,
 * 96 B s l h^2 (1 + s/(6h) + V/(16 l h)). */
double published_flops_eq3(double B, double s, double l, double h, double V);

#endif
