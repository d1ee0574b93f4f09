/* framework_load.h — framework profiles: what differs between real
 * implementations of the same plan (docs/memory.md "Framework profiles",
 * docs/specs.md "Framework profiles").
 *
 * A plan's `framework: megatron | deepspeed | fsdp2 | llmc` (or a path) names a
 * profile, plans/frameworks/NAME.yaml, found like models/ and plans/clusters/
 * (spec_path.h: $PARASIM_DATA, the source tree, the installed data). A profile
 * holds sourced constants the memory model reads (its `memory:` map, into
 * plan_cfg.framework) and a `plan:` map of plan-field defaults, merged under
 * the plan's own tree before the plan is decoded: a field the plan writes (or
 * --set gives, or a sweep varies) wins; a mapping merges key by key; a list
 * or scalar is taken whole. Merged values keep their place in the profile
 * file, so an error in one names the profile's file:line:col. A plan without
 * `framework:` is left exactly as it was.
 */
#ifndef PS_FRAMEWORK_LOAD_H
#define PS_FRAMEWORK_LOAD_H

#include "base/err.h"
#include "spec/plan.h"
#include "spec/ynode.h"

/* Values of the profile's memory.loss (plan_fw_loss order), memory.grad_bucket
 * (separate, none: plan_framework.grad_bucket_none) and memory.param_copy
 * (persistent, transient: .param_copy_transient). */
extern const char *const framework_loss_names[], *const framework_grad_bucket_names[],
    *const framework_param_copy_names[];
/* memory.optimizer_grad_copy: fp32 (16-bit gradients are widened to an fp32
 * copy for the update), none (.optimizer_grad_copy_none: the kernel reads them). */
extern const char *const framework_optimizer_grad_copy_names[];

/* kernels.attention (model, standard, flash: plan_framework.attention) and
 * kernels.dropout (model, none: .no_dropout). */
extern const char *const framework_attention_names[], *const framework_dropout_names[];

/* What the profile's `kernels:` changes in the model as the framework runs it
 * (plan_load calls it once the model is loaded): its attention kernel, and no
 * dropout where the framework has none. */
void framework_apply_model(const plan_framework *fw, model_cfg *m);

/* If root names a framework, load its profile, merge its `plan:` defaults
 * into root, and fill out->cfg.framework and out->framework_name, _path and
 * _source. out->path is the file that names it (relative paths resolve from
 * there). Returns 0, or -1 with a located error. */
int framework_apply(ynode *root, plan_spec *out, ps_err *err);

#endif
