#include <torch/torch.h>

#include <chrono>

#include "compress/pass.h"
#include "core/error.h"
#include "core/files.h"

namespace adze {

Pipeline parse_pipeline(const nlohmann::json& doc, const std::string& source) {
  const std::string file = "pipeline '" + source + "'";
  if (!doc.is_object() || !doc.contains("passes") || !doc["passes"].is_array())
    throw Error(ErrorKind::kInvalidConfig, file + ": expected {\"passes\": [...]}");
  for (const auto& [key, value] : doc.items())
    if (key != "passes" && key != "comment")
      throw Error(ErrorKind::kInvalidConfig, file + ": unknown key '" + key + "' (expected passes)");
  Pipeline p;
  p.source = source;
  int index = 0;
  for (const auto& step : doc["passes"]) {
    ++index;
    const std::string where = file + " step " + std::to_string(index);
    std::string name;
    nlohmann::json options;
    if (step.is_string()) {
      name = step.get<std::string>();
    } else if (step.is_object() && step.contains("name") && step["name"].is_string()) {
      name = step["name"].get<std::string>();
      for (const auto& [key, value] : step.items())
        if (key != "name" && key != "options")
          throw Error(ErrorKind::kInvalidConfig,
                      where + " (" + name + "): unknown key '" + key + "' (expected name, options)");
      if (step.contains("options")) options = step["options"];
    } else {
      throw Error(ErrorKind::kInvalidConfig, where + ": expected a pass name or {\"name\": ..., \"options\": {...}}");
    }
    const auto& entry = pass_registry().get(name, where);
    PipelineStep resolved{name, resolve_options(entry.options, options, where + " (" + name + ")")};
    try {
      entry.make(resolved.options);  // checks values (ranges, enumerations) before any pass runs
    } catch (const Error& e) {
      throw Error(e.kind(), where + " (" + name + "): " + e.what());
    }
    p.steps.push_back(std::move(resolved));
  }
  if (p.steps.empty()) throw Error(ErrorKind::kInvalidConfig, file + ": no passes");
  return p;
}

Pipeline load_pipeline(const std::string& path) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(read_file_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kInvalidConfig, "pipeline '" + path + "': not JSON (" + e.what() + ")");
  }
  return parse_pipeline(doc, path);
}

bool needs_training_data(const Pipeline& pipeline) {
  for (const auto& step : pipeline.steps)
    if (pass_registry().get(step.name, "pipeline '" + pipeline.source + "'").traits.learns_from_data) return true;
  return false;
}

std::vector<PassRecord> run_pipeline(const Pipeline& pipeline, CompressionContext& context) {
  std::vector<PassRecord> records;
  int index = 0;
  for (const auto& step : pipeline.steps) {
    ++index;
    const std::string where =
        "pipeline '" + pipeline.source + "' step " + std::to_string(index) + " (" + step.name + ")";
    const auto start = std::chrono::steady_clock::now();
    context.phase_seconds.clear();
    try {
      auto pass = pass_registry().get(step.name, where).make(step.options);
      pass->run(context);
    } catch (const Error& e) {
      throw Error(e.kind(), where + ": " + e.what());
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kInternal, where + ": " + first_line_of(e));
    }
    for (const auto& t : context.model->tensors())
      if (t.value.is_floating_point() && !torch::isfinite(t.value).all().item<bool>())
        throw Error(ErrorKind::kInternal, where + ": left NaN or Inf in '" + t.name + "'");
    records.push_back(PassRecord{step.name,
                                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(),
                                 std::move(context.phase_seconds)});
    context.phase_seconds.clear();
  }
  return records;
}

}  // namespace adze
