/* test_ckpt.c — the checkpoint file (runtime/rt_ckpt.h): written and read back
 * bit for bit, its layout, and every corruption a reader must catch refused
 * with a message naming the file, the field or element, what was expected and
 * what was found. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "rt_ckpt.h"

static char dir[] = "/tmp/parasim-ckpt-XXXXXX";
static char path[256], bad[256], train_path[256];

/* A small model: 2 layers, h 8, 4 heads of 2 (GQA: 2 kv heads), f 12, V 10. */
static rt_ckpt make(void) {
    rt_ckpt ck;
    memset(&ck, 0, sizeof ck);
    snprintf(ck.m.model, sizeof ck.m.model, "tiny \"quoted\"\tname");
    ck.m.layers = 2, ck.m.hidden = 8, ck.m.heads = 4, ck.m.kv_heads = 2, ck.m.head_dim = 2;
    ck.m.ffn_hidden = 12, ck.m.vocab = 10, ck.m.seq_len = 16;
    ck.m.norm_eps = 1e-5, ck.m.rope_theta = 10000.0, ck.m.steps = 42;
    rt_ckpt_layout l;
    rt_ckpt_layout_of(&ck.m, &l);
    ck.elems = l.elems;
    ck.data = malloc((size_t)l.elems * sizeof *ck.data);
    assert_non_null(ck.data);
    for (int64_t k = 0; k < l.elems; k++) /* values whose bits matter: subnormal, -0, tiny */
        ck.data[k] = k == 0 ? -0.0f : k == 1 ? 1e-40f : (float)sin((double)k) * 3.7f;
    return ck;
}

/* The file's bytes (static buffer), its length in *n. */
static char file[1 << 20];
static size_t slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    size_t n = fread(file, 1, sizeof file, f);
    fclose(f);
    return n;
}

static void put(const char *p, const void *b, size_t n) {
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Reading p fails with a message holding every one of the strings given. */
static void expect_error(const char *p, ...) {
    rt_ckpt ck;
    ps_err err = {{0}};
    if (rt_ckpt_read(p, &ck, &err) == 0) fail_msg("%s: read, expected an error", p);
    assert_null(ck.data);
    va_list ap;
    va_start(ap, p);
    for (const char *s; (s = va_arg(ap, const char *));)
        if (!strstr(err.msg, s)) fail_msg("message \"%s\" lacks \"%s\"", err.msg, s);
    va_end(ap);
    assert_memory_equal(err.msg, p, strlen(p)); /* it names the file */
}

static void test_layout(void **state) {
    (void)state;
    rt_ckpt ck = make();
    rt_ckpt_layout l;
    rt_ckpt_layout_of(&ck.m, &l);
    /* by hand: wte 10*8 = 80; a layer: norm 8, wq 8*8, wk 4*8, wv 4*8, wo 8*8, norm 8,
     * w1 12*8, w3 12*8, w2 8*12 = 8+64+32+32+64+8+96+96+96 = 496 */
    assert_int_equal(l.wte, 0);
    assert_int_equal(l.layer0, 80);
    assert_int_equal(l.layer_elems, 496);
    assert_int_equal(l.wq, 8), assert_int_equal(l.wk, 72), assert_int_equal(l.wv, 104);
    assert_int_equal(l.wo, 136), assert_int_equal(l.mlp_norm, 200), assert_int_equal(l.w1, 208);
    assert_int_equal(l.w3, 304), assert_int_equal(l.w2, 400);
    assert_int_equal(l.final_norm, 80 + 2 * 496);
    assert_int_equal(l.lm_head, 80 + 2 * 496 + 8);
    assert_int_equal(l.elems, 80 + 2 * 496 + 8 + 80);
    char name[128];
    rt_ckpt_element_name(&ck.m, l.layer0 + l.layer_elems + l.wo + 8 + 3, name, sizeof name);
    assert_string_equal(name, "layer 1 wo[1][3]");
    free(ck.data);
}

static void test_round_trip(void **state) {
    (void)state;
    rt_ckpt ck = make(), back;
    ps_err err = {{0}};
    if (rt_ckpt_write(path, &ck, &err)) fail_msg("%s", err.msg);
    if (rt_ckpt_read(path, &back, &err)) fail_msg("%s", err.msg);
    assert_int_equal(back.elems, ck.elems);
    assert_memory_equal(back.data, ck.data, (size_t)ck.elems * sizeof *ck.data); /* bitwise */
    assert_string_equal(back.m.model, ck.m.model);
    assert_true(back.m.norm_eps == ck.m.norm_eps && back.m.rope_theta == ck.m.rope_theta);
    assert_int_equal(back.m.steps, 42);
    assert_int_equal(back.m.layers, 2), assert_int_equal(back.m.kv_heads, 2);
    assert_int_equal(back.m.seq_len, 16), assert_int_equal(back.m.ffn_hidden, 12);
    /* the size: magic, the header line, then the values */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    const size_t n = slurp(path);
    const char *nl = memchr(file + 8, '\n', n - 8);
    assert_non_null(nl);
    assert_int_equal((size_t)st.st_size, (size_t)(nl + 1 - file) + 4 * (size_t)ck.elems);
    rt_ckpt_free(&back);
    free(ck.data);
}

/* File src with its header's `from` replaced by `to` (the data unchanged), into bad. */
static void header_edit_of(const char *src, const char *from, const char *to) {
    size_t n = slurp(src);
    char *at = strstr(file + 8, from);
    if (!at) fail_msg("the header lacks %s", from);
    static char edited[sizeof file + 256];
    const size_t pre = (size_t)(at - file), fl = strlen(from), tl = strlen(to);
    memcpy(edited, file, pre);
    memcpy(edited + pre, to, tl);
    memcpy(edited + pre + tl, at + fl, n - pre - fl);
    put(bad, edited, n - fl + tl);
}

static void header_edit(const char *from, const char *to) { header_edit_of(path, from, to); }

static void test_corrupt_header(void **state) {
    (void)state;
    header_edit("\"hidden\": 8", "\"hidden\": 0");
    expect_error(bad, "header field \"hidden\": expected an integer in [1, 16777216], found 0",
                 NULL);
    header_edit("\"hidden\": 8", "\"hidden\": 8.5");
    expect_error(bad, "header field \"hidden\": expected an integer", "found 8.5", NULL);
    header_edit("\"hidden\": 8", "\"hidden\": \"eight\"");
    expect_error(bad, "header field \"hidden\": expected an integer", "found \"eight\"", NULL);
    header_edit("\"layers\": 2", "\"layers\": 99999999999999999999");
    expect_error(bad, "header field \"layers\": expected an integer in [1, 100000]", NULL);
    header_edit("\"norm_eps\": ", "\"norm_eps\": -");
    expect_error(bad, "header field \"norm_eps\": expected a number in (0, 1]", NULL);
    header_edit("\"kv_heads\": 2", "\"kv_heads\": 3");
    expect_error(bad, "header field \"kv_heads\": expected a divisor of heads = 4, found 3", NULL);
    header_edit("\"steps\": 42, ", "");
    expect_error(bad, "header field \"steps\": missing", NULL);
    header_edit("\"steps\": 42", "\"steps\": 42, \"steps\": 43");
    expect_error(bad, "header field \"steps\": given twice", NULL);
    header_edit("\"steps\": 42", "\"stepz\": 42");
    expect_error(bad, "header field \"stepz\": unknown", "expected one of", NULL);
    header_edit("\"format\": \"parasim-checkpoint\"", "\"format\": \"other\"");
    expect_error(bad, "header field \"format\": expected \"parasim-checkpoint\", found \"other\"",
                 NULL);
    header_edit("\"dtype\": \"f32\"", "\"dtype\": \"bf16\"");
    expect_error(bad, "header field \"dtype\": expected \"f32\", found \"bf16\"", NULL);
    header_edit("\"version\": 1", "\"version\": 3");
    expect_error(bad, "header field \"version\": expected an integer in [1, 2], found 3", NULL);
    /* a weights-only file that claims the training state lacks its fields */
    header_edit("\"version\": 1", "\"version\": 2");
    expect_error(bad, "header field \"seed\": missing", NULL);
    header_edit("{\"format\"", "[\"format\"");
    expect_error(bad, "header, byte 8 of the file: expected '{' (a JSON object), found '['",
                 NULL);
    header_edit("\"layers\": 2,", "\"layers\" 2,");
    expect_error(bad, "expected ':' after a key, found '2'", NULL);
}

static void test_elems_mismatch(void **state) {
    (void)state;
    rt_ckpt ck = make();
    char from[64], to[64];
    snprintf(from, sizeof from, "\"elems\": %lld", (long long)ck.elems);
    snprintf(to, sizeof to, "\"elems\": %lld", (long long)ck.elems - 1);
    header_edit(from, to);
    snprintf(from, sizeof from, "header field \"elems\": expected %lld", (long long)ck.elems);
    snprintf(to, sizeof to, "found %lld", (long long)ck.elems - 1);
    expect_error(bad, from, to, NULL);
    /* the writer refuses the same */
    ps_err err = {{0}};
    ck.elems--;
    assert_int_equal(rt_ckpt_write(bad, &ck, &err), -1);
    assert_non_null(strstr(err.msg, "header field \"elems\": expected"));
    free(ck.data);
}

static void test_bad_magic(void **state) {
    (void)state;
    size_t n = slurp(path);
    file[3] = 'X';
    put(bad, file, n);
    expect_error(bad, "bad magic: expected a parasim checkpoint, starting with \"PSCKPT1\\n\", "
                      "found \"PSCXPT1\\x0a\"", NULL);
    put(bad, "PS", 2);
    expect_error(bad, "bad magic", "found \"PS\" (the whole file)", NULL);
    put(bad, "", 0);
    expect_error(bad, "bad magic", NULL);
}

static void test_truncated_and_trailing(void **state) {
    (void)state;
    size_t n = slurp(path);
    put(bad, file, n - 3);
    expect_error(bad, "truncated data: expected 1160 values (4640 bytes) after the header, found "
                      "4637 bytes", NULL);
    file[n] = 0, file[n + 1] = 0;
    put(bad, file, n + 2);
    expect_error(bad, "2 trailing bytes after the 1160 values: the file should end at byte", NULL);
    put(bad, file, 40); /* within the header line */
    expect_error(bad, "truncated header: the file ends after 40 bytes without the header's "
                      "newline", NULL);
}

static void test_header_too_long(void **state) {
    (void)state;
    static char big[8 + 70000];
    memcpy(big, "PSCKPT1\n", 8);
    memset(big + 8, ' ', sizeof big - 8);
    put(bad, big, sizeof big);
    expect_error(bad, "the header is longer than 64 KiB", NULL);
}

static void test_non_finite(void **state) {
    (void)state;
    size_t n = slurp(path);
    const char *nl = memchr(file + 8, '\n', n - 8);
    const size_t data = (size_t)(nl + 1 - file);
    /* element 80 + 496 + 136 + 8*1 + 3: layer 1 wo[1][3] */
    const int64_t k = 80 + 496 + 136 + 8 + 3;
    const float inf = INFINITY, nan = NAN;
    memcpy(file + data + 4 * k, &inf, 4);
    put(bad, file, n);
    expect_error(bad, "value at element 723 (layer 1 wo[1][3]) is inf: expected a finite number",
                 NULL);
    memcpy(file + data + 4 * 5, &nan, 4);
    put(bad, file, n);
    expect_error(bad, "value at element 5 (wte[0][5]) is nan", NULL);
    /* the writer refuses them too */
    rt_ckpt ck = make();
    ck.data[ck.elems - 1] = nan;
    ps_err err = {{0}};
    assert_int_equal(rt_ckpt_write(bad, &ck, &err), -1);
    assert_non_null(strstr(err.msg, "(lm_head[9][7]) is nan"));
    free(ck.data);
}

/* A training state (version 2): make()'s weights, then adam_m and adam_v. */
static rt_ckpt make_train(void) {
    rt_ckpt w = make(), ck = w;
    ck.data = malloc(3 * (size_t)w.elems * sizeof *ck.data);
    assert_non_null(ck.data);
    memcpy(ck.data, w.data, (size_t)w.elems * sizeof *ck.data);
    free(w.data);
    ck.adam_m = ck.data + ck.elems, ck.adam_v = ck.data + 2 * ck.elems;
    for (int64_t k = 0; k < ck.elems; k++)
        ck.adam_m[k] = (float)cos((double)k) * 1e-3f, ck.adam_v[k] = (float)(k % 7) * 1e-7f;
    ck.has_train = 1;
    ck.train = (rt_ckpt_train){.seed = 1234567890123LL, .global_batch = 8, .optimizer = "adamw",
                               .lr = 3e-4, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8,
                               .weight_decay = 0.0, .precision = "params=fp32 grads=fp32"};
    return ck;
}

/* Version 2 round-trips bit for bit, settings included; a version 1 reader's
 * view (has_train 0) is what generate sees of a version 1 file. */
static void test_train_round_trip(void **state) {
    (void)state;
    rt_ckpt ck = make_train(), back;
    ps_err err = {{0}};
    if (rt_ckpt_write(train_path, &ck, &err)) fail_msg("%s", err.msg);
    if (rt_ckpt_read(train_path, &back, &err)) fail_msg("%s", err.msg);
    assert_true(back.has_train);
    assert_int_equal(back.elems, ck.elems);
    assert_memory_equal(back.data, ck.data, 3 * (size_t)ck.elems * sizeof *ck.data);
    assert_true(back.adam_m == back.data + back.elems && back.adam_v == back.data + 2 * back.elems);
    assert_int_equal(back.train.seed, 1234567890123LL);
    assert_int_equal(back.train.global_batch, 8);
    assert_string_equal(back.train.optimizer, "adamw");
    assert_string_equal(back.train.precision, "params=fp32 grads=fp32");
    assert_true(back.train.lr == 3e-4 && back.train.beta1 == 0.9 && back.train.beta2 == 0.95 &&
                back.train.eps == 1e-8 && back.train.weight_decay == 0.0);
    assert_int_equal(back.m.steps, 42);
    const size_t n = slurp(train_path);
    const char *nl = memchr(file + 8, '\n', n - 8);
    assert_int_equal(n, (size_t)(nl + 1 - file) + 12 * (size_t)ck.elems);
    rt_ckpt_free(&back);
    assert_null(back.data);
    rt_ckpt v1;
    if (rt_ckpt_read(path, &v1, &err)) fail_msg("%s", err.msg); /* a weights-only file */
    assert_false(v1.has_train);
    assert_null(v1.adam_m);
    rt_ckpt_free(&v1);
    free(ck.data);
}

/* Every corruption of a training state is refused, nothing kept (expect_error
 * checks data is NULL): truncated or trailing arrays, a non-finite moment, a
 * training field out of range, missing, or in a version 1 file. */
static void test_train_corrupt(void **state) {
    (void)state;
    size_t n = slurp(train_path);
    put(bad, file, n - 4);
    expect_error(bad, "truncated data: expected 3480 values (the weights, adam_m and adam_v) "
                      "(13920 bytes) after the header, found 13916 bytes", NULL);
    put(bad, file, n + 4);
    expect_error(bad, "4 trailing bytes after the 3480 values (the weights, adam_m and adam_v)",
                 NULL);
    const char *nl = memchr(file + 8, '\n', n - 8);
    const size_t data = (size_t)(nl + 1 - file);
    const float nan = NAN;
    memcpy(file + data + 4 * (2 * 1160 + 723), &nan, 4);
    put(bad, file, n);
    expect_error(bad, "adam_v value at element 723 (layer 1 wo[1][3]) is nan", NULL);
    header_edit_of(train_path, "\"beta1\": 0.9,", "\"beta1\": 1,");
    expect_error(bad, "header field \"beta1\": expected a number in [0, 1), found 1", NULL);
    header_edit_of(train_path, "\"lr\": 0.0003,", "\"lr\": 0,");
    expect_error(bad, "header field \"lr\": expected a number in (0, 1000], found 0", NULL);
    header_edit_of(train_path, "\"seed\": 1234567890123", "\"seed\": -1");
    expect_error(bad, "header field \"seed\": expected an integer in [0, ", "found -1", NULL);
    header_edit_of(train_path, "\"global_batch\": 8, ", "");
    expect_error(bad, "header field \"global_batch\": missing", NULL);
    header_edit_of(train_path, "\"optimizer\": \"adamw\"", "\"optimizer\": \"sgd\"");
    expect_error(bad, "header field \"optimizer\": expected \"adamw\"", "found \"sgd\"", NULL);
    header_edit_of(train_path, "\"version\": 2", "\"version\": 1");
    expect_error(bad, "header field \"seed\": expected only in a version 2 file (a training "
                      "state), found in version 1", NULL);
    /* the writer refuses a non-finite moment and an out-of-range setting */
    rt_ckpt ck = make_train();
    ps_err err = {{0}};
    ck.adam_m[3] = INFINITY;
    assert_int_equal(rt_ckpt_write(bad, &ck, &err), -1);
    assert_non_null(strstr(err.msg, "adam_m value at element 3 (wte[0][3]) is inf"));
    ck.adam_m[3] = 0;
    ck.train.weight_decay = -0.5;
    assert_int_equal(rt_ckpt_write(bad, &ck, &err), -1);
    assert_non_null(strstr(err.msg, "header field \"weight_decay\": expected a number in [0, 1], "
                                    "found -0.5"));
    free(ck.data);
}

/* Not a regular file: a directory, a FIFO, /dev/null; and the writer refuses
 * to replace a symbolic link or a device (as every output does). */
static void test_not_regular(void **state) {
    (void)state;
    expect_error(dir, "is a directory, not a regular file", NULL);
    expect_error("/dev/null", "is a character device, not a regular file", NULL);
    char link[300];
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(symlink(path, link), 0);
    rt_ckpt ck = make();
    ps_err err = {{0}};
    assert_int_equal(rt_ckpt_write(link, &ck, &err), -1);
    assert_non_null(strstr(err.msg, "is a symbolic link, not a regular file"));
    assert_int_equal(rt_ckpt_write("/dev/null", &ck, &err), -1);
    assert_non_null(strstr(err.msg, "is a character device"));
    unlink(link);
    expect_error("/nonexistent/x.ck", "cannot open", NULL);
    free(ck.data);
}

int main(void) {
    if (!mkdtemp(dir)) return perror("mkdtemp"), 2;
    snprintf(path, sizeof path, "%s/good.ck", dir);
    snprintf(bad, sizeof bad, "%s/bad.ck", dir);
    snprintf(train_path, sizeof train_path, "%s/train.ck", dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout),         cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_corrupt_header), cmocka_unit_test(test_elems_mismatch),
        cmocka_unit_test(test_bad_magic),      cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_header_too_long), cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_not_regular),    cmocka_unit_test(test_train_round_trip),
        cmocka_unit_test(test_train_corrupt),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path), unlink(bad), unlink(train_path), rmdir(dir);
    return rc;
}
