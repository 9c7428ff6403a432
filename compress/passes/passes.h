// The built-in passes, each defined in its own file; register.cc lists them, in one place.
#pragma once

#include "compress/pass.h"

namespace adze {

Registry<Pass>::Entry fold_bn_pass_entry();
Registry<Pass>::Entry sparsity_nm_pass_entry();
Registry<Pass>::Entry quantize_weights_pass_entry();
Registry<Pass>::Entry calibrate_pass_entry();
Registry<Pass>::Entry finetune_ste_pass_entry();
Registry<Pass>::Entry finetune_admm_pass_entry();
Registry<Pass>::Entry eval_pass_entry();

}  // namespace adze
