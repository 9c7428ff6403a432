// The target files under configs/targets, compiled into adze (CMake writes builtin_targets.cc), so that
// `--target a100` works wherever adze is installed.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace adze {

/// (name, JSON text) of every configs/targets/*.json except host.json, sorted by name.
const std::vector<std::pair<std::string, std::string>>& builtin_targets();

}  // namespace adze
