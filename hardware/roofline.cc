#include <algorithm>

#include "compress/decompose.h"
#include "compress/encoding_io.h"
#include "core/error.h"
#include "hardware/cost_model.h"

namespace adze {

namespace {

double bytes_per_element(const Target& t, const LayerConfig& c) {
  if (c.act_bits > 0) return c.act_bits / 8.0;
  return t.float_precision == "fp16" ? 2.0 : 4.0;
}

class Roofline : public CostModel {
 public:
  LayerCost layer(const Target& target, const Layer& layer, const LayerConfig& config, int64_t batch) const override {
    const std::string why = target.unsupported(config);
    if (!why.empty()) throw Error(ErrorKind::kUnsupported, "layer '" + layer.name + "': " + why);
    LayerCost c;
    c.precision = target.compute_precision(config);
    const double speedup = target.nm_compute_speedup(config);
    const double n = static_cast<double>(batch);
    c.macs = factored_macs(layer, config) * n / speedup;  // a decomposed layer runs as its factors
    c.compute_s = c.macs / target.macs_per_s.at(c.precision).value;
    // Float weights are stored in the precision they compute in (fp16 on a GPU), quantized ones as encoded.
    LayerConfig stored = config;
    if (!config.quantized()) stored.weight_bits = c.precision == "fp16" ? 16 : 32;
    c.weight_bytes = planned_layer_bytes(layer, stored);
    if (layer.kind == LayerKind::kEmbedding)  // a lookup reads only the rows it gathers
      c.weight_bytes = std::min(c.weight_bytes, static_cast<double>(layer.output_elements) * n *
                                                    static_cast<double>(stored.weight_bits) / 8.0);
    c.activation_bytes =
        static_cast<double>(layer.input_elements + layer.output_elements) * n * bytes_per_element(target, config);
    const MemoryLevel& w = weight_level(target);
    const MemoryLevel& a = activation_level(target, c.activation_bytes);
    c.weight_level = w.name;
    c.activation_level = a.name;
    c.memory_s = c.weight_bytes / w.bytes_per_s.value + c.activation_bytes / a.bytes_per_s.value;
    c.latency_s = target.layer_overhead_s.value + std::max(c.compute_s, c.memory_s);
    c.energy_j = (c.macs * target.pj_per_mac.at(c.precision).value + c.weight_bytes * w.pj_per_byte.value +
                  c.activation_bytes * a.pj_per_byte.value) *
                 1e-12;
    return c;
  }

 private:
  // Weights come from the level that must hold them (flash on a microcontroller), else from the outermost.
  static const MemoryLevel& weight_level(const Target& target) {
    return target.weights_in.empty() ? target.memory.front() : *target.level(target.weights_in);
  }
  // Activations stay in the innermost level that holds a layer's input and output, else go to the outermost.
  static const MemoryLevel& activation_level(const Target& target, double bytes) {
    if (!target.activations_in.empty()) return *target.level(target.activations_in);
    for (auto it = target.memory.rbegin(); it != target.memory.rend(); ++it)
      if (bytes <= it->bytes.value) return *it;
    return target.memory.front();
  }
};

}  // namespace

Registry<CostModel>::Entry roofline_entry() {
  return {"roofline",
          "analytical: max(compute at the target's peak, bytes at its bandwidths) + a per-layer overhead; energy per "
          "MAC and per byte moved",
          {},
          [](const nlohmann::json&) { return std::make_unique<Roofline>(); }};
}

ModelCost model_cost(const CostModel& model, const Target& t, const LayerTable& table,
                     const std::map<std::string, LayerConfig>& configs, int64_t batch) {
  ModelCost m;
  std::vector<std::string> problems;
  for (const Layer& l : table.layers) {
    const auto it = configs.find(l.name);
    const LayerConfig config = it == configs.end() ? LayerConfig{} : it->second;
    try {
      m.layers.emplace_back(l.name, model.layer(t, l, config, batch));
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::kUnsupported) throw;
      problems.push_back(e.what());
    }
  }
  if (!problems.empty()) {
    std::string text = "the plan does not run on target '" + t.name + "': " + std::to_string(problems.size()) +
                       " layer(s) outside what it supports";
    for (const auto& p : problems) text += "\n  " + p;
    throw Error(ErrorKind::kUnsupported, text);
  }
  double loaded = 0, finish = 0;
  for (const auto& [name, c] : m.layers) {
    m.latency_s += c.latency_s;
    m.energy_j += c.energy_j;
    m.weight_bytes += c.weight_bytes;
    m.peak_activation_bytes = std::max(m.peak_activation_bytes, c.activation_bytes);
    if (t.storage_bytes_per_s) {
      loaded += c.weight_bytes / t.storage_bytes_per_s->value;
      finish = std::max(finish, loaded) + c.latency_s;
    }
  }
  m.streamed_latency_s = finish;
  auto check_fit = [&](const std::string& level, double bytes, const char* what) {
    if (level.empty()) return;
    const MemoryLevel* l = t.level(level);
    if (bytes > l->bytes.value)
      m.fit_problems.push_back(std::string(what) + " " + std::to_string(static_cast<int64_t>(bytes)) +
                               " B do not fit " + level + " (" + std::to_string(static_cast<int64_t>(l->bytes.value)) +
                               " B)");
  };
  check_fit(t.weights_in, m.weight_bytes, "weights");
  check_fit(t.activations_in, m.peak_activation_bytes, "activations");
  return m;
}

nlohmann::json to_json(const ModelCost& cost) {
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& [name, c] : cost.layers)
    layers.push_back({{"layer", name},
                      {"precision", c.precision},
                      {"macs", c.macs},
                      {"weight_bytes", c.weight_bytes},
                      {"activation_bytes", c.activation_bytes},
                      {"weight_level", c.weight_level},
                      {"activation_level", c.activation_level},
                      {"compute_s", c.compute_s},
                      {"memory_s", c.memory_s},
                      {"latency_s", c.latency_s},
                      {"energy_j", c.energy_j},
                      {"bound", c.memory_bound() ? "memory" : "compute"}});
  return {{"layers", layers},
          {"latency_s", cost.latency_s},
          {"energy_j", cost.energy_j},
          {"weight_bytes", cost.weight_bytes},
          {"peak_activation_bytes", cost.peak_activation_bytes},
          {"streamed_latency_s", cost.streamed_latency_s},
          {"fit_problems", cost.fit_problems}};
}

}  // namespace adze
