/* fuzz_replay.c — run a fuzz target over files, without libFuzzer.
 *
 * `fuzz_replay_X PATH...` feeds every regular file under each PATH (a file or
 * a directory, walked recursively) to the target once. The test suite runs it
 * over the committed corpus and the shipped specs under ASan + UBSan, so every
 * input that once crashed stays fixed with any compiler (docs/security.md §4).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define FUZZ_REPLAY_MAX_BYTES (16 << 20)

static long n_inputs;

static int run_file(const char *path, off_t size) {
    if (size > FUZZ_REPLAY_MAX_BYTES) return 0; /* libFuzzer's -max_len keeps inputs small */
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_replay: %s: cannot open\n", path);
        return -1;
    }
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf) abort();
    size_t got = fread(buf, 1, (size_t)size, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, got);
    free(buf);
    n_inputs++;
    return 0;
}

static int walk(const char *path) {
    struct stat st;
    if (lstat(path, &st)) {
        fprintf(stderr, "fuzz_replay: %s: not found\n", path);
        return -1;
    }
    if (S_ISREG(st.st_mode)) return run_file(path, st.st_size);
    if (!S_ISDIR(st.st_mode)) return 0;
    DIR *d = opendir(path);
    if (!d) return -1;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        char *child = malloc(len);
        if (!child) abort();
        snprintf(child, len, "%s/%s", path, e->d_name);
        rc = walk(child);
        free(child);
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (walk(argv[i])) return 1;
    if (!n_inputs) {
        fprintf(stderr, "fuzz_replay: no input files under the given paths\n");
        return 1;
    }
    printf("fuzz_replay: %ld inputs, no crash\n", n_inputs);
    return 0;
}
