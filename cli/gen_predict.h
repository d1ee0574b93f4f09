/* gen_predict.h — parasim infer's prediction (cost/infer.h infer_memory_predict)
 * of the memory `parasim generate` measured, per category (gen_report.h). */
#ifndef PS_GEN_PREDICT_H
#define PS_GEN_PREDICT_H

#include "base/err.h"
#include "gen_report.h"

/* The prediction for the engine's model m and configuration cfg on tp ranks,
 * serving n_req requests (req: prompt tokens n with the prefix, max_new) of which
 * the first min(n_req, cfg->batch) are in the cache at once, prefix_tokens shared,
 * and the largest forward the run made (st->max_forward_tokens). Each sequence
 * holds n + max_new - 1 tokens at the end (the last sampled token is never fed).
 * Workspace is not predicted (0). 0, or -1 with err (a shape infer refuses). */
int gen_predict(const rt_ckpt_model *m, const rt_gen_cfg *cfg, int tp, const rt_gen_request *req,
                int64_t n_req, int64_t prefix_tokens, const rt_gen_stats *st, gen_mem_bytes *out,
                ps_err *err);

#endif
