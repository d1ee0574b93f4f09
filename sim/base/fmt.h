/* fmt.h — numbers for people: bytes in binary units, large counts with
 * thousands separators, FLOPs in SI units, and bar charts for tables. */
#ifndef PS_FMT_H
#define PS_FMT_H

#include <stdint.h>

const char *fmt_bytes(int64_t bytes, char *buf, int len);   /* "14.96 GiB" */
const char *fmt_count(int64_t n, char *buf, int len);       /* "8,030,261,248" */
const char *fmt_si(double v, const char *unit, char *buf, int len); /* "3.52 PFLOP" */
/* A bar of `width` cells for value/max using Unicode block eighths. */
const char *fmt_bar(double value, double max, int width, char *buf, int len);

#endif
