/* params.h — parameter counts of a model, whole or as held by one tensor-
 * parallel rank (docs/memory.md §1).
 *
 * Megatron-LM's layout (Shoeybi et al. 2019; Narayanan et al. 2021 §2.3):
 * q/k/v and the MLP's up projections (w1, w3 or fc1) are column-parallel
 * (split by output features, their biases too); the attention output o and
 * the MLP down projection (w2 or fc2) are row-parallel (split by input
 * features, bias replicated); norms and learned position embeddings are
 * replicated; the word embedding and the output head are vocab-parallel with
 * the vocabulary padded up to a multiple of tp.
 */
#ifndef PS_PARAMS_H
#define PS_PARAMS_H

#include <stdint.h>

#include "spec/model.h"

typedef struct {
    int64_t embedding;   /* word embedding rows x hidden */
    int64_t position;    /* learned position table (0 for rope) */
    int64_t attn;        /* per layer: q, k, v, o weights and biases */
    int64_t mlp;         /* per layer: MLP weights and biases */
    int64_t norms;       /* per layer: the two norms */
    int64_t layer;       /* attn + mlp + norms */
    int64_t final_norm;
    int64_t output;      /* output head; 0 when tied to the embedding */
    int64_t matmul_per_layer; /* weight elements that take part in matmuls */
    int64_t total;       /* whole model on one rank (pp = 1) */
    /* ---- Mixture of experts (all 0 for a dense model; docs/memory.md §1 "MoE").
     * attn and norms are the same in dense and MoE layers; mlp and layer above
     * describe a dense layer (ffn_hidden). A MoE layer holds attn + norms +
     * router + shared + experts x expert. */
    int64_t router;      /* per MoE layer: experts x hidden (+ experts bias terms), replicated */
    int64_t expert;      /* one routed expert's MLP, whole (not split by tp or etp) */
    int64_t shared;      /* per MoE layer: the shared experts on one tp rank */
    int64_t moe_layer;   /* one MoE layer on one tp rank with every routed expert (ep = etp = 1) */
    int64_t moe_matmul_active; /* weight elements one token multiplies in a MoE layer (tp = 1) */
    int64_t mtp;         /* the multi-token-prediction modules, without the shared embedding
                            and head (not in total; DeepSeek-V3 reports them apart) */
    int64_t activated;   /* parameters one token uses (tp = 1): total less the routed experts
                            it is not sent to; = total for a dense model */
} params_count;

/* Count parameters held by one tensor-parallel rank of tp (tp = 1: the whole
 * model). With tp > 1 and a vocabulary not divisible by tp, the vocab-parallel
 * tables hold ceil(vocab / tp) rows (the padding Megatron adds). */
void params_count_rank(const model_cfg *m, int64_t tp, params_count *out);

/* Total parameters of the model (unpadded, tied weights counted once). */
int64_t params_total(const model_cfg *m);

/* Parameters of main-model layers [first, first + n) on one tp rank with every
 * routed expert held (a dense model: n x layer). */
int64_t params_layers(const model_cfg *m, const params_count *pc, int64_t first, int64_t n);

#endif
