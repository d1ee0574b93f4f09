/* fmt.c — human-readable numbers (see fmt.h). */
#include "base/fmt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *fmt_bytes(int64_t bytes, char *buf, int len) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = 0;
    while (fabs(v) >= 1024.0 && u < 5) v /= 1024.0, u++;
    if (u == 0)
        snprintf(buf, (size_t)len, "%lld B", (long long)bytes);
    else
        snprintf(buf, (size_t)len, "%.2f %s", v, units[u]);
    return buf;
}

const char *fmt_count(int64_t n, char *buf, int len) {
    char digits[32];
    int nd = snprintf(digits, sizeof digits, "%lld", (long long)(n < 0 ? -n : n));
    int o = 0;
    if (n < 0 && o < len - 1) buf[o++] = '-';
    for (int i = 0; i < nd && o < len - 1; i++) {
        if (i && (nd - i) % 3 == 0 && o < len - 1) buf[o++] = ',';
        if (o < len - 1) buf[o++] = digits[i];
    }
    buf[o] = 0;
    return buf;
}

const char *fmt_si(double v, const char *unit, char *buf, int len) {
    static const char *const prefixes[] = {"", "k", "M", "G", "T", "P", "E", "Z", "Y"};
    int p = 0;
    while (fabs(v) >= 1000.0 && p < 8) v /= 1000.0, p++;
    snprintf(buf, (size_t)len, "%.3g %s%s", v, prefixes[p], unit);
    return buf;
}

const char *fmt_bar(double value, double max, int width, char *buf, int len) {
    static const char *const eighths[] = {"", "\xe2\x96\x8f", "\xe2\x96\x8e", "\xe2\x96\x8d",
                                          "\xe2\x96\x8c", "\xe2\x96\x8b", "\xe2\x96\x8a",
                                          "\xe2\x96\x89"};
    const char *full = "\xe2\x96\x88";
    int cells = max > 0 ? (int)lround(value / max * width * 8) : 0;
    if (cells < 0) cells = 0;
    if (cells > width * 8) cells = width * 8;
    int o = 0;
    buf[0] = 0;
    for (int i = 0; i < cells / 8 && o + 4 < len; i++) o += snprintf(buf + o, (size_t)(len - o), "%s", full);
    if (cells % 8 && o + 4 < len) o += snprintf(buf + o, (size_t)(len - o), "%s", eighths[cells % 8]);
    return buf;
}
