// The built-in cost models, in one list.
#include "hardware/cost_model.h"

namespace adze {

Registry<CostModel>::Entry roofline_entry();
Registry<CostModel>::Entry measured_entry();

Registry<CostModel>& cost_models() {
  static Registry<CostModel> registry = [] {
    Registry<CostModel> r("cost model");
    r.add(roofline_entry());
    r.add(measured_entry());
    return r;
  }();
  return registry;
}

}  // namespace adze
