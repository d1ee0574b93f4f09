/* report_infer.c — serving memory as a table or JSON (see report.h). */
#include "base/fmt.h"
#include "base/jsonw.h"
#include "report/report.h"

void report_infer_table(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                        const infer_result *r) {
    char a[32], b[32];
    fprintf(f, "parasim infer: %s on %s, tp=%lld, batch %lld x context %lld, weights %s, KV cache "
               "%s\n",
            m->name, c->gpu_name, (long long)ic->tp, (long long)ic->batch, (long long)ic->context,
            infer_weights_names[ic->weights], dtype_names[ic->kv_dtype]);
    fprintf(f, "  %-26s %12s\n", "weights", fmt_bytes(r->weights, a, sizeof a));
    if (r->weight_scales)
        fprintf(f, "    %-24s %12s\n", "of which scales", fmt_bytes(r->weight_scales, a, sizeof a));
    fprintf(f, "  %-26s %12s  (%s per token%s)\n", "KV cache", fmt_bytes(r->kv_cache, a, sizeof a),
            fmt_bytes(r->kv_per_token, b, sizeof b),
            model_is_mla(&m->cfg) ? ", the MLA latent, on every GPU" : "");
    fprintf(f, "  %-26s %12s\n", "prefill activations", fmt_bytes(r->activations, a, sizeof a));
    fprintf(f, "  %-26s %12s\n", "logits", fmt_bytes(r->logits, a, sizeof a));
    if (r->reserved) fprintf(f, "  %-26s %12s\n", "reserved (context)", fmt_bytes(r->reserved, a, sizeof a));
    fprintf(f, "  %-26s %12s of %s per GPU: %s\n", "total", fmt_bytes(r->total, a, sizeof a),
            fmt_bytes(r->capacity, b, sizeof b), r->fits ? "fits" : "DOES NOT FIT");
    fprintf(f, "  largest batch at context %lld that fits: %lld\n", (long long)ic->context,
            (long long)r->max_batch);
    if (model_is_moe(&m->cfg) && ic->tp > 1)
        fprintf(f, "  each GPU holds all %lld routed experts, each split %lld ways by tp (no "
                   "expert parallelism)\n",
                (long long)m->cfg.experts, (long long)ic->tp);
    else if (model_is_moe(&m->cfg))
        fprintf(f, "  the GPU holds all %lld routed experts\n", (long long)m->cfg.experts);
}

void report_infer_json(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                       const infer_result *r) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    jsonw_int(&w, "format_version", 1);
    jsonw_str(&w, "model", m->name);
    jsonw_str(&w, "cluster", c->name);
    jsonw_int(&w, "tp", ic->tp);
    jsonw_int(&w, "batch", ic->batch);
    jsonw_int(&w, "context", ic->context);
    jsonw_str(&w, "weights_dtype", infer_weights_names[ic->weights]);
    jsonw_str(&w, "kv_dtype", dtype_names[ic->kv_dtype]);
    jsonw_obj(&w, "memory");
    jsonw_int(&w, "weights", r->weights);
    jsonw_int(&w, "weight_scales", r->weight_scales);
    jsonw_int(&w, "kv_per_token", r->kv_per_token);
    jsonw_int(&w, "kv_cache", r->kv_cache);
    jsonw_int(&w, "activations", r->activations);
    jsonw_int(&w, "logits", r->logits);
    jsonw_int(&w, "reserved", r->reserved);
    jsonw_int(&w, "total", r->total);
    jsonw_int(&w, "capacity", r->capacity);
    jsonw_obj_end(&w);
    jsonw_int(&w, "max_batch", r->max_batch);
    jsonw_bool(&w, "fits", r->fits);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}
