/* median.h — the median of a sample (timings: the runtime's calibration, validate). */
#ifndef PS_MEDIAN_H
#define PS_MEDIAN_H

/* The median of v[0..n) (n >= 1; the mean of the middle two when n is even); sorts v. */
double ps_median(double *v, int n);

#endif
