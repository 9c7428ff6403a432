// fold-bn: folds inference-mode BatchNorms into the conv/linear before them (model/fold_bn.h).
#include "compress/passes/passes.h"
#include "model/fold_bn.h"

namespace adze {
namespace {

class FoldBnPass : public Pass {
 public:
  void run(CompressionContext& c) override {
    const FoldBnResult r = fold_batch_norm(*c.model);
    c.table = build_layer_table(*c.model);
    c.notes.push_back("fold-bn: folded " + std::to_string(r.folded.size()) + " BatchNorm(s), left " +
                      std::to_string(r.skipped));
  }
};

}  // namespace

PassRegistry::Entry fold_bn_pass_entry() {
  return {"fold-bn",
          "fold inference BatchNorm into the preceding conv/linear (numerically equivalent)",
          {},
          [](const nlohmann::json&) { return std::make_unique<FoldBnPass>(); }};
}

}  // namespace adze
