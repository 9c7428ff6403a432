// A worked example of a cost model (docs/design.md, "How to add"): "example.flat" prices a layer by its MACs
// at one rate for every precision, and its weight bytes as stored. As a built-in it would live in hardware/
// and take one line of core/builtins.def: ADZE_COST_MODEL(flat_entry).
#include "compress/encoding_io.h"
#include "hardware/cost_model.h"

namespace adze::example {
namespace {

class FlatCostModel : public CostModel {
 public:
  explicit FlatCostModel(double macs_per_s) : macs_per_s_(macs_per_s) {}
  LayerCost layer(const Target& target, const Layer& layer, const LayerConfig& config, int64_t batch) const override {
    LayerCost c;
    c.precision = config.quantized() ? "int" + std::to_string(config.weight_bits) : "fp32";
    c.macs = static_cast<double>(layer.macs) * static_cast<double>(batch);
    c.compute_s = c.macs / macs_per_s_;
    c.weight_bytes = planned_layer_bytes(layer, config);
    c.latency_s = c.compute_s;
    return c;
  }

 private:
  double macs_per_s_;
};

}  // namespace

Registry<CostModel>::Entry flat_entry() {
  struct Options {
    double macs_per_s = 1e9;
  };
  return Registry<CostModel>::entry(
      "example.flat", "MACs at one rate, whatever the precision",
      OptionList<Options>().add(&Options::macs_per_s, "macs_per_s", "multiply-accumulates per second", above(0)),
      [](const Options& o) { return std::make_unique<FlatCostModel>(o.macs_per_s); });
}

}  // namespace adze::example
