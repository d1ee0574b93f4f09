/* dtype.h — element types that the memory model counts, and their sizes. */
#ifndef PS_DTYPE_H
#define PS_DTYPE_H

#include <stdint.h>

typedef enum { DT_NONE, DT_FP8, DT_BF16, DT_FP16, DT_FP32, DT_COUNT } ps_dtype;

/* Bytes per element (0 for DT_NONE: "not kept"). */
static inline int64_t dtype_bytes(ps_dtype t) {
    static const int64_t bytes[DT_COUNT] = {0, 1, 2, 2, 4};
    return (t >= 0 && t < DT_COUNT) ? bytes[t] : 0;
}

/* NULL-terminated names in enum order, for spec parsing: none fp8 bf16 fp16 fp32. */
extern const char *const dtype_names[];

#endif
