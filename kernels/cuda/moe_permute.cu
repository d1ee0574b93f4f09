/* moe_permute.cu — the CUDA twin of kernels/cpu/moe_permute.c: slots of a fixed-capacity
 * dispatch (choice (n, j) takes expert idx[n][j]'s next row in token order, or -1 past its
 * capacity), the permute into the dispatch buffer and the gate-weighted combine back, with
 * their backwards. Each output element is one thread's, summing in the CPU's order with
 * its roundings (no FMA), so every result is the CPU's bit for bit (the cross-backend
 * test's tolerance is 0). The slots are one thread per expert scanning the choices in
 * order (the order decides who is dropped; a twin, not the fast path). */
#include "kcu_launch.h"
#include "kern_cuda.h"

static __global__ void slots_kernel(int32_t *slot, int64_t *count, const int32_t *idx,
                                    int64_t NK, int64_t E, int64_t cap) {
    KCU_FOR(e, E) {
        int64_t c = 0;
        for (int64_t i = 0; i < NK; i++) {
            if (idx[i] != e) continue;
            slot[i] = c < cap ? (int32_t)(e * cap + c) : -1;
            c++;
        }
        count[e] = c;
    }
}

static __global__ void permute_fwd(float *buf, const float *x, const int32_t *slot, int64_t N,
                                   int64_t K, int64_t H) {
    KCU_FOR(e, N * K * H) {
        const int64_t c = e % H, nj = e / H, s = slot[nj];
        if (s >= 0) buf[s * H + c] = x[(nj / K) * H + c];
    }
}

static __global__ void permute_bwd(float *dx, const float *dbuf, const int32_t *slot, int64_t N,
                                   int64_t K, int64_t H) {
    KCU_FOR(e, N * H) {
        const int64_t n = e / H, c = e % H;
        float d = dx[e];
        for (int64_t j = 0; j < K; j++) {
            const int64_t s = slot[n * K + j];
            if (s >= 0) d = __fadd_rn(d, dbuf[s * H + c]);
        }
        dx[e] = d;
    }
}

static __global__ void unpermute_fwd(float *out, const float *buf, const float *gate,
                                     const int32_t *slot, int64_t N, int64_t K, int64_t H) {
    KCU_FOR(e, N * H) {
        const int64_t n = e / H, c = e % H;
        float o = 0.0f;
        for (int64_t j = 0; j < K; j++) {
            const int64_t s = slot[n * K + j];
            if (s >= 0) o = __fadd_rn(o, __fmul_rn(gate[n * K + j], buf[s * H + c]));
        }
        out[e] = o;
    }
}

/* dbuf[slot][c] += gate dout[n][c]: a slot belongs to one choice, so no two threads meet */
static __global__ void unpermute_bwd_buf(float *dbuf, const float *dout, const float *gate,
                                         const int32_t *slot, int64_t N, int64_t K, int64_t H) {
    KCU_FOR(e, N * K * H) {
        const int64_t c = e % H, nj = e / H, s = slot[nj];
        if (s >= 0)
            dbuf[s * H + c] = __fadd_rn(dbuf[s * H + c], __fmul_rn(gate[nj], dout[(nj / K) * H + c]));
    }
}

/* dgate[n][j] += dout[n] . buf[slot], summed over c in order */
static __global__ void unpermute_bwd_gate(float *dgate, const float *dout, const float *buf,
                                          const int32_t *slot, int64_t N, int64_t K, int64_t H) {
    KCU_FOR(nj, N * K) {
        const int64_t s = slot[nj], n = nj / K;
        if (s < 0) continue;
        float dot = 0.0f;
        for (int64_t c = 0; c < H; c++) dot = __fadd_rn(dot, __fmul_rn(dout[n * H + c], buf[s * H + c]));
        dgate[nj] = __fadd_rn(dgate[nj], dot);
    }
}

extern "C" void kcu_moe_slots(int32_t *slot, int64_t *count, const int32_t *idx, int64_t N,
                              int64_t K, int64_t E, int64_t cap) {
    if (E > 0) slots_kernel<<<kcu_blocks(E), KCU_THREADS>>>(slot, count, idx, N * K, E, cap);
}

extern "C" void kcu_moe_permute_fwd(float *buf, const float *x, const int32_t *slot, int64_t N,
                                    int64_t K, int64_t H, int64_t rows) {
    if (rows * H > 0) cudaMemsetAsync(buf, 0, (size_t)(rows * H) * sizeof *buf);
    if (N * K * H > 0) permute_fwd<<<kcu_blocks(N * K * H), KCU_THREADS>>>(buf, x, slot, N, K, H);
}

extern "C" void kcu_moe_permute_bwd(float *dx, const float *dbuf, const int32_t *slot, int64_t N,
                                    int64_t K, int64_t H) {
    if (dx && N * H > 0) permute_bwd<<<kcu_blocks(N * H), KCU_THREADS>>>(dx, dbuf, slot, N, K, H);
}

extern "C" void kcu_moe_unpermute_fwd(float *out, const float *buf, const float *gate,
                                      const int32_t *slot, int64_t N, int64_t K, int64_t H) {
    if (N * H > 0) unpermute_fwd<<<kcu_blocks(N * H), KCU_THREADS>>>(out, buf, gate, slot, N, K, H);
}

extern "C" void kcu_moe_unpermute_bwd(float *dbuf, float *dgate, const float *dout,
                                      const float *buf, const float *gate, const int32_t *slot,
                                      int64_t N, int64_t K, int64_t H) {
    if (N * K * H <= 0) return;
    if (dbuf)
        unpermute_bwd_buf<<<kcu_blocks(N * K * H), KCU_THREADS>>>(dbuf, dout, gate, slot, N, K, H);
    if (dgate)
        unpermute_bwd_gate<<<kcu_blocks(N * K), KCU_THREADS>>>(dgate, dout, buf, slot, N, K, H);
}
