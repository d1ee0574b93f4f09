/* gen_predict.c — parasim infer's prediction beside generate's measurement (gen_predict.h). */
#include <stdlib.h>
#include <string.h>

#include "cost/infer.h"
#include "cost/kv_blocks.h"
#include "gen_predict.h"

void gen_predict_batch(const rt_gen_cfg *cfg, const rt_gen_stats *st, const rt_gen_request *req,
                       int64_t n_req, int64_t prefix_tokens, int64_t out[2]) {
    out[0] = out[1] = -1;
    if (!st->kv_budget_blocks || cfg->no_cache) return;
    int64_t n = 0;
    for (int64_t i = 0; i < n_req; i++)
        if (req[i].n + req[i].max_new - 1 > n) n = req[i].n + req[i].max_new - 1;
    out[0] = kv_blocks_max_batch(st->kv_budget_blocks, n, prefix_tokens, cfg->block_size);
    out[1] = kv_blocks_max_batch(st->kv_budget_blocks, n, 0, cfg->block_size);
}

static int longest_first(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

int gen_predict(const rt_ckpt_model *m, const rt_gen_cfg *cfg, int tp, const rt_gen_request *req,
                int64_t n_req, int64_t prefix_tokens, const rt_gen_stats *st, gen_mem_bytes *out,
                ps_err *err) {
    model_cfg mc = {.layers = m->layers, .hidden = m->hidden, .heads = m->heads,
                    .kv_heads = m->kv_heads, .head_dim = m->head_dim,
                    .ffn_hidden = m->ffn_hidden, .vocab = m->vocab, .norm = NORM_RMSNORM,
                    .mlp = MLP_SWIGLU, .attention = ATTN_FLASH, .position = POS_ROPE,
                    .bias = BIAS_NONE};
    infer_cfg ic;
    infer_cfg_init(&ic);
    ic.tp = tp, ic.group_size = cfg->group, ic.block_size = cfg->block_size, ic.compute = DT_FP32;
    ic.weights = WQ_COUNT;
    for (int i = 0; infer_weights_names[i]; i++)
        if (!strcmp(infer_weights_names[i], rt_wscheme_names[cfg->weights])) ic.weights = (infer_weights)i;
    static const infer_kv kv[3] = {KV_F32, KV_BF16, KV_INT8};
    ic.kv_cache = kv[cfg->kv];
    int64_t seqs = n_req < cfg->batch ? n_req : cfg->batch, fit[2];
    gen_predict_batch(cfg, st, req, n_req, prefix_tokens, fit);
    const int64_t budget_batch = fit[cfg->prefix_cache ? 0 : 1];
    if (budget_batch >= 0 && budget_batch < seqs) seqs = budget_batch;
    /* The planner's question: seqs sequences held at once, each at the end of its life. It
     * is the run's peak exactly when the sequences in the cache together end together: every
     * request in one wave with one max_new, or every request alike. Otherwise a request
     * leaves before the others peak, and the seqs longest lives bound the peak from above. */
    int64_t *n = malloc((size_t)(n_req + 1) * sizeof *n);
    if (!n) return ps_err_set(err, "out of host memory");
    int same_new = 1, alike = 1;
    for (int64_t i = 0; i < n_req; i++) {
        n[i] = req[i].n + req[i].max_new - 1;
        same_new &= req[i].max_new == req[0].max_new;
        alike &= req[i].max_new == req[0].max_new && req[i].n == req[0].n;
    }
    qsort(n, (size_t)n_req, sizeof *n, longest_first);
    const int64_t prefix = cfg->prefix_cache && !cfg->no_cache ? prefix_tokens : 0;
    infer_mem p;
    const int rc = infer_memory_predict(&mc, &ic, n, seqs, prefix, st->max_forward_tokens, &p, err);
    free(n);
    if (rc) return -1;
    memset(out, 0, sizeof *out);
    out->kv_bound = !cfg->no_cache && !alike && !(same_new && n_req <= seqs);
    out->bytes[GEN_MEM_WEIGHTS] = p.weights, out->bytes[GEN_MEM_SCALES] = p.scales;
    out->bytes[GEN_MEM_KV] = cfg->no_cache ? 0 : p.kv_cache;
    out->bytes[GEN_MEM_ACTIVATIONS] = p.activations, out->bytes[GEN_MEM_LOGITS] = p.logits;
    return 0;
}
