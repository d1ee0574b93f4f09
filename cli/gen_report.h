/* gen_report.h — the report of `parasim generate` (cmd_generate.c): generated
 * text, throughput, memory per category and KV blocks, or the eval mode's
 * perplexity and KL, as a table or JSON. A measured byte count per category
 * (gen_mem_bytes) can take a predicted one beside it (parasim infer's:
 * gen_predict.h). */
#ifndef PS_GEN_REPORT_H
#define PS_GEN_REPORT_H

#include <stdio.h>

#include "rt_gen.h"

/* The memory categories of docs/runtime.md ("Inference"), in report order. */
enum {
    GEN_MEM_WEIGHTS,     /* MEM_PARAMS */
    GEN_MEM_SCALES,      /* RT_MEM_SCALES */
    GEN_MEM_KV,          /* RT_MEM_KV */
    GEN_MEM_ACTIVATIONS, /* MEM_ACTIVATIONS */
    GEN_MEM_LOGITS,      /* RT_MEM_LOGITS */
    GEN_MEM_WORKSPACE,   /* MEM_WORKSPACE (measured only: never predicted) */
    GEN_MEM_CATS
};
extern const char *const gen_mem_names[GEN_MEM_CATS]; /* "weights", "scales", "kv_cache", ... */
typedef struct {
    int64_t bytes[GEN_MEM_CATS];
    int kv_bound; /* a prediction whose kv_cache is an upper bound, not the run's peak */
} gen_mem_bytes;
/* The peak bytes per category of a tracked allocator. */
void gen_mem_from_rt(gen_mem_bytes *out, const rt_mem *mem);

typedef struct {
    const char *model, *checkpoint; /* checkpoint NULL: random weights (seed) */
    uint64_t weights_seed;
    const rt_gen_cfg *cfg;
    int tp, threads;
    int64_t n_req;
    const rt_gen_request *req; /* tokens, n, max_new, out */
    int64_t prefix_tokens;
    rt_gen_stats st;       /* rank 0's (times: the slowest rank's) */
    gen_mem_bytes measured; /* peak per category, the largest over the tp ranks */
    int64_t budget_batch[2]; /* the planner's largest batch for the KV budget, prefix shared
                              * and not (gen_predict_batch); -1: no budget */
} gen_report;

/* predicted: NULL, or the prediction per category (workspace ignored). */
void gen_report_table(FILE *f, const gen_report *r, const gen_mem_bytes *predicted);
void gen_report_json(FILE *f, const gen_report *r, const gen_mem_bytes *predicted);

typedef struct {
    const char *model, *checkpoint, *text_path;
    uint64_t weights_seed;
    const rt_gen_cfg *cfg;
    int tp, threads;
    int64_t window, tokens; /* predicted tokens */
    double nll, kl;         /* sums (nats) */
    double seconds;
} gen_eval_report;

void gen_eval_report_table(FILE *f, const gen_eval_report *r);

/* --write-text: every request's tokens (prefix and prompt) and then its generated
 * ones, as bytes, each record followed by "\n%\n" (the fortune files' separator
 * line, so the file is a corpus for run's train.data), written atomically.
 * Tokens must be bytes (a vocab-256 model). 0, or -1 with err naming path. */
int gen_text_write(const char *path, const rt_gen_request *req, int64_t n_req, ps_err *err);
void gen_eval_report_json(FILE *f, const gen_eval_report *r);

#endif
