#include "hardware/target.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "compress/encoding.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "hardware/builtin_targets.h"
#include "hardware/host_calibration.h"

namespace adze {

namespace {

constexpr const char* kSchema = "adze.target.v1";
const std::set<std::string> kPrecisions = {"fp32", "fp16", "int4", "int8", "int16"};

class Reader {
 public:
  Reader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    if (!j_.is_object()) fail("", "expected a JSON object");
  }
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw Error(ErrorKind::kInvalidConfig,
                "target " + where_ + (field.empty() ? "" : " field '" + field + "'") + ": " + what);
  }
  const nlohmann::json& at(const std::string& field) const {
    seen_.insert(field);
    if (!j_.contains(field)) fail(field, "missing");
    return j_.at(field);
  }
  bool has(const std::string& field) const {
    seen_.insert(field);
    return j_.contains(field);
  }
  std::string text(const std::string& field) const {
    const auto& v = at(field);
    if (!v.is_string() || v.get<std::string>().empty()) fail(field, "expected a non-empty string");
    return v.get<std::string>();
  }
  Figure figure(const nlohmann::json& v, const std::string& field) const {
    if (!v.is_object() || !v.contains("value"))
      fail(field, "expected a figure {\"value\": number, \"source\": \"where it comes from\"}");
    if (!v.contains("source") || !v["source"].is_string() || v["source"].get<std::string>().empty())
      fail(field, "every figure needs a source (a citation, or \"assumption: why\")");
    for (const auto& [k, x] : v.items())
      if (k != "value" && k != "source") fail(field, "unknown key '" + k + "' (a figure has value and source)");
    if (!v["value"].is_number() || !std::isfinite(v["value"].get<double>()) || v["value"].get<double>() <= 0)
      fail(field, "value " + v["value"].dump() + " is not a positive finite number");
    return {v["value"].get<double>(), v["source"].get<std::string>()};
  }
  Figure figure(const std::string& field) const { return figure(at(field), field); }
  std::map<std::string, Figure> figures(const std::string& field,
                                        const std::function<void(const std::string&)>& check_key) const {
    const auto& v = at(field);
    if (!v.is_object()) fail(field, "expected an object of figures");
    std::map<std::string, Figure> out;
    for (const auto& [k, x] : v.items()) {
      check_key(k);
      out[k] = figure(x, field + "." + k);
    }
    return out;
  }
  std::vector<int> bits(const std::string& field, const std::set<int>& allowed) const {
    const auto& v = at(field);
    if (!v.is_array() || v.empty()) fail(field, "expected a non-empty list of bit-widths");
    std::vector<int> out;
    for (const auto& x : v) {
      if (!x.is_number_integer() || !allowed.count(x.get<int>()))
        fail(field, "bit-width " + x.dump() + " (expected one of " + join({allowed.begin(), allowed.end()}) + ")");
      out.push_back(x.get<int>());
    }
    return out;
  }
  void no_unknown_fields() const {
    for (const auto& [k, v] : j_.items())
      if (!seen_.count(k)) fail(k, "unknown field");
  }

 private:
  const nlohmann::json& j_;
  std::string where_;
  mutable std::set<std::string> seen_;
};

}  // namespace

Target parse_target(const nlohmann::json& j, const std::string& where) {
  const Reader r(j, "'" + where + "'");
  Target t;
  if (r.text("schema") != kSchema) r.fail("schema", "'" + r.text("schema") + "' (this adze reads " + kSchema + ")");
  t.name = r.text("name");
  t.description = r.text("description");
  t.kind = r.text("kind");
  if (!std::set<std::string>{"gpu", "cpu", "npu", "mcu", "fpga"}.count(t.kind))
    r.fail("kind", "'" + t.kind + "' (expected gpu, cpu, npu, mcu or fpga)");
  t.float_precision = r.text("float_precision");
  auto precision = [&](const std::string& field) {
    return [&r, field](const std::string& k) {
      if (!kPrecisions.count(k)) r.fail(field + "." + k, "unknown precision (expected fp32, fp16, int4, int8, int16)");
    };
  };
  t.macs_per_s = r.figures("macs_per_s", precision("macs_per_s"));
  t.pj_per_mac = r.figures("pj_per_mac", precision("pj_per_mac"));
  if (t.float_precision != "none" && !t.macs_per_s.count(t.float_precision))
    r.fail("float_precision", "'" + t.float_precision + "' has no macs_per_s figure (or say \"none\")");
  for (const auto& [p, f] : t.macs_per_s)
    if (!t.pj_per_mac.count(p)) r.fail("pj_per_mac", "no figure for " + p + ", which macs_per_s lists");
  t.weight_bits = r.bits("weight_bits", {2, 3, 4, 5, 6, 7, 8, 16, 32});
  t.act_bits = r.bits("act_bits", {0, 4, 8, 16});
  t.nm_speedup = r.figures("nm_speedup", [&](const std::string& k) {
    try {
      if (!NMPattern::parse(k).enabled()) throw Error(ErrorKind::kInvalidConfig, "dense");
    } catch (const Error&) {
      r.fail("nm_speedup." + k, "not an N:M pattern such as \"2:4\"");
    }
  });
  if (r.has("nm_flexible_efficiency")) t.nm_flexible_efficiency = r.figure("nm_flexible_efficiency");
  t.layer_overhead_s = r.figure("layer_overhead_s");
  const auto& memory = r.at("memory");
  if (!memory.is_array() || memory.empty()) r.fail("memory", "expected a list of levels, outermost first");
  for (std::size_t i = 0; i < memory.size(); ++i) {
    const std::string field = "memory[" + std::to_string(i) + "]";
    const Reader m(memory[i], "'" + where + "' " + field);
    MemoryLevel level{m.text("name"), m.figure("bytes"), m.figure("bytes_per_s"), m.figure("pj_per_byte")};
    m.no_unknown_fields();
    if (t.level(level.name)) r.fail(field, "a second level named '" + level.name + "'");
    t.memory.push_back(std::move(level));
  }
  if (r.has("storage_bytes_per_s")) t.storage_bytes_per_s = r.figure("storage_bytes_per_s");
  for (const char* field : {"weights_in", "activations_in"}) {
    if (!r.has(field)) continue;
    const std::string name = r.text(field);
    if (!t.level(name)) r.fail(field, "'" + name + "' is not a memory level");
    (std::string(field) == "weights_in" ? t.weights_in : t.activations_in) = name;
  }
  if (r.has("measured")) {
    if (!j.at("measured").is_boolean()) r.fail("measured", "expected true or false");
    t.measured = j.at("measured").get<bool>();
  }
  r.no_unknown_fields();
  t.origin = where;
  return t;
}

const MemoryLevel* Target::level(const std::string& level_name) const {
  for (const auto& m : memory)
    if (m.name == level_name) return &m;
  return nullptr;
}

std::string Target::compute_precision(const LayerConfig& config) const {
  if (config.act_bits == 0) return float_precision == "none" ? "" : float_precision;
  const int need = std::max(config.act_bits, config.quantized() ? config.weight_bits : 32);
  for (const auto& [bits, name] : std::vector<std::pair<int, std::string>>{{4, "int4"}, {8, "int8"}, {16, "int16"}})
    if (need <= bits && macs_per_s.count(name)) return name;
  return "";
}

std::string Target::unsupported(const LayerConfig& config) const {
  auto listed = [](const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  if (!listed(weight_bits, config.weight_bits))
    return "weight_bits " + std::to_string(config.weight_bits) + " (" + name + " runs " + join(weight_bits) + ")";
  if (!listed(act_bits, config.act_bits))
    return "act_bits " + std::to_string(config.act_bits) + (config.act_bits == 0 ? " (float activations)" : "") + " (" +
           name + " has no such path)";
  if (compute_precision(config).empty())
    return "no compute precision for weight_bits " + std::to_string(config.weight_bits) + " with act_bits " +
           std::to_string(config.act_bits);
  return "";
}

double Target::nm_compute_speedup(const LayerConfig& config) const {
  if (!config.nm.enabled()) return 1.0;
  if (const auto it = nm_speedup.find(config.nm.to_string()); it != nm_speedup.end()) return it->second.value;
  if (nm_flexible_efficiency)
    return std::max(1.0, nm_flexible_efficiency->value * config.nm.m / static_cast<double>(config.nm.n));
  return 1.0;
}

nlohmann::json to_json(const Target& t) {
  auto fig = [](const Figure& f) { return nlohmann::json{{"value", f.value}, {"source", f.source}}; };
  auto figs = [&](const std::map<std::string, Figure>& m) {
    nlohmann::json o = nlohmann::json::object();
    for (const auto& [k, f] : m) o[k] = fig(f);
    return o;
  };
  nlohmann::json j = {{"schema", kSchema},
                      {"name", t.name},
                      {"description", t.description},
                      {"kind", t.kind},
                      {"float_precision", t.float_precision},
                      {"weight_bits", t.weight_bits},
                      {"act_bits", t.act_bits},
                      {"macs_per_s", figs(t.macs_per_s)},
                      {"nm_speedup", figs(t.nm_speedup)},
                      {"layer_overhead_s", fig(t.layer_overhead_s)},
                      {"pj_per_mac", figs(t.pj_per_mac)}};
  if (t.nm_flexible_efficiency) j["nm_flexible_efficiency"] = fig(*t.nm_flexible_efficiency);
  j["memory"] = nlohmann::json::array();
  for (const auto& m : t.memory)
    j["memory"].push_back({{"name", m.name},
                           {"bytes", fig(m.bytes)},
                           {"bytes_per_s", fig(m.bytes_per_s)},
                           {"pj_per_byte", fig(m.pj_per_byte)}});
  if (t.storage_bytes_per_s) j["storage_bytes_per_s"] = fig(*t.storage_bytes_per_s);
  if (!t.weights_in.empty()) j["weights_in"] = t.weights_in;
  if (!t.activations_in.empty()) j["activations_in"] = t.activations_in;
  if (t.measured) j["measured"] = true;
  return j;
}

std::vector<std::string> target_names() {
  std::vector<std::string> names;
  for (const auto& [name, text] : builtin_targets()) names.push_back(name);
  names.push_back("host");
  return names;
}

Target load_target(const std::string& name_or_path) {
  if (name_or_path == "host") return host_target();
  for (const auto& [name, text] : builtin_targets())
    if (name == name_or_path) return parse_target(nlohmann::json::parse(text), "built-in '" + name + "'");
  if (name_or_path.find('/') != std::string::npos || name_or_path.find(".json") != std::string::npos) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file_text(name_or_path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorKind::kInvalidConfig, "target '" + name_or_path + "' is not valid JSON: " + first_line_of(e));
    }
    return parse_target(j, name_or_path);
  }
  std::string known;
  for (const auto& n : target_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error(ErrorKind::kInvalidConfig,
              "unknown target '" + name_or_path + "' (built-in: " + known + "; or a path to a target JSON file)");
}

}  // namespace adze
