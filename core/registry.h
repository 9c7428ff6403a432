// Registry<T>: the one registry idiom for passes, exporters, cost models and searchers.
//
// Entries are added explicitly from one central list per kind (no static self-registration). Each entry
// declares its options once (name, type, default, help); the same declaration validates JSON options and
// prints help, as MLIR's Option<> does.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"

namespace adze {

struct OptionSpec {
  std::string name;
  std::string type;              ///< "int", "number", "bool" or "string"
  nlohmann::json default_value;  ///< of that type
  std::string help;
};

/// Checks `given` (an object, or null for none) against `specs` and returns every option with defaults
/// filled in. Throws Error(kInvalidConfig) for an unknown option (listing the known ones) or a wrong type,
/// prefixed with `where` ("pipeline 'p.json' step 2 (sparsity.nm)").
nlohmann::json resolve_options(const std::vector<OptionSpec>& specs, const nlohmann::json& given,
                               const std::string& where);

/// Options given on a command line as NAME=VALUE (`flag` names them in errors): {"population=32",
/// "method=mse"} -> {"population": 32, "method": "mse"}. A value that parses as JSON (numbers, true/false) is
/// taken as such, anything else as a string. Error(kInvalidArgument) for an item without NAME=.
nlohmann::json parse_option_assignments(const std::vector<std::string>& given, const std::string& flag);

/// What a kind of entry can say about itself beyond its options (passes: PassTraits); none by default.
struct NoTraits {};

/// The built-ins of one kind (passes, exporters, searchers, cost models), listed in core/builtins.def and made
/// once; const after that.
template <typename T, typename Traits = NoTraits>
class Registry {
 public:
  using Factory = std::function<std::unique_ptr<T>(const nlohmann::json& options)>;
  struct Entry {
    std::string name;  ///< dotted: "sparsity.nm"
    std::string summary;
    std::vector<OptionSpec> options;
    Factory make;
    Traits traits{};
  };

  explicit Registry(std::string kind) : kind_(std::move(kind)) {}
  Registry(std::string kind, std::vector<Entry> entries) : kind_(std::move(kind)) {
    for (auto& e : entries) add(std::move(e));
  }

  void add(Entry entry) {
    for (const auto& e : entries_)
      if (e.name == entry.name) throw Error(ErrorKind::kInternal, kind_ + " '" + entry.name + "' registered twice");
    entries_.push_back(std::move(entry));
  }

  /// The entry, or Error(kInvalidConfig) naming `where` and listing the known names.
  const Entry& get(const std::string& name, const std::string& where) const {
    std::string known;
    for (const auto& e : entries_) {
      if (e.name == name) return e;
      known += (known.empty() ? "" : ", ") + e.name;
    }
    throw Error(ErrorKind::kInvalidConfig, where + ": unknown " + kind_ + " '" + name + "' (known: " + known + ")");
  }

  /// get(name), its options checked and completed with defaults (resolve_options), and made.
  std::unique_ptr<T> create(const std::string& name, const nlohmann::json& options, const std::string& where) const {
    const Entry& e = get(name, where);
    return e.make(resolve_options(e.options, options, where + " (" + name + ")"));
  }

  const std::vector<Entry>& entries() const { return entries_; }
  const std::string& kind() const { return kind_; }

 private:
  std::string kind_;
  std::vector<Entry> entries_;
};

}  // namespace adze
