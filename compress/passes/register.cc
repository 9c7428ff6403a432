// Every built-in pass, in one list. Order here is the order `adze passes` prints.
#include "compress/passes/passes.h"

namespace adze {

const Registry<Pass>& pass_registry() {
  static const Registry<Pass> registry = [] {
    Registry<Pass> r("pass");
    r.add(fold_bn_pass_entry());
    r.add(sparsity_nm_pass_entry());
    r.add(quantize_weights_pass_entry());
    r.add(calibrate_pass_entry());
    r.add(finetune_ste_pass_entry());
    r.add(finetune_admm_pass_entry());
    r.add(eval_pass_entry());
    return r;
  }();
  return registry;
}

}  // namespace adze
