// The options adze sensitivity and adze search share: the search space and the subset its sensitivity is
// measured on (search/measured_space.h).
#pragma once

#include <CLI/CLI.hpp>

#include "search/measured_space.h"

namespace adze::cli {

/// Registers MODEL, --data, --split, --limit, --bits, --nm, --act-bits, --decompose, --probes, --seed, --input-shape,
/// --input-dtype.
void add_space_options(CLI::App* sub, SpaceOptions& o);

}  // namespace adze::cli
