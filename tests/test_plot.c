/* test_plot.c — `parasim plot`: the Pareto front against a hand-worked set and
 * against its definition, the scatter thinning's bounds, the sweep CSV reader
 * and its errors, strategy families and the sweep legend, the Gantt table and
 * the README's plan, and (when gnuplot is installed) the command end to end:
 * PNG and SVG files, atomic replacement, no temporaries left; the charts of a
 * run profile: its reader and errors, the memory, peak and schedule series of a
 * small known profile, and the commands. argv[1] is the
 * parasim binary; the working directory is the source tree. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report/plot.h"
#include "report/plot_measured.h"
#include "report/plot_memory.h"
#include "report/plot_peaks.h"
#include "report/plot_profile.h"
#include "time/pipe_sched.h"
#include "time/step_sim.h"
#include "sweep/sweep_rank.h"
#include "tu.h"

static const char *parasim;

/* ---- Pareto front ---- */

static void test_pareto_hand_made(void **state) {
    (void)state;
    /* x = GiB, y = tokens/s */
    const plot_pt pts[] = {
        {10, 100, 0}, /* 0: front */
        {20, 150, 0}, /* 1: front */
        {15, 90, 1},  /* 2: dominated by 0 (less memory, more throughput) */
        {20, 140, 1}, /* 3: dominated by 1 (same memory, more throughput) */
        {30, 150, 2}, /* 4: dominated by 1 (less memory, same throughput) */
        {5, 50, 2},   /* 5: front: the least memory */
        {40, 300, 0}, /* 6: front: the most throughput */
        {10, 100, 1}, /* 7: duplicate of 0: the first is kept */
        {25, 200, 1}, /* 8: front */
    };
    int64_t idx[9];
    int64_t n = plot_pareto(pts, 9, idx);
    assert_int_equal(n, 5);
    const int64_t want[] = {5, 0, 1, 8, 6}; /* increasing memory */
    for (int i = 0; i < 5; i++)
        assert_int_equal(idx[i], want[i]);

    /* the streamed front holds the same points, in the same order */
    plot_front f = {0};
    int joined[9];
    for (int i = 0; i < 9; i++)
        joined[i] = plot_front_add(&f, pts[i]);
    assert_int_equal(f.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_true(f.pt[i].x == pts[want[i]].x && f.pt[i].y == pts[want[i]].y);
        assert_int_equal(f.pt[i].group, pts[want[i]].group);
    }
    /* 2 was dominated on arrival; 7 duplicated 0; 4 was dominated by 1 */
    assert_int_equal(joined[2], 0);
    assert_int_equal(joined[4], 0);
    assert_int_equal(joined[7], 0);
    assert_int_equal(joined[8], 1);
    assert_true(plot_front_has(&f, pts[0]));
    assert_false(plot_front_has(&f, pts[7])); /* same place, other group */
    assert_false(plot_front_has(&f, pts[3]));
    plot_front_free(&f);
    assert_int_equal(plot_pareto(pts, 0, idx), 0);
}

/* The definition, O(n^2): i is kept unless some j is at least as good in both and strictly
 * better in one, or equal in both with j < i. */
static int dominated(const plot_pt *p, int64_t n, int64_t i) {
    for (int64_t j = 0; j < n; j++) {
        if (j == i || p[j].x > p[i].x || p[j].y < p[i].y) continue;
        if (p[j].x < p[i].x || p[j].y > p[i].y || j < i) return 1;
    }
    return 0;
}

static void test_pareto_matches_definition(void **state) {
    (void)state;
    enum { N = 3000 };
    plot_pt *p = malloc(N * sizeof *p);
    int64_t *idx = malloc(N * sizeof *idx);
    assert_non_null(p);
    assert_non_null(idx);
    srand(7);
    /* a coarse integer grid, so ties in memory, throughput and both are common */
    for (int i = 0; i < N; i++)
        p[i] = (plot_pt){rand() % 60, rand() % 50 + (rand() % 60) * 0.5, rand() % 4};
    int64_t n = plot_pareto(p, N, idx);
    int64_t expect = 0;
    for (int64_t i = 0; i < N; i++)
        expect += !dominated(p, N, i);
    assert_int_equal(n, expect);
    plot_front f = {0};
    for (int i = 0; i < N; i++)
        assert_true(plot_front_add(&f, p[i]) >= 0);
    assert_int_equal(f.n, n);
    for (int64_t k = 0; k < n; k++) {
        assert_false(dominated(p, N, idx[k]));
        if (k) assert_true(p[idx[k]].x > p[idx[k - 1]].x && p[idx[k]].y > p[idx[k - 1]].y);
        assert_true(f.pt[k].x == p[idx[k]].x && f.pt[k].y == p[idx[k]].y);
        assert_int_equal(f.pt[k].group, p[idx[k]].group); /* the first of equal points */
    }
    plot_front_free(&f);
    free(p);
    free(idx);
}

/* ---- thinning ---- */

static void test_thinning_bounds_and_keeps_front(void **state) {
    (void)state;
    enum { N = 50000, NX = 10, NY = 8, G = 3 };
    plot_pt *p = malloc(N * sizeof *p);
    assert_non_null(p);
    srand(11);
    for (int i = 0; i < N; i++) {
        double x = 100.0 * rand() / RAND_MAX;
        p[i] = (plot_pt){x, 1000 * sqrt(x) * rand() / RAND_MAX, rand() % G};
    }
    plot_front f = {0};
    for (int i = 0; i < N; i++)
        assert_true(plot_front_add(&f, p[i]) >= 0);
    assert_true(f.n >= 5);
    plot_thin t;
    assert_int_equal(plot_thin_init(&t, 0, 100, 0, 10000, NX, NY, G), 0);
    int64_t kept = 0, per_cell_hits = 0;
    for (int i = 0; i < N; i++) {
        if (plot_front_has(&f, p[i])) continue;
        int k = plot_thin_add(&t, p[i]);
        kept += k;
        per_cell_hits += !k;
    }
    /* at most one point per (group, cell): 3 * 10 * 8 */
    assert_true(kept <= G * NX * NY);
    assert_true(kept >= NX); /* the points spread over many cells */
    assert_true(per_cell_hits > 0);
    /* a point in an occupied cell is refused; outside the box it is clamped */
    plot_thin_free(&t);
    assert_int_equal(plot_thin_init(&t, 0, 100, 0, 10000, NX, NY, G), 0);
    assert_int_equal(plot_thin_add(&t, (plot_pt){99.9, 9999, 0}), 1);
    assert_int_equal(plot_thin_add(&t, (plot_pt){1e9, 1e9, 0}), 0); /* clamped: same cell */
    assert_int_equal(plot_thin_add(&t, (plot_pt){1e9, 1e9, 1}), 1); /* another group */
    assert_int_equal(plot_thin_add(&t, (plot_pt){-5, -5, 0}), 1);   /* the first cell */
    assert_int_equal(plot_thin_add(&t, (plot_pt){5, 600, 0}), 0);   /* 0.5 cell, 0.48 cell */
    plot_thin_free(&t);
    plot_front_free(&f);
    free(p);
}

/* Write text to a fresh file under dir; returns the path (static). */
static const char *write_temp(const char *dir, const char *name, const char *text) {
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static char tmp_dir[64];

static void make_tmp_dir(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/parasim-test-plot-XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
}

static void remove_tmp_dir(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    assert_int_equal(system(cmd), 0);
}

static void test_sweep_load_thins_and_keeps_front(void **state) {
    (void)state;
    make_tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/big.csv", tmp_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("dp,strategy,status,peak_gib,headroom_gib,tokens_per_s\n", f);
    srand(5);
    const char *strat[] = {"dp", "tp+dp", "pp+dp zero-1", "tp+pp"};
    enum { N = 40000 };
    plot_pt *all = malloc(N * sizeof *all);
    int64_t *idx = malloc(N * sizeof *idx);
    int64_t n_fit = 0;
    for (int i = 0; i < N; i++) {
        int g = rand() % 4;
        double mem = (rand() % 80000) / 1000.0, tps = (rand() % 1000000) / 10.0;
        int fits = mem <= 70;
        if (rand() % 10 == 0) {
            fprintf(f, "8,%s,degrees-product,,,\n", strat[g]);
            continue;
        }
        fprintf(f, "8,%s,%s,%.3f,%.3f,%.1f\n", strat[g], fits ? "ok" : "no-fit", mem, 80.0 - mem,
                tps);
        if (fits) all[n_fit++] = (plot_pt){mem, tps, plot_strategy_group(strat[g])};
    }
    fclose(f);
    plot_sweep s;
    ps_err err = {{0}};
    plot_sweep_opts o = {.show_nofit = 1, .nx = 20, .ny = 10};
    if (plot_sweep_load(path, &o, &s, &err)) fail_msg("%s", err.msg);
    /* the four labels fall in four groups: DP, TP, PP with ZeRO-1, TP+PP */
    const int want_group[4] = {PLOT_FAMILY_DP * PLOT_ZERO_STAGES, PLOT_FAMILY_TP * PLOT_ZERO_STAGES,
                               PLOT_FAMILY_PP * PLOT_ZERO_STAGES + 1,
                               PLOT_FAMILY_TP_PP * PLOT_ZERO_STAGES};
    int64_t in_groups = 0;
    for (int g = 0; g < PLOT_GROUPS; g++) {
        int wanted = 0;
        for (int k = 0; k < 4; k++) wanted |= g == want_group[k];
        assert_true(wanted ? s.group_fit[g] > 0 : s.group_fit[g] == 0);
        in_groups += s.group_fit[g];
    }
    assert_int_equal(in_groups, n_fit);
    assert_int_equal(s.rows_fit, n_fit);
    assert_true(s.rows_skipped > 0);
    assert_true(fabs(s.capacity_gib - 80) < 1e-9);
    /* the front of every fitting row, whatever the thinning */
    int64_t nf = plot_pareto(all, n_fit, idx);
    assert_int_equal(s.front.n, nf);
    for (int64_t k = 0; k < nf; k++) {
        assert_true(s.front.pt[k].x == all[idx[k]].x && s.front.pt[k].y == all[idx[k]].y);
        int found = 0;
        for (int64_t i = 0; i < s.n_fit && !found; i++)
            found = s.fit[i].x == all[idx[k]].x && s.fit[i].y == all[idx[k]].y;
        assert_true(found);
    }
    assert_true(s.n_fit <= 4 * 20 * 10 + nf);
    assert_true(s.n_fit < n_fit / 10);
    assert_true(s.n_nofit > 0 && s.n_nofit <= 20 * 10);
    for (int64_t i = 0; i < s.n_nofit; i++)
        assert_true(s.nofit[i].x > 70);
    /* without the no-fit points */
    plot_sweep_free(&s);
    o.show_nofit = 0;
    if (plot_sweep_load(path, &o, &s, &err)) fail_msg("%s", err.msg);
    assert_int_equal(s.n_nofit, 0);
    assert_true(s.x_max <= 70);
    /* the data file: one block per series, front first */
    FILE *d = tmpfile();
    assert_int_equal(plot_sweep_write_data(d, &s), 0);
    rewind(d);
    char line[256];
    int64_t points = 0, blanks = 0;
    while (fgets(line, sizeof line, d)) {
        if (line[0] == '\n')
            blanks++;
        else if (line[0] != '#')
            points++;
    }
    fclose(d);
    assert_int_equal(points, s.front.n + s.n_fit);
    assert_int_equal(blanks, 2 * 4); /* front + 4 strategies = 5 blocks */
    plot_sweep_free(&s);
    free(all);
    free(idx);
    remove_tmp_dir();
}

/* ---- the CSV reader ---- */

/* Every label `parasim sweep` writes (sweep_strategy) falls in the family of the degrees
 * above 1 and the ZeRO stage it names; anything else is "other". */
static void test_strategy_groups(void **state) {
    (void)state;
    plan_cfg p;
    plan_cfg_defaults(&p);
    int families_seen[PLOT_FAMILIES] = {0};
    for (int mask = 0; mask < 16; mask++)
        for (int zero = 0; zero < 4; zero++) {
            p.dp = mask & 1 ? 2 : 1, p.tp = mask & 2 ? 2 : 1, p.pp = mask & 4 ? 2 : 1;
            p.cp = mask & 8 ? 2 : 1, p.zero = zero;
            char label[64];
            sweep_strategy(&p, label, sizeof label);
            int g = plot_strategy_group(label);
            int family = p.cp > 1    ? (p.tp > 1 || p.pp > 1 ? PLOT_FAMILY_CP_MP : PLOT_FAMILY_CP)
                         : p.tp > 1 ? (p.pp > 1 ? PLOT_FAMILY_TP_PP : PLOT_FAMILY_TP)
                         : p.pp > 1 ? PLOT_FAMILY_PP
                                    : PLOT_FAMILY_DP;
            int shown_zero = p.dp * p.cp > 1 ? zero : 0; /* nothing to shard: no ZeRO */
            if (g != family * PLOT_ZERO_STAGES + shown_zero)
                fail_msg("\"%s\": group %d, expected family %d ZeRO %d", label, g, family,
                         shown_zero);
            families_seen[family] = 1;
        }
    for (int k = 0; k < PLOT_FAMILY_OTHER; k++) assert_true(families_seen[k]);
    const char *other[] = {"", "(none)", "ep+dp", "tp+tp", "dp zero-4", "dp zero-1x", "tp+",
                           "dp  zero-1", "singles", "TP"};
    for (size_t k = 0; k < sizeof other / sizeof other[0]; k++)
        assert_int_equal(plot_strategy_group(other[k]), PLOT_FAMILY_OTHER * PLOT_ZERO_STAGES);
    assert_int_equal(plot_strategy_group("single"), PLOT_FAMILY_DP * PLOT_ZERO_STAGES);
    assert_int_equal(plot_strategy_group("cp+pp zero-3"), PLOT_FAMILY_CP_MP * PLOT_ZERO_STAGES + 3);
}

/* The sweep chart's legend: one swatch per family present and one shape per ZeRO stage
 * present, whatever the number of strategy labels; the points themselves untitled. */
static void test_sweep_legend(void **state) {
    (void)state;
    make_tmp_dir();
    char path[256];
    snprintf(path, sizeof path, "%s/legend.csv", tmp_dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("strategy,status,peak_gib,headroom_gib,tokens_per_s\n", f);
    /* 12 labels in 3 families, ZeRO 0, 1 and 3 */
    const char *labels[] = {"tp+dp", "tp+dp zero-1", "tp", "tp+dp zero-3", "tp+pp+dp",
                            "tp+pp", "tp+pp+dp zero-1", "tp+pp+dp zero-3", "cp+dp zero-1",
                            "cp+dp", "cp", "cp+dp zero-3"};
    for (int i = 0; i < 12; i++) fprintf(f, "%s,ok,%d,%d,%d\n", labels[i], 10 + i, 70 - i, 100 + i);
    fclose(f);
    plot_sweep s;
    ps_err err = {{0}};
    plot_sweep_opts o = {.show_nofit = 1};
    if (plot_sweep_load(path, &o, &s, &err)) fail_msg("%s", err.msg);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    plot_outputs out = {"/tmp/x.png", NULL};
    assert_int_equal(plot_sweep_script(m, &s, "/tmp/x/data.txt", "legend.csv", &out), 0);
    fclose(m);
    tu_contains(text, "title \"TP (+DP)\"", "title \"TP+PP (+DP)\"", "title \"CP (+DP)\"",
                "pt 7 ps 1 lc rgb \"#505050\" title \"ZeRO-0",
                "pt 5 ps 1 lc rgb \"#505050\" title \"ZeRO-1\"",
                "pt 13 ps 1 lc rgb \"#505050\" title \"ZeRO-3\"", "title \"Pareto front", NULL);
    assert_null(strstr(text, "title \"ZeRO-2\""));
    assert_null(strstr(text, "title \"DP only\""));
    assert_null(strstr(text, "title \"tp")); /* no label of its own */
    int titles = 0;
    for (const char *t = strstr(text, "\nplot "); t && (t = strstr(t, " title \"")); t++) titles++;
    /* 3 families + 3 stages + 2 headings + 2 spacers + front; no no-fit rows */
    assert_int_equal(titles, 3 + 3 + 2 + 2 + 1);
    free(text);
    plot_sweep_free(&s);
    remove_tmp_dir();
}

static void test_csv_reader(void **state) {
    (void)state;
    make_tmp_dir();
    /* columns found by name, in another order, with extra ones and a quoted field */
    const char *p = write_temp(tmp_dir, "ok.csv",
                               "tokens_per_s,extra,strategy,status,peak_gib\r\n"
                               "1234.5,x,\"tp+dp, \"\"odd\"\"\",ok,12.25\r\n"
                               "# a comment\n"
                               "\n"
                               ",y,pp,batch-division,\n"
                               "99,z,dp zero-1,no-fit,90.5\n"
                               ",z,dp,ok,\n");
    plot_csv c;
    plot_csv_row r;
    ps_err err = {{0}};
    if (plot_csv_open(&c, p, &err)) fail_msg("%s", err.msg);
    assert_int_equal(c.col_tps, 0);
    assert_int_equal(c.col_peak, 4);
    assert_int_equal(c.col_headroom, -1);
    assert_int_equal(plot_csv_next(&c, &r, &err), 1);
    assert_true(r.peak_gib == 12.25 && r.tokens_per_s == 1234.5 && r.fits);
    assert_string_equal(r.strategy, "tp+dp, \"odd\"");
    assert_true(isnan(r.capacity_gib));
    assert_int_equal(plot_csv_next(&c, &r, &err), 1);
    assert_int_equal(c.line, 6);
    assert_true(r.peak_gib == 90.5 && r.tokens_per_s == 99 && !r.fits);
    assert_string_equal(r.strategy, "dp zero-1");
    assert_int_equal(plot_csv_next(&c, &r, &err), 0);
    assert_int_equal(c.rows, 4);
    assert_int_equal(c.skipped, 2); /* the invalid plan and the empty numbers */
    plot_csv_close(&c);

    /* a missing column: file, line 1, its name */
    p = write_temp(tmp_dir, "nocol.csv", "dp,strategy,status,peak_gib\n8,dp,ok,1\n");
    assert_int_equal(plot_csv_open(&c, p, &err), -1);
    tu_contains(err.msg, "nocol.csv:1", "missing column", "tokens_per_s", NULL);
    assert_null(c.f);

    /* a bad number: file:line and the column */
    p = write_temp(tmp_dir, "bad.csv",
                   "strategy,status,peak_gib,headroom_gib,tokens_per_s\n"
                   "dp,ok,1.5,78.5,100\n"
                   "dp,ok,2.0x,78,100\n");
    if (plot_csv_open(&c, p, &err)) fail_msg("%s", err.msg);
    assert_int_equal(plot_csv_next(&c, &r, &err), 1);
    assert_true(r.capacity_gib == 80);
    assert_int_equal(plot_csv_next(&c, &r, &err), -1);
    tu_contains(err.msg, "bad.csv:3", "column peak_gib", "expected a number", "\"2.0x\"", NULL);
    plot_csv_close(&c);

    /* a FIFO blocks and /dev/zero never ends: refused before a byte is read, at once */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo.csv", tmp_dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(plot_csv_open(&c, fifo, &err), -1);
    tu_contains(err.msg, "fifo.csv: expected the CSV file `parasim sweep --all` writes, found a FIFO",
                NULL);
    assert_int_equal(plot_csv_open(&c, "/dev/zero", &err), -1);
    tu_contains(err.msg, "/dev/zero: expected the CSV file", "found a character device", NULL);
    assert_int_equal(plot_csv_open(&c, tmp_dir, &err), -1);
    tu_contains(err.msg, "found a directory", NULL);
    unlink(fifo);

    p = write_temp(tmp_dir, "short.csv", "strategy,status,peak_gib,tokens_per_s\ndp,ok\n");
    if (plot_csv_open(&c, p, &err)) fail_msg("%s", err.msg);
    assert_int_equal(plot_csv_next(&c, &r, &err), -1);
    tu_contains(err.msg, "short.csv:2", "expected 4", "found 2", NULL);
    plot_csv_close(&c);

    p = write_temp(tmp_dir, "empty.csv", "");
    assert_int_equal(plot_csv_open(&c, p, &err), -1);
    tu_contains(err.msg, "empty.csv:1", "header", NULL);
    assert_int_equal(plot_csv_open(&c, "no/such/file.csv", &err), -1);
    tu_contains(err.msg, "no/such/file.csv", "cannot open", NULL);

    /* a sweep with nothing to draw */
    plot_sweep s;
    plot_sweep_opts o = {.show_nofit = 0};
    p = write_temp(tmp_dir, "none.csv",
                   "strategy,status,peak_gib,tokens_per_s\n"
                   "dp,no-fit,100,5\n");
    assert_int_equal(plot_sweep_load(p, &o, &s, &err), -1);
    tu_contains(err.msg, "none.csv", "no fitting plans", NULL);
    remove_tmp_dir();
}

/* ---- the Gantt table and script ---- */

static void check_gantt(plan_schedule kind, int64_t p, int64_t m, int64_t v, double unit_step) {
    double t_f[8], t_b[8], t_w[8];
    for (int s = 0; s < 8; s++)
        t_f[s] = 1 * unit_step, t_b[s] = 2 * unit_step, t_w[s] = unit_step;
    sched_in in = {kind, p, m, v, t_f, t_b, t_w, 0, NULL, NULL, 0};
    int64_t n = sched_ops_per_stage(&in);
    sched_op *ops = calloc((size_t)(p * n), sizeof *ops);
    sched_out so;
    assert_int_equal(sched_simulate(&in, ops, &so), 0);
    plot_gantt g = {.in = &in,
                    .ops = ops,
                    .pipeline_s = so.step_time,
                    .step_s = so.step_time * 1.1,
                    .bubble_fraction = so.bubble_fraction,
                    .plan_name = "test \"plan\"",
                    .fits = 1};
    plot_gantt_layout(&g);
    assert_true(g.unit == (g.step_s < 1 ? 1e3 : 1));
    FILE *f = tmpfile();
    assert_int_equal(plot_gantt_write_data(f, &g), 0);
    rewind(f);
    char line[256];
    int64_t lines = 0, per_stage[8] = {0}, kinds[3] = {0}, labelled = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        long long st, mb;
        int k, chunk, label;
        double a, b;
        assert_int_equal(
            sscanf(line, "%lld %d %d %lld %lf %lf %d", &st, &k, &chunk, &mb, &a, &b, &label), 7);
        assert_true(st >= 0 && st < p);
        assert_true(k >= 0 && k < 3);
        assert_true(chunk >= 0 && chunk < v);
        assert_true(mb >= 0 && mb < m);
        assert_true(a >= 0 && a < b);
        assert_true(b <= so.step_time * g.unit * (1 + 1e-9));
        per_stage[st]++, kinds[k]++, lines++, labelled += label;
    }
    fclose(f);
    assert_int_equal(lines, p * n);
    for (int64_t s = 0; s < p; s++)
        assert_int_equal(per_stage[s], n);
    assert_int_equal(kinds[0], m * v * p);
    assert_int_equal(kinds[1], m * v * p);
    assert_int_equal(kinds[2], kind == SCHED_ZERO_BUBBLE ? m * p : 0);
    assert_int_equal(labelled, g.labels ? p * n : 0); /* every box of these is wide enough */

    /* the script: both terminals, the outputs quoted, one idle object per stage */
    static char text[1 << 16];
    f = tmpfile();
    plot_outputs out = {"/tmp/a b.png", "/tmp/c\"d.svg"};
    assert_int_equal(plot_gantt_script(f, &g, "/tmp/x/data.txt", &out), 0);
    rewind(f);
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    tu_contains(text, "pngcairo", "set terminal svg", "set output \"/tmp/a b.png\"",
                "set output \"/tmp/c\\\"d.svg\"", "\"/tmp/x/data.txt\"", "boxxyerror",
                "test \\\"plan\\\"", "forward (F)", "backward (B)", NULL);
    char obj[64];
    snprintf(obj, sizeof obj, "set object %lld rectangle", (long long)p);
    tu_contains(text, obj, g.unit == 1 ? "time (s)" : "time (ms)", NULL);
    if (kind == SCHED_ZERO_BUBBLE) tu_contains(text, "weight gradient (W)", NULL);
    free(ops);
}

static void test_gantt_data(void **state) {
    (void)state;
    check_gantt(SCHED_1F1B, 4, 8, 1, 0.01);
    check_gantt(SCHED_AFAB, 4, 8, 1, 1.0);
    check_gantt(SCHED_INTERLEAVED, 4, 8, 2, 0.01);
    check_gantt(SCHED_ZERO_BUBBLE, 4, 8, 1, 0.01);
    check_gantt(SCHED_1F1B, 1, 8, 1, 0.01);
    /* bad input */
    double t[1] = {1};
    sched_in in = {SCHED_1F1B, 1, 0, 1, t, t, t, 0, NULL, NULL, 0};
    plot_gantt g = {.in = &in, .ops = NULL, .step_s = 1, .unit = 1};
    FILE *f = tmpfile();
    assert_int_equal(plot_gantt_write_data(f, &g), -1);
    fclose(f);
}

/* The README draws plans/llama3-8b-pp4.yaml: a real pipeline (4 stages, 8 micro-batches),
 * fitting in memory, every box labelled with its micro-batch. */
static void test_readme_schedule_plan(void **state) {
    (void)state;
    plan_spec *spec = calloc(1, sizeof *spec);
    eval_stage *stages = calloc(PLAN_MAX_STAGES, sizeof *stages);
    step_sim_input *input = calloc(1, sizeof *input);
    ps_err err = {{0}};
    assert_true(spec && stages && input);
    if (plan_load("plans/llama3-8b-pp4.yaml", NULL, 0, spec, &err)) fail_msg("%s", err.msg);
    eval_result r;
    eval_plan(&spec->model.cfg, &spec->cluster.cfg, &spec->cfg, &r, stages);
    assert_true(r.fits);
    step_sim_prepare(&spec->cfg, stages, input);
    assert_int_equal(input->in.p, 4);
    assert_int_equal(input->in.m, 8);
    int64_t n = sched_ops_per_stage(&input->in);
    sched_op *ops = calloc((size_t)(4 * n), sizeof *ops);
    step_sim sim;
    assert_int_equal(step_sim_run(&spec->cfg, stages, &r.time, ops, input, &sim), 0);
    assert_true(sim.bubble_fraction > 0.1); /* fill and drain show */
    plot_gantt g = {.in = &input->in, .ops = ops, .pipeline_s = sim.pipeline, .step_s = sim.step,
                    .bubble_fraction = sim.bubble_fraction, .fits = r.fits};
    plot_gantt_layout(&g);
    assert_true(g.labels);
    FILE *f = tmpfile();
    assert_int_equal(plot_gantt_write_data(f, &g), 0);
    rewind(f);
    char line[256];
    int64_t boxes = 0, labelled = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        boxes++;
        labelled += line[strlen(line) - 2] == '1';
    }
    fclose(f);
    assert_int_equal(boxes, 4 * n);
    assert_int_equal(labelled, boxes);
    free(ops);
    free(input);
    free(stages);
    free(spec);
}

static void test_put_string(void **state) {
    (void)state;
    FILE *f = tmpfile();
    plot_put_string(f, "a\"b\\c\nd@");
    rewind(f);
    char buf[64] = {0};
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c d@\"");
}

/* ---- the command end to end ---- */

static char out[1 << 16];

/* Run "ENV parasim ARGS" through the shell, capture stdout+stderr; returns the exit status. */
static int run_env(const char *env, const char *args) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %s %s 2>&1", env, parasim, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int run(const char *args) {
    return run_env("", args);
}

static int have_gnuplot(void) {
    return system("gnuplot --version >/dev/null 2>&1") == 0;
}

static void assert_png(const char *path) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char head[8] = {0};
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("%s was not written", path);
    assert_int_equal(fread(head, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(head, sig, 8);
}

static void assert_svg(const char *path) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("%s was not written", path);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    assert_non_null(strstr(buf, "<svg"));
}

static void test_cli_schedule(void **state) {
    (void)state;
    if (!have_gnuplot()) {
        print_message("gnuplot is not installed (Debian: gnuplot-nox): skipping\n");
        skip();
    }
    make_tmp_dir();
    char args[1024], path[512];
    /* the default plan, pipelined: both formats from one -o */
    snprintf(args, sizeof args,
             "plot schedule --set parallel.pp=4 --set parallel.dp=2 --format both -o %s/s.png",
             tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    tu_contains(out, "parasim plot: wrote ", "/s.png\n", "/s.svg\n", NULL);
    snprintf(path, sizeof path, "%s/s.png", tmp_dir);
    assert_png(path);
    snprintf(path, sizeof path, "%s/s.svg", tmp_dir);
    assert_svg(path);
    assert_string_equal(tu_dir_list(tmp_dir), "s.png\ns.svg\n");
    /* the README's command */
    snprintf(args, sizeof args, "plot schedule plans/llama3-8b-pp4.yaml -o %s/readme.png",
             tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    snprintf(path, sizeof path, "%s/readme.png", tmp_dir);
    assert_png(path);
    /* the tiny CPU plan (pp = 1), svg from the name; interleaved and zero-bubble */
    snprintf(args, sizeof args, "plot schedule plans/tiny-1m-cpu.yaml -o %s/tiny.svg", tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    snprintf(path, sizeof path, "%s/tiny.svg", tmp_dir);
    assert_svg(path);
    snprintf(args, sizeof args,
             "plot schedule --set parallel.pp=4 --set parallel.dp=2 --set pipeline.schedule="
             "interleaved --set pipeline.virtual=2 -o %s/i.png",
             tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    snprintf(args, sizeof args,
             "plot schedule --set parallel.pp=4 --set parallel.dp=2 --set pipeline.schedule="
             "zero-bubble --format svg -o %s/zb.svg",
             tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    assert_string_equal(tu_dir_list(tmp_dir),
                        "i.png\nreadme.png\ns.png\ns.svg\ntiny.svg\nzb.svg\n");
    remove_tmp_dir();
}

static void test_cli_sweep(void **state) {
    (void)state;
    if (!have_gnuplot()) {
        print_message("gnuplot is not installed (Debian: gnuplot-nox): skipping\n");
        skip();
    }
    make_tmp_dir();
    write_temp(tmp_dir, "sweep.yaml",
               "model: tiny-1m\ncluster: local-cpu\ngpus: 2\nbatch: {global: 8, seq: 256}\n"
               "precision: fp32\noptimizer: adamw\n"
               "space: {tp: auto, pp: auto, zero: auto, micro: auto, recompute: auto, "
               "schedule: auto}\n");
    char args[1024], path[512];
    snprintf(args, sizeof args, "sweep %s/sweep.yaml --quiet --all %s/all.csv -o %s/top.txt",
             tmp_dir, tmp_dir, tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    snprintf(args, sizeof args, "plot sweep %s/all.csv -o %s/sweep.png", tmp_dir, tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    snprintf(path, sizeof path, "%s/sweep.png", tmp_dir);
    assert_png(path);
    snprintf(args, sizeof args, "plot sweep %s/all.csv --fit-only --format svg -o %s/sweep",
             tmp_dir, tmp_dir);
    if (run(args)) fail_msg("%s\n%s", args, out);
    snprintf(path, sizeof path, "%s/sweep", tmp_dir);
    assert_svg(path);
    assert_string_equal(tu_dir_list(tmp_dir), "all.csv\nsweep\nsweep.png\nsweep.yaml\ntop.txt\n");
    remove_tmp_dir();
}

static void test_cli_errors(void **state) {
    (void)state;
    make_tmp_dir();
    char args[1024], path[512];
    assert_int_equal(run("plot"), 2);
    tu_contains(out, "usage: parasim plot", NULL);
    assert_int_equal(run("plot pie"), 2);
    tu_contains(out, "unknown chart \"pie\"", NULL);
    assert_int_equal(run("plot sweep"), 2);
    assert_int_equal(run("plot schedule --format gif"), 2);
    tu_contains(out, "png, svg or both", NULL);
    assert_int_equal(run("help plot"), 0);
    tu_contains(out, "gnuplot-nox", "--format", NULL);
    assert_int_equal(run("plot sweep no/such.csv"), 1);
    tu_contains(out, "parasim plot sweep:", "no/such.csv", "cannot open", NULL);
    write_temp(tmp_dir, "bad.csv", "strategy,status,peak_gib,tokens_per_s\ndp,ok,1,fast\n");
    snprintf(args, sizeof args, "plot sweep %s/bad.csv -o %s/x.png", tmp_dir, tmp_dir);
    assert_int_equal(run(args), 1);
    tu_contains(out, "bad.csv:2", "tokens_per_s", "\"fast\"", NULL);
    assert_int_equal(run("plot schedule --set parallel.tp=3"), 1);
    tu_contains(out, "parasim plot schedule:", "parallel.tp=3", NULL);

    /* no gnuplot: a clear message naming the package; no image, no temporary */
    write_temp(tmp_dir, "old.png", "old image");
    snprintf(args, sizeof args, "plot schedule -o %s/old.png", tmp_dir);
    char env[600];
    assert_int_equal(run_env("PARASIM_GNUPLOT=/no/such/gnuplot", args), 1);
    tu_contains(out, "/no/such/gnuplot", "gnuplot-nox", NULL);
    /* gnuplot failing: its status and messages reported, the old image kept whole */
    write_temp(tmp_dir, "fake-gnuplot",
               "#!/bin/sh\necho \"line 7: undefined variable: x\" >&2\nexit 3\n");
    snprintf(path, sizeof path, "%s/fake-gnuplot", tmp_dir);
    assert_int_equal(chmod(path, 0755), 0);
    snprintf(env, sizeof env, "PARASIM_GNUPLOT=%s", path);
    assert_int_equal(run_env(env, args), 1);
    tu_contains(out, "gnuplot failed", "exit status 3", "no image written",
                "gnuplot said:", "line 7: undefined variable: x", NULL);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/old.png", tmp_dir);
    FILE *f = fopen(path, "r");
    char buf[32] = {0};
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "old image");
    assert_string_equal(tu_dir_list(tmp_dir), "bad.csv\nold.png\n");
    /* the private temporary directory is removed as well */
    if (have_gnuplot()) {
        snprintf(env, sizeof env, "TMPDIR=%s", tmp_dir);
        if (run_env(env, args)) fail_msg("%s", out);
        assert_png(path);
        assert_string_equal(tu_dir_list(tmp_dir), "bad.csv\nold.png\n");
    }
    remove_tmp_dir();
}

/* ---- run profiles: plot memory, peaks, schedule PROFILE.json ---- */

/* A small known profile: 2 ranks of 2 roles (pipeline stages 0 and 1), 2 steps kept.
 * Rank 0 (stage 0) in KiB: params 4 from op 0; a forward keeps 2 of activations
 * (predicted 1); the backward frees them and leaves 2 of grads and 1 of workspace
 * (predicted 0); the optimizer step creates 8 of Adam states; step 2 repeats the
 * forward. Rank 1 (stage 1) sends its collective. */
#define EV(op, kind, step, times, mem, pmem, pk, ppk)                                            \
    "{\"op\": " #op ", \"kind\": \"" kind "\", \"step\": " #step ", " times                     \
    ", \"memory\": " mem ", \"predicted_memory\": " pmem ", \"peak_total\": " #pk               \
    ", \"predicted_peak_total\": " #ppk "}"
static const char *const small_profile =
    "{\"format\": \"parasim-profile\", \"version\": 2, \"plan\": \"small\", \"model\": \"m\",\n"
    " \"cluster\": \"c\", \"backend\": \"cpu\", \"ranks\": 2, \"threads_per_rank\": 1,"
    " \"parallel\": {\"dp\": 1, \"tp\": 1, \"pp\": 2, \"cp\": 1, \"zero\": 0},"
    " \"params_dtype\": \"fp32\",\n"
    " \"categories\": [\"params\", \"grads\", \"master\", \"optimizer\", \"activations\","
    " \"buffers\", \"workspace\", \"teacher\"],\n"
    " \"event_steps\": 2,\n"
    " \"roles\": [\n"
    "  {\"role\": 0, \"stage\": 0, \"tp_rank\": 0, \"cp_rank\": 0, \"ranks\": [0],\n"
    "   \"predicted\": {\"peak\": [4096, 2048, 0, 8192, 1024, 0, 0, 0], \"peak_total\": 14336}},\n"
    "  {\"role\": 1, \"stage\": 1, \"tp_rank\": 0, \"cp_rank\": 0, \"ranks\": [1],\n"
    "   \"predicted\": {\"peak\": [2048, 0, 0, 0, 0, 0, 0, 0], \"peak_total\": 2048}}],\n"
    " \"rank_profiles\": [\n"
    "  {\"rank\": 0, \"role\": 0,\n"
    "   \"measured\": {\"peak\": [4096, 2048, 0, 8192, 2048, 0, 1024, 0], \"peak_total\": 15360},\n"
    "   \"events\": [\n"
    "    " EV(0, "alloc", 1, "\"start\": 0, \"end\": 0.1, \"predicted_start\": 0, \"predicted_end\": 0",
              "[4096, 0, 0, 0, 0, 0, 0, 0]", "[4096, 0, 0, 0, 0, 0, 0, 0]", 4096, 4096) ",\n"
    "    " EV(1, "fwd", 1, "\"mb\": 0, \"start\": 0.1, \"end\": 0.5, \"predicted_start\": 0, "
              "\"predicted_end\": 0.002",
              "[4096, 0, 0, 0, 2048, 0, 0, 0]", "[4096, 0, 0, 0, 1024, 0, 0, 0]", 7168, 5120) ",\n"
    "    " EV(2, "bwd", 1, "\"mb\": 0, \"start\": 0.5, \"end\": 1.3, \"predicted_start\": 0.002, "
              "\"predicted_end\": 0.006",
              "[4096, 2048, 0, 0, 0, 0, 1024, 0]", "[4096, 2048, 0, 0, 0, 0, 0, 0]", 9216, 7168) ",\n"
    "    " EV(3, "optim", 1, "\"start\": 1.3, \"end\": 1.5, \"predicted_start\": 0.006, "
              "\"predicted_end\": 0.007",
              "[4096, 2048, 0, 8192, 0, 0, 0, 0]", "[4096, 2048, 0, 8192, 0, 0, 0, 0]", 14336, 14336) ",\n"
    "    " EV(4, "zero_grad", 2, "\"start\": 1.5, \"end\": 1.5, \"predicted_start\": 0.007, "
              "\"predicted_end\": 0.007",
              "[4096, 2048, 0, 8192, 0, 0, 0, 0]", "[4096, 2048, 0, 8192, 0, 0, 0, 0]", 14336, 14336) ",\n"
    "    " EV(5, "fwd", 2, "\"mb\": 0, \"start\": 1.5, \"end\": 1.9, \"predicted_start\": 0.007, "
              "\"predicted_end\": 0.009",
              "[4096, 2048, 0, 8192, 2048, 0, 0, 0]", "[4096, 2048, 0, 8192, 1024, 0, 0, 0]", 16384, 15360)
    "]},\n"
    "  {\"rank\": 1, \"role\": 1,\n"
    "   \"measured\": {\"peak\": [2048, 0, 0, 0, 0, 0, 0, 0], \"peak_total\": 2048},\n"
    "   \"events\": [\n"
    "    " EV(0, "coll", 1, "\"start\": 0, \"end\": 0.25, \"predicted_start\": 0, "
              "\"predicted_end\": 0.001",
              "[2048, 0, 0, 0, 0, 0, 0, 0]", "[2048, 0, 0, 0, 0, 0, 0, 0]", 2048, 2048) "]}]}\n";

/* Load text as a profile; fails the test on error. */
static void load_profile(const char *text, plot_profile *p) {
    ps_err err = {{0}};
    make_tmp_dir();
    const char *path = write_temp(tmp_dir, "p.json", text);
    if (plot_profile_load(path, p, &err)) fail_msg("%s", err.msg);
    remove_tmp_dir();
}

/* What writer wrote, in a static buffer. */
static const char *written(int (*fn)(FILE *, const void *), const void *chart) {
    static char buf[1 << 16];
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_int_equal(fn(f, chart), 0);
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return buf;
}

static int memory_data(FILE *f, const void *m) { return plot_memory_write_data(f, m); }
static int peaks_data(FILE *f, const void *k) { return plot_peaks_write_data(f, k); }
static int measured_data(FILE *f, const void *g) { return plot_measured_write_data(f, g); }
static int memory_script(FILE *f, const void *m) {
    plot_outputs o = {"out.png", NULL};
    return plot_memory_script(f, m, "data.txt", &o);
}
static int peaks_script(FILE *f, const void *k) {
    plot_outputs o = {"out.png", NULL};
    return plot_peaks_script(f, k, "data.txt", &o);
}

static void test_profile_load(void **state) {
    (void)state;
    plot_profile p;
    load_profile(small_profile, &p);
    assert_string_equal(p.plan, "small");
    assert_int_equal(p.n_ranks, 2);
    assert_int_equal(p.n_roles, 2);
    assert_int_equal(p.event_steps, 2);
    assert_int_equal(p.roles[1].stage, 1);
    assert_int_equal(p.ranks[1].role, 1);
    assert_int_equal(p.ranks[0].n_events, 6);
    const prof_event *e = &p.ranks[0].events[2];
    assert_int_equal(e->kind, OP_BWD);
    assert_int_equal(e->mb, 0);
    assert_int_equal(e->mem[MEM_WORKSPACE], 1024);
    assert_int_equal(e->pmem[MEM_GRADS], 2048);
    assert_true(e->start == 0.5 && e->end == 1.3 && e->pend == 0.006);
    assert_int_equal(p.ranks[0].events[0].mb, -1);
    assert_int_equal(p.roles[0].ppeak[MEM_ACTIVATIONS], 1024);
    char d[256];
    assert_string_equal(plot_profile_describe(&p, d, sizeof d),
                        "m: dp 1 x tp 1 x pp 2 x cp 1, ZeRO-0, fp32 weights (plan: small)");
    assert_int_equal(p.ranks[0].peak[MEM_ACTIVATIONS], 2048);
    plot_profile_free(&p);
}

/* The memory chart's series: the bytes after each op summed up the categories, in KiB. */
static void test_memory_series(void **state) {
    (void)state;
    plot_profile p;
    load_profile(small_profile, &p);
    plot_memory m;
    plot_memory_layout(&m, &p);
    assert_int_equal(m.n_panels, 2); /* one per rank: 2 ranks */
    assert_int_equal(m.per_role, 0);
    assert_string_equal(m.unit_name, "KiB");
    const char *d = written(memory_data, &m);
    /* op phase step | measured cumulative params..workspace | predicted | peaks */
    tu_contains(d, "# rank 0 (role 0)",
                "\n0 0 1 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4 4\n",
                "\n1 1 1 4 4 4 4 6 6 6 6 4 4 4 4 5 5 5 5 7 5\n",
                "\n2 2 1 4 6 6 6 6 6 7 7 4 6 6 6 6 6 6 6 9 7\n",
                "\n3 3 1 4 6 6 14 14 14 14 14 4 6 6 14 14 14 14 14 14 14\n",
                "\n4 0 2 4 6 6 14 14 14 14 14 4 6 6 14 14 14 14 14 14 14\n", /* step 2 before its fwd */
                "\n5 1 2 4 6 6 14 16 16 16 16 4 6 6 14 15 15 15 15 16 15\n",
                "\n\n\n# rank 1 (role 1)", "\n0 0 1 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2 2\n", NULL);
    const char *s = written(memory_script, &m);
    /* the optimizer states appear at op 3, step 1, on both sides; step 2 starts at op 4 */
    tu_contains(s, "set multiplot title", "Adam states (step 1)\" at 3,",
                "set arrow from 4, graph 0 to 4, graph 1", "set label \"step 2\" at 4,",
                "rank 1 (role 1: stage 1, tp 0, cp 0): measured", "with fillsteps",
                "\"data.txt\" index 1", NULL);
    /* each panel reads its own columns of that data (8 categories: the predicted
     * ones from column 12; the predicted total, 19, and the peaks, 20 and 21) */
    tu_contains(s, "using 1:4 with fillsteps fs solid 0.9 noborder lc rgb \"#1f77b4\" title \"params\"",
                "using 1:12 with fillsteps fs solid 0.9 noborder lc rgb \"#1f77b4\" title \"params\"",
                "using 1:19 with fillsteps", "using 1:19 with steps lw 1.5 lc rgb \"black\"",
                "using 1:20 with steps lw 1.2", "using 1:21 with steps lw 1.2", NULL);
    assert_null(strstr(s, "using 1:22"));
    plot_profile_free(&p);
}

/* Above 8 ranks: one row per role, its rank with the highest measured peak. */
static void test_memory_rows_per_role(void **state) {
    (void)state;
    plot_profile p;
    memset(&p, 0, sizeof p);
    prof_role roles[2] = {{.stage = 0}, {.stage = 1}};
    prof_rank ranks[10];
    memset(ranks, 0, sizeof ranks);
    for (int i = 0; i < 10; i++) {
        ranks[i].role = i % 2;
        ranks[i].peak_total = i == 7 ? 100 : i == 4 ? 90 : 10;
    }
    p.n_ranks = 10, p.n_roles = 2, p.roles = roles, p.ranks = ranks;
    plot_memory m;
    plot_memory_layout(&m, &p);
    assert_int_equal(m.per_role, 1);
    assert_int_equal(m.n_panels, 2);
    assert_int_equal(m.rank[0], 4); /* role 0: ranks 0 2 4 6 8, 4 the heaviest */
    assert_int_equal(m.rank[1], 7); /* role 1: ranks 1 3 5 7 9 */
    assert_int_equal(m.left_out, 0);
}

static void test_peaks_and_schedule_series(void **state) {
    (void)state;
    plot_profile p;
    load_profile(small_profile, &p);
    plot_peaks k;
    plot_peaks_layout(&k, &p);
    assert_string_equal(k.unit_name, "KiB");
    /* rank predicted[8] measured[8] predicted_total measured_total: each rank its role's */
    tu_contains(written(peaks_data, &k), "\n0 4 2 0 8 1 0 0 0 4 2 0 8 2 0 1 0 14 15\n",
                "\n1 2 0 0 0 0 0 0 0 2 0 0 0 0 0 0 0 2 2\n", NULL);
    /* a panel per category and the total (2 rows of 5), each reading its columns:
     * params predicted 2 / measured 10, teacher 9 / 17, the totals 18 / 19 */
    tu_contains(written(peaks_script, &k), "set multiplot layout 2,5 ",
                "set title \"params\"", "using ($1-0.2):2 with boxes", "using ($1+0.2):10 with boxes",
                "set title \"teacher\"", "using ($1-0.2):9 with boxes", "using ($1+0.2):17 with boxes",
                "set title \"total (all categories at once)\"", "using ($1-0.2):18 with boxes",
                "using ($1+0.2):19 with boxes", NULL);
    plot_measured g;
    plot_measured_layout(&g, &p);
    assert_int_equal(g.n_stages, 2);
    assert_int_equal(g.rank[0], 0);
    assert_int_equal(g.rank[1], 1);
    assert_true(g.unit[0] == 1e3 && g.unit[1] == 1); /* predicted 9 ms, measured 1.9 s */
    /* stage kind start end y half_height colour; alloc and zero_grad are not drawn */
    const char *d = written(measured_data, &g);
    tu_contains(d, "# predicted", "\n0 3 0 2 -0.080 0.300 ", "\n0 4 2 6 -0.080 0.300 ",
                "\n0 8 6 7 ", "\n0 3 7 9 ", "\n1 5 0 1 1.300 0.100 ", "# measured",
                "\n0 3 0.1 0.5 ", "\n0 4 0.5 1.3 ", "\n1 5 0 0.25 ", NULL);
    assert_null(strstr(d, "\n0 0 ")); /* alloc */
    assert_null(strstr(d, "\n0 2 ")); /* zero_grad */
    plot_profile_free(&p);
}

/* Bad profiles: the message names file:line:col, the field, what was expected and found. */
static const char *profile_error(const char *text) {
    static ps_err err;
    plot_profile p;
    memset(&err, 0, sizeof err);
    make_tmp_dir();
    const char *path = write_temp(tmp_dir, "bad.json", text);
    int rc = plot_profile_load(path, &p, &err);
    remove_tmp_dir();
    if (!rc) fail_msg("expected an error for:\n%s", text);
    return err.msg;
}

/* small_profile with its first `from` replaced by `to`. */
static const char *edited(const char *from, const char *to) {
    static char buf[8192];
    const char *at = strstr(small_profile, from);
    assert_non_null(at);
    snprintf(buf, sizeof buf, "%.*s%s%s", (int)(at - small_profile), small_profile, to,
             at + strlen(from));
    return buf;
}

static void test_profile_errors(void **state) {
    (void)state;
    tu_contains(profile_error("{\"model\": \"llama3-8b\"}\n"), "bad.json:1:1: format: expected "
                "\"parasim-profile\"", "found no format field", NULL);
    tu_contains(profile_error("[1, 2]\n"), "bad.json:1:1: expected a parasim profile",
                "found a list", NULL);
    tu_contains(profile_error(edited("\"version\": 2", "\"version\": 1")),
                "bad.json:1:42: version: expected 2, found 1", "older profile", NULL);
    tu_contains(profile_error(edited("\"zero\": 0}", "\"zero\": 4}")),
                "bad.json:2:", "parallel.zero: expected an integer from 0 to 3, found 4", NULL);
    tu_contains(profile_error(edited("\"ranks\": 2,", "\"ranks\": 3,")),
                "rank_profiles: expected 3 (ranks), found 2", NULL);
    tu_contains(profile_error(edited("\"buffers\", \"workspace\", \"teacher\"]", "\"buffers\", \"buffers\", \"teacher\"]")),
                "bad.json:3:", "categories[6]: expected one of params", "\"buffers\"", NULL);
    /* a missing field of the second event of rank 0, on line 15 */
    tu_contains(profile_error(edited("\"end\": 0.5, ", "")), "bad.json:15:5: ",
                "rank_profiles[0].events[1].end: missing field (expected a time", NULL);
    tu_contains(profile_error(edited("\"end\": 1.3, ", "\"end\": 0.4, ")), "bad.json:16:",
                "rank_profiles[0].events[2].end: expected a time >= start (0.5 s), found 0.4 s",
                NULL);
    tu_contains(profile_error(edited("[4096, 0, 0, 0, 2048, 0, 0, 0]", "[4096, 0, 2048, 0, 0]")),
                "bad.json:15:", "rank_profiles[0].events[1].memory: expected 8 byte counts (one "
                "per category), found 5", NULL);
    tu_contains(profile_error(edited("\"kind\": \"fwd\"", "\"kind\": \"forward\"")),
                "rank_profiles[0].events[1].kind", "\"forward\"", NULL);
    tu_contains(profile_error(edited("{\"rank\": 1, \"role\": 1,", "{\"rank\": 1, \"role\": 2,")),
                "rank_profiles[1].role: expected an integer from 0 to 1, found 2", NULL);
    tu_contains(profile_error(edited("\"op\": 5,", "\"op\": 3,")),
                "rank_profiles[0].events[5].op: expected an op after 4", NULL);
    tu_contains(profile_error("{\"format\": \"parasim-profile\", \"version\": 2\n"),
                "bad.json:2:", NULL); /* broken JSON: the parser's location */
}

static void test_cli_profile_charts(void **state) {
    (void)state;
    make_tmp_dir();
    char args[1024], path[512];
    const char *prof = write_temp(tmp_dir, "p.json", small_profile);
    /* usage and input errors need no gnuplot */
    assert_int_equal(run("plot memory"), 2);
    tu_contains(out, "parasim plot memory: expected the profile", NULL);
    snprintf(args, sizeof args, "plot memory %s --set parallel.tp=2", prof);
    assert_int_equal(run(args), 2);
    tu_contains(out, "unknown option \"--set\"", NULL);
    snprintf(args, sizeof args, "plot schedule %s --set parallel.tp=2", prof);
    assert_int_equal(run(args), 2);
    tu_contains(out, "is a run profile", NULL);
    assert_int_equal(run("plot peaks no/such.json"), 1);
    tu_contains(out, "parasim plot peaks: ", "no/such.json", NULL);
    write_temp(tmp_dir, "plan.json", "{\"model\": \"tiny-1m\"}\n");
    snprintf(args, sizeof args, "plot memory %s/plan.json -o %s/m.png", tmp_dir, tmp_dir);
    assert_int_equal(run(args), 1);
    tu_contains(out, "plan.json:1:1: format: expected \"parasim-profile\"", NULL);
    if (have_gnuplot()) {
        snprintf(args, sizeof args, "plot memory %s --format both -o %s/m.png", prof, tmp_dir);
        if (run(args)) fail_msg("%s\n%s", args, out);
        snprintf(path, sizeof path, "%s/m.png", tmp_dir);
        assert_png(path);
        snprintf(path, sizeof path, "%s/m.svg", tmp_dir);
        assert_svg(path);
        snprintf(args, sizeof args, "plot peaks %s -o %s/k.png", prof, tmp_dir);
        if (run(args)) fail_msg("%s\n%s", args, out);
        snprintf(args, sizeof args, "plot schedule -o %s/s.svg %s", tmp_dir, prof);
        if (run(args)) fail_msg("%s\n%s", args, out);
        tu_contains(out, "wrote ", "/s.svg", NULL);
        snprintf(path, sizeof path, "%s/s.svg", tmp_dir);
        assert_svg(path);
        /* atomic: no temporaries left beside the images */
        assert_string_equal(tu_dir_list(tmp_dir),
                            "k.png\nm.png\nm.svg\np.json\nplan.json\ns.svg\n");
    }
    /* gnuplot failing: exit 1, the old image kept whole, no temporary left */
    write_temp(tmp_dir, "old.png", "old image");
    snprintf(args, sizeof args, "plot memory %s -o %s/old.png", prof, tmp_dir);
    assert_int_equal(run_env("PARASIM_GNUPLOT=false", args), 1);
    tu_contains(out, "parasim plot memory: gnuplot failed (exit status 1); no image written", NULL);
    snprintf(path, sizeof path, "%s/old.png", tmp_dir);
    FILE *f = fopen(path, "r");
    char buf[32] = {0};
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "old image");
    assert_null(strstr(tu_dir_list(tmp_dir), ".tmp."));
    remove_tmp_dir();
}

/* The README's first command ends by drawing the memory chart of its run. */
static void test_readme_draws_memory(void **state) {
    (void)state;
    FILE *f = fopen("README.md", "r");
    assert_non_null(f);
    static char line[4096];
    while (fgets(line, sizeof line, f) && strncmp(line, "sh tools/setup.sh", 17))
        continue;
    fclose(f);
    tu_contains(line, "run plans/tiny-1m-cpu.yaml -o profile.json && ./build/parasim plot memory "
                      "profile.json\n", NULL);
    /* and its Gantt chart is of a pipelined plan (4 stages), not the one-stage default */
    tu_contains(line, "./build/parasim plot schedule plans/llama3-8b-pp4.yaml && ", NULL);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: test_plot PATH-TO-PARASIM\n");
        return 1;
    }
    parasim = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pareto_hand_made),
        cmocka_unit_test(test_pareto_matches_definition),
        cmocka_unit_test(test_thinning_bounds_and_keeps_front),
        cmocka_unit_test(test_sweep_load_thins_and_keeps_front),
        cmocka_unit_test(test_strategy_groups),
        cmocka_unit_test(test_sweep_legend),
        cmocka_unit_test(test_csv_reader),
        cmocka_unit_test(test_gantt_data),
        cmocka_unit_test(test_readme_schedule_plan),
        cmocka_unit_test(test_put_string),
        cmocka_unit_test(test_cli_schedule),
        cmocka_unit_test(test_cli_sweep),
        cmocka_unit_test(test_cli_errors),
        cmocka_unit_test(test_profile_load),
        cmocka_unit_test(test_memory_series),
        cmocka_unit_test(test_memory_rows_per_role),
        cmocka_unit_test(test_peaks_and_schedule_series),
        cmocka_unit_test(test_profile_errors),
        cmocka_unit_test(test_cli_profile_charts),
        cmocka_unit_test(test_readme_draws_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
