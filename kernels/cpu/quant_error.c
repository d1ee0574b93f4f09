/* quant_error.c — reconstruction error of a quantized tensor (kern_quant.h).
 *
 * Formulas (docs/quantization.md, "Kernels"): with d = x - x^ over n elements,
 *   max_abs = max |d|,  mse = sum d^2 / n,
 *   sqnr_db = 10 log10(sum x^2 / sum d^2)   (+inf when d = 0 everywhere, -inf
 *   when x = 0 and d != 0), the signal-to-quantization-noise ratio.
 * Why this way: sums in double (n up to a whole weight matrix), one pass, on one
 * thread — it runs once per tensor in experiments, not in a forward.
 */
#include <math.h>

#include "kern_quant.h"

void kern_quant_error(quant_error *e, const float *x, const float *xhat, int64_t n) {
    double mx = 0.0, sd = 0.0, sx = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const double xi = x[i], d = xi - (double)xhat[i];
        mx = fabs(d) > mx ? fabs(d) : mx;
        sd += d * d;
        sx += xi * xi;
    }
    e->max_abs = mx;
    e->mse = n > 0 ? sd / (double)n : 0.0;
    e->sqnr_db = sd > 0.0 ? 10.0 * log10(sx / sd) : INFINITY;
}
