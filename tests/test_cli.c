/* test_cli.c — the parasim command end to end: the README's main job, JSON
 * that parses back, overrides, errors and exit codes, atomic -o. The binary's
 * path is argv[1]; the working directory is the source tree. */
#define _DEFAULT_SOURCE /* mkdtemp, makedev */
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tu.h"
#include "spec/yget.h"
#include "spec/ynode.h"

static const char *parasim;

/* Run "parasim ARGS", capture stdout+stderr; returns the exit status. */
static int run(const char *args, char *out, size_t len) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", parasim, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int64_t json_int(const ynode *root, const char *dotted) {
    char path[256], *save = NULL;
    snprintf(path, sizeof path, "%s", dotted);
    const ynode *n = root;
    for (char *k = strtok_r(path, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        n = ynode_get(n, k);
        if (!n) fail_msg("JSON lacks %s", dotted);
    }
    int64_t v;
    if (n->kind != YN_SCALAR || yget_parse_int(n->str, &v)) fail_msg("%s is not an integer", dotted);
    return v;
}

static ynode *parse(const char *text) {
    ynode *root = NULL;
    ps_err err = {{0}};
    if (ynode_load_string(text, "output.json", &root, &err)) fail_msg("%s\n%s", err.msg, text);
    return root;
}

static char out[1 << 20];

/* The README's main job: the built-in default plan. */
static void test_default_plan_json(void **state) {
    (void)state;
    assert_int_equal(run("plan --format json", out, sizeof out), 0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "model.params"), 8030261248LL);
    int64_t parts = 0;
    const char *cats[] = {"params", "grads", "master", "optimizer", "activations", "other"};
    for (int i = 0; i < 6; i++) {
        char k[64];
        snprintf(k, sizeof k, "memory.%s", cats[i]);
        parts += json_int(j, k);
    }
    assert_int_equal(json_int(j, "memory.total"), parts);
    /* ZeRO-1 over 8: 2 + 2 + 12/8 bytes per parameter of model states */
    assert_int_equal(json_int(j, "memory.params") + json_int(j, "memory.grads") +
                         json_int(j, "memory.master") + json_int(j, "memory.optimizer"),
                     8030261248LL * 2 + 8030261248LL * 2 + 8030261248LL * 12 / 8);
    const ynode *fits = ynode_get(j, "fits");
    assert_string_equal(fits->str, "true");
    /* one Llama 3 8B layer keeps 12h + 4k + 6f + 4a + 8 bytes per token (docs/memory.md §3) */
    const ynode *tensors = ynode_get(ynode_get(j, "memory"), "layer_tensors");
    int64_t layer = 0, v;
    for (int i = 0; i < tensors->n; i++) {
        assert_int_equal(yget_parse_int(ynode_get(tensors->items[i], "bytes")->str, &v), 0);
        layer += v;
    }
    assert_int_equal(layer, 4096LL * (12 * 4096 + 4 * 1024 + 6 * 14336 + 4 * 32 + 8));
    const ynode *stages = ynode_get(ynode_get(j, "memory"), "stages");
    assert_int_equal(stages->n, 1);
    assert_true(json_int(j, "comm.dp_bytes") > 0);
    assert_int_equal(json_int(j, "comm.tp_bytes"), 0);
    ynode_free(j);
}

static void test_table_and_overrides(void **state) {
    (void)state;
    assert_int_equal(run("plan", out, sizeof out), 0);
    tu_contains(out, "Memory per GPU", "optimizer states", "fits", "Communication", "reduce-scatter",
                NULL);
    assert_int_equal(run("plan plans/llama3-70b-256xh100.yaml --format json --set batch.micro=2",
                         out, sizeof out),
                     0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "plan.batch.micro"), 2);
    assert_int_equal(ynode_get(ynode_get(j, "memory"), "stages")->n, 4);
    assert_int_equal(json_int(j, "memory.heaviest_stage"), 0);
    ynode_free(j);
    /* a Hugging Face config.json as the model */
    assert_int_equal(run("plan --model tests/data/hf/gpt2/config.json --set batch.seq=1024 "
                         "--format json", out, sizeof out), 0);
    j = parse(out);
    assert_int_equal(json_int(j, "model.params"), 124439808LL);
    ynode_free(j);
}

/* Issue 12: a MoE model's plan shows total and activated parameters (and the
 * MTP modules) in the table and the JSON; a dense model's output has none of it. */
static void test_plan_moe_params(void **state) {
    (void)state;
    assert_int_equal(run("plan --model deepseek-v3", out, sizeof out), 0);
    tu_contains(out, "experts    256 routed (top 8) + 1 shared, ffn 2048 each; 58 MoE layers after 3 dense",
                "params     671,026,419,200 total, 37,552,297,472 activated per token",
                "MTP 1 module(s): 11,610,068,224 more", "multi-head latent: q_lora 1536", NULL);
    assert_int_equal(run("plan --model tests/data/hf/mixtral-8x7b/config.json --format json", out,
                         sizeof out),
                     0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "model.parameters.total"), 46702792704LL);
    assert_int_equal(json_int(j, "model.parameters.activated"), 12879925248LL);
    assert_int_equal(json_int(j, "model.parameters.mtp"), 0);
    assert_int_equal(json_int(j, "model.moe.experts"), 8);
    assert_int_equal(json_int(j, "model.moe.moe_layers"), 32);
    assert_null(ynode_get(ynode_get(j, "model"), "mla"));
    ynode_free(j);
    assert_int_equal(run("plan", out, sizeof out), 0);
    assert_null(strstr(out, "activated"));
    assert_null(strstr(out, "experts"));
    assert_int_equal(run("plan --format json", out, sizeof out), 0);
    j = parse(out);
    assert_null(ynode_get(ynode_get(j, "model"), "parameters"));
    assert_null(ynode_get(ynode_get(j, "model"), "moe"));
    ynode_free(j);
}

/* A MoE plan's table and JSON: the expert layout, the ep all-to-all rows,
 * the memory per category of the heaviest stage, the edp group; a dense
 * plan's JSON has no ep/edp keys (its output is unchanged). */
static void test_plan_moe_layout(void **state) {
    (void)state;
    assert_int_equal(run("plan plans/deepseek-v3-2048xh800.yaml", out, sizeof out), 0);
    tu_contains(out, "experts    ep=64 etp=1 edp=2: 4 experts per rank; dropless", "node limit 4",
                "  ep    all-to-all         64       720", "tokens dispatch+combine (forward)",
                "  edp   reduce-scatter      2", "exposed ep communication", "params ", "grads ",
                "master weights", "optimizer states", "activations", ": fits", "MTP embedding gradients", NULL);
    assert_int_equal(run("plan plans/deepseek-v3-2048xh800.yaml --format json", out, sizeof out), 0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "plan.moe.ep"), 64);
    assert_int_equal(json_int(j, "plan.moe.edp"), 2);
    assert_int_equal(json_int(j, "plan.moe.node_limit"), 4);
    assert_true(json_int(j, "comm.ep_bytes") > 0);
    assert_true(json_int(j, "comm.edp_bytes") > 0);
    assert_true(json_int(j, "memory.master") > 0);
    assert_non_null(ynode_get(ynode_get(j, "time"), "moe_layer_ops"));
    ynode_free(j);
    assert_int_equal(run("plan --format json", out, sizeof out), 0);
    j = parse(out);
    assert_null(ynode_get(ynode_get(j, "comm"), "ep_bytes"));
    assert_null(ynode_get(ynode_get(j, "plan"), "moe"));
    ynode_free(j);
}

static void test_errors_and_exit_codes(void **state) {
    (void)state;
    assert_int_equal(run("plan --set parallel.tp=3", out, sizeof out), 1);
    tu_contains(out, "parasim plan:", "--set parallel.tp=3", "parallel", NULL);
    assert_int_equal(run("plan no/such/plan.yaml", out, sizeof out), 1);
    tu_contains(out, "no/such/plan.yaml", "cannot open", NULL);
    assert_int_equal(run("plan --bogus", out, sizeof out), 2);
    tu_contains(out, "unknown option", NULL);
    assert_int_equal(run("frobnicate", out, sizeof out), 2);
    assert_int_equal(run("help", out, sizeof out), 0);
    tu_contains(out, "plan", "infer", NULL);
    assert_int_equal(run("plan --help", out, sizeof out), 0);
    tu_contains(out, "--set", "Built-in default plan", NULL);
    assert_int_equal(run("infer --tp 3", out, sizeof out), 1);
    tu_contains(out, "--tp", "found 3", NULL);
}

static void test_output_file_is_atomic(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-cli-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024], path[512];
    snprintf(path, sizeof path, "%s/plan.json", dir);
    snprintf(args, sizeof args, "plan --format json -o %s", path);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_string_equal(out, "");
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "model.params"), 8030261248LL);
    ynode_free(j);
    /* no temporary left behind */
    snprintf(args, sizeof args, "ls -A %s", dir);
    FILE *ls = popen(args, "r");
    n = fread(out, 1, sizeof out - 1, ls);
    out[n] = 0;
    pclose(ls);
    assert_string_equal(out, "plan.json\n");
    unlink(path);
    rmdir(dir);
}

/* -o and --all never replace a symbolic link, a FIFO or a device node with a
 * regular file: they are refused (docs/output.md), promptly, and left as they
 * were. (Never tried on /dev/null itself: a regression would destroy it.) */
static void test_output_refuses_special_files(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-special-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char target[512], link[512], fifo[512], dev[512], args[1024];
    snprintf(target, sizeof target, "%s/target.txt", dir);
    snprintf(link, sizeof link, "%s/link.json", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    snprintf(dev, sizeof dev, "%s/null", dir);
    FILE *f = fopen(target, "w");
    assert_non_null(f);
    fputs("keep me\n", f);
    fclose(f);
    assert_int_equal(symlink("target.txt", link), 0);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    /* a character device like /dev/null (1, 3), made here when we may (root) */
    const int have_dev = mknod(dev, S_IFCHR | 0666, makedev(1, 3)) == 0;
    const char *cmds[] = {"plan --format json -o %s", "infer -o %s",
                          "emit plans/tiny-1m-cpu.yaml --steps 1 -o %s",
                          "sweep plans/sweeps/gpt3-175b-512xa100.yaml --all %s --quiet",
                          /* the ranking's -o, refused before the sweep runs */
                          "sweep plans/sweeps/gpt3-175b-512xa100.yaml --quiet -o %s",
                          "plot schedule --format png -o %s"};
    const char *paths[] = {link, fifo, dev};
    const char *kinds[] = {"is a symbolic link", "is a FIFO", "is a character device"};
    for (int p = 0; p < 3; p++) {
        if (p == 2 && !have_dev) continue;
        for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++) {
            char cmd[1024];
            snprintf(cmd, sizeof cmd, cmds[c], paths[p]);
            snprintf(args, sizeof args, "%s", cmd);
            const time_t t0 = time(NULL);
            /* timeout: a FIFO opened for writing would block without a reader */
            char full[2200];
            snprintf(full, sizeof full, "timeout 20 %s %s 2>&1", parasim, args);
            FILE *pp = popen(full, "r");
            assert_non_null(pp);
            size_t n = fread(out, 1, sizeof out - 1, pp);
            out[n] = 0;
            int st = pclose(pp);
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 1)
                fail_msg("%s: expected exit 1, got status %d:\n%s", cmd, st, out);
            assert_true(time(NULL) - t0 < 10);
            tu_contains(out, paths[p], kinds[p], "not a regular file", NULL);
            struct stat st_after;
            assert_int_equal(lstat(paths[p], &st_after), 0);
            assert_true(p == 0 ? S_ISLNK(st_after.st_mode)
                               : p == 1 ? S_ISFIFO(st_after.st_mode) : S_ISCHR(st_after.st_mode));
        }
    }
    /* the link's target is untouched */
    f = fopen(target, "r");
    assert_non_null(f);
    char buf[64] = {0};
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "keep me\n");
    /* and no temporary is left next to them */
    assert_string_equal(tu_dir_list(dir), have_dev ? "fifo\nlink.json\nnull\ntarget.txt\n"
                                                : "fifo\nlink.json\ntarget.txt\n");
    unlink(link), unlink(fifo), unlink(dev), unlink(target);
    rmdir(dir);
}

/* A readable spec at a path over 1 KiB (under PATH_MAX) is read, given by
 * --model or by --set; a path of PATH_MAX bytes or more is refused by name. */
static void test_long_spec_path(void **state) {
    (void)state;
    char dir[1400], path[1500], args[3200];
    int o = snprintf(dir, sizeof dir, "/tmp/parasim-long-path");
    mkdir(dir, 0700);
    while (o < 1200) {
        o += snprintf(dir + o, sizeof dir - (size_t)o, "/%s", "a-directory-of-a-long-path");
        mkdir(dir, 0700);
    }
    snprintf(path, sizeof path, "%s/tiny-1m.yaml", dir);
    snprintf(args, sizeof args, "cp models/tiny-1m.yaml %s", path);
    assert_int_equal(system(args), 0);
    assert_true(strlen(path) > 1024);
    snprintf(args, sizeof args, "plan --model %s", path);
    if (run(args, out, sizeof out)) fail_msg("%s", out);
    tu_contains(out, "tiny-1m", NULL);
    snprintf(args, sizeof args, "plan --set model=%s", path);
    if (run(args, out, sizeof out)) fail_msg("%s", out);
    char *huge = malloc(PATH_MAX + 64);
    assert_non_null(huge);
    memset(huge, 'x', PATH_MAX + 8);
    huge[PATH_MAX + 8] = 0;
    char *cmd = malloc(PATH_MAX + 256);
    assert_non_null(cmd);
    snprintf(cmd, PATH_MAX + 256, "plan --model %s", huge);
    assert_int_equal(run(cmd, out, sizeof out), 2);
    tu_contains(out, "--model: expected a name or a path of at most", "found 4104 bytes", NULL);
    free(huge), free(cmd);
    assert_int_equal(system("rm -rf /tmp/parasim-long-path"), 0);
}

/* sweep --all X -o X: two outputs on one file are refused before any work,
 * however the paths are spelled. */
static void test_sweep_same_output_twice(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-twice-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024];
    snprintf(args, sizeof args, "sweep --all %s/x.csv -o %s//./x.csv --quiet", dir, dir);
    assert_int_equal(run(args, out, sizeof out), 2);
    tu_contains(out, "parasim sweep: --all", "name the same file", NULL);
    assert_string_equal(tu_dir_list(dir), "");
    /* an existing file, reached by two names (a hard link) */
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/a.csv", dir);
    snprintf(b, sizeof b, "%s/b.csv", dir);
    FILE *f = fopen(a, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(link(a, b), 0);
    snprintf(args, sizeof args, "sweep --all %s -o %s --quiet", a, b);
    assert_int_equal(run(args, out, sizeof out), 2);
    tu_contains(out, "name the same file", NULL);
    unlink(a), unlink(b);
    rmdir(dir);
}

/* An output never replaces the input it is made from, however spelled. */
static void test_output_is_not_the_input(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-inout-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char in[512], args[1400];
    snprintf(in, sizeof in, "%s/in.yaml", dir);
    snprintf(args, sizeof args, "cp plans/tiny-1m-cpu.yaml %s", in);
    assert_int_equal(system(args), 0);
    /* (run's case is in test_run, whose sanitizer settings suit MPI) */
    const char *cmds[] = {"plan %s -o %s", "emit %s -o %s", "sweep %s --all %s", "sweep %s -o %s"};
    for (size_t c = 0; c < sizeof cmds / sizeof *cmds; c++) {
        char spelled[600];
        snprintf(spelled, sizeof spelled, "%s/.//in.yaml", dir);
        snprintf(args, sizeof args, cmds[c], in, spelled);
        assert_int_equal(run(args, out, sizeof out), 2);
        tu_contains(out, "would replace the input", in, NULL);
    }
    /* the input named through a symbolic link, the output by the file's own name */
    char link[512];
    snprintf(link, sizeof link, "%s/link.yaml", dir);
    assert_int_equal(symlink("in.yaml", link), 0);
    snprintf(args, sizeof args, "emit %s --steps 1 -o %s", link, in);
    assert_int_equal(run(args, out, sizeof out), 2);
    tu_contains(out, "would replace the input", NULL);
    unlink(link);
    snprintf(args, sizeof args, "cmp -s plans/tiny-1m-cpu.yaml %s", in);
    assert_int_equal(system(args), 0);
    assert_string_equal(tu_dir_list(dir), "in.yaml\n");
    unlink(in);
    rmdir(dir);
}

/* SIGINT (or SIGTERM) during a long sweep --all removes the temporary: no
 * OUT.csv.tmp.* is left, and OUT.csv is not created. */
static void interrupt_sweep(int sig) {
    char dir[] = "/tmp/parasim-sigint-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cwd[1024], spec[1200];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(spec, sizeof spec, "%s/plans/sweeps/gpt3-175b-512xa100.yaml", cwd);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the default action, as from a terminal (a test runner may ignore SIGINT) */
        signal(sig, SIG_DFL);
        if (chdir(dir)) _exit(126);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        execl(parasim, parasim, "sweep", spec, "--all", "OUT.csv", "--quiet", (char *)NULL);
        _exit(127);
    }
    /* until the temporary exists (the sweep is writing), at most 10 s */
    for (int i = 0; i < 1000 && !strstr(tu_dir_list(dir), "OUT.csv.tmp."); i++) usleep(10000);
    tu_contains(tu_dir_list(dir), "OUT.csv.tmp.", NULL);
    usleep(500000);
    assert_int_equal(kill(pid, sig), 0);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    if (!WIFSIGNALED(st) || WTERMSIG(st) != sig)
        fail_msg("expected death by signal %d, status %d (finished before the signal?)", sig, st);
    assert_string_equal(tu_dir_list(dir), "");
    rmdir(dir);
}

static void test_sweep_interrupted(void **state) {
    (void)state;
    interrupt_sweep(SIGINT);
    interrupt_sweep(SIGTERM);
}

static void test_infer(void **state) {
    (void)state;
    assert_int_equal(run("infer --model llama3-70b --tp 8 --batch 32 --context 8192 --format json",
                         out, sizeof out),
                     0);
    ynode *j = parse(out);
    /* 2 * 80 layers * 1 kv head per GPU * 128 * 2 bytes */
    assert_int_equal(json_int(j, "memory.kv_per_token"), 2 * 80 * 1 * 128 * 2);
    assert_int_equal(json_int(j, "memory.kv_cache"), 40960LL * 32 * 8192);
    ynode_free(j);
    /* issue 12: DeepSeek-V3's KV cache was sized as K and V of 128 heads of
     * 192 (45.75 GiB at context 8192); MLA caches the 512 + 64 latent:
     * 61 x 576 x 2 B = 70,272 B per token, 549 MiB */
    assert_int_equal(run("infer --model models/deepseek-v3.yaml --format json", out, sizeof out),
                     0);
    j = parse(out);
    assert_int_equal(json_int(j, "memory.kv_per_token"), 70272);
    assert_int_equal(json_int(j, "memory.kv_cache"), 70272LL * 8192);
    assert_int_equal(json_int(j, "memory.weights"), 2 * 671026419200LL);
    ynode_free(j);
    assert_int_equal(run("infer --model models/deepseek-v3.yaml", out, sizeof out), 0);
    tu_contains(out, "549.00 MiB  (68.62 KiB per token, the MLA latent, on every GPU; 512 blocks of 1.07 MiB)",
                "the GPU holds all 256 routed experts", NULL);
    assert_int_equal(run("infer --model models/deepseek-v3.yaml --tp 8", out, sizeof out), 0);
    tu_contains(out, "157.92 GiB", "each GPU holds all 256 routed experts, each split 8 ways by tp",
                NULL);
    assert_null(strstr(out, "45.75 GiB"));
}

/* infer --tp on a MoE model: tp splits each expert, so it must divide
 * expert_ffn_hidden; a MoE model without dense layers does not use
 * ffn_hidden, which tp need not divide. */
static void test_infer_moe_tp(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-infer-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024], path[256];
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    snprintf(args, sizeof args,
             "sed -e 's/^expert_ffn_hidden: 14336/expert_ffn_hidden: 14340/' "
             "-e 's/^ffn_hidden: 14336/ffn_hidden: 14340/' models/mixtral-8x7b.yaml > %s",
             path);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "infer --model %s --tp 8", path);
    assert_int_equal(run(args, out, sizeof out), 1);
    tu_contains(out, "--tp: expected a divisor of heads = 32 and expert_ffn_hidden = 14340",
                "kv_heads = 8", "m.yaml", "found 8", NULL);
    assert_null(strstr(out, "ffn_hidden = 14340 and"));
    snprintf(args, sizeof args, "infer --model %s --tp 4", path);
    assert_int_equal(run(args, out, sizeof out), 0);
    unlink(path);
    rmdir(dir);
    assert_int_equal(run("infer --model models/deepseek-v3.yaml --tp 3", out, sizeof out), 1);
    tu_contains(out, "heads = 128, ffn_hidden = 18432 and expert_ffn_hidden = 2048", "found 3",
                NULL);
}

/* Issue 13: the runtime's schemes, the paged KV cache with prefix caching
 * and the questions, end to end. tiny-1m at tp 2, int8-row, int8 KV cache,
 * f32 compute, 3 sequences of 100 tokens sharing 40 (test_infer.c's
 * test_memory_predict has the arithmetic): weights 559,360 + 14,336 of
 * scales; 288 B per token, blocks of 16 x 288 = 4608 B, 3 x 7 - 2 x 2 = 17
 * blocks held, 2 x 2 = 4 saved; a forward of 64 tokens, 360,960 B; logits
 * 3 x 128 x 4. */
static void test_infer_runtime_schemes(void **state) {
    (void)state;
    assert_int_equal(run("infer --model tiny-1m --tp 2 --weights int8-row --kv-cache int8 "
                         "--compute f32 --batch 3 --context 100 --prefix 40 --prefill-chunk 64 "
                         "--format json",
                         out, sizeof out),
                     0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "memory.weights"), 559360 + 14336);
    assert_int_equal(json_int(j, "memory.weight_scales"), 14336);
    assert_int_equal(json_int(j, "memory.kv_per_token"), 288);
    assert_int_equal(json_int(j, "memory.kv_block"), 4608);
    assert_int_equal(json_int(j, "memory.kv_blocks"), 17);
    assert_int_equal(json_int(j, "memory.kv_cache"), 17 * 4608);
    assert_int_equal(json_int(j, "memory.prefix_saved"), 4 * 4608);
    assert_int_equal(json_int(j, "memory.fwd_tokens"), 64);
    assert_int_equal(json_int(j, "memory.activations"), 360960);
    assert_int_equal(json_int(j, "memory.logits"), 3 * 512);
    assert_int_equal(json_int(j, "block_size"), 16);
    assert_int_equal(json_int(j, "prefix"), 40);
    assert_true(json_int(j, "max_batch") > json_int(j, "max_batch_unshared"));
    assert_true(json_int(j, "max_context") >= 100);
    assert_int_equal(json_int(j, "min_tp"), 1);
    ynode_free(j);
    assert_int_equal(run("infer --model tiny-1m --weights int4-block --prefix 4000 --batch 8",
                         out, sizeof out),
                     0);
    tu_contains(out, "weights int4-block (group 32), KV cache bf16 in blocks of 16, compute bf16",
                "of which scales", "prefix caching saves", "4000-token prefix: 250 full blocks",
                "without prefix caching", "longest context at batch 8 that fits:",
                "fewest GPUs (tp) that fit batch 8 x context 8192: 1", NULL);
    /* the source's table: ~16 / 140 / 810 GB of bf16 weights (docs/memory.md §8) */
    const char *models[] = {"llama3-8b", "llama3-70b", "llama3-405b"};
    const char *gb[] = {"(16.06 GB)", "(141.11 GB)", "(811.71 GB)"};
    for (int i = 0; i < 3; i++) {
        char args[128];
        snprintf(args, sizeof args, "infer --model %s", models[i]);
        assert_int_equal(run(args, out, sizeof out), 0);
        tu_contains(out, gb[i], NULL);
    }
    /* Llama 3 405B in bf16 needs 811.71 GB: 16 H100s of 80 GB at the least
     * (tp 16 divides 128 heads, 53,248 and is a multiple of 8 kv heads) */
    assert_int_equal(run("infer --model llama3-405b --format json", out, sizeof out), 0);
    j = parse(out);
    assert_int_equal(json_int(j, "min_tp"), 16);
    ynode_free(j);
}

/* Bad values of the new options: what was expected, what was found. */
static void test_infer_bad_options(void **state) {
    (void)state;
    assert_int_equal(run("infer --weights int3", out, sizeof out), 2);
    tu_contains(out, "parasim infer: --weights: expected one of bf16, fp16, fp8, int8, int4, f32, "
                     "int8-tensor, int8-zeropoint, int8-row, int8-vector, int8-decomp, int8-block, "
                     "int4-block, found \"int3\"",
                NULL);
    assert_int_equal(run("infer --kv-cache int4", out, sizeof out), 2);
    tu_contains(out, "--kv-cache: expected one of bf16, fp16, fp8, f32, int8, found \"int4\"", NULL);
    assert_int_equal(run("infer --compute fp16", out, sizeof out), 2);
    tu_contains(out, "--compute: expected one of bf16, f32, found \"fp16\"", NULL);
    assert_int_equal(run("infer --compute", out, sizeof out), 2);
    tu_contains(out, "--compute: expected one of bf16, f32, found the end of the arguments", NULL);
    assert_int_equal(run("infer --block-size 0", out, sizeof out), 2);
    tu_contains(out, "--block-size: expected an integer from 1 to 65536, found \"0\"", NULL);
    assert_int_equal(run("infer --prefix -1", out, sizeof out), 2);
    tu_contains(out, "--prefix: expected an integer from 0 to 16777216, found \"-1\"", NULL);
    assert_int_equal(run("infer --context 100 --prefix 101", out, sizeof out), 2);
    tu_contains(out, "--prefix: expected at most --context (100 tokens), found 101", NULL);
    assert_int_equal(run("infer --model tiny-1m --weights int8-block --group-size 48", out,
                         sizeof out),
                     1);
    tu_contains(out, "--group-size: expected 32, 64 or 128 for --weights int8-block, found 48", NULL);
    assert_int_equal(run("infer --model tiny-1m --tp 2 --weights int4-block --group-size 128", out,
                         sizeof out),
                     1);
    tu_contains(out, "--group-size", "found 128, which does not divide 64",
                "a 128 x 64 shard at tp 2", NULL);
}

/* parasim sweep: ranking as JSON, every point to CSV atomically, the step
 * time in the plan's JSON, and bad input. */
static void test_sweep(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-sweep-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024], spec[128], csv[128];
    snprintf(spec, sizeof spec, "%s/s.yaml", dir);
    snprintf(csv, sizeof csv, "%s/all.csv", dir);
    FILE *f = fopen(spec, "w");
    assert_non_null(f);
    fputs("model: gpt-1.7b\ncluster: dgx-a100\ngpus: 16\nbatch: {global: 64, seq: 2048}\n"
          "precision: bf16-mixed\noptimizer: adamw\n"
          "space: {tp: auto, pp: [1, 2], zero: auto, micro: [1, 2], recompute: auto}\n", f);
    fclose(f);
    snprintf(args, sizeof args, "sweep %s --top 3 --format json --all %s --quiet", spec, csv);
    assert_int_equal(run(args, out, sizeof out), 0);
    ynode *j = parse(out);
    const int64_t points = json_int(j, "points");
    assert_true(points > 0);
    assert_int_equal(ynode_get(j, "top")->n, 3);
    const ynode *top = ynode_get(j, "top")->items[0];
    assert_non_null(ynode_get(top, "beats_next"));
    ynode_free(j);
    /* one CSV row per point after the header */
    f = fopen(csv, "r");
    assert_non_null(f);
    int64_t lines = 0;
    for (int ch; (ch = fgetc(f)) != EOF;) lines += ch == '\n';
    fclose(f);
    assert_int_equal(lines, points + 1);
    snprintf(args, sizeof args, "ls -A %s", dir);
    FILE *ls = popen(args, "r");
    size_t n = fread(out, 1, sizeof out - 1, ls);
    out[n] = 0;
    pclose(ls);
    assert_string_equal(out, "all.csv\ns.yaml\n");
    /* the table explains the winner */
    snprintf(args, sizeof args, "sweep %s --top 2 --quiet", spec);
    assert_int_equal(run(args, out, sizeof out), 0);
    tu_contains(out, "Top 2 plans by predicted throughput", "beats #2", "Points by outcome", NULL);
    /* bad input */
    assert_int_equal(run("sweep --top -1", out, sizeof out), 2);
    assert_int_equal(run("sweep /nonexistent.yaml", out, sizeof out), 1);
    tu_contains(out, "/nonexistent.yaml", NULL);
    unlink(csv);
    unlink(spec);
    rmdir(dir);
    /* the plan's JSON carries the step time */
    assert_int_equal(run("plan --format json", out, sizeof out), 0);
    j = parse(out);
    const ynode *t = ynode_get(j, "time");
    assert_non_null(t);
    assert_true(strtod(ynode_get(t, "step_s")->str, NULL) > 0);
    assert_true(strtod(ynode_get(t, "mfu")->str, NULL) > 0.1);
    /* the layer's GEMMs: 2 T (h (q + 2kv) + q h + h 2f + f h) FLOPs, Llama 3 8B, T = 4096 */
    const ynode *ops = ynode_get(t, "layer_ops");
    double gemm = 0;
    for (int i = 0; i < ops->n; i++)
        if (!strcmp(ynode_get(ops->items[i], "kind")->str, "gemm"))
            gemm += strtod(ynode_get(ops->items[i], "flops_fwd")->str, NULL);
    const double T = 4096, h = 4096, q = 4096, kv = 1024, ffn = 14336;
    assert_float_equal(gemm, 2 * T * (h * (q + 2 * kv) + q * h + h * 2 * ffn + ffn * h), 1.0);
    ynode_free(j);
}

/* Issue 9: programs edited into inconsistency get a located error, never a
 * crash (a fwd without its unit segfaulted) or a silent replay (a deleted
 * reduce-scatter was replayed as if nothing were missing). */
static void test_replay_broken_program(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-broken-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024], cmd[2048], prog[256];
    snprintf(prog, sizeof prog, "%s/q.json", dir);
    snprintf(args, sizeof args, "emit plans/tiny-1m-cpu.yaml --steps 1 -o %s", prog);
    assert_int_equal(run(args, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "sed -i '0,/\"unit\": \"embed\", \"src\"/s//\"src\"/' %s", prog);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "replay %s", prog);
    assert_int_equal(run(args, out, sizeof out), 1);
    tu_contains(out, "parasim replay: ", prog, "roles[0].ops[3].unit: missing field (expected a "
                "unit of this role, embed ... head)", NULL);
    /* ZeRO-2: layer.2's reduce-scatter deleted; its gradient buffer is freed unreduced */
    snprintf(args, sizeof args, "emit plans/tiny-1m-cpu.yaml --steps 1 -o %s", prog);
    assert_int_equal(run(args, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd, "sed -i '0,/\"unit\": \"layer.2\", \"coll\": \"reduce-scatter\"/{//d}' %s",
             prog);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "replay %s", prog);
    assert_int_equal(run(args, out, sizeof out), 1);
    tu_contains(out, "roles[0].ops[", "free unit_grads layer.2 (step 0): the gradient in "
                "unit_grads[layer.2] is not reduce-scattered into grads ([524800, 770816) missing) "
                "before it is freed", NULL);
    /* ZeRO-3: embed's gathered unit kept across the optimizer step and read
     * again without a new all-gather (step 0's last free, step 1's alloc and
     * all-gather of unit_params[embed] deleted): the weights it reads are stale */
    snprintf(args, sizeof args,
             "emit plans/tiny-1m-cpu.yaml --steps 2 --set parallel.zero=3 -o %s", prog);
    assert_int_equal(run(args, out, sizeof out), 0);
    snprintf(cmd, sizeof cmd,
             "awk '/\"op\": \"free\", \"step\": 0, \"buf\": \"unit_params\", \"unit\": "
             "\"embed\"/ {last = NR} {line[NR] = $0} END {for (i = 1; i <= NR; i++) {"
             "if (i == last) continue; if (!a && line[i] ~ /\"op\": \"alloc\", \"step\": 1, "
             "\"buf\": \"unit_params\", \"unit\": \"embed\"/) {a = 1; continue} "
             "if (!g && line[i] ~ /\"step\": 1, \"mb\": 0, \"unit\": \"embed\", \"coll\": "
             "\"all-gather\"/) {g = 1; continue} print line[i]}}' %s > %s.x && mv %s.x %s",
             prog, prog, prog, prog);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "replay %s", prog);
    assert_int_equal(run(args, out, sizeof out), 1);
    tu_contains(out, "fwd embed (step 1, mb 0): reads unit_params[embed] before an all-gather "
                "filled it", NULL);
    unlink(prog);
    rmdir(dir);
}

/* parasim emit and replay: a program to a file (atomically) and to standard
 * output, its replay as a table and as JSON, and bad input. */
static void test_emit_replay(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-emit-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024], prog[256];
    snprintf(prog, sizeof prog, "%s/p.json", dir);
    snprintf(args, sizeof args, "emit plans/tiny-1m-cpu.yaml --steps 2 -o %s", prog);
    assert_int_equal(run(args, out, sizeof out), 0);
    assert_string_equal(out, "");
    /* to standard output, with overrides */
    assert_int_equal(run("emit plans/tiny-1m-cpu.yaml --steps 1 --set parallel.zero=3 "
                         "--set train.lr=3.0e-4", out, sizeof out), 0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "version"), 1);
    assert_int_equal(json_int(j, "header.parallel.zero"), 3);
    assert_int_equal(json_int(j, "header.train.steps"), 1);
    assert_string_equal(ynode_get(ynode_get(ynode_get(j, "header"), "train"), "lr")->str, "0.00029999999999999997");
    const ynode *role = ynode_get(j, "roles")->items[0];
    assert_int_equal(json_int(role, "flat_elems"), 1049728);
    assert_int_equal(ynode_get(role, "units")->n, 6);
    ynode_free(j);
    /* the replay as a table */
    snprintf(args, sizeof args, "replay %s", prog);
    assert_int_equal(run(args, out, sizeof out), 0);
    tu_contains(out, "end of step 0", "optimizer", "alloc adam.v (step 0)",
                "dp reduce-scatter (bwd)", "dp all-gather (params)", "step 1", NULL);
    /* as JSON, with the whole timeline */
    snprintf(args, sizeof args, "replay %s --format json", prog);
    assert_int_equal(run(args, out, sizeof out), 0);
    j = parse(out);
    role = ynode_get(j, "roles")->items[0];
    assert_int_equal(json_int(role, "end_of_step0.params"), 1049728LL * 4);
    assert_int_equal(json_int(role, "end_of_step0.optimizer"), 524864LL * 4 * 2);
    assert_int_equal(ynode_get(role, "timeline")->n, 130);
    assert_int_equal(ynode_get(role, "steps")->n, 2);
    assert_int_equal(json_int(ynode_get(role, "steps")->items[0], "sent_bytes.dp"), 3 * 2099456LL);
    ynode_free(j);
    /* a program with a wrong field: the error names file:line:col and the field */
    FILE *f = fopen(prog, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = 0;
    fclose(f);
    char *at = strstr(out, "\"buf\": \"grads\"");
    assert_non_null(at);
    int line = 1;
    for (char *c = out; c < at; c++) line += *c == '\n';
    memcpy(at, "\"buf\": \"gradz\"", 14);
    f = fopen(prog, "w");
    fputs(out, f);
    fclose(f);
    snprintf(args, sizeof args, "replay %s", prog);
    assert_int_equal(run(args, out, sizeof out), 1);
    char where[300];
    snprintf(where, sizeof where, "%s:%d:", prog, line);
    tu_contains(out, "parasim replay: ", where, "roles[0].ops[1].buf", "found \"gradz\"", NULL);
    /* plans the execution plan cannot express yet, and usage errors */
    assert_int_equal(run("emit", out, sizeof out), 2);
    assert_int_equal(run("emit plans/tiny-1m-cpu.yaml --steps 0", out, sizeof out), 2);
    assert_int_equal(run("replay /nonexistent.json", out, sizeof out), 1);
    tu_contains(out, "/nonexistent.json", NULL);
    snprintf(args, sizeof args, "replay %s --format xml", prog);
    assert_int_equal(run(args, out, sizeof out), 2);
    unlink(prog);
    rmdir(dir);
}

/* Issue 9's reproducers end to end: no nonsense with exit 0, no huge
 * allocation, and each in well under a second. */
static void test_bounds(void **state) {
    (void)state;
    char dir[] = "/tmp/parasim-bounds-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char args[1024], path[256];
    /* sed 's/^hidden: 128/hidden: 2147483648/' models/tiny-1m.yaml > h.yaml */
    snprintf(path, sizeof path, "%s/h.yaml", dir);
    snprintf(args, sizeof args, "sed 's/^hidden: 128/hidden: 2147483648/' models/tiny-1m.yaml > %s",
             path);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "plan --model %s", path);
    assert_int_equal(run(args, out, sizeof out), 1);
    tu_contains(out, "h.yaml:", "hidden: expected an integer from 1 to 1048576",
                "found 2147483648", NULL);
    assert_null(strstr(out, "YFLOP"));
    unlink(path);
    rmdir(dir);
    /* infer: the command line holds batch and context, the product is checked */
    assert_int_equal(run("infer --batch 4294967296 --context 2147483648", out, sizeof out), 2);
    tu_contains(out, "--batch", "4294967296", NULL);
    assert_int_equal(run("infer --batch 16777216 --context 16777216", out, sizeof out), 1);
    tu_contains(out, "parasim infer: --batch, --context: KV cache too large", NULL);
    assert_null(strstr(out, "KV cache            0 B"));
    /* the event simulation past its op limit is skipped with a note */
    assert_int_equal(run("plan --set batch.global=16777216 --set parallel.pp=2 "
                         "--set parallel.dp=4",
                         out, sizeof out),
                     0);
    tu_contains(out, "event simulation of the 1f1b schedule: skipped, its 16777216 ops exceed the "
                     "limit of 4194304", NULL);
    assert_int_equal(run("plan --set batch.global=16777216 --set parallel.pp=2 "
                         "--set parallel.dp=4 --format json",
                         out, sizeof out),
                     0);
    ynode *j = parse(out);
    assert_int_equal(json_int(j, "time.event_simulation.ops"), 16777216);
    assert_int_equal(json_int(j, "time.event_simulation.max_ops"), 4194304);
    ynode_free(j);
    assert_int_equal(run("plan --set batch.global=2147483648", out, sizeof out), 1);
    tu_contains(out, "batch.global: expected an integer from 1 to 16777216", NULL);
    /* plot schedule checks the same op limit before allocating the Gantt's ops */
    assert_int_equal(run("plot schedule --set batch.global=16777216 --set parallel.pp=2 "
                         "--set parallel.dp=4 -o /tmp/parasim-bounds-never.png",
                         out, sizeof out),
                     1);
    tu_contains(out, "the schedule has 16777216 ops, more than the 4194304", NULL);
    assert_int_equal(access("/tmp/parasim-bounds-never.png", F_OK), -1);
    /* emit counts its ops before building them */
    assert_int_equal(run("emit plans/tiny-1m-cpu.yaml --set batch.global=16777216", out,
                         sizeof out),
                     1);
    tu_contains(out, "parasim emit: the execution plan would have 1887436894 ops per rank role",
                "more than the limit of 16777216", NULL);
}

/* `parasim plan` prints the attention kernel a plan picks, "flat" (the
 * cluster's flat efficiency) by default, in the table and the JSON, and a
 * named kernel changes the predicted step (docs/time.md §1). */
static void test_plan_attention_kernel(void **state) {
    (void)state;
    assert_int_equal(run("plan", out, sizeof out), 0);
    tu_contains(out, "activations bf16; attention kernel flat; grad accumulation fused", NULL);
    assert_int_equal(run("plan --format json", out, sizeof out), 0);
    tu_contains(out, "\"kernels\": {\n      \"attention\": \"flat\"", NULL);
    assert_int_equal(run("plan --set kernels.attention=fa2 --format json", out, sizeof out), 0);
    tu_contains(out, "\"kernels\": {\n      \"attention\": \"fa2\"", NULL);
    tu_contains(out, "\"grad_accumulation_fusion\": true", NULL);
    assert_int_equal(run("plan --set kernels.grad_accumulation_fusion=false", out, sizeof out), 0);
    tu_contains(out, "grad accumulation unfused; elementwise fused", NULL);
    assert_int_equal(run("plan --set kernels.elementwise=eager --format json", out, sizeof out), 0);
    tu_contains(out, "\"elementwise\": \"eager\"", NULL);
    assert_int_not_equal(run("plan --set kernels.attention=fa9", out, sizeof out), 0);
    tu_contains(out, "kernels.attention", "fa2, fa3, cudnn", "found 'fa9'", NULL);
}

/* `parasim plan` names the framework, its profile file and where its values
 * come from (table and JSON); the built-in plan without one prints neither,
 * and the profile is found by name from any directory (the source tree's
 * plans/frameworks, compiled in, as models/ are). */
static void test_plan_framework(void **state) {
    (void)state;
    assert_int_equal(run("plan", out, sizeof out), 0);
    assert_null(strstr(out, "framework"));
    assert_int_equal(run("plan --format json", out, sizeof out), 0);
    assert_null(strstr(out, "\"framework\""));
    /* the built-in plan writes bf16-mixed, which wins; emptied, the profile's applies */
    assert_int_equal(run("plan --set framework=megatron", out, sizeof out), 0);
    tu_contains(out, "precision  bf16-mixed", NULL);
    assert_int_equal(run("plan --set framework=megatron --set precision=", out, sizeof out), 0);
    tu_contains(out, "  framework  megatron (", "plans/frameworks/megatron.yaml): grad bucket none",
                "source NVIDIA/Megatron-LM @ d98e8a64ddf3", "precision  bf16-fp32grad", NULL);
    /* near peak, MFU (full attention square) passes 100% while HFU (what the causal
     * kernels execute) stays under it, and plan says why (docs/memory.md §7) */
    assert_int_equal(run("plan --cluster tests/fuzz/corpus/cluster/mfu-over-100-near-peak.yaml",
                         out, sizeof out), 0);
    tu_contains(out, "MFU 100.3%, HFU 95.0%", "MFU counts the full s x s attention square", NULL);
    assert_int_equal(run("plan", out, sizeof out), 0);
    assert_null(strstr(out, "MFU counts the full"));
    /* the profile's zero3: section is printed under ZeRO-3 only, with what the plan changes */
    assert_null(strstr(out, "  zero3 "));
    assert_int_equal(run("plan --set framework=fsdp2 --set parallel.zero=3 --set zero3.launch=8us",
                         out, sizeof out), 0);
    tu_contains(out, "  zero3      a gather per layer; prefetch 1; reshard after forward; copy-out on "
                "the compute stream; host 8 us per call + 0 us per rank", NULL);
    assert_int_equal(run("plan --set parallel.zero=3 --set zero3.unit=param --format json", out,
                         sizeof out), 0);
    tu_contains(out, "\"zero3\": {", "\"unit\": \"param\"", "\"copy_out\": false", NULL);
    char cmd[1200];
    char cwd[1024];
    assert_non_null(getcwd(cwd, sizeof cwd));
    if (parasim[0] == '/')
        snprintf(cmd, sizeof cmd, "cd /tmp && %s plan --set framework=fsdp2 --format json", parasim);
    else
        snprintf(cmd, sizeof cmd, "cd /tmp && %s/%s plan --set framework=fsdp2 --format json", cwd,
                 parasim);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    ynode *j = parse(out);
    const ynode *fw = ynode_get(ynode_get(j, "plan"), "framework");
    assert_non_null(fw);
    assert_string_equal(ynode_get(fw, "name")->str, "fsdp2");
    assert_string_equal(ynode_get(fw, "loss")->str, "chunked");
    assert_int_equal(json_int(j, "plan.framework.loss_chunks"), 8);
    assert_non_null(strstr(ynode_get(fw, "source")->str, "pytorch/torchtitan @ b5bcd76c66d0"));
    assert_int_equal(json_int(j, "plan.parallel.zero"), 1); /* the plan's own zero: 1 wins */
    ynode_free(j);
}

/* DualPipe end to end (docs/schedule.md "DualPipe"): plan shows it (two chunks per rank, pp + 1
 * in flight, the twin-gradient all-reduce, the simulated schedule), emit refuses it at the
 * field with exit status 1, and a sweep that lists it ranks it. */
static void test_dualpipe(void **state) {
    (void)state;
    assert_int_equal(run("plan plans/llama3-8b-pp4.yaml --set pipeline.schedule=dualpipe", out,
                         sizeof out),
                     0);
    tu_contains(out, "schedule   dualpipe", "(16 layers; 5 model-chunk micro-batches in flight)",
                "DualPipe twin-stage gradients", "event simulation of the dualpipe schedule",
                "dualpipe: each rank holds stage s and stage pp-1-s, two chunks of 8 layers",
                NULL);
    assert_int_equal(run("plan plans/llama3-8b-pp4.yaml --format json "
                         "--set pipeline.schedule=dualpipe", out, sizeof out),
                     0);
    ynode *j = parse(out);
    assert_int_equal(ynode_get(ynode_get(j, "memory"), "stages")->n, 4);
    ynode_free(j);
    assert_int_equal(run("plan plans/llama3-8b-pp4.yaml --set pipeline.schedule=dualpipe "
                         "--set batch.global=6", out, sizeof out),
                     1);
    tu_contains(out, "batch.global", "= 6, to be even and at least 2*pp = 8", NULL);
    assert_int_equal(run("emit plans/tiny-1m-cpu.yaml --set parallel.dp=1 --set parallel.pp=2 "
                         "--set batch.global=4 --set batch.micro=1 --set pipeline.schedule=dualpipe",
                         out, sizeof out),
                     1);
    tu_contains(out, "pipeline.schedule", "found dualpipe", "only the cost model", NULL);
}


/* Logit distillation: plan shows the teacher's memory, FLOPs and (separate)
 * transfer, in the table and the JSON (docs/output.md); emit and run refuse
 * the plan without the teacher's checkpoint, never dropping the teacher
 * silently, and emit one with it (202,951,680 B: 50,737,920 f32 weights). */
static void test_plan_distill(void **state) {
    (void)state;
    static char out[1 << 16];
    assert_int_equal(run("plan plans/tiny-distill.yaml", out, sizeof out), 0);
    tu_contains(out, "teacher (distill)", "teacher weights", "193.55 MiB", "teacher forward",
                "34.00 MiB", "KD saved tensors", "2.00 MiB", "Distillation: teacher tiny-50m",
                "in HFU, not in MFU", NULL);
    assert_int_equal(run("plan plans/tiny-distill.yaml --format json", out, sizeof out), 0);
    ynode *root = parse(out);
    assert_int_equal(json_int(root, "memory.breakdown.teacher_weights"), 50737920LL * 4);
    assert_int_equal(json_int(root, "memory.breakdown.teacher_forward"), 35651584);
    assert_int_equal(json_int(root, "memory.breakdown.kd_saved"), 2097152);
    assert_int_equal(json_int(root, "distill.kd_saved_per_micro_batch"), 2097152);
    assert_int_equal(json_int(root, "distill.teacher_tp"), 1);
    ynode_free(root);
    assert_int_equal(run("plan plans/tiny-distill.yaml --format json --set distill.placement=separate "
                         "--set distill.gpus=4 --set distill.top_k=8",
                         out, sizeof out),
                     0);
    root = parse(out);
    assert_int_equal(json_int(root, "distill.teacher_gpus"), 4);
    assert_int_equal(json_int(root, "distill.transfer_bytes_per_step"), 4096 * 8 * 8);
    assert_int_equal(json_int(root, "distill.top_k_saving_per_micro_batch"), 983040);
    assert_int_equal(json_int(root, "memory.breakdown.teacher_weights"), 0);
    assert_int_equal(json_int(root, "distill.teacher_gpu_memory.weights"), 12694272LL * 4);
    ynode_free(root);
    /* a plan without distill: has no distill object */
    assert_int_equal(run("plan plans/tiny-1m-cpu.yaml --format json", out, sizeof out), 0);
    assert_null(strstr(out, "\"distill\""));
    /* emit and run need the teacher's checkpoint (the runtime trains with it), naming
     * the section; with one, the program's header carries the teacher */
    assert_int_equal(run("emit plans/tiny-distill.yaml --steps 1", out, sizeof out), 1);
    tu_contains(out, "plans/tiny-distill.yaml:17:3:", "distill.checkpoint: missing field",
                "parasim run --save-weights", NULL);
    assert_int_equal(run("run plans/tiny-distill.yaml", out, sizeof out), 1);
    tu_contains(out, "distill.checkpoint: missing field", NULL);
    assert_int_equal(run("emit plans/tiny-distill.yaml --steps 1 --set distill.checkpoint=t.ckpt",
                         out, sizeof out), 0);
    tu_contains(out, "\"distill\": {", "\"name\": \"tiny-50m\"", "\"checkpoint\": \"t.ckpt\"",
                "\"teacher_bytes\": 202951680", "\"cat\": \"teacher\"", NULL);
    /* the sweep example runs and ranks distillation plans */
    assert_int_equal(run("sweep plans/sweeps/tiny-distill-8cpu.yaml --top 3", out, sizeof out), 0);
    tu_contains(out, "teacher tiny-50m", "distill_placement {shared,separate}", "top-k", NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_cli PATH-TO-PARASIM\n");
        return 1;
    }
    parasim = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_broken_program), cmocka_unit_test(test_plan_framework),
        cmocka_unit_test(test_plan_distill),
        cmocka_unit_test(test_dualpipe),
        cmocka_unit_test(test_plan_attention_kernel),
        cmocka_unit_test(test_default_plan_json), cmocka_unit_test(test_table_and_overrides),
        cmocka_unit_test(test_plan_moe_params),
        cmocka_unit_test(test_plan_moe_layout),
        cmocka_unit_test(test_errors_and_exit_codes), cmocka_unit_test(test_output_file_is_atomic),
        cmocka_unit_test(test_infer), cmocka_unit_test(test_infer_moe_tp),
        cmocka_unit_test(test_infer_runtime_schemes), cmocka_unit_test(test_infer_bad_options),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_emit_replay), cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_output_refuses_special_files),
        cmocka_unit_test(test_long_spec_path),
        cmocka_unit_test(test_sweep_same_output_twice), cmocka_unit_test(test_sweep_interrupted),
        cmocka_unit_test(test_output_is_not_the_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
