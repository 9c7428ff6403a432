// eval: measures the model as it is now on the pipeline's data, under a label ("before", "after").
#include "compress/passes/passes.h"
#include "core/error.h"

namespace adze {
namespace {

class EvalPass : public Pass {
 public:
  explicit EvalPass(std::string label) : label_(std::move(label)) {}
  void run(CompressionContext& c) override {
    if (!c.data) throw Error(ErrorKind::kInvalidArgument, "needs evaluation data (--data)");
    c.metrics[label_] = evaluate(*c.model, *c.data, {c.model->traced_batch(), c.progress});
  }

 private:
  std::string label_;
};

}  // namespace

PassRegistry::Entry eval_pass_entry() {
  return {"eval",
          "evaluate the model as it is now (top-1, cross-entropy, perplexity)",
          {{"label", "string", "after", "name under which the metrics are reported"}},
          [](const nlohmann::json& o) { return std::make_unique<EvalPass>(o.at("label").get<std::string>()); },
          PassTraits{/*learns_from_data=*/false, /*evaluates=*/true}};
}

}  // namespace adze
