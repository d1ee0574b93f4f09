/* test_yaml.c — the YAML tree keeps locations, rejects duplicates, applies
 * --set paths; quantities parse with their units; hostile input (alias bombs,
 * deep nesting, NULs, bad UTF-8, FIFOs, devices, long paths) fails fast with a
 * located error within the limits of ynode.h (docs/specs.md, "Limits"). */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tu.h"
#include "spec/yget.h"
#include "spec/ynode.h"

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Load text that must fail; returns the message (static buffer). */
static const char *load_error(const char *text) {
    static ps_err err;
    ynode *root = NULL;
    memset(&err, 0, sizeof err);
    if (!ynode_load_string(text, "t.yaml", &root, &err))
        fail_msg("expected an error for:\n%s", text);
    assert_null(root);
    return err.msg;
}

static void test_locations(void **state) {
    (void)state;
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_equal(ynode_load_string("a: 1\nb:\n  c: [x, y]\n", "t.yaml", &root, &err), 0);
    const ynode *b = ynode_get(root, "b");
    assert_int_equal(b->kind, YN_MAP);
    const ynode *c = ynode_get(b, "c");
    assert_int_equal(c->kind, YN_SEQ);
    assert_int_equal(c->n, 2);
    assert_int_equal(c->loc.line, 3);
    assert_int_equal(c->loc.col, 6);
    assert_int_equal(c->items[1]->loc.col, 10);
    assert_string_equal(c->items[1]->str, "y");
    ynode_free(root);
}

static void test_set_path_creates_maps(void **state) {
    (void)state;
    ynode *root = NULL, *v = NULL;
    ps_err err = {{0}};
    assert_int_equal(ynode_load_string("a: {b: 1}\n", "t", &root, &err), 0);
    assert_int_equal(ynode_load_string("7", "--set", &v, &err), 0);
    assert_int_equal(ynode_set_path(root, "x.y.z", v, &err), 0);
    assert_string_equal(ynode_get(ynode_get(ynode_get(root, "x"), "y"), "z")->str, "7");
    assert_int_equal(ynode_load_string("2", "--set", &v, &err), 0);
    assert_int_equal(ynode_set_path(root, "a.b", v, &err), 0);
    assert_string_equal(ynode_get(ynode_get(root, "a"), "b")->str, "2");
    ynode_free(root);
}

static void test_recursive_alias_is_an_error(void **state) {
    (void)state;
    ynode *root = NULL;
    ps_err err = {{0}};
    /* deep nesting must not overflow the stack */
    char deep[400];
    int o = 0;
    for (int i = 0; i < 100; i++)
        deep[o++] = '[';
    for (int i = 0; i < 100; i++)
        deep[o++] = ']';
    deep[o] = 0;
    assert_int_not_equal(ynode_load_string(deep, "deep.yaml", &root, &err), 0);
    tu_contains(err.msg, "deep.yaml:", "nesting deeper than", NULL);
}

/* Billion laughs: nine levels of nine aliases under a key nobody reads. It
 * must stop at the alias that crosses the node budget, without expanding. */
static void test_alias_bomb_fails_fast(void **state) {
    (void)state;
    char bomb[2048];
    int o = snprintf(bomb, sizeof bomb,
                     "unused:\n  a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (char c = 'b'; c <= 'i'; c++) {
        o += snprintf(bomb + o, sizeof bomb - (size_t)o, "  %c: &%c [", c, c);
        for (int i = 0; i < 9; i++)
            o += snprintf(bomb + o, sizeof bomb - (size_t)o, "%s*%c", i ? ", " : "", c - 1);
        o += snprintf(bomb + o, sizeof bomb - (size_t)o, "]\n");
    }
    snprintf(bomb + o, sizeof bomb - (size_t)o, "model: tiny-1m\n");
    double t0 = now_s();
    const char *msg = load_error(bomb);
    double dt = now_s() - t0;
    /* 9^6 * 10 nodes pass the 1,000,000 budget at h's first alias (line 8) */
    tu_contains(msg, "t.yaml:8:", "more than 1000000 values", "each alias", NULL);
    if (dt > 0.5) fail_msg("alias bomb took %.3f s", dt);
}

/* 100,000 nested '[' used to take ~54 s before the depth error. */
static void test_deep_nesting_fails_fast(void **state) {
    (void)state;
    size_t n = 100000;
    char *deep = malloc(n + 1);
    assert_non_null(deep);
    memset(deep, '[', n);
    deep[n] = 0;
    double t0 = now_s();
    tu_contains(load_error(deep), "t.yaml:1:66:", "nesting deeper than 64 levels", NULL);
    double dt = now_s() - t0;
    free(deep);
    if (dt > 0.5) fail_msg("deep nesting took %.3f s", dt);
    /* 64 levels are fine, 65 are not; an alias counts the levels it repeats */
    char ok[200];
    memset(ok, '[', 65);
    memset(ok + 65, ']', 65);
    ok[130] = 0;
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_equal(ynode_load_string(ok, "t.yaml", &root, &err), 0);
    ynode_free(root);
    char deep_alias[400];
    int o = snprintf(deep_alias, sizeof deep_alias, "a: &x ");
    for (int i = 0; i < 62; i++)
        deep_alias[o++] = '['; /* 61 levels below a */
    for (int i = 0; i < 62; i++)
        deep_alias[o++] = ']';
    snprintf(deep_alias + o, sizeof deep_alias - (size_t)o, "\nb: {c: {d: {e: {f: *x}}}}\n");
    tu_contains(load_error(deep_alias), "t.yaml:2:", "nesting deeper than 64 levels", NULL);
}

static void test_aliases(void **state) {
    (void)state;
    ynode *root = NULL, *v = NULL;
    ps_err err = {{0}};
    assert_int_equal(
        ynode_load_string("a: &x {b: 1, c: [2]}\nd: *x\ne: &x 5\nf: *x\n", "t.yaml", &root, &err),
        0);
    const ynode *d = ynode_get(root, "d");
    assert_int_equal(d->kind, YN_MAP);
    assert_string_equal(ynode_get(d, "b")->str, "1");
    assert_int_equal(d->loc.line, 1); /* the alias is the anchored value, with its location */
    assert_string_equal(ynode_get(root, "f")->str, "5"); /* the latest &x */
    /* changing d.b through --set leaves a.b alone */
    assert_int_equal(ynode_load_string("7", "--set", &v, &err), 0);
    assert_int_equal(ynode_set_path(root, "d.b", v, &err), 0);
    assert_string_equal(ynode_get(ynode_get(root, "d"), "b")->str, "7");
    assert_string_equal(ynode_get(ynode_get(root, "a"), "b")->str, "1");
    ynode_free(root);
    tu_contains(load_error("a: &x [1, *x]\n"), "t.yaml:1:11:", "recursive alias", "*x", NULL);
    tu_contains(load_error("a: *nothing\n"), "t.yaml:1:4:", "found *nothing", NULL);
}

/* What the event-built tree keeps from the document-built one: key rules,
 * nulls, the plain flag. */
static void test_keys_nulls_and_plain(void **state) {
    (void)state;
    tu_contains(load_error("{[1]: 2}"), "t.yaml:1:2:", "expected a plain key, found a list", NULL);
    tu_contains(load_error("? {a: 1}\n: 2\n"),
                "t.yaml:1:3:", "expected a plain key, found a mapping", NULL);
    tu_contains(load_error("a: &m {b: 1}\n*m : 2\n"),
                "t.yaml:2:1:", "expected a plain key, found a mapping", NULL);
    tu_contains(load_error("a: 1\nb: 2\na: 3\n"), "t.yaml:3:1:", "a: duplicate key",
                "first given at t.yaml:1:1", NULL);
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_equal(ynode_load_string("k: &k name\n*k : 1\nn1: ~\nn2:\nn3: null\ns: \"null\"\n"
                                       "q: 'x'\np: x\n",
                                       "t.yaml", &root, &err),
                     0);
    assert_string_equal(ynode_get(root, "name")->str, "1");
    assert_int_equal(ynode_get(root, "n1")->kind, YN_NULL);
    assert_int_equal(ynode_get(root, "n2")->kind, YN_NULL);
    assert_int_equal(ynode_get(root, "n3")->kind, YN_NULL);
    assert_int_equal(ynode_get(root, "s")->kind, YN_SCALAR);
    assert_int_equal(ynode_get(root, "q")->plain, 0);
    assert_int_equal(ynode_get(root, "p")->plain, 1);
    assert_int_equal(ynode_get(root, "p")->loc.line, 8);
    assert_int_equal(ynode_get(root, "p")->loc.col, 4);
    assert_int_equal(root->key_locs[7].line, 8);
    ynode_free(root);
}

static void test_second_document_is_an_error(void **state) {
    (void)state;
    tu_contains(load_error("a: 1\n---\nb: [\n"), "t.yaml:2:1:", "found a second one", NULL);
    tu_contains(load_error("a: 1\n...\n---\nb: 2\n"), "t.yaml:3:1:", "found a second one", NULL);
    tu_contains(load_error("a: 1\n...\nb: 2\n"), "t.yaml:3:1:", "not valid YAML", NULL);
    tu_contains(load_error("a: 1\n---\n"), "t.yaml:2:1:", "found a second one", NULL);
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_equal(ynode_load_string("---\na: 1\n...\n# end\n", "t.yaml", &root, &err), 0);
    ynode_free(root);
}

static void test_nul_in_text_is_an_error(void **state) {
    (void)state;
    tu_contains(load_error("{\"model_type\": \"llama\\u0000x\"}"),
                "t.yaml:1:16:", "found a NUL (\\u0000) after \"llama\"", NULL);
    tu_contains(load_error("\"a\\0b\": 1\n"), "t.yaml:1:1:", "NUL", NULL); /* in a key */
    /* a raw NUL byte, through the entry point that takes a length */
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_not_equal(ynode_load_bytes("a: 1\nb: x\0y\n", 13, "t.yaml", NULL, &root, &err), 0);
    tu_contains(err.msg, "t.yaml:2:5:", "at byte offset 9", NULL);
}

static void test_bad_utf8_is_located(void **state) {
    (void)state;
    tu_contains(load_error("a: 1\nbb: \"x\xff\"\n"), "t.yaml:2:7:", "invalid leading UTF-8", "0xFF",
                "at byte offset 11", NULL);
    /* columns count characters: the \xc3\xa9 before the bad byte is one */
    tu_contains(load_error("a: \"\xc3\xa9\xff\"\n"), "t.yaml:1:6:", "at byte offset 6", NULL);
}

static void test_tags(void **state) {
    (void)state;
    tu_contains(load_error("a: !custom 3\n"), "t.yaml:1:4:", "found the tag \"!custom\"", NULL);
    tu_contains(load_error("a: !!binary aGk=\n"), "t.yaml:1:4:", "\"!!binary\"", NULL);
    tu_contains(load_error("a: !!map [1]\n"), "expected no tag (or !!seq)", NULL);
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_equal(ynode_load_string("a: !!str 32\nb: \"32\"\nc: 32\nd: !!int \"32\"\n"
                                       "e: !!str\nf: !!map {g: !!seq [!!null ~]}\n",
                                       "t.yaml", &root, &err),
                     0);
    int64_t v;
    double x;
    assert_int_equal(yget_int(root, "", "c", true, 1, 100, &v, &err), 0);
    assert_int_equal(v, 32);
    assert_int_equal(yget_int(root, "", "d", true, 1, 100, &v, &err), 0);
    assert_int_not_equal(yget_int(root, "", "a", true, 1, 100, &v, &err), 0);
    tu_contains(err.msg, "t.yaml:1:4:", "a: expected an integer from 1 to 100",
                "found the string \"32\"", NULL);
    assert_int_not_equal(yget_quantity(root, "", "b", true, UNIT_NONE, 0, &x, &err), 0);
    tu_contains(err.msg, "t.yaml:2:4:", "b: expected a number, found the string \"32\"", NULL);
    assert_int_not_equal(yget_quantity(root, "", "a", true, UNIT_BYTES, 0, &x, &err), 0);
    tu_contains(err.msg, "expected a size", "found the string \"32\"", NULL);
    assert_int_equal(ynode_get(root, "e")->kind, YN_SCALAR); /* !!str of nothing is "" */
    assert_string_equal(ynode_get(root, "e")->str, "");
    ynode_free(root);
    /* a quantity with its unit may be quoted */
    assert_int_equal(ynode_load_string("m: \"80 GiB\"\nn: 80 GiB\n", "t.yaml", &root, &err), 0);
    assert_int_equal(yget_quantity(root, "", "m", true, UNIT_BYTES, 0, &x, &err), 0);
    assert_true(x == 80.0 * 1073741824.0);
    assert_int_equal(yget_quantity(root, "", "n", true, UNIT_BYTES, 0, &x, &err), 0);
    ynode_free(root);
}

static void test_size_limits(void **state) {
    (void)state;
    ynode *root = NULL;
    ps_err err = {{0}};
    ynode_limits small = {.max_bytes = 16, .max_nodes = 5, .max_depth = 2};
    assert_int_not_equal(
        ynode_load_bytes("a: [1, 2, 3, 4, 5, 6]\n", 22, "t.yaml", &small, &root, &err), 0);
    tu_contains(err.msg, "t.yaml:", "expected at most 16 bytes", "found 22", NULL);
    assert_int_not_equal(ynode_load_bytes("a: [1, 2, 3]\n", 13, "t.yaml", &small, &root, &err), 0);
    tu_contains(err.msg, "t.yaml:1:11:", "more than 5 values", NULL);
    assert_int_not_equal(ynode_load_bytes("[[[1]]]", 7, "t.yaml", &small, &root, &err), 0);
    tu_contains(err.msg, "t.yaml:1:4:", "nesting deeper than 2 levels", NULL);
    /* a file over the bound is refused before it is read */
    char dir[] = "/tmp/parasim-yaml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/big.yaml", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("a: [1, 2, 3, 4, 5, 6]\n", f);
    fclose(f);
    assert_int_not_equal(ynode_load_file_limits(path, &small, &root, &err), 0);
    tu_contains(err.msg, path, "expected at most 16 bytes", "found 22", NULL);
    assert_int_equal(ynode_load_file(path, &root, &err), 0);
    ynode_free(root);
    unlink(path);
    rmdir(dir);
}

/* A FIFO must be refused at once (it used to block until a writer came), a
 * device without reading it forever, a directory and an unreadable path with
 * the real reason. */
static void test_files_that_are_not_specs(void **state) {
    (void)state;
    ynode *root = NULL;
    ps_err err = {{0}};
    char dir[] = "/tmp/parasim-yaml-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char fifo[128];
    snprintf(fifo, sizeof fifo, "%s/spec.yaml", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    double t0 = now_s();
    assert_int_not_equal(ynode_load_file(fifo, &root, &err), 0);
    if (now_s() - t0 > 1.0) fail_msg("a FIFO took %.3f s", now_s() - t0);
    tu_contains(err.msg, fifo, "expected a regular file, found a FIFO", NULL);
    unlink(fifo);
    rmdir(dir);
    assert_int_not_equal(ynode_load_file("/dev/zero", &root, &err), 0);
    tu_contains(err.msg, "/dev/zero: expected a regular file, found a character device", NULL);
    assert_int_not_equal(ynode_load_file("/tmp", &root, &err), 0);
    tu_contains(err.msg, "/tmp: expected a YAML or JSON file, found a directory", NULL);
    /* tests run as root, which reads chmod 000 files: a path through a file
     * gives another reason than "no such file" */
    assert_int_not_equal(ynode_load_file("tests/test_yaml.c/x.yaml", &root, &err), 0);
    tu_contains(err.msg, "tests/test_yaml.c/x.yaml: cannot open: Not a directory", NULL);
    char out[256];
    ps_loc loc;
    ps_loc_set(&loc, "plan.yaml", 1, 8);
    assert_int_not_equal(spec_path_resolve("tests/test_yaml.c/x.yaml", "models", NULL, &loc,
                                           "model", out, sizeof out, &err),
                         0);
    tu_contains(err.msg,
                "plan.yaml:1:8: model:", "cannot read tests/test_yaml.c/x.yaml: Not a directory",
                NULL);
    assert_int_not_equal(
        spec_path_resolve("no-such-model", "models", NULL, &loc, "model", out, sizeof out, &err),
        0);
    tu_contains(err.msg, "no readable file at:", "no-such-model.yaml", NULL);
}

/* A 4 KiB path keeps the message's reason: the middle of the path is elided,
 * its start and file name kept. */
static void test_long_path_keeps_reason(void **state) {
    (void)state;
    char path[4200];
    int o = snprintf(path, sizeof path, "/tmp");
    while (o < 4000)
        o += snprintf(path + o, sizeof path - (size_t)o, "/%s", "dir-of-a-very-long-path");
    snprintf(path + o, sizeof path - (size_t)o, "/plan.yaml");
    ynode *root = NULL;
    ps_err err = {{0}};
    assert_int_not_equal(ynode_load_file(path, &root, &err), 0);
    tu_contains(err.msg, "/tmp/dir-of-a-very-long-path/", "...", "/plan.yaml: cannot open:", NULL);
    assert_true(strstr(err.msg, "No such file") || strstr(err.msg, "too long"));
    char out[256];
    ps_loc loc;
    ps_loc_set(&loc, path, 3, 7); /* a location in a file with a long name */
    assert_true(strlen(loc.file) < PS_LOC_FILE_MAX);
    assert_int_not_equal(
        spec_path_resolve(path, "models", path, &loc, "model", out, sizeof out, &err), 0);
    tu_contains(err.msg, "/tmp/dir-of", "/plan.yaml:3:7: model: expected the name of a spec",
                "no readable file at:", NULL);
    assert_true(strstr(err.msg, "/plan.yaml (") || strstr(err.msg, "/plan.yaml)"));
}

static void test_quantities(void **state) {
    (void)state;
    double v;
    ps_err err;
    assert_int_equal(yget_parse_quantity("80 GiB", UNIT_BYTES, &v, &err), 0);
    assert_true(v == 80.0 * 1073741824.0);
    assert_int_equal(yget_parse_quantity("81559 MiB", UNIT_BYTES, &v, &err), 0);
    assert_true(v == 81559.0 * 1048576.0);
    assert_int_equal(yget_parse_quantity("450 GB/s", UNIT_BYTES_PER_S, &v, &err), 0);
    assert_true(v == 450e9);
    assert_int_equal(yget_parse_quantity("400 Gbit/s", UNIT_BYTES_PER_S, &v, &err), 0);
    assert_true(v == 50e9);
    assert_int_equal(yget_parse_quantity("3 us", UNIT_SECONDS, &v, &err), 0);
    assert_true(v == 3e-6);
    assert_int_equal(yget_parse_quantity("989.4 TFLOP/s", UNIT_FLOPS_PER_S, &v, &err), 0);
    assert_true(v == 989.4e12);
    /* a long text is refused, never cut short: "2" + 130 spaces + "GiB" is not 2 bytes */
    char spaced[160];
    snprintf(spaced, sizeof spaced, "2%130sGiB", "");
    assert_int_equal(yget_parse_quantity(spaced, UNIT_BYTES, &v, &err), -1);
    assert_non_null(strstr(err.msg, "(over 127 characters)"));
    assert_int_equal(yget_parse_quantity("1_000", UNIT_BYTES, &v, &err), 0);
    assert_true(v == 1000);
    assert_int_not_equal(yget_parse_quantity("80 GB/s", UNIT_BYTES, &v, &err), 0);
    tu_contains(err.msg, "expected a size", "unknown unit \"GB/s\"", NULL);
    assert_int_not_equal(yget_parse_quantity("lots", UNIT_SECONDS, &v, &err), 0);
    tu_contains(err.msg, "expected a time", "found \"lots\"", NULL);
    /* finite after the unit, not only before */
    assert_int_not_equal(yget_parse_quantity("1e300 PFLOP/s", UNIT_FLOPS_PER_S, &v, &err), 0);
    tu_contains(err.msg, "expected a rate", "found \"1e300 PFLOP/s\"", "too large", NULL);
    assert_int_not_equal(yget_parse_quantity("1e308 TiB", UNIT_BYTES, &v, &err), 0);
    assert_int_not_equal(yget_parse_quantity("1e400", UNIT_NONE, &v, &err), 0);
    assert_int_not_equal(yget_parse_quantity("nan", UNIT_NONE, &v, &err), 0);
    assert_int_not_equal(yget_parse_quantity("-inf s", UNIT_SECONDS, &v, &err), 0);
    assert_int_equal(yget_parse_quantity("1e300 ns", UNIT_SECONDS, &v, &err), 0);
}

static void test_integers(void **state) {
    (void)state;
    int64_t v;
    assert_int_equal(yget_parse_int("128_256", &v), 0);
    assert_int_equal(v, 128256);
    assert_int_equal(yget_parse_int("-3", &v), 0);
    assert_int_equal(v, -3);
    assert_int_not_equal(yget_parse_int("3.5", &v), 0);
    assert_int_not_equal(yget_parse_int("", &v), 0);
    assert_int_not_equal(yget_parse_int("99999999999999999999", &v), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_locations),
        cmocka_unit_test(test_set_path_creates_maps),
        cmocka_unit_test(test_recursive_alias_is_an_error),
        cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_alias_bomb_fails_fast),
        cmocka_unit_test(test_deep_nesting_fails_fast),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_keys_nulls_and_plain),
        cmocka_unit_test(test_second_document_is_an_error),
        cmocka_unit_test(test_nul_in_text_is_an_error),
        cmocka_unit_test(test_bad_utf8_is_located),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_files_that_are_not_specs),
        cmocka_unit_test(test_long_path_keeps_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
