/* rt_gen_scheme.c — the weight schemes of the inference engine (rt_gen.h; the
 * contract in docs/runtime.md "Inference" and docs/quantization.md). */
#include <string.h>

#include "program/program.h"
#include "rt_gen.h"

/* the names a program's teacher may name (sim/program/program.c), in rt_wscheme order */
const char *const *const rt_wscheme_names = program_teacher_schemes;

int rt_wscheme_parse(const char *name) {
    for (int i = 0; name && i < RT_W_COUNT; i++)
        if (!strcmp(name, rt_wscheme_names[i])) return i;
    return -1;
}

bool rt_wscheme_int8_gemm(rt_wscheme s) {
    return s == RT_W_I8_TENSOR || s == RT_W_I8_ZEROPOINT || s == RT_W_I8_ROW || s == RT_W_I8_VECTOR;
}

bool rt_wscheme_dequant(rt_wscheme s) {
    return s == RT_W_BF16 || s == RT_W_I8_DECOMP || s == RT_W_I8_BLOCK || s == RT_W_I4_BLOCK;
}

bool rt_wscheme_weight_spec(rt_wscheme s, int64_t group, quant_spec *out) {
    static const struct {
        quant_kind kind;
        quant_gran gran;
        int bits;
    } k[RT_W_COUNT] = {
        [RT_W_I8_TENSOR] = {QK_ABSMAX, QG_TENSOR, 8}, [RT_W_I8_ZEROPOINT] = {QK_ZEROPOINT, QG_TENSOR, 8},
        [RT_W_I8_ROW] = {QK_ABSMAX, QG_ROW, 8},       [RT_W_I8_VECTOR] = {QK_ABSMAX, QG_ROW, 8},
        [RT_W_I8_DECOMP] = {QK_ABSMAX, QG_ROW, 8},    [RT_W_I8_BLOCK] = {QK_ABSMAX, QG_BLOCK, 8},
        [RT_W_I4_BLOCK] = {QK_ABSMAX, QG_BLOCK, 4}};
    if (s == RT_W_F32 || s == RT_W_BF16 || s < 0 || s >= RT_W_COUNT) return false;
    *out = (quant_spec){.kind = k[s].kind, .gran = k[s].gran, .bits = k[s].bits,
                        .block = k[s].gran == QG_BLOCK ? group : 0};
    return true;
}
