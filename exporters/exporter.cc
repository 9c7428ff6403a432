#include "exporters/exporter.h"

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <set>

#include "core/error.h"
#include "core/files.h"

namespace adze {
namespace {

template <typename T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

std::string join(const std::vector<std::string>& items, const std::string& empty = "none") {
  if (items.empty()) return empty;
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

std::vector<std::string> bits_list(const std::vector<int>& bits, const char* zero) {
  std::vector<std::string> out;
  for (int b : bits) out.push_back(b == 0 || b == 32 ? zero : std::to_string(b));
  return out;
}

std::vector<std::string> nm_list(const Contract& c) {
  if (c.any_nm) return {"any N:M"};
  std::vector<std::string> out;
  for (const auto& p : c.nm) out.push_back(p.to_string());
  return out;
}

}  // namespace

std::string Violation::to_string() const {
  return (layer.empty() ? std::string("graph") : "layer '" + layer + "'") + ": " + field + " " + found +
         " (the format allows " + allowed + ")";
}

std::vector<Violation> check_layer_config(const Contract& c, const std::string& layer, const LayerConfig& config) {
  std::vector<Violation> out;
  auto add = [&](const std::string& field, const std::string& found, const std::string& allowed) {
    out.push_back(Violation{layer, field, found, allowed});
  };
  if (config.quantized()) {
    if (!contains(c.weight_bits, config.weight_bits))
      add("weight_bits", std::to_string(config.weight_bits), join(bits_list(c.weight_bits, "float")));
    if (!contains(c.granularities, config.granularity)) {
      std::vector<std::string> g;
      for (auto x : c.granularities) g.push_back(to_string(x));
      add("granularity", to_string(config.granularity), join(g));
    }
    if (!config.symmetric && traits_of(config.quantizer).zero_points && !c.asymmetric_weights)
      add("symmetric", "false", "symmetric weights only");
    if (!contains(c.quantizers, config.quantizer)) {
      std::vector<std::string> q;
      for (auto x : c.quantizers) q.push_back(to_string(x));
      add("quantizer", to_string(config.quantizer), join(q) + " only");
    }
  } else if (!contains(c.weight_bits, 32)) {
    add("weight_bits", std::to_string(config.weight_bits), join(bits_list(c.weight_bits, "float")));
  }
  if (config.act_bits != 0 && !contains(c.act_bits, config.act_bits))
    add("act_bits", std::to_string(config.act_bits), join(bits_list(c.act_bits, "float")));
  if (config.nm.enabled() && !c.any_nm && !contains(c.nm, config.nm))
    add("nm", config.nm.to_string(), join(nm_list(c), "dense only"));
  if (config.permute && !c.permutation) add("permute", "true", "no channel permutation");
  if (config.decomposed() && !contains(c.decompositions, config.decompose)) {
    std::vector<std::string> d;
    for (auto x : c.decompositions) d.push_back(to_string(x));
    add("decompose", to_string(config.decompose), join(d, "no decomposition"));
  }
  if (config.sparsity > 0 && !c.unstructured)
    add("sparsity", std::to_string(config.sparsity), "no unstructured sparsity");
  return out;
}

std::vector<Violation> check_contract(const Contract& c, const CompressedModel& m) {
  std::vector<Violation> out;
  for (const auto& layer : m.table.layers) {
    const auto v = check_layer_config(c, layer.name, m.plan.layers.at(layer.name));
    out.insert(out.end(), v.begin(), v.end());
  }
  if (!c.ops.empty()) {
    std::set<std::string> unsupported;
    for (const auto* node : m.model.graph().nodes()) {
      const std::string kind = node->kind().toQualString();
      if (kind.rfind("prim::", 0) == 0) continue;  // constants, lists, tuples: structure, not ops
      if (!contains(c.ops, kind)) unsupported.insert(kind);
    }
    for (const auto& op : unsupported) out.push_back(Violation{"", "op", op, "the ops listed by 'adze exporters'"});
  }
  return out;
}

nlohmann::json to_json(const Contract& c) {
  std::vector<std::string> g;
  for (auto x : c.granularities) g.push_back(to_string(x));
  std::vector<std::string> accelerated_nm;
  for (const auto& p : c.accelerated_nm) accelerated_nm.push_back(p.to_string());
  std::vector<std::string> quantizer_names;
  for (auto q : c.quantizers) quantizer_names.push_back(to_string(q));
  std::vector<std::string> decompositions;
  for (auto d : c.decompositions) decompositions.push_back(to_string(d));
  return {
      {"weight_bits", bits_list(c.weight_bits, "float")},
      {"granularities", g},
      {"asymmetric_weights", c.asymmetric_weights},
      {"quantizers", quantizer_names},
      {"act_bits", bits_list(c.act_bits, "float")},
      {"nm", nm_list(c)},
      {"unstructured", c.unstructured},
      {"permutation", c.permutation},
      {"decompositions", decompositions},
      {"ops", c.ops.empty() ? std::vector<std::string>{"any"} : c.ops},
      {"accelerated",
       {{"weight_bits", bits_list(c.accelerated_weight_bits, "float")}, {"nm", accelerated_nm}, {"notes", c.notes}}}};
}

void export_model(const CompressedModel& model, const std::string& format, const nlohmann::json& options,
                  const std::string& path) {
  const auto& entry = exporter_registry().get(format, "--format");
  auto exporter = entry.make(resolve_options(entry.options, options, "exporter '" + format + "'"));
  const std::vector<Violation> violations = check_contract(exporter->contract(), model);
  if (!violations.empty()) {
    std::string message = "'" + model.dir + "' cannot be exported as " + format + ": " +
                          std::to_string(violations.size()) + " violation(s) of its contract";
    for (const auto& v : violations) message += "\n  " + v.to_string();
    throw Error(ErrorKind::kUnsupported, message);
  }
  require_new_output(path, "export path");
  exporter->write(model, path);
}

}  // namespace adze
