#include "core/options.h"

#include <cmath>
#include <sstream>

namespace adze {
namespace {

bool has_type(const nlohmann::json& v, const std::string& type) {
  if (type == "int") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "bool") return v.is_boolean();
  if (type == "string") return v.is_string();
  return false;
}

std::string number(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream s;
  s << v;
  return s.str();
}

bool within(const nlohmann::json& v, const Limits& l) {
  if (v.is_number()) {
    const double x = v.get<double>();
    return (l.min_exclusive ? x > l.min : x >= l.min) && x <= l.max;
  }
  if (v.is_string() && !l.choices.empty()) {
    for (const auto& c : l.choices)
      if (v.get<std::string>() == c) return true;
    return false;
  }
  return true;
}

}  // namespace

std::string describe_limits(const OptionSpec& spec) {
  const Limits& l = spec.limits;
  if (!l.choices.empty()) {
    std::string s = "one of: ";
    for (std::size_t i = 0; i < l.choices.size(); ++i) s += (i ? ", " : "") + l.choices[i];
    return s;
  }
  const bool low = std::isfinite(l.min), high = std::isfinite(l.max);
  if (low && high)
    return std::string("in ") + (l.min_exclusive ? "(" : "[") + number(l.min) + ", " + number(l.max) + "]";
  if (low) return (l.min_exclusive ? "above " : "at least ") + number(l.min);
  if (high) return "at most " + number(l.max);
  return "";
}

nlohmann::json to_json(const OptionSpec& spec) {
  nlohmann::json j = {{"name", spec.name}, {"type", spec.type}, {"default", spec.default_value}, {"help", spec.help}};
  if (std::isfinite(spec.limits.min)) j[spec.limits.min_exclusive ? "above" : "min"] = spec.limits.min;
  if (std::isfinite(spec.limits.max)) j["max"] = spec.limits.max;
  if (!spec.limits.choices.empty()) j["choices"] = spec.limits.choices;
  return j;
}

std::string help_line(const OptionSpec& spec, const std::string& prefix) {
  const std::string limits = describe_limits(spec);
  return prefix + spec.name + " (" + spec.type + ", default " + spec.default_value.dump() +
         (limits.empty() ? "" : ", " + limits) + "): " + spec.help;
}

nlohmann::json resolve_options(const std::vector<OptionSpec>& specs, const nlohmann::json& given,
                               const std::string& where) {
  if (!given.is_null() && !given.is_object())
    throw Error(ErrorKind::kInvalidConfig, where + ": options must be an object, found " + given.dump());
  nlohmann::json out = nlohmann::json::object();
  for (const auto& s : specs) out[s.name] = s.default_value;
  if (given.is_null()) return out;
  for (const auto& [key, value] : given.items()) {
    const OptionSpec* spec = nullptr;
    for (const auto& s : specs)
      if (s.name == key) spec = &s;
    if (!spec) {
      std::string known;
      for (const auto& s : specs) known += (known.empty() ? "" : ", ") + s.name;
      throw Error(ErrorKind::kInvalidConfig,
                  where + ": unknown option '" + key + "' (known: " + (known.empty() ? "none" : known) + ")");
    }
    if (!has_type(value, spec->type))
      throw Error(ErrorKind::kInvalidConfig,
                  where + ": option '" + key + "' must be of type " + spec->type + ", found " + value.dump());
    if (!within(value, spec->limits))
      throw Error(ErrorKind::kInvalidConfig,
                  where + ": option '" + key + "' must be " + describe_limits(*spec) + ", found " + value.dump());
    out[key] = value;
  }
  return out;
}

nlohmann::json parse_option_assignments(const std::vector<std::string>& given, const std::string& flag) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& kv : given) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ErrorKind::kInvalidArgument, flag + " '" + kv + "': expected NAME=VALUE");
    const std::string value = kv.substr(eq + 1);
    const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    j[kv.substr(0, eq)] = parsed.is_discarded() ? nlohmann::json(value) : parsed;
  }
  return j;
}

}  // namespace adze
