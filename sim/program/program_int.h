/* program_int.h — what the program modules share and nobody else needs:
 * op defaults, the enum spellings of the JSON format and the table of op
 * fields per kind that the writer (program_json.c) and the loader
 * (program_load.c) both follow, so the two cannot drift apart
 * (docs/plan-format.md §1).
 */
#ifndef PS_PROGRAM_INT_H
#define PS_PROGRAM_INT_H

#include <stddef.h>

#include "program/program.h"

#define PROGRAM_FORMAT_NAME "parasim-program"

/* An op of `kind` in `step` with every other field at its default: mb, unit
 * and peer -1, enums at their first value, numbers 0, recompute false. The
 * JSON omits an optional field that holds its default. */
void prog_op_init(prog_op *o, prog_kind kind, int32_t step);

/* "fwd", "bwd", "grads", "params", "p2p" in comm_phase order. */
extern const char *const prog_phase_names[];
#define PROG_PHASE_COUNT 5

typedef enum { PF_I32, PF_I64, PF_F64, PF_BOOL, PF_UNIT, PF_ENUM } prog_ftype;

typedef struct {
    const char *key;
    prog_ftype type;
    size_t off;                /* offsetof(prog_op, field) */
    const char *const *names;  /* PF_ENUM: the spellings, n_names of them */
    int n_names;
    unsigned kinds;            /* bit k: the field may appear on an op of kind k */
    unsigned required;         /* bit k: always written on kind k (else only when not default) */
} prog_field;

/* The op fields in the order they appear on a line ("op" itself excluded). */
extern const prog_field prog_fields[];
extern const int prog_n_fields;

/* Format a double so that strtod reads back the same value (integers
 * without a fraction, others with 17 significant digits). */
const char *prog_fmt_num(double v, char *buf, int len);

#endif
