/* rt_gen_weights.c — the inference engine's weights: the checkpoint's flat
 * layout, random weights, the outlier injection of the quantization
 * experiment, and loading a tp rank's shard in a weight scheme.
 *
 * The contract (docs/runtime.md §10): each of the 7 linears is
 * quantized on the WHOLE (one-rank) tensor, then sharded as Megatron-LM's tp
 * layout (rt_tp.h): wq, wk, wv, w1, w3 by rows (their per-row scales follow
 * the rows), wo and w2 by columns (every row's scale kept; blocks split with
 * the columns); a per-tensor scale is replicated. Norms are replicated, wte
 * and lm_head vocab-parallel (rows [t Vr, t Vr + valid), Vr = ceil(V / tp),
 * padding rows zero). Everything but the linears is bf16 (fp32 under f32).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "rt_gen.h"
#include "rt_hash.h"

int rt_gen_ckpt_random(rt_ckpt *ck, const rt_ckpt_model *m, uint64_t seed) {
    rt_ckpt_layout l;
    rt_ckpt_layout_of(m, &l);
    memset(ck, 0, sizeof *ck);
    ck->m = *m;
    ck->elems = l.elems;
    ck->data = malloc((size_t)l.elems * sizeof *ck->data);
    if (!ck->data) return -1;
    const double s = 0.02, s_out = 0.02 / sqrt(2.0 * (double)m->layers);
    for (int64_t i = 0; i < l.elems; i++) { /* one draw per element, by its flat index */
        const int64_t k = i - l.layer0, in = k % l.layer_elems; /* in a layer: its offset */
        const int is_layer = k >= 0 && k < m->layers * l.layer_elems;
        const int is_norm = is_layer ? (in >= l.attn_norm && in < l.attn_norm + m->hidden) ||
                                           (in >= l.mlp_norm && in < l.mlp_norm + m->hidden)
                                     : i >= l.final_norm && i < l.final_norm + m->hidden;
        const int is_out = is_layer && ((in >= l.wo && in < l.mlp_norm) || in >= l.w2);
        ck->data[i] = is_norm ? 1.0f : (float)((is_out ? s_out : s) * rt_normal_at(seed, i));
    }
    return 0;
}

static void cols_div(float *w, int64_t R, int64_t C, int64_t c, float s) {
    for (int64_t r = 0; r < R; r++)
        w[r * C + c] /= s;
}

int rt_gen_inject_outliers(rt_ckpt *ck, int64_t k, double scale) {
    const rt_ckpt_model *m = &ck->m;
    const int64_t h = m->hidden, q = m->heads * m->head_dim, kv = m->kv_heads * m->head_dim;
    rt_ckpt_layout l;
    rt_ckpt_layout_of(m, &l);
    if (k > h) k = h; /* every channel at most once (the draw below ends) */
    char *taken = calloc((size_t)h, 1);
    if (!taken) return -1;
    const float s = (float)scale;
    for (int64_t j = 0, n = 0; n < k; j++) {
        const int64_t c = (int64_t)(rt_mix64(0x6f75746c69657273ULL + (uint64_t)j) % (uint64_t)h);
        if (taken[c]) continue;
        taken[c] = 1, n++;
        for (int64_t i = 0; i < m->layers; i++) {
            float *b = ck->data + l.layer0 + i * l.layer_elems;
            b[l.attn_norm + c] *= s, b[l.mlp_norm + c] *= s;
            cols_div(b + l.wq, q, h, c, s), cols_div(b + l.wk, kv, h, c, s);
            cols_div(b + l.wv, kv, h, c, s), cols_div(b + l.w1, m->ffn_hidden, h, c, s);
            cols_div(b + l.w3, m->ffn_hidden, h, c, s);
        }
        ck->data[l.final_norm + c] *= s;
        cols_div(ck->data + l.lm_head, m->vocab, h, c, s);
    }
    free(taken);
    return 0;
}

int rt_gen_check(const rt_ckpt_model *m, const rt_gen_cfg *cfg, int size, ps_err *err) {
    const int64_t tp = size;
    if (m->layers < 1 || m->hidden < 1 || m->heads < 1 || m->kv_heads < 1 || m->head_dim < 2 ||
        m->ffn_hidden < 1 || m->vocab < 1 || m->heads % m->kv_heads || m->head_dim % 2)
        return ps_err_set(err, "model %s: expected positive shapes, heads a multiple of kv_heads "
                               "and an even head_dim", m->model);
    if (m->heads % tp || m->kv_heads % tp || m->ffn_hidden % tp)
        return ps_err_set(err, "tp %lld (the ranks): expected a divisor of heads = %lld, kv_heads "
                               "= %lld and ffn_hidden = %lld of model %s", (long long)tp,
                          (long long)m->heads, (long long)m->kv_heads, (long long)m->ffn_hidden,
                          m->model);
    if (m->vocab < 256) /* prompts, prefixes and eval text are bytes (as rt_data's corpus) */
        return ps_err_set(err, "model %s: byte tokens need a vocabulary of at least 256 tokens; "
                               "the model has vocab = %lld", m->model, (long long)m->vocab);
    const int64_t q = m->heads * m->head_dim / tp, f = m->ffn_hidden / tp;
    int64_t widest = m->hidden > q ? m->hidden : q; /* the linears read h, q or f features */
    if (f > widest) widest = f;
    if (rt_wscheme_int8_gemm(cfg->weights) && widest > KERN_I8_C_MAX)
        return ps_err_set(err, "--weights %s: the int8 GEMM's int32 sums hold inputs of at most "
                               "%lld features (kern_quant.h), but a linear of model %s on a rank "
                               "reads %lld", rt_wscheme_names[cfg->weights],
                          (long long)KERN_I8_C_MAX, m->model, (long long)widest);
    quant_spec qs;
    if (rt_wscheme_weight_spec(cfg->weights, cfg->group, &qs) && qs.gran == QG_BLOCK) {
        const int64_t widths[3] = {m->hidden, m->heads * m->head_dim / tp, m->ffn_hidden / tp};
        static const char *const what[3] = {"hidden", "heads x head_dim / tp", "ffn_hidden / tp"};
        for (int i = 0; i < 3; i++)
            if (widths[i] % cfg->group)
                return ps_err_set(err, "--group-size %lld: expected a divisor of every linear's "
                                       "input width on a rank, but %s = %lld of model %s is not "
                                       "a multiple of it", (long long)cfg->group, what[i],
                                  (long long)widths[i], m->model);
    }
    return 0;
}

/* n fp32 values to the storage dtype, in a new MEM_PARAMS block (rows of width w
 * from src, `rows` of them, into a block of cap_rows rows: padding stays zero). */
static void *store(rt_gen *g, const float *src, int64_t rows, int64_t cap_rows, int64_t w) {
    void *p = rt_mem_alloc(g->mem, g->cat_weights, cap_rows * w * rt_dtype_bytes(g->sdt));
    if (!p) return NULL;
    if (g->sdt == RT_F32) memcpy(p, src, (size_t)(rows * w) * sizeof(float));
    else g->be->to_bf16(p, src, rows * w);
    return p;
}

/* The shard rows [r0, r0 + nr) x columns [c0, c0 + nc) of W[R][C] as fp32. */
static float *shard_f32(const float *W, int64_t C, int64_t r0, int64_t nr, int64_t c0, int64_t nc) {
    float *s = malloc((size_t)(nr * nc) * sizeof *s);
    if (s)
        for (int64_t r = 0; r < nr; r++)
            memcpy(s + r * nc, W + (r0 + r) * C + c0, (size_t)nc * sizeof *s);
    return s;
}

/* Copy the quantized shard (values and per-group entries) out of the whole tensor's. */
static void shard_quant(const quant_spec *qs, const uint8_t *q, const float *sc, const float *zp,
                        int64_t R, int64_t C, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                        uint8_t *qo, float *so, float *zo) {
    for (int64_t r = 0; r < nr; r++) {
        if (qs->bits == 8) {
            memcpy(qo + r * nc, q + (r0 + r) * C + c0, (size_t)nc);
        } else {
            for (int64_t c = 0; c < nc; c++) {
                const int64_t e = (r0 + r) * C + c0 + c, o = r * nc + c;
                const uint8_t nib = (uint8_t)((q[e / 2] >> (4 * (e & 1))) & 0xF);
                qo[o / 2] = (uint8_t)((qo[o / 2] & ~(0xF << (4 * (o & 1)))) | (nib << (4 * (o & 1))));
            }
        }
        for (int64_t c = 0; c < nc; c++) {
            const int64_t gi = kern_quant_group_of(qs, nr, nc, r, c);
            const int64_t gw = kern_quant_group_of(qs, R, C, r0 + r, c0 + c);
            so[gi] = sc[gw];
            if (zo) zo[gi] = zp[gw];
        }
    }
}

/* One linear W[R][C] (whole), split by rows (by_rows) or columns over tp. */
static int load_lin(rt_gen *g, rt_gen_lin *l, const float *W, int64_t R, int64_t C, bool by_rows) {
    const int64_t tp = g->tp_size, t = g->tp_rank;
    const int64_t nr = by_rows ? R / tp : R, nc = by_rows ? C : C / tp;
    const int64_t r0 = by_rows ? t * nr : 0, c0 = by_rows ? 0 : t * nc;
    l->R = nr, l->C = nc;
    quant_spec qs;
    if (!rt_wscheme_weight_spec(g->cfg.weights, g->cfg.group, &qs)) {
        float *s = shard_f32(W, C, r0, nr, c0, nc);
        if (!s) return -1;
        const rt_dtype dt = g->cfg.weights == RT_W_F32 ? RT_F32 : RT_BF16;
        l->w = rt_mem_alloc(g->mem, g->cat_weights, nr * nc * rt_dtype_bytes(dt));
        if (l->w) {
            if (dt == RT_F32) memcpy(l->w, s, (size_t)(nr * nc) * sizeof *s);
            else g->be->to_bf16(l->w, s, nr * nc);
        }
        free(s);
        return l->w ? 0 : -1;
    }
    l->qs = qs;
    const bool zp = qs.kind == QK_ZEROPOINT;
    const int64_t groups = kern_quant_groups(&qs, R, C), sg = kern_quant_groups(&qs, nr, nc);
    uint8_t *q = calloc((size_t)kern_quant_bytes(&qs, R, C), 1);
    float *sc = malloc((size_t)groups * sizeof *sc), *z = zp ? malloc((size_t)groups * sizeof *z) : NULL;
    l->w = rt_mem_alloc(g->mem, g->cat_weights, kern_quant_bytes(&qs, nr, nc));
    l->scale = rt_mem_alloc(g->mem, g->cat_scales, sg * 4);
    if (zp) l->zero = rt_mem_alloc(g->mem, g->cat_scales, sg * 4);
    const int ok = q && sc && (!zp || z) && l->w && l->scale && (!zp || l->zero);
    if (ok) {
        kern_quantize(q, sc, z, W, R, C, &qs);
        shard_quant(&qs, q, sc, z, R, C, r0, nr, c0, nc, l->w, l->scale, l->zero);
    }
    free(q), free(sc), free(z);
    return ok ? 0 : -1;
}

int rt_gen_load(rt_gen *g, const rt_ckpt *ck, ps_err *err) {
    const rt_ckpt_model *m = &ck->m;
    rt_ckpt_layout lay;
    rt_ckpt_layout_of(m, &lay);
    const int64_t h = m->hidden, q = m->heads * m->head_dim, kv = m->kv_heads * m->head_dim;
    const int64_t f = m->ffn_hidden;
    if (ck->elems != lay.elems)
        return ps_err_set(err, "checkpoint of %s: expected %lld values for its shape, found %lld",
                          m->model, (long long)lay.elems, (long long)ck->elems);
    g->layers = calloc((size_t)m->layers, sizeof *g->layers);
    if (!g->layers) return ps_err_set(err, "out of host memory for the model's layers");
    const struct {
        int64_t off, R, C;
        bool rows;
    } lin[RT_LINS] = {{lay.wq, q, h, true},  {lay.wk, kv, h, true}, {lay.wv, kv, h, true},
                      {lay.wo, h, q, false}, {lay.w1, f, h, true},  {lay.w3, f, h, true},
                      {lay.w2, h, f, false}};
    for (int64_t i = 0; i < m->layers; i++) {
        const float *b = ck->data + lay.layer0 + i * lay.layer_elems;
        rt_gen_layer *L = &g->layers[i];
        if (!(L->attn_norm = store(g, b + lay.attn_norm, 1, 1, h)) ||
            !(L->mlp_norm = store(g, b + lay.mlp_norm, 1, 1, h)))
            goto oom;
        for (int k = 0; k < RT_LINS; k++)
            if (load_lin(g, &L->lin[k], b + lin[k].off, lin[k].R, lin[k].C, lin[k].rows)) goto oom;
    }
    if (!(g->final_norm = store(g, ck->data + lay.final_norm, 1, 1, h)) ||
        !(g->wte = store(g, ck->data + lay.wte + g->vfirst * h, g->vvalid, g->Vr, h)) ||
        !(g->lm_head = store(g, ck->data + lay.lm_head + g->vfirst * h, g->vvalid, g->Vr, h)))
        goto oom;
    return 0;
oom:
    return ps_err_set(err, "out of memory loading the weights of %s (%s)", m->model,
                      rt_wscheme_names[g->cfg.weights]);
}
