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

bool show_progress(bool json) { return !json && !global_options().quiet; }

}  // namespace adze::cli
