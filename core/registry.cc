#include "core/registry.h"

namespace adze {
namespace {

bool has_type(const nlohmann::json& v, const std::string& type) {
  if (type == "int") return v.is_number_integer();
  if (type == "number") return v.is_number();
  if (type == "bool") return v.is_boolean();
  if (type == "string") return v.is_string();
  return false;
}

}  // namespace

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
