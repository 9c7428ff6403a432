// The built-in cost models, from the one list of built-ins.
#include "hardware/cost_model.h"

namespace adze {

#define ADZE_COST_MODEL(entry) Registry<CostModel>::Entry entry();
#include "core/builtins.def"

const Registry<CostModel>& cost_models() {
  static const Registry<CostModel> registry("cost model", {
#define ADZE_COST_MODEL(entry) entry(),
#include "core/builtins.def"
                                                          });
  return registry;
}

}  // namespace adze
