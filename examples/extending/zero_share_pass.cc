// A worked example of a pass (docs/design.md, "How to add"): "example.zero-share" notes, for every layer with
// an encoding, the share of its weights that are zero. As a built-in it would live in compress/passes/ and take
// one line of core/builtins.def: ADZE_PASS(zero_share_pass_entry).
#include <torch/torch.h>

#include "compress/pass.h"
#include "core/table.h"

namespace adze::example {
namespace {

class ZeroSharePass : public Pass {
 public:
  explicit ZeroSharePass(double at_least) : at_least_(at_least) {}
  void run(CompressionContext& c) override {
    for (const auto& [layer, e] : c.encodings) {
      const double zeros = e.decode().eq(0).to(torch::kDouble).mean().item<double>();
      if (zeros >= at_least_) c.notes.push_back("layer '" + layer + "': " + percent(zeros, 1) + " of weights are zero");
    }
  }

 private:
  double at_least_;
};

}  // namespace

PassRegistry::Entry zero_share_pass_entry() {
  struct Options {
    double at_least = 0;
  };
  return PassRegistry::entry("example.zero-share", "note each encoded layer's share of zero weights",
                             OptionList<Options>().add(&Options::at_least, "at_least",
                                                       "note only layers with at least this share", between(0, 1)),
                             [](const Options& o) { return std::make_unique<ZeroSharePass>(o.at_least); });
}

}  // namespace adze::example
