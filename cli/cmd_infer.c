/* cmd_infer.c — `parasim infer`: memory to serve batch B at context S. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cost/infer.h"
#include "report/report.h"
#include "spec/spec_path.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim infer [--model NAME|PATH] [--cluster NAME|PATH] [--tp N] [--batch B]\n"
            "                     [--context S] [--weights bf16|fp16|fp8|int8|int4]\n"
            "                     [--kv-cache bf16|fp16|fp8] [--group-size G] [--prefill-chunk T]\n"
            "                     [--format table|json] [-o FILE]\n"
            "\n"
            "Per-GPU memory to serve a model: weights (quantized linear layers with their scale\n"
            "overhead), KV cache per token (GQA- and MLA-aware), prefill working set and logits,\n"
            "and the largest batch that fits at the given context. A MoE model's tp ranks each\n"
            "hold every expert split by tp (no expert parallelism).\n"
            "Defaults: --model llama3-8b --cluster dgx-h100 --tp 1 --batch 1 --context 8192\n"
            "          --weights bf16 --kv-cache bf16 --group-size 128 --prefill-chunk 8192\n");
}

static int pick(const char *opt, const char *value, const char *const *names, int *out) {
    for (int i = 0; value && names[i]; i++)
        if (!strcmp(value, names[i])) return *out = i, 0;
    return cli_fail("infer", CLI_USAGE, "%s: expected one of the listed kinds (see --help), found \"%s\"",
                    opt, value ? value : "nothing");
}

static int load_specs(const char *model, const char *cluster, model_spec *m, cluster_spec *c) {
    char path[1024];
    ps_err err = {{0}};
    ps_loc where;
    ps_loc_set(&where, "", 0, 0);
    snprintf(where.file, sizeof where.file, "--model %s", model);
    if (spec_path_resolve(model, "models", NULL, &where, "model", path, sizeof path, &err) ||
        model_load_file(path, m, &err))
        return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    snprintf(where.file, sizeof where.file, "--cluster %s", cluster);
    if (spec_path_resolve(cluster, "plans/clusters", NULL, &where, "cluster", path, sizeof path,
                          &err) ||
        cluster_load_file(path, c, &err))
        return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    return 0;
}

int cmd_infer(int argc, char **argv) {
    const char *model = "llama3-8b", *cluster = "dgx-h100", *format = "table", *out_path = NULL;
    infer_cfg ic = {.batch = 1, .context = 8192, .tp = 1, .weights = WQ_BF16,
                    .kv_dtype = DT_BF16, .group_size = 128, .prefill_chunk = 8192};
    static const char *const kv_names[] = {"fp8", "bf16", "fp16", NULL};
    static const ps_dtype kv_dtypes[] = {DT_FP8, DT_BF16, DT_FP16};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        int k = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        }
        if (!strcmp(a, "--model") && v) model = v;
        else if (!strcmp(a, "--cluster") && v) cluster = v;
        else if (!strcmp(a, "--format") && v) format = v;
        else if (!strcmp(a, "-o") && v) out_path = v;
        else if (!strcmp(a, "--tp")) { if (cli_int_arg("infer", a, v, 1, INFER_TP_MAX, &n)) return CLI_USAGE; ic.tp = n; }
        else if (!strcmp(a, "--batch")) { if (cli_int_arg("infer", a, v, 1, INFER_BATCH_MAX, &n)) return CLI_USAGE; ic.batch = n; }
        else if (!strcmp(a, "--context")) { if (cli_int_arg("infer", a, v, 1, INFER_CONTEXT_MAX, &n)) return CLI_USAGE; ic.context = n; }
        else if (!strcmp(a, "--group-size")) { if (cli_int_arg("infer", a, v, 1, INFER_GROUP_MAX, &n)) return CLI_USAGE; ic.group_size = n; }
        else if (!strcmp(a, "--prefill-chunk")) { if (cli_int_arg("infer", a, v, 1, INFER_CONTEXT_MAX, &n)) return CLI_USAGE; ic.prefill_chunk = n; }
        else if (!strcmp(a, "--weights")) { if (pick(a, v, infer_weights_names, &k)) return CLI_USAGE; ic.weights = (infer_weights)k; }
        else if (!strcmp(a, "--kv-cache")) {
            if (pick(a, v, kv_names, &k)) return CLI_USAGE;
            ic.kv_dtype = kv_dtypes[k];
        } else
            return cli_fail("infer", CLI_USAGE, "unknown option or missing value \"%s\" (see parasim infer --help)", a);
        i++;
    }
    if (strcmp(format, "table") && strcmp(format, "json"))
        return cli_fail("infer", CLI_USAGE, "--format: expected table or json, found \"%s\"", format);
    model_spec m;
    cluster_spec c;
    if (load_specs(model, cluster, &m, &c)) return CLI_FAIL;
    const model_cfg *mc = &m.cfg;
    /* tp splits the heads, the dense MLP (where the model has dense layers)
     * and each routed and shared expert's MLP (vLLM without expert parallelism) */
    const bool has_dense = !model_is_moe(mc) || mc->dense_layers > 0;
    char widths[160];
    int n = snprintf(widths, sizeof widths, "heads = %lld", (long long)mc->heads);
    if (has_dense)
        n += snprintf(widths + n, sizeof widths - (size_t)n, "%s ffn_hidden = %lld",
                      model_is_moe(mc) ? "," : " and", (long long)mc->ffn_hidden);
    if (model_is_moe(mc))
        snprintf(widths + n, sizeof widths - (size_t)n, " and expert_ffn_hidden = %lld",
                 (long long)mc->expert_ffn_hidden);
    if (mc->heads % ic.tp || (has_dense && mc->ffn_hidden % ic.tp) ||
        (model_is_moe(mc) && mc->expert_ffn_hidden % ic.tp) ||
        (mc->kv_heads % ic.tp && ic.tp % mc->kv_heads))
        return cli_fail("infer", CLI_FAIL,
                        "--tp: expected a divisor of %s that divides or is a multiple of "
                        "kv_heads = %lld (%s), found %lld",
                        widths, (long long)mc->kv_heads, m.path, (long long)ic.tp);
    if (ic.tp > cluster_gpus(&c.cfg))
        return cli_fail("infer", CLI_FAIL, "--tp: expected at most the %lld GPUs of %s, found %lld",
                        (long long)cluster_gpus(&c.cfg), c.name, (long long)ic.tp);
    infer_result r;
    ps_err err = {{0}};
    if (infer_compute(mc, &c.cfg, &ic, &r, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    cli_out out;
    if (cli_out_open(&out, out_path, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    if (!strcmp(format, "json"))
        report_infer_json(out.f, &m, &c, &ic, &r);
    else
        report_infer_table(out.f, &m, &c, &ic, &r);
    if (cli_out_close(&out, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    return CLI_OK;
}
