/* report_json.c — a plan's evaluation as JSON (see report.h, docs/output.md). */
#include "cost/act.h"
#include "cost/infer.h"
#include "base/jsonw.h"
#include "cost/params.h"
#include "report/report.h"
#include "spec/framework_load.h"

#define PARASIM_JSON_VERSION 1

static void json_memory_fields(jsonw *w, const eval_stage *st) {
    jsonw_int(w, "params", st->params);
    jsonw_int(w, "grads", st->grads);
    jsonw_int(w, "master", st->master);
    jsonw_int(w, "optimizer", st->optimizer);
    jsonw_int(w, "activations", st->activations);
    jsonw_int(w, "other", st->other);
    jsonw_int(w, "total", st->total);
    jsonw_int(w, "host", st->host);
}

static void json_breakdown(jsonw *w, const eval_stage *st, bool distill) {
    jsonw_obj(w, "breakdown");
    jsonw_int(w, "activations_saved", st->act_saved);
    jsonw_int(w, "activations_recompute_working", st->act_working);
    jsonw_int(w, "comm_bucket", st->buf_comm);
    jsonw_int(w, "zero3_gather", st->buf_zero3);
    jsonw_int(w, "temporaries", st->buf_temps);
    jsonw_int(w, "cp_ring", st->buf_cp);
    jsonw_int(w, "workspace", st->buf_workspace);
    jsonw_int(w, "reserved", st->reserved);
    jsonw_int(w, "fragmentation", st->fragmentation);
    if (distill) { /* logit distillation (docs/distillation.md "Planner") */
        jsonw_int(w, "teacher_weights", st->teacher_weights);
        jsonw_int(w, "teacher_forward", st->teacher_forward);
        jsonw_int(w, "kd_saved", st->kd_saved);
    }
    jsonw_obj_end(w);
}

/* The `distill` object (docs/output.md): absent without a distill: section. */
static void json_distill(jsonw *w, const plan_spec *s, const eval_result *r) {
    const eval_distill *d = &r->distill;
    const plan_distill *pd = &s->cfg.distill;
    if (!d->set) return;
    jsonw_obj(w, "distill");
    jsonw_str(w, "teacher", s->teacher.name);
    jsonw_str(w, "weights", infer_weights_names[pd->weights]);
    jsonw_str(w, "placement", plan_distill_placement_names[pd->placement]);
    jsonw_num(w, "temperature", pd->temperature);
    jsonw_num(w, "alpha", pd->alpha);
    jsonw_int(w, "top_k", pd->top_k);
    jsonw_int(w, "teacher_tp", d->layout.tp);
    jsonw_int(w, "teacher_pp", d->layout.pp);
    jsonw_int(w, "teacher_dp", d->layout.dp);
    jsonw_int(w, "teacher_gpus", d->layout.gpus);
    jsonw_int(w, "teacher_tokens_per_micro_batch", d->layout.tokens);
    jsonw_int(w, "kd_saved_per_micro_batch", d->kd_per_micro);
    jsonw_int(w, "top_k_saving_per_micro_batch", d->topk_saving);
    jsonw_num(w, "teacher_flops_per_step", d->flops_teacher_per_step);
    jsonw_num(w, "teacher_hardware_flops_per_step", d->flops_teacher_hardware_per_step);
    jsonw_num(w, "teacher_forward_s", r->heavy.teacher_fwd_s);
    if (d->placement == DISTILL_SEPARATE) {
        jsonw_obj(w, "teacher_gpu_memory");
        jsonw_int(w, "weights", d->teacher_weights);
        jsonw_int(w, "forward", d->teacher_forward);
        jsonw_int(w, "logits", d->teacher_logits);
        jsonw_int(w, "total", d->teacher_total);
        jsonw_bool(w, "fits", d->teacher_fits);
        jsonw_obj_end(w);
        jsonw_int(w, "teacher_micro_batches", d->teacher_micro_batches);
        jsonw_num(w, "teacher_step_s", d->teacher_s);
        jsonw_num(w, "transfer_bytes_per_step", d->transfer_bytes_per_step);
        jsonw_num(w, "transfer_s", d->transfer_s);
        jsonw_bool(w, "transfer_inter_node", d->inter_node);
        jsonw_num(w, "student_step_s", d->student_step_s);
        jsonw_num(w, "exposed_s", d->exposed_s);
    }
    jsonw_obj_end(w);
}

/* What one layer keeps for backward, per micro-batch on one tp rank, and
 * whether the recompute policy keeps it (docs/memory.md §3). */
static void json_layer_tensors(jsonw *w, const plan_spec *s) {
    act_tensor t[ACT_MAX_TENSORS];
    int n = act_layer_tensors(&s->model.cfg, t);
    jsonw_arr(w, "layer_tensors");
    for (int i = 0; i < n; i++) {
        jsonw_obj(w, NULL);
        jsonw_str(w, "name", t[i].name);
        jsonw_str(w, "saved_by", t[i].saved_by);
        jsonw_int(w, "bytes", act_tensor_bytes(&s->model.cfg, &s->cfg, &t[i]));
        jsonw_bool(w, "kept", act_tensor_kept(&t[i], i, &s->cfg));
        jsonw_obj_end(w);
    }
    n = act_cached_tensors(&s->model.cfg, &s->cfg, t); /* recompute: op caches these */
    for (int i = 0; i < n; i++) {
        jsonw_obj(w, NULL);
        jsonw_str(w, "name", t[i].name);
        jsonw_str(w, "saved_by", t[i].saved_by);
        jsonw_int(w, "bytes", act_tensor_bytes(&s->model.cfg, &s->cfg, &t[i]));
        jsonw_bool(w, "kept", true);
        jsonw_obj_end(w);
    }
    jsonw_arr_end(w);
}

static void json_plan(jsonw *w, const plan_spec *s) {
    const plan_cfg *p = &s->cfg;
    jsonw_obj(w, "plan");
    jsonw_str(w, "name", s->name);
    jsonw_str(w, "path", s->path);
    jsonw_int(w, "gpus", p->gpus);
    jsonw_obj(w, "parallel");
    jsonw_int(w, "dp", p->dp);
    jsonw_int(w, "tp", p->tp);
    jsonw_int(w, "pp", p->pp);
    jsonw_int(w, "cp", p->cp);
    jsonw_int(w, "zero", p->zero);
    jsonw_bool(w, "sp", p->sp);
    /* context parallelism's algorithm, when not the ring (docs/specs.md) */
    if (p->cp_algorithm != CP_RING)
        jsonw_str(w, "cp_algorithm", plan_cp_algorithm_names[p->cp_algorithm]);
    jsonw_obj_end(w);
    jsonw_obj(w, "batch");
    jsonw_int(w, "global", p->global_batch);
    jsonw_int(w, "micro", p->micro_batch);
    jsonw_int(w, "seq", p->seq);
    jsonw_obj_end(w);
    jsonw_obj(w, "pipeline");
    jsonw_str(w, "schedule", plan_schedule_names[p->schedule]);
    jsonw_int(w, "virtual", p->virtual_stages);
    /* Megatron-LM's uneven split options, when given (docs/schedule.md "Uneven splits") */
    if (p->first_stage_layers) jsonw_int(w, "first_stage_layers", p->first_stage_layers);
    if (p->last_stage_layers) jsonw_int(w, "last_stage_layers", p->last_stage_layers);
    if (p->account_for_embedding) jsonw_bool(w, "account_for_embedding", true);
    if (p->account_for_loss) jsonw_bool(w, "account_for_loss", true);
    /* how stage-boundary messages are held and sent, when not parasim's runtime's way */
    if (p->deallocate_outputs) jsonw_bool(w, "deallocate_outputs", true);
    if (p->partition_messages) jsonw_bool(w, "partition_messages", true);
    jsonw_obj_end(w);
    jsonw_str(w, "recompute", plan_recompute_names[p->recompute]);
    if (p->recompute == RECOMPUTE_CUSTOM) { /* the tensors a custom policy rebuilds */
        jsonw_arr(w, "recompute_tensors");
        for (int i = 0; i < AN_COUNT; i++)
            if (p->recompute_tensors >> i & 1u) jsonw_str(w, NULL, act_tensor_names[i]);
        jsonw_arr_end(w);
    }
    jsonw_obj(w, "precision");
    jsonw_str(w, "name", s->precision_name);
    jsonw_str(w, "params", dtype_names[p->precision.params]);
    jsonw_str(w, "grads", dtype_names[p->precision.grads]);
    jsonw_str(w, "master", dtype_names[p->precision.master]);
    jsonw_str(w, "optimizer", dtype_names[p->precision.optimizer]);
    jsonw_str(w, "activations", dtype_names[p->precision.activations]);
    jsonw_obj_end(w);
    if (s->framework_name[0]) { /* framework profile (absent without `framework:`) */
        const plan_framework *fw = &p->framework;
        jsonw_obj(w, "framework");
        jsonw_str(w, "name", s->framework_name);
        jsonw_str(w, "path", s->framework_path);
        jsonw_str(w, "source", s->framework_source);
        jsonw_str(w, "grad_bucket", framework_grad_bucket_names[fw->grad_bucket_none]);
        jsonw_str(w, "param_copy", framework_param_copy_names[fw->param_copy_transient]);
        jsonw_str(w, "optimizer_grad_copy",
                  framework_optimizer_grad_copy_names[fw->optimizer_grad_copy_none]);
        jsonw_str(w, "loss", framework_loss_names[fw->loss]);
        if (fw->loss == FW_LOSS_CHUNKED) jsonw_int(w, "loss_chunks", fw->loss_chunks);
        jsonw_str(w, "attention", framework_attention_names[fw->attention]);
        jsonw_str(w, "dropout", framework_dropout_names[fw->no_dropout]);
        jsonw_obj_end(w);
    }
    if (p->zero == 3 && p->zero3.set) { /* the zero3: section (docs/time.md §4.1) */
        const plan_zero3 *z = &p->zero3;
        jsonw_obj(w, "zero3");
        jsonw_str(w, "unit", plan_zero3_unit_names[z->unit]);
        if (z->unit == ZERO3_UNIT_BUCKET) jsonw_int(w, "bucket_bytes", z->bucket_bytes);
        jsonw_int(w, "prefetch", z->prefetch);
        jsonw_bool(w, "reshard_after_forward", z->reshard_after_forward);
        jsonw_bool(w, "recompute_gather", z->recompute_gather);
        jsonw_num(w, "launch_s", z->launch_s);
        jsonw_num(w, "launch_per_rank_s", z->launch_per_rank_s);
        jsonw_bool(w, "copy_out", z->copy_out);
        jsonw_obj_end(w);
    }
    if (model_is_moe(&s->model.cfg)) { /* expert layout (docs/specs.md "Expert parallelism") */
        jsonw_obj(w, "moe");
        jsonw_int(w, "ep", p->ep);
        jsonw_int(w, "etp", plan_etp(p));
        jsonw_int(w, "edp", p->tp * p->cp * p->dp / (plan_etp(p) * p->ep));
        jsonw_num(w, "capacity_factor", p->moe_capacity_factor);
        jsonw_num(w, "imbalance", p->moe_imbalance);
        jsonw_int(w, "node_limit", p->moe_node_limit);
        jsonw_bool(w, "aux_loss", p->moe_aux_loss);
        jsonw_str(w, "dispatcher", plan_moe_dispatcher_names[p->moe_dispatcher]);
        jsonw_bool(w, "pad_to_capacity", p->moe_pad);
        jsonw_obj_end(w);
    }
    jsonw_str(w, "optimizer", plan_optimizer_names[p->optimizer]);
    jsonw_obj(w, "offload");
    jsonw_bool(w, "optimizer", p->offload_optimizer);
    jsonw_bool(w, "activations", p->offload_activations);
    jsonw_obj_end(w);
    jsonw_arr(w, "placement");
    for (int i = 0; i < PLAN_GROUPS; i++) jsonw_str(w, NULL, plan_group_names[p->placement[i]]);
    jsonw_arr_end(w);
    jsonw_obj(w, "overlap");
    jsonw_bool(w, "dp", p->overlap_dp);
    jsonw_bool(w, "tp", p->overlap_tp);
    jsonw_bool(w, "pp", p->overlap_pp);
    jsonw_obj_end(w);
    jsonw_obj(w, "kernels"); /* "flat": the cluster's flat attention efficiency */
    jsonw_str(w, "attention",
              p->attn_kernel > 0 ? s->cluster.cfg.eff.attn_kernel[p->attn_kernel - 1].name : "flat");
    jsonw_bool(w, "grad_accumulation_fusion", !p->grad_acc_unfused);
    jsonw_str(w, "elementwise", p->eager_elementwise ? "eager" : "fused");
    jsonw_obj_end(w);
    jsonw_obj_end(w);
}

/* ---- Mixture of experts, MLA and MTP (issue 12; docs/memory.md §1): blocks
 * written only for a model that has them, so a dense model's JSON is unchanged. */
static void json_model_moe(jsonw *w, const model_cfg *m) {
    if (!model_is_moe(m) && !model_is_mla(m) && !m->mtp_layers && !m->qk_norm) return;
    params_count pc;
    params_count_rank(m, 1, &pc);
    if (m->qk_norm) jsonw_bool(w, "qk_norm", true);
    if (model_is_moe(m) || model_is_mla(m) || m->mtp_layers) {
        jsonw_obj(w, "parameters");
        jsonw_int(w, "total", pc.total);
        jsonw_int(w, "activated", pc.activated);
        jsonw_int(w, "mtp", pc.mtp);
        jsonw_obj_end(w);
    }
    if (model_is_moe(m)) {
        jsonw_obj(w, "moe");
        jsonw_int(w, "experts", m->experts);
        jsonw_int(w, "experts_per_token", m->experts_per_token);
        jsonw_int(w, "shared_experts", m->shared_experts);
        jsonw_int(w, "expert_ffn_hidden", m->expert_ffn_hidden);
        jsonw_int(w, "dense_layers", m->dense_layers);
        jsonw_int(w, "moe_layers", model_moe_layers(m));
        jsonw_bool(w, "router_bias", m->router_bias);
        jsonw_int(w, "expert_params", pc.expert);
        jsonw_int(w, "router_params", pc.router);
        jsonw_int(w, "moe_layer_params", pc.moe_layer);
        jsonw_obj_end(w);
    }
    if (model_is_mla(m)) {
        jsonw_obj(w, "mla");
        jsonw_int(w, "q_lora_rank", m->q_lora_rank);
        jsonw_int(w, "kv_lora_rank", m->kv_lora_rank);
        jsonw_int(w, "qk_nope_head_dim", m->qk_nope_head_dim);
        jsonw_int(w, "qk_rope_head_dim", m->qk_rope_head_dim);
        jsonw_int(w, "v_head_dim", m->v_head_dim);
        jsonw_obj_end(w);
    }
    if (m->mtp_layers) {
        jsonw_obj(w, "mtp");
        jsonw_int(w, "layers", m->mtp_layers);
        jsonw_int(w, "params", pc.mtp);
        jsonw_obj_end(w);
    }
}

static void json_model(jsonw *w, const model_spec *ms, int64_t params) {
    const model_cfg *m = &ms->cfg;
    jsonw_obj(w, "model");
    jsonw_str(w, "name", ms->name);
    jsonw_str(w, "path", ms->path);
    jsonw_int(w, "params", params);
    jsonw_int(w, "layers", m->layers);
    jsonw_int(w, "hidden", m->hidden);
    jsonw_int(w, "heads", m->heads);
    jsonw_int(w, "kv_heads", m->kv_heads);
    jsonw_int(w, "head_dim", m->head_dim);
    jsonw_int(w, "ffn_hidden", m->ffn_hidden);
    jsonw_int(w, "vocab", m->vocab);
    jsonw_bool(w, "tied_embeddings", m->tied_embeddings);
    jsonw_str(w, "norm", model_norm_names[m->norm]);
    jsonw_str(w, "mlp", model_mlp_names[m->mlp]);
    jsonw_str(w, "attention", model_attn_names[m->attention]);
    jsonw_str(w, "position", model_pos_names[m->position]);
    jsonw_str(w, "source", ms->source);
    json_model_moe(w, m);
    jsonw_obj_end(w);
}

static void json_cluster(jsonw *w, const cluster_spec *cs) {
    const cluster_cfg *c = &cs->cfg;
    jsonw_obj(w, "cluster");
    jsonw_str(w, "name", cs->name);
    jsonw_str(w, "gpu", cs->gpu_name);
    jsonw_int(w, "gpu_memory_bytes", c->gpu_memory_bytes);
    jsonw_int(w, "gpus_per_node", c->gpus_per_node);
    jsonw_int(w, "nodes", c->nodes);
    jsonw_obj_end(w);
}

void report_plan_json(FILE *f, const plan_spec *s, const eval_result *r, const eval_stage *stages,
                      const step_sim *sim) {
    jsonw w;
    jsonw_init(&w, f);
    jsonw_obj(&w, NULL);
    jsonw_int(&w, "format_version", PARASIM_JSON_VERSION);
    const bool moe = model_is_moe(&s->model.cfg);
    json_plan(&w, s);
    json_model(&w, &s->model, r->model_params);
    json_cluster(&w, &s->cluster);
    jsonw_int(&w, "micro_batches", r->micro_batches);

    jsonw_obj(&w, "memory");
    jsonw_int(&w, "heaviest_stage", r->heaviest);
    json_memory_fields(&w, &r->heavy);
    jsonw_int(&w, "capacity", r->capacity_bytes);
    jsonw_int(&w, "headroom", r->capacity_bytes - r->heavy.total);
    json_breakdown(&w, &r->heavy, r->distill.set);
    json_layer_tensors(&w, s);
    jsonw_arr(&w, "stages");
    for (int64_t i = 0; i < r->stages; i++) {
        const eval_stage *st = &stages[i];
        jsonw_obj(&w, NULL);
        jsonw_int(&w, "stage", st->stage);
        jsonw_int(&w, "layers", st->layers);
        jsonw_int(&w, "inflight", st->inflight);
        jsonw_int(&w, "param_elems", st->param_elems);
        if (moe) {
            jsonw_int(&w, "expert_elems", st->expert_elems);
            jsonw_int(&w, "moe_layers", st->moe_layers);
        }
        json_memory_fields(&w, st);
        json_breakdown(&w, st, r->distill.set);
        jsonw_obj(&w, "comm");
        for (int g = 0; g < (moe ? GROUP_COUNT : GROUP_EP); g++) {
            char key[16];
            snprintf(key, sizeof key, "%s_bytes", comm_group_names[g]);
            jsonw_int(&w, key, st->comm_bytes[g]);
        }
        jsonw_obj_end(&w);
        report_stage_time_json(&w, &st->time);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);

    jsonw_obj(&w, "comm");
    jsonw_int(&w, "stage", r->heaviest);
    int64_t total = 0;
    for (int g = 0; g < (moe ? GROUP_COUNT : GROUP_EP); g++) {
        char key[16];
        snprintf(key, sizeof key, "%s_bytes", comm_group_names[g]);
        jsonw_int(&w, key, r->comm.group_bytes[g]);
        total += r->comm.group_bytes[g];
    }
    jsonw_int(&w, "total_bytes", total);
    jsonw_arr(&w, "collectives");
    for (int i = 0; i < r->comm.n; i++) {
        const comm_entry *e = &r->comm.e[i];
        jsonw_obj(&w, NULL);
        jsonw_str(&w, "group", comm_group_names[e->group]);
        jsonw_str(&w, "collective", comm_coll_names[e->coll]);
        jsonw_str(&w, "what", e->what);
        jsonw_int(&w, "group_size", e->group_size);
        jsonw_int(&w, "calls", e->calls);
        jsonw_int(&w, "bytes_per_call", e->bytes_per_call);
        jsonw_int(&w, "bytes_sent", e->bytes_sent);
        jsonw_obj_end(&w);
    }
    jsonw_arr_end(&w);
    jsonw_obj_end(&w);

    jsonw_obj(&w, "flops");
    jsonw_num(&w, "tokens_per_step", r->tokens_per_step);
    jsonw_num(&w, "model_per_step", r->flops_model_per_step);
    jsonw_num(&w, "hardware_per_step", r->flops_hardware_per_step);
    jsonw_num(&w, "model_per_gpu_per_step", r->flops_model_per_step / (double)s->cfg.gpus);
    jsonw_num(&w, "hardware_per_gpu_per_step", r->flops_hardware_per_step / (double)s->cfg.gpus);
    jsonw_obj_end(&w);
    json_distill(&w, s, r);
    report_time_json(&w, s, r, sim);
    jsonw_bool(&w, "fits", r->fits);
    jsonw_obj_end(&w);
    jsonw_end(&w);
}
