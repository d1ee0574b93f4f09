/* test_validate.c — a run profile held to its prediction (sim/report/validate_profile.h)
 * on a profile written here, whose errors are known by construction. */
#include <math.h>
#include <unistd.h>

#include "tu.h"
#include "report/validate_profile.h"

/* Profile text as parasim run writes it (the fields plot_profile_load checks). */
#define HEAD(plan, ranks)                                                                     \
    "{\"format\": \"parasim-profile\", \"version\": 2, \"plan\": \"" plan "\", \"model\": \"m\",\n" \
    " \"cluster\": \"c\", \"backend\": \"cpu\", \"params_dtype\": \"fp32\", \"ranks\": " #ranks ",\n" \
    " \"event_steps\": 2, \"parallel\": {\"dp\": 1, \"tp\": 1, \"pp\": 1, \"cp\": 1, \"zero\": 0},\n" \
    " \"categories\": [\"params\", \"grads\", \"master\", \"optimizer\", \"activations\",\n" \
    "                \"buffers\", \"workspace\", \"teacher\"],\n"
#define ROLE(i, peak, total)                                                                  \
    "{\"role\": " #i ", \"stage\": 0, \"tp_rank\": 0, \"cp_rank\": 0,\n"                          \
    "  \"predicted\": {\"peak\": " peak ", \"peak_total\": " #total "}}"
#define MEM0 "[0, 0, 0, 0, 0, 0, 0, 0]"
#define EV(op, kind, step, s, e, ps, pe)                                                      \
    "{\"op\": " #op ", \"kind\": \"" kind "\", \"step\": " #step ", \"start\": " #s                 \
    ", \"end\": " #e ", \"predicted_start\": " #ps ", \"predicted_end\": " #pe                     \
    ", \"memory\": " MEM0 ", \"predicted_memory\": " MEM0 ", \"peak_total\": 0,"                   \
    " \"predicted_peak_total\": 0}"

/* Two ranks of one role each. Rank 1's total peak is 1% over (1010 vs 1000), its
 * activations 10% (110 vs 100); rank 0's send/recv is 1 call short (3 of 4); steps 2..4
 * measure 0.11, 0.13, 0.12 s against 0.1 s predicted (median +20%); the events of step 2
 * give fwd 0.05 / 0.04 s and a send 0.01 / 0.002 s, step 1's and the alloc are left out. */
static const char profile[] =
    HEAD("made up", 2)
    " \"tokens_per_step\": 1000,\n"
    " \"steps\": [{\"step\": 1, \"seconds\": 9, \"predicted_seconds\": 0.1},\n"
    "           {\"step\": 2, \"seconds\": 0.11, \"predicted_seconds\": 0.1},\n"
    "           {\"step\": 3, \"seconds\": 0.13, \"predicted_seconds\": 0.1},\n"
    "           {\"step\": 4, \"seconds\": 0.12, \"predicted_seconds\": 0.1}],\n"
    " \"roles\": [" ROLE(0, "[900, 0, 0, 0, 100, 0, 0, 0]", 1000) ",\n"
    "           " ROLE(1, "[900, 0, 0, 0, 100, 0, 0, 0]", 1000) "],\n"
    " \"rank_profiles\": [\n"
    "  {\"rank\": 0, \"role\": 0,\n"
    "   \"measured\": {\"peak\": [900, 0, 0, 0, 100, 0, 0, 0], \"peak_total\": 1000},\n"
    "   \"collectives\": [{\"group\": \"pp\", \"coll\": \"send/recv\", \"calls\": 3, \"bytes\": 300,\n"
    "                    \"predicted_calls\": 4, \"predicted_bytes\": 300}],\n"
    "   \"events\": [" EV(0, "fwd", 1, 0, 5, 0, 1) ",\n"
    "              " EV(1, "fwd", 2, 1, 1.05, 2, 2.04) ",\n"
    "              " EV(2, "send", 2, 1.05, 1.06, 2.04, 2.042) ",\n"
    "              " EV(3, "alloc", 2, 1, 3, 0, 0) "]},\n"
    "  {\"rank\": 1, \"role\": 1,\n"
    "   \"measured\": {\"peak\": [900, 0, 0, 0, 110, 0, 0, 0], \"peak_total\": 1010},\n"
    "   \"collectives\": [], \"events\": []}]}\n";

/* text into a new temporary file; its name into path (a mkstemp template). */
static void write_tmp(char *path, const char *text) {
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_validate_profile(void **state) {
    (void)state;
    char path[] = "/tmp/parasim-validate-XXXXXX";
    write_tmp(path, profile);
    validate_result r;
    ps_err err = {{0}};
    if (validate_profile(path, &r, &err)) fail_msg("%s", err.msg);
    assert_string_equal(r.plan, "made up");
    assert_int_equal(r.ranks, 2);
    assert_float_equal(r.total_err, 0.01, 1e-12);
    assert_int_equal(r.total_rank, 1);
    assert_int_equal(r.total_meas, 1010);
    assert_float_equal(r.cat_err, 0.1, 1e-12);
    assert_string_equal(r.cat, "activations");
    assert_float_equal(r.bytes_err, 0.25, 1e-12); /* 3 calls of 4 */
    assert_int_equal(r.colls, 1);
    assert_int_equal(r.steps, 3);
    assert_float_equal(r.step_meas, 0.12, 1e-12);
    assert_float_equal(r.step_err, 0.2, 1e-9);
    assert_float_equal(r.tokens_per_s, 1000 / 0.12, 1e-6);
    assert_float_equal(r.kind_meas[VALIDATE_FWD], 0.05, 1e-12);
    assert_float_equal(r.kind_pred[VALIDATE_FWD], 0.04, 1e-12);
    assert_float_equal(r.kind_meas[VALIDATE_COMM], 0.01, 1e-12);
    assert_float_equal(r.kind_pred[VALIDATE_COMM], 0.002, 1e-12);
    /* the tolerances: each check on its own bit */
    validate_tol t = {0.02, 0.25, 0.3};
    assert_int_equal(validate_over(&r, &t), 0);
    t.memory = 0.005;
    assert_int_equal(validate_over(&r, &t), 1);
    t.bytes = 0;
    assert_int_equal(validate_over(&r, &t), 3);
    t.time = 0.1;
    assert_int_equal(validate_over(&r, &t), 7);
    unlink(path);
    /* not a profile */
    assert_int_equal(validate_profile("plans/tiny-1m-cpu.yaml", &r, &err), -1);
    tu_contains(err.msg, "plans/tiny-1m-cpu.yaml", "format: expected \"parasim-profile\"", NULL);
}

/* Two data-parallel ranks of one role: the role's prediction is its heaviest rank's, so
 * rank 0 below it (its smaller shard part) is no error while rank 1 meets it; a role whose
 * heaviest rank is 4% under is. */
static const char shared[] =
    HEAD("dp", 2)
    " \"tokens_per_step\": 10,\n"
    " \"steps\": [{\"step\": 1, \"seconds\": 1, \"predicted_seconds\": 1}],\n"
    " \"roles\": [" ROLE(0, "[900, 0, 0, 0, 0, 0, 100, 0]", 1000) "],\n"
    " \"rank_profiles\": [\n"
    "  {\"rank\": 0, \"role\": 0, \"measured\": {\"peak\": [900, 0, 0, 0, 0, 0, 40, 0], \"peak_total\": 940},\n"
    "   \"collectives\": [], \"events\": []},\n"
    "  {\"rank\": 1, \"role\": 0, \"measured\": {\"peak\": [900, 0, 0, 0, 0, 0, 100, 0], \"peak_total\": RANK1},\n"
    "   \"collectives\": [], \"events\": []}]}\n";

static void check_shared(const char *rank1_total, double want_err) {
    char text[sizeof shared + 8], *at;
    snprintf(text, sizeof text, "%s", shared);
    at = strstr(text, "RANK1");
    memcpy(at, rank1_total, 5);
    char path[] = "/tmp/parasim-validate-XXXXXX";
    write_tmp(path, text);
    validate_result r;
    ps_err err = {{0}};
    if (validate_profile(path, &r, &err)) fail_msg("%s", err.msg);
    assert_float_equal(r.total_err, want_err, 1e-12);
    assert_int_equal(r.total_rank, 1);
    assert_float_equal(r.cat_err, 0, 0); /* each category's most is rank 1's: exact */
    assert_int_equal(r.steps, 1);        /* one step: that one */
    unlink(path);
}

static void test_validate_role(void **state) {
    (void)state;
    check_shared("1000 ", 0);
    check_shared("960  ", 0.04);
    /* without steps there is no time to hold: said, not guessed */
    char text[sizeof shared + 8], path[] = "/tmp/parasim-validate-XXXXXX";
    snprintf(text, sizeof text, "%s", shared);
    memcpy(strstr(text, "\"steps\""), "\"stepz\"", 7);
    memcpy(strstr(text, "RANK1"), "1000 ", 5);
    write_tmp(path, text);
    validate_result r;
    ps_err err = {{0}};
    assert_int_equal(validate_profile(path, &r, &err), -1);
    tu_contains(err.msg, "the profile has no steps or no tokens_per_step", NULL);
    unlink(path);
}

static void test_tolerance_parse(void **state) {
    (void)state;
    validate_tol t = {0.02, 0.15, 0};
    ps_err err = {{0}};
    assert_int_equal(validate_tol_parse("time=10%,memory=0.5%", &t, &err), 0);
    assert_float_equal(t.time, 0.10, 1e-15);
    assert_float_equal(t.memory, 0.005, 1e-15);
    assert_float_equal(t.bytes, 0, 0);
    assert_int_equal(validate_tol_parse("bytes=0.01", &t, &err), 0);
    assert_float_equal(t.bytes, 0.01, 0);
    assert_int_equal(validate_tol_parse("speed=2%", &t, &err), -1);
    tu_contains(err.msg, "expected memory=, time= or bytes=", "found \"speed\"", NULL);
    assert_int_equal(validate_tol_parse("time=fast", &t, &err), -1);
    tu_contains(err.msg, "time: expected a fraction or a percentage", "found \"fast\"", NULL);
    assert_int_equal(validate_tol_parse("memory=-1%", &t, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_profile),
        cmocka_unit_test(test_validate_role),
        cmocka_unit_test(test_tolerance_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
