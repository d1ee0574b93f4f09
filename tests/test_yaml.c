/* test_yaml.c — the YAML tree keeps locations, rejects duplicates, applies
 * --set paths; quantities parse with their units (docs/specs.md). */
#include "tu.h"
#include "yget.h"
#include "ynode.h"

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
    for (int i = 0; i < 100; i++) deep[o++] = '[';
    for (int i = 0; i < 100; i++) deep[o++] = ']';
    deep[o] = 0;
    assert_int_not_equal(ynode_load_string(deep, "deep.yaml", &root, &err), 0);
    tu_contains(err.msg, "deep.yaml:", "nesting deeper than", NULL);
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
    assert_int_equal(yget_parse_quantity("1_000", UNIT_BYTES, &v, &err), 0);
    assert_true(v == 1000);
    assert_int_not_equal(yget_parse_quantity("80 GB/s", UNIT_BYTES, &v, &err), 0);
    tu_contains(err.msg, "expected a size", "unknown unit \"GB/s\"", NULL);
    assert_int_not_equal(yget_parse_quantity("lots", UNIT_SECONDS, &v, &err), 0);
    tu_contains(err.msg, "expected a time", "found \"lots\"", NULL);
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
        cmocka_unit_test(test_locations),     cmocka_unit_test(test_set_path_creates_maps),
        cmocka_unit_test(test_recursive_alias_is_an_error), cmocka_unit_test(test_quantities),
        cmocka_unit_test(test_integers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
