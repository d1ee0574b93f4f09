/* cmd_plot_profile.h — the charts of a run profile: `parasim plot memory`,
 * `plot peaks` and `plot schedule PROFILE.json` (docs/plots.md §3-5). */
#ifndef PS_CMD_PLOT_PROFILE_H
#define PS_CMD_PLOT_PROFILE_H

#include <stdio.h>

/* argv[1] names the chart; usage prints `parasim plot --help`. Return an exit code. */
int cmd_plot_memory(int argc, char **argv, void (*usage)(FILE *));
int cmd_plot_peaks(int argc, char **argv, void (*usage)(FILE *));
int cmd_plot_schedule_profile(int argc, char **argv, void (*usage)(FILE *));

#endif
