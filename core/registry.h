// Registry<T>: the one registry idiom for passes, exporters, cost models and searchers.
//
// Entries are added explicitly from one central list per kind (core/builtins.def; no static self-registration).
// Each entry declares its options once, as a typed struct and its OptionList (core/options.h); the same
// declaration validates JSON options, prints help and makes the struct the factory receives.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/options.h"

namespace adze {

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

  /// An entry whose options are the struct S, declared once by `options`: `make` receives S, checked against
  /// the declared types and limits and completed with S's defaults (create() checks first, naming where the
  /// options came from).
  template <typename S, typename Make>
  static Entry entry(std::string name, std::string summary, OptionList<S> options, Make make, Traits traits = {}) {
    std::vector<OptionSpec> specs = options.specs();
    return {name, std::move(summary), specs,
            [name, specs, options = std::move(options), make = std::move(make)](const nlohmann::json& given) {
              return make(options.read(resolve_options(specs, given, name)));
            },
            traits};
  }

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

/// Every entry of `registry` as `--help` lists it: "  NAME  summary", then one line per option (help_line
/// after `option_prefix`, e.g. "--algo-option ").
template <typename T, typename Traits>
std::string registry_listing(const Registry<T, Traits>& registry, const std::string& option_prefix) {
  std::size_t width = 0;
  for (const auto& e : registry.entries()) width = std::max(width, e.name.size());
  std::string out;
  for (const auto& e : registry.entries()) {
    out += "  " + e.name + std::string(width - e.name.size() + 2, ' ') + e.summary + "\n";
    for (const auto& o : e.options) out += std::string(width + 6, ' ') + help_line(o, option_prefix) + "\n";
  }
  return out;
}

}  // namespace adze
