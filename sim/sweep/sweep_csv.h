/* sweep_csv.h — every point of a sweep as one CSV row, streamed (constant
 * memory however many points), fast enough not to slow the sweep much
 * (columns in docs/sweep.md). */
#ifndef PS_SWEEP_CSV_H
#define PS_SWEEP_CSV_H

#include <stdio.h>

#include "sweep/sweep.h"

void sweep_csv_header(FILE *f);
void sweep_csv_row(FILE *f, const sweep_point *pt);

#endif
