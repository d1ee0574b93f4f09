/* cluster_yaml.h — a cluster spec written back as YAML (docs/specs.md "Clusters"): every
 * field the loader reads, numbers to 17 significant digits in base units (B, B/s, s,
 * FLOP/s), so that cluster_load_file of the text gives the same cluster_cfg bit for bit
 * (tests/test_time.c test_cluster_yaml_round_trip). `parasim calibrate` writes its
 * fitted cluster with it, `comment` (lines without their '#', may be NULL) first. */
#ifndef PS_CLUSTER_YAML_H
#define PS_CLUSTER_YAML_H

#include <stdio.h>

#include "spec/cluster.h"

/* 0, or -1 when writing failed (ferror). */
int cluster_write_yaml(FILE *f, const cluster_spec *s, const char *comment);

#endif
