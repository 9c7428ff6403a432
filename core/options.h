// Typed options, declared once. An entry's options are a plain struct with its defaults; an OptionList names
// each field once, with its help and limits, and from that one declaration come the JSON schema that checks a
// pipeline step or a `--algo-option`, the `--help` and `--json` listings, and the struct the entry is made
// from (as MLIR's Option<> and LLVM's cl::opt declare an option once):
//
//   struct Options { int64_t batches = 8; MaskMode mask = MaskMode::kFixed; };
//   const OptionList<Options> list = OptionList<Options>()
//       .add(&Options::batches, "batches", "calibration batches", at_least(1))
//       .choose(&Options::mask, "mask", "fixed: keep the first mask; dynamic: ...",
//               {{"fixed", MaskMode::kFixed}, {"dynamic", MaskMode::kDynamic}});
//   Options o = list.read(resolve_options(list.specs(), given, where));
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"

namespace adze {

/// The values an option may take beyond its type: a numeric range, or for strings a list of names.
struct Limits {
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool min_exclusive = false;
  std::vector<std::string> choices;  ///< strings: the allowed values (empty: any)

  Limits at_most(double v) const {
    Limits l = *this;
    l.max = v;
    return l;
  }
};
inline Limits at_least(double v) {
  Limits l;
  l.min = v;
  return l;
}
/// Strictly greater than v.
inline Limits above(double v) {
  Limits l = at_least(v);
  l.min_exclusive = true;
  return l;
}
inline Limits between(double lo, double hi) { return at_least(lo).at_most(hi); }
/// A string that must be one of `names`.
inline Limits one_of(std::vector<std::string> names) {
  Limits l;
  l.choices = std::move(names);
  return l;
}

/// One option as the schema sees it: what JSON validation and the listings read.
struct OptionSpec {
  std::string name;
  std::string type;              ///< "int", "number", "bool" or "string"
  nlohmann::json default_value;  ///< of that type
  std::string help;
  Limits limits{};
};

/// "in (0, 1]", "at least 1", "one of: fixed, dynamic", or "" when any value of the type is allowed.
std::string describe_limits(const OptionSpec& spec);
/// {"name", "type", "default", "help", and "min"/"max"/"choices" where limited}: for `--json` listings.
nlohmann::json to_json(const OptionSpec& spec);
/// "--name (int, default 8, at least 1): help": one line of a `--help` listing.
std::string help_line(const OptionSpec& spec, const std::string& prefix = "--");

/// Checks `given` (an object, or null for none) against `specs` and returns every option with defaults
/// filled in. Throws Error(kInvalidConfig) for an unknown option (listing the known ones), a wrong type or a
/// value outside the option's limits, prefixed with `where` ("pipeline 'p.json' step 2 (sparsity.nm)").
nlohmann::json resolve_options(const std::vector<OptionSpec>& specs, const nlohmann::json& given,
                               const std::string& where);

/// Options given on a command line as NAME=VALUE (`flag` names them in errors): {"population=32",
/// "method=mse"} -> {"population": 32, "method": "mse"}. A value that parses as JSON (numbers, true/false) is
/// taken as such, anything else as a string. Error(kInvalidArgument) for an item without NAME=.
nlohmann::json parse_option_assignments(const std::vector<std::string>& given, const std::string& flag);

namespace detail {
template <typename T>
const char* option_type() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<T>)
    return "int";
  else if constexpr (std::is_floating_point_v<T>)
    return "number";
  else {
    static_assert(std::is_same_v<T, std::string>, "an option is an integer, a number, a bool or a string");
    return "string";
  }
}
}  // namespace detail

/// The fields of an options struct S, each declared once (see the top of this file).
template <typename S>
class OptionList {
 public:
  /// A field of S read as it is: integers, numbers, bools and strings.
  template <typename T>
  OptionList& add(T S::*field, std::string name, std::string help, Limits limits = {}) {
    S defaults{};
    fields_.push_back({{std::move(name), detail::option_type<T>(), nlohmann::json(defaults.*field), std::move(help),
                        std::move(limits)},
                       [field](S& s, const nlohmann::json& v) { s.*field = v.get<T>(); }});
    return *this;
  }

  /// A field of S (an enum, a bool) set from one of the names in `values`: a string option whose choices
  /// are those names, its default the name of S's default.
  template <typename T>
  OptionList& choose(T S::*field, std::string name, std::string help, std::vector<std::pair<std::string, T>> values) {
    S defaults{};
    Limits limits;
    nlohmann::json default_name;
    for (const auto& [text, value] : values) {
      limits.choices.push_back(text);
      if (value == defaults.*field && default_name.is_null()) default_name = text;
    }
    if (default_name.is_null()) throw Error(ErrorKind::kInternal, "option '" + name + "': its default has no name");
    fields_.push_back({{std::move(name), "string", default_name, std::move(help), std::move(limits)},
                       [field, values](S& s, const nlohmann::json& v) {
                         for (const auto& [text, value] : values)
                           if (v.get<std::string>() == text) s.*field = value;
                       }});
    return *this;
  }

  /// Every field's schema, in declaration order.
  std::vector<OptionSpec> specs() const {
    std::vector<OptionSpec> out;
    for (const auto& f : fields_) out.push_back(f.spec);
    return out;
  }

  /// The struct from options that resolve_options(specs(), ...) returned (all present, types and limits
  /// checked).
  S read(const nlohmann::json& resolved) const {
    S s{};
    for (const auto& f : fields_) f.set(s, resolved.at(f.spec.name));
    return s;
  }

 private:
  struct Field {
    OptionSpec spec;
    std::function<void(S&, const nlohmann::json&)> set;
  };
  std::vector<Field> fields_;
};

}  // namespace adze
