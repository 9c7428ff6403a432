#include <filesystem>

#include "cli/commands.h"
#include "compress/frontend.h"
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
    throw Error(ErrorKind::kIo, "failed to open model '" + model + "': it is a reference model that is not trained yet (run: adze reference train " + model + ")");
  }
  throw Error(ErrorKind::kIo, "failed to open model '" + model + "': no such file, nor a reference model name");
}

InputSpec resolve_input_spec(const std::string& model_path, const std::string& shape_flag, const std::string& dtype_flag) {
  if (!shape_flag.empty()) {
    InputSpec spec{parse_shape(shape_flag), dtype_flag.empty() ? "float32" : dtype_flag};
    parse_dtype(spec.dtype);
    return spec;
  }
  if (auto spec = read_input_spec_beside(model_path)) {
    if (!dtype_flag.empty()) spec->dtype = dtype_flag;
    return *spec;
  }
  throw Error(ErrorKind::kInvalidArgument, "failed to trace model '" + model_path +
                                               "': give its input with --input-shape (e.g. 1x3x224x224); no card '" +
                                               card_path_for(model_path) + "' records it");
}

bool show_progress(bool json) { return !json && !global_options().quiet; }

}  // namespace adze::cli
