/* test_calib.c — the calibration fits (sim/time/calib_fit.h) against values computed
 * independently, and the cluster writer (sim/report/cluster_yaml.h) by round trip. */
#include <math.h>
#include <unistd.h>

#include "tu.h"
#include "report/cluster_yaml.h"
#include "time/calib_fit.h"
#include "time/coll_time.h"

/* A line through exact points comes back exactly; one point or equal x's is refused. */
static void test_fit_line(void **state) {
    (void)state;
    const double x[] = {1, 2, 4, 8}, y[] = {3.5, 5.5, 9.5, 17.5}; /* y = 1.5 + 2x */
    double a, b;
    assert_int_equal(calib_fit_line(x, y, NULL, 4, &a, &b), 0);
    assert_float_equal(a, 1.5, 1e-12);
    assert_float_equal(b, 2.0, 1e-12);
    /* noisy: the least-squares values by hand for (0,0), (1,1), (2,1): b = 1/2, a = 1/6 */
    const double u[] = {0, 1, 2}, v[] = {0, 1, 1};
    assert_int_equal(calib_fit_line(u, v, NULL, 3, &a, &b), 0);
    assert_float_equal(b, 0.5, 1e-12);
    assert_float_equal(a, 1.0 / 6, 1e-12);
    /* weights (1, 1, 2) by hand: mean x = 5/4, mean y = 3/4, Sxx = 11/4, Sxy = 5/4 */
    const double w[] = {1, 1, 2};
    assert_int_equal(calib_fit_line(u, v, w, 3, &a, &b), 0);
    assert_float_equal(b, 5.0 / 11, 1e-12);
    assert_float_equal(a, 0.75 - 5.0 / 11 * 1.25, 1e-12);
    const double zero_w[] = {1, 0, 1};
    assert_int_equal(calib_fit_line(u, v, zero_w, 3, &a, &b), -1);
    assert_int_equal(calib_fit_line(x, y, NULL, 1, &a, &b), -1);
    const double same[] = {2, 2, 2};
    assert_int_equal(calib_fit_line(same, v, NULL, 3, &a, &b), -1);
}

/* The curve is each rate over the largest; a rate that is not positive is refused. */
static void test_gemm_curve(void **state) {
    (void)state;
    const double rate[] = {40e9, 80e9, 100e9, 95e9};
    double peak, frac[4];
    assert_int_equal(calib_gemm_curve(rate, 4, &peak, frac), 0);
    assert_float_equal(peak, 100e9, 0);
    assert_float_equal(frac[0], 0.4, 1e-15);
    assert_float_equal(frac[2], 1.0, 0);
    assert_float_equal(frac[3], 0.95, 1e-15);
    const double bad[] = {1e9, 0};
    assert_int_equal(calib_gemm_curve(bad, 2, &peak, frac), -1);
    const double nan_[] = {NAN};
    assert_int_equal(calib_gemm_curve(nan_, 1, &peak, frac), -1);
}

/* Times priced by coll_time for a known link over 4 ranks (the tree for the two small
 * sizes, the ring for the large ones, each written out here) give back its latency and
 * bandwidth exactly; a 2% slow 1 MiB point moves the bandwidth by under 1%; a latency
 * that would come out negative is floored at 0. */
static void test_fit_allreduce(void **state) {
    (void)state;
    coll_link l = {.bytes_per_s = 6.5e9, .latency_s = 3e-6};
    l.p2p_bytes_per_s = l.bytes_per_s;
    const int64_t ranks = 4, sizes[] = {4096, 65536, 1 << 20, 1 << 24};
    double t[4];
    for (int i = 0; i < 4; i++) {
        t[i] = coll_time(COLL_ALL_REDUCE, ranks, sizes[i], &l);
        const double ring = 2.0 * (ranks - 1) * l.latency_s +
                            2.0 * (ranks - 1) * (double)((sizes[i] + ranks - 1) / ranks) /
                                l.bytes_per_s;
        const double tree = 2.0 * 2 * l.latency_s + 2.0 * (double)sizes[i] / l.bytes_per_s;
        assert_float_equal(t[i], i < 2 ? tree : ring, 1e-15);
        assert_true(i < 2 ? tree < ring : ring < tree);
    }
    double lat, bw;
    assert_int_equal(calib_fit_allreduce(sizes, t, 4, ranks, &lat, &bw), 0);
    assert_float_equal(lat / 3e-6, 1.0, 1e-9);
    assert_float_equal(bw / 6.5e9, 1.0, 1e-9);
    t[2] *= 1.02;
    assert_int_equal(calib_fit_allreduce(sizes, t, 4, ranks, &lat, &bw), 0);
    assert_true(fabs(bw / 6.5e9 - 1) < 0.01);
    const double fast[] = {1e-9, 1e-3}; /* through a negative intercept */
    const int64_t two[] = {1 << 20, 2 << 20};
    assert_int_equal(calib_fit_allreduce(two, fast, 2, 2, &lat, &bw), 0);
    assert_float_equal(lat, 0, 0);
    assert_int_equal(calib_fit_allreduce(sizes, t, 4, 1, &lat, &bw), -1);
}

/* Every shipped cluster written and loaded again is the same cluster, bit for bit; a
 * written comment comes first, each line marked. */
static void test_cluster_yaml_round_trip(void **state) {
    (void)state;
    const char *names[] = {"dgx-a100", "dgx-h100", "dgx-h200", "h800", "local-cpu"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        static cluster_spec a, b;
        char path[256], tmp[] = "/tmp/parasim-cluster-XXXXXX";
        ps_err err = {{0}};
        snprintf(path, sizeof path, "plans/clusters/%s.yaml", names[i]);
        if (cluster_load_file(path, &a, &err)) fail_msg("%s", err.msg);
        const int fd = mkstemp(tmp);
        assert_true(fd >= 0);
        FILE *f = fdopen(fd, "w");
        assert_int_equal(cluster_write_yaml(f, &a, "written by test_calib\nsecond line"), 0);
        fclose(f);
        if (cluster_load_file(tmp, &b, &err)) fail_msg("%s: %s", names[i], err.msg);
        if (memcmp(&a.cfg, &b.cfg, sizeof a.cfg)) fail_msg("%s: the cluster changed", names[i]);
        assert_string_equal(a.name, b.name);
        assert_string_equal(a.gpu_name, b.gpu_name);
        assert_string_equal(a.source, b.source);
        char head[64] = "";
        f = fopen(tmp, "r");
        assert_non_null(fgets(head, sizeof head, f));
        assert_string_equal(head, "# written by test_calib\n");
        assert_non_null(fgets(head, sizeof head, f));
        assert_string_equal(head, "# second line\n");
        fclose(f);
        unlink(tmp);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fit_line),
        cmocka_unit_test(test_gemm_curve),
        cmocka_unit_test(test_fit_allreduce),
        cmocka_unit_test(test_cluster_yaml_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
