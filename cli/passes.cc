// adze passes [--json]: the built-in passes with their options.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "compress/pass.h"

namespace adze::cli {

void setup_passes(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* sub = app.add_subcommand("passes", "List the compression passes a pipeline can use, with their options");
  sub->footer(
      "A pipeline file lists passes in order, e.g.\n"
      "  {\"passes\": [\"fold-bn\", \"sparsity.nm\", \"quantize.weights\", {\"name\": \"eval\", \"options\": "
      "{\"label\": \"after\"}}]}");
  sub->add_flag("--json", *json, "print JSON");
  sub->callback([json] {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : pass_registry().entries()) {
      nlohmann::json options = nlohmann::json::array();
      for (const auto& o : e.options) options.push_back(to_json(o));
      out.push_back({{"name", e.name}, {"summary", e.summary}, {"options", options}});
      if (*json) continue;
      std::cout << e.name << "\n    " << e.summary << "\n";
      for (const auto& o : e.options) std::cout << help_line(o, "    option ") << "\n";
    }
    if (*json) std::cout << out.dump(2) << "\n";
  });
}

}  // namespace adze::cli
