// eval: measures the model as it is now on the pipeline's data, under a label ("before", "after").
#include "compress/passes/passes.h"
#include "core/error.h"

namespace adze {
namespace {

class EvalPass : public Pass {
 public:
  struct Options {
    std::string label = "after";
  };
  explicit EvalPass(Options o) : label_(std::move(o.label)) {}
  void run(CompressionContext& c) override {
    if (!c.data) throw Error(ErrorKind::kInvalidArgument, "needs evaluation data (--data)");
    c.metrics[label_] = evaluate(*c.model, *c.data, {c.model->traced_batch(), c.progress});
  }

 private:
  std::string label_;
};

}  // namespace

PassRegistry::Entry eval_pass_entry() {
  using Options = EvalPass::Options;
  return PassRegistry::entry(
      "eval", "evaluate the model as it is now (top-1, cross-entropy, perplexity)",
      OptionList<Options>().add(&Options::label, "label", "name under which the metrics are reported"),
      [](const Options& o) { return std::make_unique<EvalPass>(o); },
      PassTraits{/*learns_from_data=*/false, /*evaluates=*/true});
}

}  // namespace adze
