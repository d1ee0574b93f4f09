/* gen_inputs.h — what `parasim generate` serves or evaluates: the requests
 * (prompts from a file, one per line, or built-in; a shared prefix; tokens to
 * generate per request) and the eval text, bytes as tokens. */
#ifndef PS_GEN_INPUTS_H
#define PS_GEN_INPUTS_H

#include "base/err.h"
#include "rt_gen.h"

#define GEN_FILE_MAX_BYTES ((int64_t)1 << 28) /* a prompts, prefix or eval file */
#define GEN_REQUESTS_MAX 65536
#define GEN_TOKENS_MAX ((int64_t)1 << 20) /* prefix + prompt + max_new of one request */

typedef struct {
    int32_t *prefix;
    int64_t n_prefix, n_req;
    rt_gen_request *req;   /* [n_req]: tokens (the prefix prepended), n, max_new, out */
    int32_t *tokens, *out; /* all requests' tokens and outputs */
} gen_inputs;

/* prompts: a file (NULL: the built-in prompts); prefix: a text or prefix_file a file
 * (either NULL); max_new_list: "N" or "a,b,c" (NULL: 32). 0, or -1 with err naming
 * the option or FILE:LINE:1, what was expected and what was found. */
int gen_inputs_load(gen_inputs *in, const char *prompts, const char *prefix,
                    const char *prefix_file, const char *max_new_list, ps_err *err);
void gen_inputs_free(gen_inputs *in);

/* The bytes of the eval text at path, at most cap of them (0: all): *tok malloc'd. */
int gen_eval_text_load(const char *path, int64_t cap, int32_t **tok, int64_t *n, ps_err *err);

#endif
