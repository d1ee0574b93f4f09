/* report_time.c — the step-time part of a plan report, as a table and as
 * JSON (see report.h; fields in docs/output.md). */
#include "base/fmt.h"
#include "cost/moe.h"
#include "report/report.h"

#include "cost/pipe.h"

#define BAR_WIDTH 30

static void part(FILE *f, const char *name, double s, double step) {
    char bar[BAR_WIDTH * 4 + 8];
    if (s <= 0) return;
    fprintf(f, "  %-26s %10.4f  %5.1f%%  %s\n", name, s, 100 * s / step,
            fmt_bar(s, step, BAR_WIDTH, bar, sizeof bar));
}

static const char *link_name(const coll_link *l) { return l->inter_node ? "inter-node" : "intra-node"; }

void report_time_table(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages,
                       const step_sim *sim) {
    const step_time *t = &r->time;
    const plan_cfg *p = &s->cfg;
    char n1[32], n2[32];
    fprintf(f, "\nStep time (docs/time.md): %.4f s; %s tokens/s (%s per GPU); MFU %.1f%%, HFU "
               "%.1f%%\n",
            t->step, fmt_count((int64_t)t->tokens_per_s, n1, sizeof n1),
            fmt_count((int64_t)(t->tokens_per_s / (double)p->gpus), n2, sizeof n2), 100 * t->mfu,
            100 * t->hfu);
    if (t->mfu > 1)
        fprintf(f, "  (MFU counts the full s x s attention square, as Megatron-LM and PaLM do; the "
                   "causal kernels execute half of it, so near peak MFU passes 100%%: HFU is the "
                   "utilisation; docs/memory.md §7)\n");
    fprintf(f, "  %-26s %10s  %6s\n", "part", "seconds", "share");
    part(f, "compute", t->compute, t->step);
    part(f, "pipeline bubble", t->bubble, t->step);
    for (int g = 0; g < GROUP_COUNT; g++) {
        char name[40];
        /* the expert groups only where a MoE plan has traffic on them */
        if (g >= GROUP_EP && t->exposed[g] == 0 && t->hidden[g] == 0) continue;
        snprintf(name, sizeof name, "exposed %s communication", comm_group_names[g]);
        part(f, name, t->exposed[g], t->step);
    }
    part(f, "optimizer step", t->optimizer, t->step);
    /* distillation, separate: the teacher's or the transfer's time beyond the student's */
    if (r->distill.set && r->distill.placement == DISTILL_SEPARATE)
        part(f, "exposed teacher (distill)", r->distill.exposed_s, t->step);
    fprintf(f, "  hidden behind compute:");
    for (int g = 0; g < GROUP_COUNT; g++)
        if (t->hidden[g] > 0) fprintf(f, " %s %.4f s;", comm_group_names[g], t->hidden[g]);
    fprintf(f, " pace set by stage %lld\n", (long long)t->slowest);
    if (stages) {
        const stage_time *x = &stages[t->slowest].time;
        fprintf(f, "  per %s on stage %lld: forward %.2f ms, backward %.2f ms, weight grad "
                   "%.2f ms (incl. exposed comm)\n",
                pipe_chunks(p) > 1 && p->pp > 1 ? "model-chunk micro-batch" : "micro-batch",
                (long long)t->slowest, 1e3 * x->f, 1e3 * x->b, 1e3 * x->w);
    }
    fprintf(f, "  links:");
    const int64_t size[GROUP_COUNT] = {p->dp * p->cp, p->tp, p->pp, p->cp, 0};
    static const char *const label[GROUP_COUNT] = {"dp", "tp", "pp", "cp", "host"};
    for (int g = 0; g < GROUP_HOST; g++) {
        if (size[g] <= 1) continue;
        coll_link l;
        coll_group_link(&s->cluster.cfg, p, (comm_group)g, &l);
        const int sends = g == GROUP_PP || g == GROUP_CP; /* their traffic is send/recv */
        fprintf(f, " %s%s %s %.0f GB/s%s;", label[g], g == GROUP_DP && p->cp > 1 ? "(x cp)" : "",
                link_name(&l), (sends ? l.p2p_bytes_per_s : l.bytes_per_s) / 1e9,
                !sends && l.inter_node && l.members_per_node > 1 ? " (multi-rail)" : "");
    }
    if (p->offload_activations || p->offload_optimizer) {
        coll_link l;
        coll_group_link(&s->cluster.cfg, p, GROUP_HOST, &l);
        fprintf(f, " host %.0f GB/s;", l.bytes_per_s / 1e9);
    }
    const double *share = s->cluster.cfg.eff.coll; /* links.collectives: those not at 1 */
    for (int i = 0, first = 1; i < CLUSTER_COLLS; i++)
        if (share[i] != 1) {
            fprintf(f, "%s %s x%.2f", first ? " each collective's share:" : ",",
                    cluster_coll_names[i], share[i]);
            first = 0;
        }
    fprintf(f, "\n");
    if (sim && p->pp > 1)
        fprintf(f, "  event simulation of the %s schedule: pipeline %.4f s (closed form %.4f s), "
                   "step %.4f s, bubble %.1f%% of busy time\n",
                plan_schedule_names[p->schedule], sim->pipeline, t->pipeline, sim->step,
                100 * sim->bubble_fraction);
    else if (p->pp > 1 && step_sim_ops(p) > SCHED_MAX_OPS)
        fprintf(f, "  event simulation of the %s schedule: skipped, its %lld ops exceed the limit "
                   "of %lld (the closed form above stands)\n",
                plan_schedule_names[p->schedule], (long long)step_sim_ops(p),
                (long long)SCHED_MAX_OPS);
}

/* {"dp": ..., "tp": ..., "pp": ..., "cp": ..., "host": ...} seconds */
static void json_groups(jsonw *w, const char *key, const double v[GROUP_COUNT]) {
    jsonw_obj(w, key);
    for (int g = 0; g < GROUP_COUNT; g++)
        if (g < GROUP_EP || v[g] != 0) jsonw_num(w, comm_group_names[g], v[g]); /* MoE groups if used */
    jsonw_obj_end(w);
}

void report_stage_time_json(jsonw *w, const stage_time *t) {
    jsonw_obj(w, "time");
    jsonw_num(w, "forward_s", t->f);
    jsonw_num(w, "backward_s", t->b);
    jsonw_num(w, "weight_grad_s", t->w);
    jsonw_num(w, "compute_s", t->compute);
    json_groups(w, "exposed_s", t->exposed);
    jsonw_num(w, "optimizer_s", t->optimizer);
    jsonw_obj_end(w);
}

/* One layer's ops (kernel_time.h): FLOPs and bytes per micro-batch on one
 * rank, and their times. */
static void json_ops(jsonw *w, const char *key, const kt_part *kp) {
    static const char *const kinds[] = {"gemm", "attention", "memory"};
    const kt_part k = *kp;
    jsonw_arr(w, key);
    for (int i = 0; i < k.n; i++) {
        const kt_op *op = &k.op[i];
        jsonw_obj(w, NULL);
        jsonw_str(w, "name", op->name);
        jsonw_str(w, "kind", kinds[op->kind]);
        jsonw_num(w, "flops_fwd", op->flops_fwd);
        jsonw_num(w, "bytes_fwd", op->bytes_fwd);
        jsonw_num(w, "forward_s", op->fwd);
        jsonw_num(w, "backward_input_s", op->bwd_in);
        jsonw_num(w, "backward_weight_s", op->bwd_w);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static void json_layer_ops(jsonw *w, const plan_spec *s) {
    kt_part k;
    kt_layer(&s->model.cfg, &s->cluster.cfg, &s->cfg, &k);
    json_ops(w, "layer_ops", &k);
    jsonw_num(w, "layer_recompute_s", k.recompute);
    if (model_is_moe(&s->model.cfg)) { /* a MoE layer's ops (kt_moe_layer) */
        moe_layout l;
        moe_layout_compute(&s->model.cfg, &s->cfg, s->cluster.cfg.gpus_per_node, &l);
        kt_moe_layer(&s->model.cfg, &s->cluster.cfg, &s->cfg, &l, &k);
        json_ops(w, "moe_layer_ops", &k);
        jsonw_num(w, "moe_layer_recompute_s", k.recompute);
    }
}

void report_time_json(jsonw *w, const plan_spec *s, const eval_result *r, const step_sim *sim) {
    const step_time *t = &r->time;
    jsonw_obj(w, "time");
    jsonw_num(w, "step_s", t->step);
    jsonw_num(w, "tokens_per_s", t->tokens_per_s);
    jsonw_num(w, "mfu", t->mfu);
    jsonw_num(w, "hfu", t->hfu);
    jsonw_num(w, "compute_s", t->compute);
    jsonw_num(w, "bubble_s", t->bubble);
    jsonw_num(w, "optimizer_s", t->optimizer);
    jsonw_num(w, "pipeline_s", t->pipeline);
    jsonw_int(w, "slowest_stage", t->slowest);
    json_groups(w, "exposed_s", t->exposed);
    json_groups(w, "hidden_s", t->hidden);
    json_layer_ops(w, s);
    if (sim) {
        jsonw_obj(w, "event_simulation");
        jsonw_num(w, "pipeline_s", sim->pipeline);
        jsonw_num(w, "step_s", sim->step);
        jsonw_num(w, "bubble_fraction", sim->bubble_fraction);
        jsonw_obj_end(w);
    } else if (step_sim_ops(&s->cfg) > SCHED_MAX_OPS) {
        jsonw_obj(w, "event_simulation");
        jsonw_bool(w, "skipped", true);
        jsonw_int(w, "ops", step_sim_ops(&s->cfg));
        jsonw_int(w, "max_ops", SCHED_MAX_OPS);
        jsonw_obj_end(w);
    }
    jsonw_obj_end(w);
}
