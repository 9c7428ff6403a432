// Passes and pipelines.
//
// A pass is a named step with declared options that transforms a CompressionContext (the model, the plan as
// applied, the Encodings so far, the data). Passes are listed in one place (passes/register.cc); a pipeline
// is a JSON list of them:
//
//   {"passes": ["fold-bn", {"name": "sparsity.nm"}, "quantize.weights", {"name": "eval", "options": {"label":
//   "after"}}]}
//
// run_pipeline, not each pass, times every step, checks the model stays finite, and wraps errors with the
// step and pass names.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "compress/encoding.h"
#include "compress/plan.h"
#include "core/registry.h"
#include "data/dataset.h"
#include "data/eval.h"
#include "model/layer_table.h"
#include "model/model.h"

namespace adze {

class GradientSync;  // compress/gradient_sync.h

struct CompressionContext {
  Model* model = nullptr;
  LayerTable table;                             ///< of the model as it is now
  ResolvedPlan plan;                            ///< one config per layer of `table`
  std::map<std::string, Encoding> encodings;    ///< by layer name, as the passes left them
  std::map<std::string, at::Tensor> originals;  ///< each projected layer's weight before its first projection
  std::map<std::string, at::Tensor> latents;  ///< latent weights a fine-tuning pass left (the next continues from them)
  const Dataset* data = nullptr;              ///< evaluation data, when the pipeline needs it
  const Dataset* train_data = nullptr;        ///< training data: calibration and the finetune.* passes
  const Model* reference = nullptr;           ///< the uncompressed model (the teacher for distillation)
  std::map<std::string, Metrics> metrics;     ///< by label ("before", "after")
  bool progress = false;
  uint64_t seed = 0;
  std::vector<std::string> notes;  ///< what the passes did, one line each
  /// Data-parallel fine-tuning (compress/gradient_sync.h): each rank trains on its share of every batch, and
  /// the gradients are averaged over the ranks. Null: one process.
  std::shared_ptr<GradientSync> sync;
  /// Where the running pass's time went, for passes that time their parts (the finetune.* passes: forward and
  /// backward, the next batch, the gradient all-reduce, projection and update), in seconds; run_pipeline moves it
  /// into the pass's PassRecord.
  std::vector<std::pair<std::string, double>> phase_seconds;
};

class Pass {
 public:
  virtual ~Pass() = default;
  virtual void run(CompressionContext& context) = 0;
};

/// What a pass says about itself, so that callers need not know passes by name.
struct PassTraits {
  bool learns_from_data = false;  ///< calibrates or trains: needs train_data (and reference, the teacher)
  bool evaluates = false;         ///< measures the model into metrics[label] itself (the eval pass)
};
using PassRegistry = Registry<Pass, PassTraits>;

/// The built-in passes (core/builtins.def).
const PassRegistry& pass_registry();

struct PipelineStep {
  std::string name;
  nlohmann::json options;  ///< resolved: every declared option, defaults filled in
};

struct Pipeline {
  std::string source;
  std::vector<PipelineStep> steps;
};

/// Parses and validates a pipeline document against the registry (unknown pass or option, wrong types):
/// Error(kInvalidConfig) naming the file, the step number and the pass.
Pipeline parse_pipeline(const nlohmann::json& doc, const std::string& source);
Pipeline load_pipeline(const std::string& path);

/// Whether a step learns from data (PassTraits::learns_from_data): the caller then provides
/// train_data (and reference, the teacher for distillation).
bool needs_training_data(const Pipeline& pipeline);

struct PassRecord {
  std::string name;
  double seconds = 0;
  std::vector<std::pair<std::string, double>> phases;  ///< CompressionContext::phase_seconds, where timed
};

/// Runs every step in order. An error inside a pass is re-thrown as the same kind with
/// "pipeline '<source>' step N (<pass>): " in front.
std::vector<PassRecord> run_pipeline(const Pipeline& pipeline, CompressionContext& context);

}  // namespace adze
