/* TEMPORARY (helper gen): link stubs for kern_quant.h until helper quant's kernels are merged. */
#include <stdlib.h>
#include "kern_quant.h"
int64_t kern_quant_groups(const quant_spec *s, int64_t R, int64_t C) {
    return s->gran == QG_TENSOR ? 1 : s->gran == QG_ROW ? R : s->gran == QG_COL ? C : R * C / s->block;
}
int64_t kern_quant_bytes(const quant_spec *s, int64_t R, int64_t C) {
    return s->bits == 4 ? (R * C + 1) / 2 : R * C;
}
int64_t kern_quant_group_of(const quant_spec *s, int64_t R, int64_t C, int64_t r, int64_t c) {
    (void)R;
    return s->gran == QG_TENSOR ? 0 : s->gran == QG_ROW ? r : s->gran == QG_COL ? c : (r * C + c) / s->block;
}
void kern_quantize(void *q, float *scale, float *zero, const float *x, int64_t R, int64_t C,
                   const quant_spec *s) { (void)q, (void)scale, (void)zero, (void)x, (void)R, (void)C, (void)s; abort(); }
void kern_dequantize(float *x, const void *q, const float *scale, const float *zero, int64_t R,
                     int64_t C, const quant_spec *s) { (void)q, (void)scale, (void)zero, (void)x, (void)R, (void)C, (void)s; abort(); }
void kern_matmul_int8_fwd(float *out, const int8_t *xq, const float *xs, const float *xz,
                          quant_gran xg, const int8_t *wq, const float *ws, const float *wz,
                          quant_gran wg, int64_t N, int64_t C, int64_t OC, int32_t *acc) {
    (void)out, (void)xq, (void)xs, (void)xz, (void)xg, (void)wq, (void)ws, (void)wz, (void)wg, (void)N, (void)C, (void)OC, (void)acc; abort(); }
int64_t kern_int8_decomp_scratch_bytes(int64_t N, int64_t C, int64_t OC) { return N * C * 8 + OC * 0; }
int64_t kern_matmul_int8_decomp_fwd(float *out, const float *x, const float *w,
                                    const int8_t *wq, const float *ws, int64_t N, int64_t C,
                                    int64_t OC, float threshold, void *scratch) {
    (void)out, (void)x, (void)w, (void)wq, (void)ws, (void)N, (void)C, (void)OC, (void)threshold, (void)scratch; abort(); }
