/* cmd_plan.c — `parasim plan`: evaluate one plan with the closed-form model. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval.h"
#include "plan.h"
#include "report.h"

#define MAX_OVERRIDES 64

static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim plan [PLAN.yaml] [--model M] [--cluster C] [--set key.path=value]...\n"
            "                    [--format table|json] [-o FILE]\n"
            "\n"
            "Per-GPU memory (params, grads, master weights, optimizer states, activations,\n"
            "buffers) of the heaviest pipeline stage, communication bytes per collective,\n"
            "FLOPs and step time (compute, bubble, exposed communication per group, optimizer;\n"
            "tokens/s, MFU, HFU; the pipeline also replayed op by op) for one parallelism plan\n"
            "(docs/memory.md, docs/time.md). Without PLAN.yaml the built-in default plan below\n"
            "is used.\n"
            "\n"
            "  --set k=v        override a plan field, e.g. --set parallel.tp=2 --set batch.micro=2;\n"
            "                   the value is YAML (--set pipeline.layers=[9,10,10,9])\n"
            "  --model M        the plan's model: a name in models/, a spec path, or a Hugging\n"
            "                   Face config.json (same as --set model=M)\n"
            "  --cluster C      the plan's cluster (same as --set cluster=C)\n"
            "  --format FMT     table (default, for people) or json (docs/output.md)\n"
            "  -o FILE          write to FILE atomically instead of standard output\n"
            "\n"
            "Built-in default plan:\n%s",
            plan_default_yaml);
}

int cmd_plan(int argc, char **argv) {
    const char *path = NULL, *out_path = NULL, *format = "table";
    plan_override overrides[MAX_OVERRIDES];
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
            const char *v = a[5] == '=' ? a + 6 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) return cli_fail("plan", CLI_USAGE, "--set: expected key.path=value");
            if (n_over == MAX_OVERRIDES)
                return cli_fail("plan", CLI_USAGE, "--set: at most %d overrides", MAX_OVERRIDES);
            overrides[n_over++].text = v;
        } else if (!strcmp(a, "--model") || !strcmp(a, "--cluster")) {
            /* shorthand for --set model=... / --set cluster=... */
            static char texts[2][1100];
            int k = a[2] == 'm' ? 0 : 1;
            if (i + 1 >= argc) return cli_fail("plan", CLI_USAGE, "%s: expected a name or path", a);
            if (n_over == MAX_OVERRIDES)
                return cli_fail("plan", CLI_USAGE, "--set: at most %d overrides", MAX_OVERRIDES);
            snprintf(texts[k], sizeof texts[k], "%s=%.1000s", a + 2, argv[++i]);
            overrides[n_over++].text = texts[k];
        } else if (!strcmp(a, "--format") || !strncmp(a, "--format=", 9)) {
            format = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : "");
            if (strcmp(format, "table") && strcmp(format, "json"))
                return cli_fail("plan", CLI_USAGE, "--format: expected table or json, found \"%s\"",
                                format);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) return cli_fail("plan", CLI_USAGE, "%s: expected a file name", a);
            out_path = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("plan", CLI_USAGE, "unknown option \"%s\" (see parasim plan --help)", a);
        } else if (path) {
            return cli_fail("plan", CLI_USAGE, "expected one plan file, found \"%s\" and \"%s\"",
                            path, a);
        } else {
            path = a;
        }
    }
    ps_err err = {{0}};
    plan_spec *spec = calloc(1, sizeof *spec);
    eval_stage *stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    int rc = CLI_OK;
    if (!spec || !stages) {
        rc = cli_fail("plan", CLI_FAIL, "out of memory");
        goto done;
    }
    if (plan_load(path, overrides, n_over, spec, &err)) {
        fprintf(stderr, "parasim plan: %s\n", err.msg);
        rc = CLI_FAIL;
        goto done;
    }
    eval_result r;
    eval_plan(&spec->model.cfg, &spec->cluster.cfg, &spec->cfg, &r, stages);
    cli_out out;
    if (cli_out_open(&out, out_path, &err)) {
        rc = cli_fail("plan", CLI_FAIL, "%s", err.msg);
        goto done;
    }
    step_sim sim;
    step_sim_input *sin = malloc(sizeof *sin);
    const step_sim *simp = sin && !step_sim_run(&spec->cfg, stages, &r.time, NULL, sin, &sim)
                               ? &sim : NULL;
    if (!strcmp(format, "json"))
        report_plan_json(out.f, spec, &r, stages, simp);
    else
        report_plan_table(out.f, spec, &r, stages, simp);
    free(sin);
    if (cli_out_close(&out, &err)) rc = cli_fail("plan", CLI_FAIL, "%s", err.msg);
done:
    free(spec);
    free(stages);
    return rc;
}
