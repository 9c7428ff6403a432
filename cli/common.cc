#include <algorithm>
#include <filesystem>

#include "cli/commands.h"
#include "core/error.h"
#include "examples/reference/reference.h"

namespace adze::cli {

GlobalOptions& global_options() {
  static GlobalOptions options;
  return options;
}

std::string resolve_model_path(const std::string& model) {
  if (std::filesystem::exists(model)) return model;
  for (const auto& r : reference::recipes()) {
    if (r.name != model) continue;
    if (auto path = reference::cached_model_path(model)) return *path;
    throw Error(ErrorKind::kIo, "failed to open model '" + model +
                                    "': it is a reference model that is not trained yet (run: adze reference train " +
                                    model + ")");
  }
  throw Error(ErrorKind::kIo, "failed to open model '" + model + "': no such file, nor a reference model name");
}

bool show_progress(bool json) { return !json && !global_options().quiet; }

}  // namespace adze::cli
