/* gen_predict.h — parasim infer's prediction (cost/infer.h infer_memory_predict)
 * of the memory `parasim generate` measured, per category (gen_report.h). */
#ifndef PS_GEN_PREDICT_H
#define PS_GEN_PREDICT_H

#include "base/err.h"
#include "gen_report.h"

/* The planner's largest batch for the run's KV budget (cost/kv_blocks.h
 * kv_blocks_max_batch; docs/memory.md §8 "A KV budget"): equal requests as long
 * as the longest one's life (n + max_new - 1 tokens), sharing prefix_tokens with
 * prefix caching (out[0]) and sharing nothing (out[1]); -1 each without a budget
 * (st->kv_budget_blocks 0) or without a KV cache. */
void gen_predict_batch(const rt_gen_cfg *cfg, const rt_gen_stats *st, const rt_gen_request *req,
                       int64_t n_req, int64_t prefix_tokens, int64_t out[2]);

/* The prediction for the engine's model m and configuration cfg on tp ranks,
 * serving n_req requests (req: prompt tokens n with the prefix, max_new) of which
 * min(n_req, cfg->batch, the budget's batch of gen_predict_batch) are in the cache
 * at once — the longest of them, so that where requests end at different steps the
 * KV prediction bounds the run's peak from above (out->kv_bound) — prefix_tokens shared, and the largest forward the run made (st->max_forward_tokens). Each sequence
 * holds n + max_new - 1 tokens at the end (the last sampled token is never fed).
 * Workspace is not predicted (0). 0, or -1 with err (a shape infer refuses). */
int gen_predict(const rt_ckpt_model *m, const rt_gen_cfg *cfg, int tp, const rt_gen_request *req,
                int64_t n_req, int64_t prefix_tokens, const rt_gen_stats *st, gen_mem_bytes *out,
                ps_err *err);

#endif
