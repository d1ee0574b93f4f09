/* report_sweep.c — a sweep's ranking and tallies as a table, CSV or JSON
 * (see report.h; fields in docs/sweep.md). */
#include "base/fmt.h"
#include "report/report.h"

static void space_list(FILE *f, const char *name, const sweep_list *l, const char *const *names) {
    fprintf(f, " %s {", name);
    for (int i = 0; i < l->n; i++) {
        if (names)
            fprintf(f, "%s%s", i ? "," : "", names[l->v[i]]);
        else
            fprintf(f, "%s%lld", i ? "," : "", (long long)l->v[i]);
    }
    fprintf(f, "}");
}

static const char *const bool_words[] = {"false", "true"};


void report_sweep_table(FILE *f, const sweep_spec *s, const sweep_rank *r, double seconds) {
    const plan_cfg *b = &s->base.cfg;
    const sweep_space *sp = &s->space;
    char n1[32], n2[32], n3[32], n4[32], n5[32];
    fprintf(f, "parasim sweep: %s\n", s->name);
    fprintf(f, "  %s on %lld x %s (%s); global batch %lld x seq %lld; %s\n", s->base.model.name,
            (long long)b->gpus, s->base.cluster.gpu_name, s->base.cluster.name,
            (long long)b->global_batch, (long long)b->seq, s->base.precision_name);
    fprintf(f, "  space:");
    space_list(f, "tp", &sp->tp, NULL);
    space_list(f, "pp", &sp->pp, NULL);
    space_list(f, "cp", &sp->cp, NULL);
    space_list(f, "zero", &sp->zero, NULL);
    space_list(f, "micro", &sp->micro, NULL);
    space_list(f, "recompute", &sp->recompute, plan_recompute_names);
    space_list(f, "schedule", &sp->schedule, plan_schedule_names);
    space_list(f, "virtual", &sp->virt, NULL);
    space_list(f, "sp", &sp->sp, bool_words);
    static const char *const offload_words[] = {"none", "optimizer", "activations", "both"};
    space_list(f, "offload", &sp->offload, offload_words);
    space_list(f, "overlap_dp", &sp->overlap_dp, bool_words);
    space_list(f, "overlap_tp", &sp->overlap_tp, bool_words);
    const bool moe = model_is_moe(&s->base.model.cfg);
    if (moe) { /* the expert layout (etp 0: as tp) */
        space_list(f, "ep", &sp->ep, NULL);
        space_list(f, "etp", &sp->etp, NULL);
    }
    if (b->distill.set) { /* logit distillation: the teacher and its axes */
        fprintf(f, "; teacher %s", s->base.teacher.name);
        space_list(f, "distill_placement", &sp->distill_placement, plan_distill_placement_names);
        space_list(f, "distill_top_k", &sp->distill_top_k, NULL);
    }
    fprintf(f, "; %d placement(s)\n", sp->n_placement);
    fprintf(f, "  %s points in %.2f s (%s points/s): %s fit, %s do not fit, %s invalid\n",
            fmt_count(r->points, n1, sizeof n1), seconds,
            fmt_count((int64_t)(seconds > 0 ? (double)r->points / seconds : 0), n2, sizeof n2),
            fmt_count(r->fit, n3, sizeof n3), fmt_count(r->no_fit, n4, sizeof n4),
            fmt_count(r->points - r->evaluated, n5, sizeof n5));
    if (!r->fit) {
        fprintf(f, "\nNo plan fits: see the rejections below, or widen the space.\n");
    } else if (!r->n) {
        fprintf(f, "\nBest predicted throughput %.0f tokens/s (--top 0: no ranking kept).\n",
                r->best_tokens_per_s);
    } else {
        fprintf(f, "\nTop %d plans by predicted throughput (each prediction once, docs/sweep.md)\n",
                r->n);
        fprintf(f, "  %4s %12s %9s %6s %9s %9s  %4s %3s %3s %3s %4s %3s %5s %-9s %-11s %2s "
                   "%-11s %-8s %s\n",
                "rank", "tokens/s", "step s", "MFU", "mem GiB", "headroom", "dp", "tp", "pp",
                "cp", "zero", "sp", "micro", "recompute", "schedule", "v", "offload", "overlap",
                moe ? "placement    ep etp" : "placement");
        for (int i = 0; i < r->n; i++) {
            const sweep_entry *e = &r->e[i];
            const plan_cfg *p = &e->cfg;
            const double gib = 1024.0 * 1024.0 * 1024.0;
            char ov[16], pl[32];
            fprintf(f, "  %4d %12s %9.4f %5.1f%% %9.2f %9.2f  %4lld %3lld %3lld %3lld %4d %3s %5lld "
                       "%-9s %-11s %2lld %-11s %-8s %s",
                    i + 1, fmt_count((int64_t)e->time.tokens_per_s, n1, sizeof n1), e->time.step,
                    100 * e->time.mfu, (double)e->peak_bytes / gib,
                    (double)(e->capacity_bytes - e->peak_bytes) / gib, (long long)p->dp,
                    (long long)p->tp, (long long)p->pp, (long long)p->cp, p->zero,
                    p->sp ? "on" : "off", (long long)p->micro_batch,
                    plan_recompute_names[p->recompute], plan_schedule_names[p->schedule],
                    (long long)p->virtual_stages, plan_offload_name(p),
                    plan_overlap_name(p, ov, sizeof ov), plan_placement_name(p, pl, sizeof pl));
            if (moe) fprintf(f, " %4lld %3lld", (long long)p->ep, (long long)plan_etp(p));
            if (b->distill.set)
                fprintf(f, "  teacher %s top-k %lld",
                        plan_distill_placement_names[p->distill.placement],
                        (long long)p->distill.top_k);
            fputc('\n', f);
            if (e->equiv.n) {
                char eq[600];
                fprintf(f, "       +%s equivalent: %s\n", fmt_count(e->equiv.n, n1, sizeof n1),
                        sweep_rank_equiv(e, eq, sizeof eq));
            }
            if (i + 1 < r->n) {
                char why[400];
                fprintf(f, "       beats #%d by %.1f%%: %s\n", i + 2,
                        100 * (e->time.tokens_per_s / r->e[i + 1].time.tokens_per_s - 1),
                        sweep_rank_why(e, &r->e[i + 1], why, sizeof why));
            }
        }
    }
    fprintf(f, "\nPoints by outcome\n  %-20s %12s  %s\n", "outcome", "points", "meaning");
    fprintf(f, "  %-20s %12s  %s\n", "fits", fmt_count(r->fit, n1, sizeof n1),
            "valid and within GPU memory (ranked)");
    fprintf(f, "  %-20s %12s  %s\n", "no-fit", fmt_count(r->no_fit, n1, sizeof n1),
            "valid, but the heaviest stage exceeds GPU memory");
    for (int k = 1; k < PLAN_REASON_COUNT; k++)
        if (r->rejected[k])
            fprintf(f, "  %-20s %12s  %s\n", plan_reason_id((plan_reason)k),
                    fmt_count(r->rejected[k], n1, sizeof n1), plan_reason_text((plan_reason)k));
}

void report_sweep_csv(FILE *f, const sweep_rank *r) {
    fprintf(f, "rank,tokens_per_s,step_s,mfu,hfu,peak_gib,headroom_gib,dp,tp,pp,cp,zero,sp,micro,"
               "recompute,schedule,virtual,placement,offload,overlap,equivalents,"
               "equivalent_values\n");
    for (int i = 0; i < r->n; i++) {
        const sweep_entry *e = &r->e[i];
        const plan_cfg *p = &e->cfg;
        const double gib = 1024.0 * 1024.0 * 1024.0;
        char pl[64], ov[16], eq[600];
        plan_placement_name(p, pl, sizeof pl);
        sweep_rank_equiv(e, eq, sizeof eq); /* no quote inside: field names and values only */
        fprintf(f,
                "%d,%.1f,%.6f,%.4f,%.4f,%.3f,%.3f,%lld,%lld,%lld,%lld,%d,%s,%lld,%s,%s,%lld,%s,%s,"
                "%s,%lld,\"%s\"\n",
                i + 1, e->time.tokens_per_s, e->time.step, e->time.mfu, e->time.hfu,
                (double)e->peak_bytes / gib, (double)(e->capacity_bytes - e->peak_bytes) / gib,
                (long long)p->dp, (long long)p->tp, (long long)p->pp, (long long)p->cp, p->zero,
                p->sp ? "true" : "false", (long long)p->micro_batch,
                plan_recompute_names[p->recompute], plan_schedule_names[p->schedule],
                (long long)p->virtual_stages, pl, plan_offload_name(p),
                plan_overlap_name(p, ov, sizeof ov), (long long)e->equiv.n, eq);
    }
}

/* "equivalents": how many, "equivalent_values": {field: [values that differ]}, and whether
 * every value was kept. */
static void json_equiv(jsonw *w, const sweep_entry *e) {
    const sweep_equiv *q = &e->equiv;
    bool complete = true;
    jsonw_int(w, "equivalents", q->n);
    jsonw_obj(w, "equivalent_values");
    for (int k = 0; k < SWEEP_FIELD_COUNT; k++) {
        if (!q->n_val[k]) continue;
        complete = complete && !q->more[k];
        jsonw_arr(w, sweep_field_names[k]);
        for (int i = 0; i < q->n_val[k]; i++) {
            char t[32];
            if (k == SWEEP_F_SP)
                jsonw_bool(w, NULL, q->val[k][i]);
            else if (k == SWEEP_F_RECOMPUTE || k == SWEEP_F_SCHEDULE ||
                     (k >= SWEEP_F_OFFLOAD && k <= SWEEP_F_PLACEMENT) ||
                     k == SWEEP_F_DISTILL_PLACEMENT)
                jsonw_str(w, NULL, sweep_field_text(k, q->val[k][i], t, sizeof t));
            else
                jsonw_int(w, NULL, q->val[k][i]);
        }
        jsonw_arr_end(w);
    }
    jsonw_obj_end(w);
    jsonw_bool(w, "equivalent_values_complete", complete);
}

void report_sweep_json(FILE *f, const sweep_spec *s, const sweep_rank *r, double seconds) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    jsonw_str(&w, "sweep", s->name);
    jsonw_str(&w, "model", s->base.model.name);
    jsonw_str(&w, "cluster", s->base.cluster.name);
    jsonw_int(&w, "gpus", s->base.cfg.gpus);
    jsonw_int(&w, "points", r->points);
    jsonw_num(&w, "seconds", seconds);
    jsonw_int(&w, "fit", r->fit);
    jsonw_int(&w, "no_fit", r->no_fit);
    jsonw_obj(&w, "rejected");
    for (int k = 1; k < PLAN_REASON_COUNT; k++)
        if (r->rejected[k]) jsonw_int(&w, plan_reason_id((plan_reason)k), r->rejected[k]);
    jsonw_obj_end(&w);
    jsonw_arr(&w, "top");
    for (int i = 0; i < r->n; i++) {
        const sweep_entry *e = &r->e[i];
        const plan_cfg *p = &e->cfg;
        char pl[64], why[400], ov[16];
        plan_placement_name(p, pl, sizeof pl);
        jsonw_obj(&w, NULL);
        jsonw_int(&w, "rank", i + 1);
        jsonw_num(&w, "tokens_per_s", e->time.tokens_per_s);
        jsonw_num(&w, "step_s", e->time.step);
        jsonw_num(&w, "mfu", e->time.mfu);
        jsonw_num(&w, "hfu", e->time.hfu);
        jsonw_int(&w, "peak_bytes", e->peak_bytes);
        jsonw_int(&w, "headroom_bytes", e->capacity_bytes - e->peak_bytes);
        jsonw_int(&w, "dp", p->dp);
        jsonw_int(&w, "tp", p->tp);
        jsonw_int(&w, "pp", p->pp);
        jsonw_int(&w, "cp", p->cp);
        jsonw_int(&w, "zero", p->zero);
        jsonw_bool(&w, "sp", p->sp);
        jsonw_int(&w, "micro", p->micro_batch);
        jsonw_str(&w, "recompute", plan_recompute_names[p->recompute]);
        jsonw_str(&w, "schedule", plan_schedule_names[p->schedule]);
        jsonw_int(&w, "virtual", p->virtual_stages);
        jsonw_str(&w, "placement", pl);
        jsonw_str(&w, "offload", plan_offload_name(p));
        jsonw_str(&w, "overlap", plan_overlap_name(p, ov, sizeof ov));
        if (p->distill.set) { /* logit distillation (docs/sweep.md) */
            jsonw_str(&w, "distill_placement", plan_distill_placement_names[p->distill.placement]);
            jsonw_int(&w, "distill_top_k", p->distill.top_k);
        }
        json_equiv(&w, e);
        if (i + 1 < r->n) jsonw_str(&w, "beats_next", sweep_rank_why(e, &r->e[i + 1], why, sizeof why));
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}
