// sparsity.nm and quantize.weights: one-shot projections of each layer's weight as the plan says.
//
// sparsity.nm applies the plan's N:M pattern and unstructured ratio (weights stay float); quantize.weights
// quantizes the survivors, keeping the mask (and channel permutation) an earlier sparsity step chose. A layer the
// plan decomposes is left to quantize.weights, which projects it onto its factors in one go (their N:M masks,
// sparsity and quantization: compress/decompose.h), float factors included. Either replaces
// the model's weight by its Encoding's exact reconstruction, so that everything after (evaluation, fine-tuning, export)
// sees what will be deployed.
#include "compress/passes/passes.h"

namespace adze {
namespace {

enum class Stage { kSparsity, kQuantization };

void project_layers(CompressionContext& c, Stage stage) {
  int changed = 0;
  for (const auto& layer : c.table.layers) {
    LayerConfig config = c.plan.layers.at(layer.name);
    SparsityStructure keep;
    if (stage == Stage::kSparsity) {
      if ((!config.nm.enabled() && config.sparsity == 0) || config.decomposed()) continue;
      config.weight_bits = 32;
    } else {
      if (!config.quantized() && !config.decomposed()) continue;
      if (auto it = c.encodings.find(layer.name); it != c.encodings.end()) keep = it->second.structure();
    }
    const int index = c.model->find_tensor(layer.weight);
    const at::Tensor& weight = c.model->tensors().at(static_cast<std::size_t>(index)).value;
    Encoding e = project(weight, layer, config, keep);
    c.originals.emplace(layer.name, weight);  // kept only the first time: the weight before any projection
    c.model->set_tensor(index, e.decode().to(weight.scalar_type()));
    c.encodings.insert_or_assign(layer.name, std::move(e));
    ++changed;
  }
  c.notes.push_back(
      std::string(stage == Stage::kSparsity ? "sparsity.nm: sparsified " : "quantize.weights: quantized ") +
      std::to_string(changed) + " of " + std::to_string(c.table.layers.size()) + " layers");
}

class ProjectionPass : public Pass {
 public:
  explicit ProjectionPass(Stage stage) : stage_(stage) {}
  void run(CompressionContext& c) override { project_layers(c, stage_); }

 private:
  Stage stage_;
};

}  // namespace

PassRegistry::Entry sparsity_nm_pass_entry() {
  return {"sparsity.nm",
          "N:M (and unstructured) magnitude pruning of every layer the plan gives a pattern",
          {},
          [](const nlohmann::json&) { return std::make_unique<ProjectionPass>(Stage::kSparsity); }};
}

PassRegistry::Entry quantize_weights_pass_entry() {
  return {"quantize.weights",
          "one-shot weight quantization (PTQ) of every layer the plan gives <= 8 bits, and decomposition of every "
          "layer it decomposes (onto quantized factors); keeps earlier masks",
          {},
          [](const nlohmann::json&) { return std::make_unique<ProjectionPass>(Stage::kQuantization); }};
}

}  // namespace adze
