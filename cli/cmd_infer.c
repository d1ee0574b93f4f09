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
            "                     [--context S] [--weights SCHEME] [--group-size G]\n"
            "                     [--kv-cache bf16|fp16|fp8|f32|int8] [--block-size N] [--prefix P]\n"
            "                     [--prefill-chunk T] [--compute bf16|f32]\n"
            "                     [--format table|json] [-o FILE]\n"
            "\n"
            "Per-GPU memory to serve a model: weights (quantized linear layers with their scales),\n"
            "the paged KV cache (GQA- and MLA-aware; blocks of N tokens, a prefix of P tokens that\n"
            "every sequence shares held once), the largest forward's live tensors and the logits.\n"
            "Answers: the largest batch at context S (with and without prefix caching), the longest\n"
            "context at batch B and the fewest tensor-parallel GPUs that fit (docs/memory.md §8).\n"
            "A MoE model's tp ranks each hold every expert split by tp (no expert parallelism).\n"
            "SCHEME: bf16 fp16 fp8 int8 int4 (serving formats), or the runtime's f32 int8-tensor\n"
            "        int8-zeropoint int8-row int8-vector int8-decomp int8-block int4-block.\n"
            "Defaults: --model llama3-8b --cluster dgx-h100 --tp 1 --batch 1 --context 8192\n"
            "          --weights bf16 --kv-cache bf16 --block-size 16 --prefix 0\n"
            "          --prefill-chunk 8192 --compute bf16 --group-size 32 for int8-block and\n"
            "          int4-block (32, 64 or 128), 128 for int4\n");
}

/* value among names (NULL-terminated), or a usage error listing them. */
static int pick(const char *opt, const char *value, const char *const *names, int *out) {
    char list[256];
    int n = 0;
    for (int i = 0; names[i]; i++) {
        if (value && !strcmp(value, names[i])) return *out = i, 0;
        n += snprintf(list + n, sizeof list - (size_t)n, "%s%s", i ? ", " : "", names[i]);
    }
    if (!value)
        return cli_fail("infer", CLI_USAGE, "%s: expected one of %s, found the end of the arguments",
                        opt, list);
    return cli_fail("infer", CLI_USAGE, "%s: expected one of %s, found \"%s\"", opt, list, value);
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
    infer_cfg ic;
    infer_cfg_init(&ic);
    static const char *const compute_names[] = {"bf16", "f32", NULL};
    static const ps_dtype compute_dtypes[] = {DT_BF16, DT_FP32};
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
        else if (!strcmp(a, "--block-size")) { if (cli_int_arg("infer", a, v, 1, INFER_BLOCK_MAX, &n)) return CLI_USAGE; ic.block_size = n; }
        else if (!strcmp(a, "--prefix")) { if (cli_int_arg("infer", a, v, 0, INFER_CONTEXT_MAX, &n)) return CLI_USAGE; ic.prefix = n; }
        else if (!strcmp(a, "--weights")) { if (pick(a, v, infer_weights_names, &k)) return CLI_USAGE; ic.weights = (infer_weights)k; }
        else if (!strcmp(a, "--kv-cache")) { if (pick(a, v, infer_kv_names, &k)) return CLI_USAGE; ic.kv_cache = (infer_kv)k; }
        else if (!strcmp(a, "--compute")) { if (pick(a, v, compute_names, &k)) return CLI_USAGE; ic.compute = compute_dtypes[k]; }
        else
            return cli_fail("infer", CLI_USAGE, "unknown option or missing value \"%s\" (see parasim infer --help)", a);
        i++;
    }
    if (strcmp(format, "table") && strcmp(format, "json"))
        return cli_fail("infer", CLI_USAGE, "--format: expected table or json, found \"%s\"", format);
    if (ic.prefix > ic.context)
        return cli_fail("infer", CLI_USAGE, "--prefix: expected at most --context (%lld tokens), found %lld",
                        (long long)ic.context, (long long)ic.prefix);
    model_spec m;
    cluster_spec c;
    if (load_specs(model, cluster, &m, &c)) return CLI_FAIL;
    ps_err err = {{0}};
    /* tp splits the heads, the dense MLP (where the model has dense layers)
     * and each routed and shared expert's MLP (vLLM without expert parallelism) */
    if (infer_tp_check(&m.cfg, ic.tp, m.path, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    if (ic.tp > cluster_gpus(&c.cfg))
        return cli_fail("infer", CLI_FAIL, "--tp: expected at most the %lld GPUs of %s, found %lld",
                        (long long)cluster_gpus(&c.cfg), c.name, (long long)ic.tp);
    infer_result r;
    if (infer_compute(&m.cfg, &c.cfg, &ic, &r, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    cli_out out;
    if (cli_out_open(&out, out_path, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    if (!strcmp(format, "json"))
        report_infer_json(out.f, &m, &c, &ic, &r);
    else
        report_infer_table(out.f, &m, &c, &ic, &r);
    if (cli_out_close(&out, &err)) return cli_fail("infer", CLI_FAIL, "%s", err.msg);
    return CLI_OK;
}
