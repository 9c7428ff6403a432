// One compress run, shared by adze compress and the confirmation runs of adze search: the model loaded, the
// plan resolved against it, the pipeline run (calibration and fine-tuning from `train_data`, distilled from a
// second copy of the model), metrics before and after on `data`, the report made. Nothing is written.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compress/compressed_model.h"
#include "compress/pass.h"
#include "compress/plan.h"

namespace adze {

struct CompressRun {
  std::unique_ptr<Model> model;  ///< as compressed
  CompressionContext context;    ///< plan as applied, encodings, metrics
  nlohmann::ordered_json report;
};

/// `data` and `train_data` may be null (Error(kInvalidArgument) when the pipeline needs training data and has
/// none). `plan_source` names the plan in messages. `after_outcomes`, when set, receives the per-sample outcomes
/// of the evaluation after the pipeline (left empty when the pipeline evaluates "after" itself). `before`, when
/// set, is the uncompressed model's metrics on `data`, known to the caller and not measured again. `sync`, when
/// set, makes the finetune.* passes data-parallel over its ranks (compress/gradient_sync.h).
CompressRun compress_run(const std::string& model_path, const InputSpec& input, const Plan& plan,
                         const std::string& plan_source, const Pipeline& pipeline, const Dataset* data,
                         const Dataset* train_data, uint64_t seed, bool progress,
                         std::vector<uint8_t>* after_outcomes = nullptr, const Metrics* before = nullptr,
                         std::shared_ptr<GradientSync> sync = nullptr);

/// The run's result as exporters take it, in memory: `export_model(to_compressed_model(std::move(run), name),
/// ...)` writes what `adze compress` then `adze export` would, with no round trip through disk. The model is
/// the one the run compressed, traced at the run's input batch (load_compressed(dir, batch) traces a saved one
/// at another). `name` stands for the directory in messages and in what exporters record of their source.
CompressedModel to_compressed_model(CompressRun run, std::string name);

}  // namespace adze
