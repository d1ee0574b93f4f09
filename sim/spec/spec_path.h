/* spec_path.h — find a model or cluster spec given by name or by path.
 *
 * A value with a '/' or ending in .yaml/.yml/.json is a path: tried as given,
 * then relative to the directory of the file that named it. A bare name such
 * as "llama3-8b" is looked up as <dir>/<name>.yaml (and .json) in, in order:
 * $PARASIM_DATA/<dir>, the source tree's <dir> (compiled in), and the
 * installed data directory (compiled in). <dir> is "models" or "plans/clusters".
 */
#ifndef PS_SPEC_PATH_H
#define PS_SPEC_PATH_H

#include "base/err.h"

/* Resolve name into out. from_file is the spec that named it (may be NULL);
 * where says where the name was written, for the error. */
int spec_path_resolve(const char *name, const char *dir, const char *from_file,
                      const ps_loc *where, const char *field, char *out, int out_len,
                      ps_err *err);

/* The source tree's data directory compiled in (tests find fixtures there). */
const char *spec_path_data_dir(void);

#endif
