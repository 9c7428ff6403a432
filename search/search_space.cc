#include "search/search_space.h"

#include <cmath>
#include <cstdlib>

#include "compress/decompose.h"
#include "core/error.h"
#include "exporters/exporter.h"
#include "hardware/target.h"

namespace adze {

std::string config_label(const LayerConfig& c) {
  std::string s = c.quantized() ? "w" + std::to_string(c.weight_bits) : "fp" + std::to_string(c.weight_bits);
  if (c.nm.enabled()) s += " " + c.nm.to_string();
  if (c.sparsity > 0) s += " s" + std::to_string(static_cast<int>(c.sparsity * 100 + 0.5));
  if (c.act_bits > 0) s += " a" + std::to_string(c.act_bits);
  if (c.decompose == Decomposition::kLowRank)
    s += c.rank > 0 ? " rank" + std::to_string(c.rank) : " rank" + std::to_string(c.rank_ratio).substr(0, 4);
  if (c.decompose == Decomposition::kMonarch) s += " monarch" + std::to_string(c.blocks);
  if (c.decompose == Decomposition::kSmartDeal) s += " smartdeal" + std::to_string(c.basis);
  return s;
}

namespace {

// "none", "lowrank:0.25", "monarch:4", "smartdeal:3".
LayerConfig parse_decomposition_option(const std::string& text) {
  const auto fail = [&](const std::string& why) -> LayerConfig {
    throw Error(ErrorKind::kInvalidArgument, "--decompose '" + text + "': " + why);
  };
  const auto colon = text.find(':');
  LayerConfig c;
  if (!parse_decomposition(text.substr(0, colon), &c.decompose))
    return fail("expected none, lowrank:RATIO, monarch:BLOCKS or smartdeal:BASIS");
  if (c.decompose == Decomposition::kNone) return colon == std::string::npos ? c : fail("none takes no value");
  if (colon == std::string::npos) return fail("give its value after a colon (" + text + ":...)");
  const std::string value = text.substr(colon + 1);
  char* end = nullptr;
  const double x = std::strtod(value.c_str(), &end);
  if (value.empty() || *end != '\0' || !std::isfinite(x)) return fail("'" + value + "' is not a number");
  if (c.decompose == Decomposition::kLowRank) {
    if (!(x > 0 && x <= 1)) return fail("the rank ratio must be in (0, 1]");
    c.rank_ratio = x;
    return c;
  }
  if (!(x >= 1 && x == std::floor(x) && x <= 4096)) return fail("expected a whole number from 1 to 4096");
  (c.decompose == Decomposition::kMonarch ? c.blocks : c.basis) = static_cast<int64_t>(x);
  return c;
}

}  // namespace

SpaceSpec space_spec(const std::vector<int>& weight_bits, const std::vector<std::string>& nm,
                     const std::vector<int>& act_bits, const std::vector<std::string>& decompose) {
  SpaceSpec spec;
  for (int b : weight_bits)
    if (!((b >= 2 && b <= 8) || b == 16 || b == 32))
      throw Error(ErrorKind::kInvalidArgument, "--bits " + std::to_string(b) + ": expected 2..8, 16 or 32");
  for (int b : act_bits)
    if (b != 0 && b != 8 && b != 16)
      throw Error(ErrorKind::kInvalidArgument, "--act-bits " + std::to_string(b) + ": expected 0 (float), 8 or 16");
  spec.weight_bits = weight_bits;
  spec.act_bits = act_bits;
  spec.nm.clear();
  for (const auto& n : nm) spec.nm.push_back(NMPattern::parse(n, "--nm"));
  spec.decompositions.clear();
  for (const auto& d : decompose) spec.decompositions.push_back(parse_decomposition_option(d));
  spec.base.scale_method = ScaleMethod::kMse;
  return spec;
}

std::vector<LayerConfig> spec_configs(const SpaceSpec& spec) {
  std::vector<LayerConfig> out;
  for (int bits : spec.weight_bits)
    for (const NMPattern& nm : spec.nm)
      for (int act : spec.act_bits)
        for (const LayerConfig& d : spec.decompositions) {
          LayerConfig c = spec.base;
          c.weight_bits = bits;
          c.nm = nm;
          c.act_bits = act;
          c.decompose = d.decompose;
          c.rank = d.rank;
          c.rank_ratio = d.rank_ratio;
          c.blocks = d.blocks;
          c.basis = d.basis;
          out.push_back(c);
        }
  return out;
}

std::vector<LayerOptions> build_search_space(const LayerTable& table, const SpaceSpec& spec, const Target* target,
                                             const Contract* contract) {
  std::vector<LayerOptions> space;
  const std::vector<LayerConfig> configs = spec_configs(spec);
  for (const Layer& layer : table.layers) {
    LayerOptions o{layer.name, {}, {}};
    for (const LayerConfig& c : configs) {
      std::string why = check_config(layer, c);
      if (why.empty() && target) why = target->unsupported(c);
      if (why.empty() && contract) {
        const auto v = check_layer_config(*contract, layer.name, c);
        if (!v.empty()) why = "the exporter allows " + v.front().field + " " + v.front().allowed;
      }
      if (why.empty())
        o.configs.push_back(c);
      else
        o.excluded.push_back(config_label(c) + ": " + why);
    }
    if (o.configs.empty()) {
      std::string text = "layer '" + layer.name + "' has no config in the search space:";
      for (const auto& e : o.excluded) text += "\n  " + e;
      throw Error(ErrorKind::kInvalidConfig, text);
    }
    space.push_back(std::move(o));
  }
  return space;
}

}  // namespace adze
