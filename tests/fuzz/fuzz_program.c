/* fuzz_program.c — an execution plan (JSON): loaded with every check the
 * runtime relies on (program_check), then replayed (memory timeline, bytes,
 * event times). */
#include "fuzz.h"
#include "program/program.h"
#include "program/replay.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    ps_err err = {{0}};
    program prog;
    if (!program_load_text((const char *)data, size, "fuzz-program.json", &prog, &err)) {
        replay_result r;
        if (!replay_program(&prog, &r, &err)) replay_free(&r); /* freed by a failed replay */
        program_free(&prog);
    }
    return 0;
}
