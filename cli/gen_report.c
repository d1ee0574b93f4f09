/* gen_report.c — `parasim generate`'s report (gen_report.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomic_file.h"
#include "base/fmt.h"
#include "base/jsonw.h"
#include "gen_report.h"

const char *const gen_mem_names[GEN_MEM_CATS] = {"weights", "scales", "kv_cache",
                                                 "activations", "logits", "workspace"};

void gen_mem_from_rt(gen_mem_bytes *out, const rt_mem *mem) {
    static const int cat[GEN_MEM_CATS] = {MEM_PARAMS, RT_MEM_SCALES, RT_MEM_KV, MEM_ACTIVATIONS,
                                          RT_MEM_LOGITS, MEM_WORKSPACE};
    for (int i = 0; i < GEN_MEM_CATS; i++)
        out->bytes[i] = mem->peak[cat[i]];
}

/* Byte tokens as printable ASCII: \n, \t, \\ and \xNN for the rest (malloc'd). */
static char *escape(const int32_t *tok, int64_t n) {
    char *s = malloc((size_t)(4 * n + 1)), *p = s;
    if (!s) return NULL;
    for (int64_t i = 0; i < n; i++) {
        const int c = tok[i] & 0xFF;
        if (c == '\\') *p++ = '\\', *p++ = '\\';
        else if (c == '\n') *p++ = '\\', *p++ = 'n';
        else if (c == '\t') *p++ = '\\', *p++ = 't';
        else if (c >= 0x20 && c < 0x7F) *p++ = (char)c;
        else p += sprintf(p, "\\x%02x", c);
    }
    *p = 0;
    return s;
}

static double rate(int64_t tokens, double s) { return s > 0 ? (double)tokens / s : 0.0; }

static void header_table(FILE *f, const char *model, const char *ck, uint64_t seed,
                         const rt_gen_cfg *c, int tp, int threads) {
    const char *const *kv = kern_kv_dtype_names;
    fprintf(f, "model %s, ", model);
    if (ck) fprintf(f, "checkpoint %s\n", ck);
    else fprintf(f, "random weights (seed %llu)\n", (unsigned long long)seed);
    fprintf(f, "weights %s", rt_wscheme_names[c->weights]);
    quant_spec qs;
    if (rt_wscheme_weight_spec(c->weights, c->group, &qs) && qs.gran == QG_BLOCK)
        fprintf(f, " (group %lld)", (long long)c->group);
    fprintf(f, ", KV cache %s in blocks of %lld tokens%s, tp %d x %d threads\n", kv[c->kv],
            (long long)c->block_size, c->no_cache ? " (off: --no-cache)" : "", tp, threads);
}

void gen_report_table(FILE *f, const gen_report *r, const gen_mem_bytes *predicted) {
    const rt_gen_cfg *c = r->cfg;
    header_table(f, r->model, r->checkpoint, r->weights_seed, c, r->tp, r->threads);
    fprintf(f, "%lld requests (shared prefix %lld tokens), batch %lld, prefill chunk %lld, %s\n\n",
            (long long)r->n_req, (long long)r->prefix_tokens, (long long)c->batch,
            (long long)c->prefill_chunk,
            c->temperature > 0 ? "sampled" : "greedy");
    if (c->temperature > 0)
        fprintf(f, "(temperature %g, seed %llu)\n\n", c->temperature, (unsigned long long)c->seed);
    for (int64_t i = 0; i < r->n_req; i++) {
        const rt_gen_request *q = &r->req[i];
        char *p = escape(q->tokens + r->prefix_tokens, q->n - r->prefix_tokens);
        char *o = escape(q->out, q->max_new);
        fprintf(f, "[%lld] %s|%s\n", (long long)i, p ? p : "", o ? o : "");
        free(p), free(o);
    }
    const rt_gen_stats *s = &r->st;
    fprintf(f, "\nprefill  %10lld tokens  %9.3f s  %10.1f tokens/s  (%lld prompt tokens from the "
               "prefix cache)\n", (long long)s->prefill_tokens, s->prefill_s,
            rate(s->prefill_tokens, s->prefill_s), (long long)s->cached_tokens);
    fprintf(f, "decode   %10lld tokens  %9.3f s  %10.1f tokens/s\n\n", (long long)s->decode_tokens,
            s->decode_s, rate(s->decode_tokens, s->decode_s));
    fprintf(f, "memory per rank (peak)  %14s%s\n", "measured", predicted ? "       predicted" : "");
    for (int i = 0; i < GEN_MEM_CATS; i++) {
        char b[32], pb[32];
        fprintf(f, "  %-21s %14s", gen_mem_names[i], fmt_bytes(r->measured.bytes[i], b, sizeof b));
        if (predicted && i != GEN_MEM_WORKSPACE)
            fprintf(f, "  %14s", fmt_bytes(predicted->bytes[i], pb, sizeof pb));
        if (predicted && i == GEN_MEM_KV && predicted->kv_bound)
            fputs("  (at most: requests end at different steps)", f);
        fputc('\n', f);
    }
    if (!c->no_cache) {
        char b[32], sv[32];
        const int64_t saved = (s->kv_logical_blocks - s->kv_blocks) * s->kv_block_bytes;
        fprintf(f, "KV blocks at the peak: %lld of %s (%lld held by sequences, %lld shared); "
                   "prefix caching saved %s\n", (long long)s->kv_blocks,
                fmt_bytes(s->kv_block_bytes, b, sizeof b), (long long)s->kv_logical_blocks,
                (long long)s->kv_shared_blocks, fmt_bytes(saved, sv, sizeof sv));
    }
    fprintf(f, "most requests live at once: %lld (--batch %lld)", (long long)s->max_live,
            (long long)c->batch);
    if (s->kv_budget_blocks) {
        char b[32];
        fprintf(f, "; KV budget %s = %lld blocks, largest batch predicted %lld with prefix "
                   "caching, %lld without%s",
                fmt_bytes(c->kv_budget_bytes, b, sizeof b), (long long)s->kv_budget_blocks,
                (long long)r->budget_batch[0], (long long)r->budget_batch[1],
                c->prefix_cache ? "" : " (--no-prefix-cache)");
    }
    fputc('\n', f);
}

static void cfg_json(jsonw *w, const char *model, const char *ck, uint64_t seed,
                     const rt_gen_cfg *c, int tp, int threads) {
    const char *const *kv = kern_kv_dtype_names;
    jsonw_str(w, "model", model);
    if (ck) jsonw_str(w, "checkpoint", ck);
    else jsonw_raw(w, "checkpoint", "null");
    jsonw_int(w, "weights_seed", (int64_t)seed);
    jsonw_str(w, "weights", rt_wscheme_names[c->weights]);
    jsonw_int(w, "group_size", c->group);
    jsonw_str(w, "kv_cache", kv[c->kv]);
    jsonw_int(w, "block_size", c->block_size);
    jsonw_int(w, "prefill_chunk", c->prefill_chunk);
    jsonw_int(w, "batch", c->batch);
    jsonw_int(w, "tp", tp);
    jsonw_int(w, "threads", threads);
    jsonw_bool(w, "cache", !c->no_cache);
    jsonw_bool(w, "prefix_cache", c->prefix_cache && !c->no_cache);
    jsonw_num(w, "temperature", c->temperature);
    jsonw_int(w, "seed", (int64_t)c->seed);
    if (c->outlier_k) {
        jsonw_obj(w, "outliers");
        jsonw_int(w, "k", c->outlier_k);
        jsonw_num(w, "scale", c->outlier_scale);
        jsonw_obj_end(w);
    }
}

static void phase_json(jsonw *w, const char *key, int64_t tokens, double s) {
    jsonw_obj(w, key);
    jsonw_int(w, "tokens", tokens);
    jsonw_num(w, "seconds", s);
    jsonw_num(w, "tokens_per_s", rate(tokens, s));
    jsonw_obj_end(w);
}

void gen_report_json(FILE *f, const gen_report *r, const gen_mem_bytes *predicted) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    cfg_json(&w, r->model, r->checkpoint, r->weights_seed, r->cfg, r->tp, r->threads);
    jsonw_int(&w, "prefix_tokens", r->prefix_tokens);
    jsonw_arr(&w, "requests");
    for (int64_t i = 0; i < r->n_req; i++) {
        const rt_gen_request *q = &r->req[i];
        jsonw_obj(&w, NULL);
        jsonw_int(&w, "prompt_tokens", q->n);
        jsonw_int(&w, "new_tokens", q->max_new);
        char *p = escape(q->tokens + r->prefix_tokens, q->n - r->prefix_tokens);
        char *o = escape(q->out, q->max_new);
        jsonw_str(&w, "prompt", p ? p : "");
        jsonw_str(&w, "text", o ? o : "");
        free(p), free(o);
        char *arr = malloc((size_t)(12 * q->max_new + 3)), *a = arr; /* one line */
        if (arr) {
            *a++ = '[';
            for (int64_t t = 0; t < q->max_new; t++)
                a += sprintf(a, t ? ", %d" : "%d", (int)q->out[t]);
            strcpy(a, "]");
        }
        jsonw_raw(&w, "tokens", arr ? arr : "[]");
        free(arr);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    phase_json(&w, "prefill", r->st.prefill_tokens, r->st.prefill_s);
    phase_json(&w, "decode", r->st.decode_tokens, r->st.decode_s);
    jsonw_int(&w, "cached_prompt_tokens", r->st.cached_tokens);
    jsonw_int(&w, "largest_forward_tokens", r->st.max_forward_tokens);
    jsonw_int(&w, "largest_sampled_rows", r->st.max_sampled_rows);
    jsonw_obj(&w, "memory");
    for (int i = 0; i < GEN_MEM_CATS; i++) {
        jsonw_obj(&w, gen_mem_names[i]);
        jsonw_int(&w, "measured", r->measured.bytes[i]);
        if (predicted && i != GEN_MEM_WORKSPACE) jsonw_int(&w, "predicted", predicted->bytes[i]);
        else jsonw_raw(&w, "predicted", "null");
        if (predicted && i == GEN_MEM_KV) jsonw_bool(&w, "predicted_is_bound", predicted->kv_bound);
        jsonw_obj_end(&w);
    }
    jsonw_obj_end(&w);
    const rt_gen_stats *s = &r->st;
    jsonw_obj(&w, "kv_blocks");
    jsonw_int(&w, "block_bytes", s->kv_block_bytes);
    jsonw_int(&w, "allocated", s->kv_blocks);
    jsonw_int(&w, "logical", s->kv_logical_blocks);
    jsonw_int(&w, "shared", s->kv_shared_blocks);
    jsonw_int(&w, "saved_bytes", (s->kv_logical_blocks - s->kv_blocks) * s->kv_block_bytes);
    jsonw_obj_end(&w);
    jsonw_obj(&w, "concurrency");
    jsonw_int(&w, "batch", r->cfg->batch);
    jsonw_int(&w, "max_live", s->max_live);
    if (s->kv_budget_blocks) {
        jsonw_int(&w, "kv_budget_bytes", r->cfg->kv_budget_bytes);
        jsonw_int(&w, "kv_budget_blocks", s->kv_budget_blocks);
        jsonw_int(&w, "predicted_max_batch", r->budget_batch[0]);
        jsonw_int(&w, "predicted_max_batch_unshared", r->budget_batch[1]);
    } else {
        static const char *const none[] = {"kv_budget_bytes", "kv_budget_blocks",
                                           "predicted_max_batch", "predicted_max_batch_unshared"};
        for (int i = 0; i < 4; i++)
            jsonw_raw(&w, none[i], "null");
    }
    jsonw_obj_end(&w);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}

static double ppl(const gen_eval_report *r) {
    return r->tokens ? exp(r->nll / (double)r->tokens) : NAN;
}

void gen_eval_report_table(FILE *f, const gen_eval_report *r) {
    header_table(f, r->model, r->checkpoint, r->weights_seed, r->cfg, r->tp, r->threads);
    if (r->cfg->outlier_k)
        fprintf(f, "outliers injected: %lld hidden channels x %g\n", (long long)r->cfg->outlier_k,
                r->cfg->outlier_scale);
    fprintf(f, "eval %s: %lld predicted tokens in windows of %lld, %.2f s\n", r->text_path,
            (long long)r->tokens, (long long)r->window, r->seconds);
    fprintf(f, "perplexity %.4f   KL(f32 || %s) %.4g nats/token\n", ppl(r),
            rt_wscheme_names[r->cfg->weights], r->tokens ? r->kl / (double)r->tokens : 0.0);
}

void gen_eval_report_json(FILE *f, const gen_eval_report *r) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    cfg_json(&w, r->model, r->checkpoint, r->weights_seed, r->cfg, r->tp, r->threads);
    jsonw_str(&w, "eval", r->text_path);
    jsonw_int(&w, "window", r->window);
    jsonw_int(&w, "tokens", r->tokens);
    jsonw_num(&w, "nll", r->tokens ? r->nll / (double)r->tokens : 0.0);
    jsonw_num(&w, "perplexity", ppl(r));
    jsonw_num(&w, "kl", r->tokens ? r->kl / (double)r->tokens : 0.0);
    jsonw_num(&w, "seconds", r->seconds);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}

int gen_text_write(const char *path, const rt_gen_request *req, int64_t n_req, ps_err *err) {
    atomic_file a;
    ps_err e = {{0}};
    if (atomic_file_open(&a, path, &e)) return ps_err_set(err, "--write-text %s", e.msg);
    for (int64_t r = 0; r < n_req; r++) {
        const int32_t *seq[2] = {req[r].tokens, req[r].out};
        const int64_t len[2] = {req[r].n, req[r].max_new};
        for (int s = 0; s < 2; s++)
            for (int64_t t = 0; t < len[s]; t++) {
                if (seq[s][t] < 0 || seq[s][t] > 255) {
                    atomic_file_abort(&a);
                    return ps_err_set(err, "--write-text %s: request %lld: expected byte tokens, "
                                           "found token %d", path, (long long)r + 1, (int)seq[s][t]);
                }
                putc(seq[s][t], a.f);
            }
        fputs("\n%\n", a.f);
    }
    if (atomic_file_commit(&a, &e)) return ps_err_set(err, "--write-text %s", e.msg);
    return 0;
}
