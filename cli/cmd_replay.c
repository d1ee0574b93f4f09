/* cmd_replay.c — `parasim replay`: walk an execution plan and print what it
 * predicts: per role the memory per category (end of step 0, peak and the op
 * where it happens), the communication per collective and the time of each
 * step (docs/plan-format.md §5). */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "base/fmt.h"
#include "base/jsonw.h"
#include "program/program.h"
#include "program/replay.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: parasim replay PROGRAM.json [--format table|json] [-o FILE]\n"
            "\n"
            "Replay an execution plan written by `parasim emit`: per rank role, the live bytes\n"
            "per memory category at the end of step 0 and at their peak (with the op where it\n"
            "happens), the bytes of each collective, and the event-driven time of each step\n"
            "(a compute and a communication stream per rank; docs/plan-format.md §5). The\n"
            "JSON also holds the whole per-op timeline.\n"
            "\n"
            "  --format FMT     table (default, for people) or json\n"
            "  -o FILE          write to FILE atomically instead of standard output\n");
}

/* "op 41: bwd head (step 0, mb 0)" */
static const char *op_where(const prog_role *r, int32_t i, char *buf, int len) {
    if (i < 0) return snprintf(buf, (size_t)len, "-"), buf;
    const prog_op *o = &r->ops[i];
    const char *what = o->kind == OP_ALLOC || o->kind == OP_FREE ? prog_buf_names[o->buf] : "";
    const char *unit = o->unit >= 0 ? r->units[o->unit].name : "";
    char mb[24] = "";
    if (o->mb >= 0) snprintf(mb, sizeof mb, ", mb %d", (int)o->mb);
    snprintf(buf, (size_t)len, "op %d: %s%s%s%s%s (step %d%s)", (int)i, prog_kind_names[o->kind],
             what[0] ? " " : "", what, unit[0] ? " " : "", unit, (int)o->step, mb);
    return buf;
}

static void table_memory(FILE *f, const prog_role *r, const replay_role *rr) {
    char a[32], b[32], w[128];
    int64_t end_total = 0;
    fprintf(f, "  %-14s %14s %14s  %s\n", "memory", "end of step 0", "peak", "where the peak is");
    for (int c = 0; c < MEM_COUNT; c++) {
        const int64_t end = rr->n_steps ? rr->steps[0].end_bytes[c] : 0;
        end_total += end;
        fprintf(f, "  %-14s %14s %14s  %s\n", mem_cat_names[c], fmt_bytes(end, a, sizeof a),
                fmt_bytes(rr->peak[c].bytes, b, sizeof b), op_where(r, rr->peak[c].op, w, sizeof w));
    }
    fprintf(f, "  %-14s %14s %14s  %s\n", "total", fmt_bytes(end_total, a, sizeof a),
            fmt_bytes(rr->peak_total.bytes, b, sizeof b),
            op_where(r, rr->peak_total.op, w, sizeof w));
}

static void table_comm(FILE *f, const replay_role *rr) {
    char a[32], b[32], name[64];
    const int64_t k = rr->n_steps > 0 ? rr->n_steps : 1;
    int64_t sent[GROUP_COUNT] = {0};
    if (!rr->n_colls) {
        fprintf(f, "\n  no collectives\n");
        return;
    }
    fprintf(f, "\n  %-32s %8s %14s %14s %12s\n", "communication per step", "calls", "size S",
            "sent", "seconds");
    for (int i = 0; i < rr->n_colls; i++) {
        const replay_coll *c = &rr->colls[i];
        static const char *const phases[] = {"fwd", "bwd", "grads", "params", "p2p"};
        snprintf(name, sizeof name, "%s %s (%s)", comm_group_names[c->group],
                 comm_coll_names[c->coll], phases[c->phase]);
        fprintf(f, "  %-32s %8lld %14s %14s %12.6g\n", name, (long long)(c->calls / k),
                fmt_bytes(c->bytes / k, a, sizeof a), fmt_bytes(c->sent_bytes / k, b, sizeof b),
                c->seconds / (double)k);
        sent[c->group] += c->sent_bytes / k;
    }
    for (int g = 0; g < GROUP_COUNT; g++)
        if (sent[g])
            fprintf(f, "  %-32s %8s %14s %14s\n", comm_group_names[g], "", "",
                    fmt_bytes(sent[g], a, sizeof a));
}

static void table_time(FILE *f, const program *p, const replay_role *rr) {
    fprintf(f, "\n  time (event-driven; data-parallel overlap %s)\n", p->overlap_dp ? "on" : "off");
    for (int32_t k = 0; k < rr->n_steps; k++) {
        const replay_step *s = &rr->steps[k];
        fprintf(f, "  step %-4d %12.6g s   compute %.6g s, communication %.6g s, compute idle %.6g s\n",
                (int)k, s->seconds, s->compute_s, s->comm_s, s->seconds - s->compute_s);
    }
}

static void write_table(FILE *f, const char *path, const program *p, const replay_result *res) {
    char a[32], b[32];
    fprintf(f, "%s: %s (model %s, cluster %s)\n", path, p->plan_name, p->model_name,
            p->cluster_name);
    fprintf(f, "%d steps; dp %lld, ZeRO-%d; %lld micro-batches of %lld x %lld tokens; recompute %s\n",
            (int)p->steps, (long long)p->dp, p->zero, (long long)p->micro_batches,
            (long long)p->micro_batch, (long long)p->seq, plan_recompute_names[p->recompute]);
    for (int32_t i = 0; i < p->n_roles; i++) {
        const prog_role *r = &p->roles[i];
        const replay_role *rr = &res->roles[i];
        fprintf(f, "\nrole %d: stage %d, tp rank %d, cp rank %d, %d ranks; %d ops; flat space %s "
                   "elements, shard %s\n",
                (int)i, (int)r->stage, (int)r->tp_rank, (int)r->cp_rank, (int)r->n_ranks,
                (int)r->n_ops, fmt_count(r->flat_elems, a, sizeof a),
                fmt_count(r->shard_elems, b, sizeof b));
        table_memory(f, r, rr);
        table_comm(f, rr);
        table_time(f, p, rr);
    }
}

/* One array item on its own line, as jsonw indents its items. */
static void put_line(jsonw *w, const char *text) {
    fputs(w->first[w->depth] ? "\n" : ",\n", w->f);
    w->first[w->depth] = false;
    for (int i = 0; i < w->depth; i++) fputs("  ", w->f);
    fputs(text, w->f);
}

static void json_timeline(jsonw *w, const prog_role *r, const replay_role *rr) {
    char line[1024];
    jsonw_arr(w, "timeline");
    for (int32_t i = 0; i < rr->n_ops; i++) {
        const replay_op *t = &rr->ops[i];
        int n = snprintf(line, sizeof line, "{\"op\": %d, \"kind\": \"%s\", \"step\": %d, "
                                            "\"start\": %.9g, \"end\": %.9g",
                         (int)i, prog_kind_names[r->ops[i].kind], (int)r->ops[i].step,
                         t->start_s, t->end_s);
        for (int c = 0; c < MEM_COUNT && n < (int)sizeof line; c++)
            n += snprintf(line + n, sizeof line - (size_t)n, ", \"%s\": %lld", mem_cat_names[c],
                          (long long)t->bytes[c]);
        if (n < (int)sizeof line)
            snprintf(line + n, sizeof line - (size_t)n, ", \"peak_total\": %lld}",
                     (long long)t->peak_total);
        put_line(w, line);
    }
    jsonw_arr_end(w);
}

static void json_role(jsonw *w, const prog_role *r, const replay_role *rr) {
    jsonw_obj(w, NULL);
    jsonw_int(w, "stage", r->stage);
    jsonw_int(w, "tp_rank", r->tp_rank);
    jsonw_int(w, "cp_rank", r->cp_rank);
    jsonw_obj(w, "end_of_step0");
    for (int c = 0; c < MEM_COUNT; c++)
        jsonw_int(w, mem_cat_names[c], rr->n_steps ? rr->steps[0].end_bytes[c] : 0);
    jsonw_obj_end(w);
    jsonw_obj(w, "peak");
    for (int c = 0; c <= MEM_COUNT; c++) {
        const replay_peak *pk = c < MEM_COUNT ? &rr->peak[c] : &rr->peak_total;
        jsonw_obj(w, c < MEM_COUNT ? mem_cat_names[c] : "total");
        jsonw_int(w, "bytes", pk->bytes);
        jsonw_int(w, "op", pk->op);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
    jsonw_arr(w, "comm");
    for (int i = 0; i < rr->n_colls; i++) {
        static const char *const phases[] = {"fwd", "bwd", "grads", "params", "p2p"};
        const replay_coll *c = &rr->colls[i];
        jsonw_obj(w, NULL);
        jsonw_str(w, "group", comm_group_names[c->group]);
        jsonw_str(w, "coll", comm_coll_names[c->coll]);
        jsonw_str(w, "phase", phases[c->phase]);
        jsonw_int(w, "calls", c->calls);
        jsonw_int(w, "bytes", c->bytes);
        jsonw_int(w, "sent_bytes", c->sent_bytes);
        jsonw_num(w, "seconds", c->seconds);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_arr(w, "steps");
    for (int32_t k = 0; k < rr->n_steps; k++) {
        const replay_step *s = &rr->steps[k];
        jsonw_obj(w, NULL);
        jsonw_num(w, "seconds", s->seconds);
        jsonw_num(w, "end_s", s->end_s);
        jsonw_num(w, "compute_s", s->compute_s);
        jsonw_num(w, "comm_s", s->comm_s);
        jsonw_obj(w, "sent_bytes");
        for (int g = 0; g < GROUP_COUNT; g++) jsonw_int(w, comm_group_names[g], s->sent_bytes[g]);
        jsonw_obj_end(w);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
    jsonw_num(w, "end_s", rr->end_s);
    json_timeline(w, r, rr);
    jsonw_obj_end(w);
}

static void write_json(FILE *f, const char *path, const program *p, const replay_result *res) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    jsonw_str(&w, "program", path);
    jsonw_str(&w, "plan", p->plan_name);
    jsonw_int(&w, "steps", p->steps);
    jsonw_bool(&w, "overlap_dp", p->overlap_dp);
    jsonw_num(&w, "end_s", res->end_s);
    jsonw_arr(&w, "roles");
    for (int32_t i = 0; i < p->n_roles; i++) json_role(&w, &p->roles[i], &res->roles[i]);
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}

int cmd_replay(int argc, char **argv) {
    const char *path = NULL, *out_path = NULL, *format = "table";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--format") || !strncmp(a, "--format=", 9)) {
            format = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : "");
            if (strcmp(format, "table") && strcmp(format, "json"))
                return cli_fail("replay", CLI_USAGE,
                                "--format: expected table or json, found \"%s\"", format);
        } else if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
            if (i + 1 >= argc) return cli_fail("replay", CLI_USAGE, "%s: expected a file name", a);
            out_path = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            return cli_fail("replay", CLI_USAGE,
                            "unknown option \"%s\" (see parasim replay --help)", a);
        } else if (path) {
            return cli_fail("replay", CLI_USAGE, "expected one program file, found \"%s\" and \"%s\"",
                            path, a);
        } else {
            path = a;
        }
    }
    if (!path)
        return cli_fail("replay", CLI_USAGE,
                        "expected a program file (written by parasim emit PLAN.yaml -o FILE)");
    if (cli_check_not_input("replay", path, out_path)) return CLI_USAGE;
    ps_err err = {{0}};
    program p;
    replay_result res;
    memset(&res, 0, sizeof res);
    if (program_load_json(path, &p, &err)) return cli_fail("replay", CLI_FAIL, "%s", err.msg);
    int rc = CLI_OK;
    cli_out out;
    if (replay_program(&p, &res, &err) || cli_out_open(&out, out_path, &err)) {
        rc = cli_fail("replay", CLI_FAIL, "%s", err.msg);
    } else {
        if (!strcmp(format, "json"))
            write_json(out.f, path, &p, &res);
        else
            write_table(out.f, path, &p, &res);
        if (cli_out_close(&out, &err)) rc = cli_fail("replay", CLI_FAIL, "%s", err.msg);
    }
    replay_free(&res);
    program_free(&p);
    return rc;
}
