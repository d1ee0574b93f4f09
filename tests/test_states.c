/* test_states.c — the 16 bytes/parameter breakdown and ZeRO sharding
 * (docs/memory.md §2; Rajbhandari et al. 2020 Figure 1). */
#include "cost/states.h"
#include "tu.h"

static const int64_t N8B = 8030261248LL; /* Llama 3 8B */

static int64_t states_total(const states_bytes *s) {
    return s->params + s->grads + s->master + s->optimizer;
}

static void test_presets_bytes_per_param(void **state) {
    (void)state;
    struct {
        const char *preset;
        int64_t per_param; /* params + grads + master + m + v */
    } t[] = {{"bf16-mixed", 2 + 2 + 4 + 4 + 4},
             {"fp16-mixed", 2 + 2 + 4 + 4 + 4},
             {"bf16-fp32grad", 2 + 4 + 4 + 4 + 4},
             {"fp32", 4 + 4 + 0 + 4 + 4}};
    for (size_t i = 0; i < 4; i++) {
        plan_cfg p = tu_cfg(1, 1, 1, 1);
        assert_int_equal(plan_precision_preset(t[i].preset, &p.precision), 0);
        states_bytes s;
        states_compute(N8B, &p, &s);
        assert_int_equal(states_total(&s), t[i].per_param * N8B);
    }
}

/* ZeRO at dp = 8: 2+2+12/8, 2+14/8 and 16/8 bytes per parameter, to the byte
 * (8,030,261,248 is a multiple of 8, so no padding). */
static void test_zero_stages_llama8b(void **state) {
    (void)state;
    const int64_t expect[4] = {16 * N8B, 2 * N8B + 2 * N8B + 12 * N8B / 8, 2 * N8B + 14 * N8B / 8,
                               16 * N8B / 8};
    for (int z = 0; z <= 3; z++) {
        plan_cfg p = tu_cfg(8, 1, 1, 1);
        p.zero = z;
        states_bytes s;
        states_compute(N8B, &p, &s);
        assert_int_equal(states_total(&s), expect[z]);
        assert_int_equal(s.host, 0);
    }
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.zero = 2;
    states_bytes s;
    states_compute(N8B, &p, &s);
    assert_int_equal(s.params, 2 * N8B);
    assert_int_equal(s.grads, 2 * N8B / 8);
    assert_int_equal(s.master, 4 * N8B / 8);
    assert_int_equal(s.optimizer, 8 * N8B / 8);
}

/* Shards are ceil(N/d): 10 parameters over 4 ranks hold 3 each. Context
 * parallel ranks join the sharding group (d = dp * cp). */
static void test_padding_and_cp(void **state) {
    (void)state;
    plan_cfg p = tu_cfg(4, 1, 1, 1);
    p.zero = 3;
    states_bytes s;
    states_compute(10, &p, &s);
    assert_int_equal(s.params, 3 * 2);
    assert_int_equal(s.optimizer, 3 * 8);
    p = tu_cfg(2, 1, 1, 2);
    p.zero = 1;
    states_compute(N8B, &p, &s);
    assert_int_equal(s.master, 4 * N8B / 4);
}

static void test_optimizers_and_offload(void **state) {
    (void)state;
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    states_bytes s;
    p.optimizer = OPT_SGD;
    states_compute(1000, &p, &s);
    assert_int_equal(s.optimizer, 0);
    p.optimizer = OPT_SGD_MOMENTUM;
    states_compute(1000, &p, &s);
    assert_int_equal(s.optimizer, 4000);
    p.optimizer = OPT_ADAMW;
    p.offload_optimizer = true; /* ZeRO-Offload: master + Adam on the host */
    states_compute(1000, &p, &s);
    assert_int_equal(s.master + s.optimizer, 0);
    assert_int_equal(s.host, 12000);
    assert_int_equal(s.params + s.grads, 4000);
}

/* Framework profiles (plans/frameworks/NAME.yaml, docs/memory.md "Framework
 * profiles"): each one's model states for Llama 3 8B, by hand, through the
 * plan loader and the closed form (what `parasim plan` prints). */
static eval_stage framework_states(const char *framework, int dp, int zero) {
    char yaml[512];
    snprintf(yaml, sizeof yaml,
             "model: llama3-8b\ncluster: dgx-h100\nframework: %s\n"
             "parallel: {dp: %d%s}\nbatch: {global: %d, micro: 1, seq: 4096}\n",
             framework, dp, zero < 0 ? "" : zero == 1 ? ", zero: 1" : zero == 2 ? ", zero: 2" : ", zero: 0",
             8 * dp);
    plan_spec *s = tu_plan(yaml);
    eval_result r;
    eval_plan(&s->model.cfg, &s->cluster.cfg, &s->cfg, &r, NULL);
    free(s);
    assert_int_equal(r.heavy.param_elems, N8B);
    return r.heavy;
}

static void test_framework_profiles(void **state) {
    (void)state;
    /* Megatron-LM, dp 1: bf16 params + fp32 main grads + fp32 main params + Adam
     * = 2 + 4 + 4 + 4 + 4 = 18 B/param (dist_optimizer.md's table) */
    eval_stage st = framework_states("megatron", 1, -1);
    assert_int_equal(st.params, 2 * N8B);
    assert_int_equal(st.grads, 4 * N8B);
    assert_int_equal(st.params + st.grads + st.master + st.optimizer, 18 * N8B);
    /* distributed optimizer (ZeRO-1) over 8: 6 + 12/8 */
    st = framework_states("megatron", 8, 1);
    assert_int_equal(st.params + st.grads + st.master + st.optimizer, 6 * N8B + 12 * N8B / 8);
    /* FSDP2 (torchtitan), dp 8 (zero 3 by the profile): no persistent bf16
     * copy; fp32 sharded params (= master) + fp32 grads + Adam = 16/8 B/param */
    st = framework_states("fsdp2", 8, -1);
    assert_int_equal(st.params, 0);
    assert_int_equal(st.grads, 4 * N8B / 8);
    assert_int_equal(st.master, 4 * N8B / 8);
    assert_int_equal(st.optimizer, 8 * N8B / 8);
    /* FSDP2 on one GPU: fp32 params (the master), fp32 grads, Adam: 16 */
    st = framework_states("fsdp2", 1, -1);
    assert_int_equal(st.params + st.grads + st.master + st.optimizer, 16 * N8B);
    assert_int_equal(st.params, 0);
    /* DeepSpeed ZeRO-2 over 8, bf16 gradients: 2 + 14/8 */
    st = framework_states("deepspeed", 8, 2);
    assert_int_equal(st.params + st.grads + st.master + st.optimizer, 2 * N8B + 14 * N8B / 8);
    /* llm.c ZeRO-1 over 8: bf16 params and grads, fp32 master, m, v sharded: 4 + 12/8 */
    st = framework_states("llmc", 8, 1);
    assert_int_equal(st.params + st.grads + st.master + st.optimizer, 4 * N8B + 12 * N8B / 8);
    /* the transient copy needs a master to stand for it: fp32 without master keeps params */
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    assert_int_equal(plan_precision_preset("fp32", &p.precision), 0);
    p.framework.param_copy_transient = true;
    states_bytes sb;
    states_compute(1000, &p, &sb);
    assert_int_equal(sb.params, 4000);
}

/* A MoE stage (docs/memory.md §10): the experts' states shard over the
 * expert-data-parallel group, the rest over dp x cp. dp 8, edp 2, ZeRO-1:
 * 16-bit params and grads whole; fp32 master and Adam m, v in shards of
 * ceil(1000/8) = 125 and ceil(101/2) = 51 elements. */
static void test_moe_expert_sharding(void **state) {
    (void)state;
    plan_cfg p = tu_cfg(8, 1, 1, 1);
    p.zero = 1;
    states_bytes s;
    states_compute_moe(1000, 101, 2, &p, &s);
    assert_int_equal(s.params, (1000 + 101) * 2);
    assert_int_equal(s.grads, (1000 + 101) * 2);
    assert_int_equal(s.master, (125 + 51) * 4);
    assert_int_equal(s.optimizer, (125 + 51) * 8);
    p.zero = 2;
    states_compute_moe(1000, 101, 2, &p, &s);
    assert_int_equal(s.grads, (125 + 51) * 2);
    /* ZeRO-3 (FSDP2 of a MoE model, docs/memory.md §10): the parameters
     * shard too, the dense 1,000 over dp 8 (125) and the 101 expert
     * elements over edp 2 (51); with edp 1 (ep = dp) the experts stay whole */
    p.zero = 3;
    states_compute_moe(1000, 101, 2, &p, &s);
    assert_int_equal(s.params, (125 + 51) * 2);
    assert_int_equal(s.grads, (125 + 51) * 2);
    assert_int_equal(s.master, (125 + 51) * 4);
    states_compute_moe(1000, 101, 1, &p, &s);
    assert_int_equal(s.params, (125 + 101) * 2);
    assert_int_equal(s.optimizer, (125 + 101) * 8);
    p.zero = 2;
    /* no experts: states_compute's numbers */
    states_bytes d;
    states_compute_moe(1000, 0, 2, &p, &s);
    states_compute(1000, &p, &d);
    assert_memory_equal(&s, &d, sizeof s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moe_expert_sharding),
        cmocka_unit_test(test_presets_bytes_per_param), cmocka_unit_test(test_zero_stages_llama8b),
        cmocka_unit_test(test_padding_and_cp), cmocka_unit_test(test_optimizers_and_offload),
        cmocka_unit_test(test_framework_profiles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
