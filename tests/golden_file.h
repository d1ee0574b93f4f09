/* golden_file.h — reader for the golden files written by tools/golden_ref.py
 * (the PyTorch reference of the runtime's model): config values and named
 * tensors (parameters, logits, loss, gradients, AdamW steps).
 *
 * Format, all little-endian:
 *   char    magic[8] = "PSGOLDEN"
 *   int32   version = 1
 *   int32   n_config
 *   n_config x { char name[16] (NUL-padded); int64 value }
 *   int32   n_tensors
 *   n_tensors x {
 *     char  name[32] (NUL-padded)
 *     int32 dtype   (0 = f32, 1 = i32)
 *     int32 ndim    (1..4)
 *     int64 dims[4] (unused = 1)
 *     data: prod(dims) elements of 4 bytes, row-major
 *   }
 * The file must end right after the last tensor. Config names are
 * case-sensitive ("h" is the hidden size, "H" the number of query heads).
 *
 * golden-tiny.bin (tests/data) holds config L h H KVH D f V B T and tensors
 * params, tokens, targets, logits, loss, grads, losses, params.step1,
 * params.step3; see tools/golden_ref.py for what each one is. */
#ifndef PS_GOLDEN_FILE_H
#define PS_GOLDEN_FILE_H

#include <stdint.h>

#define GOLDEN_NAME_CONFIG 16
#define GOLDEN_NAME_TENSOR 32
#define GOLDEN_MAX_DIMS 4

typedef enum { GOLDEN_F32 = 0, GOLDEN_I32 = 1 } golden_dtype;

typedef struct {
    char name[GOLDEN_NAME_TENSOR + 1];
    golden_dtype dtype;
    int ndim;
    int64_t dims[GOLDEN_MAX_DIMS]; /* unused = 1 */
    int64_t count;                 /* product of dims */
    union {
        float *f32;
        int32_t *i32;
        void *data;
    } u;
} golden_tensor;

typedef struct {
    char name[GOLDEN_NAME_CONFIG + 1];
    int64_t value;
} golden_cfg_entry;

typedef struct {
    int version;
    int n_config;
    golden_cfg_entry *config;
    int n_tensors;
    golden_tensor *tensors;
} golden;

/* Load a golden file. Returns 0, or -1 with a message naming the file and
 * the fault in err (and *out left empty; golden_free on it is harmless). */
int golden_load(const char *path, golden *out, char *err, int err_len);

/* The tensor called name, or NULL. */
const golden_tensor *golden_get(const golden *g, const char *name);

/* The config value called name, or -1 if there is none. */
int64_t golden_config(const golden *g, const char *name);

void golden_free(golden *g);

#endif
