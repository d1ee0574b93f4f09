/* main.c — the parasim command: dispatch to subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef PARASIM_VERSION
#define PARASIM_VERSION "0.0.0"
#endif

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"plan", cmd_plan, "memory, communication, FLOPs and step time of one training plan"},
    {"sweep", cmd_sweep, "rank every plan of a space by predicted tokens/s (closed form)"},
    {"plot", cmd_plot, "draw a schedule's Gantt chart or a sweep's memory/throughput (gnuplot)"},
    {"emit", cmd_emit, "lower a plan to its execution plan: the ordered ops of each rank role"},
    {"run", cmd_run, "execute a plan for real (mpirun -np N parasim run PLAN) and measure it"},
    {"replay", cmd_replay, "memory timeline, communication bytes and time of an execution plan"},
    {"generate", cmd_generate, "serve requests with the inference engine (mpirun -np TP) and measure it"},
    {"infer", cmd_infer, "memory to serve a model at batch B and context S"},
    {"devices", cmd_devices, "CUDA devices the runtime can use (needs a CUDA build)"},
    {"calibrate", cmd_calibrate, "measure this machine (mpirun -np N) and write its cluster spec"},
    {"validate", cmd_validate, "run plans (mpirun -np N) and hold each to its prediction"},
    {NULL, NULL, NULL}};

static void help(FILE *f) {
    fprintf(f, "parasim %s — predict (and later run) LLM training parallelism plans\n\n"
               "usage: parasim <command> [options]    parasim <command> --help\n\ncommands:\n",
            PARASIM_VERSION);
    for (int i = 0; commands[i].name; i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-9s %s\n", "help", "this text");
    fprintf(f, "\nSpecs: models/*.yaml, plans/*.yaml, plans/sweeps/*.yaml, plans/clusters/*.yaml\n"
               "(docs/specs.md, docs/sweep.md). Formulas and their sources: docs/memory.md,\n"
               "docs/time.md; accuracy against published runs: docs/accuracy.md.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") ||
        !strcmp(argv[1], "-h")) {
        if (argc >= 3 && strcmp(argv[1], "help") == 0) {
            for (int i = 0; commands[i].name; i++)
                if (!strcmp(argv[2], commands[i].name)) {
                    char *sub[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, sub);
                }
        }
        help(stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("parasim %s\n", PARASIM_VERSION);
        return CLI_OK;
    }
    for (int i = 0; commands[i].name; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "parasim: unknown command \"%s\" (commands: plan, sweep, plot, emit, replay, run, generate, infer, devices, calibrate, validate, help)\n",
            argv[1]);
    return CLI_USAGE;
}
