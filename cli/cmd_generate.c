/* cmd_generate.c — `parasim generate`: serve requests with the runtime's
 * inference engine (runtime/rt_gen.h; docs/runtime.md "Inference") and
 * measure it, or evaluate a weight scheme's perplexity and KL (--eval).
 * Launched with mpirun -np TP (the world is the tp group), or alone. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "gen_inputs.h"
#include "gen_predict.h"
#include "gen_report.h"
#include "rt_group.h"
#include "spec/model.h"
#include "spec/spec_path.h"

#define CMD "generate"
#define GEN_RANDOM_ELEMS_MAX ((int64_t)1 << 30) /* random weights (--model) */

static void usage(FILE *f) {
    fprintf(f,
            "usage: [mpirun -np TP] parasim generate [--checkpoint CK | --model NAME --seed S]\n"
            "         [--weights SCHEME] [--group-size G] [--kv-cache f32|bf16|int8]\n"
            "         [--block-size N] [--prefill-chunk T] [--batch B] [--prompts FILE]\n"
            "         [--prefix TEXT | --prefix-file F] [--max-new N | --max-new a,b,c]\n"
            "         [--temperature T] [--sample-seed S] [--no-cache] [--no-prefix-cache]\n"
            "         [--kv-budget SIZE]\n"
            "         [--eval TEXTFILE [--eval-tokens N]] [--inject-outliers K:SCALE]\n"
            "         [--threads T] [--format table|json] [-o FILE] [--write-text FILE]\n"
            "\n"
            "Run a model with the inference engine: prefill each request (in chunks), then\n"
            "decode every live request together with a paged KV cache; requests sharing a\n"
            "prefix hold its full KV blocks once. Prints the generated text, prefill and\n"
            "decode tokens/s and the measured memory per category (docs/runtime.md).\n"
            "With --eval: perplexity over consecutive windows of seq_len byte tokens of the\n"
            "file, and the mean KL divergence to the unquantized (f32) model.\n"
            "\n"
            "  --checkpoint CK  weights written by parasim run --save-weights\n"
            "  --model NAME     random weights for a model spec (models/NAME.yaml; default\n"
            "                   tiny-1m), drawn from --seed S (default 1)\n"
            "  --weights S      f32, bf16, int8-tensor, int8-zeropoint, int8-row, int8-vector,\n"
            "                   int8-decomp, int8-block, int4-block (default bf16)\n"
            "  --group-size G   block of the block schemes: 32, 64 or 128 (default 32)\n"
            "  --kv-cache D     f32, bf16 or int8 (default bf16; f32 with --eval);\n"
            "  --block-size N   tokens per KV block (default 16)\n"
            "  --prefill-chunk T  most tokens of one prefill forward (default 256)\n"
            "  --batch B        most requests decoding at once (default 8)\n"
            "  --prompts FILE   one prompt per line, bytes as tokens (default: 4 built-in)\n"
            "  --prefix TEXT    prepended to every prompt (a system prompt); --prefix-file F\n"
            "  --max-new N      tokens to generate per request, or one per request a,b,c\n"
            "                   (default 32)\n"
            "  --temperature T  0 greedy (default); > 0 samples, seeded by --sample-seed S\n"
            "  --no-cache       recompute every sequence each step (no KV cache)\n"
            "  --no-prefix-cache  give every request its own blocks\n"
            "  --kv-budget SIZE  the KV cache may hold at most SIZE (e.g. \"288 KiB\") of blocks\n"
            "                   per rank: a request starts only when the blocks of its whole\n"
            "                   life fit (default: no budget)\n"
            "  --eval FILE      perplexity and KL instead of generating; --eval-tokens N caps\n"
            "                   the tokens read (default: the whole file)\n"
            "  --inject-outliers K:SCALE  scale K hidden channels by SCALE (function-\n"
            "                   preserving; LLM.int8()'s outlier features) before quantizing\n"
            "  --threads T      compute threads per rank (default: cores / ranks)\n"
            "  --write-text FILE  write each request's prefix, prompt and generated tokens\n"
            "                   as bytes, each followed by a line \"%%\" (a fortune-style\n"
            "                   corpus for parasim run's train.data: sequence-level KD),\n"
            "                   atomically; byte-level models (vocab 256) only\n");
}

typedef struct {
    const char *checkpoint, *model, *prompts, *prefix, *prefix_file, *eval, *format, *out;
    const char *write_text; /* --write-text: the corpus of prompts and generations */
    const char *max_new;
    long long seed, eval_tokens, threads;
    bool kv_given;
    rt_gen_cfg cfg;
} gen_opts;

/* --- option parsing ----------------------------------------------------------- */

static int pick(const char *opt, const char *v, const char *const *names, const char *list,
                int *out) {
    for (int i = 0; v && names[i]; i++)
        if (!strcmp(v, names[i])) return *out = i, 0;
    return cli_fail(CMD, CLI_USAGE, "%s: expected one of %s, found \"%s\"", opt, list,
                    v ? v : "nothing");
}

static int real_arg(const char *opt, const char *v, double lo, double hi, double *out) {
    char *end = NULL;
    errno = 0;
    double x = v ? strtod(v, &end) : NAN;
    if (!v || !*v || *end || errno || !(x >= lo && x <= hi))
        return cli_fail(CMD, CLI_USAGE, "%s: expected a number from %g to %g, found \"%s\"", opt,
                        lo, hi, v ? v : "nothing");
    *out = x;
    return 0;
}

static int outliers_arg(const char *v, rt_gen_cfg *c) {
    const char *colon = v ? strchr(v, ':') : NULL;
    char k[32];
    long long n = 0;
    if (!colon || colon == v || (size_t)(colon - v) >= sizeof k)
        return cli_fail(CMD, CLI_USAGE, "--inject-outliers: expected K:SCALE (e.g. 4:50), found \"%s\"",
                        v ? v : "nothing");
    memcpy(k, v, (size_t)(colon - v));
    k[colon - v] = 0;
    if (cli_int_arg(CMD, "--inject-outliers K", k, 1, 1 << 20, &n) ||
        real_arg("--inject-outliers SCALE", colon + 1, 1e-6, 1e6, &c->outlier_scale))
        return CLI_USAGE;
    c->outlier_k = n;
    return 0;
}

static int parse(int argc, char **argv, gen_opts *o) {
    const char *const *kv_names = kern_kv_dtype_names;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n = 0;
        int k = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return usage(stdout), -1;
        if (!strcmp(a, "--no-cache")) { o->cfg.no_cache = true; continue; }
        if (!strcmp(a, "--no-prefix-cache")) { o->cfg.prefix_cache = false; continue; }
        if (a[0] != '-' || !a[1])
            return cli_fail(CMD, CLI_USAGE, "unexpected argument \"%s\" (see parasim generate --help)", a);
        static const char *const with_value[] = {
            "--checkpoint", "--model", "--prompts", "--prefix", "--prefix-file", "--eval",
            "--format", "-o", "--output", "--max-new", "--seed", "--sample-seed", "--eval-tokens",
            "--threads", "--block-size", "--prefill-chunk", "--batch", "--group-size", "--weights",
            "--kv-cache", "--temperature", "--inject-outliers", "--kv-budget", "--write-text",
            NULL};
        int known = 0;
        for (int j = 0; with_value[j]; j++)
            known |= !strcmp(a, with_value[j]);
        if (!known)
            return cli_fail(CMD, CLI_USAGE, "unknown option \"%s\" (see parasim generate --help)", a);
        if (!v) return cli_fail(CMD, CLI_USAGE, "%s: expected a value (see parasim generate --help)", a);
        i++;
        if (!strcmp(a, "--checkpoint")) o->checkpoint = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--prompts")) o->prompts = v;
        else if (!strcmp(a, "--prefix")) o->prefix = v;
        else if (!strcmp(a, "--prefix-file")) o->prefix_file = v;
        else if (!strcmp(a, "--eval")) o->eval = v;
        else if (!strcmp(a, "--format")) o->format = v;
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) o->out = v;
        else if (!strcmp(a, "--max-new")) o->max_new = v;
        else if (!strcmp(a, "--write-text")) o->write_text = v;
        else if (!strcmp(a, "--seed")) { if (cli_int_arg(CMD, a, v, 0, INT64_MAX, &o->seed)) return CLI_USAGE; }
        else if (!strcmp(a, "--sample-seed")) { if (cli_int_arg(CMD, a, v, 0, INT64_MAX, &n)) return CLI_USAGE; o->cfg.seed = (uint64_t)n; }
        else if (!strcmp(a, "--eval-tokens")) { if (cli_int_arg(CMD, a, v, 2, GEN_FILE_MAX_BYTES, &o->eval_tokens)) return CLI_USAGE; }
        else if (!strcmp(a, "--threads")) { if (cli_int_arg(CMD, a, v, 1, 4096, &o->threads)) return CLI_USAGE; }
        else if (!strcmp(a, "--block-size")) { if (cli_int_arg(CMD, a, v, 1, 4096, &n)) return CLI_USAGE; o->cfg.block_size = n; }
        else if (!strcmp(a, "--prefill-chunk")) { if (cli_int_arg(CMD, a, v, 1, 1 << 20, &n)) return CLI_USAGE; o->cfg.prefill_chunk = n; }
        else if (!strcmp(a, "--batch")) { if (cli_int_arg(CMD, a, v, 1, 4096, &n)) return CLI_USAGE; o->cfg.batch = n; }
        else if (!strcmp(a, "--group-size")) {
            if (cli_int_arg(CMD, a, v, 1, 1 << 20, &n)) return CLI_USAGE;
            if (n != 32 && n != 64 && n != 128)
                return cli_fail(CMD, CLI_USAGE, "--group-size: expected 32, 64 or 128, found %lld", n);
            o->cfg.group = n;
        } else if (!strcmp(a, "--weights")) {
            if (pick(a, v, rt_wscheme_names, "f32, bf16, int8-tensor, int8-zeropoint, int8-row, "
                     "int8-vector, int8-decomp, int8-block, int4-block", &k)) return CLI_USAGE;
            o->cfg.weights = (rt_wscheme)k;
        } else if (!strcmp(a, "--kv-cache")) {
            if (pick(a, v, kv_names, "f32, bf16, int8", &k)) return CLI_USAGE;
            o->cfg.kv = (kern_kv_dtype)k;
            o->kv_given = true;
        } else if (!strcmp(a, "--temperature")) {
            if (real_arg(a, v, 0, 1000, &o->cfg.temperature)) return CLI_USAGE;
        } else if (!strcmp(a, "--kv-budget")) {
            double bytes = 0;
            if (cli_size_arg(CMD, a, v, 1, 1125899906842624.0, "1 B to 1 PiB", &bytes)) return CLI_USAGE;
            o->cfg.kv_budget_bytes = (int64_t)bytes;
        } else if (!strcmp(a, "--inject-outliers")) {
            if (outliers_arg(v, &o->cfg)) return CLI_USAGE;
        } else
            return cli_fail(CMD, CLI_USAGE, "unknown option \"%s\" (see parasim generate --help)", a);
    }
    if (strcmp(o->format, "table") && strcmp(o->format, "json"))
        return cli_fail(CMD, CLI_USAGE, "--format: expected table or json, found \"%s\"", o->format);
    if (o->checkpoint && o->model)
        return cli_fail(CMD, CLI_USAGE, "--checkpoint and --model: expected one source of weights, found both");
    if (o->prefix && o->prefix_file)
        return cli_fail(CMD, CLI_USAGE, "--prefix and --prefix-file: expected one, found both");
    if (o->eval && (o->prompts || o->prefix || o->prefix_file || o->max_new || o->cfg.no_cache ||
                    o->cfg.kv_budget_bytes || o->write_text))
        return cli_fail(CMD, CLI_USAGE, "--eval: expected no --prompts, --prefix, --prefix-file, "
                                        "--max-new, --no-cache, --kv-budget or --write-text (eval "
                                        "generates nothing)");
    if (o->cfg.no_cache && o->cfg.kv_budget_bytes)
        return cli_fail(CMD, CLI_USAGE, "--kv-budget: expected a KV cache to budget, found --no-cache");
    if (!o->eval && o->eval_tokens)
        return cli_fail(CMD, CLI_USAGE, "--eval-tokens: expected with --eval");
    /* eval measures the weight scheme against the fp32 model: an fp32 cache unless asked */
    if (o->eval && !o->kv_given) o->cfg.kv = KERN_KV_F32;
    const char *ins[4] = {o->prompts, o->prefix_file, o->eval, o->checkpoint};
    for (int i = 0; i < 4; i++)
        if (cli_check_not_input(CMD, ins[i], o->out) || cli_check_not_input(CMD, ins[i], o->write_text))
            return CLI_USAGE;
    if (o->write_text && o->out && strcmp(o->out, "-") && atomic_file_same_target(o->out, o->write_text))
        return cli_fail(CMD, CLI_USAGE, "-o %s and --write-text %s name the same file: give them "
                                        "different names", o->out, o->write_text);
    return 0;
}

/* --- weights ------------------------------------------------------------------------ */

static int weights_load(const gen_opts *o, int world, rt_ckpt *ck, ps_err *err) {
    memset(ck, 0, sizeof *ck);
    if (o->checkpoint) return rt_ckpt_read(o->checkpoint, ck, err);
    char path[1024];
    ps_loc where;
    ps_loc_set(&where, "", 0, 0);
    snprintf(where.file, sizeof where.file, "--model %s", o->model);
    model_spec *ms = calloc(1, sizeof *ms);
    if (!ms) return ps_err_set(err, "out of host memory");
    if (spec_path_resolve(o->model, "models", NULL, &where, "model", path, sizeof path, err) ||
        model_load_file(path, ms, err))
        return free(ms), -1;
    const model_cfg *c = &ms->cfg;
    rt_ckpt_model m = {.layers = c->layers, .hidden = c->hidden, .heads = c->heads,
                       .kv_heads = c->kv_heads, .head_dim = c->head_dim,
                       .ffn_hidden = c->ffn_hidden, .vocab = c->vocab, .seq_len = 256,
                       .norm_eps = ms->norm_eps, .rope_theta = ms->rope_theta};
    snprintf(m.model, sizeof m.model, "%s", ms->name);
    rt_ckpt_layout l; /* saturating: a huge spec reads as more than the limit */
    rt_ckpt_layout_of(&m, &l);
    int rc = 0;
    if (model_is_moe(c))
        rc = ps_err_set(err, "--model %s (%s): a mixture-of-experts model; the inference engine "
                             "serves dense models only", o->model, ms->path);
    else if (c->kv_lora_rank || c->qk_norm || c->norm != NORM_RMSNORM || c->mlp != MLP_SWIGLU ||
             c->position != POS_ROPE || c->bias != BIAS_NONE || c->mtp_layers)
        rc = ps_err_set(err, "--model %s (%s): expected the Llama shape the engine runs (RMSNorm, "
                             "SwiGLU, RoPE, no biases, no MLA or qk-norm)", o->model, ms->path);
    else if (l.elems > GEN_RANDOM_ELEMS_MAX)
        rc = ps_err_set(err, "--model %s (%s): expected at most %lld parameters for random weights "
                             "(they are drawn in host memory), found %lld; serve a checkpoint",
                        o->model, ms->path, (long long)GEN_RANDOM_ELEMS_MAX, (long long)l.elems);
    else if (rt_gen_check(&m, &o->cfg, world, err)) /* before drawing the weights */
        rc = -1;
    else if (rt_gen_ckpt_random(ck, &m, (uint64_t)o->seed))
        rc = ps_err_set(err, "--model %s: out of host memory for %lld weights", o->model,
                        (long long)l.elems);
    free(ms);
    return rc;
}

/* --- running ------------------------------------------------------------------------- */



/* A failure after the ranks started working together: the others may wait in a
 * collective, so stop them all. */
static void abort_all(int rank, int world, const ps_err *err) {
    if (world > 1) fprintf(stderr, "parasim generate: rank %d: %s\n", rank, err->msg);
    else fprintf(stderr, "parasim generate: %s\n", err->msg);
    fflush(stderr);
    atomic_file_remove_temporaries();
    if (world > 1) MPI_Abort(MPI_COMM_WORLD, CLI_FAIL);
}

static int write_out(const gen_opts *o, const gen_report *gr, const gen_eval_report *er,
                     const gen_mem_bytes *predicted, ps_err *err) {
    cli_out out;
    if (cli_out_open(&out, o->out, err)) return -1;
    const bool json = !strcmp(o->format, "json");
    if (er) json ? gen_eval_report_json(out.f, er) : gen_eval_report_table(out.f, er);
    else json ? gen_report_json(out.f, gr, predicted) : gen_report_table(out.f, gr, predicted);
    return cli_out_close(&out, err);
}

static int gen_main(int argc, char **argv, int rank, int world) {
    gen_opts o = {.model = NULL, .format = "table", .seed = 1,
                  .cfg = {.weights = RT_W_BF16, .group = 32, .kv = KERN_KV_BF16, .block_size = 16,
                          .prefill_chunk = 256, .batch = 8, .prefix_cache = true}};
    int saved_err = cli_stderr_quiet(rank); /* every rank checks the same input; rank 0 speaks */
    int rc = parse(argc, argv, &o);
    if (rc) {
        cli_stderr_restore(saved_err);
        return rc < 0 ? CLI_OK : rc;
    }
    if (!o.checkpoint && !o.model) o.model = "tiny-1m";
    ps_err err = {{0}};
    rt_ckpt ck;
    gen_inputs in = {0};
    int32_t *text = NULL;
    int64_t n_text = 0;
    int status = weights_load(&o, world, &ck, &err);
    if (!status) status = rt_gen_check(&ck.m, &o.cfg, world, &err);
    if (!status && o.cfg.outlier_k > ck.m.hidden)
        status = ps_err_set(&err, "--inject-outliers: expected K at most hidden = %lld of %s, found %lld",
                            (long long)ck.m.hidden, ck.m.model, (long long)o.cfg.outlier_k);
    if (!status && o.write_text && ck.m.vocab != 256) /* tokens must be bytes */
        status = ps_err_set(&err, "--write-text %s: expected a byte-level model (vocab = 256) whose "
                                  "tokens are bytes, found vocab = %lld in %s", o.write_text,
                            (long long)ck.m.vocab, ck.m.model);
    if (!status) status = o.eval ? gen_eval_text_load(o.eval, o.eval_tokens, &text, &n_text, &err) : gen_inputs_load(&in, o.prompts, o.prefix, o.prefix_file, o.max_new, &err);
    const char *outs[2] = {o.out && strcmp(o.out, "-") ? o.out : NULL, o.write_text};
    for (int i = 0; i < 2; i++)
        if (!status && rank == 0 && outs[i]) {
            atomic_file probe; /* the outputs are written at the end: check now that they can be */
            ps_err e = {{0}};
            status = atomic_file_open(&probe, outs[i], &e);
            if (!status) atomic_file_abort(&probe);
            else ps_err_set(&err, "%s%s", i ? "--write-text " : "", e.msg);
        }
    cli_stderr_restore(saved_err);
    status = rt_world_agree(status, &err);
    if (status) {
        if (rank == 0) fprintf(stderr, "parasim generate: %s\n", err.msg);
        goto done;
    }
    const rt_backend *be = &rt_backend_cpu;
    const int local = cli_local_ranks();
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = (int)(o.threads > 0 ? o.threads : cores / local > 0 ? cores / local : 1);
    be->set_threads(threads);
    rt_group tp = {.comm = MPI_COMM_WORLD, .rank = rank, .size = world, .name = "tp"};
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if (o.cfg.outlier_k && rt_gen_inject_outliers(&ck, o.cfg.outlier_k, o.cfg.outlier_scale))
        status = ps_err_set(&err, "--inject-outliers: out of host memory");
    rt_mem mem;
    rt_mem_init(&mem, be->mem_alloc, be->mem_free);
    rt_gen g, ref;
    memset(&g, 0, sizeof g);
    memset(&ref, 0, sizeof ref);
    if (!status) status = rt_gen_init(&g, &ck, &o.cfg, be, &mem, &tp, world, rank, &err);
    if (!status && o.eval) {
        rt_gen_cfg rc32 = o.cfg;
        rc32.weights = RT_W_F32, rc32.kv = KERN_KV_F32;
        status = rt_gen_init(&ref, &ck, &rc32, be, &mem, &tp, world, rank, &err);
    }
    status = rt_world_agree(status, &err);
    if (status) {
        if (rank == 0) fprintf(stderr, "parasim generate: %s\n", err.msg);
        goto release;
    }
    const int64_t window = ck.m.seq_len > 0 ? ck.m.seq_len : 256;
    gen_eval_report er = {.model = ck.m.model, .checkpoint = o.checkpoint, .text_path = o.eval,
                          .weights_seed = (uint64_t)o.seed, .cfg = &o.cfg, .tp = world,
                          .threads = threads, .window = window};
    gen_report gr = {.model = ck.m.model, .checkpoint = o.checkpoint,
                     .weights_seed = (uint64_t)o.seed, .cfg = &o.cfg, .tp = world,
                     .threads = threads, .n_req = in.n_req, .req = in.req,
                     .prefix_tokens = in.n_prefix};
    const double t0 = be->now_seconds();
    status = o.eval ? rt_gen_eval(&g, &ref, text, n_text, window, &er.nll, &er.kl, &er.tokens, &err)
                    : rt_gen_run(&g, in.req, in.n_req, &err);
    if (status) {
        abort_all(rank, world, &err);
        goto release;
    }
    er.seconds = be->now_seconds() - t0;
    gr.st = g.st;
    gen_predict_batch(&o.cfg, &gr.st, in.req, in.n_req, in.n_prefix, gr.budget_batch);
    gen_mem_from_rt(&gr.measured, &mem);
    /* the largest bytes and the slowest times over the tp ranks */
    MPI_Allreduce(MPI_IN_PLACE, gr.measured.bytes, GEN_MEM_CATS, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
    double times[3] = {gr.st.prefill_s, gr.st.decode_s, er.seconds};
    MPI_Allreduce(MPI_IN_PLACE, times, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    gr.st.prefill_s = times[0], gr.st.decode_s = times[1], er.seconds = times[2];
    /* parasim infer's prediction for what ran (none in eval mode: two models there) */
    gen_mem_bytes pred;
    const bool predicted = !o.eval && !gen_predict(&ck.m, &o.cfg, world, in.req, in.n_req,
                                                  in.n_prefix, &gr.st, &pred, &err);
    if (!o.eval && !predicted && rank == 0)
        fprintf(stderr, "parasim generate: no prediction: %s\n", err.msg);
    if (rank == 0 && o.write_text && gen_text_write(o.write_text, in.req, in.n_req, &err)) {
        fprintf(stderr, "parasim generate: %s\n", err.msg);
        status = -1;
    }
    if (rank == 0 && write_out(&o, &gr, o.eval ? &er : NULL, predicted ? &pred : NULL, &err)) {
        fprintf(stderr, "parasim generate: %s\n", err.msg);
        status = -1;
    }
release:
    rt_gen_free(&ref);
    rt_gen_free(&g);
    rt_mem_release(&mem);
done:
    rt_ckpt_free(&ck);
    gen_inputs_free(&in);
    free(text);
    return status ? CLI_FAIL : CLI_OK;
}

int cmd_generate(int argc, char **argv) {
    return cli_mpi_main("generate", "launch with mpirun -np TP, or alone", argc, argv, gen_main);
}
