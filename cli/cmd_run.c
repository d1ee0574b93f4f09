/* cmd_run.c — `parasim run`: execute a plan for real on the runtime and
 * measure it (docs/runtime.md). Launched with mpirun, one process per rank. */
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "base/atomic_file.h"
#include "cli.h"
#include "base/fmt.h"
#include "spec/yget.h"
#include "program/program.h"
#include "program/replay.h"
#include "rt_backend.h"
#include "rt_ckpt_gather.h"
#include "rt_data.h"
#include "rt_device.h"
#include "rt_exec.h"
#include "rt_group.h"
#include "run_profile.h"


static void usage(FILE *f) {
    fprintf(f,
            "usage: mpirun -np N parasim run PLAN.yaml [--backend cpu|cuda|auto] [--steps K]\n"
            "                                [--threads T] [--set key.path=value]... [-o PROFILE.json]\n"
            "                                [--timeout SECONDS] [--memory-limit SIZE]\n"
            "                                [--data-limit SIZE] [--save-weights FILE]\n"
            "                                [--save FILE [--save-every K]] [--resume FILE]\n"
            "\n"
            "Lower the plan to its execution plan (parasim emit) and run it for real: one\n"
            "process per rank, N = the plan's gpus. Prints per step the loss (mean over the\n"
            "global batch), the step time of the slowest rank, tokens/s and memory; the\n"
            "profile holds every rank's memory, collectives (calls, bytes) and the events of\n"
            "its first steps (time, bytes per category), next to the replay's prediction of\n"
            "its role, and the losses (docs/runtime.md); parasim plot memory|peaks|schedule\n"
            "PROFILE.json draws it.\n"
            "\n"
            "  --backend B   cpu (OpenBLAS + MPI), cuda, or auto (default: cpu where no CUDA\n"
            "                executor is available)\n"
            "  --steps K     training steps (default: the plan's train.steps); with --resume\n"
            "                the whole training's, the resumed steps included\n"
            "  --threads T   compute threads per rank (default: cores / ranks on this node)\n"
            "  --memory-limit SIZE  refuse allocations past SIZE per rank (e.g. \"80 GiB\"):\n"
            "                a smaller device; the rank that hits it stops every rank\n"
            "                (from 1 MiB to 1 PiB)\n"
            "  --timeout S   end the job when one op (a collective waiting for a stopped or\n"
            "                dead rank) runs longer than S seconds (default 600; 0: no limit)\n"
            "  --data-limit SIZE  the most a text corpus (train.data) may hold; it is read\n"
            "                into memory (default 1 GiB)\n"
            "  --set k=v     override a plan field (as parasim plan)\n"
            "  -o FILE       write the profile (JSON) atomically\n"
            "  --save-weights FILE  after the last step, write the trained fp32 weights in\n"
            "                the one-rank layout (a checkpoint for parasim generate;\n"
            "                docs/runtime.md \"Checkpoints\"), atomically; dense models only\n"
            "  --save FILE   after the last step, write the training state (the fp32\n"
            "                weights, AdamW's m and v, the steps done, the seed and the\n"
            "                optimizer's settings) atomically, for --resume\n"
            "  --save-every K  also after every K-th step (counted in the whole training)\n"
            "  --resume FILE continue the training saved in FILE (by --save): the same\n"
            "                model, seed, batch and optimizer settings, any layout; runs\n"
            "                the steps from the saved count + 1 to train.steps\n"
            "  --quiet       no per-step lines\n");
}

typedef struct {
    int rank, quiet;
    double tokens_per_step;
} step_ctx;

static void on_step(void *ctx, int step, double loss, double seconds, const rt_mem *mem) {
    step_ctx *c = ctx;
    if (c->rank != 0 || c->quiet) return;
    char cur[32], peak[32];
    fmt_bytes(rt_mem_total(mem), cur, sizeof cur);
    fmt_bytes(mem->peak_total, peak, sizeof peak);
    printf("step %4d  loss %.4f  %8.3f s  %10.0f tokens/s  memory %s (peak %s)\n", step + 1, loss,
           seconds, c->tokens_per_step / seconds, cur, peak);
    fflush(stdout);
}



/* --memory-limit, --data-limit: from 1 MiB to 1 PiB (2^50 bytes): past that a limit means none. */
static int size_arg(const char *opt, const char *v, double *out) {
    return cli_size_arg("run", opt, v, 1048576.0, 1125899906842624.0, "1 MiB to 1 PiB", out);
}

int cli_run_main(int argc, char **argv, int rank, int world) {
    const char *path = NULL, *out_path = NULL, *ckpt_path = NULL, *backend = "auto";
    const char *save_path = NULL, *resume_path = NULL;
    long long steps = 0, threads = 0, timeout_s = 600, save_every = 0;
    double limit = 0, data_limit = (double)RT_DATA_LIMIT_BYTES;
    int quiet = 0;
    cli_overrides ov = {.n = 0};
    /* every rank parses the same arguments and checks the same input; only
     * rank 0's messages are shown */
    int saved_err = cli_stderr_quiet(rank);
    int rc = CLI_OK;
    for (int i = 1, took; i < argc && rc == CLI_OK; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0) usage(stdout);
            rc = -1;
        } else if ((took = cli_override_arg("run", &ov, argc, argv, &i, 0)) != 0) {
            if (took < 0) rc = CLI_USAGE;
        } else if (!strcmp(a, "--backend")) {
            backend = i + 1 < argc ? argv[++i] : "";
            if (strcmp(backend, "cpu") && strcmp(backend, "cuda") && strcmp(backend, "auto"))
                rc = cli_fail("run", CLI_USAGE, "--backend: expected cpu, cuda or auto, found \"%s\"",
                              backend);
        } else if (!strcmp(a, "--steps")) {
            if (i + 1 >= argc || cli_int_arg("run", a, argv[++i], 1, 1000000, &steps))
                rc = rc ? rc : CLI_USAGE;
        } else if (!strcmp(a, "--threads")) {
            if (i + 1 >= argc || cli_int_arg("run", a, argv[++i], 1, 4096, &threads))
                rc = rc ? rc : CLI_USAGE;
        } else if (!strcmp(a, "--timeout")) {
            if (i + 1 >= argc || cli_int_arg("run", a, argv[++i], 0, 7 * 24 * 3600, &timeout_s))
                rc = rc ? rc : CLI_USAGE;
        } else if (!strcmp(a, "--memory-limit")) {
            rc = size_arg(a, i + 1 < argc ? argv[++i] : NULL, &limit);
        } else if (!strcmp(a, "--data-limit")) {
            rc = size_arg(a, i + 1 < argc ? argv[++i] : NULL, &data_limit);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) rc = cli_fail("run", CLI_USAGE, "%s: expected a file name", a);
            else out_path = argv[++i];
        } else if (!strcmp(a, "--save-weights")) {
            if (i + 1 >= argc || !argv[i + 1][0])
                rc = cli_fail("run", CLI_USAGE, "%s: expected a file name", a);
            else ckpt_path = argv[++i];
        } else if (!strcmp(a, "--save") || !strcmp(a, "--resume")) {
            if (i + 1 >= argc || !argv[i + 1][0])
                rc = cli_fail("run", CLI_USAGE, "%s: expected a file name", a);
            else if (a[2] == 's') save_path = argv[++i];
            else resume_path = argv[++i];
        } else if (!strcmp(a, "--save-every")) {
            if (i + 1 >= argc || cli_int_arg("run", a, argv[++i], 1, 1000000, &save_every))
                rc = rc ? rc : CLI_USAGE;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (a[0] == '-' && a[1]) {
            rc = cli_fail("run", CLI_USAGE, "unknown option \"%s\" (see parasim run --help)", a);
        } else if (path) {
            rc = cli_fail("run", CLI_USAGE, "expected one plan file, found \"%s\" and \"%s\"", path, a);
        } else {
            path = a;
        }
    }
    if (rc == CLI_OK && !path)
        rc = cli_fail("run", CLI_USAGE, "expected a plan file (e.g. plans/tiny-1m-cpu.yaml)");
    if (rc == CLI_OK) rc = cli_check_not_input("run", path, out_path);
    if (rc == CLI_OK) rc = cli_check_not_input("run", path, ckpt_path);
    if (rc == CLI_OK) rc = cli_check_not_input("run", path, save_path);
    if (rc == CLI_OK && out_path && ckpt_path && strcmp(out_path, "-") &&
        atomic_file_same_target(out_path, ckpt_path))
        rc = cli_fail("run", CLI_USAGE, "--save-weights %s names the profile's file (-o %s): give "
                      "them different names", ckpt_path, out_path);
    if (rc == CLI_OK && out_path && save_path && strcmp(out_path, "-") &&
        atomic_file_same_target(out_path, save_path))
        rc = cli_fail("run", CLI_USAGE, "--save %s names the profile's file (-o %s): give them "
                      "different names", save_path, out_path);
    if (rc == CLI_OK && ckpt_path && save_path && atomic_file_same_target(ckpt_path, save_path))
        rc = cli_fail("run", CLI_USAGE, "--save %s and --save-weights %s name the same file: give "
                      "them different names", save_path, ckpt_path);
    if (rc == CLI_OK && save_every && !save_path)
        rc = cli_fail("run", CLI_USAGE, "--save-every: expected --save FILE too (where to write)");
    if (rc == CLI_OK && !strcmp(backend, "cuda"))
        rc = cli_fail("run", CLI_FAIL, "--backend cuda: the CUDA executor is not built yet; the "
                                       "CPU backend runs every plan (--backend cpu)");
    if (rc != CLI_OK) {
        cli_stderr_restore(saved_err);
        return rc < 0 ? CLI_OK : rc;
    }

    ps_err err = {{0}};
    plan_spec *spec = calloc(1, sizeof *spec);
    program prog;
    memset(&prog, 0, sizeof prog);
    int status = spec ? plan_load(path, ov.ov, ov.n, spec, &err) : ps_err_set(&err, "out of memory");
    /* this runtime's kernels compute in fp32 whatever the plan's cluster says
     * (gpu.kernel_dtype, docs/specs.md): predict the fp32 copies it makes */
    if (status == 0) spec->cluster.cfg.kernels_fp32 = true;
    /* --resume: every rank reads and checks the whole file before any work; the
     * run has the steps after the saved ones (train.steps counts them all) */
    rt_ckpt resume;
    memset(&resume, 0, sizeof resume);
    int64_t run_steps = status == 0 ? (steps > 0 ? steps : spec->train.steps) : 0;
    if (status == 0 && resume_path) status = rt_ckpt_read(resume_path, &resume, &err);
    if (status == 0 && resume_path) {
        run_steps = rt_ckpt_resume_steps(&resume, run_steps, resume_path, &err);
        if (run_steps < 0) status = -1;
    }
    if (status == 0) status = program_emit(spec, (int)run_steps, &prog, &err);
    if (status == 0 && prog.world != world)
        status = ps_err_set(&err, "%s: the plan has %lld ranks (gpus: %lld) but mpirun started %d; "
                                  "run it with mpirun -np %lld", path, (long long)prog.world,
                            (long long)prog.world, world, (long long)prog.world);
    replay_result rp;
    memset(&rp, 0, sizeof rp);
    const int local = cli_local_ranks();
    if (status == 0) status = replay_program(&prog, &rp, &err);
    if (status == 0) status = run_profile_check_memory(&prog, &rp, local, &err);
    /* the profile is written at the end, by rank 0: check now that it can be */
    if (status == 0 && rank == 0 && out_path) status = run_profile_check_output(out_path, &err);
    /* checkpoints hold the dense Llama block (rt_ckpt.h): refused before any work */
    const char *ck_flag = ckpt_path ? "--save-weights" : save_path ? "--save" : "--resume";
    if (status == 0 && (ckpt_path || save_path || resume_path) && program_is_moe(&prog))
        status = ps_err_set(&err, "%s: %s is a mixture-of-experts model (%lld "
                                  "experts); checkpoints hold dense models only, since the "
                                  "inference engine (parasim generate) runs dense models, so "
                                  "none is written or read for it yet", ck_flag, prog.model_name,
                            (long long)prog.experts);
    if (status == 0 && resume_path)
        status = rt_ckpt_check_resume(&resume, &prog, resume_path, &err);
    /* distillation: every rank reads the teacher and checks its shape before any work */
    rt_ckpt teacher;
    memset(&teacher, 0, sizeof teacher);
    if (status == 0 && prog.distill.on)
        status = rt_ckpt_read(prog.distill.checkpoint, &teacher, &err) ||
                 rt_ckpt_check_teacher(&teacher, &prog, &err);
    if (status == 0 && rank == 0 && ckpt_path) status = run_profile_check_output(ckpt_path, &err);
    if (status == 0 && rank == 0 && save_path) status = run_profile_check_output(save_path, &err);
    free(spec);
    cli_stderr_restore(saved_err);
    /* the ranks may see different files or free memory: agree before any
     * collective work, so that one rank's refusal stops them all */
    status = rt_world_agree(status, &err);
    if (status != 0) {
        if (rank == 0) fprintf(stderr, "parasim run: %s\n", err.msg);
        goto free_program;
    }

    const rt_backend *be = &rt_backend_cpu;
    if (!strcmp(backend, "auto")) { /* one line saying why, where it is the CPU */
        char why[512];
        if (!rt_device_auto_is_cuda(why, sizeof why) && rank == 0 && !quiet)
            fprintf(stderr, "parasim run: --backend auto: the CPU backend, because %s\n", why);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0) threads = cores / local > 0 ? cores / local : 1;
    be->set_threads((int)threads);
    rt_groups groups;
    status = rt_groups_init(&groups, &prog, &err);
    status = rt_world_agree(status, &err);
    if (status != 0) {
        if (rank == 0) fprintf(stderr, "parasim run: %s\n", err.msg);
        goto free_groups;
    }
    if (rank == 0 && !quiet) {
        printf("parasim run: %s (%s), %lld ranks x %lld threads, backend %s, %d steps of %lld "
               "tokens\n", prog.plan_name, prog.model_name, (long long)prog.world,
               (long long)threads, be->name, prog.steps, (long long)(prog.global_batch * prog.seq));
        if (resume_path)
            printf("resumed from %s after step %lld: steps %lld to %lld\n", resume_path,
                   (long long)resume.m.steps, (long long)resume.m.steps + 1,
                   (long long)resume.m.steps + prog.steps);
        fflush(stdout);
    }
    step_ctx ctx = {.rank = rank, .quiet = quiet,
                    .tokens_per_step = (double)prog.global_batch * (double)prog.seq};
    rt_options opt = {.on_step = on_step, .ctx = &ctx, .memory_limit_bytes = (int64_t)limit,
                      .data_limit_bytes = (int64_t)data_limit, .timeout_s = (double)timeout_s,
                      .save_weights_path = ckpt_path, .save_path = save_path,
                      .save_every = save_every, .resume = resume_path ? &resume : NULL,
                      .teacher = prog.distill.on ? &teacher : NULL};
    rt_result res;
    status = rt_exec_run(&prog, be, &groups, &opt, &res, &err);
    if (status > 0) { /* set-up failed, training diverged or the checkpoint was not written;
                       * every rank has the message */
        if (rank == 0) fprintf(stderr, "parasim run: %s\n", err.msg);
        goto free_result;
    }
    if (status < 0) {
        /* a rank failed mid-step: the others may wait in a collective for it */
        fprintf(stderr, "parasim run: rank %d: %s\n", rank, err.msg);
        fflush(stderr);
        atomic_file_remove_temporaries();
        MPI_Abort(MPI_COMM_WORLD, CLI_FAIL);
    }
    /* every rank's measurements to rank 0, for the summary and the profile */
    run_gather all;
    status = run_gather_all(&prog, &groups, &res, &all, &err);
    if (status != 0) {
        if (rank == 0) fprintf(stderr, "parasim run: %s\n", err.msg);
        goto free_result;
    }
    if (rank == 0 && !quiet) {
        run_profile_print_summary(stdout, &prog, &groups, &rp, &res, &all);
        if ((long)local * threads > cores)
            printf("note: %d ranks x %lld threads on %ld cores here: oversubscribed, so the "
                   "measured times are inflated\n", local, (long long)threads, cores);
    }
    if (rank == 0 && out_path &&
        run_profile_write(out_path, &prog, &rp, &res, &all, (int)threads, &err) != 0) {
        fprintf(stderr, "parasim run: %s\n", err.msg);
        status = -1;
    }
    run_gather_free(&all);
    /* one release path: each failure jumps to what it has to free */
free_result:
    rt_result_free(&res);
free_groups:
    rt_groups_free(&groups);
free_program:
    rt_ckpt_free(&resume);
    rt_ckpt_free(&teacher);
    replay_free(&rp);
    program_free(&prog);
    return status ? CLI_FAIL : CLI_OK;
}

int cmd_run(int argc, char **argv) {
    return cli_mpi_main("run", "launch with mpirun -np N", argc, argv, cli_run_main);
}
