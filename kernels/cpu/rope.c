/* rope.c — rotary position embedding (Su et al. 2021, "RoFormer", eq. 34),
 * with the "rotate half" pairing of Hugging Face's Llama (apply_rotary_pos_emb):
 * for i < D/2 the pair (x[i], x[i+D/2]) is rotated by the angle
 *   a = t * inv_freq[i],  inv_freq[i] = 1 / theta^(2i/D):
 *   x[i]     <- x[i] cos a - x[i+D/2] sin a
 *   x[i+D/2] <- x[i+D/2] cos a + x[i] sin a
 * A rotation is orthogonal, so the backward is the rotation by -a applied to
 * the gradient (in place: it is the whole gradient of this op, not an
 * accumulation). inv_freq, the angle and cos/sin are fp32, computed the way
 * the Hugging Face code computes them, so that the results match PyTorch.
 * The _pos variants take each row's position from pos[T] (context
 * parallelism: a rank's rows are zig-zag chunks of the sequence, rotated by
 * their global positions).
 * Why this way: threads split the positions t; for one t, cos/sin of up to
 * ROPE_CHUNK frequencies go into a stack table (kernels allocate nothing)
 * that serves every batch row and head, so the trigonometry costs 1/(B*NH)
 * of the rotation, and the rotation itself is a vectorised loop over i.
 */
#include <math.h>

#include "kern.h"
#include "kern_elem.h"
#include "kern_math.h"

#define ROPE_CHUNK 128

KERN_SIMD_CLONES static void rope_rotate(float *x0, float *x1, const float *c, const float *s,
                                         int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float a = x0[i], b = x1[i];
        x0[i] = a * c[i] - b * s[i];
        x1[i] = b * c[i] + a * s[i];
    }
}

/* pos: the position of row t (NULL: t itself). */
static void rope_apply(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                       float theta, float sign) {
    const int64_t half = D / 2;
#pragma omp parallel for if (B * T * NH * D >= 32768)
    for (int64_t t = 0; t < T; t++) {
        float c[ROPE_CHUNK], s[ROPE_CHUNK];
        for (int64_t i0 = 0; i0 < half; i0 += ROPE_CHUNK) {
            const int64_t n = half - i0 < ROPE_CHUNK ? half - i0 : ROPE_CHUNK;
            for (int64_t i = 0; i < n; i++) {
                const float a = kern_rope_angle(pos ? pos[t] : t, i0 + i, D, theta);
                c[i] = cosf(a);
                s[i] = sign * sinf(a);
            }
            for (int64_t b = 0; b < B; b++) {
                float *xt = x + (b * T + t) * NH * D;
                for (int64_t h = 0; h < NH; h++)
                    rope_rotate(xt + h * D + i0, xt + h * D + half + i0, c, s, n);
            }
        }
    }
}

void kern_rope_fwd(float *x, int64_t B, int64_t T, int64_t NH, int64_t D, float theta) {
    rope_apply(x, NULL, B, T, NH, D, theta, 1.0f);
}

void kern_rope_bwd(float *dx, int64_t B, int64_t T, int64_t NH, int64_t D, float theta) {
    rope_apply(dx, NULL, B, T, NH, D, theta, -1.0f);
}

void kern_rope_pos_fwd(float *x, const int64_t *pos, int64_t B, int64_t T, int64_t NH, int64_t D,
                       float theta) {
    rope_apply(x, pos, B, T, NH, D, theta, 1.0f);
}

void kern_rope_pos_bwd(float *dx, const int64_t *pos, int64_t B, int64_t T, int64_t NH,
                       int64_t D, float theta) {
    rope_apply(dx, pos, B, T, NH, D, theta, -1.0f);
}
