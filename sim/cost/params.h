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
} params_count;

/* Count parameters held by one tensor-parallel rank of tp (tp = 1: the whole
 * model). With tp > 1 and a vocabulary not divisible by tp, the vocab-parallel
 * tables hold ceil(vocab / tp) rows (the padding Megatron adds). */
void params_count_rank(const model_cfg *m, int64_t tp, params_count *out);

/* Total parameters of the model (unpadded, tied weights counted once). */
int64_t params_total(const model_cfg *m);

#endif
