#include "search/between_layers.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "compress/compress_run.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/shape.h"
#include "exporters/exporter.h"
#include "hardware/host_timings.h"
#include "model/frontend.h"
#include "runtime/packed_model.h"

namespace adze {

namespace {

double measure_between_layers(const std::string& model_path, const InputSpec& input, int64_t batch, int runs) {
  InputSpec at_batch = input;
  if (!at_batch.shape.empty()) at_batch.shape[0] = batch;
  const char* source = "8-bit weights (latency between layers)";
  const Plan plan = parse_plan(
      nlohmann::ordered_json::parse(R"({"defaults": {"weight_bits": 8, "scale_method": "minmax"}})"), source);
  const Pipeline pipeline =
      parse_pipeline(nlohmann::json::parse(R"({"passes": ["fold-bn", "quantize.weights"]})"), source);
  CompressedModel m = to_compressed_model(
      compress_run(model_path, at_batch, plan, source, pipeline, nullptr, nullptr, 0, false), "between layers");
  const ScratchDir dir("adze-between-layers");
  const std::string file = (dir.path() / "w8.adze").string();
  export_model(m, "packed", nlohmann::json::object(), file);
  const packed::PackedModel p = packed::PackedModel::open(file);
  // The median of five profiles: one profile's mean can catch a burst of this machine's other work.
  std::vector<double> sums;
  const at::Tensor x = make_sample_input(at_batch);
  for (int i = 0; i < 5; ++i) {
    double sum = 0;
    for (const auto& node : p.profile(x, std::max(1, runs / 5)))
      if (node.layer.empty()) sum += node.seconds;
    sums.push_back(sum);
  }
  std::nth_element(sums.begin(), sums.begin() + 2, sums.end());
  const double seconds = sums[2];
  return seconds;
}

}  // namespace

double seconds_between_layers(const std::string& model_path, const InputSpec& input, int64_t batch, int runs) {
  const std::string key = "between layers of " + ContentHash().add_file(model_path).hex() + " input " +
                          shape_to_string(input.shape) + " " + input.dtype + " batch " + std::to_string(batch);
  return cached_host_seconds(key, [&] { return measure_between_layers(model_path, input, batch, runs); });
}

}  // namespace adze
