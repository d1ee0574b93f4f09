/* cmd_calibrate.c — `mpirun -np N parasim calibrate [-o FILE.yaml]`: measure this
 * machine as the CPU runtime uses it (each rank a "GPU" of T threads) and write the
 * cluster spec that prices what was measured (docs/time.md §7 "Calibration"; the fits are
 * sim/time/calib_fit.h's, the measurements runtime/rt_calib.h's). */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/fmt.h"
#include "cli.h"
#include "report/cluster_yaml.h"
#include "rt_backend.h"
#include "rt_calib.h"
#include "run_profile.h"
#include "time/calib_fit.h"
#include "cost/params.h"
#include "time/kernel_time.h"

#define MAX_DIMS 8

/* the shapes measured without --plan: tiny-10m's layer, 8 x 256 tokens, fp32 */
#define DEFAULT_SHAPES "plans/tiny-10m-cpu.yaml"
#define MAX_SIZES 25 /* of the -b .. -e sweep: 5 collectives each within CALIB_MAX_MEAS */

typedef struct {
    const char *out_path, *name;
    const char *plan_path; /* --plan: the shapes measured (NULL: DEFAULT_SHAPES) */
    cli_overrides ov;
    long long threads, reps;
    double min_bytes, max_bytes;
    long long factor;
    int quick;
    long long gpus_per_node; /* 0: the ranks on this node */
} calib_args;

static void usage(void) {
    printf("usage: mpirun -np N parasim calibrate [-o FILE.yaml] [--name NAME] [--threads T]\n"
           "                                      [--plan PLAN.yaml [--set k=v]...]\n"
           "                                      [-b MIN] [-e MAX] [-f FACTOR] [--quick]\n"
           "\n"
           "Measure this machine as the CPU runtime uses it, each rank a \"GPU\" of T threads\n"
           "(default 1), all ranks at once, each kernel on caches emptied first: GEMM rates\n"
           "over a sweep of smallest dimensions (the cluster's efficiency curve), causal\n"
           "attention forward and backward, the memory bandwidth of a layer's memory-bound\n"
           "kernels and of the optimizer, and the runtime's MPI all-reduce, all-gather,\n"
           "reduce-scatter, sendrecv and all-to-all over sizes MIN to MAX by FACTOR (nccl-tests'\n"
           "-b -e -f; default 4 KiB to 16 MiB by 4), printed as nccl-tests prints them (time,\n"
           "algbw, busbw). Writes the cluster spec that prices what was measured\n"
           "(gpu.peak_flops, efficiency.gemm and .attention, hbm_bandwidth, links.intra_node\n"
           "and links.collectives fitted to the collectives), every\n"
           "value with how it was measured, to FILE (atomically) or standard output; a plan\n"
           "names it with cluster: FILE. docs/time.md section 7 gives the fits.\n"
           "\n"
           "  -o FILE       write the cluster spec to FILE (default: standard output)\n"
           "  --plan PLAN   measure at this plan's shapes, one rank's micro-batch of its layer:\n"
           "                GEMMs of its tokens, its attention, its layer's memory-bound kernels,\n"
           "                an optimizer step over its parameters (default: tiny-10m, 8 x 256\n"
           "                tokens, fp32); --set k=v overrides the plan's fields\n"
           "  --name NAME   the cluster's name (default: calibrated)\n"
           "  --threads T   compute threads per rank (default 1)\n"
           "  --gpus-per-node G  ranks a node of the written cluster holds (default: the ranks\n"
           "                on this node); more than its cores run oversubscribed, slower than\n"
           "                the spec prices them\n"
           "  --reps R      timed runs per figure, the median kept (default 5; 3 with --quick)\n"
           "  --quick       fewer and smaller shapes (a few seconds; for tests)\n");
}

static int parse(int argc, char **argv, calib_args *a) {
    *a = (calib_args){.name = "calibrated", .threads = 1, .min_bytes = 4096,
                      .max_bytes = 16 << 20, .factor = 4};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x;
        const int took = cli_override_arg("calibrate", &a->ov, argc, argv, &i, 0);
        if (took < 0) return CLI_USAGE;
        if (took) continue;
        if (!strcmp(o, "--quick")) {
            a->quick = 1;
            continue;
        }
        if (!v) return cli_fail("calibrate", CLI_USAGE, "%s: expected a value", o);
        i++;
        if (!strcmp(o, "-o")) a->out_path = v;
        else if (!strcmp(o, "--plan")) a->plan_path = v;
        else if (!strcmp(o, "--name")) a->name = v;
        else if (!strcmp(o, "--threads")) {
            if (cli_int_arg("calibrate", o, v, 1, 1024, &a->threads)) return CLI_USAGE;
        } else if (!strcmp(o, "--gpus-per-node")) {
            if (cli_int_arg("calibrate", o, v, 1, 1 << 20, &a->gpus_per_node)) return CLI_USAGE;
        } else if (!strcmp(o, "--reps")) {
            if (cli_int_arg("calibrate", o, v, 1, 64, &a->reps)) return CLI_USAGE;
        } else if (!strcmp(o, "-b")) {
            if (cli_size_arg("calibrate", o, v, 64, 1 << 30, "64 B to 1 GiB", &a->min_bytes))
                return CLI_USAGE;
        } else if (!strcmp(o, "-e")) {
            if (cli_size_arg("calibrate", o, v, 64, 1 << 30, "64 B to 1 GiB", &a->max_bytes))
                return CLI_USAGE;
        } else if (!strcmp(o, "-f")) {
            if (cli_int_arg("calibrate", o, v, 2, 1024, &x)) return CLI_USAGE;
            a->factor = x;
        } else
            return cli_fail("calibrate", CLI_USAGE, "unknown option \"%s\" (see --help)", o);
    }
    if (a->min_bytes > a->max_bytes)
        return cli_fail("calibrate", CLI_USAGE, "-b %.0f is larger than -e %.0f", a->min_bytes,
                        a->max_bytes);
    int sizes = 0;
    for (double s = a->min_bytes; s <= a->max_bytes; s *= (double)a->factor) sizes++;
    if (sizes > MAX_SIZES)
        return cli_fail("calibrate", CLI_USAGE, "-b %.0f -e %.0f -f %lld: %d sizes, expected at "
                        "most %d (a larger -f or a narrower range)", a->min_bytes, a->max_bytes,
                        a->factor, sizes, MAX_SIZES);
    if (!a->reps) a->reps = a->quick ? 3 : 5;
    if (strlen(a->name) == 0 || strlen(a->name) >= 64)
        return cli_fail("calibrate", CLI_USAGE, "--name: expected 1 to 63 characters");
    return CLI_OK;
}

/* The mean over the ranks of x (all measured at once). */
static double mean_over_ranks(double x, int world) {
    double s = 0;
    MPI_Allreduce(&x, &s, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return s / world;
}

/* GEMMs N x d -> OC with d the smallest dimension, N and OC the micro-batch's tokens (d
 * where larger): the forward and backward FLOPs (3 x 2 N d OC: the backward's two products
 * cost the forward's twice, as kernel_time.c prices them) over their time. */
static int measure_gemms(const calib_args *a, int64_t tokens, int rank, int world, int *n,
                         double *dim, double *rate, FILE *log) {
    static const double full[] = {32, 64, 128, 256, 512, 1024, 2048}, quick[] = {64, 256, 1024};
    const double *d = a->quick ? quick : full;
    *n = a->quick ? 3 : 7;
    if (rank == 0) fprintf(log, "# GEMM: out[N][OC] = in[N][C] W^T, forward and backward (kern_matmul_*), median of %lld\n#   C (smallest)      N     OC    fwd ms    bwd ms   GFLOP/s\n", a->reps);
    for (int i = 0; i < *n; i++) {
        const int64_t C = (int64_t)d[i], N = C > tokens ? C : tokens, OC = N;
        double f = 0, b = 0;
        if (cli_mpi_worst(rt_calib_matmul(N, C, OC, (int)a->reps, &f, &b) != 0)) return -1;
        f = mean_over_ranks(f, world), b = mean_over_ranks(b, world);
        dim[i] = (double)C;
        rate[i] = 3.0 * 2.0 * (double)N * (double)C * (double)OC / (f + b);
        if (rank == 0)
            fprintf(log, "%14lld %6lld %6lld %9.3f %9.3f %9.2f\n", (long long)C, (long long)N,
                    (long long)OC, f * 1e3, b * 1e3, rate[i] / 1e9);
    }
    return 0;
}

/* One call of every collective per size, nccl-tests' columns (busbw = algbw x the
 * collective's factor: 2(n-1)/n all-reduce, (n-1)/n all-gather, reduce-scatter and
 * all-to-all, 1 sendrecv); every measurement into m for the link's fit. */
static int measure_colls(const calib_args *a, int rank, int world, calib_meas *m, int *n,
                         FILE *log) {
    static const comm_coll kinds[RT_CALIB_COLLS] = {COLL_ALL_REDUCE, COLL_ALL_GATHER,
                                                    COLL_REDUCE_SCATTER, COLL_SEND,
                                                    COLL_ALL_TO_ALL};
    *n = 0;
    const double nw = (double)world;
    const double bus[RT_CALIB_COLLS] = {2 * (nw - 1) / nw, (nw - 1) / nw, (nw - 1) / nw, 1,
                                        (nw - 1) / nw};
    for (int c = 0; c < RT_CALIB_COLLS; c++) {
        if (rank == 0)
            fprintf(log, "#\n# %s, %d ranks, median of %lld (the slowest rank's time)\n"
                         "#        size         count    type   time(us)  algbw(GB/s)  busbw(GB/s)\n",
                    rt_calib_coll_names[c], world, a->reps);
        for (double s = a->min_bytes; s <= a->max_bytes && *n < CALIB_MAX_MEAS; s *= (double)a->factor) {
            double sec = 0;
            int64_t bytes = (int64_t)s;
            if (bytes < 4 * (int64_t)world) bytes = 4 * (int64_t)world;
            bytes -= bytes % (4 * (int64_t)world); /* whole floats, a share per rank */
            if (rt_calib_coll_time((rt_calib_coll)c, MPI_COMM_WORLD, bytes, (int)a->reps, &sec))
                return -1;
            const double alg = (double)bytes / sec;
            if (rank == 0)
                fprintf(log, "%14lld %13lld   float %10.2f %12.3f %12.3f\n", (long long)bytes,
                        (long long)(bytes / 4), sec * 1e6, alg / 1e9, alg * bus[c] / 1e9);
            m[(*n)++] = (calib_meas){kinds[c], bytes, sec};
        }
    }
    return 0;
}

static int calib_main(int argc, char **argv, int rank, int world) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        if (rank == 0) usage();
        return CLI_OK;
    }
    calib_args a;
    const int quiet = cli_stderr_quiet(rank);
    int rc = parse(argc, argv, &a);
    if (rc == CLI_OK && a.out_path && rank == 0) {
        ps_err err = {{0}};
        if (run_profile_check_output(a.out_path, &err)) /* writable, before any measuring */
            rc = cli_fail("calibrate", CLI_USAGE, "-o: %s", err.msg);
    }
    cli_stderr_restore(quiet);
    if ((rc = cli_mpi_worst(rc)) != CLI_OK) return rc; /* rank 0's refusal stops every rank */
    rt_backend_cpu.set_threads((int)a.threads);
    FILE *log = a.out_path ? stdout : stderr;
    const int local = cli_local_ranks();
    time_t now = time(NULL);
    char date[32], host[64] = "";
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    gethostname(host, sizeof host - 1);
    if (rank == 0)
        fprintf(log, "# parasim calibrate: %d ranks (%d on this node) x %lld threads, %s, %s\n",
                world, local, a.threads, host, date);

    /* the shapes measured: one rank's micro-batch of the plan's layer */
    static plan_spec spec;
    ps_err perr = {{0}};
    rc = plan_load(a.plan_path ? a.plan_path : DEFAULT_SHAPES, a.ov.ov, a.ov.n, &spec, &perr);
    if (cli_mpi_worst(rc ? CLI_USAGE : CLI_OK) != CLI_OK)
        return rank == 0 ? cli_fail("calibrate", CLI_USAGE, "%s%s", perr.msg,
                                    a.plan_path ? "" : " (the default shapes: run from the "
                                                       "parasim directory, or give --plan)")
                         : CLI_USAGE;
    const model_cfg *mc = &spec.model.cfg;
    plan_cfg pc = spec.cfg;
    pc.precision = (plan_precision){DT_FP32, DT_FP32, DT_NONE, DT_FP32, DT_FP32}; /* the kernels' */
    if (a.quick && pc.micro_batch > 2) pc.micro_batch = 2;
    const int64_t tp = pc.tp, B = pc.micro_batch, T = pc.seq / pc.cp, H = mc->heads / tp,
                  KVH = mc->kv_heads / tp, D = mc->head_dim, h = mc->hidden,
                  f = mc->ffn_hidden / tp, tokens = plan_tokens_per_rank(&pc);
    if (rank == 0)
        fprintf(log, "# shapes: %s, one rank's micro-batch: %lld x %lld tokens, hidden %lld, "
                     "heads %lld (kv %lld) of %lld, MLP %lld\n",
                a.plan_path ? a.plan_path : DEFAULT_SHAPES " (the default)", (long long)B,
                (long long)T, (long long)h, (long long)H, (long long)KVH, (long long)D,
                (long long)f);

    int n_dim = 0, n_meas = 0;
    double dim[MAX_DIMS], rate[MAX_DIMS], frac[MAX_DIMS], peak = 0;
    static calib_meas meas[CALIB_MAX_MEAS];
    if (measure_gemms(&a, tokens, rank, world, &n_dim, dim, rate, log) ||
        calib_gemm_curve(rate, n_dim, &peak, frac))
        return rank == 0 ? cli_fail("calibrate", CLI_FAIL, "the GEMM measurements failed (out of memory?)") : CLI_FAIL;
    double af = 0, ab = 0, opt = 0, lay = 0;
    int64_t n_opt = params_total(mc);
    if (a.quick && n_opt > 1 << 20) n_opt = 1 << 20;
    if (cli_mpi_worst(rt_calib_attn(B, T, H, KVH, D, (int)a.reps, &af, &ab) ||
                      rt_calib_layer_mem(B, T, h, f, H, KVH, D, (int)a.reps, &lay) ||
                      rt_calib_adamw(n_opt, (int)a.reps, &opt)))
        return rank == 0 ? cli_fail("calibrate", CLI_FAIL, "out of memory for the attention, memory-bound or optimizer measurement") : CLI_FAIL;
    af = mean_over_ranks(af, world), ab = mean_over_ranks(ab, world);
    opt = mean_over_ranks(opt, world), lay = mean_over_ranks(lay, world);
    /* FLOPs and bytes as the time model counts them (kernel_time.h): the layer's
     * memory-bound ops priced on a unit cluster (1 B/s, efficiency 1) take their bytes in
     * seconds */
    double attn_f, attn_b;
    kt_flash_attn_flops((double)(B * H), (double)T, (double)T, (double)D, &attn_f, &attn_b);
    const double eff_f = attn_f / af / peak, eff_b = attn_b / ab / peak;
    cluster_cfg unit = spec.cluster.cfg;
    unit.hbm_bytes_per_s = 1, unit.eff.hbm = 1;
    static kt_part part;
    kt_layer(mc, &unit, &pc, &part);
    double lay_bytes = 0;
    for (int i = 0; i < part.n; i++)
        if (part.op[i].kind == KT_MEM) lay_bytes += part.op[i].fwd + part.op[i].bwd_in + part.op[i].bwd_w;
    const double opt_bytes = kt_optimizer_bytes(&pc.precision, OPT_ADAMW, n_opt);
    /* the optimizer streams the states: its rate is the memory bandwidth; the layer's
     * kernels (small tensors, exp and sin/cos on the cores) their share of it */
    const double hbm = opt_bytes / opt, lay_rate = lay_bytes / lay;
    const double eff_mem = lay_rate < hbm ? lay_rate / hbm : 1;
    if (rank == 0)
        fprintf(log, "#\n# attention B %lld T %lld H %lld KVH %lld D %lld: forward %.3f ms "
                     "(%.1f%% of the GEMM peak), backward %.3f ms (%.1f%%)\n"
                     "# a layer's memory-bound kernels (norms, residual adds, RoPE, SwiGLU), "
                     "forward + backward: %.3f ms for %.0f bytes: %.2f GB/s\n"
                     "# optimizer over %lld fp32 parameters: %.3f ms, %.0f bytes each: %.2f GB/s\n",
                (long long)B, (long long)T, (long long)H, (long long)KVH, (long long)D, af * 1e3,
                100 * eff_f, ab * 1e3, 100 * eff_b, lay * 1e3, lay_bytes, lay_bytes / lay / 1e9,
                (long long)n_opt, opt * 1e3, opt_bytes / (double)n_opt, hbm / 1e9);
    double lat = 0, bw = 0, coll_eff[CLUSTER_COLLS];
    const int links = world > 1;
    if (links && (measure_colls(&a, rank, world, meas, &n_meas, log) ||
                  calib_fit_link(meas, n_meas, world, &lat, &bw, coll_eff)))
        return rank == 0 ? cli_fail("calibrate", CLI_FAIL, "the collective measurements failed, or too few sizes to fit (-b, -e, -f)") : CLI_FAIL;
    if (rank != 0) return CLI_OK;

    static cluster_spec s;
    memset(&s, 0, sizeof s);
    cluster_cfg *c = &s.cfg;
    cluster_eff_default(&c->eff);
    snprintf(s.name, sizeof s.name, "%s", a.name);
    snprintf(s.gpu_name, sizeof s.gpu_name, "cpu rank (%lld thread%s)", a.threads,
             a.threads == 1 ? "" : "s");
    snprintf(s.source, sizeof s.source, "parasim calibrate on %s, %s: %d ranks x %lld threads",
             host, date, world, a.threads);
    const double phys = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    c->gpu_memory_bytes = (int64_t)(phys / local) & ~(int64_t)((1 << 20) - 1);
    for (int d = DT_BF16; d <= DT_FP32; d++) c->peak_flops_per_s[d] = peak;
    c->hbm_bytes_per_s = hbm;
    c->kernels_fp32 = true;
    c->eff.gemm_n = n_dim;
    memcpy(c->eff.gemm_dim, dim, sizeof dim[0] * (size_t)n_dim);
    memcpy(c->eff.gemm_frac, frac, sizeof frac[0] * (size_t)n_dim);
    cluster_eff_prepare(&c->eff);
    c->eff.attn_fwd = eff_f > 1 ? 1 : eff_f;
    c->eff.attn_bwd = eff_b > 1 ? 1 : eff_b;
    c->eff.hbm = eff_mem, c->eff.optimizer = 1;
    c->eff.overlap = 1; /* bandwidths as measured; one core does no overlap */
    c->gpus_per_node = a.gpus_per_node ? a.gpus_per_node : local;
    c->nodes = (world + local - 1) / local;
    /* one node measured: the inter-node link is not, and keeps local-cpu's assumption */
    c->intra_bytes_per_s = links ? bw : 5e9, c->intra_latency_s = links ? lat : 1e-6;
    c->inter_bytes_per_s = 1e9, c->inter_latency_s = 50e-6;
    c->host_bytes_per_s = 25e9, c->host_latency_s = 10e-6;
    c->eff.intra = c->eff.inter = c->eff.host = 1;
    if (links) memcpy(c->eff.coll, coll_eff, sizeof coll_eff);
    char shares[256] = "";
    for (int j = 0; links && j < CLUSTER_COLLS; j++) {
        const size_t at = strlen(shares);
        snprintf(shares + at, sizeof shares - at, "%s %s %.2f GB/s", j ? "," : "",
                 cluster_coll_names[j], bw * coll_eff[j] / 1e9);
    }
    static char comment[8192];
    char argline[512] = "";
    for (int i = 1; i < argc; i++) {
        const size_t at = strlen(argline);
        snprintf(argline + at, sizeof argline - at, " %s", argv[i]);
    }
    snprintf(comment, sizeof comment,
             "Measured by `mpirun -np %d parasim calibrate%s` on %s, %s (rank = one \"GPU\" of %lld thread%s).\n"
             "Shapes: %.512s; each kernel timed on caches emptied first.\n"
             "peak_flops: the fastest GEMM rate of the sweep (%.2f GFLOP/s, forward + backward, N = OC = %lld\n"
             "  tokens or d), every dtype alike (the CPU kernels compute in fp32); efficiency.gemm: each rate over it.\n"
             "attention: causal forward and backward at B %lld, T %lld, H %lld, KVH %lld, D %lld over that peak.\n"
             "hbm_bandwidth: AdamW + zeroing over %lld fp32 parameters, %.0f bytes each as the time model counts\n"
             "  them (efficiency.optimizer 1); efficiency.hbm: a layer's memory-bound kernels (norms, residual adds,\n"
             "  RoPE, SwiGLU, forward and backward) at %.2f GB/s of the bytes the time model counts, over it.\n"
             "memory: the host's memory over the %d ranks of this node; gpus_per_node: %s.\n"
             "links.intra_node: %s%s\n"
             "links.inter_node, links.host: not measured (one node; local-cpu's assumptions).\n"
             "Medians of %lld runs; kernel figures the mean over the ranks, measured all at once.",
             world, argline, host, date, a.threads, a.threads == 1 ? "" : "s",
             a.plan_path ? a.plan_path : DEFAULT_SHAPES " (the default)",
             peak / 1e9, (long long)tokens, (long long)B, (long long)T, (long long)H,
             (long long)KVH, (long long)D, (long long)n_opt, opt_bytes / (double)n_opt,
             lay_rate / 1e9, local,
             a.gpus_per_node ? "--gpus-per-node" : "the ranks measured on this node",
             links ? "one latency, and one bus bandwidth per collective, fitted to every\n"
                     "  collective above at once (efficiency 1); the bandwidth is the fastest collective's,\n"
                     "  links.collectives each one's share of it (broadcast and reduce, not measured,\n"
                     "  the mean share). Bus bandwidths:"
                   : "not measured (one rank): local-cpu's assumption",
             links ? shares : "", a.reps);
    ps_err err = {{0}};
    cli_out out;
    if (cli_out_open(&out, a.out_path, &err)) return cli_fail("calibrate", CLI_FAIL, "%s", err.msg);
    if (cluster_write_yaml(out.f, &s, comment) || cli_out_close(&out, &err))
        return cli_fail("calibrate", CLI_FAIL, "%s", err.msg[0] ? err.msg : "writing failed");
    if (a.out_path) {
        static cluster_spec back; /* the spec must load as written */
        if (cluster_load_file(a.out_path, &back, &err))
            return cli_fail("calibrate", CLI_FAIL, "the written spec does not load: %s", err.msg);
        char b1[32];
        printf("# wrote %s: peak %.2f GFLOP/s, HBM %.2f GB/s, link %.2f GB/s + %.2f us, memory %s\n",
               a.out_path, peak / 1e9, hbm / 1e9, c->intra_bytes_per_s / 1e9,
               c->intra_latency_s * 1e6, fmt_bytes(c->gpu_memory_bytes, b1, sizeof b1));
    }
    return CLI_OK;
}

int cmd_calibrate(int argc, char **argv) {
    return cli_mpi_main("calibrate", "launch with mpirun -np N, or alone", argc, argv, calib_main);
}
