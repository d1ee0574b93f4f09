/* cmd_plan.c — `parasim plan`: evaluate one plan with the closed-form model. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "time/eval.h"
#include "spec/plan.h"
#include "report/report.h"


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
            "is used. A plan with a distill: section also costs its teacher (weights, forward,\n"
            "KD tensors, FLOPs, logit transfer; docs/distillation.md).\n"
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
    cli_overrides ov = {.n = 0};
    for (int i = 1, took; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        } else if ((took = cli_override_arg("plan", &ov, argc, argv, &i, 1)) != 0) {
            if (took < 0) return CLI_USAGE;
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
    if (cli_check_not_input("plan", path, out_path)) return CLI_USAGE;
    ps_err err = {{0}};
    plan_spec *spec = calloc(1, sizeof *spec);
    eval_stage *stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    int rc = CLI_OK;
    if (!spec || !stages) {
        rc = cli_fail("plan", CLI_FAIL, "out of memory");
        goto done;
    }
    if (plan_load(path, ov.ov, ov.n, spec, &err)) {
        fprintf(stderr, "parasim plan: %s\n", err.msg);
        rc = CLI_FAIL;
        goto done;
    }
    eval_result r;
    eval_plan_spec(spec, &r, stages);
    if (eval_check_finite(&r, &err)) {
        rc = cli_fail("plan", CLI_FAIL, "%s", err.msg);
        goto done;
    }
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
