/* gen_inputs.c — what `parasim generate` serves or evaluates (gen_inputs.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/regular_file.h"
#include "gen_inputs.h"

static const char *const default_prompts[] = {
    "The quick brown fox",
    "Once upon a time, in a land far away,",
    "Q: What is the meaning of life?\nA:",
    "A",
};



/* The whole of a regular file (at most max bytes), malloc'd, *n its length. */
static int read_file(const char *opt, const char *path, int64_t max, char **buf, int64_t *n,
                     ps_err *err) {
    struct stat st;
    int fd = regular_file_open(path, &st);
    if (fd == -2) return ps_err_set(err, "%s %s: expected a regular file, found %s", opt, path,
                                    regular_file_kind(st.st_mode));
    if (fd < 0) return ps_err_set(err, "%s %s: cannot open: %s", opt, path, strerror(errno));
    if (st.st_size > max) {
        close(fd);
        return ps_err_set(err, "%s %s: expected at most %lld bytes, found %lld", opt, path,
                          (long long)max, (long long)st.st_size);
    }
    *buf = malloc((size_t)st.st_size + 1);
    int64_t got = 0;
    while (*buf && got < st.st_size) {
        ssize_t r = read(fd, *buf + got, (size_t)(st.st_size - got));
        if (r <= 0) break;
        got += r;
    }
    close(fd);
    if (!*buf || got != st.st_size) {
        free(*buf), *buf = NULL;
        return ps_err_set(err, "%s %s: cannot read it whole", opt, path);
    }
    (*buf)[got] = 0;
    *n = got;
    return 0;
}

void gen_inputs_free(gen_inputs *in) {
    free(in->prefix), free(in->req), free(in->tokens), free(in->out);
    memset(in, 0, sizeof *in);
}

/* max_new per request: "N" or "a,b,c" (one per request). */
static int max_new_parse(const char *s, int64_t n_req, int64_t *out, ps_err *err) {
    int64_t k = 0;
    for (const char *p = s ? s : "32"; k < GEN_REQUESTS_MAX;) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (end == p || errno || v < 1 || v > GEN_TOKENS_MAX || (*end && *end != ','))
            return ps_err_set(err, "--max-new: expected a count from 1 to %lld or a list a,b,c of "
                                   "them, found \"%s\"", (long long)GEN_TOKENS_MAX, s);
        out[k < n_req ? k : n_req] = v;
        k++;
        if (!*end) break;
        p = end + 1;
    }
    if (k == 1)
        for (int64_t i = 1; i < n_req; i++)
            out[i] = out[0];
    else if (k != n_req)
        return ps_err_set(err, "--max-new: expected one count or one per request (%lld), found %lld",
                          (long long)n_req, (long long)k);
    return 0;
}

int gen_inputs_load(gen_inputs *in, const char *prompts, const char *prefix,
                    const char *prefix_file, const char *max_new_list, ps_err *err) {
    memset(in, 0, sizeof *in);
    char *pf = NULL, *text = NULL;
    int64_t np = 0, nt = 0;
    if (prefix) np = (int64_t)strlen(prefix);
    else if (prefix_file && read_file("--prefix-file", prefix_file, GEN_TOKENS_MAX, &pf, &np, err)) return -1;
    const char *pre = prefix ? prefix : pf;
    in->prefix = malloc((size_t)(np + 1) * sizeof *in->prefix);
    for (int64_t i = 0; in->prefix && i < np; i++)
        in->prefix[i] = (unsigned char)pre[i];
    in->n_prefix = np;
    free(pf);
    /* the prompts: lines of the file, or the built-in ones */
    const char *src;
    if (prompts) {
        if (read_file("--prompts", prompts, GEN_FILE_MAX_BYTES, &text, &nt, err)) return -1;
        src = text;
    } else { /* the built-in prompts (one holds a newline): taken from the table */
        src = NULL;
        in->n_req = (int64_t)(sizeof default_prompts / sizeof *default_prompts);
    }
    int64_t lines = 0;
    if (src) {
        for (int64_t i = 0; i < nt; i++)
            lines += src[i] == '\n' || i == nt - 1;
        if (lines == 0) {
            free(text);
            return ps_err_set(err, "--prompts %s: expected one prompt per line, found an empty file",
                              prompts);
        }
        if (lines > GEN_REQUESTS_MAX) {
            free(text);
            return ps_err_set(err, "--prompts %s: expected at most %d prompts, found %lld",
                              prompts, GEN_REQUESTS_MAX, (long long)lines);
        }
        in->n_req = lines;
    }
    int rc = 0;
    int64_t *max_new = calloc((size_t)in->n_req + 1, sizeof *max_new);
    in->req = calloc((size_t)in->n_req, sizeof *in->req);
    if (!max_new || !in->req || !in->prefix) {
        rc = ps_err_set(err, "out of host memory for the prompts");
        goto out;
    }
    if ((rc = max_new_parse(max_new_list, in->n_req, max_new, err))) goto out;
    /* split into requests; total tokens and outputs */
    int64_t tot = 0, tot_out = 0;
    const char *p = src;
    for (int64_t r = 0; r < in->n_req; r++) {
        int64_t len;
        if (src) {
            const char *e = memchr(p, '\n', (size_t)(src + nt - p));
            len = e ? e - p : src + nt - p;
            if (len && p[len - 1] == '\r') len--; /* CRLF files */
        } else {
            len = (int64_t)strlen(default_prompts[r]);
        }
        if (np + len == 0) {
            rc = ps_err_set(err, "%s:%lld:1: prompt: expected at least one byte (or a --prefix), "
                                   "found an empty line", prompts, (long long)r + 1);
            goto out;
        }
        if (np + len + max_new[r] > GEN_TOKENS_MAX) {
            rc = ps_err_set(err, "%s:%lld:1: prompt: expected prefix + prompt + --max-new at most "
                                   "%lld tokens, found %lld", prompts ? prompts : "built-in",
                              (long long)r + 1, (long long)GEN_TOKENS_MAX,
                              (long long)(np + len + max_new[r]));
            goto out;
        }
        in->req[r] = (rt_gen_request){.n = np + len, .max_new = max_new[r]};
        tot += np + len, tot_out += max_new[r];
        if (src) p += len + (p[len] == '\r') + 1;
    }
    in->tokens = malloc((size_t)tot * sizeof *in->tokens);
    in->out = calloc((size_t)tot_out, sizeof *in->out);
    if (!in->tokens || !in->out) {
        rc = ps_err_set(err, "out of host memory for the prompts");
        goto out;
    }
    p = src;
    for (int64_t r = 0, t = 0, u = 0; r < in->n_req; r++) {
        const int64_t len = in->req[r].n - np;
        const char *s = src ? p : default_prompts[r];
        memcpy(in->tokens + t, in->prefix, (size_t)np * sizeof *in->tokens);
        for (int64_t i = 0; i < len; i++)
            in->tokens[t + np + i] = (unsigned char)s[i];
        in->req[r].tokens = in->tokens + t, in->req[r].out = in->out + u;
        t += in->req[r].n, u += in->req[r].max_new;
        if (src) p += len + (p[len] == '\r') + 1;
    }
out:
    free(text), free(max_new);
    return rc;
}


int gen_eval_text_load(const char *path, int64_t cap, int32_t **tok, int64_t *n, ps_err *err) {
    char *buf = NULL;
    int64_t nb = 0;
    if (read_file("--eval", path, GEN_FILE_MAX_BYTES, &buf, &nb, err)) return -1;
    if (cap && nb > cap) nb = cap;
    if (nb < 2) {
        free(buf);
        return ps_err_set(err, "--eval %s: expected at least 2 bytes of text, found %lld", path,
                          (long long)nb);
    }
    *tok = malloc((size_t)nb * sizeof **tok);
    for (int64_t i = 0; *tok && i < nb; i++)
        (*tok)[i] = (unsigned char)buf[i];
    free(buf);
    if (!*tok) return ps_err_set(err, "out of host memory for the eval text");
    *n = nb;
    return 0;
}

