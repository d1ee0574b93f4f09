/* dtype.c — dtype names (see dtype.h). */
#include <stddef.h>

#include "base/dtype.h"

const char *const dtype_names[] = {"none", "fp8", "bf16", "fp16", "fp32", NULL};
