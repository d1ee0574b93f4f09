/* test_calib.c — the calibration fits (sim/time/calib_fit.h) against values computed
 * independently, and the cluster writer (sim/report/cluster_yaml.h) by round trip. */
#include <math.h>
#include <unistd.h>

#include "tu.h"
#include "report/cluster_yaml.h"
#include "time/calib_fit.h"
#include "time/coll_time.h"

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

/* Times priced by coll_time for a known link over 4 ranks — all-reduces (the tree for the
 * two small sizes, the ring for the large ones, each written out here), all-gathers,
 * reduce-scatters and sends — give back its latency and bandwidth exactly; a 2% slow point
 * moves the bandwidth by under 1%; times that would need a negative latency give 0. */
static void test_fit_link(void **state) {
    (void)state;
    coll_link l = {.bytes_per_s = 6.5e9, .latency_s = 3e-6};
    l.p2p_bytes_per_s = l.bytes_per_s;
    const int64_t ranks = 4, sizes[] = {4096, 65536, 1 << 20, 1 << 24};
    const comm_coll colls[] = {COLL_ALL_REDUCE, COLL_ALL_GATHER, COLL_REDUCE_SCATTER, COLL_SEND};
    calib_meas m[16];
    int n = 0;
    for (int c = 0; c < 4; c++)
        for (int i = 0; i < 4; i++, n++) {
            m[n] = (calib_meas){colls[c], sizes[i], coll_time(colls[c], ranks, sizes[i], &l)};
            const double chunk = (double)((sizes[i] + ranks - 1) / ranks);
            const double want =
                c == 0 ? (i < 2 ? 4 * l.latency_s + 2.0 * (double)sizes[i] / l.bytes_per_s
                                : 6 * l.latency_s + 6 * chunk / l.bytes_per_s)
                : c < 3 ? 3 * l.latency_s + 3 * chunk / l.bytes_per_s
                        : l.latency_s + (double)sizes[i] / l.bytes_per_s;
            assert_float_equal(m[n].seconds / want, 1.0, 1e-12);
        }
    double lat, bw, eff[CLUSTER_COLLS];
    assert_int_equal(calib_fit_link(m, n, ranks, &lat, &bw, eff), 0);
    assert_float_equal(lat / 3e-6, 1.0, 1e-9);
    assert_float_equal(bw / 6.5e9, 1.0, 1e-9);
    for (int j = 0; j < CLUSTER_COLLS; j++) assert_float_equal(eff[j], 1.0, 1e-9);
    assert_int_equal(calib_fit_link(m, 4, ranks, &lat, &bw, eff), 0); /* all-reduces alone */
    assert_float_equal(bw / 6.5e9, 1.0, 1e-9);
    m[2].seconds *= 1.02;
    assert_int_equal(calib_fit_link(m, n, ranks, &lat, &bw, eff), 0);
    assert_true(fabs(bw / 6.5e9 - 1) < 0.01);
    const calib_meas fast[] = {{COLL_SEND, 1 << 20, 1e-9}, {COLL_SEND, 2 << 20, 1e-3}};
    assert_int_equal(calib_fit_link(fast, 2, 2, &lat, &bw, eff), 0);
    assert_float_equal(lat, 0, 0);
    assert_int_equal(calib_fit_link(m, n, 1, &lat, &bw, eff), -1);
    const calib_meas none[] = {{COLL_SEND, 0, 1e-3}, {COLL_SEND, 8, 1e-3}};
    assert_int_equal(calib_fit_link(none, 2, 2, &lat, &bw, eff), -1);
}

/* Each collective at its own share of the bus bandwidth (links.collectives): times priced
 * by coll_time with all-reduce at 0.25, reduce-scatter 0.5, all-gather 1, send/recv 0.8
 * and all-to-all 0.4 give back the latency, the fastest collective's bandwidth and every
 * share; broadcast and reduce, not measured, get the measured shares' mean in inverse
 * bandwidth, 5 / (4 + 2 + 1 + 1.25 + 2.5). */
static void test_fit_link_collectives(void **state) {
    (void)state;
    const double share[CLUSTER_COLLS] = {0.25, 0.5, 1, 1, 1, 0.8, 0.4};
    coll_link l = {.bytes_per_s = 8e9, .p2p_bytes_per_s = 8e9, .latency_s = 2e-6,
                   .coll_eff = share};
    const int64_t ranks = 2, sizes[] = {4096, 65536, 1 << 20, 1 << 24};
    const comm_coll colls[] = {COLL_ALL_REDUCE, COLL_REDUCE_SCATTER, COLL_ALL_GATHER, COLL_SEND,
                               COLL_ALL_TO_ALL};
    calib_meas m[20];
    int n = 0;
    for (int c = 0; c < 5; c++)
        for (int i = 0; i < 4; i++, n++)
            m[n] = (calib_meas){colls[c], sizes[i], coll_time(colls[c], ranks, sizes[i], &l)};
    /* by hand: a 2-rank reduce-scatter of 1 MiB is 1 step and half the buffer at 4 GB/s */
    assert_float_equal(m[6].seconds, 2e-6 + 524288 / 4e9, 1e-15);
    double lat, bw, eff[CLUSTER_COLLS];
    assert_int_equal(calib_fit_link(m, n, ranks, &lat, &bw, eff), 0);
    assert_float_equal(lat / 2e-6, 1.0, 1e-9);
    assert_float_equal(bw / 8e9, 1.0, 1e-9);
    for (int j = 0; j < CLUSTER_COLLS; j++) {
        const double want = j == COLL_BROADCAST || j == COLL_REDUCE ? 5 / 10.75 : share[j];
        assert_float_equal(eff[j] / want, 1.0, 1e-9);
    }
}

/* Every shipped cluster written and loaded again is the same cluster, bit for bit; a
 * written comment comes first, each line marked. */
static void test_cluster_yaml_round_trip(void **state) {
    (void)state;
    const char *names[] = {"dgx-a100", "dgx-h100", "dgx-h200", "h800", "local-cpu",
                           "local-cpu"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        static cluster_spec a, b;
        char path[256], tmp[] = "/tmp/parasim-cluster-XXXXXX";
        ps_err err = {{0}};
        snprintf(path, sizeof path, "plans/clusters/%s.yaml", names[i]);
        if (cluster_load_file(path, &a, &err)) fail_msg("%s", err.msg);
        if (i == 5) { /* the second local-cpu: with what calibrate adds */
            for (int j = 0; j < CLUSTER_COLLS; j++) a.cfg.eff.coll[j] = 1.0 / (j + 1.5);
            a.cfg.eff.optimizer = 1, a.cfg.eff.hbm = 0.3;
        }
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
        cmocka_unit_test(test_gemm_curve),
        cmocka_unit_test(test_fit_link),
        cmocka_unit_test(test_fit_link_collectives),
        cmocka_unit_test(test_cluster_yaml_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
