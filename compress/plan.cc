#include "compress/plan.h"

#include <regex>

#include "compress/decompose.h"
#include "core/error.h"
#include "core/files.h"
#include "model/layer_table.h"

namespace adze {
namespace {

using Json = nlohmann::ordered_json;

const std::vector<std::string>& known_fields() {
  static const std::vector<std::string> fields = {
      "weight_bits",  "quantizer",  "symmetric",  "granularity", "group_size", "pow2_scale",
      "scale_method", "percentile", "act_bits",   "nm",          "permute",    "sparsity",
      "decompose",    "rank",       "rank_ratio", "blocks",      "basis"};
  return fields;
}

[[noreturn]] void fail(const std::string& where, const std::string& why) {
  throw Error(ErrorKind::kInvalidConfig, "invalid plan " + where + ": " + why);
}

int64_t get_int(const Json& v, const std::string& where) {
  if (!v.is_number_integer()) fail(where, "expected an integer, found " + v.dump());
  return v.get<int64_t>();
}

double get_number(const Json& v, const std::string& where) {
  if (!v.is_number()) fail(where, "expected a number, found " + v.dump());
  const double d = v.get<double>();
  if (!std::isfinite(d)) fail(where, "expected a finite number");
  return d;
}

bool get_bool(const Json& v, const std::string& where) {
  if (!v.is_boolean()) fail(where, "expected true or false, found " + v.dump());
  return v.get<bool>();
}

std::string get_string(const Json& v, const std::string& where) {
  if (!v.is_string()) fail(where, "expected a string, found " + v.dump());
  return v.get<std::string>();
}

// Applies the fields of `obj` onto `config`; `where` prefixes messages ("'p.json' defaults").
void apply_fields(const Json& obj, LayerConfig& c, const std::string& where) {
  if (!obj.is_object()) fail(where, "expected an object of fields, found " + obj.dump());
  for (const auto& [key, v] : obj.items()) {
    const std::string at = where + " field " + key;
    if (key == "weight_bits")
      c.weight_bits = static_cast<int>(get_int(v, at));
    else if (key == "quantizer") {
      const std::string q = get_string(v, at);
      const SchemeTraits* scheme = scheme_named(q);
      if (!scheme) fail(at, "expected " + scheme_names() + ", found \"" + q + "\"");
      c.quantizer = scheme->id;
    } else if (key == "symmetric")
      c.symmetric = get_bool(v, at);
    else if (key == "granularity") {
      const std::string g = get_string(v, at);
      if (g == "tensor")
        c.granularity = Granularity::kPerTensor;
      else if (g == "channel")
        c.granularity = Granularity::kPerChannel;
      else if (g == "group")
        c.granularity = Granularity::kPerGroup;
      else
        fail(at, "expected \"tensor\", \"channel\" or \"group\", found \"" + g + "\"");
    } else if (key == "group_size")
      c.group_size = get_int(v, at);
    else if (key == "pow2_scale")
      c.pow2_scale = get_bool(v, at);
    else if (key == "scale_method")
      c.scale_method = parse_scale_method(get_string(v, at), at);
    else if (key == "percentile")
      c.percentile = get_number(v, at);
    else if (key == "act_bits") {
      if (v.is_null() || (v.is_string() && v.get<std::string>() == "none"))
        c.act_bits = 0;
      else
        c.act_bits = static_cast<int>(get_int(v, at));
    } else if (key == "nm")
      c.nm = NMPattern::parse(get_string(v, at), at);
    else if (key == "permute")
      c.permute = get_bool(v, at);
    else if (key == "sparsity")
      c.sparsity = get_number(v, at);
    else if (key == "decompose") {
      const std::string d = get_string(v, at);
      if (!parse_decomposition(d, &c.decompose))
        fail(at, "expected " + decomposition_names() + ", found \"" + d + "\"");
    } else if (key == "rank") {
      c.rank = get_int(v, at);
      if (c.rank < 1) fail(at, "expected a rank of at least 1, found " + v.dump());
    } else if (key == "rank_ratio") {
      c.rank_ratio = get_number(v, at);
      if (!(c.rank_ratio > 0 && c.rank_ratio <= 1)) fail(at, "expected a fraction in (0, 1], found " + v.dump());
    } else if (key == "blocks") {
      c.blocks = get_int(v, at);
      if (c.blocks < 1) fail(at, "expected at least 1 block, found " + v.dump());
    } else if (key == "basis") {
      c.basis = get_int(v, at);
      if (c.basis < 1) fail(at, "expected a basis of at least 1, found " + v.dump());
    } else {
      std::string known;
      for (const auto& f : known_fields()) known += (known.empty() ? "" : ", ") + f;
      fail(where, "unknown field '" + key + "' (known: " + known + ")");
    }
  }
}

std::string glob_to_regex(const std::string& glob) {
  std::string re;
  for (char ch : glob) {
    if (ch == '*')
      re += ".*";
    else if (ch == '?')
      re += '.';
    else if (std::string("\\^$.|+()[]{}").find(ch) != std::string::npos)
      re += std::string("\\") + ch;
    else
      re += ch;
  }
  return re;
}

}  // namespace

bool selector_matches(const std::string& pattern, const std::string& name) {
  const bool is_regex = pattern.rfind("re:", 0) == 0;
  const std::regex re(is_regex ? pattern.substr(3) : glob_to_regex(pattern), std::regex::ECMAScript);
  return std::regex_match(name, re);
}

Plan parse_plan(const Json& doc, const std::string& source) {
  const std::string file = "'" + source + "'";
  if (!doc.is_object()) fail(file, "expected an object with \"defaults\" and/or \"layers\"");
  Plan plan;
  plan.source = source;
  for (const auto& [key, value] : doc.items()) {
    if (key == "defaults") {
      apply_fields(value, plan.defaults, file + " defaults");
    } else if (key == "layers") {
      if (!value.is_object()) fail(file + " layers", "expected an object {selector: {fields}}");
      for (const auto& [pattern, fields] : value.items()) {
        const std::string where = file + " layers['" + pattern + "']";
        if (pattern.rfind("re:", 0) == 0) {
          const std::string re = pattern.substr(3);
          // Checked before std::regex sees it: libstdc++'s compiler overflows on long back-reference numbers
          // (undefined behaviour, found by fuzzing) and recurses once per nesting level. Layer names need
          // neither back-references nor long patterns.
          if (re.size() > 256) fail(where, "a regular expression longer than 256 characters");
          for (std::size_t i = 0; i + 1 < re.size(); ++i)
            if (re[i] == '\\') {
              if (re[i + 1] >= '1' && re[i + 1] <= '9')
                fail(where,
                     "back-references (\\" + std::string(1, re[i + 1]) + ") are not supported in a layer selector");
              ++i;
            }
          try {
            std::regex(re, std::regex::ECMAScript);
          } catch (const std::regex_error& e) {
            fail(where, std::string("invalid regular expression: ") + e.what());
          }
        }
        LayerConfig scratch;
        apply_fields(fields, scratch, where);  // type-check now, apply on resolve
        plan.selectors.push_back(PlanSelector{pattern, fields});
      }
    } else if (key != "comment" && key != "layers_as_applied") {
      fail(file, "unknown key '" + key + "' (expected defaults, layers)");
    }
  }
  return plan;
}

Plan load_plan(const std::string& path) {
  const std::string text = read_file_text(path);
  Json doc;
  try {
    doc = Json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kInvalidConfig, "invalid plan '" + path + "': not JSON (" + e.what() + ")");
  }
  return parse_plan(doc, path);
}

ResolvedPlan resolve_plan(const Plan& plan, const LayerTable& table, const std::string& source) {
  ResolvedPlan resolved;
  std::vector<bool> used(plan.selectors.size(), false);
  std::string problems;
  for (const auto& layer : table.layers) {
    LayerConfig c = plan.defaults;
    for (std::size_t i = 0; i < plan.selectors.size(); ++i) {
      const auto& s = plan.selectors[i];
      if (!selector_matches(s.pattern, layer.name) && !selector_matches(s.pattern, layer.weight)) continue;
      used[i] = true;
      apply_fields(s.fields, c, "'" + source + "' layers['" + s.pattern + "']");
    }
    if (auto why = check_config(layer, c); !why.empty())
      problems += (problems.empty() ? "" : "; ") + std::string("layer '") + layer.name + "' field " + why;
    resolved.layers.emplace(layer.name, c);
  }
  if (!problems.empty()) throw Error(ErrorKind::kInvalidConfig, "invalid plan '" + source + "': " + problems);
  for (std::size_t i = 0; i < plan.selectors.size(); ++i)
    if (!used[i])
      resolved.warnings.push_back("plan '" + source + "': selector '" + plan.selectors[i].pattern +
                                  "' matches no layer");
  return resolved;
}

nlohmann::ordered_json to_json(const LayerConfig& c) {
  Json j;
  j["weight_bits"] = c.weight_bits;
  j["quantizer"] = to_string(c.quantizer);
  j["symmetric"] = c.symmetric;
  j["granularity"] = to_string(c.granularity);
  j["group_size"] = c.group_size;
  j["pow2_scale"] = c.pow2_scale;
  j["scale_method"] = to_string(c.scale_method);
  j["percentile"] = c.percentile;
  j["act_bits"] = c.act_bits == 0 ? Json("none") : Json(c.act_bits);
  j["nm"] = c.nm.to_string();
  j["permute"] = c.permute;
  j["sparsity"] = c.sparsity;
  if (c.decomposed()) {  // written only when used, so that plans without decomposition read as before
    j["decompose"] = to_string(c.decompose);
    if (c.rank > 0) j["rank"] = c.rank;
    if (c.rank_ratio > 0) j["rank_ratio"] = c.rank_ratio;
    j["blocks"] = c.blocks;
    j["basis"] = c.basis;
  }
  return j;
}

nlohmann::ordered_json to_json(const ResolvedPlan& plan) {
  Json layers = Json::object();
  for (const auto& [name, c] : plan.layers) layers[name] = to_json(c);
  return Json{{"layers", layers}};
}

}  // namespace adze
