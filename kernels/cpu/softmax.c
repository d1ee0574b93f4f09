/* softmax.c — one softmax row, max-subtracted for range (the standard
 * stable form, e.g. Goodfellow et al. 2016 §4.1), vectorised; attention's
 * score rows and the cross-entropy's logit rows share it (kern_math.h). */
#include <math.h>

#include "kern_math.h"

KERN_SIMD_CLONES void kern_softmax_row(float *p, const float *x, int64_t n, float *max,
                                       float *sum) {
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < n; j++)
        m = x[j] > m ? x[j] : m;
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; j++) {
        const float e = kern_expf(x[j] - m);
        p[j] = e;
        s += e;
    }
    const float inv = 1.0f / s;
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        p[j] *= inv;
    *max = m;
    *sum = s;
}
