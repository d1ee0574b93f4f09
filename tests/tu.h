/* tu.h — helpers shared by the cmocka tests: load specs and plans by name,
 * build plan text, and check error messages. */
#ifndef PS_TU_H
#define PS_TU_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "time/eval.h"
#include "spec/model.h"
#include "spec/plan.h"
#include "spec/spec_path.h"

/* The names in dir, sorted, one a line (ls -A), in a static buffer. */
static inline const char *tu_dir_list(const char *dir) {
    static char list[4096];
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -A %s", dir);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    size_t n = fread(list, 1, sizeof list - 1, ls);
    list[n] = 0;
    pclose(ls);
    return list;
}

/* Load models/<name>.yaml. */
static inline model_spec tu_model(const char *name) {
    model_spec m;
    char path[1024];
    ps_err err = {{0}};
    ps_loc loc;
    ps_loc_set(&loc, "test", 0, 0);
    if (spec_path_resolve(name, "models", NULL, &loc, "model", path, sizeof path, &err) ||
        model_load_file(path, &m, &err))
        fail_msg("loading model %s: %s", name, err.msg);
    return m;
}

/* Load a plan from text; fails the test on error. Caller frees. */
static inline plan_spec *tu_plan(const char *yaml) {
    plan_spec *s = calloc(1, sizeof *s);
    ps_err err = {{0}};
    assert_non_null(s);
    if (plan_load_text(yaml, "test.yaml", NULL, 0, s, &err)) fail_msg("plan: %s\n%s", err.msg, yaml);
    return s;
}

/* Load a plan that must fail; returns the message (static buffer). */
static inline const char *tu_plan_error(const char *yaml) {
    static ps_err err;
    plan_spec *s = calloc(1, sizeof *s);
    assert_non_null(s);
    memset(&err, 0, sizeof err);
    int rc = plan_load_text(yaml, "bad.yaml", NULL, 0, s, &err);
    free(s);
    if (!rc) fail_msg("expected an error for:\n%s", yaml);
    return err.msg;
}

/* Assert that msg contains every given fragment (NULL-terminated). */
static inline void tu_contains(const char *msg, ...) {
    va_list ap;
    va_start(ap, msg);
    for (const char *frag = va_arg(ap, const char *); frag; frag = va_arg(ap, const char *))
        if (!strstr(msg, frag)) fail_msg("message lacks \"%s\":\n  %s", frag, msg);
    va_end(ap);
}

/* A plan_cfg with the defaults plan_load uses, for module-level tests. */
static inline plan_cfg tu_cfg(int64_t dp, int64_t tp, int64_t pp, int64_t cp) {
    plan_cfg p;
    memset(&p, 0, sizeof p);
    plan_cfg_defaults(&p);
    p.dp = dp, p.tp = tp, p.pp = pp, p.cp = cp;
    p.gpus = dp * tp * pp * cp;
    p.global_batch = dp, p.micro_batch = 1, p.seq = 2048;
    p.schedule = SCHED_1F1B;
    p.virtual_stages = 1;
    plan_precision_preset("bf16-mixed", &p.precision);
    p.optimizer = OPT_ADAMW;
    return p;
}

#endif
