/* add.c — the residual connection, out = a + b, elementwise.
 *
 * Why this way: memory-bound, so one pass, parallel over elements when the
 * array is large enough to pay for waking the threads. out may alias a or b.
 * Its backward is the identity on each input (the runtime passes the same
 * gradient on; no kernel needed).
 */
#include "kern.h"

void kern_add(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for simd if (n >= 65536)
    for (int64_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}
