/* report_table.c — a plan's evaluation as aligned text for people (see report.h). */
#include <string.h>

#include "base/fmt.h"
#include "cost/act.h"
#include "cost/infer.h"
#include "cost/params.h"
#include "cost/pipe.h"
#include "report/report.h"
#include "spec/framework_load.h"

#define BAR_WIDTH 30

static void row(FILE *f, const char *name, int64_t bytes, int64_t per_param_of, int64_t max) {
    char b[32], bar[BAR_WIDTH * 4 + 8];
    fprintf(f, "  %-22s %12s", name, fmt_bytes(bytes, b, sizeof b));
    if (per_param_of > 0)
        fprintf(f, "  %7.3f", (double)bytes / (double)per_param_of);
    else
        fprintf(f, "  %7s", "");
    fprintf(f, "  %s\n", fmt_bar((double)bytes, (double)max, BAR_WIDTH, bar, sizeof bar));
}

static void sub(FILE *f, const char *name, int64_t bytes) {
    char b[32];
    if (bytes) fprintf(f, "    %-20s %12s\n", name, fmt_bytes(bytes, b, sizeof b));
}

/* ---- Mixture of experts, MLA and MTP (issue 12; docs/memory.md §1 "Mixture of
 * experts"): total and activated parameters, the MTP modules apart. Printed
 * only for a model that has them, so a dense model's table is unchanged. */
static void header_moe(FILE *f, const model_cfg *m) {
    if (!model_is_moe(m) && !model_is_mla(m) && !m->mtp_layers) return;
    params_count pc;
    char n1[32], n2[32], n3[32];
    params_count_rank(m, 1, &pc);
    if (model_is_moe(m))
        fprintf(f, "  experts    %lld routed (top %lld) + %lld shared, ffn %lld each; %lld MoE "
                   "layers after %lld dense; router %s\n",
                (long long)m->experts, (long long)m->experts_per_token,
                (long long)m->shared_experts, (long long)m->expert_ffn_hidden,
                (long long)model_moe_layers(m), (long long)m->dense_layers,
                m->router_bias ? "with bias" : "without bias");
    if (model_is_mla(m))
        fprintf(f, "  attention  multi-head latent: q_lora %lld, kv_lora %lld, per head qk %lld "
                   "(nope) + %lld (rope), v %lld\n",
                (long long)m->q_lora_rank, (long long)m->kv_lora_rank,
                (long long)m->qk_nope_head_dim, (long long)m->qk_rope_head_dim,
                (long long)m->v_head_dim);
    fprintf(f, "  params     %s total, %s activated per token (both embedding tables)",
            fmt_count(pc.total, n1, sizeof n1), fmt_count(pc.activated, n2, sizeof n2));
    if (m->mtp_layers)
        fprintf(f, "; MTP %lld module(s): %s more, sharing the embedding and head",
                (long long)m->mtp_layers, fmt_count(pc.mtp, n3, sizeof n3));
    fputc('\n', f);
}

static void header(FILE *f, const plan_spec *s, const eval_result *r) {
    const plan_cfg *p = &s->cfg;
    const model_cfg *m = &s->model.cfg;
    const cluster_cfg *c = &s->cluster.cfg;
    char n1[32], n2[32];
    fprintf(f, "parasim plan: %s\n", s->name);
    fprintf(f, "  model      %s: %s parameters; %lld layers, hidden %lld, %lld heads (%lld kv), "
               "ffn %lld, vocab %lld\n",
            s->model.name, fmt_count(r->model_params, n1, sizeof n1), (long long)m->layers,
            (long long)m->hidden, (long long)m->heads, (long long)m->kv_heads,
            (long long)m->ffn_hidden, (long long)m->vocab);
    header_moe(f, m);
    fprintf(f, "  cluster    %s: %lld of %lld GPUs (%lld node(s) x %lld %s, %s each)\n",
            s->cluster.name, (long long)p->gpus, (long long)cluster_gpus(c), (long long)c->nodes,
            (long long)c->gpus_per_node, s->cluster.gpu_name,
            fmt_bytes(c->gpu_memory_bytes, n2, sizeof n2));
    char pl[32], ov[16];
    fprintf(f, "  parallel   dp=%lld tp=%lld pp=%lld cp=%lld%s zero=%d sp=%s; placement %s (innermost "
               "first); overlap %s\n",
            (long long)p->dp, (long long)p->tp, (long long)p->pp, (long long)p->cp,
            p->cp_algorithm == CP_ALL_GATHER ? " (all-gather)" : "", p->zero,
            p->sp ? "on" : "off", plan_placement_name(p, pl, sizeof pl),
            plan_overlap_name(p, ov, sizeof ov));
    if (model_is_moe(&s->model.cfg)) { /* expert layout (docs/specs.md "Expert parallelism") */
        const int64_t etp = plan_etp(p), edp = p->tp * p->cp * p->dp / (etp * p->ep);
        char cf[32] = "dropless";
        if (p->moe_capacity_factor > 0)
            snprintf(cf, sizeof cf, "capacity factor %.2f", p->moe_capacity_factor);
        char nl[32] = "none";
        if (p->moe_node_limit) snprintf(nl, sizeof nl, "%lld", (long long)p->moe_node_limit);
        fprintf(f, "  experts    ep=%lld etp=%lld edp=%lld: %lld experts per rank; %s%s, "
                   "imbalance %.2f; node limit %s; dispatcher %s\n",
                (long long)p->ep, (long long)etp, (long long)edp,
                (long long)(s->model.cfg.experts / p->ep), cf,
                p->moe_pad ? " (padded to capacity)" : "", p->moe_imbalance, nl,
                plan_moe_dispatcher_names[p->moe_dispatcher]);
    }
    fprintf(f, "  batch      global %lld x seq %lld = %s tokens/step; micro %lld -> %lld "
               "micro-batches per step\n",
            (long long)p->global_batch, (long long)p->seq,
            fmt_count((int64_t)r->tokens_per_step, n1, sizeof n1), (long long)p->micro_batch,
            (long long)r->micro_batches);
    fprintf(f, "  schedule   %s", plan_schedule_names[p->schedule]);
    if (p->schedule == SCHED_INTERLEAVED) fprintf(f, " (v=%lld)", (long long)p->virtual_stages);
    fprintf(f, "; recompute %s", plan_recompute_names[p->recompute]);
    for (int i = 0, k = 0; p->recompute == RECOMPUTE_CUSTOM && i < AN_COUNT; i++)
        if (p->recompute_tensors >> i & 1u) fprintf(f, "%s%s", k++ ? ", " : " (", act_tensor_names[i]);
    if (p->recompute == RECOMPUTE_CUSTOM) fputc(')', f);
    fprintf(f, "; optimizer %s%s%s\n",
            plan_optimizer_names[p->optimizer], p->offload_optimizer ? "; optimizer offloaded" : "",
            p->offload_activations ? "; activations offloaded" : "");
    fprintf(f, "  precision  %s: params %s, grads %s, master %s, optimizer %s, activations %s; "
               "attention kernel %s; grad accumulation %s; elementwise %s\n",
            s->precision_name, dtype_names[p->precision.params], dtype_names[p->precision.grads],
            dtype_names[p->precision.master], dtype_names[p->precision.optimizer],
            dtype_names[p->precision.activations],
            p->attn_kernel > 0 ? c->eff.attn_kernel[p->attn_kernel - 1].name : "flat",
            p->grad_acc_unfused ? "unfused" : "fused", p->eager_elementwise ? "eager" : "fused");
    if (s->framework_name[0]) { /* framework profile: its file and where its values come from */
        const plan_framework *fw = &p->framework;
        fprintf(f, "  framework  %s (%s): grad bucket %s, param copy %s, optimizer grad copy %s, "
                   "loss %s",
                s->framework_name, s->framework_path,
                framework_grad_bucket_names[fw->grad_bucket_none],
                framework_param_copy_names[fw->param_copy_transient],
                framework_optimizer_grad_copy_names[fw->optimizer_grad_copy_none],
                framework_loss_names[fw->loss]);
        if (fw->loss == FW_LOSS_CHUNKED) fprintf(f, " (%d chunks)", (int)fw->loss_chunks);
        if (fw->attention) fprintf(f, ", attention %s", framework_attention_names[fw->attention]);
        if (fw->no_dropout) fprintf(f, ", no dropout");
        fprintf(f, "\n             source %s\n", s->framework_source);
    }
    if (p->zero == 3 && p->zero3.set) { /* the zero3: section (docs/time.md §4.1) */
        const plan_zero3 *z = &p->zero3;
        char b1[32];
        fprintf(f, "  zero3      a gather per %s", plan_zero3_unit_names[z->unit]);
        if (z->unit == ZERO3_UNIT_BUCKET) fprintf(f, " of %s", fmt_bytes(z->bucket_bytes, b1, sizeof b1));
        fprintf(f, "; prefetch %lld; %s after forward%s%s; host %g us per call + %g us per rank\n",
                (long long)z->prefetch, z->reshard_after_forward ? "reshard" : "keep",
                z->recompute_gather ? "; gathers again for recompute" : "",
                z->copy_out ? "; copy-out on the compute stream" : "",
                1e6 * z->launch_s, 1e6 * z->launch_per_rank_s);
    }
}

static void memory(FILE *f, const plan_spec *s, const eval_result *r) {
    const eval_stage *h = &r->heavy;
    char b1[32], b2[32];
    const int chunks = pipe_chunks(&s->cfg) > 1; /* interleaved, DualPipe */
    fprintf(f, "\nMemory per GPU at the step's peak, heaviest rank: pipeline stage %lld of %lld "
               "(%lld layers; %lld %s in flight)\n",
            (long long)r->heaviest, (long long)r->stages, (long long)h->layers,
            (long long)h->inflight,
            chunks ? "model-chunk micro-batches" : h->inflight == 1 ? "micro-batch" : "micro-batches");
    fprintf(f, "  %-22s %12s  %7s\n", "category", "bytes", "B/param");
    int64_t max = h->total;
    row(f, "params", h->params, h->param_elems, max);
    row(f, "grads", h->grads, h->param_elems, max);
    row(f, "master weights", h->master, h->param_elems, max);
    row(f, "optimizer states", h->optimizer, h->param_elems, max);
    row(f, "activations", h->activations, 0, max);
    sub(f, "saved for backward", h->act_saved);
    sub(f, "recompute working set", h->act_working);
    if (r->distill.set) { /* logit distillation (docs/distillation.md "Planner") */
        row(f, "teacher (distill)", h->teacher_weights + h->teacher_forward + h->kd_saved, 0, max);
        sub(f, "teacher weights", h->teacher_weights);
        sub(f, "teacher forward", h->teacher_forward);
        sub(f, "KD saved tensors", h->kd_saved);
    }
    row(f, "other", h->other, 0, max);
    sub(f, "comm bucket", h->buf_comm);
    sub(f, "ZeRO-3 gather buffers", h->buf_zero3);
    sub(f, "op temporaries", h->buf_temps);
    sub(f, s->cfg.cp_algorithm == CP_ALL_GATHER ? "gathered K/V buffers" : "ring K/V buffers",
        h->buf_cp);
    sub(f, "workspace", h->buf_workspace);
    sub(f, "reserved (context)", h->reserved);
    sub(f, "fragmentation", h->fragmentation);
    /* (this GPU's fit: a separate distillation teacher's GPUs are the Distillation section's) */
    const bool fits = h->total <= r->capacity_bytes;
    fprintf(f, "  %-22s %12s of %s: %s", "total", fmt_bytes(h->total, b1, sizeof b1),
            fmt_bytes(r->capacity_bytes, b2, sizeof b2), fits ? "fits" : "DOES NOT FIT");
    if (fits)
        fprintf(f, " (headroom %s)\n", fmt_bytes(r->capacity_bytes - h->total, b1, sizeof b1));
    else
        fprintf(f, " (short by %s)\n", fmt_bytes(h->total - r->capacity_bytes, b1, sizeof b1));
    if (h->host) fprintf(f, "  %-22s %12s\n", "host (offloaded)", fmt_bytes(h->host, b1, sizeof b1));
}

static void stage_table(FILE *f, const plan_spec *sp, const eval_result *r,
                        const eval_stage *stages) {
    char c[8][32];
    if (r->stages <= 1) return;

    fprintf(f, "\nPer pipeline stage\n  %5s %6s %8s %11s %11s %11s %11s %11s %11s %11s\n", "stage",
            "layers", "inflight", "params", "grads", "master", "optimizer", "activations",
            "other", "total");
    for (int64_t i = 0; i < r->stages; i++) {
        const eval_stage *s = &stages[i];
        fprintf(f, "  %5lld %6lld %8lld %11s %11s %11s %11s %11s %11s %11s%s\n", (long long)s->stage,
                (long long)s->layers, (long long)s->inflight, fmt_bytes(s->params, c[0], 32),
                fmt_bytes(s->grads, c[1], 32), fmt_bytes(s->master, c[2], 32),
                fmt_bytes(s->optimizer, c[3], 32), fmt_bytes(s->activations, c[4], 32),
                fmt_bytes(s->other, c[5], 32), fmt_bytes(s->total, c[6], 32),
                i == r->heaviest ? "  <- heaviest" : "");
    }
    if (sp->cfg.schedule == SCHED_INTERLEAVED && !pipe_layout_given(&sp->cfg))
        fprintf(f, "  (interleaved: inflight counts model-chunk micro-batches of %lld layers)\n",
                (long long)(sp->model.cfg.layers / (sp->cfg.pp * sp->cfg.virtual_stages)));
    else if (sp->cfg.schedule == SCHED_INTERLEAVED)
        fprintf(f, "  (interleaved: inflight counts model-chunk micro-batches; a stage's layers "
                   "split evenly over its %lld chunks, less the embedding's and the loss's slots "
                   "where they are counted)\n",
                (long long)sp->cfg.virtual_stages);
    else if (sp->cfg.schedule == SCHED_DUALPIPE)
        fprintf(f, "  (dualpipe: each rank holds stage s and stage pp-1-s, two chunks of %lld "
                   "layers; inflight counts chunk micro-batches)\n",
                (long long)(sp->model.cfg.layers / sp->cfg.pp));
}

static void comm(FILE *f, const eval_result *r) {
    char b1[32], b2[32], n1[32];
    fprintf(f, "\nCommunication sent per GPU per step (stage %lld; ring algorithms, nccl-tests "
               "busbw factors)\n",
            (long long)r->heaviest);
    if (!r->comm.n) {
        fprintf(f, "  none (one GPU per model replica and no data parallelism)\n");
        return;
    }
    fprintf(f, "  %-5s %-15s %5s %9s %12s %12s  %s\n", "group", "collective", "ranks", "calls",
            "bytes/call", "sent", "what");
    for (int i = 0; i < r->comm.n; i++) {
        const comm_entry *e = &r->comm.e[i];
        fprintf(f, "  %-5s %-15s %5lld %9s %12s %12s  %s\n", comm_group_names[e->group],
                comm_coll_names[e->coll], (long long)e->group_size,
                fmt_count(e->calls, n1, sizeof n1), fmt_bytes(e->bytes_per_call, b1, sizeof b1),
                fmt_bytes(e->bytes_sent, b2, sizeof b2), e->what);
    }
    int64_t total = 0;
    fprintf(f, "  per group:");
    for (int g = 0; g < GROUP_COUNT; g++) {
        total += r->comm.group_bytes[g];
        if (r->comm.group_bytes[g])
            fprintf(f, " %s %s;", comm_group_names[g], fmt_bytes(r->comm.group_bytes[g], b1, sizeof b1));
    }
    fprintf(f, " total %s\n", fmt_bytes(total, b1, sizeof b1));
}

static void flops(FILE *f, const plan_spec *s, const eval_result *r) {
    char a[32], b[32], c[32];
    fprintf(f, "\nFLOPs per step: model %s (6N per token + attention), hardware %s (with "
               "recomputation); per GPU %s\n",
            fmt_si(r->flops_model_per_step, "FLOP", a, sizeof a),
            fmt_si(r->flops_hardware_per_step, "FLOP", b, sizeof b),
            fmt_si(r->flops_hardware_per_step / (double)s->cfg.gpus, "FLOP", c, sizeof c));
}

/* Logit distillation (docs/distillation.md "Planner"): the teacher, where it
 * runs, its FLOPs, and under separate its GPUs' memory and the transfer. */
static void distill(FILE *f, const plan_spec *s, const eval_result *r) {
    const eval_distill *d = &r->distill;
    const plan_distill *pd = &s->cfg.distill;
    char a[32], b[32], c[32], e[32], g[32];
    if (!d->set) return;
    fprintf(f, "\nDistillation: teacher %s (%s weights), %s; T %g, alpha %g, %s\n",
            s->teacher.name, infer_weights_names[pd->weights],
            plan_distill_placement_names[pd->placement], pd->temperature, pd->alpha,
            pd->top_k ? "top-k" : "every logit");
    if (pd->top_k)
        fprintf(f, "  top-k      k = %lld: KD saved tensors %s per micro-batch, %s less than "
                   "every logit\n",
                (long long)pd->top_k, fmt_bytes(d->kd_per_micro, a, sizeof a),
                fmt_bytes(d->topk_saving, b, sizeof b));
    else
        fprintf(f, "  KD saved   %s per micro-batch (qs and qt, fp32 over the rank's vocabulary)\n",
                fmt_bytes(d->kd_per_micro, a, sizeof a));
    fprintf(f, "  FLOPs      teacher forward %s per step (2N + attention per token; in HFU, "
               "not in MFU)\n",
            fmt_si(d->flops_teacher_per_step, "FLOP", a, sizeof a));
    if (d->placement == DISTILL_SHARED) {
        fprintf(f, "  layout     on the student's GPUs: tp %lld, pp %lld, replicated %lld times; "
                   "forward of %lld tokens per micro-batch, %.2f ms on stage %lld\n",
                (long long)d->layout.tp, (long long)d->layout.pp, (long long)d->layout.dp,
                (long long)d->layout.tokens, 1e3 * r->heavy.teacher_fwd_s,
                (long long)r->heaviest);
        return;
    }
    fprintf(f, "  layout     %lld GPUs of its own: tp %lld x dp %lld; %lld forwards of %lld "
               "tokens per replica per step\n",
            (long long)d->layout.gpus, (long long)d->layout.tp, (long long)d->layout.dp,
            (long long)d->teacher_micro_batches, (long long)d->layout.tokens);
    fprintf(f, "  memory     per teacher GPU: weights %s, forward %s (logits %s); total %s of %s: "
               "%s\n",
            fmt_bytes(d->teacher_weights, a, sizeof a), fmt_bytes(d->teacher_forward, b, sizeof b),
            fmt_bytes(d->teacher_logits, c, sizeof c), fmt_bytes(d->teacher_total, e, sizeof e),
            fmt_bytes(r->capacity_bytes, g, sizeof g), d->teacher_fits ? "fits" : "DOES NOT FIT");
    fprintf(f, "  transfer   %s of %s per step over %s: %.4f s\n",
            fmt_bytes((int64_t)d->transfer_bytes_per_step, a, sizeof a),
            pd->top_k ? "top-k (index, value) pairs" : "fp32 logits",
            d->inter_node ? "the inter-node NICs" : "the intra-node link", d->transfer_s);
    fprintf(f, "  step       max(student %.4f s, teacher %.4f s, transfer %.4f s) = %.4f s; "
               "exposed %.4f s\n",
            d->student_step_s, d->teacher_s, d->transfer_s, r->time.step, d->exposed_s);
}

void report_plan_table(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages,
                       const step_sim *sim) {
    header(f, s, r);
    memory(f, s, r);
    stage_table(f, s, r, stages);
    comm(f, r);
    flops(f, s, r);
    distill(f, s, r);
    report_time_table(f, s, r, stages, sim);
}
