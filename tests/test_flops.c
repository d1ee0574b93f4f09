/* test_flops.c — FLOPs per step against Narayanan et al. 2021's closed forms
 * (docs/memory.md §7). */
#include <math.h>

#include "cost/act.h"
#include "cost/flops.h"
#include "tu.h"

static void assert_close(double got, double want) {
    if (fabs(got - want) > 1e-12 * fabs(want)) fail_msg("got %.17g, want %.17g", got, want);
}

/* Narayanan et al. 2021 eq. (3): with full recomputation a step of B sequences
 * costs 96 B s l h^2 (1 + s/(6h) + V/(16 l h)); without it the factor is 72 and
 * the last term V/(12 l h). GPT-3 175B uses standard attention. */
static void test_narayanan_formula(void **state) {
    (void)state;
    model_spec m = tu_model("gpt3-175b");
    const double B = 1536, s = 2048, l = 96, h = 12288, V = 50257;
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.global_batch = 1536;
    p.seq = 2048;
    p.recompute = RECOMPUTE_FULL;
    flops_step f;
    flops_compute(&m.cfg, &p, &f);
    assert_close(f.model_per_step, 72 * B * s * l * h * h * (1 + s / (6 * h) + V / (12 * l * h)));
    assert_close(f.hardware_per_step, 96 * B * s * l * h * h * (1 + s / (6 * h) + V / (16 * l * h)));
    assert_close(f.tokens, B * s);
    p.recompute = RECOMPUTE_NONE;
    flops_compute(&m.cfg, &p, &f);
    assert_close(f.hardware_per_step, f.model_per_step);
    /* selective recompute redoes QK^T and PV: 4 s h per layer per token */
    p.recompute = RECOMPUTE_SELECTIVE;
    flops_compute(&m.cfg, &p, &f);
    assert_close(f.hardware_per_step - f.model_per_step, B * s * l * 4 * s * h);
}

/* Llama 3 8B: 6 x (matmul weights + head) + 12 l s (heads x head_dim) per token.
 * Executed by flash attention: the causal half of QK^T and PV forward (2 s q),
 * backward dQ, dK, dV, dP and QK^T again over the same half (5 s q): 7 l s q. */
static void test_llama_6n(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.global_batch = 1;
    p.seq = 8192;
    flops_step f;
    flops_compute(&m.cfg, &p, &f);
    const double weights = 32.0 * (2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 14336) +
                           128256.0 * 4096;
    const double per_token = 6 * weights + 12 * 32.0 * 8192 * 4096;
    assert_close(f.model_per_token, per_token);
    assert_close(f.hardware_per_step, 8192 * (6 * weights + 7 * 32.0 * 8192 * 4096));
    /* full recompute replays the forward: 2 per weight, the causal half again */
    p.recompute = RECOMPUTE_FULL;
    flops_compute(&m.cfg, &p, &f);
    const double layer_w = 2 * 4096.0 * 4096 + 2 * 4096.0 * 1024 + 3 * 4096.0 * 14336;
    assert_close(f.hardware_per_step,
                 8192 * (6 * weights + 7 * 32.0 * 8192 * 4096 + 32 * (2 * layer_w + 2.0 * 8192 * 4096)));
}

static plan_cfg custom(plan_cfg p, const char *name) {
    p.recompute = RECOMPUTE_CUSTOM;
    p.recompute_tensors = 1u << act_name_find(name);
    return p;
}

/* Table policies add the forward FLOPs of the ops they replay, per token per
 * layer (docs/memory.md §3, "Recompute policies"). Llama 3 8B, s = 8192:
 * op (torchtitan) replays wk, wo and w3: 2h(kv + q + f); gelu and gelu+norm
 * replay only memory-bound ops: nothing; a custom list dropping the flash
 * output replays the kernel's causal half, 2 s q; one dropping mlp_norm.input
 * replays wo, 2 q h. */
static void test_policy_flops(void **state) {
    (void)state;
    model_spec m = tu_model("llama3-8b");
    const double h = 4096, q = 4096, kv = 1024, f = 14336, L = 32, s = 8192;
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.global_batch = 2;
    p.seq = 8192;
    flops_step none, f_;
    flops_compute(&m.cfg, &p, &none);
    const double tokens = 2 * s;
    p.recompute = RECOMPUTE_OP;
    flops_compute(&m.cfg, &p, &f_);
    assert_close(f_.hardware_per_step - none.hardware_per_step, tokens * L * 2 * h * (kv + q + f));
    assert_close(f_.model_per_step, none.model_per_step);
    p.recompute = RECOMPUTE_GELU;
    flops_compute(&m.cfg, &p, &f_);
    assert_close(f_.hardware_per_step, none.hardware_per_step);
    p.recompute = RECOMPUTE_GELU_NORM;
    flops_compute(&m.cfg, &p, &f_);
    assert_close(f_.hardware_per_step, none.hardware_per_step);
    plan_cfg c = custom(p, "attn.out=o.input");
    flops_compute(&m.cfg, &c, &f_);
    assert_close(f_.hardware_per_step - none.hardware_per_step, tokens * L * 2 * s * q);
    c = custom(p, "mlp_norm.input");
    flops_compute(&m.cfg, &c, &f_);
    assert_close(f_.hardware_per_step - none.hardware_per_step, tokens * L * 2 * q * h);

    /* GPT-3 175B (standard attention): op replays wk, wo and fc2 (the 6th
     * linear), 2h^2 + 2h^2 + 8h^2 = 12 h^2, and no batched GEMM (QK^T and PV
     * are saved); the score tensors as a custom list cost what selective does */
    model_spec g = tu_model("gpt3-175b");
    const double H = 12288, Lg = 96, S = 2048, B = 4;
    plan_cfg pg = tu_cfg(1, 1, 1, 1);
    pg.global_batch = 4;
    pg.seq = 2048;
    flops_compute(&g.cfg, &pg, &none);
    pg.recompute = RECOMPUTE_OP;
    flops_compute(&g.cfg, &pg, &f_);
    assert_close(f_.hardware_per_step - none.hardware_per_step, B * S * Lg * 12 * H * H);
    plan_cfg sc = pg;
    sc.recompute = RECOMPUTE_CUSTOM;
    sc.recompute_tensors = 1u << AN_ATTN_SOFTMAX | 1u << AN_ATTN_DROPOUT_MASK |
                           1u << AN_ATTN_DROPOUT_OUT;
    flops_compute(&g.cfg, &sc, &f_);
    pg.recompute = RECOMPUTE_SELECTIVE;
    flops_compute(&g.cfg, &pg, &none);
    assert_close(f_.hardware_per_step, none.hardware_per_step);
}

/* DeepSeek-V3 (docs/memory.md §7): a MoE layer multiplies only what its
 * tokens use. By hand from the config (hidden 7168, 128 heads, MLA q_lora
 * 1536, kv_lora 512, qk 128 + 64, v 128; 3 dense layers of ffn 18432, 58 MoE
 * layers with a router of 256 and 1 shared + 8 routed experts of 2048):
 * MLA weights 7168*1536 + 1536*128*192 + 7168*576 + 512*128*256 + 128*128*7168
 * = 187,105,280; a dense MLP 3*7168*18432 = 396,361,728; a MoE layer's
 * active weights 187,105,280 + 256*7168 + 9*3*7168*2048 = 585,302,016; the
 * head 129280*7168. Attention per token and layer: 2 s heads (192 + 128)
 * forward, x3 with the backward. */
static void test_moe_activated_flops(void **state) {
    (void)state;
    model_spec m = tu_model("deepseek-v3");
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.global_batch = 2, p.seq = 4096;
    flops_step f;
    flops_compute(&m.cfg, &p, &f);
    const double attn_w = 7168.0 * 1536 + 1536.0 * 128 * 192 + 7168.0 * 576 + 512.0 * 128 * 256 +
                          128.0 * 128 * 7168;
    assert_close(attn_w, 187105280.0);
    const double dense = attn_w + 3.0 * 7168 * 18432, moe = attn_w + 256.0 * 7168 + 9.0 * 3 * 7168 * 2048;
    assert_close(moe, 585302016.0);
    const double head = 129280.0 * 7168, attn = 2.0 * 4096 * 128 * (192 + 128);
    /* the MTP module (Megatron-LM training.py num_floating_point_operations,
     * mtp_num_layers): one more MoE layer and its attention, the 2h x h
     * projection and the output head again: 6 (585,302,016 + 102,760,448 +
     * 926,679,040) + 3 x 2 x 4096 x 128 x 320 = 10,695,081,984 per token */
    const double mtp = 6 * (moe + 2 * 7168.0 * 7168 + head) + 3 * attn;
    assert_close(mtp, 10695081984.0);
    assert_close(f.model_per_token, 6 * (3 * dense + 58 * moe + head) + 3 * 61 * attn + mtp);
    assert_close(f.model_per_step, f.model_per_token * 2 * 4096);
    /* about 6 x the 37.6B activated parameters per token (attention and MTP aside) */
    assert_true(f.model_per_token - 3 * 61 * attn - mtp < 6 * 37.6e9);
    assert_true(f.model_per_token - 3 * 61 * attn - mtp > 6 * 35e9);
    /* hardware, no recompute: flash attention's causal half, 3.5 x forward, 62 layers */
    assert_close(f.hardware_per_token,
                 6 * (3 * dense + 59 * moe + 2 * head + 2 * 7168.0 * 7168) + 62 * 0.5 * attn * 3.5);
}

/* DeepSeek-V3's recompute of the norms, the MLA up-projections and the
 * SwiGLU output (plans/deepseek-v3-2048xh800.yaml): attn.q replays q_up,
 * 2 x 1536 x 128 x 192 = 75,497,472, attn.k and attn.v the two halves of
 * kv_up, 2 x 512 x 128 x 128 = 16,777,216 each, per token in each of the
 * 61 + 1 (MTP) layers; the down projections (whose outputs are the latents)
 * are not replayed, nor the norms' and the activation's memory-bound ops.
 * A policy replaying w3 (w3.out dropped) replays 2 h f in the 3 dense
 * layers and 2 h (8 + 1) 2048 in the 58 + 1 MoE layers. */
static void test_moe_mla_replay_flops(void **state) {
    (void)state;
    model_spec m = tu_model("deepseek-v3");
    plan_cfg p = tu_cfg(1, 1, 1, 1);
    p.global_batch = 2, p.seq = 4096;
    flops_step none, f;
    flops_compute(&m.cfg, &p, &none);
    plan_cfg c = p;
    c.recompute = RECOMPUTE_CUSTOM;
    const char *names[] = {"qkv.input", "w1w3.input", "attn.q", "attn.k", "attn.v", "w2.input"};
    c.recompute_tensors = 0;
    for (int i = 0; i < 6; i++) c.recompute_tensors |= 1u << act_name_find(names[i]);
    flops_compute(&m.cfg, &c, &f);
    const double qkv = 2 * 1536.0 * 128 * 192 + 2 * 2 * 512.0 * 128 * 128;
    assert_close(qkv, 109051904.0);
    assert_close(f.hardware_per_token - none.hardware_per_token, 62 * qkv);
    assert_close(f.model_per_token, none.model_per_token);
    c = custom(p, "w3.out");
    flops_compute(&m.cfg, &c, &f);
    assert_close(f.hardware_per_token - none.hardware_per_token,
                 3 * 2 * 7168.0 * 18432 + 59 * 2 * 7168.0 * 9 * 2048);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_narayanan_formula),
        cmocka_unit_test(test_llama_6n),
        cmocka_unit_test(test_policy_flops),
        cmocka_unit_test(test_moe_activated_flops),
        cmocka_unit_test(test_moe_mla_replay_flops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
