/* fuzz.h — what the fuzz targets share (docs/security.md §4).
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput for one reader of untrusted
 * input: the model, cluster, plan and sweep spec loaders, the Hugging Face
 * config.json reader and the execution-plan loader. Built with clang's
 * -fsanitize=fuzzer they are libFuzzer targets; built with fuzz_replay.c's main
 * they replay a corpus (every file under the paths given), which is how the
 * ordinary test suite checks the committed corpus under the sanitizers.
 */
#ifndef PS_FUZZ_H
#define PS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "spec/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A NUL-terminated copy of the input (the loaders read C strings; an embedded
 * NUL ends the text early, which is one more input shape). Free with free(). */
char *fuzz_text(const uint8_t *data, size_t size);

/* The built-in default plan, loaded once (model, cluster and layout for the
 * targets that fuzz one part of a plan). */
const plan_spec *fuzz_default_plan(void);

/* Check, evaluate and report a loaded plan as `parasim plan` does (closed
 * form, event simulation, table and JSON to /dev/null), so the fuzzers reach
 * the cost model and the reports with whatever the loaders accepted. */
void fuzz_evaluate(const plan_spec *spec);

#endif
