/* report_infer.c — serving memory as a table or JSON (see report.h). */
#include "base/fmt.h"
#include "base/jsonw.h"
#include "report/report.h"

static const char *compute_name(const infer_cfg *ic) {
    return ic->compute == DT_FP32 ? "f32" : "bf16";
}

/* Whether the scheme has a group (int4, int8-block, int4-block). */
static bool has_group(const infer_cfg *ic) {
    return ic->weights == WQ_INT4 || ic->weights == WQ_INT8_BLOCK || ic->weights == WQ_INT4_BLOCK;
}

void report_infer_table(FILE *f, const model_spec *m, const cluster_spec *c, const infer_cfg *ic,
                        const infer_result *r) {
    char a[32], b[32];
    char group[32] = "";
    if (has_group(ic)) snprintf(group, sizeof group, " (group %lld)", (long long)infer_group_size(ic));
    fprintf(f, "parasim infer: %s on %s, tp=%lld, batch %lld x context %lld, weights %s%s, KV cache "
               "%s in blocks of %lld, compute %s\n",
            m->name, c->gpu_name, (long long)ic->tp, (long long)ic->batch, (long long)ic->context,
            infer_weights_names[ic->weights], group, infer_kv_names[ic->kv_cache],
            (long long)ic->block_size, compute_name(ic));
    fprintf(f, "  %-26s %12s  (%.2f GB)\n", "weights", fmt_bytes(r->weights, a, sizeof a),
            (double)r->weights / 1e9);
    if (r->weight_scales)
        fprintf(f, "    %-24s %12s\n", "of which scales", fmt_bytes(r->weight_scales, a, sizeof a));
    fprintf(f, "  %-26s %12s  (%s per token%s; ", "KV cache", fmt_bytes(r->kv_cache, a, sizeof a),
            fmt_bytes(r->kv_per_token, b, sizeof b),
            model_is_mla(&m->cfg) ? ", the MLA latent, on every GPU" : "");
    fprintf(f, "%lld blocks of %s)\n", (long long)r->kv_blocks, fmt_bytes(r->kv_block, a, sizeof a));
    if (ic->prefix)
        fprintf(f, "    %-24s %12s  (%lld-token prefix: %lld full blocks held once)\n",
                "prefix caching saves", fmt_bytes(r->prefix_saved, a, sizeof a),
                (long long)ic->prefix, (long long)(ic->prefix / ic->block_size));
    fprintf(f, "  %-26s %12s  (a forward of %lld tokens)\n", "activations",
            fmt_bytes(r->activations, a, sizeof a), (long long)r->fwd_tokens);
    if (r->act_quant_input)
        fprintf(f, "    %-24s %12s\n", "of which quantized input", fmt_bytes(r->act_quant_input, a, sizeof a));
    if (r->act_dequant)
        fprintf(f, "    %-24s %12s\n", "of which dequantized W", fmt_bytes(r->act_dequant, a, sizeof a));
    fprintf(f, "  %-26s %12s\n", "logits", fmt_bytes(r->logits, a, sizeof a));
    if (r->reserved) fprintf(f, "  %-26s %12s\n", "reserved (context)", fmt_bytes(r->reserved, a, sizeof a));
    fprintf(f, "  %-26s %12s of %s per GPU: %s\n", "total", fmt_bytes(r->total, a, sizeof a),
            fmt_bytes(r->capacity, b, sizeof b), r->fits ? "fits" : "DOES NOT FIT");
    fprintf(f, "  largest batch at context %lld that fits: %lld", (long long)ic->context,
            (long long)r->max_batch);
    if (ic->prefix) fprintf(f, " (%lld without prefix caching)", (long long)r->max_batch_unshared);
    fprintf(f, "\n  longest context at batch %lld that fits: %lld%s\n", (long long)ic->batch,
            (long long)r->max_context, r->max_context == INFER_CONTEXT_MAX ? " (the limit)" : "");
    const int64_t per_node = c->cfg.gpus_per_node;
    if (r->min_tp && r->min_tp > per_node)
        fprintf(f, "  fewest GPUs (tp) that fit batch %lld x context %lld: %lld (tp across %lld "
                   "nodes of %lld)\n",
                (long long)ic->batch, (long long)ic->context, (long long)r->min_tp,
                (long long)((r->min_tp + per_node - 1) / per_node), (long long)per_node);
    else if (r->min_tp)
        fprintf(f, "  fewest GPUs (tp) that fit batch %lld x context %lld: %lld\n",
                (long long)ic->batch, (long long)ic->context, (long long)r->min_tp);
    else
        fprintf(f, "  fewest GPUs (tp) that fit batch %lld x context %lld: none of the %lld\n",
                (long long)ic->batch, (long long)ic->context, (long long)cluster_gpus(&c->cfg));
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
    jsonw_int(&w, "group_size", has_group(ic) ? infer_group_size(ic) : 0);
    jsonw_str(&w, "kv_dtype", infer_kv_names[ic->kv_cache]);
    jsonw_int(&w, "block_size", ic->block_size);
    jsonw_int(&w, "prefix", ic->prefix);
    jsonw_int(&w, "prefill_chunk", ic->prefill_chunk);
    jsonw_str(&w, "compute", compute_name(ic));
    jsonw_obj(&w, "memory");
    jsonw_int(&w, "weights", r->weights);
    jsonw_int(&w, "weight_scales", r->weight_scales);
    jsonw_int(&w, "kv_per_token", r->kv_per_token);
    jsonw_int(&w, "kv_block", r->kv_block);
    jsonw_int(&w, "kv_blocks", r->kv_blocks);
    jsonw_int(&w, "kv_cache", r->kv_cache);
    jsonw_int(&w, "prefix_saved", r->prefix_saved);
    jsonw_int(&w, "fwd_tokens", r->fwd_tokens);
    jsonw_int(&w, "activations", r->activations);
    jsonw_int(&w, "act_quant_input", r->act_quant_input);
    jsonw_int(&w, "act_dequant", r->act_dequant);
    jsonw_int(&w, "logits", r->logits);
    jsonw_int(&w, "reserved", r->reserved);
    jsonw_int(&w, "total", r->total);
    jsonw_int(&w, "capacity", r->capacity);
    jsonw_obj_end(&w);
    jsonw_int(&w, "max_batch", r->max_batch);
    jsonw_int(&w, "max_batch_unshared", r->max_batch_unshared);
    jsonw_int(&w, "max_context", r->max_context);
    jsonw_int(&w, "min_tp", r->min_tp);
    jsonw_bool(&w, "fits", r->fits);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}
