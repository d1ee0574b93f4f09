/* rt_data.h — training data: synthetic token streams (for speed runs) or a
 * plain-text corpus read as bytes (a byte-level tokenizer: token = byte, so
 * the vocabulary must have at least 256 entries).
 *
 * Sequence g of the run (g = step * global_batch + index in the global
 * batch) depends only on (seed, g): a data-parallel rank reads the sequences
 * of its share, and any number of ranks sees the same global batch as one.
 */
#ifndef PS_RT_DATA_H
#define PS_RT_DATA_H

#include <stdint.h>

#include "program/program.h"

typedef struct {
    prog_data_kind kind;
    uint8_t *text; /* DATA_TEXT: the corpus (host memory of the data loader) */
    int64_t len;
    int64_t files;
    uint64_t seed;
    int64_t vocab, seq;
} rt_data;

/* The most a text corpus may hold by default (it is read into host memory). */
#define RT_DATA_LIMIT_BYTES ((int64_t)1 << 30)

/* Open the program's data source; errors name the path and what was found.
 * A corpus is a regular file, or a directory whose regular files are read in
 * name order; anything else (a device such as /dev/zero, a FIFO, a socket)
 * is refused without reading, and so is a corpus over limit_bytes (0: the
 * default RT_DATA_LIMIT_BYTES). */
int rt_data_open(rt_data *d, const program *p, int64_t limit_bytes, ps_err *err);
void rt_data_close(rt_data *d);

/* Sequences first .. first+n-1: seq tokens each into tokens, and the next
 * token of each position into targets. */
void rt_data_batch(const rt_data *d, int64_t first, int64_t n, int32_t *tokens, int32_t *targets);

#endif
