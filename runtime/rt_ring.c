/* rt_ring.c — the zig-zag layout and ring attention (see rt_ring.h). */
#include "rt_ring.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_model.h"

void rt_ring_positions(int64_t *pos, int64_t seq, int64_t cp, int64_t c) {
    const int64_t Tc = seq / (2 * cp), chunk[2] = {c, 2 * cp - 1 - c};
    for (int h = 0; h < 2; h++)
        for (int64_t t = 0; t < Tc; t++)
            pos[h * Tc + t] = chunk[h] * Tc + t;
}

int rt_ring_attach(rt_ring *r, struct rt_model *m, const program *p, rt_group *g, int rank,
                   ps_err *err) {
    memset(r, 0, sizeof *r);
    if (p->cp <= 1) return 0;
    if (p->seq % (2 * p->cp)) /* plan_check refuses it first */
        return ps_err_set(err,
                          "context parallelism: the sequence (%lld) is not a multiple of "
                          "2*cp = %lld",
                          (long long)p->seq, (long long)(2 * p->cp));
    r->g = g, r->cp = (int)p->cp, r->rank = rank;
    r->seq = p->seq, r->T = p->seq / p->cp;
    r->pos = malloc((size_t)(p->cp * r->T) * sizeof *r->pos);
    r->full = malloc((size_t)(2 * p->micro_batch * p->seq) * sizeof *r->full);
    if (!r->pos || !r->full) {
        rt_ring_free(r);
        return ps_err_set(err, "out of host memory for the context-parallel ring");
    }
    for (int c = 0; c < r->cp; c++)
        rt_ring_positions(r->pos + c * r->T, r->seq, r->cp, c);
    m->ring = r;
    m->pos = r->pos + rank * r->T;
    return 0;
}

void rt_ring_free(rt_ring *r) {
    free(r->pos);
    free(r->full);
    r->pos = NULL, r->full = NULL;
}

void rt_ring_batch(rt_ring *r, const rt_data *d, int64_t first, int64_t B, int32_t *tokens,
                   int32_t *targets) {
    int32_t *tok = r->full, *tgt = r->full + B * r->seq;
    const int64_t *pos = r->pos + r->rank * r->T;
    rt_data_batch(d, first, B, tok, tgt);
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < r->T; t++) {
            tokens[b * r->T + t] = tok[b * r->seq + pos[t]];
            targets[b * r->T + t] = tgt[b * r->seq + pos[t]];
        }
}

/* ---- one pass around the ring ---------------------------------------------- */

/* Send n elements of `send` to the next rank and receive the previous rank's
 * into `recv`. */
static int ring_pass(rt_ring *r, const rt_backend *be, const void *send, void *recv, int64_t n,
                     rt_dtype t, const char *what, ps_err *err) {
    const double t0 = be->now_seconds();
    const int next = (r->rank + 1) % r->cp, prev = (r->rank + r->cp - 1) % r->cp;
    if (be->sendrecv(r->g, send, next, recv, prev, n, t) != 0)
        return ps_err_set(err,
                          "the context-parallel ring's %s pass failed: %s -- a peer rank "
                          "died, or its link broke",
                          what, be->coll_error ? be->coll_error() : "");
    r->calls++;
    r->bytes += n * rt_dtype_bytes(t);
    r->seconds += be->now_seconds() - t0;
    return 0;
}

/* The blocks of one ring attention: tracked, freed together. */
typedef struct {
    rt_mem *mem;
    void *p[8];
    int n;
    int failed;
} blocks;

static void *block_new(blocks *b, mem_cat cat, int64_t bytes) {
    void *p = b->failed ? NULL : rt_mem_alloc(b->mem, cat, bytes);
    if (!p)
        b->failed = 1;
    else
        b->p[b->n++] = p;
    return p;
}

static int blocks_end(blocks *b, ps_err *err) {
    for (int i = 0; i < b->n; i++)
        rt_mem_free(b->mem, b->p[i]);
    if (b->failed)
        ps_err_set(err, "out of memory for the context-parallel ring's blocks (in use: %lld bytes)",
                   (long long)rt_mem_total(b->mem));
    return b->failed ? -1 : 0;
}

/* dst = K then V of this rank, as stored (dtype size esz, n elements each). */
static void pack(void *dst, const void *k, const void *v, int64_t n, int64_t esz) {
    memcpy(dst, k, (size_t)(n * esz));
    memcpy((char *)dst + n * esz, v, (size_t)(n * esz));
}

/* fp32 K and V of a block that arrived (in place when it is fp32). */
static float *as_f32(const rt_backend *be, void *blk, float *tmp, int64_t n, rt_dtype dt) {
    if (dt == RT_F32) return blk;
    be->from_bf16(tmp, blk, 2 * n);
    return tmp;
}

/* ---- forward --------------------------------------------------------------- */

int rt_ring_attn_fwd(rt_ring *r, const rt_backend *be, rt_mem *mem, rt_dtype dt, float *out,
                     float *lse, const float *q, const float *k, const float *v,
                     const void *k_store, const void *v_store, int64_t B, int64_t H, int64_t KVH,
                     int64_t D, ps_err *err) {
    const int64_t T = r->T, n = B * T * KVH * D, esz = rt_dtype_bytes(dt);
    blocks b = {.mem = mem};
    void *cur = block_new(&b, MEM_BUFFERS, 2 * n * esz),
         *nxt = block_new(&b, MEM_BUFFERS, 2 * n * esz);
    float *kv32 = dt == RT_F32 ? NULL : block_new(&b, MEM_WORKSPACE, 2 * n * 4);
    float *scratch = block_new(&b, MEM_WORKSPACE, be->attn_block_scratch_floats(T, T, D) * 4);
    if (b.failed) return blocks_end(&b, err);
    pack(cur, k_store, v_store, n, esz);
    memset(out, 0, (size_t)(B * T * H * D) * sizeof *out);
    for (int64_t i = 0; i < B * T * H; i++)
        lse[i] = -INFINITY;
    const int64_t *qpos = r->pos + r->rank * T;
    int rc = 0;
    for (int i = 0; i < r->cp && !rc; i++) {
        const int src = (r->rank + r->cp - i) % r->cp;
        const float *kv = i ? as_f32(be, cur, kv32, n, dt) : NULL;
        be->attn_block_fwd(out, lse, q, i ? kv : k, i ? kv + n : v, qpos, r->pos + src * T, B, T, T,
                           H, KVH, D, scratch);
        if (i + 1 < r->cp) {
            rc = ring_pass(r, be, cur, nxt, 2 * n, dt, "K/V", err);
            void *t = cur;
            cur = nxt, nxt = t;
        }
    }
    if (blocks_end(&b, err)) return -1;
    return rc;
}

/* ---- backward -------------------------------------------------------------- */

int rt_ring_attn_bwd(rt_ring *r, const rt_backend *be, rt_mem *mem, rt_dtype dt, float *dq,
                     float *dk, float *dv, const float *dout, const float *q, const float *k,
                     const float *v, const void *k_store, const void *v_store, const float *out,
                     const float *lse, int64_t B, int64_t H, int64_t KVH, int64_t D, ps_err *err) {
    const int64_t T = r->T, n = B * T * KVH * D, esz = rt_dtype_bytes(dt), blk = 2 * n * esz;
    blocks b = {.mem = mem};
    void *cur = block_new(&b, MEM_BUFFERS, blk), *nxt = block_new(&b, MEM_BUFFERS, blk);
    void *dcur = block_new(&b, MEM_BUFFERS, blk), *dnxt = block_new(&b, MEM_BUFFERS, blk);
    float *kv32 = dt == RT_F32 ? NULL : block_new(&b, MEM_WORKSPACE, 2 * n * 4);
    /* the dK/dV sum of the block held: the pass buffer itself in fp32 */
    float *acc = dt == RT_F32 ? NULL : block_new(&b, MEM_WORKSPACE, 2 * n * 4);
    float *scratch = block_new(&b, MEM_WORKSPACE, be->attn_block_scratch_floats(T, T, D) * 4);
    if (b.failed) return blocks_end(&b, err);
    const int64_t *qpos = r->pos + r->rank * T;
    int rc = 0;
    pack(cur, k_store, v_store, n, esz);
    /* the own block: straight into the own dK/dV */
    be->attn_block_bwd(dq, dk, dv, dout, q, k, v, out, lse, qpos, qpos, B, T, T, H, KVH, D,
                       scratch);
    for (int i = 1; i < r->cp && !rc; i++) {
        const int src = (r->rank + r->cp - i) % r->cp;
        rc = ring_pass(r, be, cur, nxt, 2 * n, dt, "K/V", err);
        if (rc) break;
        void *t = cur;
        cur = nxt, nxt = t;
        const float *kv = as_f32(be, cur, kv32, n, dt);
        /* the block's dK/dV so far: ranks src+1 .. this one's predecessor added theirs */
        float *a = dt == RT_F32 ? dcur : acc;
        if (i == 1)
            memset(a, 0, (size_t)(2 * n) * sizeof *a);
        else if (dt != RT_F32)
            be->from_bf16(a, dcur, 2 * n);
        be->attn_block_bwd(dq, a, a + n, dout, q, kv, kv + n, out, lse, qpos, r->pos + src * T, B,
                           T, T, H, KVH, D, scratch);
        if (dt != RT_F32) be->to_bf16(dcur, a, 2 * n);
        rc = ring_pass(r, be, dcur, dnxt, 2 * n, dt, "dK/dV", err);
        t = dcur;
        dcur = dnxt, dnxt = t;
    }
    if (!rc && r->cp > 1) { /* every other rank's share of the own block */
        const float *a = as_f32(be, dcur, acc, n, dt);
        be->add(dk, dk, a, n);
        be->add(dv, dv, a + n, n);
    }
    if (blocks_end(&b, err)) return -1;
    return rc;
}
