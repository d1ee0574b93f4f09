/* cmd_emit.c — `parasim emit`: lower a plan to its execution plan (the per-
 * role op list the replay predicts and the runtime executes; docs/plan-format.md). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "spec/plan.h"
#include "program/program.h"


static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim emit PLAN.yaml [-o PROGRAM.json] [--steps K] [--set key.path=value]...\n"
            "\n"
            "Lower a plan to its execution plan: the flat parameter space, the buffers and the\n"
            "ordered ops of K training steps (allocations and frees with their memory category,\n"
            "forward and backward of each unit per micro-batch, each collective with its range\n"
            "and bytes, the optimizer step), with the predicted bytes, FLOPs and seconds of each\n"
            "(docs/plan-format.md). `parasim replay` walks it; `parasim run` executes it.\n"
            "For now: data parallelism with ZeRO 0-3 (tp = pp = cp = 1), bf16-mixed or fp32,\n"
            "AdamW, the Llama-style block.\n"
            "\n"
            "  --steps K        training steps to emit (default: the plan's train.steps, 10)\n"
            "  --set k=v        override a plan field, e.g. --set parallel.zero=3 --set train.lr=3e-4\n"
            "  -o FILE          write to FILE atomically instead of standard output\n");
}

int cmd_emit(int argc, char **argv) {
    const char *path = NULL, *out_path = NULL;
    cli_overrides ov = {.n = 0};
    long long steps = 0;
    for (int i = 1, took; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        } else if ((took = cli_override_arg("emit", &ov, argc, argv, &i, 0)) != 0) {
            if (took < 0) return CLI_USAGE;
        } else if (!strcmp(a, "--steps")) {
            if (cli_int_arg("emit", a, i + 1 < argc ? argv[++i] : NULL, 1, 1000000, &steps))
                return CLI_USAGE;
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) return cli_fail("emit", CLI_USAGE, "%s: expected a file name", a);
            out_path = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("emit", CLI_USAGE, "unknown option \"%s\" (see parasim emit --help)", a);
        } else if (path) {
            return cli_fail("emit", CLI_USAGE, "expected one plan file, found \"%s\" and \"%s\"",
                            path, a);
        } else {
            path = a;
        }
    }
    if (!path)
        return cli_fail("emit", CLI_USAGE, "expected a plan file (e.g. plans/tiny-1m-cpu.yaml)");
    if (cli_check_not_input("emit", path, out_path)) return CLI_USAGE;
    ps_err err = {{0}};
    plan_spec *spec = calloc(1, sizeof *spec);
    program prog;
    memset(&prog, 0, sizeof prog);
    int rc = CLI_OK;
    if (!spec)
        rc = cli_fail("emit", CLI_FAIL, "out of memory");
    else if (plan_load(path, ov.ov, ov.n, spec, &err) ||
             program_emit(spec, steps > 0 ? (int)steps : spec->train.steps, &prog, &err) ||
             program_write_json(&prog, out_path, &err))
        rc = cli_fail("emit", CLI_FAIL, "%s", err.msg);
    program_free(&prog);
    free(spec);
    return rc;
}
